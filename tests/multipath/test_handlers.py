"""Tests of the activation handlers (ALUA, passive control paths) and path identification."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError, NoPathError
from tapepath.multipath import MultipathDevice, PathMonitor, PathState
from tapepath.multipath.checkers import CheckResult, RtpgChecker
from tapepath.multipath.handlers import (
    AluaHandler,
    NullHandler,
    PassivePathHandler,
    handler_for,
    register_handler,
)
from tapepath.multipath.identify import PathInfo, identify
from tapepath.scsi.alua import AccessState
from tapepath.transport import Outcome, Response, Status
from tests.multipath.fakes import FakeAluaUnit, FakeClock, FakeUnit, Mode

TUR = bytes(6)
MOVE = bytes((0xA5, 0, 0, 0, 0, 0x10, 0, 0x20, 0, 0, 0, 0))


def _alua(unit: FakeAluaUnit, clock: FakeClock | None = None, **kw: Any) -> MultipathDevice:
    clock = clock or FakeClock()
    return MultipathDevice(
        unit.transports,
        name="changer",
        monitor=False,
        handler=AluaHandler(),
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )


def _p(dev: MultipathDevice, i: int, scheme: str = "alua") -> Any:
    p = dev.group.find(f"mock://{scheme}/port{i}")
    assert p is not None
    return p


class TestAluaAttach:
    """Attaching learns ports, groups, states and priorities."""

    def test_states_and_identity(self) -> None:
        """The active group's path is ACTIVE with priority 50, the standby one PASSIVE with 1."""
        unit = FakeAluaUnit(ports=2, active=0)
        unit.preferred[1] = True
        dev = _alua(unit)
        p0, p1 = _p(dev, 0), _p(dev, 1)
        assert (p0.state, p1.state) == (PathState.ACTIVE, PathState.PASSIVE)
        assert (p0.identity.relative_port, p0.identity.port_group) == (1, 1)
        assert (p1.identity.relative_port, p1.identity.port_group) == (2, 2)
        assert p0.identity.designator == "naa.5000e11100000001"
        assert (p0.priority, p1.priority) == (50, 1 + 80)
        assert unit.executed == []  # attach sent only INQUIRY and RTPG

    def test_normal_command_on_active_group(self) -> None:
        """Commands go to the active group's path only."""
        unit = FakeAluaUnit(ports=2, active=1)
        dev = _alua(unit)
        assert dev.execute(MOVE).ok
        assert unit.executed == [(1, MOVE)]


