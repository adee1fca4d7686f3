"""Tests of the path monitor, the checkers and failback, on a fake clock."""

from __future__ import annotations

import gc
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.multipath import MultipathDevice, PathMonitor, PathState
from tapepath.multipath.checkers import (
    CheckResult,
    InquiryChecker,
    IscsiNopChecker,
    PathCheck,
    TurChecker,
    apply_check,
    make_checker,
)
from tapepath.multipath.verdict import PathVerdict, path_verdict
from tapepath.transport import Response, Status
from tests.multipath.fakes import FakeClock, FakeUnit, Mode

TUR = bytes(6)


def _setup(ports: int = 2, **kw: Any) -> tuple[FakeUnit, FakeClock, PathMonitor, MultipathDevice]:
    unit = FakeUnit(ports=ports)
    clock = FakeClock()
    mon = PathMonitor(clock=clock)
    kw.setdefault("handler", None)
    dev = MultipathDevice(
        unit.transports, name="unit", monitor=mon, clock=clock, sleep=clock.sleep, **kw
    )
    return unit, clock, mon, dev


def _p(dev: MultipathDevice, i: int) -> Any:
    p = dev.group.find(f"mock://unit/port{i}")
    assert p is not None
    return p


class TestMonitor:
    """Failures are found with no command outstanding; paths that return are reinstated."""

    def test_idle_failure_found_and_reinstated(self) -> None:
        """An idle path that dies is FAILED at the next check, ACTIVE again once it answers."""
        unit, clock, mon, dev = _setup(polling_interval=1)
        mon.run_once()  # schedules
        unit.modes[0] = Mode.DOWN
        clock.advance(1)
        mon.run_once()
        assert _p(dev, 0).state is PathState.FAILED
        assert _p(dev, 1).state is PathState.ACTIVE
        unit.modes[0] = Mode.UP
        clock.advance(0.5)
        mon.run_once()
        assert _p(dev, 0).state is PathState.FAILED  # not due yet
        clock.advance(0.5)
        mon.run_once()
        assert _p(dev, 0).state is PathState.ACTIVE

    def test_busy_path_not_probed(self) -> None:
        """A path that carried commands since the last check gets no checker command."""
        unit, clock, mon, dev = _setup(polling_interval=1)
        mon.run_once()
        dev.execute(TUR)
        clock.advance(1)
        before = len(unit.transports[0].requests)
        mon.run_once()
        assert len(unit.transports[0].requests) == before  # busy: skipped
        assert len(unit.transports[1].requests) == 1  # idle: probed
        clock.advance(1)
        mon.run_once()
        assert len(unit.transports[0].requests) == before + 1  # idle now

    def test_standby_seen(self) -> None:
        """A failed path that comes back on a standby port returns as PASSIVE."""
        unit, clock, mon, dev = _setup(polling_interval=1)
        unit.modes[1] = Mode.DOWN
        mon.run_once()
        clock.advance(1)
        mon.run_once()
        assert _p(dev, 1).state is PathState.FAILED
        unit.modes[1] = Mode.STANDBY
        clock.advance(1)
        mon.run_once()
        assert _p(dev, 1).state is PathState.PASSIVE

    def test_marginal_held_out(self) -> None:
        """A flapping path stays FAILED for the hold-out time although its checker is happy."""
        unit, clock, mon, dev = _setup(
            polling_interval=1, marginal_failures=2, marginal_window=60, marginal_hold=10
        )
        mon.run_once()
        for _ in range(2):
            unit.modes[0] = Mode.DOWN
            clock.advance(1)
            mon.run_once()
            unit.modes[0] = Mode.UP
            clock.advance(1)
            mon.run_once()
        p0 = _p(dev, 0)
        assert p0.state is PathState.FAILED
        for _ in range(8):
            clock.advance(1)
            mon.run_once()
        assert p0.state is PathState.FAILED
        clock.advance(2)
        mon.run_once()
        assert p0.state is PathState.ACTIVE

    def test_offline_never_probed(self) -> None:
        """An administratively offline path gets no checker command."""
        unit, clock, mon, dev = _setup(polling_interval=1)
        dev.set_offline("mock://unit/port0")
        for _ in range(3):
            mon.run_once()
            clock.advance(1)
        assert unit.transports[0].requests == []

    def test_unregister_on_close(self) -> None:
        """Closing a device takes it off the monitor."""
        _unit, _clock, mon, dev = _setup()
        assert mon.devices == [dev]
        dev.close()
        assert mon.devices == []

    def test_forgotten_device_not_kept(self) -> None:
        """A device nobody holds is not kept alive by the monitor."""
        _unit, _clock, mon, dev = _setup()
        mon.run_once()
        del dev
        gc.collect()
        assert mon.devices == []
        mon.run_once()

    def test_thread_runs_and_stops(self) -> None:
        """The real thread checks paths and stops on request."""
        unit = FakeUnit()
        mon = PathMonitor()
        dev = MultipathDevice(unit.transports, monitor=mon, polling_interval=0.01)
        unit.modes[0] = Mode.DOWN
        mon.start()
        try:
            for _ in range(200):
                if _p(dev, 0).state is PathState.FAILED:
                    break
                time.sleep(0.01)
            assert _p(dev, 0).state is PathState.FAILED
        finally:
            mon.stop()
            dev.close()
        assert mon._thread is None


