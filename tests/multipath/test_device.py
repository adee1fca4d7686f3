"""Tests of MultipathDevice.execute(): pass-through, failover, passive paths, no-path policy."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from structlog.testing import capture_logs

from tapepath.errors import NoPathError, TransportError, UnknownSchemeError
from tapepath.multipath import (
    CommandInDoubtError,
    Complete,
    Decision,
    Fail,
    FailedCommand,
    MultipathDevice,
    PathMonitor,
    PathState,
    Resend,
)
from tapepath.transport import Outcome, Response, Status, Transport
from tapepath.transport.registry import register_scheme
from tests.multipath.fakes import FakeAluaUnit, FakeClock, FakeUnit, Mode

INQUIRY = bytes((0x12, 0, 0, 0, 36, 0))
WRITE6 = bytes((0x0A, 0, 0, 0, 1, 0))
TUR = bytes(6)


def _device(unit: FakeUnit, clock: FakeClock | None = None, **kw: Any) -> MultipathDevice:
    clock = clock or FakeClock()
    kw.setdefault("handler", None)  # no INQUIRY at construction: command logs stay exact
    return MultipathDevice(
        unit.transports, name="unit", monitor=False, clock=clock, sleep=clock.sleep, **kw
    )


class TestPassThrough:
    """In normal operation the device adds nothing."""

    def test_is_a_transport(self) -> None:
        """A MultipathDevice stands where a Transport does."""
        assert isinstance(_device(FakeUnit()), Transport)

    def test_same_response_and_one_command(self) -> None:
        """The path's own Response object comes back and only the caller's command is sent."""
        unit = FakeUnit()
        seen: list[Response] = []
        orig = unit.transports[0].execute

        def spy(*a: Any, **k: Any) -> Response:
            r = orig(*a, **k)
            seen.append(r)
            return r

        unit.transports[0].execute = spy  # type: ignore[method-assign]
        dev = _device(unit)
        r = dev.execute(INQUIRY, data_in_len=36, timeout=5)
        assert r is seen[0]
        assert r.data == unit.payload[:36]
        assert unit.executed == [(0, INQUIRY)]
        assert unit.transports[1].requests == []

    def test_data_out_not_copied(self) -> None:
        """The transport receives the caller's data-out (equal bytes, counted once)."""
        unit = FakeUnit()
        dev = _device(unit)
        payload = b"z" * 1000
        dev.execute(WRITE6, data_out=payload)
        assert unit.transports[0].requests[0].data_out == payload
        assert dev.paths[0].stats.bytes_out == 1000

    def test_execute_into_fills_buffer(self) -> None:
        """execute_into lands the data in the caller's buffer."""
        unit = FakeUnit()
        buf = bytearray(16)
        r = _device(unit).execute_into(INQUIRY, buf)
        assert r.ok
        assert bytes(buf) == unit.payload[:16]

    def test_device_errors_pass_back(self) -> None:
        """A CHECK CONDITION that is not about the path goes back to the caller untouched."""
        unit = FakeUnit()
        sense = bytes([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0])

        unit.transports[0]._handler = lambda req: Response(
            status=Status.CHECK_CONDITION, sense=sense
        )
        dev = _device(unit)
        r = dev.execute(WRITE6)
        assert r.check_condition
        assert r.sense == sense
        assert all(p.state is PathState.ACTIVE for p in dev.paths)


