"""Tape mode pages (SSC-3) and the block length of the mode block descriptor.

:class:`DataCompressionPage` (0Fh) converts to and from the page body (the bytes
after the page code and length) with ``to_body()`` / ``from_body()``, and the whole
page with ``to_bytes()`` / ``from_bytes()``. :func:`block_length_from_descriptor` and
:func:`block_length_to_descriptor` convert between a block descriptor's BLOCK LENGTH
and a tape block size (0 in the descriptor means variable-length blocks);
:func:`block_length_of` and :func:`with_block_length` do the same on a
:class:`~tapepath.scsi.mode.BlockDescriptor`.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, check_uint, flag_field, uint_field
from tapepath.scsi.mode import BlockDescriptor, ModePage

__all__ = [
    "COMPRESSION_ALGORITHMS",
    "DataCompressionPage",
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


def _split_page(buf: Bytes, code: int, name: str) -> tuple[bool, bytes]:
    if len(buf) < 2:
        raise DecodeError(f"{name}: need the 2-byte page header, got {len(buf)} bytes")
    if buf[0] & 0x3F != code:
        raise DecodeError(f"{name}: page code {code:02X}h expected, got {buf[0] & 0x3F:02X}h")
    if buf[0] & 0x40:
        raise DecodeError(f"{name}: a sub-page format (SPF) page is not expected")
    if 2 + buf[1] > len(buf):
        raise DecodeError(f"{name}: page length {buf[1]} runs past the {len(buf)}-byte buffer")
    return bool(buf[0] & 0x80), bytes(buf[2 : 2 + buf[1]])


@frozen
class DataCompressionPage:
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

    def to_bytes(self) -> bytes:
        """The whole page: code, length 0Eh and body."""
        return bytes((int(self.ps) << 7 | self.PAGE_CODE, self.BODY_LENGTH)) + self.to_body()

    @classmethod
    def from_bytes(cls, buf: Bytes) -> DataCompressionPage:
        """Parse the whole page (code and length included)."""
        ps, body = _split_page(buf, cls.PAGE_CODE, "data compression page")
        return cls.from_body(body, ps=ps)

    def to_mode_page(self) -> ModePage:
        """The page as a :class:`~tapepath.scsi.mode.ModePage` for a mode parameter list."""
        return ModePage(self.PAGE_CODE, self.to_body(), 0, self.ps)

    @classmethod
    def from_mode_page(cls, page: ModePage) -> DataCompressionPage:
        """Decode a :class:`~tapepath.scsi.mode.ModePage` (DecodeError for another page)."""
        if page.page_code != cls.PAGE_CODE or page.subpage_code:
            raise DecodeError(
                f"data compression page: got page "
                f"{page.page_code:02X}h/{page.subpage_code:02X}h, not "
                f"{cls.PAGE_CODE:02X}h"
            )
        return cls.from_body(page.data, ps=page.ps)


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
