"""Same-path retries of passing transport failures (FailureDetail.retryable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tapepath.errors import ConfigError
from tapepath.multipath import (
    CommandInDoubtError,
    Decision,
    FailedCommand,
    MultipathDevice,
    MultipathPolicy,
    PathState,
    Resend,
    ResendIfSafe,
)
from tapepath.multipath.checkers import CheckResult, TurChecker, apply_check
from tapepath.multipath.config import parse_config
from tapepath.multipath.policy import RetryPolicy
from tapepath.multipath.verdict import PathVerdict, path_verdict
from tapepath.testing.mock import MockTransport, Request
from tapepath.transport import Outcome, Response
from tapepath.transport.sg_outcome import classify_completion
from tests.multipath.fakes import FakeClock

INQUIRY = bytes((0x12, 0, 0, 0, 36, 0))
READ_POSITION = bytes((0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0))
WRITE6 = bytes((0x0A, 0, 0, 0, 1, 0))
TUR = bytes(6)

DID_BUS_BUSY = 0x02
DID_SOFT_ERROR = 0x0B
DID_REQUEUE = 0x0D


def sg_failure(host: int) -> Response:
    """What the sg transport returns for a completion with this host status."""
    return classify_completion(
        0, host, 0, sense=b"", data=b"", residual=0, transferred=0, duration=0.001
    )


def busy(maybe_executed: bool = False) -> Response:
    """A passing failure as a transport reports it."""
    return Response.failure(
        Outcome.ABORTED, "bus busy", maybe_executed=maybe_executed, retryable=True
    )


class Port:
    """One scripted port: the first answers come from ``script``, then GOOD."""

    def __init__(self, name: str, script: list[Response] | None = None) -> None:
        self.script = list(script or [])
        self.forever: Response | None = None
        self.during: Callable[[Request], None] | None = None
        self.transport = MockTransport(self._handle, url=f"mock://unit/{name}")

    def _handle(self, req: Request) -> Response:
        if self.during is not None:
            self.during(req)
        if self.script:
            return self.script.pop(0)
        if self.forever is not None:
            return self.forever
        return Response(data=bytes(range(36)), duration=0.001)

    @property
    def sent(self) -> int:
        """Commands this port received."""
        return len(self.transport.requests)


def device(ports: list[Port], clock: FakeClock | None = None, **kw: Any) -> MultipathDevice:
    """A failover device over the ports, with a fake clock and no monitor."""
    clock = clock or FakeClock()
    kw.setdefault("handler", None)
    return MultipathDevice(
        [p.transport for p in ports],
        name="unit",
        monitor=False,
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )


class RecordingHook:
    """A recovery hook with no ``safe`` set: it records each failure and resends."""

    def __init__(self) -> None:
        self.failures: list[FailedCommand] = []

    def on_path_failure(self, device: MultipathDevice, failed: FailedCommand) -> Decision:
        self.failures.append(failed)
        return Resend()


class TestSamePath:
    """A passing failure is retried on the path it met, which stays ACTIVE."""

    def test_busy_twice_then_good(self) -> None:
        """Busy twice, then GOOD: one path, no failover, three commands counted there."""
        a = Port("a", [sg_failure(DID_BUS_BUSY), sg_failure(DID_BUS_BUSY)])
        b = Port("b")
        clock = FakeClock()
        dev = device([a, b], clock)
        states: list[PathState] = []
        a.during = lambda req: states.append(dev.paths[0].state)
        with capture_logs() as logs:
            r = dev.execute(INQUIRY, data_in_len=36)
        assert r.ok
        assert (a.sent, b.sent) == (3, 0)
        assert states == [PathState.ACTIVE] * 3
        assert dev.paths[0].state is PathState.ACTIVE
        assert dev.paths[0].stats.commands == 3
        assert dev.paths[0].stats.errors == 2
        assert clock.slept == [0.01, 0.02]
        events = [e for e in logs if e["event"] == "command_retried_same_path"]
        assert [e["attempt"] for e in events] == [1, 2]
        assert all(e["path"] == "mock://unit/a" and e["opcode"] == "12" for e in events)
        assert all("DID_BUS_BUSY" in e["reason"] for e in events)
        assert all(e["device"] == "unit" for e in events)
        assert not [e for e in logs if e["event"] == "path_failure_decision"]

    def test_from_the_fast_path(self) -> None:
        """A busy answer met on the warmed-up fast path is retried the same way."""
        a, b = Port("a"), Port("b")
        dev = device([a, b])
        assert dev.execute(TUR).ok
        assert dev.execute(TUR).ok
        assert dev._fast is dev.paths[0]  # the fast path is on now
        a.script = [busy(), busy()]
        assert dev.execute(INQUIRY, data_in_len=36).ok
        assert (a.sent, b.sent) == (5, 0)
        assert dev.paths[0].stats.commands == 5
        assert dev._fast is None  # turned off while the gate was held
        assert dev.execute(TUR).ok
        assert dev._fast is dev.paths[0]  # and back on
        assert a.sent == 6

    def test_busy_forever_fails_over_after_the_budget(self) -> None:
        """Busy for ever: 1 + 3 tries on the first path, then it fails and the next answers."""
        a = Port("a")
        a.forever = sg_failure(DID_BUS_BUSY)
        b = Port("b")
        clock = FakeClock()
        dev = device([a, b], clock)
        r = dev.execute(INQUIRY, data_in_len=36)
        assert r.ok
        assert (a.sent, b.sent) == (4, 1)
        assert dev.paths[0].state is PathState.FAILED
        assert clock.slept == [0.01, 0.02, 0.04]

    def test_not_executed_write_is_retried(self) -> None:
        """A WRITE the transport says never started (DID_REQUEUE) goes again on the same path."""
        a = Port("a", [sg_failure(DID_REQUEUE)])
        b = Port("b")
        dev = device([a, b])
        r = dev.execute(WRITE6, data_out=b"x")
        assert r.ok
        assert (a.sent, b.sent) == (2, 0)

    def test_budget_is_per_path(self) -> None:
        """After failover, the next path gets its own retries."""
        a, b = Port("a"), Port("b", [busy(), busy()])
        a.forever = busy()
        dev = device([a, b])
        assert dev.execute(INQUIRY, data_in_len=36).ok
        assert (a.sent, b.sent) == (4, 3)
        assert dev.paths[1].state is PathState.ACTIVE

    def test_gate_held_during_retries(self) -> None:
        """While a command is retried, commands submitted meanwhile queue behind it."""
        a = Port("a", [busy()])
        dev = device([a, Port("b")])
        held: list[bool] = []
        a.during = lambda req: held.append(dev.gate.held)
        assert dev.execute(TUR).ok
        assert held == [False, True]
        assert not dev.gate.held
        assert dev.execute(TUR).ok  # and the fast path works again afterwards
        assert a.sent == 3


class TestNeverTwice:
    """A failure that may have run is retried on the same path only if safe to repeat."""

    def test_write_maybe_executed_goes_to_the_hook(self) -> None:
        """DID_SOFT_ERROR on a WRITE: no same-path retry; the default hook refuses."""
        a, b = Port("a", [sg_failure(DID_SOFT_ERROR)]), Port("b")
        dev = device([a, b])
        with capture_logs() as logs, pytest.raises(CommandInDoubtError):
            dev.execute(WRITE6, data_out=b"x")
        assert (a.sent, b.sent) == (1, 0)
        assert dev.paths[0].state is PathState.FAILED
        assert not [e for e in logs if e["event"] == "command_retried_same_path"]

    def test_write_maybe_executed_custom_hook_decides(self) -> None:
        """With a hook of its own, the hook gets the WRITE once and its decision stands."""
        a, b = Port("a", [busy(maybe_executed=True)]), Port("b")
        hook = RecordingHook()
        dev = device([a, b], recovery=hook)
        assert dev.execute(WRITE6, data_out=b"x").ok
        assert [f.opcode for f in hook.failures] == [0x0A]
        assert (a.sent, b.sent) == (1, 1)

    @pytest.mark.parametrize(
        ("cdb", "n"), [(READ_POSITION, 20), (INQUIRY, 36), (TUR, 0)], ids=["rpos", "inq", "tur"]
    )
    def test_safe_commands_are_retried(self, cdb: bytes, n: int) -> None:
        """READ POSITION, INQUIRY, TEST UNIT READY that may have run: same path again."""
        a, b = Port("a", [sg_failure(DID_SOFT_ERROR)]), Port("b")
        dev = device([a, b])
        assert dev.execute(cdb, data_in_len=n).ok
        assert (a.sent, b.sent) == (2, 0)
        assert dev.paths[0].state is PathState.ACTIVE

    def test_hook_safe_set_is_the_decision(self) -> None:
        """The hook's own safe set decides: with WRITE in it, a WRITE is retried."""
        a, b = Port("a", [busy(maybe_executed=True)]), Port("b")
        dev = device([a, b], recovery=ResendIfSafe(safe=frozenset({0x0A})))
        assert dev.execute(WRITE6, data_out=b"x").ok
        assert (a.sent, b.sent) == (2, 0)

    def test_hook_without_safe_set(self) -> None:
        """A hook that names no safe opcodes: even READ POSITION goes to the hook."""
        a, b = Port("a", [busy(maybe_executed=True)]), Port("b")
        hook = RecordingHook()
        dev = device([a, b], recovery=hook)
        assert dev.execute(READ_POSITION, data_in_len=20).ok
        assert len(hook.failures) == 1
        assert (a.sent, b.sent) == (1, 1)


