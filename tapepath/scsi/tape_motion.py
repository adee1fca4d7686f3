"""SSC (tape) motion and medium commands: SPACE(6)/(16), LOCATE(10)/(16), REWIND,
LOAD UNLOAD and ERASE.

The data transfer commands and READ BLOCK LIMITS live in :mod:`tapepath.scsi.tape`,
which re-exports every name defined here. Opcodes 1Bh (LOAD UNLOAD) and 2Bh
(LOCATE(10)) mean other commands on other device types: a device model dispatches on
its own opcode table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from enum import IntEnum
from typing import Any, ClassVar

from attrs import Attribute, field, frozen

from tapepath.scsi._wire import Bytes, be_int, flag_field, uint_field
from tapepath.scsi.cdb import check_opcode, check_reserved_bits

__all__ = [
    "Erase",
    "LoadUnload",
    "Locate10",
    "Locate16",
    "LocateDestination",
    "Rewind",
    "Space6",
    "Space16",
    "SpaceCode",
]


def _signed_field(bits: int) -> Callable[[Any, Attribute[int], int], None]:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def _validate(_inst: Any, attr: Attribute[int], value: int) -> None:
        name = attr.name
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an int, not {type(value).__name__}")
        if not low <= value <= high:
            raise ValueError(f"{name}={value} does not fit in signed {bits} bits ({low}..{high})")

    return _validate


class SpaceCode(IntEnum):
    """What SPACE counts (SSC-3; 4 and 5, setmarks, are obsolete)."""

    BLOCKS = 0
    FILEMARKS = 1
    SEQUENTIAL_FILEMARKS = 2
    END_OF_DATA = 3
    SETMARKS = 4
    SEQUENTIAL_SETMARKS = 5


class LocateDestination(IntEnum):
    """LOCATE(16)'s DEST_TYPE: what the logical identifier counts."""

    LOGICAL_OBJECT = 0
    LOGICAL_FILE = 1
    END_OF_DATA = 3


def _code(value: int) -> int:
    try:
        return SpaceCode(value)
    except ValueError:
        return value


@frozen
class Space6:
    """SPACE(6) (11h): move over blocks or filemarks, or to end of data.

    Attributes:
        code: what to count (:class:`SpaceCode`, 4 bits).
        count: how many, signed 24-bit (negative: towards the beginning).
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x11
    code: int = field(default=0, validator=uint_field(4))
    count: int = field(default=0, validator=_signed_field(24))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return (
            bytes((self.OPCODE, int(self.code)))
            + self.count.to_bytes(3, "big", signed=True)
            + bytes((self.control,))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> Space6:
        """Parse a SPACE(6) CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "SPACE(6)")
        check_reserved_bits(cdb, "SPACE(6)", {1: 0xF0})
        return cls(_code(cdb[1] & 0x0F), be_int(cdb, 2, 3, signed=True), cdb[5])

    @property
    def data_in_length(self) -> int:
        """No data."""
        return 0


