"""REPORT SUPPORTED OPERATION CODES."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.opcodes import (
    CommandTimeouts,
    OneCommandSupport,
    ReportingOptions,
    ReportSupportedOpcodes,
    Support,
    SupportedCommand,
    SupportedOpcodes,
)


class TestCdb:
    """The CDB."""

    def test_layout(self) -> None:
        """A3h/0Ch, RCTD byte 2 bit 7, options bits 2-0, opcode, SA, allocation length."""
        cdb = ReportSupportedOpcodes(
            ReportingOptions.ONE_COMMAND_WITH_SERVICE_ACTION,
            0xA3,
            0x0A,
            rctd=True,
            allocation_length=512,
        )
        assert cdb.to_bytes() == bytes([0xA3, 0x0C, 0x82, 0xA3, 0x00, 0x0A, 0, 0, 2, 0, 0, 0])

    @given(
        st.integers(0, 7),
        st.integers(0, 255),
        st.integers(0, 0xFFFF),
        st.booleans(),
        st.integers(0, 2**32 - 1),
    )
    def test_round_trip(self, opts: int, op: int, sa: int, rctd: bool, alloc: int) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = ReportSupportedOpcodes(opts, op, sa, rctd, alloc)
        assert ReportSupportedOpcodes.from_bytes(cmd.to_bytes()) == cmd
        assert cmd.data_in_length == alloc

    def test_bad(self) -> None:
        """Another service action or reserved bits are DecodeErrors; ranges are checked."""
        with pytest.raises(DecodeError):
            ReportSupportedOpcodes.from_bytes(bytes([0xA3, 0x0A]) + bytes(10))
        with pytest.raises(DecodeError):
            ReportSupportedOpcodes.from_bytes(bytes([0xA3, 0x0C, 0x08]) + bytes(9))
        with pytest.raises(ValueError, match="reporting_options"):
            ReportSupportedOpcodes(8)


class TestData:
    """Parameter data against hand-made layouts (SPC-4 tables 249-253)."""

    def test_all_commands(self) -> None:
        """Descriptors of 8 bytes, 20 with CTDP; SERVACTV and the timeouts."""
        inq = bytes([0x12, 0, 0, 0, 0, 0x00, 0, 6])
        rtpg = bytes([0xA3, 0, 0x00, 0x0A, 0, 0x03, 0, 12])
        rtpg += bytes([0, 0x0A, 0, 0x01]) + (30).to_bytes(4, "big") + (60).to_bytes(4, "big")
        raw = (len(inq) + len(rtpg)).to_bytes(4, "big") + inq + rtpg
        data = SupportedOpcodes.from_bytes(raw)
        first, second = data.commands
        assert first == SupportedCommand(0x12, 6)
        assert second.service_action_valid
        assert second.service_action == 0x0A
        assert second.cdb_length == 12
        assert second.timeouts == CommandTimeouts(30, 60, 1)
        assert data.find(0xA3, 0x0A) == second
        assert data.find(0xA3, 0x0C) is None
        assert data.find(0x12) == first
        assert data.to_bytes() == raw

    def test_one_command(self) -> None:
        """CTDP bit 7 and SUPPORT bits 2-0 of byte 1, CDB size, usage map, timeouts."""
        usage = bytes([0x12, 0x01, 0xFF, 0xFF, 0xFF, 0xFF])
        raw = (
            bytes([0, 0x83, 0, 6])
            + usage
            + bytes([0, 0x0A, 0, 0])
            + bytes(4)
            + (5).to_bytes(4, "big")
        )
        one = OneCommandSupport.from_bytes(raw)
        assert one.support is Support.SUPPORTED
        assert one.cdb_usage == usage
        assert one.timeouts == CommandTimeouts(0, 5)
        assert one.to_bytes() == raw
        assert OneCommandSupport.from_bytes(bytes([0, 0x01, 0, 0])).support is Support.NOT_SUPPORTED

    def test_bad_timeouts(self) -> None:
        """A timeouts descriptor whose length is not 0Ah is a DecodeError."""
        with pytest.raises(DecodeError):
            CommandTimeouts.from_bytes(bytes([0, 0x0B]) + bytes(10))

    def test_cut(self) -> None:
        """A list cut by the allocation length keeps its whole descriptors."""
        data = SupportedOpcodes(tuple(SupportedCommand(op, 6) for op in range(5)))
        assert len(SupportedOpcodes.from_bytes(data.to_bytes()[:30]).commands) == 3


_timeouts = st.one_of(
    st.none(),
    st.builds(
        CommandTimeouts, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 255)
    ),
)


class TestProperties:
    """Round trips and arbitrary input."""

    @given(
        st.lists(
            st.builds(
                SupportedCommand,
                st.integers(0, 255),
                st.integers(0, 0xFFFF),
                st.integers(0, 0xFFFF),
                st.booleans(),
                _timeouts,
            ),
            max_size=8,
        )
    )
    def test_round_trip(self, commands: list[SupportedCommand]) -> None:
        """from_bytes(to_bytes()) is the identity."""
        data = SupportedOpcodes(tuple(commands))
        assert SupportedOpcodes.from_bytes(data.to_bytes()) == data

    @given(st.integers(0, 7), st.binary(max_size=20), _timeouts, st.integers(0, 3))
    def test_one_round_trip(
        self, sup: int, usage: bytes, t: CommandTimeouts | None, cdlp: int
    ) -> None:
        """The one-command form round-trips."""
        one = OneCommandSupport(sup, usage, t, cdlp)
        assert OneCommandSupport.from_bytes(one.to_bytes()) == one

    @given(st.binary(max_size=200))
    def test_arbitrary(self, raw: bytes) -> None:
        """Arbitrary bytes parse or raise DecodeError."""
        for cls in (SupportedOpcodes, OneCommandSupport, CommandTimeouts, ReportSupportedOpcodes):
            with contextlib.suppress(DecodeError):
                cls.from_bytes(raw)  # type: ignore[attr-defined]