class TestFailover:
    """A path failure marks the path failed and the command goes on the next path."""

    def test_safe_command_resent(self) -> None:
        """INQUIRY on a dead path is resent on the other one and the path is FAILED."""
        unit = FakeUnit()
        unit.modes[0] = Mode.DOWN
        dev = _device(unit)
        with capture_logs() as logs:
            r = dev.execute(INQUIRY, data_in_len=36)
        assert r.ok
        assert unit.executed[-1] == (1, INQUIRY)
        p0 = dev.group.find("mock://unit/port0")
        assert p0 is not None
        assert p0.state is PathState.FAILED
        assert dev.current_path is dev.group.find("mock://unit/port1")
        changes = [e for e in logs if e["event"] == "path_state_changed"]
        assert [(e["path"], e["old"], e["new"]) for e in changes] == [
            ("mock://unit/port0", "active", "failed")
        ]
        assert "connection reset" in changes[0]["reason"]

    def test_execute_into_fails_over(self) -> None:
        """execute_into on a dead path is resent and the buffer filled from the other path."""
        unit = FakeUnit()
        unit.modes[0] = Mode.DOWN
        buf = bytearray(36)
        r = _device(unit).execute_into(INQUIRY, buf)
        assert r.ok
        assert bytes(buf) == unit.payload[:36]
        assert unit.executed[-1] == (1, INQUIRY)

    def test_unsafe_command_in_doubt(self) -> None:
        """A WRITE that may have run is not resent: CommandInDoubtError with the response."""
        unit = FakeUnit()
        unit.modes[0] = Mode.DOWN
        dev = _device(unit)
        with pytest.raises(CommandInDoubtError) as info:
            dev.execute(WRITE6, data_out=b"x")
        err = info.value
        assert err.maybe_executed
        assert err.opcode == 0x0A
        assert err.path == "mock://unit/port0"
        assert err.response.outcome is Outcome.LINK_LOST
        assert unit.transports[1].requests == []

    def test_unsent_command_resent(self) -> None:
        """A WRITE the transport never sent (maybe_executed False) is resent."""
        unit = FakeUnit()
        unit.modes[0] = Mode.NO_CONNECT
        dev = _device(unit)
        assert dev.execute(WRITE6, data_out=b"x").ok
        assert unit.executed == [(1, WRITE6)]

    def test_all_paths_dead_no_path_error(self) -> None:
        """With every path failed and no queueing, NoPathError names the path states."""
        unit = FakeUnit()
        unit.modes[:] = [Mode.DOWN, Mode.DOWN]
        dev = _device(unit)
        with pytest.raises(NoPathError, match="port1=failed"):
            dev.execute(TUR)

    def test_custom_hook_decides(self) -> None:
        """A recovery hook may complete a command itself; it sees the failed command."""
        unit = FakeUnit()
        unit.modes[0] = Mode.DOWN
        seen: list[FailedCommand] = []

        class Hook:
            def on_path_failure(self, device: MultipathDevice, failed: FailedCommand) -> Decision:
                seen.append(failed)
                probe = device.execute_on(device.group.active[0], TUR)
                assert probe.ok
                return Complete(Response(status=Status.GOOD, data=b"done"))

        dev = _device(unit, recovery=Hook())
        r = dev.execute(WRITE6, data_out=b"abc")
        assert r.data == b"done"
        assert seen[0].cdb == WRITE6
        assert seen[0].data_out == b"abc"
        assert seen[0].attempt == 1
        assert seen[0].maybe_executed
        assert unit.executed == [(0, WRITE6), (1, TUR)]

    def test_hook_fail_and_resend_on_named_path(self) -> None:
        """Fail raises the hook's error; Resend(path) uses the path named."""
        unit = FakeUnit(ports=3)
        unit.modes[0] = Mode.DOWN

        class Hook:
            def __init__(self) -> None:
                self.fail = False

            def on_path_failure(self, device: MultipathDevice, failed: FailedCommand) -> Decision:
                if self.fail:
                    return Fail(RuntimeError("stop"))
                return Resend(device.group.find("mock://unit/port2"))

        hook = Hook()
        dev = _device(unit, recovery=hook)
        dev.execute(WRITE6, data_out=b"a")
        assert unit.executed[-1] == (2, WRITE6)
        hook.fail = True
        unit.modes[2] = Mode.DOWN
        with pytest.raises(RuntimeError, match="stop"):
            dev.execute(WRITE6, data_out=b"a")

    def test_commands_wait_while_recovering(self) -> None:
        """A command submitted during recovery waits until the hook has finished."""
        unit = FakeUnit()
        unit.modes[0] = Mode.DOWN
        in_hook = threading.Event()
        release = threading.Event()
        order: list[str] = []

        class Hook:
            def on_path_failure(self, device: MultipathDevice, failed: FailedCommand) -> Decision:
                in_hook.set()
                release.wait(5)
                order.append("hook done")
                return Resend()

        dev = _device(unit, recovery=Hook())
        t1 = threading.Thread(target=dev.execute, args=(TUR,))
        t1.start()
        assert in_hook.wait(5)

        def second() -> None:
            dev.execute(INQUIRY, data_in_len=36)
            order.append("second sent")

        t2 = threading.Thread(target=second)
        t2.start()
        t2.join(0.2)
        assert t2.is_alive()  # held back
        release.set()
        t1.join(5)
        t2.join(5)
        assert order == ["hook done", "second sent"]


