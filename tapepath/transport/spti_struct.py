"""Windows SCSI pass-through structures, IOCTL codes, error codes (``ntddscsi.h``), and
the kernel32 calls the transport makes (the seam tests replace).

The structures are built from fixed-width ctypes types, not the host's ``c_ulong`` or
``c_void_p``, so both the x64 and the x86 layouts can be built (and checked against the
mingw-w64 headers) on any platform. :data:`SPTD` and :data:`SPTD_WITH_SENSE` are the
layout of the running interpreter (a 32-bit Python on 64-bit Windows uses the 32-bit
layout, which WOW64 translates).
"""

from __future__ import annotations

import ctypes
import enum
from typing import Protocol

from attrs import frozen

from tapepath.errors import TransportUnavailableError
from tapepath.transport.base import Outcome

__all__ = [
    "ERROR_OUTCOME",
    "FILE_SHARE_READ",
    "FILE_SHARE_WRITE",
    "GENERIC_READ",
    "GENERIC_WRITE",
    "INVALID_HANDLE",
    "IOCTL_SCSI_GET_ADDRESS",
    "IOCTL_SCSI_GET_CAPABILITIES",
    "IOCTL_SCSI_PASS_THROUGH_DIRECT",
    "OPEN_EXISTING",
    "SENSE_MAX",
    "SPTD",
    "SPTD_WITH_SENSE",
    "ErrorRule",
    "IoScsiCapabilities",
    "Kernel32",
    "ScsiAddressStruct",
    "ScsiPassThroughDirect32",
    "ScsiPassThroughDirect64",
    "SptdWithSense32",
    "SptdWithSense64",
    "WinError",
    "WinKernel32",
    "ctl_code",
]


def ctl_code(device_type: int, function: int, method: int, access: int) -> int:
    """The ``CTL_CODE`` macro of ``winioctl.h``."""
    return (device_type << 16) | (access << 14) | (function << 2) | method


FILE_DEVICE_CONTROLLER = 0x4
METHOD_BUFFERED = 0
FILE_ANY_ACCESS = 0
FILE_READ_WRITE_ACCESS = 0x3

IOCTL_SCSI_PASS_THROUGH_DIRECT = ctl_code(
    FILE_DEVICE_CONTROLLER, 0x405, METHOD_BUFFERED, FILE_READ_WRITE_ACCESS
)
IOCTL_SCSI_GET_CAPABILITIES = ctl_code(
    FILE_DEVICE_CONTROLLER, 0x404, METHOD_BUFFERED, FILE_ANY_ACCESS
)
IOCTL_SCSI_GET_ADDRESS = ctl_code(FILE_DEVICE_CONTROLLER, 0x406, METHOD_BUFFERED, FILE_ANY_ACCESS)

SCSI_IOCTL_DATA_OUT = 0
SCSI_IOCTL_DATA_IN = 1
SCSI_IOCTL_DATA_UNSPECIFIED = 2

SENSE_MAX = 252
"""Sense bytes reserved after the structure (SenseInfoLength is one byte)."""

_U8, _U16, _U32, _U64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64


def _sptd_fields(pointer: type[ctypes.c_uint32] | type[ctypes.c_uint64]) -> list[tuple[str, type]]:
    return [
        ("Length", _U16),
        ("ScsiStatus", _U8),
        ("PathId", _U8),
        ("TargetId", _U8),
        ("Lun", _U8),
        ("CdbLength", _U8),
        ("SenseInfoLength", _U8),
        ("DataIn", _U8),
        ("DataTransferLength", _U32),
        ("TimeOutValue", _U32),
        ("DataBuffer", pointer),
        ("SenseInfoOffset", _U32),
        ("Cdb", _U8 * 16),
    ]


class ScsiPassThroughDirect64(ctypes.Structure):
    """``SCSI_PASS_THROUGH_DIRECT`` as 64-bit Windows lays it out."""

    _fields_ = _sptd_fields(_U64)


class ScsiPassThroughDirect32(ctypes.Structure):
    """``SCSI_PASS_THROUGH_DIRECT`` as 32-bit Windows lays it out."""

    _fields_ = _sptd_fields(_U32)


class SptdWithSense64(ctypes.Structure):
    """The 64-bit pass-through structure followed by its sense buffer, in one block."""

    _fields_ = [
        ("sptd", ScsiPassThroughDirect64),
        ("Filler", _U32),
        ("SenseBuf", _U8 * SENSE_MAX),
    ]


