"""MODE SENSE / MODE SELECT (6) and (10) and the mode parameter list."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.mode import (
    BlockDescriptor,
    ModePage,
    ModeParameters,
    ModeSelect6,
    ModeSelect10,
    ModeSense6,
    ModeSense10,
    PageControl,
)

# Data compression page 0Fh as a drive sends it (SSC-3 8.3.2): PS, length 0Eh, DCE+DCC, DDE.
PAGE_0F = bytes([0x8F, 0x0E, 0xC0, 0x80, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0])


def _sense6() -> bytes:
    """A MODE SENSE(6) answer laid out by hand (SPC-4 tables 453 and 457)."""
    header = bytes([27, 0x00, 0x10, 8])  # length, medium type, buffered mode 1, BD length
    bd = bytes([0x5A, 0, 0, 0, 0, 0, 0x04, 0x00])  # LTO-8 density, block length 1024
    return header + bd + PAGE_0F


def _sense10_long() -> bytes:
    """A MODE SENSE(10) answer with a long LBA block descriptor and a subpage."""
    bd = (1 << 40).to_bytes(8, "big") + bytes(4) + (4096).to_bytes(4, "big")
    page = bytes([0x40 | 0x1C, 0x01, 0x00, 0x02, 0xAA, 0xBB])
    body = bd + page
    header = (6 + len(body)).to_bytes(2, "big") + bytes([0x00, 0x80, 0x01, 0x00, 0x00, 16])
    return header + body


class TestModeSenseCdbs:
    """MODE SENSE(6) and (10) CDBs."""

    def test_layout_6(self) -> None:
        """1Ah, DBD byte 1 bit 3, PC bits 7-6 and page code of byte 2, subpage, length."""
        cdb = ModeSense6(0x0F, 0, PageControl.CHANGEABLE, dbd=True, allocation_length=0xFF)
        assert cdb.to_bytes() == bytes([0x1A, 0x08, 0x4F, 0x00, 0xFF, 0x00])

    def test_layout_10(self) -> None:
        """5Ah, LLBAA byte 1 bit 4, 16-bit allocation length in bytes 7-8."""
        cdb = ModeSense10(0x3F, 0xFF, PageControl.SAVED, llbaa=True, allocation_length=0x1234)
        assert cdb.to_bytes() == bytes([0x5A, 0x10, 0xFF, 0xFF, 0, 0, 0, 0x12, 0x34, 0])

    @given(
        st.integers(0, 63),
        st.integers(0, 255),
        st.integers(0, 3),
        st.booleans(),
        st.integers(0, 255),
    )
    def test_round_trip_6(self, page: int, sub: int, pc: int, dbd: bool, alloc: int) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = ModeSense6(page, sub, pc, dbd, alloc)
        assert ModeSense6.from_bytes(cmd.to_bytes()) == cmd

    @given(
        st.integers(0, 63),
        st.integers(0, 255),
        st.integers(0, 3),
        st.booleans(),
        st.booleans(),
        st.integers(0, 0xFFFF),
    )
    def test_round_trip_10(
        self, page: int, sub: int, pc: int, dbd: bool, llbaa: bool, alloc: int
    ) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = ModeSense10(page, sub, pc, dbd, llbaa, alloc)
        assert ModeSense10.from_bytes(cmd.to_bytes()) == cmd
        assert cmd.data_in_length == alloc

    def test_ranges(self) -> None:
        """Fields that do not fit are refused by name."""
        with pytest.raises(ValueError, match="page_code"):
            ModeSense6(page_code=64)
        with pytest.raises(ValueError, match="page_control"):
            ModeSense10(page_control=4)
        with pytest.raises(ValueError, match="allocation_length"):
            ModeSense6(allocation_length=256)

    def test_reserved(self) -> None:
        """Reserved bits are a DecodeError."""
        with pytest.raises(DecodeError):
            ModeSense6.from_bytes(bytes([0x1A, 0x01, 0x3F, 0, 0xFF, 0]))
        with pytest.raises(DecodeError):
            ModeSense10.from_bytes(bytes([0x5A, 0, 0x3F, 0, 1, 0, 0, 0, 0xFF, 0]))


class TestModeSelectCdbs:
    """MODE SELECT(6) and (10) CDBs and their parameter lists."""

    def test_layout(self) -> None:
        """15h/55h: PF byte 1 bit 4, SP bit 0, parameter list length."""
        assert ModeSelect6(True, True, 28).to_bytes() == bytes([0x15, 0x11, 0, 0, 28, 0])
        assert ModeSelect6(False, False, 0, rtd=True).to_bytes() == bytes([0x15, 0x02, 0, 0, 0, 0])
        assert ModeSelect10(True, False, 0x123).to_bytes() == bytes(
            [0x55, 0x10, 0, 0, 0, 0, 0, 0x01, 0x23, 0]
        )

    def test_for_parameters(self) -> None:
        """The CDB's list length matches the data, and MODE DATA LENGTH and PS are zero."""
        params = ModeParameters.from_bytes(_sense6())
        cdb, data = ModeSelect6.for_parameters(params)
        assert cdb.parameter_list_length == len(data) == 28
        assert data[0] == 0
        assert data[12] == 0x0F  # PS cleared
        cdb.check_data_out(data)
        with pytest.raises(ValueError, match="parameter_list_length"):
            cdb.check_data_out(data[:-1])
        cdb10, data10 = ModeSelect10.for_parameters(params)
        assert cdb10.data_out_length == len(data10) == 32
        assert data10[:2] == b"\0\0"

    @given(st.booleans(), st.booleans(), st.integers(0, 0xFFFF), st.booleans())
    def test_round_trip(self, pf: bool, sp: bool, length: int, rtd: bool) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd10 = ModeSelect10(pf, sp, length, rtd=rtd)
        assert ModeSelect10.from_bytes(cmd10.to_bytes()) == cmd10
        cmd6 = ModeSelect6(pf, sp, length & 0xFF, rtd=rtd)
        assert ModeSelect6.from_bytes(cmd6.to_bytes()) == cmd6

    def test_reserved(self) -> None:
        """Reserved bits are a DecodeError."""
        with pytest.raises(DecodeError):
            ModeSelect6.from_bytes(bytes([0x15, 0x04, 0, 0, 4, 0]))


