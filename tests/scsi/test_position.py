"""Tests of READ POSITION: the CDB and the short, long and extended data forms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.position import (
    PositionExtended,
    PositionLong,
    PositionShort,
    ReadPosition,
    ReadPositionForm,
    parse_position,
)

b = st.booleans()


class TestReadPositionCdb:
    """READ POSITION 34h."""

    def test_layout(self) -> None:
        """Service action byte 1 bits 4-0; allocation length 7-8."""
        assert ReadPosition.short().to_bytes() == bytes.fromhex("34 00 0000000000 0000 00")
        assert ReadPosition.short(vendor=True).to_bytes() == bytes.fromhex(
            "34 01 0000000000 0000 00"
        )
        assert ReadPosition.long().to_bytes() == bytes.fromhex("34 06 0000000000 0000 00")
        assert ReadPosition.extended().to_bytes() == bytes.fromhex("34 08 0000000000 0020 00")

    def test_data_length(self) -> None:
        """Short 20, long 32, extended its allocation length."""
        assert ReadPosition.short().data_in_length == 20
        assert ReadPosition.long().data_in_length == 32
        assert ReadPosition.extended(64).data_in_length == 64
        assert ReadPosition(0x1F).data_in_length == 0

    @given(st.builds(ReadPosition, st.integers(0, 31), st.integers(0, 0xFFFF), st.integers(0, 255)))
    def test_round_trip(self, cmd: ReadPosition) -> None:
        """from_bytes(to_bytes()) is the identity; known actions become the enum."""
        back = ReadPosition.from_bytes(cmd.to_bytes())
        assert back == cmd
        if cmd.service_action in (0, 1, 6, 8):
            assert isinstance(back.service_action, ReadPositionForm)

    def test_checks(self) -> None:
        """Range, reserved bytes, opcode."""
        with pytest.raises(ValueError, match="service_action"):
            ReadPosition(32)
        with pytest.raises(DecodeError):
            ReadPosition.from_bytes(bytes.fromhex("34 20 0000000000 0000 00"))
        with pytest.raises(DecodeError):
            ReadPosition.from_bytes(bytes.fromhex("34 00 0000010000 0000 00"))
        with pytest.raises(DecodeError):
            ReadPosition.from_bytes(bytes.fromhex("2b 00 0000000000 0000 00"))


class TestShortForm:
    """The 20-byte short form."""

    def test_layout(self) -> None:
        """Flags byte 0, partition 1, first 4-7, last 8-11, blocks 13-15, bytes 16-19."""
        raw = bytes.fromhex("80 01 0000 00000000 00000000 00 000000 00000000")
        pos = PositionShort.from_bytes(raw)
        assert pos.bop
        assert pos.partition == 1
        assert pos.block == 0
        busy = PositionShort(
            bpew=True,
            first_location=0x1000,
            last_location=0x0FF0,
            blocks_in_buffer=16,
            bytes_in_buffer=0x100000,
        )
        assert busy.to_bytes() == bytes.fromhex("01 00 0000 00001000 00000ff0 00 000010 00100000")

    def test_tgtd_stub(self) -> None:
        """tgtd's stub: all zero with BYCU and LOLU set: position unknown."""
        raw = bytes.fromhex("14 00 0000 00000000 00000000 00 000000 00000000")
        pos = PositionShort.from_bytes(raw)
        assert pos.bycu
        assert pos.lolu
        assert not pos.locu
        assert pos.block is None

    def test_flags_each(self) -> None:
        """Each flag has its own bit."""
        for bit, name in [
            (0x80, "bop"),
            (0x40, "eop"),
            (0x20, "locu"),
            (0x10, "bycu"),
            (0x04, "lolu"),
            (0x02, "perr"),
            (0x01, "bpew"),
        ]:
            pos = PositionShort.from_bytes(bytes((bit,)) + bytes(19))
            assert getattr(pos, name), name
            assert pos.to_bytes()[0] == bit

    @given(
        st.builds(
            PositionShort,
            b, b, b, b, b, b, b,
            st.integers(0, 255),
            st.integers(0, 0xFFFFFFFF),
            st.integers(0, 0xFFFFFFFF),
            st.integers(0, 0xFFFFFF),
            st.integers(0, 0xFFFFFFFF),
        )
    )  # fmt: skip
    def test_round_trip(self, pos: PositionShort) -> None:
        """from_bytes(to_bytes()) is the identity."""
        assert PositionShort.from_bytes(pos.to_bytes()) == pos

    def test_short(self) -> None:
        """19 bytes is a DecodeError."""
        with pytest.raises(DecodeError):
            PositionShort.from_bytes(bytes(19))


class TestLongForm:
    """The 32-byte long form."""

    def test_layout(self) -> None:
        """Partition 4-7, logical object number 8-15, file id 16-23, set id 24-31."""
        raw = bytes.fromhex("48 000000 00000002 0000000000012345 0000000000000003 0000000000000000")
        pos = PositionLong.from_bytes(raw)
        assert pos.eop
        assert pos.mpu
        assert not pos.lonu
        assert pos.partition == 2
        assert pos.logical_object_number == 0x12345
        assert pos.block == 0x12345
        assert pos.logical_file_identifier == 3
        assert pos.to_bytes() == raw
        assert PositionLong(lonu=True).block is None

    @given(
        st.builds(
            PositionLong,
            b, b, b, b, b,
            st.integers(0, 0xFFFFFFFF),
            st.integers(0, (1 << 64) - 1),
            st.integers(0, (1 << 64) - 1),
            st.integers(0, (1 << 64) - 1),
        )
    )  # fmt: skip
    def test_round_trip(self, pos: PositionLong) -> None:
        """from_bytes(to_bytes()) is the identity."""
        assert PositionLong.from_bytes(pos.to_bytes()) == pos


class TestExtendedForm:
    """The 32-byte extended form."""

    def test_layout(self) -> None:
        """Additional length 1Ch at 2-3, objects 5-7, first 8-15, last 16-23, bytes 24-31."""
        pos = PositionExtended(
            partition=1,
            objects_in_buffer=2,
            first_location=0x100000000,
            last_location=0xFFFFFFFE,
            bytes_in_buffer=0x20000,
            perr=True,
        )
        assert pos.to_bytes() == bytes.fromhex(
            "02 01 001c 00 000002 0000000100000000 00000000fffffffe 0000000000020000"
        )
        assert pos.block is None
        assert PositionExtended(first_location=9).block == 9

    @given(
        st.builds(
            PositionExtended,
            b, b, b, b, b, b, b,
            st.integers(0, 255),
            st.integers(0, 0xFFFFFF),
            st.integers(0, (1 << 64) - 1),
            st.integers(0, (1 << 64) - 1),
            st.integers(0, (1 << 64) - 1),
        )
    )  # fmt: skip
    def test_round_trip(self, pos: PositionExtended) -> None:
        """from_bytes(to_bytes()) is the identity."""
        assert PositionExtended.from_bytes(pos.to_bytes()) == pos


class TestParsePosition:
    """parse_position picks the form by service action."""

    def test_dispatch(self) -> None:
        """Each service action gets its class; an unknown one is a DecodeError."""
        assert isinstance(parse_position(0, bytes(20)), PositionShort)
        assert isinstance(parse_position(1, bytes(20)), PositionShort)
        assert isinstance(parse_position(6, bytes(32)), PositionLong)
        assert isinstance(ReadPosition.extended().parse(bytes(32)), PositionExtended)
        with pytest.raises(DecodeError, match="service action"):
            parse_position(2, bytes(32))
        with pytest.raises(DecodeError):
            parse_position(8, bytes(20))