class TestLimits:
    """Settings and deadlines bound the retries."""

    def test_zero_retries(self) -> None:
        """same_path_retries=0: the first passing failure is a path failure."""
        a, b = Port("a", [busy()]), Port("b")
        dev = device([a, b], same_path_retries=0)
        assert dev.execute(INQUIRY, data_in_len=36).ok
        assert (a.sent, b.sent) == (1, 1)

    def test_delay_setting(self) -> None:
        """same_path_delay sets the first delay; the next ones double."""
        a = Port("a", [busy(), busy(), busy()])
        clock = FakeClock()
        dev = device([a, Port("b")], clock, same_path_delay=0.05)
        assert dev.execute(TUR).ok
        assert clock.slept == [0.05, 0.1, 0.2]

    def test_caller_deadline(self) -> None:
        """A retry that would end past the caller's timeout is not made."""
        a, b = Port("a", [busy()]), Port("b")
        clock = FakeClock()
        dev = device([a, b], clock)
        assert dev.execute(TUR, timeout=0.005).ok
        assert (a.sent, b.sent) == (1, 1)
        assert clock.slept == []

    @settings(max_examples=40, deadline=None)
    @given(st.integers(0, 6), st.integers(0, 5))
    def test_any_budget(self, busy_answers: int, budget: int) -> None:
        """k busy answers and a budget of n: min(k, n) + 1 tries there; failover iff k > n."""
        a, b = Port("a", [busy() for _ in range(busy_answers)]), Port("b")
        dev = device([a, b], same_path_retries=budget)
        assert dev.execute(TUR).ok
        assert a.sent == min(busy_answers, budget) + 1
        assert b.sent == (1 if busy_answers > budget else 0)
        failed = busy_answers > budget
        assert (dev.paths[0].state is PathState.FAILED) is failed