class TestFailback:
    """Failback modes decide when traffic goes back to a better path."""

    def _prio(self, **kw: Any) -> tuple[FakeUnit, FakeClock, PathMonitor, MultipathDevice]:
        unit, clock, mon, dev = _setup(
            polling_interval=1,
            priorities={"mock://unit/port0": 50, "mock://unit/port1": 10},
            **kw,
        )
        dev.execute(TUR)
        assert dev.current_path is _p(dev, 0)
        unit.modes[0] = Mode.DOWN
        dev.execute(TUR)
        assert dev.current_path is _p(dev, 1)
        unit.modes[0] = Mode.UP
        return unit, clock, mon, dev

    def test_immediate(self) -> None:
        """immediate: the next command after reinstatement goes to the better path."""
        unit, clock, mon, dev = self._prio(failback="immediate")
        mon.run_once()
        clock.advance(1)
        mon.run_once()
        dev.execute(TUR)
        assert unit.executed[-1] == (0, TUR)

    def test_manual(self) -> None:
        """manual: traffic stays until failback() is called."""
        unit, clock, mon, dev = self._prio(failback="manual")
        mon.run_once()
        clock.advance(1)
        mon.run_once()
        assert _p(dev, 0).state is PathState.ACTIVE
        dev.execute(TUR)
        assert unit.executed[-1] == (1, TUR)
        assert dev.failback() is _p(dev, 0)
        dev.execute(TUR)
        assert unit.executed[-1] == (0, TUR)

    def test_deferred(self) -> None:
        """N seconds: the better path must stay healthy that long first."""
        unit, clock, mon, dev = self._prio(failback=5)
        mon.run_once()
        clock.advance(1)
        mon.run_once()  # reinstated now
        for _ in range(4):
            clock.advance(1)
            mon.run_once()
            dev.execute(TUR)
            assert unit.executed[-1] == (1, TUR)
        clock.advance(1)
        mon.run_once()
        dev.execute(TUR)
        assert unit.executed[-1] == (0, TUR)

    def test_followover(self) -> None:
        """followover: a link that returns does not pull traffic back; the device does."""
        unit, clock, mon, dev = self._prio(failback="followover")
        mon.run_once()
        clock.advance(1)
        mon.run_once()
        dev.execute(TUR)
        assert unit.executed[-1] == (1, TUR)
        # the device moves its active port: the current one goes standby, the better one
        # passes through standby and then reports active on its own
        g = dev.group
        g.set_state(_p(dev, 0), PathState.PASSIVE, "device: standby")
        g.set_state(_p(dev, 0), PathState.ACTIVE, "device: active again")
        dev.execute(TUR)
        assert unit.executed[-1] == (0, TUR)


