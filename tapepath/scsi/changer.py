"""SMC (medium changer) commands that move or prepare media.

MOVE MEDIUM, EXCHANGE MEDIUM, INITIALIZE ELEMENT STATUS (and WITH RANGE), POSITION TO
ELEMENT and PREVENT ALLOW MEDIUM REMOVAL. READ ELEMENT STATUS and its data live in
:mod:`tapepath.scsi.element_status`.

Every class follows the CDB convention of :mod:`tapepath.scsi.cdb`: fields are range
checked, ``to_bytes()`` builds the CDB and ``from_bytes()`` parses one, raising
:class:`~tapepath.errors.DecodeError` for a wrong opcode or length or a reserved bit set.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar

from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, flag_field, uint_field
from tapepath.scsi.cdb import check_opcode, check_reserved_bits

__all__ = [
    "ExchangeMedium",
    "InitializeElementStatus",
    "InitializeElementStatusWithRange",
    "MoveMedium",
    "PositionToElement",
    "PreventAllowMediumRemoval",
    "RemovalPrevention",
]


def _addr(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _get16(cdb: Bytes, offset: int) -> int:
    return int.from_bytes(cdb[offset : offset + 2], "big")


def _element_cdb(opcode: int, addresses: tuple[int, ...], tail: bytes) -> bytes:
    """A CDB of opcode, a zero byte 1, 16-bit element addresses from byte 2, then ``tail``."""
    return bytes((opcode, 0)) + b"".join(_addr(a) for a in addresses) + tail


def _element_addresses(cdb: Bytes, count: int) -> list[int]:
    """The ``count`` 16-bit element addresses from byte 2 of a CDB."""
    return [_get16(cdb, 2 + 2 * i) for i in range(count)]


@frozen
class MoveMedium:
    """MOVE MEDIUM (A5h, SMC-3): move a volume from one element to another.

    Attributes:
        transport: the medium transport element address (0: the changer picks one).
        source: the element the volume is taken from.
        destination: the element it is put into.
        invert: turn the volume over (two-sided media).
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0xA5
    transport: int = field(default=0, validator=uint_field(16))
    source: int = field(default=0, validator=uint_field(16))
    destination: int = field(default=0, validator=uint_field(16))
    invert: bool = field(default=False, validator=flag_field)
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 12-byte CDB."""
        return _element_cdb(
            self.OPCODE,
            (self.transport, self.source, self.destination),
            bytes((0, 0, int(self.invert), self.control)),
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> MoveMedium:
        """Parse a MOVE MEDIUM CDB."""
        check_opcode(cdb, cls.OPCODE, 12, "MOVE MEDIUM")
        check_reserved_bits(cdb, "MOVE MEDIUM", {1: 0xFF, 8: 0xFF, 9: 0xFF, 10: 0xFE})
        transport, source, destination = _element_addresses(cdb, 3)
        return cls(
            transport=transport,
            source=source,
            destination=destination,
            invert=bool(cdb[10] & 1),
            control=cdb[11],
        )

    @property
    def data_in_length(self) -> int:
        """MOVE MEDIUM transfers no data."""
        return 0


@frozen
class ExchangeMedium:
    """EXCHANGE MEDIUM (A6h, SMC-3): source -> first destination, first -> second.

    Byte 10 holds INV1 in bit 1 and INV2 in bit 0 (as SMC-3, Wireshark and pyscsi
    lay it out).

    Attributes:
        transport: the medium transport element address.
        source: the element whose volume goes to ``first_destination``.
        first_destination: the element whose volume goes to ``second_destination``.
        second_destination: where the second volume ends (may equal ``source``).
        inv1: invert the first volume.
        inv2: invert the second volume.
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0xA6
    transport: int = field(default=0, validator=uint_field(16))
    source: int = field(default=0, validator=uint_field(16))
    first_destination: int = field(default=0, validator=uint_field(16))
    second_destination: int = field(default=0, validator=uint_field(16))
    inv1: bool = field(default=False, validator=flag_field)
    inv2: bool = field(default=False, validator=flag_field)
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 12-byte CDB."""
        flags = int(self.inv1) << 1 | int(self.inv2)
        return _element_cdb(
            self.OPCODE,
            (self.transport, self.source, self.first_destination, self.second_destination),
            bytes((flags, self.control)),
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ExchangeMedium:
        """Parse an EXCHANGE MEDIUM CDB."""
        check_opcode(cdb, cls.OPCODE, 12, "EXCHANGE MEDIUM")
        check_reserved_bits(cdb, "EXCHANGE MEDIUM", {1: 0xFF, 10: 0xFC})
        transport, source, first_destination, second_destination = _element_addresses(cdb, 4)
        return cls(
            transport=transport,
            source=source,
            first_destination=first_destination,
            second_destination=second_destination,
            inv1=bool(cdb[10] & 2),
            inv2=bool(cdb[10] & 1),
            control=cdb[11],
        )

    @property
    def data_in_length(self) -> int:
        """EXCHANGE MEDIUM transfers no data."""
        return 0


@frozen
class InitializeElementStatus:
    """INITIALIZE ELEMENT STATUS (07h, SMC-3): inventory every element again."""

    OPCODE: ClassVar[int] = 0x07
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return bytes((self.OPCODE, 0, 0, 0, 0, self.control))

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> InitializeElementStatus:
        """Parse an INITIALIZE ELEMENT STATUS CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "INITIALIZE ELEMENT STATUS")
        if any(cdb[1:5]):
            raise DecodeError("INITIALIZE ELEMENT STATUS: reserved bytes 1-4 are not zero")
        return cls(control=cdb[5])

    @property
    def data_in_length(self) -> int:
        """INITIALIZE ELEMENT STATUS transfers no data."""
        return 0


