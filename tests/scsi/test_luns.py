"""REPORT LUNS and LUN addressing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.luns import AddressMethod, LunList, ReportLuns, decode_lun, encode_lun


class TestReportLunsCdb:
    """The REPORT LUNS CDB."""

    def test_layout(self) -> None:
        """SPC: A0h, SELECT REPORT byte 2, allocation length bytes 6-9, control byte 11."""
        cdb = ReportLuns(select_report=2, allocation_length=0x01020304, control=4).to_bytes()
        assert cdb == bytes([0xA0, 0, 2, 0, 0, 0, 1, 2, 3, 4, 0, 4])

    @given(st.integers(0, 255), st.integers(0, 2**32 - 1), st.integers(0, 255))
    def test_round_trip(self, sel: int, alloc: int, control: int) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = ReportLuns(sel, alloc, control)
        assert ReportLuns.from_bytes(cmd.to_bytes()) == cmd
        assert cmd.data_in_length == alloc

    def test_reserved(self) -> None:
        """Reserved bytes set are a DecodeError."""
        with pytest.raises(DecodeError):
            ReportLuns.from_bytes(bytes([0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 16, 0, 0]))
        with pytest.raises(DecodeError):
            ReportLuns.from_bytes(bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 1, 0]))

    def test_range(self) -> None:
        """A 33-bit allocation length is refused by name."""
        with pytest.raises(ValueError, match="allocation_length"):
            ReportLuns(allocation_length=1 << 32)

    @given(st.binary(max_size=16))
    def test_arbitrary(self, raw: bytes) -> None:
        """Arbitrary CDB bytes parse or raise DecodeError."""
        with contextlib.suppress(DecodeError):
            ReportLuns.from_bytes(raw)


class TestLunAddressing:
    """SAM-5 LUN structures."""

    def test_peripheral(self) -> None:
        """LUN 5 with peripheral device addressing is 00 05 00.. (SAM-5 table 15)."""
        assert encode_lun(5) == bytes([0, 5, 0, 0, 0, 0, 0, 0])
        lun = decode_lun(bytes([0, 5, 0, 0, 0, 0, 0, 0]))
        assert lun.method == AddressMethod.PERIPHERAL
        assert lun.number == 5
        assert lun.bus == 0
        assert lun.single_level

    def test_flat(self) -> None:
        """LUN 300 uses flat space addressing: 01b in bits 7-6, 14-bit LUN."""
        assert encode_lun(300) == bytes([0x41, 0x2C, 0, 0, 0, 0, 0, 0])
        lun = decode_lun(bytes([0x7F, 0xFF, 0, 0, 0, 0, 0, 0]))
        assert lun.method == AddressMethod.FLAT
        assert lun.number == 0x3FFF

    def test_peripheral_with_bus(self) -> None:
        """A peripheral LUN with a bus identifier keeps it."""
        lun = decode_lun(bytes([0x03, 0x07, 0, 0, 0, 0, 0, 0]))
        assert lun.bus == 3
        assert lun.number == 7

    def test_logical_unit_addressing(self) -> None:
        """10b (SAM-5 table 20): TARGET in byte 0 bits 5-0, BUS bits 7-5 and LUN 4-0 of byte 1."""
        lun = decode_lun(bytes([0x80 | 45, (2 << 5) | 22, 0, 0, 0, 0, 0, 0]))
        assert lun.method == AddressMethod.LOGICAL_UNIT
        assert (lun.bus, lun.target, lun.number) == (2, 45, 22)

    def test_extended_and_well_known(self) -> None:
        """Extended addressing (the REPORT LUNS well-known LUN C101h) decodes."""
        lun = decode_lun(bytes([0xC1, 0x01, 0, 0, 0, 0, 0, 0]))
        assert lun.method == AddressMethod.EXTENDED
        assert lun.number == 1

    def test_multi_level(self) -> None:
        """A second level clears single_level."""
        assert not decode_lun(bytes([0, 1, 0, 2, 0, 0, 0, 0])).single_level

    def test_range(self) -> None:
        """encode_lun refuses what no single-level address holds."""
        with pytest.raises(ValueError, match="lun"):
            encode_lun(16384)
        with pytest.raises(ValueError, match="lun"):
            encode_lun(-1)

    def test_wrong_length(self) -> None:
        """A LUN is 8 bytes."""
        with pytest.raises(DecodeError):
            decode_lun(bytes(7))

    @given(st.integers(0, 16383))
    def test_round_trip(self, n: int) -> None:
        """decode_lun(encode_lun(n)).number == n."""
        assert decode_lun(encode_lun(n)).number == n

    @given(st.binary(min_size=8, max_size=8))
    def test_any_lun_decodes(self, raw: bytes) -> None:
        """Every 8-byte value decodes without error."""
        assert decode_lun(raw).raw == raw


class TestLunList:
    """REPORT LUNS parameter data."""

    def test_layout(self) -> None:
        """LUN LIST LENGTH, 4 reserved bytes, then 8-byte LUNs."""
        raw = bytes([0, 0, 0, 16, 0, 0, 0, 0]) + encode_lun(0) + encode_lun(1)
        data = LunList.from_bytes(raw)
        assert data.numbers == (0, 1)
        assert not data.truncated
        assert LunList((0, 1)).to_bytes() == raw

    def test_truncated(self) -> None:
        """A list cut by the allocation length keeps its whole entries and says so."""
        raw = LunList(range(5)).to_bytes()[:30]
        data = LunList.from_bytes(raw)
        assert data.numbers == (0, 1)
        assert data.truncated
        assert data.list_length == 40

    def test_short(self) -> None:
        """Fewer than 8 bytes is a DecodeError."""
        with pytest.raises(DecodeError):
            LunList.from_bytes(bytes(7))

    def test_bad_entry(self) -> None:
        """A LUN entry that is not 8 bytes is refused."""
        with pytest.raises(ValueError, match="luns"):
            LunList((b"\x00\x01",))

    @given(st.lists(st.integers(0, 16383), max_size=40))
    def test_round_trip(self, luns: list[int]) -> None:
        """from_bytes(to_bytes()) is the identity."""
        data = LunList(luns)
        assert LunList.from_bytes(data.to_bytes()) == data
        assert data.numbers == tuple(luns)

    @given(st.binary(max_size=200))
    def test_arbitrary(self, raw: bytes) -> None:
        """Arbitrary bytes parse or raise DecodeError."""
        with contextlib.suppress(DecodeError):
            LunList.from_bytes(raw).numbers  # noqa: B018

    def test_huge_length_field(self) -> None:
        """A LUN LIST LENGTH of 4 GiB with an 8-byte buffer allocates nothing."""
        data = LunList.from_bytes(b"\xff\xff\xff\xf8" + bytes(4))
        assert data.luns == ()
        assert data.truncated