class TestAluaActivation:
    """Losing the active group's path activates the standby group."""

    def test_explicit_stpg(self) -> None:
        """SET TARGET PORT GROUPS goes to the standby group, then the command runs there."""
        unit = FakeAluaUnit(ports=2, explicit=True, active=0)
        dev = _alua(unit)
        unit.link[0] = False
        r = dev.execute(TUR)
        assert r.ok
        assert unit.stpg == [(1, 2)]
        assert unit.executed == [(1, TUR)]
        assert _p(dev, 1).state is PathState.ACTIVE
        assert _p(dev, 0).state is PathState.FAILED

    def test_waits_out_transition(self) -> None:
        """While RTPG reports transitioning the handler waits the policy's delay."""
        unit = FakeAluaUnit(ports=2, explicit=True, active=0)
        clock = FakeClock()
        dev = _alua(unit, clock, transition_delay=2.0)
        unit.transition_reports = 2
        unit.link[0] = False
        assert dev.execute(TUR).ok
        assert clock.slept == [2.0, 2.0]

    def test_implicit_follows_device(self) -> None:
        """Implicit ALUA sends no STPG; the path the device made active is found by RTPG."""
        unit = FakeAluaUnit(ports=2, explicit=False, active=0)
        dev = _alua(unit)
        unit.link[0] = False
        unit.activate_group(1)
        unit.unit_attentions[1].clear()
        assert dev.execute(TUR).ok
        assert unit.stpg == []
        assert unit.executed == [(1, TUR)]

    def test_implicit_without_switch_no_path(self) -> None:
        """Implicit ALUA whose device does not switch: no activation, NoPathError."""
        unit = FakeAluaUnit(ports=2, explicit=False, active=0)
        dev = _alua(unit)
        unit.link[0] = False
        with pytest.raises(NoPathError):
            dev.execute(TUR)
        assert unit.executed == []

    def test_state_change_unit_attention(self) -> None:
        """06/2A/06 makes the handler re-read the states; the command goes to the new group."""
        unit = FakeAluaUnit(ports=2, explicit=True, active=0)
        dev = _alua(unit)
        unit.activate_group(1)  # the library moved its control path (2A/06 to port 0)
        assert dev.execute(MOVE).ok
        assert unit.executed == [(1, MOVE)]
        assert _p(dev, 0).state is PathState.PASSIVE

    def test_rtpg_checker(self) -> None:
        """The rtpg checker reads the state of the path's own group."""
        unit = FakeAluaUnit(ports=2, active=0)
        dev = _alua(unit)
        c = RtpgChecker()
        assert c.check(dev, _p(dev, 0), 1).result is CheckResult.UP
        assert c.check(dev, _p(dev, 1), 1).result is CheckResult.STANDBY
        unit.link[1] = False
        assert c.check(dev, _p(dev, 1), 1).result is CheckResult.DOWN
        unit.states[0] = AccessState.OFFLINE
        assert c.check(dev, _p(dev, 0), 1).result is CheckResult.DOWN

    def test_rtpg_checker_busy(self) -> None:
        """A passing transport failure (busy) of the rtpg probe is BUSY, not DOWN."""
        unit = FakeAluaUnit(ports=2, active=0)
        dev = _alua(unit)
        t = _p(dev, 0).transport
        real = t.execute

        def busy_once(cdb: bytes, **kw: Any) -> Response:
            t.execute = real  # type: ignore[method-assign]
            return Response.failure(Outcome.ABORTED, "bus busy", retryable=True)

        t.execute = busy_once  # type: ignore[method-assign]
        assert RtpgChecker().check(dev, _p(dev, 0), 1).result is CheckResult.BUSY
        assert RtpgChecker().check(dev, _p(dev, 0), 1).result is CheckResult.UP


class TestAutoChecker:
    """The default checker leaves unit attentions on active paths for the application."""

    def test_active_probed_with_inquiry(self) -> None:
        """An idle active path gets INQUIRY; its pending reset reaches the next command."""
        unit = FakeAluaUnit(ports=2, active=0)
        clock = FakeClock()
        mon = PathMonitor(clock=clock)
        dev = MultipathDevice(
            unit.transports, handler=AluaHandler(), monitor=mon, clock=clock, polling_interval=1
        )
        unit.unit_attentions[0].append((0x29, 0x00))
        before = len(unit.transports[0].requests)
        mon.run_once()
        clock.advance(1)
        mon.run_once()
        probes = [r.cdb[0] for r in unit.transports[0].requests[before:]]
        assert probes == [0x12]
        assert _p(dev, 0).take_unit_attentions() == []
        r = dev.execute(TUR)
        sense = r.sense_data
        assert sense is not None
        assert (sense.sense_key, sense.asc) == (6, 0x29)
        assert [r.cdb[0] for r in unit.transports[1].requests[-1:]] == [0xA3]  # passive: rtpg


class TestPassivePathHandler:
    """The non-ALUA passive control path: 02/04/0B, then an activation command."""

    def test_activates_with_start_unit(self) -> None:
        """START STOP UNIT goes to the passive path; once it answers, the command runs."""
        unit = FakeUnit()
        unit.modes[:] = [Mode.NO_CONNECT, Mode.STANDBY]

        def on_command(port: int, req: Any) -> None:
            if port == 1 and req.cdb[0] == 0x1B:
                unit.modes[1] = Mode.UP

        unit.on_command = on_command
        dev = MultipathDevice(unit.transports, monitor=False, handler=PassivePathHandler())
        assert dev.execute(MOVE).ok
        assert [(port, c[0]) for port, c in unit.executed] == [(1, 0x1B), (1, 0x00), (1, 0xA5)]

    def test_library_switches_by_itself(self) -> None:
        """Without an activation method, a passive path the library made active is found."""
        unit = FakeUnit()
        unit.modes[:] = [Mode.UP, Mode.STANDBY]
        dev = MultipathDevice(unit.transports, monitor=False)
        dev.execute(TUR)
        assert dev.execute(MOVE).ok  # port 1 untouched so far
        unit.modes[:] = [Mode.DOWN, Mode.STANDBY]
        dev.group.set_state(_p(dev, 1, "unit"), PathState.PASSIVE, "standby seen")
        unit.modes[1] = Mode.UP  # the library moved the control path
        r = dev.execute(TUR)
        assert r.ok
        assert _p(dev, 1, "unit").state is PathState.ACTIVE