@frozen
class InitializeElementStatusWithRange:
    """INITIALIZE ELEMENT STATUS WITH RANGE (37h, SMC-3).

    Attributes:
        range_: when False the whole changer is inventoried and the address fields
            are ignored by the device; when True only ``number_of_elements`` elements
            from ``starting_address`` are.
        fast: only check whether each element holds a volume (no label scan).
        starting_address: the first element address of the range.
        number_of_elements: how many elements.
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x37
    range_: bool = field(default=True, validator=flag_field)
    fast: bool = field(default=False, validator=flag_field)
    starting_address: int = field(default=0, validator=uint_field(16))
    number_of_elements: int = field(default=0, validator=uint_field(16))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 10-byte CDB."""
        flags = int(self.range_) | int(self.fast) << 1
        return (
            bytes((self.OPCODE, flags))
            + _addr(self.starting_address)
            + bytes(2)
            + _addr(self.number_of_elements)
            + bytes((0, self.control))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> InitializeElementStatusWithRange:
        """Parse an INITIALIZE ELEMENT STATUS WITH RANGE CDB."""
        name = "INITIALIZE ELEMENT STATUS WITH RANGE"
        check_opcode(cdb, cls.OPCODE, 10, name)
        check_reserved_bits(cdb, name, {1: 0xFC, 4: 0xFF, 5: 0xFF, 8: 0xFF})
        return cls(
            range_=bool(cdb[1] & 1),
            fast=bool(cdb[1] & 2),
            starting_address=_get16(cdb, 2),
            number_of_elements=_get16(cdb, 6),
            control=cdb[9],
        )

    @property
    def data_in_length(self) -> int:
        """The command transfers no data."""
        return 0


@frozen
class PositionToElement:
    """POSITION TO ELEMENT (2Bh, SMC-3): put a transport in front of an element.

    The opcode is LOCATE(10) on a tape drive: dispatch on the device type first.

    Attributes:
        transport: the medium transport element address.
        destination: the element to position in front of.
        invert: position for the inverted side.
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x2B
    transport: int = field(default=0, validator=uint_field(16))
    destination: int = field(default=0, validator=uint_field(16))
    invert: bool = field(default=False, validator=flag_field)
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 10-byte CDB."""
        return _element_cdb(
            self.OPCODE,
            (self.transport, self.destination),
            bytes((0, 0, int(self.invert), self.control)),
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> PositionToElement:
        """Parse a POSITION TO ELEMENT CDB."""
        check_opcode(cdb, cls.OPCODE, 10, "POSITION TO ELEMENT")
        check_reserved_bits(cdb, "POSITION TO ELEMENT", {1: 0xFF, 6: 0xFF, 7: 0xFF, 8: 0xFE})
        transport, destination = _element_addresses(cdb, 2)
        return cls(
            transport=transport,
            destination=destination,
            invert=bool(cdb[8] & 1),
            control=cdb[9],
        )

    @property
    def data_in_length(self) -> int:
        """POSITION TO ELEMENT transfers no data."""
        return 0


class RemovalPrevention(IntEnum):
    """Values of PREVENT ALLOW MEDIUM REMOVAL's PREVENT field for a changer (SMC-3)."""

    ALLOW = 0
    PREVENT = 1


@frozen
class PreventAllowMediumRemoval:
    """PREVENT ALLOW MEDIUM REMOVAL (1Eh): lock or unlock the import/export path.

    The same CDB serves tape drives (SSC) and changers (SMC).

    Attributes:
        prevent: the 2-bit PREVENT field (0 allow, 1 prevent; 2 and 3 are obsolete
            values kept for parsing).
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x1E
    prevent: int = field(default=1, validator=uint_field(2))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return bytes((self.OPCODE, 0, 0, 0, self.prevent, self.control))

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> PreventAllowMediumRemoval:
        """Parse a PREVENT ALLOW MEDIUM REMOVAL CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "PREVENT ALLOW MEDIUM REMOVAL")
        check_reserved_bits(
            cdb, "PREVENT ALLOW MEDIUM REMOVAL", {1: 0xFF, 2: 0xFF, 3: 0xFF, 4: 0xFC}
        )
        return cls(prevent=cdb[4] & 3, control=cdb[5])

    @property
    def data_in_length(self) -> int:
        """The command transfers no data."""
        return 0
