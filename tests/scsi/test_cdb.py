"""Tests of the CDB conventions shared by every command."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi._wire import check_uint, u16, u32
from tapepath.scsi.cdb import RequestSense, TestUnitReady


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


class TestRequestSense:
    """REQUEST SENSE builds, parses and checks its fields."""

    def test_layout(self) -> None:
        """SPC: opcode 03h, DESC in byte 1 bit 0, allocation length in byte 4."""
        cdb = RequestSense(desc=True, allocation_length=252, control=0x80).to_bytes()
        assert cdb == bytes([0x03, 0x01, 0x00, 0x00, 0xFC, 0x80])

    @given(st.booleans(), st.integers(0, 255), st.integers(0, 255))
    def test_round_trip(self, desc: bool, alloc: int, control: int) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = RequestSense(desc=desc, allocation_length=alloc, control=control)
        assert RequestSense.from_bytes(cmd.to_bytes()) == cmd
        assert cmd.data_in_length == alloc

    def test_ranges(self) -> None:
        """Out-of-range fields name themselves."""
        with pytest.raises(ValueError, match="allocation_length"):
            RequestSense(allocation_length=256)
        with pytest.raises(ValueError, match="desc"):
            RequestSense(desc=1)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "raw",
        [
            bytes([0x03, 0x02, 0, 0, 18, 0]),  # reserved bit in byte 1
            bytes([0x03, 0x00, 0, 1, 18, 0]),  # reserved byte 3
            bytes([0x00, 0x00, 0, 0, 18, 0]),  # wrong opcode
            bytes([0x03, 0x00, 0, 0, 18]),  # short
        ],
    )
    def test_bad_cdb(self, raw: bytes) -> None:
        """Reserved bits, a wrong opcode or length are DecodeErrors."""
        with pytest.raises(DecodeError):
            RequestSense.from_bytes(raw)

    @given(st.binary(max_size=20))
    def test_parse_arbitrary(self, raw: bytes) -> None:
        """Arbitrary bytes parse or raise DecodeError."""
        with contextlib.suppress(DecodeError):
            RequestSense.from_bytes(raw)


class TestPackageExports:
    """tapepath.scsi re-exports every codec module's public names."""

    def test_every_module(self) -> None:
        """Each name in each module's __all__ is the same object in the package."""
        import importlib  # noqa: PLC0415
        import pkgutil  # noqa: PLC0415

        import tapepath.scsi as package  # noqa: PLC0415

        checked = 0
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_") or info.name == "asc_data":
                continue
            module = importlib.import_module(f"tapepath.scsi.{info.name}")
            for name in getattr(module, "__all__", ()):
                assert getattr(package, name, None) is getattr(module, name), (info.name, name)
                assert name in package.__all__
                checked += 1
        assert checked > 100