class TestCheckers:
    """Checkers map answers to findings; apply_check maps findings to states."""

    @pytest.mark.parametrize(
        ("mode", "result"),
        [
            (Mode.UP, CheckResult.UP),
            (Mode.DOWN, CheckResult.DOWN),
            (Mode.STANDBY, CheckResult.STANDBY),
            (Mode.UNAVAILABLE, CheckResult.STANDBY),
            (Mode.TRANSITIONING, CheckResult.TRANSITIONING),
            (Mode.OFFLINE, CheckResult.DOWN),
        ],
    )
    def test_tur(self, mode: Mode, result: CheckResult) -> None:
        """TEST UNIT READY answers map to the expected finding."""
        unit, _c, _m, dev = _setup()
        unit.modes[0] = mode
        found = TurChecker().check(dev, _p(dev, 0), 1.0)
        assert found.result is result
        assert unit.transports[0].requests[-1].cdb == TUR

    def test_inquiry_cannot_see_standby(self) -> None:
        """INQUIRY says ALIVE: it reinstates a failed path but does not activate a passive one."""
        unit, _c, _m, dev = _setup()
        found = InquiryChecker().check(dev, _p(dev, 0), 1.0)
        assert found.result is CheckResult.ALIVE
        assert unit.transports[0].requests[-1].cdb[0] == 0x12
        dev.group.set_state(_p(dev, 0), PathState.PASSIVE, "x")
        apply_check(dev, _p(dev, 0), found)
        assert _p(dev, 0).state is PathState.PASSIVE

    def test_nop_uses_ping(self) -> None:
        """iscsi-nop calls the transport's ping; without one it sends TEST UNIT READY."""
        unit, _c, _m, dev = _setup()
        pings: list[float] = []

        def ping(timeout: float) -> bool:
            pings.append(timeout)
            return False

        unit.transports[0].ping = ping  # type: ignore[attr-defined]
        assert IscsiNopChecker().check(dev, _p(dev, 0), 2.0).result is CheckResult.DOWN
        assert pings == [2.0]
        assert IscsiNopChecker().check(dev, _p(dev, 1), 2.0).result is CheckResult.UP

    def test_exception_is_down(self) -> None:
        """A transport that raises (closed) is DOWN, not a crash."""
        unit, _c, _m, dev = _setup()
        unit.transports[0].close()
        found = TurChecker().check(dev, _p(dev, 0), 1.0)
        assert found.result is CheckResult.DOWN
        assert "closed" in found.message

    def test_names(self) -> None:
        """Checker names resolve; 'none' is no checker."""
        assert make_checker("none") is None
        checker = make_checker("tur")
        assert checker is not None
        assert checker.name == "tur"
        with pytest.raises(ValueError, match="ping"):
            make_checker("ping")

    def test_up_activates_passive(self) -> None:
        """A TUR that succeeds on a PASSIVE path means the device made it active."""
        _u, _c, _m, dev = _setup()
        dev.group.set_state(_p(dev, 0), PathState.PASSIVE, "standby")
        apply_check(dev, _p(dev, 0), PathCheck(CheckResult.UP, "tur: up"))
        assert _p(dev, 0).state is PathState.ACTIVE


class TestVerdict:
    """The sense reader behind the path verdict is bounded and total."""

    @given(st.binary(max_size=64), st.sampled_from([0, 2, 8, 0x18]))
    def test_arbitrary_sense(self, sense: bytes, status: int) -> None:
        """Any bytes give a verdict; GOOD never gives a path verdict."""
        v = path_verdict(Response(status=status, sense=sense))
        assert isinstance(v, PathVerdict)
        if status != Status.CHECK_CONDITION:
            assert v is PathVerdict.PASS

    def test_descriptor_format(self) -> None:
        """Descriptor sense (72h) is read too."""
        r = Response(status=2, sense=bytes([0x72, 0x02, 0x04, 0x0B, 0, 0, 0, 0]))
        assert path_verdict(r) is PathVerdict.STANDBY
        ua = Response(status=2, sense=bytes([0x72, 0x06, 0x2A, 0x06, 0, 0, 0, 0]))
        assert path_verdict(ua) is PathVerdict.STATE_CHANGED
        lu_comm = Response(status=2, sense=bytes([0x72, 0x02, 0x08, 0x00, 0, 0, 0, 0]))
        assert path_verdict(lu_comm) is PathVerdict.PATH_FAILURE
        medium = Response(status=2, sense=bytes([0x72, 0x02, 0x3A, 0x00, 0, 0, 0, 0]))
        assert path_verdict(medium) is PathVerdict.PASS
