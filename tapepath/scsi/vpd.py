"""Vital product data pages: 00h (supported pages), 80h (serial number), 83h (identification).

Every page starts with the same 4-byte header (peripheral qualifier and device type, page
code, 16-bit page length). :func:`parse_vpd` picks the class by page code and returns a
:class:`VpdPage` for pages it does not decode.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from enum import IntEnum
from typing import Any, ClassVar

from attrs import Attribute, field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, check_uint, flag_field, items_of, need, u16, uint_field
from tapepath.scsi.inquiry import PeripheralDeviceType, enum_or_int

__all__ = [
    "Association",
    "CodeSet",
    "Designator",
    "DesignatorType",
    "DeviceIdentification",
    "ProtocolIdentifier",
    "SupportedVpdPages",
    "UnitSerialNumber",
    "VpdPage",
    "parse_vpd",
]


class CodeSet(IntEnum):
    """CODE SET of a designation descriptor."""

    BINARY = 1
    ASCII = 2
    UTF8 = 3


class Association(IntEnum):
    """ASSOCIATION: what a designator names."""

    LOGICAL_UNIT = 0
    TARGET_PORT = 1
    TARGET_DEVICE = 2


class DesignatorType(IntEnum):
    """DESIGNATOR TYPE (SPC-4 table 461)."""

    VENDOR_SPECIFIC = 0x0
    T10_VENDOR_ID = 0x1
    EUI64 = 0x2
    NAA = 0x3
    RELATIVE_TARGET_PORT = 0x4
    TARGET_PORT_GROUP = 0x5
    LOGICAL_UNIT_GROUP = 0x6
    MD5_LOGICAL_UNIT = 0x7
    SCSI_NAME_STRING = 0x8
    PROTOCOL_SPECIFIC_PORT = 0x9
    UUID = 0xA


class ProtocolIdentifier(IntEnum):
    """PROTOCOL IDENTIFIER (SPC-4 table 362)."""

    FCP = 0x0
    SPI = 0x1
    SSA = 0x2
    SBP = 0x3
    SRP = 0x4
    ISCSI = 0x5
    SAS = 0x6
    ADT = 0x7
    ATA = 0x8
    UAS = 0x9
    SOP = 0xA
    PCIE = 0xB
    NONE = 0xF


def _header(page: VpdPage | SupportedVpdPages | UnitSerialNumber | DeviceIdentification) -> int:
    return (page.peripheral_qualifier << 5) | int(page.peripheral_device_type)


def _page(buf: Bytes, code: int | None, what: str) -> tuple[int, int, int, bytes]:
    """Check a VPD header; return (qualifier, device type, page code, payload)."""
    need(buf, 4, what)
    if code is not None and buf[1] != code:
        raise DecodeError(f"{what}: page code {code:02X}h expected, got {buf[1]:02X}h")
    length = u16(buf, 2)
    if 4 + length > len(buf):
        raise DecodeError(
            f"{what}: page length {length} runs past the {len(buf)} bytes received "
            f"(re-issue INQUIRY with an allocation length of at least {4 + length})"
        )
    return buf[0] >> 5, buf[0] & 0x1F, buf[1], bytes(buf[4 : 4 + length])


def _encode_page(head: int, code: int, payload: bytes) -> bytes:
    if len(payload) > 0xFFFF:
        raise ValueError(f"VPD page {code:02X}h: {len(payload)} bytes do not fit in a page")
    return bytes((head, code)) + len(payload).to_bytes(2, "big") + payload


def _pdt(value: int) -> int:
    return enum_or_int(PeripheralDeviceType, value)


def _int_tuple(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _ascii_bytes(value: str | bytes) -> bytes:
    return value.encode("ascii") if isinstance(value, str) else bytes(value)


def _byte_tuple(_inst: Any, attr: Attribute[tuple[int, ...]], value: tuple[int, ...]) -> None:
    for i, v in enumerate(value):
        check_uint(f"{attr.name}[{i}]", v, 8)


@frozen
class VpdPage:
    """A VPD page tapepath does not decode: header fields and the raw payload."""

    page_code: int = field(validator=uint_field(8))
    data: bytes = field(default=b"", converter=bytes)
    peripheral_qualifier: int = field(default=0, validator=uint_field(3))
    peripheral_device_type: int = field(default=0, converter=_pdt, validator=uint_field(5))

    def to_bytes(self) -> bytes:
        """Encode the page."""
        return _encode_page(_header(self), self.page_code, self.data)

    @classmethod
    def from_bytes(cls, buf: Bytes) -> VpdPage:
        """Parse any VPD page into header fields and payload."""
        pq, pdt, code, payload = _page(buf, None, "VPD page")
        return cls(code, payload, pq, pdt)


@frozen
class SupportedVpdPages:
    """Supported VPD pages (00h): the page codes the device answers."""

    PAGE_CODE: ClassVar[int] = 0x00
    pages: tuple[int, ...] = field(
        default=(0x00, 0x80, 0x83), converter=_int_tuple, validator=_byte_tuple
    )
    peripheral_qualifier: int = field(default=0, validator=uint_field(3))
    peripheral_device_type: int = field(default=0, converter=_pdt, validator=uint_field(5))

    def to_bytes(self) -> bytes:
        """Encode the page."""
        return _encode_page(_header(self), self.PAGE_CODE, bytes(self.pages))

    @classmethod
    def from_bytes(cls, buf: Bytes) -> SupportedVpdPages:
        """Parse page 00h."""
        pq, pdt, _, payload = _page(buf, cls.PAGE_CODE, "supported VPD pages")
        return cls(tuple(payload), pq, pdt)


@frozen
class UnitSerialNumber:
    """Unit serial number (80h).

    Attributes:
        serial_raw: the PRODUCT SERIAL NUMBER field as sent (a str is ASCII-encoded).
    """

    PAGE_CODE: ClassVar[int] = 0x80
    serial_raw: bytes = field(default=b"", converter=_ascii_bytes)
    peripheral_qualifier: int = field(default=0, validator=uint_field(3))
    peripheral_device_type: int = field(default=0, converter=_pdt, validator=uint_field(5))

    @property
    def serial_number(self) -> str:
        """The serial number with leading and trailing spaces (and NULs) stripped."""
        return self.serial_raw.decode("ascii", errors="replace").strip(" \0")

    def to_bytes(self) -> bytes:
        """Encode the page."""
        return _encode_page(_header(self), self.PAGE_CODE, self.serial_raw)

    @classmethod
    def from_bytes(cls, buf: Bytes) -> UnitSerialNumber:
        """Parse page 80h."""
        pq, pdt, _, payload = _page(buf, cls.PAGE_CODE, "unit serial number")
        return cls(payload, pq, pdt)


def _designator_type(value: int) -> int:
    return enum_or_int(DesignatorType, value)


def _code_set(value: int) -> int:
    return enum_or_int(CodeSet, value)


def _association(value: int) -> int:
    return enum_or_int(Association, value)


def _protocol(value: int) -> int:
    return enum_or_int(ProtocolIdentifier, value)


def _designator_tuple(value: Iterable[Designator]) -> tuple[Designator, ...]:
    return tuple(value)


def _identifier(_inst: Any, attr: Attribute[bytes], value: bytes) -> None:
    if len(value) > 255:
        raise ValueError(f"{attr.name} is {len(value)} bytes long, at most 255 fit")


@frozen
class Designator:
    """One designation descriptor of the device identification page.

    Attributes:
        designator_type: :class:`DesignatorType` (4 bits).
        identifier: the DESIGNATOR bytes as sent.
        code_set: :class:`CodeSet` (4 bits).
        association: :class:`Association` (2 bits).
        protocol_identifier: :class:`ProtocolIdentifier` (4 bits), meaningful when ``piv``.
        piv: the protocol identifier is valid.
    """

    designator_type: int = field(converter=_designator_type, validator=uint_field(4))
    identifier: bytes = field(converter=bytes, validator=_identifier)
    code_set: int = field(default=1, converter=_code_set, validator=uint_field(4))
    association: int = field(default=0, converter=_association, validator=uint_field(2))
    protocol_identifier: int = field(default=0, converter=_protocol, validator=uint_field(4))
    piv: bool = field(default=False, validator=flag_field)

    def to_bytes(self) -> bytes:
        """Encode the descriptor (4-byte header and identifier)."""
        return (
            bytes(
                (
                    (int(self.protocol_identifier) << 4) | int(self.code_set),
                    (self.piv << 7) | (int(self.association) << 4) | int(self.designator_type),
                    0,
                    len(self.identifier),
                )
            )
            + self.identifier
        )

    @classmethod
    def parse(cls, buf: Bytes, offset: int = 0) -> tuple[Designator, int]:
        """Parse one descriptor at ``offset``; return it and the offset after it."""
        need(buf, offset + 4, "designation descriptor")
        length = buf[offset + 3]
        end = offset + 4 + length
        if end > len(buf):
            raise DecodeError(
                f"designation descriptor at {offset}: length {length} runs past the page"
            )
        b0, b1 = buf[offset], buf[offset + 1]
        return (
            cls(
                designator_type=b1 & 0x0F,
                identifier=bytes(buf[offset + 4 : end]),
                code_set=b0 & 0x0F,
                association=(b1 >> 4) & 3,
                protocol_identifier=b0 >> 4,
                piv=bool(b1 & 0x80),
            ),
            end,
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> Designator:
        """Parse exactly one descriptor."""
        result, end = cls.parse(buf)
        if end != len(buf):
            raise DecodeError(f"designation descriptor: {len(buf) - end} bytes after it")
        return result

    # -- builders for common designators -------------------------------------------------

    @classmethod
    def of_relative_target_port(cls, port: int, protocol: int | None = None) -> Designator:
        """A relative target port designator (target port association).

        Args:
            port: the relative target port identifier (16 bits, 0 is reserved but accepted).
            protocol: a protocol identifier to mark valid (PIV), or None.
        """
        check_uint("port", port, 16)
        return cls(
            DesignatorType.RELATIVE_TARGET_PORT,
            b"\0\0" + port.to_bytes(2, "big"),
            CodeSet.BINARY,
            Association.TARGET_PORT,
            protocol or 0,
            protocol is not None,
        )

    @classmethod
    def of_target_port_group(cls, group: int) -> Designator:
        """A target port group designator (target port association)."""
        check_uint("group", group, 16)
        return cls(
            DesignatorType.TARGET_PORT_GROUP,
            b"\0\0" + group.to_bytes(2, "big"),
            CodeSet.BINARY,
            Association.TARGET_PORT,
        )

    @classmethod
    def of_scsi_name(
        cls,
        name: str,
        association: int = Association.TARGET_DEVICE,
        protocol: int | None = ProtocolIdentifier.ISCSI,
    ) -> Designator:
        """A SCSI name string designator: UTF-8, NUL-terminated, padded to a multiple of 4."""
        raw = name.encode("utf-8") + b"\0"
        raw += b"\0" * (-len(raw) % 4)
        return cls(
            DesignatorType.SCSI_NAME_STRING,
            raw,
            CodeSet.UTF8,
            association,
            protocol or 0,
            protocol is not None,
        )

    # -- decoded views ------------------------------------------------------------------

    @property
    def naa(self) -> int | None:
        """The NAA field (2, 3, 5 or 6) of an NAA designator, else None."""
        if self.designator_type != DesignatorType.NAA or not self.identifier:
            return None
        return self.identifier[0] >> 4

    @property
    def number(self) -> int | None:
        """The 16-bit value of a relative target port, target port group or LU group."""
        if self.designator_type not in (
            DesignatorType.RELATIVE_TARGET_PORT,
            DesignatorType.TARGET_PORT_GROUP,
            DesignatorType.LOGICAL_UNIT_GROUP,
        ):
            return None
        if len(self.identifier) != 4:
            raise DecodeError(
                f"designator type {self.designator_type}: 4 bytes expected, "
                f"got {len(self.identifier)}"
            )
        return u16(self.identifier, 2)

    @property
    def text(self) -> str | None:
        """The identifier as text for ASCII/UTF-8 code sets (NULs stripped), else None."""
        if self.code_set not in (CodeSet.ASCII, CodeSet.UTF8):
            return None
        raw = self.identifier.split(b"\0", 1)[0]
        return raw.decode("utf-8", errors="replace").rstrip(" ")

    @property
    def t10_vendor(self) -> str | None:
        """The 8-byte T10 vendor id of a T10 vendor ID designator (stripped), else None."""
        if self.designator_type != DesignatorType.T10_VENDOR_ID:
            return None
        return self.identifier[:8].decode("ascii", errors="replace").rstrip(" ")

    @property
    def uuid(self) -> uuid.UUID | None:
        """The UUID of a UUID designator, else None (DecodeError if malformed)."""
        if self.designator_type != DesignatorType.UUID:
            return None
        if len(self.identifier) != 18 or self.identifier[0] >> 4 != 1:
            raise DecodeError("UUID designator: 18 bytes with UUID TYPE 1 expected")
        return uuid.UUID(bytes=self.identifier[2:])

    def __str__(self) -> str:
        """A short readable form: the type and the value."""
        name = getattr(self.designator_type, "name", str(self.designator_type))
        value = self.text
        if value is None:
            value = "0x" + self.identifier.hex()
        return f"{name}:{value}"


# Preference among logical-unit designators, most stable first.
_LU_PREFERENCE = (
    DesignatorType.NAA,
    DesignatorType.EUI64,
    DesignatorType.SCSI_NAME_STRING,
    DesignatorType.T10_VENDOR_ID,
)


@frozen
class DeviceIdentification:
    """Device identification (83h): the list of designators."""

    PAGE_CODE: ClassVar[int] = 0x83
    designators: tuple[Designator, ...] = field(
        default=(), converter=_designator_tuple, validator=items_of(Designator)
    )
    peripheral_qualifier: int = field(default=0, validator=uint_field(3))
    peripheral_device_type: int = field(default=0, converter=_pdt, validator=uint_field(5))

    def to_bytes(self) -> bytes:
        """Encode the page."""
        payload = b"".join(d.to_bytes() for d in self.designators)
        return _encode_page(_header(self), self.PAGE_CODE, payload)

    @classmethod
    def from_bytes(cls, buf: Bytes) -> DeviceIdentification:
        """Parse page 83h."""
        pq, pdt, _, payload = _page(buf, cls.PAGE_CODE, "device identification")
        found = []
        offset = 0
        while offset < len(payload):
            d, offset = Designator.parse(payload, offset)
            found.append(d)
        return cls(tuple(found), pq, pdt)

    def find(self, designator_type: int, association: int | None = None) -> list[Designator]:
        """The designators of a type (and association, when given), in page order."""
        return [
            d
            for d in self.designators
            if d.designator_type == designator_type
            and (association is None or d.association == association)
        ]

    def logical_unit_designator(self) -> Designator | None:
        """The logical unit's best designator: NAA > EUI-64 > SCSI name > T10 vendor ID.

        Among NAA designators the longer (registered extended, NAA 6) wins.
        """
        for kind in _LU_PREFERENCE:
            found = self.find(kind, Association.LOGICAL_UNIT)
            if found:
                return max(found, key=lambda d: len(d.identifier))
        return None

    def relative_target_port(self) -> int | None:
        """The relative target port identifier of the port that answered, if sent."""
        for d in self.find(DesignatorType.RELATIVE_TARGET_PORT, Association.TARGET_PORT):
            return d.number
        return None

    def target_port_group(self) -> int | None:
        """The target port group of the port that answered, if sent."""
        for d in self.find(DesignatorType.TARGET_PORT_GROUP, Association.TARGET_PORT):
            return d.number
        return None


def parse_vpd(
    buf: Bytes,
) -> SupportedVpdPages | UnitSerialNumber | DeviceIdentification | VpdPage:
    """Parse a VPD page, choosing the class by its page code.

    Raises:
        DecodeError: the page is short or malformed.
    """
    need(buf, 4, "VPD page")
    parsers: dict[int, Any] = {
        0x00: SupportedVpdPages,
        0x80: UnitSerialNumber,
        0x83: DeviceIdentification,
    }
    parser = parsers.get(buf[1], VpdPage)
    result: SupportedVpdPages | UnitSerialNumber | DeviceIdentification | VpdPage
    result = parser.from_bytes(buf)
    return result
