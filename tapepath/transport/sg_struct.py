"""The Linux SCSI generic (sg) driver's interface: ``struct sg_io_hdr``, its constants,
and the system calls the transport makes on a node (the seam tests replace).

The facts come from ``<scsi/sg.h>`` (the v3 interface, ``interface_id`` ``'S'``); the
transport that uses them is :mod:`tapepath.transport.sg`. The structure is a ctypes
``Structure`` with the platform's natural alignment, so it matches the kernel's layout on
32-bit and 64-bit builds alike (a test compiles ``<scsi/sg.h>`` to prove it).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import select
import stat
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "SCSI_GENERIC_MAJOR",
    "SENSE_MAX",
    "SG_DXFER_FROM_DEV",
    "SG_DXFER_NONE",
    "SG_DXFER_TO_DEV",
    "SG_GET_VERSION_NUM",
    "SG_INTERFACE_ID",
    "SG_IO",
    "SG_MIN_VERSION",
    "OsSyscalls",
    "Poller",
    "SgIoHdr",
    "SgSyscalls",
]

SG_INTERFACE_ID = ord("S")
"""``interface_id`` of the v3 interface."""

SG_DXFER_NONE = -1
SG_DXFER_TO_DEV = -2
SG_DXFER_FROM_DEV = -3

SG_IO = 0x2285
"""ioctl: run one command synchronously."""
SG_GET_VERSION_NUM = 0x2282
"""ioctl: the sg driver's version as an int (e.g. 30536 for 3.5.36)."""

SG_MIN_VERSION = 30000
"""The first driver version with the v3 (``sg_io_hdr``) interface."""

SCSI_GENERIC_MAJOR = 21
"""The character-device major number of /dev/sgN."""

SENSE_MAX = 252
"""Sense bytes the transport accepts per command (``mx_sb_len``)."""

SG_INFO_CHECK = 0x1
"""``info`` bit: something other than GOOD happened (status, host or driver byte)."""


class SgIoHdr(ctypes.Structure):
    """``struct sg_io_hdr`` from ``<scsi/sg.h>`` (inputs, then outputs)."""

    _fields_ = [
        ("interface_id", ctypes.c_int),
        ("dxfer_direction", ctypes.c_int),
        ("cmd_len", ctypes.c_ubyte),
        ("mx_sb_len", ctypes.c_ubyte),
        ("iovec_count", ctypes.c_ushort),
        ("dxfer_len", ctypes.c_uint),
        ("dxferp", ctypes.c_void_p),
        ("cmdp", ctypes.c_void_p),
        ("sbp", ctypes.c_void_p),
        ("timeout", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("pack_id", ctypes.c_int),
        ("usr_ptr", ctypes.c_void_p),
        ("status", ctypes.c_ubyte),
        ("masked_status", ctypes.c_ubyte),
        ("msg_status", ctypes.c_ubyte),
        ("sb_len_wr", ctypes.c_ubyte),
        ("host_status", ctypes.c_ushort),
        ("driver_status", ctypes.c_ushort),
        ("resid", ctypes.c_int),
        ("duration", ctypes.c_uint),
        ("info", ctypes.c_uint),
    ]


Poller = Callable[[int], list[tuple[int, int]]]
"""``select.poll().poll`` bound to one fd: timeout in ms -> [(fd, events)]."""


class SgSyscalls(Protocol):
    """The system calls the transport makes; tests inject a fake driver here.

    ``write``, ``readv`` and the poller are called once per command, so the real ones are
    the builtins themselves (no Python frame in between).
    """

    def open(self, path: str, flags: int) -> int:
        """``os.open``."""
        ...

    def close(self, fd: int) -> None:
        """``os.close``."""
        ...

    def char_major(self, fd: int) -> int | None:
        """The major number of a character device, or None for anything else."""
        ...

    def ioctl(self, fd: int, request: int, arg: bytearray | ctypes.Structure) -> int:
        """``fcntl.ioctl`` with a mutable buffer (results land in ``arg``)."""
        ...

    def write(self, fd: int, buf: ctypes.Structure, /) -> int:
        """``os.write`` of a structure's bytes."""
        ...

    def readv(self, fd: int, buffers: list[SgIoHdr], /) -> int:
        """``os.readv``; raises BlockingIOError when nothing is ready."""
        ...

    def poller(self, fd: int, events: int) -> Poller:
        """A poll function for ``fd`` and ``events`` (``select.poll().poll``)."""
        ...


def _ioctl(fd: int, request: int, arg: bytearray | ctypes.Structure) -> int:
    return int(fcntl.ioctl(fd, request, arg, True))


def _char_major(fd: int) -> int | None:
    st = os.fstat(fd)
    return os.major(st.st_rdev) if stat.S_ISCHR(st.st_mode) else None


def _poller(fd: int, events: int) -> Poller:
    p = select.poll()
    p.register(fd, events)
    return p.poll


class OsSyscalls:
    """The real system calls: ``os``, ``fcntl`` and ``select`` themselves."""

    open = staticmethod(os.open)
    close = staticmethod(os.close)
    char_major = staticmethod(_char_major)
    ioctl = staticmethod(_ioctl)
    write = staticmethod(os.write)
    readv = staticmethod(os.readv)
    poller = staticmethod(_poller)
