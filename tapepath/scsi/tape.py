"""SSC (tape) commands: data transfer, motion and limits.

READ(6), WRITE(6), WRITE FILEMARKS(6), SPACE(6), SPACE(16), LOCATE(10), LOCATE(16),
REWIND, LOAD UNLOAD, READ BLOCK LIMITS (and its data), ERASE. READ POSITION lives in
:mod:`tapepath.scsi.position`, REPORT DENSITY SUPPORT in :mod:`tapepath.scsi.density`.

Opcodes 1Bh (LOAD UNLOAD) and 2Bh (LOCATE(10)) mean other commands on other device
types: a device model dispatches on its own opcode table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from enum import IntEnum
from typing import Any, ClassVar

from attrs import Attribute, field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, flag_field, uint_field
from tapepath.scsi.cdb import check_opcode

__all__ = [
    "BlockLimits",
    "Erase",
    "LoadUnload",
    "Locate10",
    "Locate16",
    "LocateDestination",
    "MaximumLogicalObjectIdentifier",
    "Read6",
    "ReadBlockLimits",
    "Rewind",
    "Space6",
    "Space16",
    "SpaceCode",
    "Write6",
    "WriteFilemarks6",
]


def _reserved(cdb: Bytes, name: str, spec: dict[int, int]) -> None:
    """Raise DecodeError when a reserved bit is set: ``spec`` maps byte -> reserved mask."""
    for index, mask in spec.items():
        if cdb[index] & mask:
            raise DecodeError(f"{name}: reserved bits set in byte {index} ({cdb[index]:02X}h)")


def _int(cdb: Bytes, start: int, size: int, *, signed: bool = False) -> int:
    return int.from_bytes(cdb[start : start + size], "big", signed=signed)


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
class Read6:
    """READ(6) (08h): read blocks (FIXED) or one variable block of up to N bytes.

    Attributes:
        transfer_length: blocks when ``fixed``, else bytes (24 bits).
        fixed: the length counts fixed-size blocks.
        sili: suppress the incorrect-length indication (variable mode only).
        block_length: not part of the CDB: the drive's fixed block length, used by
            :attr:`data_in_length` when ``fixed``.
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x08
    transfer_length: int = field(validator=uint_field(24))
    fixed: bool = field(default=False, validator=flag_field)
    sili: bool = field(default=False, validator=flag_field)
    block_length: int = field(default=0, validator=uint_field(24))
    control: int = field(default=0, validator=uint_field(8))

    def __attrs_post_init__(self) -> None:
        if self.fixed and self.sili:
            raise ValueError("sili=True with fixed=True is not allowed (SSC)")

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        flags = int(self.sili) << 1 | int(self.fixed)
        return (
            bytes((self.OPCODE, flags))
            + self.transfer_length.to_bytes(3, "big")
            + bytes((self.control,))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes, *, block_length: int = 0) -> Read6:
        """Parse a READ(6) CDB (``block_length``: the drive's, for data_in_length).

        Raises:
            DecodeError: wrong opcode or length, reserved bits, or FIXED with SILI.
        """
        check_opcode(cdb, cls.OPCODE, 6, "READ(6)")
        _reserved(cdb, "READ(6)", {1: 0xFC})
        if cdb[1] & 3 == 3:
            raise DecodeError("READ(6): FIXED and SILI are both set")
        return cls(
            transfer_length=_int(cdb, 2, 3),
            fixed=bool(cdb[1] & 1),
            sili=bool(cdb[1] & 2),
            block_length=block_length,
            control=cdb[5],
        )

    @property
    def data_in_length(self) -> int:
        """Bytes the command may read.

        Raises:
            ValueError: ``fixed`` with no ``block_length`` given.
        """
        if not self.fixed:
            return self.transfer_length
        if not self.block_length:
            raise ValueError("a fixed-block READ(6) needs block_length for its data length")
        return self.transfer_length * self.block_length


