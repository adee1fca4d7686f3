"""Sense data encoders, round trips and arbitrary bytes (split from test_sense.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.sense import (
    ActualRetryCount,
    FieldPointer,
    ProgressIndication,
    SegmentPointer,
    Sense,
    SenseKey,
    UnitAttentionQueueOverflow,
    UnknownDescriptor,
    decode_sense,
    decode_sks,
    descriptor_sense,
    fixed_sense,
)


class TestEncoders:
    """fixed_sense and descriptor_sense produce what the standard lays out."""

    def test_fixed_layout(self) -> None:
        """Every byte of a fully populated fixed sense."""
        b = fixed_sense(
            SenseKey.MEDIUM_ERROR,
            0x11,
            0x00,
            information=0x01020304,
            filemark=True,
            ili=True,
            sks=ActualRetryCount(5),
            command_specific=0xA0B0C0D0,
            fru=7,
        )
        assert b == bytes.fromhex("f0 00 a3 01020304 0a a0b0c0d0 11 00 07 800005".replace(" ", ""))

    def test_fixed_deferred_and_negative_information(self) -> None:
        """71h and a two's complement residual."""
        b = fixed_sense(0, information=-2, deferred=True, ili=True)
        assert b[0] == 0xF1
        assert b[3:7] == b"\xff\xff\xff\xfe"

    def test_descriptor_layout(self) -> None:
        """Descriptors appear in order with their standard lengths."""
        b = descriptor_sense(
            SenseKey.NOT_READY, 0x04, 0x01, information=1, sks=ProgressIndication(0x100)
        )
        assert b[:8] == bytes((0x72, 0x02, 0x04, 0x01, 0, 0, 0, 20))
        assert b[8:20] == b"\x00\x0a\x80\x00" + (1).to_bytes(8, "big")
        assert b[20:] == b"\x02\x06\x00\x00\x80\x01\x00\x00"

    def test_raw_sks_bytes(self) -> None:
        """Three raw bytes are accepted; other lengths are refused."""
        assert fixed_sense(5, 0x24, 0, sks=b"\xc0\x00\x01")[15:18] == b"\xc0\x00\x01"
        with pytest.raises(ValueError, match="sks"):
            fixed_sense(5, 0x24, 0, sks=b"\xc0\x00")

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"sense_key": 16}, "sense_key"),
            ({"sense_key": 0, "asc": 256}, "asc"),
            ({"sense_key": 0, "ascq": -1}, "ascq"),
            ({"sense_key": 0, "information": 1 << 32}, "information"),
            ({"sense_key": 0, "command_specific": 1 << 32}, "command_specific"),
            ({"sense_key": 0, "fru": 256}, "fru"),
            ({"sense_key": 0, "eom": 1}, "eom"),
        ],
    )
    def test_fixed_range_checks(self, kwargs: dict[str, int], name: str) -> None:
        """A field that does not fit raises ValueError naming it."""
        with pytest.raises(ValueError, match=name):
            fixed_sense(**kwargs)  # type: ignore[arg-type]

    def test_descriptor_extra_and_limit(self) -> None:
        """Extra descriptors are appended; oversize data is refused."""
        b = descriptor_sense(0, extra=((0x80, b"\x01\x02"),))
        assert decode_sense(b).descriptors == (UnknownDescriptor(0x80, b"\x01\x02"),)
        with pytest.raises(ValueError, match="244"):
            descriptor_sense(0, extra=tuple((0x80, b"\0" * 100) for _ in range(3)))


sks_for_key = {
    SenseKey.ILLEGAL_REQUEST: st.builds(
        FieldPointer,
        cdb=st.booleans(),
        bpv=st.booleans(),
        bit_pointer=st.integers(0, 7),
        field_pointer=st.integers(0, 0xFFFF),
    ),
    SenseKey.MEDIUM_ERROR: st.builds(ActualRetryCount, st.integers(0, 0xFFFF)),
    SenseKey.NOT_READY: st.builds(ProgressIndication, st.integers(0, 0xFFFF)),
    SenseKey.COPY_ABORTED: st.builds(
        SegmentPointer,
        sd=st.booleans(),
        bpv=st.booleans(),
        bit_pointer=st.integers(0, 7),
        field_pointer=st.integers(0, 0xFFFF),
    ),
    SenseKey.UNIT_ATTENTION: st.builds(UnitAttentionQueueOverflow, st.booleans()),
}