class TestModeParameters:
    """The parameter list against hand-made layouts."""

    def test_sense6(self) -> None:
        """Header, short block descriptor and a page."""
        p = ModeParameters.from_bytes(_sense6())
        assert p.medium_type == 0
        assert p.device_specific_parameter == 0x10
        assert p.block_descriptors == (BlockDescriptor(0x5A, 0, 1024),)
        page = p.page(0x0F)
        assert page is not None
        assert page.ps
        assert page.data == PAGE_0F[2:]
        assert p.to_bytes() == _sense6()

    def test_sense10_long_lba(self) -> None:
        """The 8-byte header, LONGLBA and a 16-byte descriptor, a subpage."""
        p = ModeParameters.from_bytes(_sense10_long(), ten_byte=True)
        assert p.long_lba
        assert p.device_specific_parameter == 0x80
        assert p.block_descriptors == (BlockDescriptor(0, 1 << 40, 4096),)
        page = p.page(0x1C, 0x01)
        assert page is not None
        assert page.spf
        assert page.data == b"\xaa\xbb"
        assert p.to_bytes() == _sense10_long()

    def test_vendor_page_zero(self) -> None:
        """Page 00h has no length and runs to the end of the list."""
        raw = bytes([7, 0, 0, 0, 0x80, 1, 2, 3])
        p = ModeParameters.from_bytes(raw)
        assert p.pages == (ModePage(0, b"\x01\x02\x03", ps=True),)
        assert p.to_bytes() == raw

    def test_page_zero_must_be_last(self) -> None:
        """A vendor page 00h before another page is refused."""
        with pytest.raises(ValueError, match="last"):
            ModeParameters(pages=(ModePage(0, b"x"), ModePage(1, b"y")))

    def test_allocation_cut(self) -> None:
        """A page cut by the allocation length is a DecodeError naming it."""
        with pytest.raises(DecodeError, match="0Fh"):
            ModeParameters.from_bytes(_sense6()[:20])

    def test_header_only(self) -> None:
        """Header-only data parses, and a mode data length of 0 uses the whole buffer."""
        assert ModeParameters.from_bytes(bytes([3, 0, 0, 0])).pages == ()
        p = ModeParameters.from_bytes(bytes([0, 0, 0, 0, 0x0F, 1, 0xAA]))
        assert p.pages == (ModePage(0x0F, b"\xaa"),)

    def test_bad_descriptor_length(self) -> None:
        """A block descriptor length that is not a multiple of 8 is a DecodeError."""
        with pytest.raises(DecodeError):
            ModeParameters.from_bytes(bytes([7, 0, 0, 4, 0, 0, 0, 0]))

    def test_short_descriptor_limits(self) -> None:
        """A block length over 24 bits does not fit the short form; density in the long one."""
        with pytest.raises(ValueError, match="block_length"):
            BlockDescriptor(0, 0, 1 << 24).to_bytes()
        with pytest.raises(ValueError, match="density_code"):
            BlockDescriptor(1, 0, 0).to_bytes(long_lba=True)
        with pytest.raises(ValueError, match="long_lba"):
            ModeParameters(long_lba=True)

    def test_page_limits(self) -> None:
        """A page_0 format page holds at most 255 bytes; SPF with subpage 0 is refused."""
        with pytest.raises(ValueError, match="data"):
            ModePage(0x0F, bytes(256))
        assert len(ModePage(0x0F, bytes(300), subpage_code=1).to_bytes()) == 304
        with pytest.raises(DecodeError):
            ModePage.from_bytes(bytes([0x4F, 0x00, 0x00, 0x00]))

    def test_too_long_for_6(self) -> None:
        """A list longer than the (6) header can say is refused."""
        p = ModeParameters(pages=(ModePage(0x10, bytes(255)),))
        with pytest.raises(ValueError, match="too long"):
            p.to_bytes()
        assert len(p.to_bytes(ten_byte=True)) == 8 + 257