class TestRecoveryQueue:
    """Commands submitted during a recovery go afterwards, one at a time, in order."""

    def test_submission_order_kept(self) -> None:
        """Three commands queued behind a recovery reach the device in arrival order."""
        unit = FakeUnit()
        unit.modes[0] = Mode.DOWN
        in_hook = threading.Event()
        release = threading.Event()

        class Hook:
            def on_path_failure(self, device: MultipathDevice, failed: FailedCommand) -> Decision:
                in_hook.set()
                release.wait(5)
                return Resend()

        dev = _device(unit, recovery=Hook())
        first = threading.Thread(target=dev.execute, args=(TUR,))
        first.start()
        assert in_hook.wait(5)
        threads = []
        for tag in (1, 2, 3):
            cdb = bytes((0x12, 0, 0, 0, 36, tag))  # INQUIRY, the CONTROL byte tags it
            t = threading.Thread(target=dev.execute, args=(cdb,), kwargs={"data_in_len": 36})
            t.start()
            threads.append(t)
            for _ in range(500):  # wait until it is queued before starting the next
                if dev.gate.queued == tag:
                    break
                time.sleep(0.001)
            assert dev.gate.queued == tag
        release.set()
        for t in (first, *threads):
            t.join(5)
        sent = [c[5] for port, c in unit.executed if c[0] == 0x12]
        assert sent == [1, 2, 3]
        assert unit.executed[-4] == (1, TUR)  # the resent command went first
        assert dev.gate.queued == 0

    def test_queue_timeout(self) -> None:
        """A command whose deadline passes in the queue is not sent: NoPathError."""
        unit = FakeUnit()
        unit.modes[0] = Mode.DOWN
        in_hook = threading.Event()
        release = threading.Event()

        class Hook:
            def on_path_failure(self, device: MultipathDevice, failed: FailedCommand) -> Decision:
                in_hook.set()
                release.wait(5)
                return Resend()

        dev = _device(unit, recovery=Hook())
        first = threading.Thread(target=dev.execute, args=(TUR,))
        first.start()
        assert in_hook.wait(5)
        with pytest.raises(NoPathError, match="behind a recovery"):
            dev.execute(INQUIRY, data_in_len=36, timeout=0.05)
        release.set()
        first.join(5)
        assert dev.execute(INQUIRY, data_in_len=36).ok  # the queue moved on
        assert dev.gate.queued == 0


