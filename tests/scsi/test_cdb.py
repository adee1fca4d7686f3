"""Tests of the CDB conventions shared by every command."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi._wire import check_uint, u16, u32
from tapepath.scsi.cdb import TestUnitReady


class TestCheckUint:
    """check_uint names the field and refuses what does not fit."""

    def test_fits(self) -> None:
        """A value inside the range is returned."""
        assert check_uint("x", 255, 8) == 255

    @pytest.mark.parametrize("value", [-1, 256, 1 << 40])
    def test_out_of_range(self, value: int) -> None:
        """A value outside the range raises ValueError naming the field."""
        with pytest.raises(ValueError, match="allocation_length"):
            check_uint("allocation_length", value, 8)

    def test_bool_refused(self) -> None:
        """A bool is not accepted as an int field."""
        with pytest.raises(ValueError, match="must be an int"):
            check_uint("x", True, 8)


class TestReaders:
    """Bounded readers raise DecodeError, never IndexError."""

    def test_reads(self) -> None:
        """Big-endian values are read."""
        assert u16(b"\x12\x34", 0) == 0x1234
        assert u32(b"\x00\x01\x02\x03\x04", 1) == 0x01020304

    def test_past_end(self) -> None:
        """Reading past the end is a DecodeError."""
        with pytest.raises(DecodeError):
            u32(b"\x00\x01", 0)


class TestTestUnitReady:
    """TEST UNIT READY builds and parses."""

    def test_bytes(self) -> None:
        """The CDB is six bytes, opcode 00h."""
        assert TestUnitReady().to_bytes() == bytes(6)

    @given(st.integers(0, 255))
    def test_round_trip(self, control: int) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = TestUnitReady(control=control)
        assert TestUnitReady.from_bytes(cmd.to_bytes()) == cmd

    def test_control_range(self) -> None:
        """A control byte over 255 is refused, naming the field."""
        with pytest.raises(ValueError, match="control"):
            TestUnitReady(control=256)

    @given(st.binary(max_size=20))
    def test_parse_arbitrary(self, raw: bytes) -> None:
        """Arbitrary bytes parse or raise DecodeError."""
        with contextlib.suppress(DecodeError):
            TestUnitReady.from_bytes(raw)