_page = st.one_of(
    st.builds(ModePage, st.integers(1, 63), st.binary(max_size=40), st.just(0), st.booleans()),
    st.builds(
        ModePage, st.integers(0, 63), st.binary(max_size=300), st.integers(1, 255), st.booleans()
    ),
)


@st.composite
def parameters(draw: st.DrawFn) -> ModeParameters:
    """Arbitrary valid parameter lists (10-byte header)."""
    long_lba = draw(st.booleans())
    if long_lba:
        bd = st.builds(
            BlockDescriptor, st.just(0), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1)
        )
    else:
        bd = st.builds(
            BlockDescriptor,
            st.integers(0, 255),
            st.integers(0, 2**24 - 1),
            st.integers(0, 2**24 - 1),
        )
    pages = draw(st.lists(_page, max_size=5))
    if draw(st.booleans()):
        pages.append(ModePage(0, draw(st.binary(max_size=10)), ps=draw(st.booleans())))
    return ModeParameters(
        draw(st.integers(0, 255)),
        draw(st.integers(0, 255)),
        tuple(draw(st.lists(bd, max_size=3))),
        tuple(pages),
        long_lba,
        True,
    )


class TestModeProperties:
    """Round trips and arbitrary input."""

    @given(parameters())
    def test_round_trip(self, p: ModeParameters) -> None:
        """from_bytes(to_bytes()) is the identity."""
        assert ModeParameters.from_bytes(p.to_bytes(), ten_byte=True) == p

    @given(st.binary(max_size=300), st.booleans())
    def test_arbitrary(self, raw: bytes, ten: bool) -> None:
        """Arbitrary bytes parse or raise DecodeError."""
        with contextlib.suppress(DecodeError):
            ModeParameters.from_bytes(raw, ten_byte=ten)

    @given(st.binary(max_size=12))
    def test_arbitrary_cdbs(self, raw: bytes) -> None:
        """Arbitrary CDB bytes parse or raise DecodeError."""
        for cls in (ModeSense6, ModeSense10, ModeSelect6, ModeSelect10):
            with contextlib.suppress(DecodeError):
                cls.from_bytes(raw)