@frozen
class Write6:
    """WRITE(6) (0Ah): write blocks (FIXED) or one variable-length block.

    The data goes separately (``data_out``); :meth:`check_data` checks it against the
    CDB and :meth:`for_data` builds the CDB from it.

    Attributes:
        transfer_length: blocks when ``fixed``, else bytes (24 bits).
        fixed: the length counts fixed-size blocks.
        block_length: not part of the CDB: the fixed block length, for
            :attr:`data_out_length`.
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x0A
    transfer_length: int = field(validator=uint_field(24))
    fixed: bool = field(default=False, validator=flag_field)
    block_length: int = field(default=0, validator=uint_field(24))
    control: int = field(default=0, validator=uint_field(8))

    @classmethod
    def for_data(cls, data: bytes, *, block_length: int = 0, control: int = 0) -> Write6:
        """The WRITE(6) for ``data``: variable when ``block_length`` is 0, else fixed.

        Raises:
            ValueError: the data is not a whole number of blocks or is too long.
        """
        if block_length:
            if len(data) % block_length:
                raise ValueError(
                    f"{len(data)} bytes are not a whole number of {block_length}-byte blocks"
                )
            return cls(len(data) // block_length, True, block_length, control)
        return cls(len(data), False, 0, control)

    @property
    def data_out_length(self) -> int:
        """Bytes the command writes.

        Raises:
            ValueError: ``fixed`` with no ``block_length`` given.
        """
        if not self.fixed:
            return self.transfer_length
        if not self.block_length:
            raise ValueError("a fixed-block WRITE(6) needs block_length for its data length")
        return self.transfer_length * self.block_length

    def check_data(self, data: Bytes) -> None:
        """Raise ValueError unless ``data`` is as long as the CDB says."""
        if len(data) != self.data_out_length:
            raise ValueError(
                f"WRITE(6) announces {self.data_out_length} bytes, data has {len(data)}"
            )

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return (
            bytes((self.OPCODE, int(self.fixed)))
            + self.transfer_length.to_bytes(3, "big")
            + bytes((self.control,))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes, *, block_length: int = 0) -> Write6:
        """Parse a WRITE(6) CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "WRITE(6)")
        _reserved(cdb, "WRITE(6)", {1: 0xFE})
        return cls(_int(cdb, 2, 3), bool(cdb[1] & 1), block_length, cdb[5])

    @property
    def data_in_length(self) -> int:
        """WRITE reads nothing from the device."""
        return 0


