"""Tape mode pages (SSC-3) and the block length of the mode block descriptor.

:class:`DataCompressionPage` (0Fh) and :class:`DeviceConfigurationPage` (10h)
convert to and from the page body (the bytes after the page code and length) with
``to_body()`` / ``from_body()``, and the whole page with ``to_bytes()`` /
``from_bytes()``. :func:`block_length_from_descriptor` and
:func:`block_length_to_descriptor` convert between a block descriptor's BLOCK LENGTH
and a tape block size (0 in the descriptor means variable-length blocks);
:func:`block_length_of` and :func:`with_block_length` do the same on a
:class:`~tapepath.scsi.mode.BlockDescriptor`. :class:`TapeDeviceParameter` decodes
the header's device-specific parameter byte (write protect, buffered mode, speed).
"""

from __future__ import annotations

from typing import ClassVar

from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, check_uint, flag_field, uint_field
from tapepath.scsi.mode import BlockDescriptor, ModePageCodec

__all__ = [
    "COMPRESSION_ALGORITHMS",
    "DataCompressionPage",
    "DeviceConfigurationPage",
    "TapeDeviceParameter",
    "block_length_from_descriptor",
    "block_length_of",
    "block_length_to_descriptor",
    "with_block_length",
]

#: Some registered compression algorithm identifiers (SSC-3 annex / T10 list).
COMPRESSION_ALGORITHMS: dict[int, str] = {
    0x00: "no algorithm",
    0x01: "default algorithm",
    0x03: "IBM ALDC 512-byte history",
    0x04: "IBM ALDC 1024-byte history",
    0x05: "IBM ALDC 2048-byte history",
    0x10: "IBM IDRC",
    0x20: "DCLZ",
    0xFF: "unregistered",
}


@frozen
class DataCompressionPage(ModePageCodec):
    """Data Compression mode page (0Fh).

    Attributes:
        dce: data compression enable (compress what is written).
        dcc: data compression capable (read-only: the drive can compress).
        dde: data decompression enable.
        red: report exception on decompression (2 bits).
        compression_algorithm: 32-bit algorithm identifier (1: the default).
        decompression_algorithm: 32-bit algorithm identifier.
        ps: the parameters saveable bit (MODE SENSE only).
    """

    PAGE_NAME: ClassVar[str] = "data compression page"
    PAGE_CODE: ClassVar[int] = 0x0F
    BODY_LENGTH: ClassVar[int] = 0x0E
    dce: bool = field(default=False, validator=flag_field)
    dcc: bool = field(default=False, validator=flag_field)
    dde: bool = field(default=True, validator=flag_field)
    red: int = field(default=0, validator=uint_field(2))
    compression_algorithm: int = field(default=0, validator=uint_field(32))
    decompression_algorithm: int = field(default=0, validator=uint_field(32))
    ps: bool = field(default=False, validator=flag_field)

    def to_body(self) -> bytes:
        """The 14-byte page body."""
        return (
            bytes((int(self.dce) << 7 | int(self.dcc) << 6, int(self.dde) << 7 | self.red << 5))
            + self.compression_algorithm.to_bytes(4, "big")
            + self.decompression_algorithm.to_bytes(4, "big")
            + bytes(4)
        )

    @classmethod
    def from_body(cls, body: Bytes, *, ps: bool = False) -> DataCompressionPage:
        """Parse the body (at least 10 bytes; reserved bits ignored).

        Raises:
            DecodeError: the body is shorter than 10 bytes.
        """
        if len(body) < 10:
            raise DecodeError(f"data compression page: need 10 bytes, got {len(body)}")
        return cls(
            dce=bool(body[0] & 0x80),
            dcc=bool(body[0] & 0x40),
            dde=bool(body[1] & 0x80),
            red=(body[1] >> 5) & 3,
            compression_algorithm=int.from_bytes(body[2:6], "big"),
            decompression_algorithm=int.from_bytes(body[6:10], "big"),
            ps=ps,
        )


