"""REPORT and SET TARGET PORT GROUPS."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.alua import (
    AccessState,
    ReportTargetPortGroups,
    SetTargetPortGroups,
    StpgDescriptor,
    StpgParameters,
    TargetPortGroup,
    TargetPortGroups,
    TpgStatus,
)


def _descriptor(b0: int, b1: int, tpg: int, status: int, ports: list[int]) -> bytes:
    """A target port group descriptor laid out by hand (SPC-4 table 202)."""
    out = bytes([b0, b1]) + tpg.to_bytes(2, "big") + bytes([0, status, 0, len(ports)])
    return out + b"".join(b"\0\0" + p.to_bytes(2, "big") for p in ports)


class TestCdbs:
    """The MAINTENANCE IN/OUT CDBs."""

    def test_rtpg_layout(self) -> None:
        """A3h, byte 1: format bits 7-5 and service action 0Ah, allocation length 6-9."""
        assert ReportTargetPortGroups(extended=True, allocation_length=0x1000).to_bytes() == bytes(
            [0xA3, 0x2A, 0, 0, 0, 0, 0, 0, 0x10, 0x00, 0, 0]
        )
        assert ReportTargetPortGroups().to_bytes()[1] == 0x0A

    def test_stpg_layout(self) -> None:
        """A4h, service action 0Ah, parameter list length 6-9."""
        assert SetTargetPortGroups(8).to_bytes() == bytes(
            [0xA4, 0x0A, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]
        )

    @given(st.booleans(), st.integers(0, 2**32 - 1), st.integers(0, 255))
    def test_round_trip(self, ext: bool, length: int, control: int) -> None:
        """from_bytes(to_bytes()) is the identity."""
        r = ReportTargetPortGroups(ext, length, control)
        assert ReportTargetPortGroups.from_bytes(r.to_bytes()) == r
        s = SetTargetPortGroups(length, control)
        assert SetTargetPortGroups.from_bytes(s.to_bytes()) == s

    def test_other_service_action(self) -> None:
        """REPORT SUPPORTED OPERATION CODES (service action 0Ch) is not RTPG."""
        with pytest.raises(DecodeError):
            ReportTargetPortGroups.from_bytes(bytes([0xA3, 0x0C]) + bytes(10))
        with pytest.raises(DecodeError):
            ReportTargetPortGroups.from_bytes(bytes([0xA3, 0x4A]) + bytes(10))
        with pytest.raises(DecodeError):
            SetTargetPortGroups.from_bytes(bytes([0xA4, 0x0B]) + bytes(10))

    def test_for_parameters(self) -> None:
        """The CDB's list length follows the descriptors."""
        cdb, data = SetTargetPortGroups.for_parameters(
            StpgParameters((StpgDescriptor(1, AccessState.ACTIVE_OPTIMIZED),))
        )
        assert data == bytes([0, 0, 0, 0, 0x00, 0x00, 0x00, 0x01])
        assert cdb.parameter_list_length == 8
        cdb.check_data_out(data)
        with pytest.raises(ValueError, match="parameter_list_length"):
            cdb.check_data_out(b"")