@frozen
class Space16:
    """SPACE(16) (91h, SSC-3/4): SPACE with a signed 64-bit count.

    SSC-3 and SSC-4 define no partition field here (LOCATE moves between
    partitions); bytes 12-13 are a parameter list length that shall be zero.

    Attributes:
        code: what to count (:class:`SpaceCode`, 4 bits).
        count: how many, signed 64-bit.
        parameter_length: the parameter list length (16 bits, normally 0).
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x91
    code: int = field(default=0, validator=uint_field(4))
    count: int = field(default=0, validator=_signed_field(64))
    parameter_length: int = field(default=0, validator=uint_field(16))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 16-byte CDB."""
        return (
            bytes((self.OPCODE, int(self.code), 0, 0))
            + self.count.to_bytes(8, "big", signed=True)
            + self.parameter_length.to_bytes(2, "big")
            + bytes((0, self.control))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> Space16:
        """Parse a SPACE(16) CDB."""
        check_opcode(cdb, cls.OPCODE, 16, "SPACE(16)")
        check_reserved_bits(cdb, "SPACE(16)", {1: 0xF0, 2: 0xFF, 3: 0xFF, 14: 0xFF})
        return cls(
            _code(cdb[1] & 0x0F), be_int(cdb, 4, 8, signed=True), be_int(cdb, 12, 2), cdb[15]
        )

    @property
    def data_in_length(self) -> int:
        """No data."""
        return 0


@frozen
class Locate10:
    """LOCATE(10) (2Bh): go to a logical block address, optionally in another partition.

    Attributes:
        block_address: the logical object identifier (32 bits).
        bt: the address is a vendor-specific block address (SSC-2 BT).
        cp: change to ``partition`` first.
        partition: the destination partition (used when ``cp``).
        immed: return before the positioning ends.
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x2B
    block_address: int = field(default=0, validator=uint_field(32))
    bt: bool = field(default=False, validator=flag_field)
    cp: bool = field(default=False, validator=flag_field)
    partition: int = field(default=0, validator=uint_field(8))
    immed: bool = field(default=False, validator=flag_field)
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 10-byte CDB."""
        flags = int(self.bt) << 2 | int(self.cp) << 1 | int(self.immed)
        return (
            bytes((self.OPCODE, flags, 0))
            + self.block_address.to_bytes(4, "big")
            + bytes((0, self.partition, self.control))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> Locate10:
        """Parse a LOCATE(10) CDB."""
        check_opcode(cdb, cls.OPCODE, 10, "LOCATE(10)")
        check_reserved_bits(cdb, "LOCATE(10)", {1: 0xF8, 2: 0xFF, 7: 0xFF})
        return cls(
            block_address=be_int(cdb, 3, 4),
            bt=bool(cdb[1] & 4),
            cp=bool(cdb[1] & 2),
            partition=cdb[8],
            immed=bool(cdb[1] & 1),
            control=cdb[9],
        )

    @property
    def data_in_length(self) -> int:
        """No data."""
        return 0


@frozen
class Locate16:
    """LOCATE(16) (92h, SSC-3/4): go to a logical object, file or end of data.

    Attributes:
        logical_identifier: the destination (64 bits), counted as ``dest_type`` says.
        dest_type: :class:`LocateDestination` (3 bits).
        cp: change to ``partition`` first.
        partition: the destination partition.
        immed: return before the positioning ends.
        bam: block address mode (SSC-4 BAM; 0 implicit, 1 explicit).
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x92
    logical_identifier: int = field(default=0, validator=uint_field(64))
    dest_type: int = field(default=0, validator=uint_field(3))
    cp: bool = field(default=False, validator=flag_field)
    partition: int = field(default=0, validator=uint_field(8))
    immed: bool = field(default=False, validator=flag_field)
    bam: bool = field(default=False, validator=flag_field)
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 16-byte CDB."""
        flags = int(self.dest_type) << 3 | int(self.cp) << 1 | int(self.immed)
        return (
            bytes((self.OPCODE, flags, int(self.bam), self.partition))
            + self.logical_identifier.to_bytes(8, "big")
            + bytes((0, 0, 0, self.control))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> Locate16:
        """Parse a LOCATE(16) CDB."""
        check_opcode(cdb, cls.OPCODE, 16, "LOCATE(16)")
        check_reserved_bits(cdb, "LOCATE(16)", {1: 0xC4, 2: 0xFE, 12: 0xFF, 13: 0xFF, 14: 0xFF})
        dest = (cdb[1] >> 3) & 7
        with contextlib.suppress(ValueError):
            dest = LocateDestination(dest)
        return cls(
            logical_identifier=be_int(cdb, 4, 8),
            dest_type=dest,
            cp=bool(cdb[1] & 2),
            partition=cdb[3],
            immed=bool(cdb[1] & 1),
            bam=bool(cdb[2] & 1),
            control=cdb[15],
        )

    @property
    def data_in_length(self) -> int:
        """No data."""
        return 0


@frozen
class Rewind:
    """REWIND (01h): go to the beginning of the current partition."""

    OPCODE: ClassVar[int] = 0x01
    immed: bool = field(default=False, validator=flag_field)
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return bytes((self.OPCODE, int(self.immed), 0, 0, 0, self.control))

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> Rewind:
        """Parse a REWIND CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "REWIND")
        check_reserved_bits(cdb, "REWIND", {1: 0xFE, 2: 0xFF, 3: 0xFF, 4: 0xFF})
        return cls(bool(cdb[1] & 1), cdb[5])

    @property
    def data_in_length(self) -> int:
        """No data."""
        return 0


@frozen
class LoadUnload:
    """LOAD UNLOAD (1Bh): load (LOAD=1) or unload (LOAD=0) the medium.

    Attributes:
        load: load, else unload.
        immed: return before the operation ends.
        hold: keep the medium in the drive (no threading / no eject).
        eot: unload at the end of the tape.
        reten: retension.
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x1B
    load: bool = field(default=True, validator=flag_field)
    immed: bool = field(default=False, validator=flag_field)
    hold: bool = field(default=False, validator=flag_field)
    eot: bool = field(default=False, validator=flag_field)
    reten: bool = field(default=False, validator=flag_field)
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        bits = int(self.hold) << 3 | int(self.eot) << 2 | int(self.reten) << 1 | int(self.load)
        return bytes((self.OPCODE, int(self.immed), 0, 0, bits, self.control))

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> LoadUnload:
        """Parse a LOAD UNLOAD CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "LOAD UNLOAD")
        check_reserved_bits(cdb, "LOAD UNLOAD", {1: 0xFE, 2: 0xFF, 3: 0xFF, 4: 0xF0})
        b = cdb[4]
        return cls(
            load=bool(b & 1),
            immed=bool(cdb[1] & 1),
            hold=bool(b & 8),
            eot=bool(b & 4),
            reten=bool(b & 2),
            control=cdb[5],
        )

    @property
    def data_in_length(self) -> int:
        """No data."""
        return 0


@frozen
class Erase:
    """ERASE(6) (19h).

    Attributes:
        long: erase to the end of the partition (else a short erase / gap).
        immed: return before the erase ends.
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x19
    long: bool = field(default=False, validator=flag_field)
    immed: bool = field(default=False, validator=flag_field)
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return bytes((self.OPCODE, int(self.immed) << 1 | int(self.long), 0, 0, 0, self.control))

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> Erase:
        """Parse an ERASE(6) CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "ERASE")
        check_reserved_bits(cdb, "ERASE", {1: 0xFC, 2: 0xFF, 3: 0xFF, 4: 0xFF})
        return cls(bool(cdb[1] & 1), bool(cdb[1] & 2), cdb[5])

    @property
    def data_in_length(self) -> int:
        """No data."""
        return 0