class SptdWithSense32(ctypes.Structure):
    """The 32-bit pass-through structure followed by its sense buffer, in one block."""

    _fields_ = [
        ("sptd", ScsiPassThroughDirect32),
        ("Filler", _U32),
        ("SenseBuf", _U8 * SENSE_MAX),
    ]


class IoScsiCapabilities(ctypes.Structure):
    """``IO_SCSI_CAPABILITIES`` (IOCTL_SCSI_GET_CAPABILITIES); same on x86 and x64."""

    _fields_ = [
        ("Length", _U32),
        ("MaximumTransferLength", _U32),
        ("MaximumPhysicalPages", _U32),
        ("SupportedAsynchronousEvents", _U32),
        ("AlignmentMask", _U32),
        ("TaggedQueuing", _U8),
        ("AdapterScansDown", _U8),
        ("AdapterUsesPio", _U8),
    ]


class ScsiAddressStruct(ctypes.Structure):
    """``SCSI_ADDRESS`` (IOCTL_SCSI_GET_ADDRESS)."""

    _fields_ = [
        ("Length", _U32),
        ("PortNumber", _U8),
        ("PathId", _U8),
        ("TargetId", _U8),
        ("Lun", _U8),
    ]


_IS_64 = ctypes.sizeof(ctypes.c_void_p) == 8
SPTD: type[ctypes.Structure] = ScsiPassThroughDirect64 if _IS_64 else ScsiPassThroughDirect32
"""The pass-through structure of the running interpreter."""
SPTD_WITH_SENSE: type[ctypes.Structure] = SptdWithSense64 if _IS_64 else SptdWithSense32
"""The structure-plus-sense block of the running interpreter."""


class WinError(enum.IntEnum):
    """The Windows error codes the transport tells apart."""

    ERROR_INVALID_FUNCTION = 1
    ERROR_FILE_NOT_FOUND = 2
    ERROR_PATH_NOT_FOUND = 3
    ERROR_ACCESS_DENIED = 5
    ERROR_INVALID_HANDLE = 6
    ERROR_NOT_ENOUGH_MEMORY = 8
    ERROR_NOT_READY = 21
    ERROR_GEN_FAILURE = 31
    ERROR_SHARING_VIOLATION = 32
    ERROR_NOT_SUPPORTED = 50
    ERROR_DEV_NOT_EXIST = 55
    ERROR_INVALID_PARAMETER = 87
    ERROR_SEM_TIMEOUT = 121
    ERROR_BUSY = 170
    ERROR_OPERATION_ABORTED = 995
    ERROR_IO_DEVICE = 1117
    ERROR_BUS_RESET = 1111
    ERROR_DEVICE_NOT_CONNECTED = 1167
    ERROR_NO_SYSTEM_RESOURCES = 1450
    ERROR_TIMEOUT = 1460
    ERROR_INVALID_USER_BUFFER = 1784
    ERROR_DEVICE_REMOVED = 1617


@frozen
class ErrorRule:
    """How a failed DeviceIoControl's error code is reported.

    Attributes:
        outcome: the transport outcome.
        maybe_executed: whether the command may have reached the device.
        retry: the condition is passing; the same path may be retried.
    """

    outcome: Outcome
    maybe_executed: bool = True
    retry: bool = False


ERROR_OUTCOME: dict[int, ErrorRule] = {
    WinError.ERROR_DEVICE_NOT_CONNECTED: ErrorRule(Outcome.NO_CONNECT),
    WinError.ERROR_NOT_READY: ErrorRule(Outcome.NO_CONNECT),
    WinError.ERROR_SEM_TIMEOUT: ErrorRule(Outcome.TIMED_OUT),
    WinError.ERROR_TIMEOUT: ErrorRule(Outcome.TIMED_OUT),
    WinError.ERROR_IO_DEVICE: ErrorRule(Outcome.LINK_LOST),
    WinError.ERROR_GEN_FAILURE: ErrorRule(Outcome.LINK_LOST),
    WinError.ERROR_BUS_RESET: ErrorRule(Outcome.ABORTED),
    WinError.ERROR_OPERATION_ABORTED: ErrorRule(Outcome.ABORTED),
    WinError.ERROR_FILE_NOT_FOUND: ErrorRule(Outcome.DEVICE_GONE),
    WinError.ERROR_PATH_NOT_FOUND: ErrorRule(Outcome.DEVICE_GONE),
    WinError.ERROR_DEV_NOT_EXIST: ErrorRule(Outcome.DEVICE_GONE),
    WinError.ERROR_DEVICE_REMOVED: ErrorRule(Outcome.DEVICE_GONE),
    WinError.ERROR_INVALID_HANDLE: ErrorRule(Outcome.DEVICE_GONE),
    WinError.ERROR_BUSY: ErrorRule(Outcome.ABORTED, maybe_executed=False, retry=True),
    WinError.ERROR_NOT_ENOUGH_MEMORY: ErrorRule(Outcome.ABORTED, maybe_executed=False, retry=True),
    WinError.ERROR_NO_SYSTEM_RESOURCES: ErrorRule(
        Outcome.ABORTED, maybe_executed=False, retry=True
    ),
    WinError.ERROR_ACCESS_DENIED: ErrorRule(Outcome.NO_CONNECT, maybe_executed=False),
    WinError.ERROR_INVALID_FUNCTION: ErrorRule(Outcome.ABORTED, maybe_executed=False),
    WinError.ERROR_NOT_SUPPORTED: ErrorRule(Outcome.ABORTED, maybe_executed=False),
    WinError.ERROR_INVALID_PARAMETER: ErrorRule(Outcome.ABORTED, maybe_executed=False),
    WinError.ERROR_INVALID_USER_BUFFER: ErrorRule(Outcome.ABORTED, maybe_executed=False),
}
"""GetLastError() after a failed pass-through to an outcome; unknown codes are LINK_LOST."""