@frozen
class WriteFilemarks6:
    """WRITE FILEMARKS(6) (10h).

    Attributes:
        count: filemarks to write (24 bits; 0 flushes the buffer).
        immed: return before the marks are on the medium.
        wsmk: write setmarks instead (obsolete in SSC-3).
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x10
    count: int = field(default=1, validator=uint_field(24))
    immed: bool = field(default=False, validator=flag_field)
    wsmk: bool = field(default=False, validator=flag_field)
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        flags = int(self.wsmk) << 1 | int(self.immed)
        return bytes((self.OPCODE, flags)) + self.count.to_bytes(3, "big") + bytes((self.control,))

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> WriteFilemarks6:
        """Parse a WRITE FILEMARKS(6) CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "WRITE FILEMARKS(6)")
        _reserved(cdb, "WRITE FILEMARKS(6)", {1: 0xFC})
        return cls(_int(cdb, 2, 3), bool(cdb[1] & 1), bool(cdb[1] & 2), cdb[5])

    @property
    def data_in_length(self) -> int:
        """No data."""
        return 0


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
        _reserved(cdb, "SPACE(6)", {1: 0xF0})
        return cls(_code(cdb[1] & 0x0F), _int(cdb, 2, 3, signed=True), cdb[5])

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
        _reserved(cdb, "SPACE(16)", {1: 0xF0, 2: 0xFF, 3: 0xFF, 14: 0xFF})
        return cls(_code(cdb[1] & 0x0F), _int(cdb, 4, 8, signed=True), _int(cdb, 12, 2), cdb[15])

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
        _reserved(cdb, "LOCATE(10)", {1: 0xF8, 2: 0xFF, 7: 0xFF})
        return cls(
            block_address=_int(cdb, 3, 4),
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
        _reserved(cdb, "LOCATE(16)", {1: 0xC4, 2: 0xFE, 12: 0xFF, 13: 0xFF, 14: 0xFF})
        dest = (cdb[1] >> 3) & 7
        with contextlib.suppress(ValueError):
            dest = LocateDestination(dest)
        return cls(
            logical_identifier=_int(cdb, 4, 8),
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
        _reserved(cdb, "REWIND", {1: 0xFE, 2: 0xFF, 3: 0xFF, 4: 0xFF})
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
        _reserved(cdb, "LOAD UNLOAD", {1: 0xFE, 2: 0xFF, 3: 0xFF, 4: 0xF0})
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
class ReadBlockLimits:
    """READ BLOCK LIMITS (05h); with ``mloi`` (SSC-4) the maximum logical object id."""

    OPCODE: ClassVar[int] = 0x05
    mloi: bool = field(default=False, validator=flag_field)
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return bytes((self.OPCODE, int(self.mloi), 0, 0, 0, self.control))

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ReadBlockLimits:
        """Parse a READ BLOCK LIMITS CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "READ BLOCK LIMITS")
        _reserved(cdb, "READ BLOCK LIMITS", {1: 0xFE, 2: 0xFF, 3: 0xFF, 4: 0xFF})
        return cls(bool(cdb[1] & 1), cdb[5])

    @property
    def data_in_length(self) -> int:
        """6 bytes of block limits, or 20 with MLOI."""
        return 20 if self.mloi else 6


@frozen
class BlockLimits:
    """READ BLOCK LIMITS data (6 bytes).

    Attributes:
        max_block_length: largest block (24 bits; 0: no limit given).
        min_block_length: smallest block (16 bits).
        granularity: supported lengths are multiples of 2**granularity (5 bits).
    """

    max_block_length: int = field(validator=uint_field(24))
    min_block_length: int = field(default=1, validator=uint_field(16))
    granularity: int = field(default=0, validator=uint_field(5))

    def to_bytes(self) -> bytes:
        """The 6 data bytes."""
        return (
            bytes((self.granularity,))
            + self.max_block_length.to_bytes(3, "big")
            + self.min_block_length.to_bytes(2, "big")
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> BlockLimits:
        """Parse the 6 data bytes (reserved bits ignored; DecodeError when short)."""
        if len(buf) < 6:
            raise DecodeError(f"block limits: need 6 bytes, got {len(buf)}")
        return cls(_int(buf, 1, 3), _int(buf, 4, 2), buf[0] & 0x1F)


@frozen
class MaximumLogicalObjectIdentifier:
    """READ BLOCK LIMITS data with MLOI set (SSC-4, 20 bytes)."""

    value: int = field(validator=uint_field(64))

    def to_bytes(self) -> bytes:
        """The 20 data bytes: 12 reserved, then the 64-bit identifier."""
        return bytes(12) + self.value.to_bytes(8, "big")

    @classmethod
    def from_bytes(cls, buf: Bytes) -> MaximumLogicalObjectIdentifier:
        """Parse the 20 data bytes (DecodeError when short)."""
        if len(buf) < 20:
            raise DecodeError(f"maximum logical object identifier: need 20 bytes, got {len(buf)}")
        return cls(_int(buf, 12, 8))


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
        _reserved(cdb, "ERASE", {1: 0xFC, 2: 0xFF, 3: 0xFF, 4: 0xFF})
        return cls(bool(cdb[1] & 1), bool(cdb[1] & 2), cdb[5])

    @property
    def data_in_length(self) -> int:
        """No data."""
        return 0
