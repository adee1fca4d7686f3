"""Who is behind a path: standard INQUIRY, VPD 83h (and 80h when 83h says nothing).

:func:`identify` asks one path, with INQUIRY only (INQUIRY never reports nor clears a
unit attention, so identifying a path takes nothing from recovery), and returns a
:class:`PathInfo`: the peripheral device type, ALUA support, vendor and product, the
logical-unit designator as a stable text key, and the relative target port and target
port group of the port that answered. Discovery groups paths by
(:attr:`PathInfo.device_type`, :attr:`PathInfo.key`); the ALUA handler uses the port
fields.
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import frozen

from tapepath.errors import DecodeError
from tapepath.scsi.inquiry import Inquiry, StandardInquiry
from tapepath.scsi.vpd import (
    CodeSet,
    Designator,
    DesignatorType,
    DeviceIdentification,
    SupportedVpdPages,
    UnitSerialNumber,
)
from tapepath.transport.base import Response

__all__ = ["IdentifyError", "PathInfo", "designator_key", "identify"]

Send = Callable[[bytes, int], Response]
"""Sends a data-in CDB with an allocation length and returns the response."""

_PREFIX: dict[int, str] = {
    DesignatorType.NAA: "naa",
    DesignatorType.EUI64: "eui",
    DesignatorType.SCSI_NAME_STRING: "name",
    DesignatorType.T10_VENDOR_ID: "t10",
}


class IdentifyError(DecodeError):
    """A path did not answer INQUIRY usably (failed path or refused command)."""


@frozen
class PathInfo:
    """What one path says about its logical unit and port.

    Attributes:
        device_type: the peripheral device type (1 tape, 8 medium changer, ...).
        qualifier: the peripheral qualifier (0: connected).
        tpgs: ALUA support (0 none, 1 implicit, 2 explicit, 3 both).
        vendor: the T10 vendor, stripped.
        product: the product, stripped.
        key: the logical unit's identity key (``naa.<hex>``, ``eui.<hex>``,
            ``name.<text>``, ``t10.<text>``, or ``serial.<vendor>.<product>.<serial>``
            from VPD 80h), or None when the unit names itself nowhere.
        serial: the unit serial number (VPD 80h), when read.
        relative_port: the relative target port identifier, when sent.
        port_group: the target port group, when sent.
    """

    device_type: int
    qualifier: int = 0
    tpgs: int = 0
    vendor: str = ""
    product: str = ""
    key: str | None = None
    serial: str | None = None
    relative_port: int | None = None
    port_group: int | None = None


def designator_key(d: Designator) -> str:
    """A stable text key for a logical-unit designator (``naa.5000e1...``, ...)."""
    prefix = _PREFIX.get(d.designator_type, f"type{int(d.designator_type)}")
    if d.code_set in (CodeSet.ASCII, CodeSet.UTF8):
        text = d.text
        if text:
            return f"{prefix}.{text}"
    return f"{prefix}.{d.identifier.hex()}"


def _read(send: Send, cdb: bytes, n: int, what: str) -> bytes:
    r = send(cdb, n)
    if not r.ok:
        why = r.detail.message if r.detail else f"status {r.status:02X}h"
        raise IdentifyError(f"{what}: {r.outcome.value}: {why}")
    return r.data


def identify(send: Send, *, serial_fallback: bool = True) -> PathInfo:
    """Ask one path who it reaches.

    Args:
        send: sends one data-in CDB (``send(cdb, allocation_length)``).
        serial_fallback: read VPD 80h when 83h names no logical unit.

    Raises:
        IdentifyError: the path failed or refused the standard INQUIRY.
        DecodeError: the device's data is malformed.
    """
    std = StandardInquiry.from_bytes(
        _read(send, Inquiry(allocation_length=96).to_bytes(), 96, "INQUIRY")
    )
    key: str | None = None
    serial: str | None = None
    rel: int | None = None
    tpg: int | None = None
    pages: tuple[int, ...] = ()
    try:
        sup = SupportedVpdPages.from_bytes(
            _read(send, Inquiry(True, 0x00, 255).to_bytes(), 255, "VPD 00h")
        )
        pages = tuple(sup.pages)
    except DecodeError:
        pages = ()
    if 0x83 in pages or not pages:
        try:
            ident = DeviceIdentification.from_bytes(
                _read(send, Inquiry(True, 0x83, 1024).to_bytes(), 1024, "VPD 83h")
            )
        except DecodeError:
            ident = None
        if ident is not None:
            lu = ident.logical_unit_designator()
            key = designator_key(lu) if lu is not None else None
            rel = ident.relative_target_port()
            tpg = ident.target_port_group()
    if serial_fallback and key is None and (0x80 in pages or not pages):
        try:
            sn = UnitSerialNumber.from_bytes(
                _read(send, Inquiry(True, 0x80, 255).to_bytes(), 255, "VPD 80h")
            )
            serial = sn.serial_number
        except DecodeError:
            serial = None
        if serial:
            key = f"serial.{std.vendor}.{std.product}.{serial}"
    return PathInfo(
        device_type=int(std.peripheral_device_type),
        qualifier=std.peripheral_qualifier,
        tpgs=std.tpgs,
        vendor=std.vendor,
        product=std.product,
        key=key,
        serial=serial,
        relative_port=rel,
        port_group=tpg,
    )