UNKNOWN_ERROR = ErrorRule(Outcome.LINK_LOST)

GENERIC_READ = 0x80000000
GENERIC_WRITE = 0x40000000
FILE_SHARE_READ = 0x1
FILE_SHARE_WRITE = 0x2
OPEN_EXISTING = 3
INVALID_HANDLE = -1


class Kernel32(Protocol):
    """The kernel32 calls the transport makes (addresses are plain ints)."""

    def CreateFileW(  # noqa: N802, PLR0917  (the Win32 names and signatures)
        self,
        name: str,
        access: int,
        share: int,
        security: None,
        disposition: int,
        flags: int,
        template: None,
    ) -> int:
        """Open a device; INVALID_HANDLE (-1) on failure."""
        ...

    def DeviceIoControl(  # noqa: N802, PLR0917
        self,
        handle: int,
        code: int,
        in_buf: int,
        in_size: int,
        out_buf: int,
        out_size: int,
        returned: int,
        overlapped: None,
    ) -> int:
        """Run an IOCTL; nonzero on success."""
        ...

    def CloseHandle(self, handle: int) -> int:  # noqa: N802
        """Close a handle."""
        ...

    def GetLastError(self) -> int:  # noqa: N802
        """The calling thread's last error code."""
        ...


class WinKernel32:
    """The real kernel32 through ctypes (Windows only)."""

    def __init__(self) -> None:
        loader = getattr(ctypes, "WinDLL", None)
        if loader is None:
            raise TransportUnavailableError("spti: transport needs Windows (no ctypes.WinDLL)")
        k = loader("kernel32", use_last_error=True)
        vp, u32 = ctypes.c_void_p, ctypes.c_uint32
        self._create = k.CreateFileW
        self._create.argtypes = [ctypes.c_wchar_p, u32, u32, vp, u32, u32, vp]
        self._create.restype = vp
        self._ioctl = k.DeviceIoControl
        self._ioctl.argtypes = [vp, u32, vp, u32, vp, u32, vp, vp]
        self._ioctl.restype = ctypes.c_int
        self._close = k.CloseHandle
        self._close.argtypes = [vp]
        self._close.restype = ctypes.c_int
        self._invalid = (1 << (8 * ctypes.sizeof(vp))) - 1

    def CreateFileW(  # noqa: N802, PLR0917
        self,
        name: str,
        access: int,
        share: int,
        security: None,
        disposition: int,
        flags: int,
        template: None,
    ) -> int:
        """CreateFileW; INVALID_HANDLE (-1) on failure."""
        h = self._create(name, access, share, security, disposition, flags, template)
        return INVALID_HANDLE if h is None or h == self._invalid else int(h)

    def DeviceIoControl(  # noqa: N802, PLR0917
        self,
        handle: int,
        code: int,
        in_buf: int,
        in_size: int,
        out_buf: int,
        out_size: int,
        returned: int,
        overlapped: None,
    ) -> int:
        """DeviceIoControl."""
        return int(
            self._ioctl(handle, code, in_buf, in_size, out_buf, out_size, returned, overlapped)
        )

    def CloseHandle(self, handle: int) -> int:  # noqa: N802
        """CloseHandle."""
        return int(self._close(handle))

    def GetLastError(self) -> int:  # noqa: N802
        """The last error of the calling thread's most recent kernel32 call."""
        return int(getattr(ctypes, "get_last_error")())  # noqa: B009  (Windows only)
