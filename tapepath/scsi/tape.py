"""SSC (tape) commands: data transfer and block limits, plus the motion re-exports.

READ(6), WRITE(6), WRITE FILEMARKS(6), READ BLOCK LIMITS (and its data). The motion and
medium commands (SPACE(6), SPACE(16), LOCATE(10), LOCATE(16), REWIND, LOAD UNLOAD,
ERASE) live in :mod:`tapepath.scsi.tape_motion` and are re-exported here. READ POSITION
lives in :mod:`tapepath.scsi.position`, REPORT DENSITY SUPPORT in
:mod:`tapepath.scsi.density`.

Opcodes 1Bh (LOAD UNLOAD) and 2Bh (LOCATE(10)) mean other commands on other device
types: a device model dispatches on its own opcode table.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, be_int, flag_field, uint_field
from tapepath.scsi.cdb import check_opcode, check_reserved_bits
from tapepath.scsi.tape_motion import (
    Erase,
    LoadUnload,
    Locate10,
    Locate16,
    LocateDestination,
    Rewind,
    Space6,
    Space16,
    SpaceCode,
)

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
        check_reserved_bits(cdb, "READ(6)", {1: 0xFC})
        if cdb[1] & 3 == 3:
            raise DecodeError("READ(6): FIXED and SILI are both set")
        return cls(
            transfer_length=be_int(cdb, 2, 3),
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
        check_reserved_bits(cdb, "WRITE(6)", {1: 0xFE})
        return cls(be_int(cdb, 2, 3), bool(cdb[1] & 1), block_length, cdb[5])

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
        check_reserved_bits(cdb, "WRITE FILEMARKS(6)", {1: 0xFC})
        return cls(be_int(cdb, 2, 3), bool(cdb[1] & 1), bool(cdb[1] & 2), cdb[5])

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
        check_reserved_bits(cdb, "READ BLOCK LIMITS", {1: 0xFE, 2: 0xFF, 3: 0xFF, 4: 0xFF})
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
        return cls(be_int(buf, 1, 3), be_int(buf, 4, 2), buf[0] & 0x1F)


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
        return cls(be_int(buf, 12, 8))
