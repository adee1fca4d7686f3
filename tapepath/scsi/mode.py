"""MODE SENSE / MODE SELECT (6) and (10), and the mode parameter list (SPC-4 7.5).

The parameter list is one class, :class:`ModeParameters`, with a ``ten_byte`` flag for the
header format: 4-byte header for the (6) commands, 8-byte header for the (10) commands.
Pages are kept as :class:`ModePage` (page code, subpage, PS bit, raw data); command-set
specific page classes convert to and from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any, ClassVar, TypeVar

from attrs import Attribute, field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, flag_field, items_of, need, u16, u24, u32, u64, uint_field
from tapepath.scsi.cdb import ParameterListCommand, check_opcode, check_reserved, check_zero

__all__ = [
    "BlockDescriptor",
    "ModePage",
    "ModePageCodec",
    "ModeParameters",
    "ModeSelect6",
    "ModeSelect10",
    "ModeSense6",
    "ModeSense10",
    "PageControl",
]


class PageControl(IntEnum):
    """PC field of MODE SENSE: which values to return."""

    CURRENT = 0
    CHANGEABLE = 1
    DEFAULT = 2
    SAVED = 3


def _pc(value: int) -> int:
    try:
        return PageControl(value)
    except ValueError:
        return value


@frozen
class ModeSense6:
    """MODE SENSE(6) (1Ah).

    Attributes:
        page_code: 6 bits (3Fh: all pages).
        subpage_code: 8 bits (FFh: all subpages).
        page_control: :class:`PageControl`.
        dbd: disable block descriptors.
        allocation_length: 8 bits.
        control: the CONTROL byte.
    """

    OPCODE: ClassVar[int] = 0x1A
    page_code: int = field(default=0x3F, validator=uint_field(6))
    subpage_code: int = field(default=0, validator=uint_field(8))
    page_control: int = field(default=0, converter=_pc, validator=uint_field(2))
    dbd: bool = field(default=False, validator=flag_field)
    allocation_length: int = field(default=255, validator=uint_field(8))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return bytes(
            (
                self.OPCODE,
                self.dbd << 3,
                (int(self.page_control) << 6) | self.page_code,
                self.subpage_code,
                self.allocation_length,
                self.control,
            )
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ModeSense6:
        """Parse a MODE SENSE(6) CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "MODE SENSE(6)")
        check_reserved(cdb, "MODE SENSE(6)", (1, 0xF7))
        return cls(
            page_code=cdb[2] & 0x3F,
            subpage_code=cdb[3],
            page_control=cdb[2] >> 6,
            dbd=bool(cdb[1] & 0x08),
            allocation_length=cdb[4],
            control=cdb[5],
        )

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


