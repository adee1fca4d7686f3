"""LOG SENSE, log pages and the TapeAlert page."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.log import (
    CHANGER_TAPE_ALERT_NAMES,
    TAPE_ALERT_NAMES,
    LogPage,
    LogParameter,
    LogSense,
    TapeAlert,
)


def _tapealert_page(flags: set[int], control: int = 0x00) -> bytes:
    """Log page 2Eh laid out by hand (SSC-4 8.2.3): 64 parameters of one byte each."""
    body = b"".join(bytes([0, n, control, 1, 1 if n in flags else 0]) for n in range(1, 65))
    return bytes([0x2E, 0x00]) + len(body).to_bytes(2, "big") + body


class TestLogSenseCdb:
    """The LOG SENSE CDB."""

    def test_layout(self) -> None:
        """4Dh: PPC/SP byte 1, PC+page byte 2, subpage, pointer 5-6, length 7-8."""
        cdb = LogSense(
            0x2E, 0, page_control=1, sp=True, parameter_pointer=0x0102, allocation_length=0x1234
        )
        assert cdb.to_bytes() == bytes([0x4D, 0x01, 0x6E, 0x00, 0x00, 0x01, 0x02, 0x12, 0x34, 0x00])

    @given(
        st.integers(0, 63),
        st.integers(0, 255),
        st.integers(0, 3),
        st.booleans(),
        st.booleans(),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
    )
    def test_round_trip(
        self, page: int, sub: int, pc: int, sp: bool, ppc: bool, ptr: int, alloc: int
    ) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = LogSense(page, sub, pc, sp, ppc, ptr, alloc)
        assert LogSense.from_bytes(cmd.to_bytes()) == cmd
        assert cmd.data_in_length == alloc

    def test_ranges_and_reserved(self) -> None:
        """Out-of-range fields and reserved bits are refused."""
        with pytest.raises(ValueError, match="page_code"):
            LogSense(page_code=64)
        with pytest.raises(DecodeError):
            LogSense.from_bytes(bytes([0x4D, 0x04, 0x6E, 0, 0, 0, 0, 0, 0, 0]))
        with pytest.raises(DecodeError):
            LogSense.from_bytes(bytes([0x4D, 0x00, 0x6E, 0, 1, 0, 0, 0, 0, 0]))


class TestLogPage:
    """Generic log pages against hand-made layouts."""

    def test_parameters(self) -> None:
        """Parameter code, control bits and value of each parameter."""
        raw = bytes([0x42, 0x01, 0x00, 0x0B])  # SPF, subpage 1
        raw += bytes([0x00, 0x01, 0xB3, 0x02, 0xAB, 0xCD])  # DU, TSD, ETC, TMC=0, FL=3
        raw += bytes([0x80, 0x00, 0x4C, 0x01, 0x07])  # obsolete DS, TMC=3
        page = LogPage.from_bytes(raw)
        assert page.page_code == 2
        assert page.subpage_code == 1
        assert page.spf
        first, second = page.parameters
        assert first.parameter_code == 1
        assert first.du
        assert first.tsd
        assert first.etc
        assert first.tmc == 0
        assert first.format_and_linking == 3
        assert first.as_int == 0xABCD
        assert second.parameter_code == 0x8000
        assert second.obsolete_ds
        assert second.tmc == 3
        assert page.parameter(0x8000) == second
        assert page.to_bytes() == raw

    def test_allocation_cut(self) -> None:
        """A page cut by the allocation length keeps its whole parameters."""
        raw = _tapealert_page({1})
        page = LogPage.from_bytes(raw[: 4 + 5 * 3 + 2])
        assert [p.parameter_code for p in page.parameters] == [1, 2, 3]

    def test_parameter_past_end(self) -> None:
        """A complete page whose parameter overruns it is a DecodeError."""
        raw = bytes([0x02, 0x00, 0x00, 0x05, 0x00, 0x01, 0x00, 0x09, 0xFF])
        with pytest.raises(DecodeError):
            LogPage.from_bytes(raw)

    def test_stray_bytes(self) -> None:
        """Bytes after the last parameter that are no parameter are a DecodeError."""
        raw = bytes([0x02, 0x00, 0x00, 0x06, 0x00, 0x01, 0x00, 0x00, 0xFF, 0xFF])
        with pytest.raises(DecodeError):
            LogPage.from_bytes(raw)

    def test_value_limit(self) -> None:
        """A parameter value holds at most 255 bytes."""
        with pytest.raises(ValueError, match="value"):
            LogParameter(1, bytes(256))


class TestTapeAlert:
    """The TapeAlert page 2Eh."""

    def test_hand_made(self) -> None:
        """Flags 3 (hard error) and 20 (cleaning required) from a hand-made page."""
        alert = TapeAlert.from_bytes(_tapealert_page({3, 20}))
        assert alert.flags == frozenset({3, 20})
        assert 20 in alert
        assert 21 not in alert
        assert alert.names == ["Hard error", "Cleaning required"]
        assert len(alert.present) == 64

    def test_encode(self) -> None:
        """The encoder writes 64 one-byte parameters, flag in bit 0."""
        raw = TapeAlert({1, 64}).to_bytes()
        assert raw[:4] == bytes([0x2E, 0x00, 0x01, 0x40])
        assert raw[4:9] == bytes([0x00, 0x01, 0x03, 0x01, 0x01])
        assert raw[-5:] == bytes([0x00, 0x40, 0x03, 0x01, 0x01])
        assert raw[9:14] == bytes([0x00, 0x02, 0x03, 0x01, 0x00])

    def test_names_complete(self) -> None:
        """Every flag 1..64 has a name, for a drive and for a changer."""
        assert sorted(TAPE_ALERT_NAMES) == list(range(1, 65))
        assert sorted(CHANGER_TAPE_ALERT_NAMES) == list(range(1, 65))

    def test_changer_names(self) -> None:
        """A changer's flag 13 is a pick retry, 16 the door; a drive's are other things."""
        alert = TapeAlert.from_bytes(_tapealert_page({13, 16}))
        assert alert.names_for(8) == ["Library pick retry", "Library door"]
        assert alert.names_for(1) == alert.names
        assert alert.names == ["Recoverable mechanical cartridge failure", "Forced eject"]

    def test_wrong_page(self) -> None:
        """A page that is not 2Eh, or a parameter code over 64, is a DecodeError."""
        with pytest.raises(DecodeError):
            TapeAlert.from_bytes(bytes([0x2F, 0, 0, 0]))
        with pytest.raises(DecodeError):
            TapeAlert.from_bytes(bytes([0x2E, 0, 0, 5, 0, 0x41, 0, 1, 1]))
        with pytest.raises(DecodeError):
            TapeAlert.from_bytes(bytes([0x2E, 0, 0, 4, 0, 0x01, 0, 0]))

    def test_flag_range(self) -> None:
        """Flags outside 1..64 are refused."""
        with pytest.raises(ValueError, match="flags"):
            TapeAlert({65})
        with pytest.raises(ValueError, match="flags"):
            TapeAlert({0})

    @given(st.sets(st.integers(1, 64)))
    def test_round_trip(self, flags: set[int]) -> None:
        """from_bytes(to_bytes()) is the identity."""
        alert = TapeAlert(flags)
        assert TapeAlert.from_bytes(alert.to_bytes()) == alert


_param = st.builds(
    LogParameter,
    st.integers(0, 0xFFFF),
    st.binary(max_size=20),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 3),
    st.integers(0, 3),
    st.booleans(),
)


class TestLogProperties:
    """Round trips and arbitrary input."""

    @given(st.integers(0, 63), st.lists(_param, max_size=10), st.integers(0, 255), st.booleans())
    def test_round_trip(self, code: int, params: list[LogParameter], sub: int, ds: bool) -> None:
        """from_bytes(to_bytes()) is the identity."""
        page = LogPage(code, tuple(params), sub, ds, spf=sub != 0)
        assert LogPage.from_bytes(page.to_bytes()) == page

    @given(st.binary(max_size=400))
    def test_arbitrary(self, raw: bytes) -> None:
        """Arbitrary bytes parse or raise DecodeError (as a page and as TapeAlert)."""
        with contextlib.suppress(DecodeError):
            LogPage.from_bytes(raw)
        with contextlib.suppress(DecodeError):
            TapeAlert.from_bytes(raw)

    @given(st.binary(max_size=12))
    def test_arbitrary_cdb(self, raw: bytes) -> None:
        """Arbitrary CDB bytes parse or raise DecodeError."""
        with contextlib.suppress(DecodeError):
            LogSense.from_bytes(raw)
