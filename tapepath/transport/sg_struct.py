"""The Linux SCSI generic (sg) driver's interface: ``struct sg_io_hdr``, its constants,
the system calls the transport makes on a node (the seam tests replace), and the
per-command memory (:class:`Kit`) the kernel reads and writes through the header.

The facts come from ``<scsi/sg.h>`` (the v3 interface, ``interface_id`` ``'S'``); the
transport that uses them is :mod:`tapepath.transport.sg`. The structure is a ctypes
``Structure`` with the platform's natural alignment, so it matches the kernel's layout on
32-bit and 64-bit builds alike (a test compiles ``<scsi/sg.h>`` to prove it).
"""

from __future__ import annotations

import ctypes
import fcntl
import math
import os
import queue
import select
import stat
import struct
import threading
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "COMPLETION",
    "COMPLETION_OFFSET",
    "HDR_SIZE",
    "KEEP_BUFFER",
    "MAX_CDB",
    "SCSI_GENERIC_MAJOR",
    "SENSE_MAX",
    "SG_DXFER_FROM_DEV",
    "SG_DXFER_NONE",
    "SG_DXFER_TO_DEV",
    "SG_GET_VERSION_NUM",
    "SG_INTERFACE_ID",
    "SG_IO",
    "SG_MIN_VERSION",
    "BlockingCalls",
    "Completion",
    "Kit",
    "OsSyscalls",
    "Poller",
    "SgIoHdr",
    "SgSyscalls",
    "out_pointer",
    "prepare_kit",
    "timeout_ms",
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

MAX_CDB = 252
"""The longest CDB the sg driver takes."""

KEEP_BUFFER = 1 << 20
"""A thread keeps its data-in buffer between calls up to this size."""

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


HDR_SIZE = ctypes.sizeof(SgIoHdr)
"""Bytes of ``struct sg_io_hdr`` (what one read() of a completion returns)."""

_COMPLETION_FIELDS = ("pack_id", "status", "sb_len_wr", "host_status", "driver_status", "resid")
_STRUCT_CODES: dict[type, str] = {ctypes.c_int: "i", ctypes.c_ubyte: "B", ctypes.c_ushort: "H"}


def _completion_struct() -> tuple[struct.Struct, int]:
    """A Struct reading the completion fields at the ctypes layout's offsets, and its start.

    The format is built from :class:`SgIoHdr`'s own field offsets and types (native byte
    order, explicit pad bytes), so it follows the header's layout on every platform.
    """
    types = {f[0]: f[1] for f in SgIoHdr._fields_}
    start = getattr(SgIoHdr, _COMPLETION_FIELDS[0]).offset
    fmt, at = "=", start
    for name in _COMPLETION_FIELDS:
        field = getattr(SgIoHdr, name)
        if field.offset > at:
            fmt += f"{field.offset - at}x"
        fmt += _STRUCT_CODES[types[name]]
        at = field.offset + field.size
    compiled = struct.Struct(fmt)
    if compiled.size != at - start or start + compiled.size > ctypes.sizeof(SgIoHdr):
        raise AssertionError(f"sg_io_hdr completion format {fmt!r} does not fit the layout")
    return compiled, start


Completion = tuple[int, int, int, int, int, int]
"""A completed header's (pack_id, status, sb_len_wr, host_status, driver_status, resid)."""

COMPLETION, COMPLETION_OFFSET = _completion_struct()
"""``COMPLETION.unpack_from(buf, COMPLETION_OFFSET)`` reads a completed header's
(pack_id, status, sb_len_wr, host_status, driver_status, resid) in one call."""

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

    def readv(self, fd: int, buffers: list[bytearray], /) -> int:
        """``os.readv`` (a completion into a ``HDR_SIZE`` bytearray); raises
        BlockingIOError when nothing is ready."""
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