@st.composite
def sense_args(draw: st.DrawFn, info_bits: int) -> dict[str, object]:
    """Arguments for the encoders."""
    key = draw(st.sampled_from(list(SenseKey)))
    sks_strategy = sks_for_key.get(key)
    return {
        "sense_key": key,
        "asc": draw(st.integers(0, 255)),
        "ascq": draw(st.integers(0, 255)),
        "information": draw(st.none() | st.integers(0, (1 << info_bits) - 1)),
        "filemark": draw(st.booleans()),
        "eom": draw(st.booleans()),
        "ili": draw(st.booleans()),
        "deferred": draw(st.booleans()),
        "sks": draw(st.none() | sks_strategy) if sks_strategy is not None else None,
        "command_specific": draw(st.none() | st.integers(0, (1 << info_bits) - 1)),
        "fru": draw(st.integers(0, 255)),
    }


def check_round_trip(s: Sense, args: dict[str, object], fixed_format: bool) -> None:
    """Every argument comes back from decode_sense."""
    assert s.sense_key == args["sense_key"]
    assert (s.asc, s.ascq) == (args["asc"], args["ascq"])
    assert (s.filemark, s.eom, s.ili) == (args["filemark"], args["eom"], args["ili"])
    assert s.deferred == args["deferred"]
    assert s.information == args["information"]
    assert s.sks == args["sks"]
    assert s.fru == args["fru"]
    assert s.descriptor_format is not fixed_format
    assert not s.short
    if fixed_format:
        assert s.command_specific == (args["command_specific"] or 0)
    else:
        assert s.command_specific == args["command_specific"]


class TestRoundTrip:
    """decode(encode(x)) == x for both formats."""

    @given(sense_args(32))
    def test_fixed(self, args: dict[str, object]) -> None:
        """Fixed format round trip."""
        check_round_trip(decode_sense(fixed_sense(**args)), args, True)  # type: ignore[arg-type]

    @given(sense_args(64))
    def test_descriptor(self, args: dict[str, object]) -> None:
        """Descriptor format round trip."""
        buf = descriptor_sense(**args)  # type: ignore[arg-type]
        check_round_trip(decode_sense(buf), args, False)

    @given(st.integers(-(1 << 31), (1 << 31) - 1))
    def test_fixed_signed_residual(self, residual: int) -> None:
        """A signed residual comes back through Sense.residual."""
        assert decode_sense(fixed_sense(0, information=residual, ili=True)).residual == residual


class TestArbitraryBytes:
    """Arbitrary input gives a Sense or a DecodeError, nothing else."""

    @given(st.binary(max_size=300))
    def test_anything(self, buf: bytes) -> None:
        """Fully random bytes."""
        try:
            s = decode_sense(buf)
        except DecodeError:
            return
        assert isinstance(s.description, str)
        assert str(s)
        assert len(s.additional) <= len(buf)

    @given(st.sampled_from([0x70, 0x71, 0x72, 0x73, 0xF0, 0xF3]), st.binary(max_size=260))
    def test_valid_response_codes(self, code: int, rest: bytes) -> None:
        """Bytes behind a valid response code decode unless shorter than the key."""
        buf = bytes((code,)) + rest
        try:
            s = decode_sense(buf)
        except DecodeError:
            assert len(buf) < (3 if code & 0x7F < 0x72 else 2)
            return
        total = sum(len(getattr(d, "data", b"")) for d in s.descriptors)
        assert total <= len(buf)
        assert 0 <= s.sense_key <= 15

    @given(st.integers(0, 15), st.binary(max_size=8))
    def test_sks_any_bytes(self, key: int, raw: bytes) -> None:
        """decode_sks gives a variant that re-encodes to itself, None, or DecodeError."""
        try:
            sks = decode_sks(key, raw)
        except DecodeError:
            assert len(raw) < 3
            return
        assert (sks is None) == (not raw[0] & 0x80)
        if sks is not None:
            assert decode_sks(key, sks.to_bytes()) == sks