class TestPassivePaths:
    """02/04/0B and friends make a path PASSIVE; the command did not run and is resent."""

    @pytest.mark.parametrize("mode", [Mode.STANDBY, Mode.UNAVAILABLE])
    def test_standby_moves_on(self, mode: Mode) -> None:
        """Even a WRITE is resent: a standby port refused it."""
        unit = FakeUnit()
        unit.modes[0] = mode
        dev = _device(unit)
        assert dev.execute(WRITE6, data_out=b"x").ok
        assert unit.executed == [(1, WRITE6)]
        p0 = dev.group.find("mock://unit/port0")
        assert p0 is not None
        assert p0.state is PathState.PASSIVE

    def test_activation_when_only_passive_left(self) -> None:
        """With no active path left, the handler activates a passive one and the command goes."""
        unit = FakeUnit()
        unit.modes[:] = [Mode.DOWN, Mode.STANDBY]
        activated: list[str] = []

        class Handler:
            name = "test"

            def attach(self, device: MultipathDevice) -> None:
                pass

            def activate(self, device: MultipathDevice, path: Any) -> bool:
                activated.append(path.url)
                unit.modes[1] = Mode.UP
                return True

            def refresh(self, device: MultipathDevice) -> None:
                pass

        dev = _device(unit, handler=Handler())
        r = dev.execute(TUR)
        assert r.ok
        assert activated == ["mock://unit/port1"]
        assert unit.executed[-1] == (1, TUR)

    def test_transitioning_retries_same_path(self) -> None:
        """02/04/0A is retried on the same path after the policy's delay."""
        unit = FakeUnit()
        unit.modes[0] = Mode.TRANSITIONING
        clock = FakeClock()
        clock.during_sleep = lambda: unit.modes.__setitem__(0, Mode.UP)
        dev = _device(unit, clock, transition_delay=2.0)
        assert dev.execute(WRITE6, data_out=b"x").ok
        assert clock.slept == [2.0]
        assert unit.executed == [(0, WRITE6)]

    def test_transitioning_gives_up(self) -> None:
        """When the retries are used up the device's answer is returned."""
        unit = FakeUnit()
        unit.modes[0] = Mode.TRANSITIONING
        clock = FakeClock()
        dev = _device(unit, clock, transition_retries=3, transition_delay=1.0)
        r = dev.execute(TUR)
        assert r.check_condition
        assert clock.slept == [1.0, 1.0, 1.0]

    def test_offline_fails_path(self) -> None:
        """02/04/12 fails the path and the command goes elsewhere."""
        unit = FakeUnit()
        unit.modes[0] = Mode.OFFLINE
        dev = _device(unit)
        assert dev.execute(WRITE6, data_out=b"x").ok
        p0 = dev.group.find("mock://unit/port0")
        assert p0 is not None
        assert p0.state is PathState.FAILED


class TestNoPathPolicy:
    """Queue for N seconds waiting for a path, then NoPathError."""

    def test_queue_until_path_returns(self) -> None:
        """A path reinstated while the command waits carries it."""
        unit = FakeUnit()
        unit.modes[:] = [Mode.DOWN, Mode.DOWN]
        clock = FakeClock()
        dev = _device(unit, clock, no_path=10)

        def comes_back() -> None:
            if clock.now >= 1003:
                unit.modes[1] = Mode.UP
                p1 = dev.group.find("mock://unit/port1")
                assert p1 is not None
                dev.group.reinstate(p1, PathState.ACTIVE, "checker: up")

        clock.during_sleep = comes_back
        assert dev.execute(TUR).ok
        assert sum(clock.slept) == pytest.approx(3.0)

    def test_queue_then_error(self) -> None:
        """Nothing returns: NoPathError after the queueing time."""
        unit = FakeUnit()
        unit.modes[:] = [Mode.DOWN, Mode.DOWN]
        clock = FakeClock()
        dev = _device(unit, clock, no_path=5)
        with pytest.raises(NoPathError):
            dev.execute(TUR)
        assert sum(clock.slept) == pytest.approx(5.0)

    def test_bounded_by_command_timeout(self) -> None:
        """A command never queues longer than its own timeout."""
        unit = FakeUnit()
        unit.modes[:] = [Mode.DOWN, Mode.DOWN]
        clock = FakeClock()
        dev = _device(unit, clock, no_path="queue")
        with pytest.raises(NoPathError):
            dev.execute(TUR, timeout=2.5)
        assert sum(clock.slept) == pytest.approx(2.5)


class TestSpreadingDevice:
    """Load-spreading selectors spread commands over all active paths."""

    def test_round_robin_uses_both(self) -> None:
        """Round-robin alternates and skips a failed path."""
        unit = FakeUnit(ports=2)
        dev = _device(unit, selector="round-robin")
        for _ in range(4):
            dev.execute(INQUIRY, data_in_len=36)
        assert [p for p, _ in unit.executed] == [0, 1, 0, 1]
        unit.modes[0] = Mode.DOWN
        for _ in range(3):
            assert dev.execute(INQUIRY, data_in_len=36).ok
        assert [p for p, _ in unit.executed[4:]].count(1) == 3
        assert all(p.inflight == 0 for p in dev.paths)