class TestDescriptors:
    """Report data against hand-made layouts."""

    @pytest.mark.parametrize("state", list(AccessState))
    def test_every_state(self, state: AccessState) -> None:
        """Each access state in byte 0 bits 3-0, with PREF in bit 7."""
        raw = bytes([0, 0, 0, 16]) + _descriptor(0x80 | state, 0xDF, 7, 2, [1, 2])
        (g,) = TargetPortGroups.from_bytes(raw).groups
        assert g.state is state
        assert g.pref
        assert g.tpg_id == 7
        assert g.status is TpgStatus.CHANGED_BY_IMPLICIT_BEHAVIOR
        assert g.relative_target_ports == (1, 2)
        assert g.supported_states == frozenset(AccessState)

    def test_supported_bits(self) -> None:
        """T_SUP bit 7, O_SUP 6, LBD_SUP 4, U_SUP 3, S_SUP 2, AN_SUP 1, AO_SUP 0."""
        for bit, state in [
            (7, AccessState.TRANSITIONING),
            (6, AccessState.OFFLINE),
            (4, AccessState.LBA_DEPENDENT),
            (3, AccessState.UNAVAILABLE),
            (2, AccessState.STANDBY),
            (1, AccessState.ACTIVE_NON_OPTIMIZED),
            (0, AccessState.ACTIVE_OPTIMIZED),
        ]:
            g, _ = TargetPortGroup.parse(_descriptor(0, 1 << bit, 1, 0, []))
            assert g.supported_states == frozenset({state})

    def test_length_only_header(self) -> None:
        """The length-only format: two groups, whole data re-encodes."""
        body = _descriptor(0x00, 0x0F, 1, 0, [1]) + _descriptor(0x02, 0x0F, 2, 1, [2, 3])
        raw = len(body).to_bytes(4, "big") + body
        data = TargetPortGroups.from_bytes(raw)
        assert not data.extended
        assert [g.state for g in data.groups] == [AccessState.ACTIVE_OPTIMIZED, AccessState.STANDBY]
        assert data.group_of_port(3) == data.groups[1]
        assert data.group_of_port(9) is None
        assert data.to_bytes() == raw

    def test_extended_header(self) -> None:
        """FORMAT TYPE 1 in byte 4 bits 6-4, implicit transition time in byte 5."""
        body = bytes([0x10, 60, 0, 0]) + _descriptor(0x0F, 0x80, 1, 0, [1])
        raw = len(body).to_bytes(4, "big") + body
        data = TargetPortGroups.from_bytes(raw)
        assert data.extended
        assert data.implicit_transition_time == 60
        assert data.groups[0].state is AccessState.TRANSITIONING
        assert data.to_bytes() == raw

    def test_unknown_state_stays_int(self) -> None:
        """A reserved access state value parses as a plain int."""
        g, _ = TargetPortGroup.parse(_descriptor(0x05, 0, 1, 0, []))
        assert g.state == 5
        assert not isinstance(g.state, AccessState)

    def test_cut_and_overrun(self) -> None:
        """A list cut by allocation length keeps whole groups; a complete overrun is an error."""
        body = _descriptor(0, 0, 1, 0, [1]) + _descriptor(0, 0, 2, 0, [2])
        raw = len(body).to_bytes(4, "big") + body
        assert len(TargetPortGroups.from_bytes(raw[:20]).groups) == 1
        bad = bytes([0, 0, 0, 8]) + _descriptor(0, 0, 1, 0, [])[:7] + b"\x05"
        with pytest.raises(DecodeError):
            TargetPortGroups.from_bytes(bad)

    def test_ranges(self) -> None:
        """Fields that do not fit are refused by name."""
        with pytest.raises(ValueError, match="state"):
            TargetPortGroup(1, 16)
        with pytest.raises(ValueError, match="relative_target_ports"):
            TargetPortGroup(1, 0, relative_target_ports=(1 << 16,))
        with pytest.raises(ValueError, match="implicit_transition_time"):
            TargetPortGroups((), extended=False, implicit_transition_time=5)


class TestStpgParameters:
    """SET TARGET PORT GROUPS parameter list."""

    def test_layout(self) -> None:
        """4 reserved bytes, then state (byte 0 bits 3-0) and group (bytes 2-3)."""
        raw = bytes([0, 0, 0, 0, 0x02, 0, 0, 5, 0x00, 0, 0, 6])
        p = StpgParameters.from_bytes(raw)
        assert p.descriptors == (
            StpgDescriptor(5, AccessState.STANDBY),
            StpgDescriptor(6, AccessState.ACTIVE_OPTIMIZED),
        )
        assert p.to_bytes() == raw

    def test_bad(self) -> None:
        """Reserved bits and odd lengths are DecodeErrors."""
        with pytest.raises(DecodeError):
            StpgParameters.from_bytes(bytes([0, 0, 0, 1]))
        with pytest.raises(DecodeError):
            StpgParameters.from_bytes(bytes([0, 0, 0, 0, 0x12, 0, 0, 1]))
        with pytest.raises(DecodeError):
            StpgParameters.from_bytes(bytes(6))


_group = st.builds(
    TargetPortGroup,
    st.integers(0, 0xFFFF),
    st.integers(0, 15),
    st.booleans(),
    st.lists(st.integers(0, 0xFFFF), max_size=5).map(tuple),
    st.integers(0, 255),
    *[st.booleans()] * 7,
    st.integers(0, 255),
)


class TestProperties:
    """Round trips and arbitrary input."""

    @given(st.lists(_group, max_size=4), st.booleans(), st.integers(0, 255))
    def test_round_trip(self, groups: list[TargetPortGroup], ext: bool, itt: int) -> None:
        """from_bytes(to_bytes()) is the identity in both header formats."""
        data = TargetPortGroups(tuple(groups), ext, itt if ext else 0)
        assert TargetPortGroups.from_bytes(data.to_bytes()) == data

    @given(
        st.lists(st.builds(StpgDescriptor, st.integers(0, 0xFFFF), st.integers(0, 15)), max_size=5)
    )
    def test_stpg_round_trip(self, descs: list[StpgDescriptor]) -> None:
        """STPG parameter lists round-trip."""
        p = StpgParameters(tuple(descs))
        assert StpgParameters.from_bytes(p.to_bytes()) == p

    @given(st.binary(max_size=200))
    def test_arbitrary(self, raw: bytes) -> None:
        """Arbitrary bytes parse or raise DecodeError."""
        for cls in (TargetPortGroups, StpgParameters, ReportTargetPortGroups, SetTargetPortGroups):
            with contextlib.suppress(DecodeError):
                cls.from_bytes(raw)  # type: ignore[attr-defined]