@frozen
class ModeSense10:
    """MODE SENSE(10) (5Ah): as :class:`ModeSense6` plus LLBAA and a 16-bit length."""

    OPCODE: ClassVar[int] = 0x5A
    page_code: int = field(default=0x3F, validator=uint_field(6))
    subpage_code: int = field(default=0, validator=uint_field(8))
    page_control: int = field(default=0, converter=_pc, validator=uint_field(2))
    dbd: bool = field(default=False, validator=flag_field)
    llbaa: bool = field(default=False, validator=flag_field)
    allocation_length: int = field(default=0xFFFF, validator=uint_field(16))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 10-byte CDB."""
        return (
            bytes(
                (
                    self.OPCODE,
                    (self.llbaa << 4) | (self.dbd << 3),
                    (int(self.page_control) << 6) | self.page_code,
                    self.subpage_code,
                    0,
                    0,
                    0,
                )
            )
            + self.allocation_length.to_bytes(2, "big")
            + bytes((self.control,))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ModeSense10:
        """Parse a MODE SENSE(10) CDB."""
        check_opcode(cdb, cls.OPCODE, 10, "MODE SENSE(10)")
        check_reserved(cdb, "MODE SENSE(10)", (1, 0xE7))
        check_zero(cdb, "MODE SENSE(10)", 4, 7)
        return cls(
            page_code=cdb[2] & 0x3F,
            subpage_code=cdb[3],
            page_control=cdb[2] >> 6,
            dbd=bool(cdb[1] & 0x08),
            llbaa=bool(cdb[1] & 0x10),
            allocation_length=u16(cdb, 7),
            control=cdb[9],
        )

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


@frozen
class ModeSelect6(ParameterListCommand):
    """MODE SELECT(6) (15h). The parameter list is sent separately as data out.

    Attributes:
        pf: the pages follow the page format (set it for every standard page).
        sp: save the pages.
        parameter_list_length: 8 bits; :meth:`for_parameters` fills it in.
        control: the CONTROL byte.
        rtd: revert to defaults (SPC-5 RTD, byte 1 bit 1).
    """

    NAME: ClassVar[str] = "MODE SELECT(6)"
    OPCODE: ClassVar[int] = 0x15
    pf: bool = field(default=True, validator=flag_field)
    sp: bool = field(default=False, validator=flag_field)
    parameter_list_length: int = field(default=0, validator=uint_field(8))
    control: int = field(default=0, validator=uint_field(8))
    rtd: bool = field(default=False, validator=flag_field)

    @classmethod
    def for_parameters(
        cls, params: ModeParameters, *, pf: bool = True, sp: bool = False, control: int = 0
    ) -> tuple[ModeSelect6, bytes]:
        """The CDB and the data-out bytes for ``params`` (6-byte header format).

        Raises:
            ValueError: the parameter list does not fit in 255 bytes.
        """
        data = params.to_bytes(select=True, ten_byte=False)
        return cls(pf, sp, len(data), control), data

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return bytes(
            (
                self.OPCODE,
                (self.pf << 4) | (self.rtd << 1) | int(self.sp),
                0,
                0,
                self.parameter_list_length,
                self.control,
            )
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ModeSelect6:
        """Parse a MODE SELECT(6) CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "MODE SELECT(6)")
        check_reserved(cdb, "MODE SELECT(6)", (1, 0xEC))
        check_zero(cdb, "MODE SELECT(6)", 2, 4)
        return cls(bool(cdb[1] & 0x10), bool(cdb[1] & 1), cdb[4], cdb[5], bool(cdb[1] & 2))