@frozen
class DeviceConfigurationPage(ModePageCodec):
    """Device Configuration mode page (10h, SSC-3).

    Attributes:
        cap: change active partition (MODE SELECT).
        caf: change active format.
        active_format: 5 bits.
        active_partition: the partition in use.
        write_buffer_full_ratio: buffer fullness that starts writing to the medium.
        read_buffer_empty_ratio: buffer emptiness that starts reading ahead.
        write_delay_time: 100 ms units before buffered data is written (16 bits).
        obr: object buffer recovery (DBR in older drives' manuals).
        lois: logical object identifiers supported (BIS).
        rsmk: report setmarks (obsolete).
        avc: automatic velocity control.
        socf: stop on consecutive filemarks (2 bits).
        robo: reverse object buffer order (RBO).
        rew: report early warning.
        gap_size: inter-block gap (8 bits).
        eod_defined: end-of-data format (3 bits).
        eeg: enable EOD generation.
        sew: synchronize at early warning.
        swp: software write protect.
        baml: BAM applies to LOCATE (SSC-4).
        bam: block address mode (SSC-4).
        buffer_size_at_early_warning: 24 bits.
        select_data_compression_algorithm: 8 bits (0 none, 1 default).
        wtre: WORM tamper read enable (2 bits).
        oir: only if reserved.
        rewind_on_reset: 2 bits.
        asocwp: associated write protection.
        perswp: persistent write protection.
        prmwp: permanent write protection.
        ps: the parameters saveable bit (MODE SENSE only).
    """

    PAGE_NAME: ClassVar[str] = "device configuration page"
    PAGE_CODE: ClassVar[int] = 0x10
    BODY_LENGTH: ClassVar[int] = 0x0E
    cap: bool = field(default=False, validator=flag_field)
    caf: bool = field(default=False, validator=flag_field)
    active_format: int = field(default=0, validator=uint_field(5))
    active_partition: int = field(default=0, validator=uint_field(8))
    write_buffer_full_ratio: int = field(default=0, validator=uint_field(8))
    read_buffer_empty_ratio: int = field(default=0, validator=uint_field(8))
    write_delay_time: int = field(default=0, validator=uint_field(16))
    obr: bool = field(default=False, validator=flag_field)
    lois: bool = field(default=False, validator=flag_field)
    rsmk: bool = field(default=False, validator=flag_field)
    avc: bool = field(default=False, validator=flag_field)
    socf: int = field(default=0, validator=uint_field(2))
    robo: bool = field(default=False, validator=flag_field)
    rew: bool = field(default=False, validator=flag_field)
    gap_size: int = field(default=0, validator=uint_field(8))
    eod_defined: int = field(default=0, validator=uint_field(3))
    eeg: bool = field(default=False, validator=flag_field)
    sew: bool = field(default=False, validator=flag_field)
    swp: bool = field(default=False, validator=flag_field)
    baml: bool = field(default=False, validator=flag_field)
    bam: bool = field(default=False, validator=flag_field)
    buffer_size_at_early_warning: int = field(default=0, validator=uint_field(24))
    select_data_compression_algorithm: int = field(default=0, validator=uint_field(8))
    wtre: int = field(default=0, validator=uint_field(2))
    oir: bool = field(default=False, validator=flag_field)
    rewind_on_reset: int = field(default=0, validator=uint_field(2))
    asocwp: bool = field(default=False, validator=flag_field)
    perswp: bool = field(default=False, validator=flag_field)
    prmwp: bool = field(default=False, validator=flag_field)
    ps: bool = field(default=False, validator=flag_field)

    def to_body(self) -> bytes:
        """The 14-byte page body."""
        b8 = (
            int(self.obr) << 7
            | int(self.lois) << 6
            | int(self.rsmk) << 5
            | int(self.avc) << 4
            | self.socf << 2
            | int(self.robo) << 1
            | int(self.rew)
        )
        b10 = (
            self.eod_defined << 5
            | int(self.eeg) << 4
            | int(self.sew) << 3
            | int(self.swp) << 2
            | int(self.baml) << 1
            | int(self.bam)
        )
        b15 = (
            self.wtre << 6
            | int(self.oir) << 5
            | self.rewind_on_reset << 3
            | int(self.asocwp) << 2
            | int(self.perswp) << 1
            | int(self.prmwp)
        )
        return (
            bytes(
                (
                    int(self.cap) << 6 | int(self.caf) << 5 | self.active_format,
                    self.active_partition,
                    self.write_buffer_full_ratio,
                    self.read_buffer_empty_ratio,
                )
            )
            + self.write_delay_time.to_bytes(2, "big")
            + bytes((b8, self.gap_size, b10))
            + self.buffer_size_at_early_warning.to_bytes(3, "big")
            + bytes((self.select_data_compression_algorithm, b15))
        )

    @classmethod
    def from_body(cls, body: Bytes, *, ps: bool = False) -> DeviceConfigurationPage:
        """Parse the 14-byte body (reserved bits ignored).

        Raises:
            DecodeError: the body is shorter than 14 bytes.
        """
        if len(body) < 14:
            raise DecodeError(f"device configuration page: need 14 bytes, got {len(body)}")
        b8, b10, b15 = body[6], body[8], body[13]
        return cls(
            cap=bool(body[0] & 0x40),
            caf=bool(body[0] & 0x20),
            active_format=body[0] & 0x1F,
            active_partition=body[1],
            write_buffer_full_ratio=body[2],
            read_buffer_empty_ratio=body[3],
            write_delay_time=int.from_bytes(body[4:6], "big"),
            obr=bool(b8 & 0x80),
            lois=bool(b8 & 0x40),
            rsmk=bool(b8 & 0x20),
            avc=bool(b8 & 0x10),
            socf=(b8 >> 2) & 3,
            robo=bool(b8 & 2),
            rew=bool(b8 & 1),
            gap_size=body[7],
            eod_defined=b10 >> 5,
            eeg=bool(b10 & 0x10),
            sew=bool(b10 & 8),
            swp=bool(b10 & 4),
            baml=bool(b10 & 2),
            bam=bool(b10 & 1),
            buffer_size_at_early_warning=int.from_bytes(body[9:12], "big"),
            select_data_compression_algorithm=body[12],
            wtre=b15 >> 6,
            oir=bool(b15 & 0x20),
            rewind_on_reset=(b15 >> 3) & 3,
            asocwp=bool(b15 & 4),
            perswp=bool(b15 & 2),
            prmwp=bool(b15 & 1),
            ps=ps,
        )


