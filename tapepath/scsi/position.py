"""READ POSITION (34h, SSC-3/4): the command and its three data forms.

Service actions: 00h short form with block identifiers, 01h short form with
vendor-specific (device block) identifiers, 06h long form, 08h extended form. The
short forms share one layout (:class:`PositionShort`, 20 bytes); the long form
(:class:`PositionLong`, 32 bytes) counts logical objects and files per partition; the
extended form (:class:`PositionExtended`, 32 bytes) has 64-bit locations and counts.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar

from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, be_int, flag_field, trusted, uint_field
from tapepath.scsi.cdb import check_opcode

__all__ = [
    "PositionExtended",
    "PositionLong",
    "PositionShort",
    "ReadPosition",
    "ReadPositionForm",
    "parse_position",
]


class ReadPositionForm(IntEnum):
    """READ POSITION service actions."""

    SHORT = 0x00
    SHORT_VENDOR = 0x01
    LONG = 0x06
    EXTENDED = 0x08


_DATA_LENGTH: dict[int, int] = {
    ReadPositionForm.SHORT: 20,
    ReadPositionForm.SHORT_VENDOR: 20,
    ReadPositionForm.LONG: 32,
    ReadPositionForm.EXTENDED: 32,
}


@frozen
class ReadPosition:
    """READ POSITION (34h).

    Attributes:
        service_action: a :class:`ReadPositionForm` (5 bits; others are reserved).
        allocation_length: 16 bits; SSC asks for 0 with the short and long forms,
            which then return their fixed length.
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x34
    service_action: int = field(default=0, validator=uint_field(5))
    allocation_length: int = field(default=0, validator=uint_field(16))
    control: int = field(default=0, validator=uint_field(8))

    @classmethod
    def short(cls, *, vendor: bool = False) -> ReadPosition:
        """The short form (block identifiers, or vendor-specific ones)."""
        return cls(ReadPositionForm.SHORT_VENDOR if vendor else ReadPositionForm.SHORT)

    @classmethod
    def long(cls) -> ReadPosition:
        """The long form."""
        return cls(ReadPositionForm.LONG)

    @classmethod
    def extended(cls, allocation_length: int = 32) -> ReadPosition:
        """The extended form (it needs an allocation length)."""
        return cls(ReadPositionForm.EXTENDED, allocation_length)

    def to_bytes(self) -> bytes:
        """Return the 10-byte CDB."""
        return (
            bytes((self.OPCODE, int(self.service_action), 0, 0, 0, 0, 0))
            + self.allocation_length.to_bytes(2, "big")
            + bytes((self.control,))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ReadPosition:
        """Parse a READ POSITION CDB (an unknown service action stays an int)."""
        check_opcode(cdb, cls.OPCODE, 10, "READ POSITION")
        if cdb[1] & 0xE0 or any(cdb[2:7]):
            raise DecodeError("READ POSITION: reserved bits set in bytes 1-6")
        action: int = cdb[1] & 0x1F
        if action in _DATA_LENGTH:
            action = ReadPositionForm(action)
        return cls(action, be_int(cdb, 7, 2), cdb[9])

    @property
    def data_in_length(self) -> int:
        """The allocation length, or the form's fixed length when it is 0."""
        if self.allocation_length:
            return self.allocation_length
        return _DATA_LENGTH.get(self.service_action, 0)

    def parse(self, buf: Bytes) -> PositionShort | PositionLong | PositionExtended:
        """Parse the data this command returns (see :func:`parse_position`)."""
        return parse_position(self.service_action, buf)


#: The flag bits of byte 0, per form: (field name, bit number).
_SHORT_FLAGS: tuple[tuple[str, int], ...] = (
    ("bop", 7),
    ("eop", 6),
    ("locu", 5),
    ("bycu", 4),
    ("lolu", 2),
    ("perr", 1),
    ("bpew", 0),
)
_LONG_FLAGS: tuple[tuple[str, int], ...] = (
    ("bop", 7),
    ("eop", 6),
    ("mpu", 3),
    ("lonu", 2),
    ("bpew", 0),
)


def _unpack_flags(byte: int, layout: tuple[tuple[str, int], ...]) -> dict[str, bool]:
    """The flags of ``layout`` read from one byte, as field values."""
    return {name: bool(byte >> bit & 1) for name, bit in layout}


def _pack_flags(value: object, layout: tuple[tuple[str, int], ...]) -> int:
    """The byte holding the flags of ``layout`` taken from ``value``'s fields."""
    byte = 0
    for name, bit in layout:
        if getattr(value, name):
            byte |= 1 << bit
    return byte


def _need_form(buf: Bytes, length: int, form: str) -> None:
    if len(buf) < length:
        raise DecodeError(f"READ POSITION {form} form: need {length} bytes, got {len(buf)}")


@frozen
class _ShortFlags:
    """The flag fields the short and extended forms share (byte 0), first in both."""

    bop: bool = field(default=False, validator=flag_field)
    eop: bool = field(default=False, validator=flag_field)
    locu: bool = field(default=False, validator=flag_field)
    bycu: bool = field(default=False, validator=flag_field)
    lolu: bool = field(default=False, validator=flag_field)
    perr: bool = field(default=False, validator=flag_field)
    bpew: bool = field(default=False, validator=flag_field)


@frozen
class PositionShort(_ShortFlags):
    """READ POSITION short form data (service action 00h or 01h, 20 bytes).

    Attributes:
        bop: at the beginning of the partition.
        eop: between early warning and the end of the partition.
        locu: ``blocks_in_buffer`` is unknown.
        bycu: ``bytes_in_buffer`` is unknown.
        lolu: the locations are unknown (position lost).
        perr: a location overflowed its field.
        bpew: beyond the programmable early warning.
        partition: the current partition.
        first_location: the next object to be transferred to or from the medium.
        last_location: the next object to be written from the buffer.
        blocks_in_buffer: logical objects in the buffer (24 bits).
        bytes_in_buffer: bytes in the buffer.
    """

    partition: int = field(default=0, validator=uint_field(8))
    first_location: int = field(default=0, validator=uint_field(32))
    last_location: int = field(default=0, validator=uint_field(32))
    blocks_in_buffer: int = field(default=0, validator=uint_field(24))
    bytes_in_buffer: int = field(default=0, validator=uint_field(32))

    LENGTH: ClassVar[int] = 20

    @property
    def block(self) -> int | None:
        """The current logical block address, or None when LOLU or PERR says unknown."""
        return None if self.lolu or self.perr else self.first_location

    def to_bytes(self) -> bytes:
        """The 20 data bytes."""
        flags = _pack_flags(self, _SHORT_FLAGS)
        return (
            bytes((flags, self.partition, 0, 0))
            + self.first_location.to_bytes(4, "big")
            + self.last_location.to_bytes(4, "big")
            + b"\0"
            + self.blocks_in_buffer.to_bytes(3, "big")
            + self.bytes_in_buffer.to_bytes(4, "big")
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> PositionShort:
        """Parse 20 bytes (reserved bits ignored; DecodeError when short)."""
        _need_form(buf, cls.LENGTH, "short")
        return trusted(cls)(
            **_unpack_flags(buf[0], _SHORT_FLAGS),
            partition=buf[1],
            first_location=be_int(buf, 4, 4),
            last_location=be_int(buf, 8, 4),
            blocks_in_buffer=be_int(buf, 13, 3),
            bytes_in_buffer=be_int(buf, 16, 4),
        )


@frozen
class PositionLong:
    """READ POSITION long form data (service action 06h, 32 bytes).

    Attributes:
        bop: at the beginning of the partition.
        eop: between early warning and the end of the partition.
        mpu: the mark (file and set) position is unknown.
        lonu: the logical object number and partition are unknown.
        bpew: beyond the programmable early warning.
        partition: the current partition (32 bits).
        logical_object_number: the current logical object (64 bits).
        logical_file_identifier: filemarks between BOP and here (64 bits).
        logical_set_identifier: setmarks (obsolete, 64 bits).
    """

    bop: bool = field(default=False, validator=flag_field)
    eop: bool = field(default=False, validator=flag_field)
    mpu: bool = field(default=False, validator=flag_field)
    lonu: bool = field(default=False, validator=flag_field)
    bpew: bool = field(default=False, validator=flag_field)
    partition: int = field(default=0, validator=uint_field(32))
    logical_object_number: int = field(default=0, validator=uint_field(64))
    logical_file_identifier: int = field(default=0, validator=uint_field(64))
    logical_set_identifier: int = field(default=0, validator=uint_field(64))

    LENGTH: ClassVar[int] = 32

    @property
    def block(self) -> int | None:
        """The logical object number, or None when LONU says unknown."""
        return None if self.lonu else self.logical_object_number

    def to_bytes(self) -> bytes:
        """The 32 data bytes."""
        flags = _pack_flags(self, _LONG_FLAGS)
        return (
            bytes((flags, 0, 0, 0))
            + self.partition.to_bytes(4, "big")
            + self.logical_object_number.to_bytes(8, "big")
            + self.logical_file_identifier.to_bytes(8, "big")
            + self.logical_set_identifier.to_bytes(8, "big")
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> PositionLong:
        """Parse 32 bytes (reserved bits ignored; DecodeError when short)."""
        _need_form(buf, cls.LENGTH, "long")
        return trusted(cls)(
            **_unpack_flags(buf[0], _LONG_FLAGS),
            partition=be_int(buf, 4, 4),
            logical_object_number=be_int(buf, 8, 8),
            logical_file_identifier=be_int(buf, 16, 8),
            logical_set_identifier=be_int(buf, 24, 8),
        )


@frozen
class PositionExtended(_ShortFlags):
    """READ POSITION extended form data (service action 08h, 32 bytes).

    Attributes:
        bop: at the beginning of the partition.
        eop: between early warning and the end of the partition.
        locu: ``objects_in_buffer`` is unknown.
        bycu: ``bytes_in_buffer`` is unknown.
        lolu: the locations are unknown.
        perr: a value overflowed its field.
        bpew: beyond the programmable early warning.
        partition: the current partition.
        objects_in_buffer: logical objects in the buffer (24 bits).
        first_location: the next object to be transferred (64 bits).
        last_location: the next object to be written from the buffer (64 bits).
        bytes_in_buffer: bytes in the buffer (64 bits).
    """

    partition: int = field(default=0, validator=uint_field(8))
    objects_in_buffer: int = field(default=0, validator=uint_field(24))
    first_location: int = field(default=0, validator=uint_field(64))
    last_location: int = field(default=0, validator=uint_field(64))
    bytes_in_buffer: int = field(default=0, validator=uint_field(64))

    LENGTH: ClassVar[int] = 32
    ADDITIONAL_LENGTH: ClassVar[int] = 0x1C

    @property
    def block(self) -> int | None:
        """The current logical object, or None when LOLU or PERR says unknown."""
        return None if self.lolu or self.perr else self.first_location

    def to_bytes(self) -> bytes:
        """The 32 data bytes (additional length 1Ch)."""
        flags = _pack_flags(self, _SHORT_FLAGS)
        return (
            bytes((flags, self.partition))
            + self.ADDITIONAL_LENGTH.to_bytes(2, "big")
            + b"\0"
            + self.objects_in_buffer.to_bytes(3, "big")
            + self.first_location.to_bytes(8, "big")
            + self.last_location.to_bytes(8, "big")
            + self.bytes_in_buffer.to_bytes(8, "big")
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> PositionExtended:
        """Parse 32 bytes (reserved bits and the additional length are not checked).

        Raises:
            DecodeError: fewer than 32 bytes.
        """
        _need_form(buf, cls.LENGTH, "extended")
        return trusted(cls)(
            **_unpack_flags(buf[0], _SHORT_FLAGS),
            partition=buf[1],
            objects_in_buffer=be_int(buf, 5, 3),
            first_location=be_int(buf, 8, 8),
            last_location=be_int(buf, 16, 8),
            bytes_in_buffer=be_int(buf, 24, 8),
        )


def parse_position(
    service_action: int, buf: Bytes
) -> PositionShort | PositionLong | PositionExtended:
    """Parse READ POSITION data of the given service action.

    Raises:
        DecodeError: the data is too short, or the service action has no known form.
    """
    if service_action in (ReadPositionForm.SHORT, ReadPositionForm.SHORT_VENDOR):
        return PositionShort.from_bytes(buf)
    if service_action == ReadPositionForm.LONG:
        return PositionLong.from_bytes(buf)
    if service_action == ReadPositionForm.EXTENDED:
        return PositionExtended.from_bytes(buf)
    raise DecodeError(f"READ POSITION: no data form for service action {service_action:02X}h")
