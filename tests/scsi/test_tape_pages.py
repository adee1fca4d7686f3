"""Tests of the tape mode pages (0Fh, 10h) and the block length helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.mode import BlockDescriptor, ModePage, ModeParameters
from tapepath.scsi.tape_pages import (
    DataCompressionPage,
    DeviceConfigurationPage,
    TapeDeviceParameter,
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


class TestDeviceConfigurationPage:
    """Mode page 10h."""

    def test_drive_answer(self) -> None:
        """A drive's page: BIS/LOIS set, write delay 10 s, REW, SEW, rewind on reset 1."""
        raw = bytes.fromhex("10 0e 00 00 00 00 0064 40 00 08 000000 01 08")
        page = DeviceConfigurationPage.from_bytes(raw)
        assert page.lois
        assert page.write_delay_time == 100
        assert page.sew
        assert not page.swp
        assert page.select_data_compression_algorithm == 1
        assert page.rewind_on_reset == 1
        assert page.to_bytes() == raw

    def test_layout(self) -> None:
        """Each field in its SSC-3 place."""
        page = DeviceConfigurationPage(
            cap=True,
            caf=True,
            active_format=0x1F,
            active_partition=2,
            write_buffer_full_ratio=3,
            read_buffer_empty_ratio=4,
            write_delay_time=0x0506,
            obr=True,
            avc=True,
            socf=3,
            rew=True,
            gap_size=7,
            eod_defined=5,
            eeg=True,
            bam=True,
            buffer_size_at_early_warning=0x010203,
            wtre=2,
            oir=True,
            asocwp=True,
            prmwp=True,
        )
        assert page.to_bytes() == bytes.fromhex("10 0e 7f 02 03 04 0506 9d 07 b1 010203 00 a5")

    @given(
        st.builds(
            DeviceConfigurationPage,
            cap=st.booleans(),
            active_format=st.integers(0, 31),
            write_delay_time=st.integers(0, 0xFFFF),
            socf=st.integers(0, 3),
            lois=st.booleans(),
            eod_defined=st.integers(0, 7),
            swp=st.booleans(),
            buffer_size_at_early_warning=st.integers(0, 0xFFFFFF),
            rewind_on_reset=st.integers(0, 3),
            wtre=st.integers(0, 3),
            perswp=st.booleans(),
            ps=st.booleans(),
        )
    )
    def test_round_trip(self, page: DeviceConfigurationPage) -> None:
        """Whole page and ModePage round trips."""
        assert DeviceConfigurationPage.from_bytes(page.to_bytes()) == page
        assert DeviceConfigurationPage.from_mode_page(page.to_mode_page()) == page

    def test_errors(self) -> None:
        """Short body, wrong page, range checks."""
        with pytest.raises(DecodeError):
            DeviceConfigurationPage.from_bytes(bytes.fromhex("10 02 00 00"))
        with pytest.raises(DecodeError):
            DeviceConfigurationPage.from_mode_page(ModePage(0x0F, bytes(14)))
        with pytest.raises(ValueError, match="socf"):
            DeviceConfigurationPage(socf=4)
        with pytest.raises(ValueError, match="buffer_size_at_early_warning"):
            DeviceConfigurationPage(buffer_size_at_early_warning=1 << 24)


class TestTapeDeviceParameter:
    """The device-specific parameter byte: WP bit 7, buffered mode 6-4, speed 3-0."""

    def test_layout(self) -> None:
        """A write-protected cartridge in buffered mode 1 at default speed is 90h."""
        assert TapeDeviceParameter(write_protect=True).to_byte() == 0x90
        assert TapeDeviceParameter(False, 2, 5).to_byte() == 0x25
        assert TapeDeviceParameter.from_byte(0x90) == TapeDeviceParameter(True, 1, 0)

    @given(st.integers(0, 255))
    def test_round_trip(self, value: int) -> None:
        """Every byte decodes and encodes back."""
        assert TapeDeviceParameter.from_byte(value).to_byte() == value

    def test_in_mode_parameters(self) -> None:
        """It travels in the mode parameter header."""
        params = ModeParameters(device_specific_parameter=TapeDeviceParameter(True).to_byte())
        back = ModeParameters.from_bytes(params.to_bytes())
        assert TapeDeviceParameter.from_byte(back.device_specific_parameter).write_protect

    def test_checks(self) -> None:
        """Ranges."""
        with pytest.raises(ValueError, match="buffered_mode"):
            TapeDeviceParameter(buffered_mode=8)
        with pytest.raises(ValueError, match="device_specific_parameter"):
            TapeDeviceParameter.from_byte(256)