@frozen
class ModeSelect10(ParameterListCommand):
    """MODE SELECT(10) (55h): as :class:`ModeSelect6` with a 16-bit list length."""

    NAME: ClassVar[str] = "MODE SELECT(10)"
    OPCODE: ClassVar[int] = 0x55
    pf: bool = field(default=True, validator=flag_field)
    sp: bool = field(default=False, validator=flag_field)
    parameter_list_length: int = field(default=0, validator=uint_field(16))
    control: int = field(default=0, validator=uint_field(8))
    rtd: bool = field(default=False, validator=flag_field)

    @classmethod
    def for_parameters(
        cls, params: ModeParameters, *, pf: bool = True, sp: bool = False, control: int = 0
    ) -> tuple[ModeSelect10, bytes]:
        """The CDB and the data-out bytes for ``params`` (8-byte header format)."""
        data = params.to_bytes(select=True, ten_byte=True)
        return cls(pf, sp, len(data), control), data

    def to_bytes(self) -> bytes:
        """Return the 10-byte CDB."""
        return (
            bytes((self.OPCODE, (self.pf << 4) | (self.rtd << 1) | int(self.sp), 0, 0, 0, 0, 0))
            + self.parameter_list_length.to_bytes(2, "big")
            + bytes((self.control,))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ModeSelect10:
        """Parse a MODE SELECT(10) CDB."""
        check_opcode(cdb, cls.OPCODE, 10, "MODE SELECT(10)")
        check_reserved(cdb, "MODE SELECT(10)", (1, 0xEC))
        check_zero(cdb, "MODE SELECT(10)", 2, 7)
        return cls(bool(cdb[1] & 0x10), bool(cdb[1] & 1), u16(cdb, 7), cdb[9], bool(cdb[1] & 2))


@frozen
class BlockDescriptor:
    """A mode parameter block descriptor.

    The short form (8 bytes) is the general one tape and changer devices use: density code,
    24-bit number of blocks, 24-bit block length. The long LBA form (16 bytes, LONGLBA set
    in the 10-byte header) has a 64-bit number of blocks and a 32-bit block length and no
    density code.

    Attributes:
        density_code: 8 bits (must be 0 in the long form).
        number_of_blocks: 24 bits (short) or 64 bits (long).
        block_length: 24 bits (short) or 32 bits (long); 0 for variable-block tape.
    """

    density_code: int = field(default=0, validator=uint_field(8))
    number_of_blocks: int = field(default=0, validator=uint_field(64))
    block_length: int = field(default=0, validator=uint_field(32))

    def to_bytes(self, *, long_lba: bool = False) -> bytes:
        """Encode as a short (8-byte) or long LBA (16-byte) descriptor.

        Raises:
            ValueError: a field does not fit the chosen form.
        """
        if long_lba:
            if self.density_code:
                raise ValueError("density_code must be 0 in a long LBA block descriptor")
            return (
                self.number_of_blocks.to_bytes(8, "big")
                + bytes(4)
                + self.block_length.to_bytes(4, "big")
            )
        if self.number_of_blocks >> 24:
            raise ValueError(f"number_of_blocks={self.number_of_blocks} does not fit in 24 bits")
        if self.block_length >> 24:
            raise ValueError(f"block_length={self.block_length} does not fit in 24 bits")
        return (
            bytes((self.density_code,))
            + self.number_of_blocks.to_bytes(3, "big")
            + b"\0"
            + self.block_length.to_bytes(3, "big")
        )

    @classmethod
    def from_bytes(cls, buf: Bytes, *, long_lba: bool = False) -> BlockDescriptor:
        """Parse one descriptor of the given form (exact length)."""
        size = 16 if long_lba else 8
        if len(buf) != size:
            raise DecodeError(f"block descriptor: {size} bytes expected, got {len(buf)}")
        if long_lba:
            return cls(0, u64(buf, 0), u32(buf, 12))
        return cls(buf[0], u24(buf, 1), u24(buf, 5))


def _page_data(_inst: Any, attr: Attribute[bytes], value: bytes) -> None:
    if len(value) > 0xFFFF:
        raise ValueError(f"{attr.name} is {len(value)} bytes long, at most 65535 fit")


@frozen
class ModePage:
    """One mode page, undecoded.

    Attributes:
        page_code: 6 bits. Page 00h is vendor specific: it has no length byte, runs to the
            end of the parameter list and must be the last page.
        subpage_code: 8 bits; non-zero selects the sub_page format (SPF set, 16-bit length).
        ps: parameters saveable (MODE SENSE only; must be 0 in MODE SELECT).
        data: the bytes after the page header (at most 255 in page_0 format).
    """

    page_code: int = field(validator=uint_field(6))
    data: bytes = field(default=b"", converter=bytes, validator=_page_data)
    subpage_code: int = field(default=0, validator=uint_field(8))
    ps: bool = field(default=False, validator=flag_field)

    def __attrs_post_init__(self) -> None:
        if not self.subpage_code and self.page_code and len(self.data) > 255:
            raise ValueError(f"data: {len(self.data)} bytes do not fit a page_0 format page")

    @property
    def spf(self) -> bool:
        """The page uses the sub_page format."""
        return self.subpage_code != 0

    def to_bytes(self, *, select: bool = False) -> bytes:
        """Encode the page (PS cleared when ``select``)."""
        ps = 0 if select else self.ps << 7
        if self.spf:
            return (
                bytes((ps | 0x40 | self.page_code, self.subpage_code))
                + len(self.data).to_bytes(2, "big")
                + self.data
            )
        if self.page_code == 0:
            return bytes((ps,)) + self.data
        return bytes((ps | self.page_code, len(self.data))) + self.data

    @classmethod
    def parse(cls, buf: Bytes, offset: int = 0) -> tuple[ModePage, int]:
        """Parse the page at ``offset``; return it and the offset after it."""
        need(buf, offset + 1, "mode page")
        b0 = buf[offset]
        ps, code = bool(b0 & 0x80), b0 & 0x3F
        if b0 & 0x40:
            need(buf, offset + 4, "mode subpage header")
            sub, length, start = buf[offset + 1], u16(buf, offset + 2), offset + 4
            if sub == 0:
                raise DecodeError("mode page: SPF set with subpage code 0")
        elif code == 0:
            return cls(0, bytes(buf[offset + 1 :]), 0, ps), len(buf)
        else:
            need(buf, offset + 2, "mode page header")
            sub, length, start = 0, buf[offset + 1], offset + 2
        end = start + length
        if end > len(buf):
            raise DecodeError(
                f"mode page {code:02X}h/{sub:02X}h at {offset}: length {length} runs past "
                f"the parameter list"
            )
        return cls(code, bytes(buf[start:end]), sub, ps), end

    @classmethod
    def from_bytes(cls, buf: Bytes) -> ModePage:
        """Parse exactly one page."""
        page, end = cls.parse(buf)
        if end != len(buf):
            raise DecodeError(f"mode page: {len(buf) - end} bytes after it")
        return page


def _descriptor_tuple(value: Iterable[BlockDescriptor]) -> tuple[BlockDescriptor, ...]:
    return tuple(value)


def _page_tuple(value: Iterable[ModePage]) -> tuple[ModePage, ...]:
    return tuple(value)


@frozen
class ModeParameters:
    """The mode parameter list of MODE SENSE and MODE SELECT.

    Attributes:
        medium_type: 8 bits.
        device_specific_parameter: 8 bits (tape: WP bit 7, BUFFERED MODE bits 6-4, SPEED
            bits 3-0).
        block_descriptors: :class:`BlockDescriptor` values.
        pages: :class:`ModePage` values.
        long_lba: 16-byte block descriptors (10-byte header only).
        ten_byte: the 8-byte header of the (10) commands; else the 4-byte one.
    """

    medium_type: int = field(default=0, validator=uint_field(8))
    device_specific_parameter: int = field(default=0, validator=uint_field(8))
    block_descriptors: tuple[BlockDescriptor, ...] = field(
        default=(), converter=_descriptor_tuple, validator=items_of(BlockDescriptor)
    )
    pages: tuple[ModePage, ...] = field(
        default=(), converter=_page_tuple, validator=items_of(ModePage)
    )
    long_lba: bool = field(default=False, validator=flag_field)
    ten_byte: bool = field(default=False, validator=flag_field)

    def __attrs_post_init__(self) -> None:
        if self.long_lba and not self.ten_byte:
            raise ValueError("long_lba needs ten_byte (the 6-byte header has no LONGLBA bit)")
        for page in self.pages[:-1]:
            if page.page_code == 0 and not page.spf:
                raise ValueError("pages: the vendor-specific page 00h must be the last one")

    def page(self, page_code: int, subpage_code: int = 0) -> ModePage | None:
        """The first page with this code and subpage, or None."""
        for p in self.pages:
            if p.page_code == page_code and p.subpage_code == subpage_code:
                return p
        return None

    def to_bytes(self, *, select: bool = False, ten_byte: bool | None = None) -> bytes:
        """Encode the parameter list.

        Args:
            select: for MODE SELECT: MODE DATA LENGTH and the PS bits are sent as zero.
            ten_byte: override the header format (default: :attr:`ten_byte`).

        Raises:
            ValueError: the list does not fit the header's length fields.
        """
        ten = self.ten_byte if ten_byte is None else ten_byte
        if self.long_lba and not ten:
            raise ValueError("long_lba needs the 10-byte header")
        descriptors = b"".join(d.to_bytes(long_lba=self.long_lba) for d in self.block_descriptors)
        pages = b"".join(p.to_bytes(select=select) for p in self.pages)
        if ten:
            total = 8 + len(descriptors) + len(pages)
            if total - 2 > 0xFFFF or len(descriptors) > 0xFFFF:
                raise ValueError(f"mode parameter list of {total} bytes is too long for (10)")
            length = 0 if select else total - 2
            return (
                length.to_bytes(2, "big")
                + bytes((self.medium_type, self.device_specific_parameter, int(self.long_lba), 0))
                + len(descriptors).to_bytes(2, "big")
                + descriptors
                + pages
            )
        total = 4 + len(descriptors) + len(pages)
        if total - 1 > 0xFF or len(descriptors) > 0xFF:
            raise ValueError(f"mode parameter list of {total} bytes is too long for (6)")
        length = 0 if select else total - 1
        return (
            bytes((length, self.medium_type, self.device_specific_parameter, len(descriptors)))
            + descriptors
            + pages
        )

    @classmethod
    def from_bytes(cls, buf: Bytes, *, ten_byte: bool = False) -> ModeParameters:
        """Parse a parameter list of the given header format.

        A MODE DATA LENGTH of zero (as in MODE SELECT data) means "the whole buffer"; a
        larger one than the buffer (allocation length too small) is cut to the buffer, and
        a page cut in the middle is a DecodeError.
        """
        if ten_byte:
            need(buf, 8, "mode parameter header(10)")
            length, bd_len, header = u16(buf, 0) + 2, u16(buf, 6), 8
            long_lba = bool(buf[4] & 1)
        else:
            need(buf, 4, "mode parameter header(6)")
            length, bd_len, header = buf[0] + 1, buf[3], 4
            long_lba = False
        end = len(buf) if length <= 2 else min(len(buf), length)
        size = 16 if long_lba else 8
        if bd_len % size:
            raise DecodeError(f"block descriptor length {bd_len} is not a multiple of {size}")
        if header + bd_len > end:
            raise DecodeError(f"block descriptor length {bd_len} runs past the parameter list")
        descriptors = tuple(
            BlockDescriptor.from_bytes(buf[off : off + size], long_lba=long_lba)
            for off in range(header, header + bd_len, size)
        )
        pages = []
        offset = header + bd_len
        region = bytes(buf[:end])
        while offset < end:
            page, offset = ModePage.parse(region, offset)
            pages.append(page)
        return cls(
            medium_type=buf[2] if ten_byte else buf[1],
            device_specific_parameter=buf[3] if ten_byte else buf[2],
            block_descriptors=descriptors,
            pages=tuple(pages),
            long_lba=long_lba,
            ten_byte=ten_byte,
        )


_P = TypeVar("_P", bound="ModePageCodec")


def split_page(buf: Bytes, code: int, name: str) -> tuple[bool, bytes]:
    """Check a whole page_0 format page's code and length; return (PS, body).

    Raises:
        DecodeError: no 2-byte header, another page code, the SPF bit set, or a page
            length that runs past the buffer.
    """
    if len(buf) < 2:
        raise DecodeError(f"{name}: need the 2-byte page header, got {len(buf)} bytes")
    if buf[0] & 0x3F != code:
        raise DecodeError(f"{name}: page code {code:02X}h expected, got {buf[0] & 0x3F:02X}h")
    if buf[0] & 0x40:
        raise DecodeError(f"{name}: a sub-page format (SPF) page is not expected")
    length = buf[1]
    if 2 + length > len(buf):
        raise DecodeError(f"{name}: page length {length} runs past the {len(buf)}-byte buffer")
    return bool(buf[0] & 0x80), bytes(buf[2 : 2 + length])


class ModePageCodec:
    """The conversions a typed page_0 format mode page shares.

    A page class (attrs ``@frozen``) sets ``PAGE_CODE`` and ``PAGE_NAME``, has a ``ps``
    field, and writes ``to_body()`` / ``from_body(body, ps=...)``; this base derives the
    whole page (``to_bytes()`` / ``from_bytes()``) and the :class:`ModePage` conversions
    (``to_mode_page()`` / ``from_mode_page()``) from them.
    """

    __slots__ = ()

    PAGE_CODE: ClassVar[int]
    PAGE_NAME: ClassVar[str]
    ps: bool

    def to_body(self) -> bytes:
        """The page body: the bytes after the page code and page length."""
        raise NotImplementedError

    @classmethod
    def from_body(cls: type[_P], body: Bytes, *, ps: bool = False) -> _P:
        """Parse the page body (DecodeError when it is too short)."""
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The whole page: code (with PS), length and body."""
        body = self.to_body()
        return bytes((int(self.ps) << 7 | self.PAGE_CODE, len(body))) + body

    @classmethod
    def from_bytes(cls: type[_P], buf: Bytes) -> _P:
        """Parse the whole page (code and length included)."""
        ps, body = split_page(buf, cls.PAGE_CODE, cls.PAGE_NAME)
        return cls.from_body(body, ps=ps)

    def to_mode_page(self) -> ModePage:
        """The page as a :class:`ModePage` for a mode parameter list."""
        return ModePage(self.PAGE_CODE, self.to_body(), 0, self.ps)

    @classmethod
    def from_mode_page(cls: type[_P], page: ModePage) -> _P:
        """Decode a :class:`ModePage` (DecodeError for another page)."""
        if page.page_code != cls.PAGE_CODE or page.subpage_code:
            raise DecodeError(
                f"{cls.PAGE_NAME}: got page "
                f"{page.page_code:02X}h/{page.subpage_code:02X}h, not "
                f"{cls.PAGE_CODE:02X}h"
            )
        return cls.from_body(page.data, ps=page.ps)