@frozen
class TapeDeviceParameter:
    """The DEVICE-SPECIFIC PARAMETER byte of a tape's mode parameter header (SSC-3).

    Attributes:
        write_protect: WP: the medium is write protected (MODE SENSE).
        buffered_mode: 3 bits; 1: GOOD status once the data is in the buffer.
        speed: 4 bits; 0 is the drive's default speed.
    """

    write_protect: bool = field(default=False, validator=flag_field)
    buffered_mode: int = field(default=1, validator=uint_field(3))
    speed: int = field(default=0, validator=uint_field(4))

    def to_byte(self) -> int:
        """The byte value for ``ModeParameters.device_specific_parameter``."""
        return int(self.write_protect) << 7 | self.buffered_mode << 4 | self.speed

    @classmethod
    def from_byte(cls, value: int) -> TapeDeviceParameter:
        """Decode the byte (ValueError when it is not 0..255)."""
        check_uint("device_specific_parameter", value, 8)
        return cls(bool(value & 0x80), (value >> 4) & 7, value & 0x0F)


def block_length_from_descriptor(block_length: int) -> int | None:
    """A block descriptor's BLOCK LENGTH as a tape block size: None for variable (0)."""
    check_uint("block_length", block_length, 24)
    return block_length or None


def block_length_to_descriptor(block_size: int | None) -> int:
    """The BLOCK LENGTH to put in a block descriptor: 0 for variable (None or 0).

    Raises:
        ValueError: the size does not fit in 24 bits.
    """
    return 0 if block_size is None else check_uint("block_length", block_size, 24)


def block_length_of(descriptor: BlockDescriptor) -> int | None:
    """The tape block size a mode block descriptor sets: None for variable blocks."""
    return descriptor.block_length or None


def with_block_length(descriptor: BlockDescriptor, block_size: int | None) -> BlockDescriptor:
    """A copy of ``descriptor`` setting fixed ``block_size`` bytes, or variable (None).

    Raises:
        ValueError: the size does not fit the 24-bit field of a short descriptor.
    """
    length = block_length_to_descriptor(block_size)
    return BlockDescriptor(descriptor.density_code, descriptor.number_of_blocks, length)
