r"""Enumerate Windows tape drives and medium changers (``\\.\TapeN``, ``\\.\ChangerN``).

The class drivers name their devices with consecutive numbers, but numbers can have gaps
after a device is removed, so every N in 0..63 is tried. A device that exists but cannot
be opened for pass-through (access denied, in use) is still listed, with ``error`` set.
With ``inquiry=True`` each openable device is asked INQUIRY, VPD 80h and VPD 83h.
"""

from __future__ import annotations

import structlog
from attrs import evolve, frozen

from tapepath.errors import DecodeError, TapepathError
from tapepath.scsi.inquiry import Inquiry, StandardInquiry
from tapepath.scsi.vpd import DeviceIdentification, UnitSerialNumber
from tapepath.transport.spti import SptiAddress, SptiTransport
from tapepath.transport.spti_struct import (
    FILE_SHARE_READ,
    FILE_SHARE_WRITE,
    INVALID_HANDLE,
    IOCTL_SCSI_GET_ADDRESS,
    OPEN_EXISTING,
    Kernel32,
    ScsiAddressStruct,
    WinError,
    WinKernel32,
)

__all__ = ["SptiDevice", "list_spti_devices"]

log = structlog.get_logger("tapepath.transport.spti")

MAX_INDEX = 64


@frozen
class SptiDevice:
    r"""One Windows tape or changer device.

    Attributes:
        name: the Win32 name (``\\.\Tape0``).
        kind: ``"tape"`` or ``"changer"``.
        address: port:path:target:lun from IOCTL_SCSI_GET_ADDRESS, when it answered.
        error: the Windows error that kept the device from being opened for
            pass-through (None when it could be).
        vendor: INQUIRY vendor (with ``inquiry=True``).
        product: INQUIRY product.
        revision: INQUIRY revision.
        serial: the unit serial number (VPD 80h).
        identification: VPD 83h, parsed.
    """

    name: str
    kind: str
    address: SptiAddress | None = None
    error: int | None = None
    vendor: str | None = None
    product: str | None = None
    revision: str | None = None
    serial: str | None = None
    identification: DeviceIdentification | None = None

    @property
    def url(self) -> str:
        """The ``spti:`` URL."""
        return "spti://./" + self.name.removeprefix("\\\\.\\")


def _probe(k: Kernel32, name: str, kind: str) -> SptiDevice | None:
    # Access 0: enough for IOCTL_SCSI_GET_ADDRESS (FILE_ANY_ACCESS), works without admin.
    h = k.CreateFileW(name, 0, FILE_SHARE_READ | FILE_SHARE_WRITE, None, OPEN_EXISTING, 0, None)
    if h == INVALID_HANDLE:
        err = k.GetLastError()
        if err in (WinError.ERROR_FILE_NOT_FOUND, WinError.ERROR_PATH_NOT_FOUND):
            return None
        return SptiDevice(name, kind, error=err)
    try:
        import ctypes  # noqa: PLC0415  (only when probing)

        addr = ScsiAddressStruct()
        returned = ctypes.c_uint32(0)
        ok = k.DeviceIoControl(
            h,
            IOCTL_SCSI_GET_ADDRESS,
            0,
            0,
            ctypes.addressof(addr),
            ctypes.sizeof(addr),
            ctypes.addressof(returned),
            None,
        )
        address = (
            SptiAddress(int(addr.PortNumber), int(addr.PathId), int(addr.TargetId), int(addr.Lun))
            if ok
            else None
        )
    finally:
        k.CloseHandle(h)
    return SptiDevice(name, kind, address=address)


def _text(raw: bytes) -> str:
    return raw.decode("ascii", errors="replace").strip(" \0")


def _ask(dev: SptiDevice, k: Kernel32, timeout: float) -> SptiDevice:
    try:
        t = SptiTransport(dev.name, kernel32=k)
    except TapepathError as exc:
        code = k.GetLastError()
        log.debug("spti_inquiry_skipped", device=dev.name, error=str(exc), win_error=code)
        return evolve(dev, error=code or None)
    changes: dict[str, object] = {}
    try:
        for evpd, page in ((False, 0), (True, 0x80), (True, 0x83)):
            cdb = Inquiry(evpd=evpd, page_code=page, allocation_length=255)
            r = t.execute(cdb.to_bytes(), data_in_len=255, timeout=timeout)
            if not r.ok or not r.data:
                continue
            try:
                if not evpd:
                    std = StandardInquiry.from_bytes(r.data)
                    changes.update(
                        vendor=_text(std.vendor_raw),
                        product=_text(std.product_raw),
                        revision=_text(std.revision_raw),
                    )
                elif page == 0x80:
                    changes["serial"] = UnitSerialNumber.from_bytes(r.data).serial_number
                else:
                    changes["identification"] = DeviceIdentification.from_bytes(r.data)
            except (DecodeError, ValueError):
                continue
    finally:
        t.close()
    return evolve(dev, **changes) if changes else dev  # type: ignore[arg-type]


def list_spti_devices(
    kernel32: Kernel32 | None = None,
    *,
    inquiry: bool = False,
    max_index: int = MAX_INDEX,
    timeout: float = 10.0,
) -> list[SptiDevice]:
    r"""List the tape drives and changers Windows knows (``\\.\Tape0..63``, ``\\.\Changer0..63``).

    Args:
        kernel32: the kernel32 calls (the real one by default).
        inquiry: ask each openable device INQUIRY, VPD 80h and 83h.
        max_index: how many numbers to try per kind.
        timeout: seconds per INQUIRY.

    Raises:
        TransportUnavailableError: not on Windows and no kernel32 given.
    """
    k: Kernel32 = kernel32 if kernel32 is not None else WinKernel32()
    found = []
    for kind, stem in (("tape", "Tape"), ("changer", "Changer")):
        for n in range(max_index):
            dev = _probe(k, f"\\\\.\\{stem}{n}", kind)
            if dev is None:
                continue
            if inquiry and dev.error is None:
                dev = _ask(dev, k, timeout)
            found.append(dev)
    return found
