"""Tests of the data compression mode page and the block length helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.mode import BlockDescriptor, ModePage, ModeParameters
from tapepath.scsi.tape_pages import (
    DataCompressionPage,
    block_length_from_descriptor,
    block_length_of,
    block_length_to_descriptor,
    with_block_length,
)


class TestDataCompressionPage:
    """Mode page 0Fh."""

    def test_layout(self) -> None:
        """DCE/DCC byte 2 bits 7/6; DDE byte 3 bit 7, RED bits 6-5; algorithms 4-7, 8-11."""
        page = DataCompressionPage(
            dce=True,
            dcc=True,
            dde=True,
            red=2,
            compression_algorithm=0x10,
            decompression_algorithm=0x10,
        )
        assert page.to_bytes() == bytes.fromhex("0f 0e c0 c0 00000010 00000010 00000000")

    def test_parse_drive_answer(self) -> None:
        """A drive that can compress but does not: DCC only, DDE on."""
        page = DataCompressionPage.from_bytes(
            bytes.fromhex("8f 0e 40 80 00000001 00000001 00000000")
        )
        assert page.ps
        assert page.dcc
        assert not page.dce
        assert page.dde
        assert page.compression_algorithm == 1

    @given(
        st.builds(
            DataCompressionPage,
            st.booleans(),
            st.booleans(),
            st.booleans(),
            st.integers(0, 3),
            st.integers(0, 0xFFFFFFFF),
            st.integers(0, 0xFFFFFFFF),
            st.booleans(),
        )
    )
    def test_round_trip(self, page: DataCompressionPage) -> None:
        """Whole page and ModePage round trips, also inside a parameter list."""
        assert DataCompressionPage.from_bytes(page.to_bytes()) == page
        assert DataCompressionPage.from_mode_page(page.to_mode_page()) == page
        params = ModeParameters(pages=[page.to_mode_page()])
        found = ModeParameters.from_bytes(params.to_bytes()).page(0x0F)
        assert found is not None
        assert DataCompressionPage.from_mode_page(found) == page

    def test_errors(self) -> None:
        """Short body, wrong page, range."""
        with pytest.raises(DecodeError):
            DataCompressionPage.from_bytes(bytes.fromhex("0f 04 c0 80 0000"))
        with pytest.raises(DecodeError):
            DataCompressionPage.from_mode_page(ModePage(0x10, bytes(14)))
        with pytest.raises(ValueError, match="red"):
            DataCompressionPage(red=4)


class TestBlockLength:
    """Block size in the block descriptor: 0 means variable."""

    def test_helpers(self) -> None:
        """None for variable, the size otherwise; range checked."""
        assert block_length_from_descriptor(0) is None
        assert block_length_from_descriptor(512) == 512
        assert block_length_to_descriptor(None) == 0
        assert block_length_to_descriptor(262144) == 262144
        with pytest.raises(ValueError, match="block_length"):
            block_length_to_descriptor(1 << 24)

    def test_on_descriptor(self) -> None:
        """with_block_length keeps density and count; the descriptor bytes carry it."""
        desc = BlockDescriptor(density_code=0x58, number_of_blocks=0, block_length=0)
        assert block_length_of(desc) is None
        fixed = with_block_length(desc, 0x10000)
        assert fixed.to_bytes() == bytes.fromhex("58 000000 00 010000")
        assert block_length_of(fixed) == 0x10000
        assert with_block_length(fixed, None).block_length == 0