class TestVerdictAndChecker:
    """The verdict says RETRY; a checker that meets a passing failure changes nothing."""

    def test_verdict(self) -> None:
        """Retryable failures are RETRY; other path failures stay PATH_FAILURE."""
        assert path_verdict(busy()) is PathVerdict.RETRY
        assert path_verdict(sg_failure(DID_BUS_BUSY)) is PathVerdict.RETRY
        assert path_verdict(Response.failure(Outcome.ABORTED, "x")) is PathVerdict.PATH_FAILURE

    @pytest.mark.parametrize("state", [PathState.ACTIVE, PathState.FAILED])
    def test_checker_busy_leaves_state(self, state: PathState) -> None:
        """A busy TEST UNIT READY is BUSY: neither fails nor reinstates the path."""
        a = Port("a")
        a.forever = busy()
        dev = device([a, Port("b")])
        p = dev.paths[0]
        if state is PathState.FAILED:
            dev.group.path_failed(p, "test")
        found = TurChecker().check(dev, p, 1.0)
        assert found.result is CheckResult.BUSY
        apply_check(dev, p, found)
        assert p.state is state

    def test_checker_real_failure_still_down(self) -> None:
        """A non-retryable failure of the check is still DOWN."""
        a = Port("a")
        a.forever = Response.failure(Outcome.LINK_LOST, "reset")
        dev = device([a, Port("b")])
        assert TurChecker().check(dev, dev.paths[0], 1.0).result is CheckResult.DOWN


class TestPolicy:
    """The retry_same_path policy value and its settings."""

    def test_default(self) -> None:
        """3 retries after 10, 20 and 40 ms."""
        p = MultipathPolicy().retry_same_path
        delays = []
        while not p.exhausted:
            delays.append(p.delay())
            p = p.increment()
        assert delays == [0.01, 0.02, 0.04]

    def test_transition_unchanged(self) -> None:
        """The transition policy keeps its constant 2 s delay."""
        p = MultipathPolicy().transition
        assert [p.delay(), p.increment().delay(), p.increment().increment().delay()] == [2.0] * 3

    def test_cap(self) -> None:
        """Doubling stops at max_delay, and huge histories do not overflow."""
        p = RetryPolicy(total=5, backoff=0.5, factor=2.0, max_delay=1.5, history=3)
        assert p.delay() == 1.5
        assert RetryPolicy(backoff=1.0, factor=1e6, max_delay=7.0, history=10**4).delay() == 7.0

    def test_settings(self) -> None:
        """same_path_retries / same_path_delay set the policy."""
        p = MultipathPolicy.from_settings({"same_path_retries": 5, "same_path_delay": 0.002})
        assert (p.retry_same_path.total, p.retry_same_path.backoff) == (5, 0.002)

    @pytest.mark.parametrize(
        ("key", "value"),
        [("same_path_retries", -1), ("same_path_retries", 1.5), ("same_path_delay", -0.1)],
    )
    def test_bad_settings(self, key: str, value: object) -> None:
        """Bad values are ConfigErrors naming the key."""
        with pytest.raises(ConfigError, match=key):
            MultipathPolicy.from_settings({key: value})

    def test_bad_factor(self) -> None:
        """A shrinking factor is refused."""
        with pytest.raises(ConfigError, match="factor"):
            RetryPolicy(factor=0.5)

    def test_toml(self) -> None:
        """The keys work in the configuration file's defaults and per device."""
        cfg = parse_config(
            "[defaults]\nsame_path_retries = 1\n\n"
            '[devices.robot]\npaths = ["mock://a"]\nsame_path_delay = 0.5\n'
        )
        assert cfg.defaults.retry_same_path.total == 1
        robot = cfg.device("robot").policy.retry_same_path
        assert (robot.total, robot.backoff) == (1, 0.5)
