"""READ ATTRIBUTE (8Ch, SPC-4 6.17) and medium auxiliary memory (MAM) attributes."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any, ClassVar

from attrs import Attribute as AttrsAttribute
from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import (
    Bytes,
    check_uint,
    flag_field,
    items_of,
    need,
    parse_entries,
    u16,
    u32,
    uint_field,
)
from tapepath.scsi.cdb import check_opcode, check_reserved
from tapepath.scsi.inquiry import enum_or_int

__all__ = [
    "BARCODE",
    "Attribute",
    "AttributeFormat",
    "AttributeIdList",
    "AttributeList",
    "MamAttribute",
    "ReadAttribute",
    "ReadAttributeAction",
]


class ReadAttributeAction(IntEnum):
    """READ ATTRIBUTE service actions."""

    ATTRIBUTE_VALUES = 0
    ATTRIBUTE_LIST = 1
    LOGICAL_VOLUME_LIST = 2
    PARTITION_LIST = 3
    RESTRICTED = 4
    SUPPORTED_ATTRIBUTES = 5


class AttributeFormat(IntEnum):
    """FORMAT of an attribute."""

    BINARY = 0
    ASCII = 1
    TEXT = 2


class MamAttribute(IntEnum):
    """Standard attribute identifiers (SPC-4 7.4.2)."""

    REMAINING_CAPACITY_IN_PARTITION = 0x0000
    MAXIMUM_CAPACITY_IN_PARTITION = 0x0001
    TAPEALERT_FLAGS = 0x0002
    LOAD_COUNT = 0x0003
    MAM_SPACE_REMAINING = 0x0004
    ASSIGNING_ORGANIZATION_DEVICE = 0x0005
    FORMATTED_DENSITY_CODE = 0x0006
    INITIALIZATION_COUNT = 0x0007
    VOLUME_IDENTIFIER = 0x0008
    VOLUME_CHANGE_REFERENCE = 0x0009
    DEVICE_VENDOR_SERIAL_AT_LAST_LOAD = 0x020A
    DEVICE_VENDOR_SERIAL_AT_LOAD_1 = 0x020B
    DEVICE_VENDOR_SERIAL_AT_LOAD_2 = 0x020C
    DEVICE_VENDOR_SERIAL_AT_LOAD_3 = 0x020D
    TOTAL_MIB_WRITTEN_IN_MEDIUM_LIFE = 0x0220
    TOTAL_MIB_READ_IN_MEDIUM_LIFE = 0x0221
    TOTAL_MIB_WRITTEN_IN_CURRENT_LOAD = 0x0222
    TOTAL_MIB_READ_IN_CURRENT_LOAD = 0x0223
    LOGICAL_POSITION_OF_FIRST_ENCRYPTED_BLOCK = 0x0224
    LOGICAL_POSITION_OF_FIRST_UNENCRYPTED_BLOCK = 0x0225
    MEDIUM_USAGE_HISTORY = 0x0340
    PARTITION_USAGE_HISTORY = 0x0341
    MEDIUM_MANUFACTURER = 0x0400
    MEDIUM_SERIAL_NUMBER = 0x0401
    MEDIUM_LENGTH = 0x0402
    MEDIUM_WIDTH = 0x0403
    ASSIGNING_ORGANIZATION_MEDIUM = 0x0404
    MEDIUM_DENSITY_CODE = 0x0405
    MEDIUM_MANUFACTURE_DATE = 0x0406
    MAM_CAPACITY = 0x0407
    MEDIUM_TYPE = 0x0408
    MEDIUM_TYPE_INFORMATION = 0x0409
    NUMERIC_MEDIUM_SERIAL_NUMBER = 0x040A
    APPLICATION_VENDOR = 0x0800
    APPLICATION_NAME = 0x0801
    APPLICATION_VERSION = 0x0802
    USER_MEDIUM_TEXT_LABEL = 0x0803
    DATE_AND_TIME_LAST_WRITTEN = 0x0804
    TEXT_LOCALIZATION_IDENTIFIER = 0x0805
    BARCODE = 0x0806
    OWNING_HOST_TEXTUAL_NAME = 0x0807
    MEDIA_POOL = 0x0808
    PARTITION_USER_TEXT_LABEL = 0x0809
    LOAD_UNLOAD_AT_PARTITION = 0x080A
    APPLICATION_FORMAT_VERSION = 0x080B
    VOLUME_COHERENCY_INFORMATION = 0x080C
    MEDIUM_GLOBALLY_UNIQUE_IDENTIFIER = 0x0820
    MEDIA_POOL_GLOBALLY_UNIQUE_IDENTIFIER = 0x0821


BARCODE = MamAttribute.BARCODE


def _action(value: int) -> int:
    return enum_or_int(ReadAttributeAction, value)


def _format(value: int) -> int:
    return enum_or_int(AttributeFormat, value)


def _attr_id(value: int) -> int:
    return enum_or_int(MamAttribute, value)


@frozen
class ReadAttribute:
    """The READ ATTRIBUTE CDB (8Ch, 16 bytes).

    Attributes:
        service_action: :class:`ReadAttributeAction` (5 bits).
        first_attribute: FIRST ATTRIBUTE IDENTIFIER (16 bits).
        partition: PARTITION NUMBER (8 bits).
        logical_volume: LOGICAL VOLUME NUMBER (8 bits).
        element_address: for a medium changer (SMC-3), the element whose medium's
            attributes are read (bytes 2-3, 16 bits); 0 otherwise.
        cache: read the attributes cached from the last medium (CACHE bit).
        allocation_length: 32 bits.
        control: the CONTROL byte.
    """

    OPCODE: ClassVar[int] = 0x8C
    service_action: int = field(default=0, converter=_action, validator=uint_field(5))
    first_attribute: int = field(default=0, validator=uint_field(16))
    partition: int = field(default=0, validator=uint_field(8))
    logical_volume: int = field(default=0, validator=uint_field(8))
    element_address: int = field(default=0, validator=uint_field(16))
    cache: bool = field(default=False, validator=flag_field)
    allocation_length: int = field(default=0x2000, validator=uint_field(32))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 16-byte CDB."""
        return (
            bytes(
                (
                    self.OPCODE,
                    int(self.service_action),
                    self.element_address >> 8,
                    self.element_address & 0xFF,
                    0,
                    self.logical_volume,
                    0,
                    self.partition,
                )
            )
            + self.first_attribute.to_bytes(2, "big")
            + self.allocation_length.to_bytes(4, "big")
            + bytes((int(self.cache), self.control))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ReadAttribute:
        """Parse a READ ATTRIBUTE CDB."""
        check_opcode(cdb, cls.OPCODE, 16, "READ ATTRIBUTE")
        check_reserved(cdb, "READ ATTRIBUTE", (1, 0xE0), (4, 0xFF), (6, 0xFF), (14, 0xFE))
        return cls(
            service_action=cdb[1] & 0x1F,
            first_attribute=u16(cdb, 8),
            partition=cdb[7],
            logical_volume=cdb[5],
            element_address=u16(cdb, 2),
            cache=bool(cdb[14] & 1),
            allocation_length=u32(cdb, 10),
            control=cdb[15],
        )

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


def _value(_inst: Any, attr: AttrsAttribute[bytes], value: bytes) -> None:
    if len(value) > 0xFFFF:
        raise ValueError(f"{attr.name} is {len(value)} bytes long, at most 65535 fit")


@frozen
class Attribute:
    """One attribute: identifier, format, READ ONLY bit and value.

    Attributes:
        id: ATTRIBUTE IDENTIFIER (:class:`MamAttribute` when known).
        value: the value bytes as stored.
        format: :class:`AttributeFormat` (2 bits).
        read_only: READ ONLY.
    """

    id: int = field(converter=_attr_id, validator=uint_field(16))
    value: bytes = field(default=b"", converter=bytes, validator=_value)
    format: int = field(default=0, converter=_format, validator=uint_field(2))
    read_only: bool = field(default=False, validator=flag_field)

    @classmethod
    def binary(
        cls, attribute_id: int, value: int, length: int, *, read_only: bool = False
    ) -> Attribute:
        """A binary attribute holding ``value`` in ``length`` bytes.

        Raises:
            ValueError: ``value`` does not fit in ``length`` bytes.
        """
        check_uint("value", value, 8 * length)
        return cls(attribute_id, value.to_bytes(length, "big"), AttributeFormat.BINARY, read_only)

    @classmethod
    def ascii(
        cls, attribute_id: int, text: str, length: int, *, read_only: bool = False
    ) -> Attribute:
        """An ASCII attribute: ``text`` left-aligned and space-padded to ``length`` bytes.

        Raises:
            ValueError: ``text`` is not ASCII or longer than ``length``.
        """
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError as exc:
            raise ValueError(f"text must be ASCII: {exc}") from None
        if len(raw) > length:
            raise ValueError(f"text is {len(raw)} bytes long, the attribute holds {length}")
        return cls(attribute_id, raw.ljust(length, b" "), AttributeFormat.ASCII, read_only)

    @property
    def as_int(self) -> int:
        """The value as a big-endian unsigned integer."""
        return int.from_bytes(self.value, "big")

    @property
    def text(self) -> str:
        """The value as text: ASCII trailing spaces stripped, TEXT (UTF-8) up to its NUL."""
        if self.format == AttributeFormat.TEXT:
            return self.value.split(b"\0", 1)[0].decode("utf-8", errors="replace")
        return self.value.decode("ascii", errors="replace").rstrip(" \0")

    def to_bytes(self) -> bytes:
        """Encode the attribute (5-byte header and value)."""
        return (
            self.id.to_bytes(2, "big")
            + bytes(((self.read_only << 7) | int(self.format),))
            + len(self.value).to_bytes(2, "big")
            + self.value
        )

    @classmethod
    def parse(cls, buf: Bytes, offset: int = 0) -> tuple[Attribute, int]:
        """Parse the attribute at ``offset``; return it and the offset after it."""
        need(buf, offset + 5, "attribute header")
        length = u16(buf, offset + 3)
        end = offset + 5 + length
        if end > len(buf):
            raise DecodeError(
                f"attribute {u16(buf, offset):04X}h: length {length} runs past the data"
            )
        b2 = buf[offset + 2]
        return (
            cls(u16(buf, offset), bytes(buf[offset + 5 : end]), b2 & 3, bool(b2 & 0x80)),
            end,
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> Attribute:
        """Parse exactly one attribute."""
        attr, end = cls.parse(buf)
        if end != len(buf):
            raise DecodeError(f"attribute: {len(buf) - end} bytes after it")
        return attr


def _attribute_tuple(value: Iterable[Attribute]) -> tuple[Attribute, ...]:
    return tuple(value)


@frozen
class AttributeList:
    """ATTRIBUTE VALUES data: AVAILABLE DATA and the attributes.

    Attributes:
        attributes: in identifier order as the device sent them.
        available_data: AVAILABLE DATA as sent (None: from ``attributes``); larger than
            what was received means the allocation length cut the list. Not part of equality.
    """

    attributes: tuple[Attribute, ...] = field(
        default=(), converter=_attribute_tuple, validator=items_of(Attribute)
    )
    available_data: int | None = field(default=None, eq=False)

    def get(self, attribute_id: int) -> Attribute | None:
        """The attribute with this identifier, or None."""
        for a in self.attributes:
            if a.id == attribute_id:
                return a
        return None

    @property
    def barcode(self) -> str | None:
        """The BARCODE attribute (0806h) stripped, or None when absent."""
        a = self.get(BARCODE)
        return None if a is None else a.text

    def to_bytes(self) -> bytes:
        """Encode the data."""
        body = b"".join(a.to_bytes() for a in self.attributes)
        return len(body).to_bytes(4, "big") + body

    @classmethod
    def from_bytes(cls, buf: Bytes) -> AttributeList:
        """Parse the data; a list cut by the allocation length keeps its whole attributes."""
        need(buf, 4, "attribute values data")
        length = u32(buf, 0)
        end = min(len(buf), 4 + length)
        complete = end == 4 + length
        found = parse_entries(bytes(buf[:end]), 4, end, Attribute.parse, complete=complete)
        return cls(found, length)


def _ids(_inst: Any, attr: AttrsAttribute[tuple[int, ...]], value: tuple[int, ...]) -> None:
    for i, v in enumerate(value):
        check_uint(f"{attr.name}[{i}]", v, 16)


def _id_tuple(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(enum_or_int(MamAttribute, v) for v in value)


@frozen
class AttributeIdList:
    """ATTRIBUTE LIST and SUPPORTED ATTRIBUTES data: 16-bit identifiers."""

    ids: tuple[int, ...] = field(default=(), converter=_id_tuple, validator=_ids)

    def to_bytes(self) -> bytes:
        """Encode the data."""
        body = b"".join(i.to_bytes(2, "big") for i in self.ids)
        return len(body).to_bytes(4, "big") + body

    @classmethod
    def from_bytes(cls, buf: Bytes) -> AttributeIdList:
        """Parse the data (whole identifiers only when cut short)."""
        need(buf, 4, "attribute list data")
        end = min(len(buf), 4 + u32(buf, 0))
        return cls(tuple(u16(buf, off) for off in range(4, end - 1, 2)))
