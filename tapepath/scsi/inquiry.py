"""INQUIRY (12h, SPC): the CDB and the standard INQUIRY data.

The VPD pages an INQUIRY with EVPD set returns live in :mod:`tapepath.scsi.vpd`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any, ClassVar

from attrs import Attribute, field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, check_uint, flag_field, need, uint_field
from tapepath.scsi.cdb import check_opcode, check_reserved

__all__ = [
    "Inquiry",
    "PeripheralDeviceType",
    "StandardInquiry",
    "enum_or_int",
]


class PeripheralDeviceType(IntEnum):
    """PERIPHERAL DEVICE TYPE (byte 0 bits 4-0 of INQUIRY and VPD data)."""

    DIRECT_ACCESS = 0x00
    SEQUENTIAL_ACCESS = 0x01
    PRINTER = 0x02
    PROCESSOR = 0x03
    WRITE_ONCE = 0x04
    CD_DVD = 0x05
    SCANNER = 0x06
    OPTICAL_MEMORY = 0x07
    MEDIUM_CHANGER = 0x08
    COMMUNICATIONS = 0x09
    STORAGE_ARRAY_CONTROLLER = 0x0C
    ENCLOSURE_SERVICES = 0x0D
    SIMPLIFIED_DIRECT_ACCESS = 0x0E
    OPTICAL_CARD_READER_WRITER = 0x0F
    BRIDGE_CONTROLLER = 0x10
    OBJECT_BASED_STORAGE = 0x11
    AUTOMATION_DRIVE_INTERFACE = 0x12
    SECURITY_MANAGER = 0x13
    HOST_MANAGED_ZONED_BLOCK = 0x14
    WELL_KNOWN_LOGICAL_UNIT = 0x1E
    UNKNOWN = 0x1F


def enum_or_int(enum: type[IntEnum], value: int) -> int:
    """Return ``enum(value)`` when the enum knows the value, else the plain int."""
    try:
        return enum(value)
    except ValueError:
        return value


def _pdt(value: int) -> int:
    return enum_or_int(PeripheralDeviceType, value)


def _vendor8(value: str | bytes) -> bytes:
    return _pad(value, 8)


def _product16(value: str | bytes) -> bytes:
    return _pad(value, 16)


def _revision4(value: str | bytes) -> bytes:
    return _pad(value, 4)


def _pad(value: str | bytes, size: int) -> bytes:
    raw = value.encode("ascii") if isinstance(value, str) else bytes(value)
    return raw if len(raw) > size else raw.ljust(size, b" ")


def _to_bytes(value: bytes | bytearray | memoryview) -> bytes:
    return bytes(value)


def _int_tuple(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _max_len(size: int) -> Any:
    def _validate(_inst: Any, attr: Attribute[bytes], value: bytes) -> None:
        if len(value) > size:
            raise ValueError(f"{attr.name} is {len(value)} bytes long, at most {size} fit")

    return _validate


def _version_descriptors(
    _inst: Any, attr: Attribute[tuple[int, ...]], value: tuple[int, ...]
) -> None:
    if len(value) > 8:
        raise ValueError(f"{attr.name}: at most 8 version descriptors fit, got {len(value)}")
    for i, v in enumerate(value):
        check_uint(f"{attr.name}[{i}]", v, 16)


def _opt_u8(_inst: Any, attr: Attribute[int | None], value: int | None) -> None:
    if value is not None:
        check_uint(attr.name, value, 8)


@frozen
class Inquiry:
    """The INQUIRY CDB (12h).

    Attributes:
        evpd: ask for the vital product data page ``page_code`` instead of the standard data.
        page_code: the VPD page (must be 0 when ``evpd`` is False).
        allocation_length: how many bytes to return (16 bits).
        control: the CONTROL byte.
    """

    OPCODE: ClassVar[int] = 0x12
    evpd: bool = field(default=False, validator=flag_field)
    page_code: int = field(default=0, validator=uint_field(8))
    allocation_length: int = field(default=96, validator=uint_field(16))
    control: int = field(default=0, validator=uint_field(8))

    def __attrs_post_init__(self) -> None:
        if not self.evpd and self.page_code:
            raise ValueError("page_code must be 0 when evpd is False")

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return bytes(
            (
                self.OPCODE,
                int(self.evpd),
                self.page_code,
                self.allocation_length >> 8,
                self.allocation_length & 0xFF,
                self.control,
            )
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> Inquiry:
        """Parse an INQUIRY CDB (DecodeError on a wrong opcode, length, reserved or CMDDT bits)."""
        check_opcode(cdb, cls.OPCODE, 6, "INQUIRY")
        check_reserved(cdb, "INQUIRY", (1, 0xFE))
        if not cdb[1] & 1 and cdb[2]:
            raise DecodeError("INQUIRY: PAGE CODE set without EVPD")
        return cls(
            evpd=bool(cdb[1] & 1),
            page_code=cdb[2],
            allocation_length=(cdb[3] << 8) | cdb[4],
            control=cdb[5],
        )

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


@frozen
class StandardInquiry:
    """Standard INQUIRY data (SPC-4 table 142).

    Obsolete bits (AERC, TrmTsk, BQUE, MCHNGR, ADDR16, RELADR, WBUS16, SYNC, LINKED) are
    not kept and encode as zero. A response cut short by the allocation length parses: the
    fields past its end take their defaults.

    Attributes:
        peripheral_qualifier: byte 0 bits 7-5.
        peripheral_device_type: byte 0 bits 4-0 (:class:`PeripheralDeviceType` when known).
        rmb: removable medium.
        lu_cong: the logical unit is part of a conglomerate.
        version: the claimed standard (6: SPC-4, 7: SPC-5).
        normaca: NormACA.
        hisup: hierarchical LUN addressing.
        response_data_format: 2 for every current device.
        sccs: embedded storage array controller.
        acc: access controls coordinator.
        tpgs: target port group support (1 implicit ALUA, 2 explicit, 3 both).
        three_pc: third-party copy.
        protect: protection information.
        encserv: embedded enclosure services.
        vs1: vendor specific bit, byte 6 bit 5.
        multip: multi-port device.
        cmdque: command queuing.
        vs2: vendor specific bit, byte 7 bit 0.
        vendor_raw: T10 VENDOR IDENTIFICATION as sent (8 bytes; a str is ASCII-encoded and
            space-padded).
        product_raw: PRODUCT IDENTIFICATION (16 bytes).
        revision_raw: PRODUCT REVISION LEVEL (4 bytes).
        vendor_specific: bytes 36..55 (up to 20 bytes).
        clocking, qas, ius: byte 56 (SPI only).
        version_descriptors: up to eight 16-bit version descriptors (bytes 58..73).
        vendor_specific_tail: the bytes from 96 on.
        additional_length: the ADDITIONAL LENGTH sent (None: the smallest that holds the
            fields); not part of equality.
    """

    peripheral_qualifier: int = field(default=0, validator=uint_field(3))
    peripheral_device_type: int = field(default=0, converter=_pdt, validator=uint_field(5))
    rmb: bool = field(default=False, validator=flag_field)
    lu_cong: bool = field(default=False, validator=flag_field)
    version: int = field(default=6, validator=uint_field(8))
    normaca: bool = field(default=False, validator=flag_field)
    hisup: bool = field(default=False, validator=flag_field)
    response_data_format: int = field(default=2, validator=uint_field(4))
    sccs: bool = field(default=False, validator=flag_field)
    acc: bool = field(default=False, validator=flag_field)
    tpgs: int = field(default=0, validator=uint_field(2))
    three_pc: bool = field(default=False, validator=flag_field)
    protect: bool = field(default=False, validator=flag_field)
    encserv: bool = field(default=False, validator=flag_field)
    vs1: bool = field(default=False, validator=flag_field)
    multip: bool = field(default=False, validator=flag_field)
    cmdque: bool = field(default=False, validator=flag_field)
    vs2: bool = field(default=False, validator=flag_field)
    vendor_raw: bytes = field(default=b"", converter=_vendor8, validator=_max_len(8))
    product_raw: bytes = field(default=b"", converter=_product16, validator=_max_len(16))
    revision_raw: bytes = field(default=b"", converter=_revision4, validator=_max_len(4))
    vendor_specific: bytes = field(default=b"", converter=_to_bytes, validator=_max_len(20))
    clocking: int = field(default=0, validator=uint_field(2))
    qas: bool = field(default=False, validator=flag_field)
    ius: bool = field(default=False, validator=flag_field)
    version_descriptors: tuple[int, ...] = field(
        default=(), converter=_int_tuple, validator=_version_descriptors
    )
    vendor_specific_tail: bytes = field(default=b"", converter=_to_bytes)
    additional_length: int | None = field(default=None, eq=False, validator=_opt_u8)

    def __attrs_post_init__(self) -> None:
        if 96 + len(self.vendor_specific_tail) > 260:
            raise ValueError("vendor_specific_tail: the data cannot pass 260 bytes")
        if self.additional_length is not None and self.additional_length + 5 < self._natural_end():
            raise ValueError(
                f"additional_length={self.additional_length} is too small for the fields "
                f"({self._natural_end() - 5} needed)"
            )

    @property
    def vendor(self) -> str:
        """T10 vendor identification, trailing spaces stripped."""
        return _text(self.vendor_raw)

    @property
    def product(self) -> str:
        """Product identification, trailing spaces stripped."""
        return _text(self.product_raw)

    @property
    def revision(self) -> str:
        """Product revision level, trailing spaces stripped."""
        return _text(self.revision_raw)

    def _natural_end(self) -> int:
        if self.vendor_specific_tail:
            return 96 + len(self.vendor_specific_tail)
        if self.version_descriptors:
            return 58 + 2 * len(self.version_descriptors)
        if self.clocking or self.qas or self.ius:
            return 57
        return 36 + len(self.vendor_specific)

    def to_bytes(self) -> bytes:
        """Encode the data (exactly ``5 + additional_length`` bytes)."""
        end = self._natural_end()
        if self.additional_length is not None:
            end = self.additional_length + 5
        buf = bytearray(max(end, 96 + len(self.vendor_specific_tail)))
        buf[0] = (self.peripheral_qualifier << 5) | int(self.peripheral_device_type)
        buf[1] = (self.rmb << 7) | (self.lu_cong << 6)
        buf[2] = self.version
        buf[3] = (self.normaca << 5) | (self.hisup << 4) | self.response_data_format
        buf[4] = end - 5
        buf[5] = (
            (self.sccs << 7)
            | (self.acc << 6)
            | (self.tpgs << 4)
            | (self.three_pc << 3)
            | int(self.protect)
        )
        buf[6] = (self.encserv << 6) | (self.vs1 << 5) | (self.multip << 4)
        buf[7] = (self.cmdque << 1) | int(self.vs2)
        buf[8:16] = self.vendor_raw
        buf[16:32] = self.product_raw
        buf[32:36] = self.revision_raw
        buf[36 : 36 + len(self.vendor_specific)] = self.vendor_specific
        buf[56] = (self.clocking << 2) | (self.qas << 1) | int(self.ius)
        for i, v in enumerate(self.version_descriptors):
            buf[58 + 2 * i : 60 + 2 * i] = v.to_bytes(2, "big")
        buf[96 : 96 + len(self.vendor_specific_tail)] = self.vendor_specific_tail
        return bytes(buf[:end])

    @classmethod
    def from_bytes(cls, buf: Bytes) -> StandardInquiry:
        """Parse standard INQUIRY data (at least the 5-byte header).

        Raises:
            DecodeError: fewer than 5 bytes.
        """
        need(buf, 5, "standard INQUIRY data")
        end = min(len(buf), buf[4] + 5)
        b = bytes(buf[:end]).ljust(8, b"\0")
        descriptors = [
            int.from_bytes(b[off : off + 2], "big") for off in range(58, min(end, 74) - 1, 2)
        ]
        while descriptors and descriptors[-1] == 0:
            descriptors.pop()
        byte56 = b[56] if end > 56 else 0
        return cls(
            peripheral_qualifier=b[0] >> 5,
            peripheral_device_type=b[0] & 0x1F,
            rmb=bool(b[1] & 0x80),
            lu_cong=bool(b[1] & 0x40),
            version=b[2],
            normaca=bool(b[3] & 0x20),
            hisup=bool(b[3] & 0x10),
            response_data_format=b[3] & 0x0F,
            sccs=bool(b[5] & 0x80),
            acc=bool(b[5] & 0x40),
            tpgs=(b[5] >> 4) & 3,
            three_pc=bool(b[5] & 0x08),
            protect=bool(b[5] & 0x01),
            encserv=bool(b[6] & 0x40),
            vs1=bool(b[6] & 0x20),
            multip=bool(b[6] & 0x10),
            cmdque=bool(b[7] & 0x02),
            vs2=bool(b[7] & 0x01),
            vendor_raw=b[8:16],
            product_raw=b[16:32],
            revision_raw=b[32:36],
            vendor_specific=b[36:56].rstrip(b"\0") if end > 56 else b[36:56],
            clocking=(byte56 >> 2) & 3,
            qas=bool(byte56 & 2),
            ius=bool(byte56 & 1),
            version_descriptors=tuple(descriptors),
            vendor_specific_tail=b[96:],
            additional_length=buf[4] if buf[4] >= 31 else None,
        )


def _text(raw: bytes) -> str:
    return raw.decode("ascii", errors="replace").rstrip(" \0")