class TestAdministration:
    """Offline/online, hot add, close."""

    def test_offline_online(self) -> None:
        """An offline path carries nothing; online hands it to the monitor as FAILED."""
        unit = FakeUnit()
        dev = _device(unit)
        dev.set_offline("mock://unit/port0")
        dev.execute(TUR)
        assert unit.executed == [(1, TUR)]
        dev.set_online("mock://unit/port0")
        p0 = dev.group.find("mock://unit/port0")
        assert p0 is not None
        assert p0.state is PathState.FAILED

    def test_state_change_leaves_fast_path(self) -> None:
        """A path taken offline after carrying commands carries no more."""
        unit = FakeUnit()
        dev = _device(unit)
        for _ in range(3):
            dev.execute(TUR)
        dev.set_offline("mock://unit/port0")
        dev.execute(TUR)
        assert [p for p, _ in unit.executed] == [0, 0, 0, 1]
        dev.set_online("mock://unit/port0")
        p0 = dev.group.find("mock://unit/port0")
        assert p0 is not None
        dev.group.reinstate(p0, PathState.ACTIVE, "checker: up")
        dev.execute(TUR)
        assert unit.executed[-1][0] == 1  # equal priority: no failback by itself
        assert dev.failback() is p0
        dev.execute(TUR)
        assert unit.executed[-1][0] == 0

    def test_hot_add(self) -> None:
        """A path added later joins the same device."""
        unit = FakeUnit(ports=3)
        dev = MultipathDevice(unit.transports[:2], monitor=False)
        dev.add_path(unit.transports[2])
        assert [p.url for p in dev.paths][-1] == "mock://unit/port2"

    def test_close_closes_paths(self) -> None:
        """close() closes every path's transport and later commands fail."""
        unit = FakeUnit()
        dev = _device(unit)
        dev.close()
        assert all(t._closed for t in unit.transports)


class TestPathDownAtOpen:
    """A path that cannot be opened when the device is made is kept, FAILED."""

    def test_lazy_path_comes_back(self) -> None:
        """The device opens with the other path; the monitor's checker opens the lost one."""
        unit = FakeUnit()
        attempts: list[str] = []

        class Flaky(Transport):
            scheme = "flaky-mp"

            @classmethod
            def from_url(cls, url: str) -> Transport:
                attempts.append(url)
                if len(attempts) < 3:
                    raise TransportError("portal unreachable")
                return unit.transports[0]

            def execute(self, cdb: bytes, **kw: Any) -> Response:  # pragma: no cover
                raise AssertionError

            def close(self) -> None:  # pragma: no cover
                pass

        register_scheme("flaky-mp", Flaky)
        clock = FakeClock()
        mon = PathMonitor(clock=clock)
        dev = MultipathDevice(
            ["flaky-mp://a", unit.transports[1]],
            monitor=mon,
            clock=clock,
            sleep=clock.sleep,
            polling_interval=1,
            checker="tur",
            handler=None,
        )
        lazy = dev.group.find("flaky-mp://a")
        assert lazy is not None
        assert lazy.state is PathState.FAILED
        assert dev.execute(TUR).ok
        assert unit.executed == [(1, TUR)]
        mon.run_once()
        clock.advance(1)
        mon.run_once()  # second attempt: still down
        assert lazy.state is PathState.FAILED
        clock.advance(1)
        mon.run_once()  # third attempt opens it
        assert lazy.state is PathState.ACTIVE
        assert len(attempts) == 3

    def test_bad_scheme_raises(self) -> None:
        """A URL no transport knows is an error at once, not a deferred path."""
        with pytest.raises(UnknownSchemeError):
            MultipathDevice(["nosuch://x"], monitor=False)


class TestHandlerChoice:
    """With no handler given, INQUIRY picks one."""

    def test_auto_alua(self) -> None:
        """A unit whose INQUIRY says TPGS gets the ALUA handler and its states."""
        unit = FakeAluaUnit(ports=2, active=1)
        dev = MultipathDevice(unit.transports, monitor=False)
        assert dev.handler.name == "alua"
        assert dev.device_type == 8
        assert dev.designator == "naa.5000e11100000001"
        assert dev.current_path is None
        assert dev.execute(TUR).ok
        assert unit.executed == [(1, TUR)]

    def test_auto_none_and_by_name(self) -> None:
        """No TPGS: no handler; a name picks that handler."""
        unit = FakeUnit()
        assert MultipathDevice(unit.transports, monitor=False).handler.name == "none"
        dev = MultipathDevice(unit.transports, monitor=False, handler="passive")
        assert dev.handler.name == "passive"
