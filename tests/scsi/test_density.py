"""Tests of REPORT DENSITY SUPPORT: the CDB, density and medium type descriptors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.density import (
    DensityDescriptor,
    DensitySupport,
    MediumTypeDescriptor,
    ReportDensitySupport,
)

LTO5 = (
    bytes.fromhex("58 58 a1 0031 003b26 007f 0500 0016e360")
    + b"LTO-CVE "
    + b"U-516   "
    + b"Ultrium 5/16T       "
)


def text(size: int) -> st.SearchStrategy[str]:
    """Latin-1 text that survives padding: no trailing blanks or NULs."""
    return st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=size)


class TestCdb:
    """REPORT DENSITY SUPPORT 44h."""

    def test_layout(self) -> None:
        """MEDIA byte 1 bit 0, MEDIUM TYPE bit 1, allocation length 7-8."""
        cmd = ReportDensitySupport(media=True, medium_type=True, allocation_length=0x0400)
        assert cmd.to_bytes() == bytes.fromhex("44 03 0000000000 0400 00")
        assert cmd.data_in_length == 0x400

    @given(st.builds(ReportDensitySupport, st.booleans(), st.booleans(), st.integers(0, 0xFFFF)))
    def test_round_trip(self, cmd: ReportDensitySupport) -> None:
        """from_bytes(to_bytes()) is the identity."""
        assert ReportDensitySupport.from_bytes(cmd.to_bytes()) == cmd

    def test_checks(self) -> None:
        """Reserved bits and ranges."""
        with pytest.raises(DecodeError):
            ReportDensitySupport.from_bytes(bytes.fromhex("44 04 0000000000 0400 00"))
        with pytest.raises(ValueError, match="allocation_length"):
            ReportDensitySupport(allocation_length=0x10000)


class TestDensityDescriptor:
    """The 52-byte density support descriptor."""

    def test_lto5(self) -> None:
        """An LTO-5 descriptor decodes field by field."""
        d = DensityDescriptor.from_bytes(LTO5)
        assert (d.primary_code, d.secondary_code) == (0x58, 0x58)
        assert d.wrtok
        assert d.deflt
        assert d.dlv
        assert not d.dup
        assert d.bits_per_mm == 15142
        assert d.media_width == 127
        assert d.tracks == 1280
        assert d.capacity == 1_500_000
        assert (d.assigning_organization, d.density_name) == ("LTO-CVE", "U-516")
        assert d.description == "Ultrium 5/16T"
        assert d.to_bytes() == LTO5

    def test_checks(self) -> None:
        """Text too long or not Latin-1; short buffer."""
        with pytest.raises(ValueError, match="density_name"):
            DensityDescriptor(1, density_name="123456789")
        with pytest.raises(ValueError, match="description"):
            DensityDescriptor(1, description="\u20ac")
        with pytest.raises(DecodeError):
            DensityDescriptor.from_bytes(LTO5[:51])


densities = st.builds(
    DensityDescriptor,
    st.integers(0, 255),
    st.integers(0, 255),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 0xFFFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    text(8),
    text(8),
    text(20),
)
media = st.builds(
    MediumTypeDescriptor,
    st.integers(0, 255),
    st.lists(st.integers(0, 255), max_size=9),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    text(8),
    text(8),
    text(20),
)


class TestDensitySupport:
    """The whole data: header and descriptors."""

    def test_header(self) -> None:
        """Available length counts the 2 reserved bytes and the descriptors."""
        data = DensitySupport([DensityDescriptor.from_bytes(LTO5)]).to_bytes()
        assert data == bytes.fromhex("0036 0000") + LTO5
        parsed = DensitySupport.from_bytes(data)
        assert parsed.default is not None
        assert parsed.default.density_name == "U-516"

    def test_cut_short(self) -> None:
        """Complete descriptors are kept and truncated is set."""
        data = DensitySupport([DensityDescriptor(0x46), DensityDescriptor(0x58)]).to_bytes()
        parsed = DensitySupport.from_bytes(data[:-1])
        assert parsed.truncated
        assert [d.primary_code for d in parsed.densities] == [0x46]
        with pytest.raises(DecodeError):
            DensitySupport.from_bytes(b"\x00\x02\x00")

    def test_medium_type(self) -> None:
        """A medium type descriptor: type, density codes, width, length, names."""
        raw = (
            bytes.fromhex("18 00 0034 02 4658000000000000 00 007f 0363 0000")
            + b"LTO-CVE "
            + b"LTO-5   "
            + b"Ultrium 5 data      "
        )
        (m,) = DensitySupport.from_bytes(
            bytes.fromhex("003a 0000") + raw, medium_type=True
        ).descriptors
        assert isinstance(m, MediumTypeDescriptor)
        assert m.medium_type == 0x18
        assert m.primary_density_codes == (0x46, 0x58)
        assert (m.media_width, m.medium_length) == (127, 867)
        assert m.medium_type_name == "LTO-5"
        assert m.to_bytes() == raw

    def test_mixed_refused(self) -> None:
        """One report holds one kind of descriptor."""
        with pytest.raises(ValueError, match="all"):
            DensitySupport([DensityDescriptor(1), MediumTypeDescriptor(1)])
        with pytest.raises(ValueError, match="density codes"):
            MediumTypeDescriptor(1, tuple(range(10)))

    @given(st.lists(densities, max_size=5))
    def test_round_trip_densities(self, items: list[DensityDescriptor]) -> None:
        """from_bytes(to_bytes()) is the identity."""
        ds = DensitySupport(items)
        assert DensitySupport.from_bytes(ds.to_bytes()) == ds

    @given(st.lists(media, max_size=5))
    def test_round_trip_media(self, items: list[MediumTypeDescriptor]) -> None:
        """from_bytes(to_bytes(), medium_type=True) is the identity."""
        ds = DensitySupport(items)
        assert DensitySupport.from_bytes(ds.to_bytes(), medium_type=True) == ds