class Kit:
    """One command's memory the kernel points at: header, CDB, sense, data-in buffer.

    A kit is reused from call to call; a kit whose command timed out is retired (kept
    alive until its late completion is read) and never carries another command.

    Args:
        pack_id: the kit's ``pack_id`` for life, which tells its completions apart. A
            kit carries one command at a time and one given up on is never reused, so
            ids given out once per kit stay unique among the commands the kernel holds.
    """

    __slots__ = (
        "buf",
        "buf_cap",
        "cdb",
        "cdb_addr",
        "clean",
        "done",
        "error",
        "hdr",
        "last_cdb",
        "last_timeout",
        "out",
        "pid",
        "pin",
        "poll_ms",
        "sense",
        "shape",
    )

    def __init__(self, pack_id: int = 0) -> None:
        self.hdr = SgIoHdr()
        self.hdr.pack_id = self.pid = pack_id
        self.clean: Completion = (pack_id, 0, 0, 0, 0, 0)  # this kit's all-zero completion
        self.cdb = (ctypes.c_ubyte * MAX_CDB)()
        self.cdb_addr = ctypes.addressof(self.cdb)
        self.sense = (ctypes.c_ubyte * SENSE_MAX)()
        self.hdr.interface_id = SG_INTERFACE_ID
        self.hdr.cmdp = self.cdb_addr
        self.hdr.sbp = ctypes.addressof(self.sense)
        self.hdr.mx_sb_len = SENSE_MAX
        self.buf: ctypes.Array[ctypes.c_char] | None = None
        self.buf_cap = 0
        self.pin: object = None
        self.done = False
        self.error = 0
        self.last_cdb: bytes | None = None  # None: no CDB loaded yet
        self.last_timeout = -1.0
        self.poll_ms = 1  # the fast path's first poll (ms): the timeout or the watch slice
        # What the header's data fields hold: a data-in length (into ``buf``), 0 for
        # no data, None for anything else (data-out, a caller's buffer, not loaded).
        self.shape: int | None = None
        self.out: Completion = (0, 0, 0, 0, 0, 0)

    def data_buffer(self, n: int) -> int:
        """Address of a preallocated buffer of at least ``n`` bytes."""
        if self.buf is None or self.buf_cap < n:
            self.buf_cap = max(n, 4096)
            self.buf = ctypes.create_string_buffer(self.buf_cap)
        return ctypes.addressof(self.buf)


def timeout_ms(timeout: float) -> int:
    """Seconds to whole milliseconds, rounded up, within the header's 32-bit field."""
    return max(1, min(math.ceil(timeout * 1000), 0xFFFFFFFE))


def prepare_kit(kit: Kit, cdb: bytes, timeout: float, slice_ms: int = 0) -> None:
    """Check and load a new CDB or timeout into the kit's header.

    ``slice_ms``: the longest first poll (the transport's state-watch interval; 0:
    none), so ``kit.poll_ms`` is the fast path's whole poll timeout.
    """
    n = len(cdb)
    if not 1 <= n <= MAX_CDB:
        raise ValueError(f"the sg driver takes CDBs of 1 to {MAX_CDB} bytes, got {n}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    if cdb != kit.last_cdb:
        data = bytes(cdb)
        ctypes.memmove(kit.cdb_addr, data, n)
        kit.hdr.cmd_len = n
        kit.last_cdb = data
    if timeout != kit.last_timeout:
        kit.hdr.timeout = timeout_ms(timeout)
        poll_ms = int(timeout * 1000) + 1
        kit.poll_ms = slice_ms if 0 < slice_ms < poll_ms else poll_ms
        kit.last_timeout = timeout


def out_pointer(data: bytes | bytearray | memoryview) -> tuple[int, object]:
    """The address of ``data``'s bytes and the object(s) to keep alive while in flight."""
    if isinstance(data, bytes):
        p = ctypes.c_char_p(data)
        return ctypes.cast(p, ctypes.c_void_p).value or 0, p
    view = memoryview(data)
    if view.readonly or not view.contiguous:
        copy = bytearray(view)  # the one copy
        view = memoryview(copy)
    view = view.cast("B")
    arr = (ctypes.c_char * len(view)).from_buffer(view)
    return ctypes.addressof(arr), (view, arr)


class _Helper:
    """A daemon thread that runs blocking calls one at a time."""

    def __init__(self, owner: BlockingCalls, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], None], threading.Event] | None]
        self._jobs = queue.SimpleQueue()
        self._owner = owner
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def submit(self, fn: Callable[[], None], done: threading.Event) -> None:
        self._jobs.put((fn, done))

    def stop(self) -> None:
        self._jobs.put(None)

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, done = job
            try:
                fn()
            finally:
                keep = self._owner.give_back(self)  # idle again before the caller wakes
                done.set()
            if not keep:
                return


class BlockingCalls:
    """Runs blocking system calls (a synchronous SG_IO) on reusable helper threads.

    The caller waits for the returned event with its own deadline; a call stuck in the
    kernel keeps only its helper thread, and the next call gets another one.

    Args:
        name: the helper threads' name.
        max_idle: idle helpers kept for reuse.
    """

    def __init__(self, name: str, max_idle: int = 2) -> None:
        self._name = name
        self._max_idle = max_idle
        self._idle: list[_Helper] = []
        self._lock = threading.Lock()
        self._closed = False

    def start(self, fn: Callable[[], None]) -> threading.Event:
        """Run ``fn`` on a helper thread; the event is set when it has returned."""
        done = threading.Event()
        with self._lock:
            helper = self._idle.pop() if self._idle else None
        if helper is None:
            helper = _Helper(self, self._name)
        helper.submit(fn, done)
        return done

    def give_back(self, helper: _Helper) -> bool:
        """Take a helper back after its call; False tells it to end."""
        with self._lock:
            if self._closed or len(self._idle) >= self._max_idle:
                return False
            self._idle.append(helper)
            return True

    def close(self) -> None:
        """End the idle helpers (busy ones end when their call returns)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for helper in idle:
            helper.stop()