class TestHandlerChoice:
    """Handlers are chosen by name, by vendor/product, or by TPGS."""

    def test_by_name_and_tpgs(self) -> None:
        """Names resolve; TPGS picks ALUA; nothing picks none."""
        assert isinstance(handler_for("passive"), PassivePathHandler)
        assert isinstance(handler_for(tpgs=2), AluaHandler)
        assert isinstance(handler_for(), NullHandler)
        with pytest.raises(ValueError, match="unknown activation handler"):
            handler_for("emc")

    def test_vendor_registry(self) -> None:
        """A vendor handler claims its products."""

        class Vendor(NullHandler):
            name = "acme"

        register_handler("acme", Vendor, vendor="ACME", product="ROBOT")
        assert isinstance(handler_for(vendor="ACME    ", product="ROBOT 9000"), Vendor)
        assert not isinstance(handler_for(vendor="ACME", product="DISK"), Vendor)
        assert isinstance(handler_for("acme"), Vendor)


class TestIdentify:
    """identify() reads INQUIRY and VPD; any bytes give a result or DecodeError."""

    def test_alua_unit(self) -> None:
        """The fake ALUA unit identifies as a changer with its NAA and port."""
        unit = FakeAluaUnit(ports=2, device_type=8)
        t = unit.transports[1]
        info = identify(lambda cdb, n: t.execute(cdb, data_in_len=n))
        assert info == PathInfo(
            device_type=8,
            tpgs=3,
            vendor="FAKE",
            product="ALUA UNIT",
            key="naa.5000e11100000001",
            relative_port=2,
            port_group=2,
        )

    def test_serial_fallback(self) -> None:
        """Without 83h the key is vendor.product.serial from 80h."""
        std = bytes([1, 0, 6, 2, 31, 0, 0, 0]) + b"VEND    " + b"PROD            " + b"0001"
        pages = {0x00: bytes([1, 0, 0, 1, 0x80]), 0x80: bytes([1, 0x80, 0, 4]) + b"S123"}

        def send(cdb: bytes, n: int) -> Response:
            if cdb[1] & 1:
                page = pages.get(cdb[2])
                if page is None:
                    return Response(status=Status.CHECK_CONDITION, sense=bytes(18))
                return Response(data=page)
            return Response(data=std)

        info = identify(send)
        assert info.device_type == 1
        assert info.key == "serial.VEND.PROD.S123"

    @given(st.binary(max_size=120), st.binary(max_size=120), st.binary(max_size=120))
    def test_arbitrary_bytes(self, std: bytes, vpd0: bytes, vpd83: bytes) -> None:
        """Garbage from the device gives a PathInfo or a DecodeError, nothing else."""

        def send(cdb: bytes, n: int) -> Response:
            if not cdb[1] & 1:
                return Response(data=std[:n])
            return Response(data=(vpd0 if cdb[2] == 0 else vpd83)[:n])

        try:
            info = identify(send)
        except DecodeError:
            return
        assert isinstance(info, PathInfo)


class TestUnitAttentionKept:
    """Internal commands keep the unit attentions they consume, for recovery."""

    def test_checker_ua_kept(self) -> None:
        """A UA met by execute_on lands in path.unit_attentions."""
        unit = FakeAluaUnit(ports=2, active=0)
        dev = _alua(unit)
        unit.unit_attentions[0].append((0x29, 0x00))
        r = dev.execute_on(_p(dev, 0), TUR)
        assert r.status == Status.CHECK_CONDITION
        (ua,) = _p(dev, 0).take_unit_attentions()
        assert (ua[2] & 0x0F, ua[12], ua[13]) == (6, 0x29, 0x00)
        assert _p(dev, 0).take_unit_attentions() == []
