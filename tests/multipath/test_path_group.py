"""Tests of Path, its statistics and PathGroup, the only place states change."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from tapepath.multipath import MarginalPolicy, Path, PathGroup, PathIdentity, PathState
from tapepath.testing.mock import MockTransport
from tapepath.transport import Outcome, Response
from tests.multipath.fakes import FakeClock


def _path(url: str, prio: int = 0) -> Path:
    return Path(MockTransport(lambda r: Response(), url=url), PathIdentity(priority=prio))


class TestPathStats:
    """A path counts commands, errors, bytes and latency."""

    def test_counts_in_and_out(self) -> None:
        """Data-in and data-out count the bytes the transport says it transferred."""
        p = _path("mock://a")
        p.account(Response(data=b"x" * 10, transferred=10, duration=0.5), 0)
        p.account(Response(residual=4, transferred=96, duration=1.5), 100)
        s = p.stats
        assert (s.commands, s.errors, s.bytes_in, s.bytes_out) == (2, 0, 10, 96)
        assert s.latency_avg == pytest.approx(1.0)
        assert s.last_error is None

    def test_failure_is_an_error_not_latency(self) -> None:
        """A path failure counts as an error, records its message and no latency."""
        p = _path("mock://a")
        p.account(Response.failure(Outcome.LINK_LOST, "reset by peer", duration=9.0), 0)
        s = p.stats
        assert (s.commands, s.errors, s.latency_avg) == (1, 1, 0.0)
        assert s.last_error is not None
        assert "reset by peer" in s.last_error
        assert "link_lost" in s.last_error

    def test_state_has_no_setter(self) -> None:
        """The state cannot be assigned from outside the group."""
        p = _path("mock://a")
        with pytest.raises(AttributeError):
            p.state = PathState.FAILED  # type: ignore[misc]

    def test_identity_rejects_negative_port(self) -> None:
        """Identity values are validated."""
        with pytest.raises(ValueError, match="relative_port"):
            PathIdentity(relative_port=-1)


class TestPathGroup:
    """State changes go through the group and are logged once each."""

    def test_change_logs_one_event(self) -> None:
        """set_state logs path_state_changed with device, path, old, new and reason."""
        clock = FakeClock()
        g = PathGroup("lib0", [_path("mock://a")], clock=clock)
        (p,) = g.paths
        with capture_logs() as logs:
            assert g.set_state(p, PathState.FAILED, "link lost")
            assert not g.set_state(p, PathState.FAILED, "again")
        events = [e for e in logs if e["event"] == "path_state_changed"]
        assert events == [
            {
                "event": "path_state_changed",
                "log_level": "info",
                "device": "lib0",
                "path": "mock://a",
                "old": "active",
                "new": "failed",
                "reason": "link lost",
            }
        ]
        assert p.stats.last_change == clock.now

    def test_active_ordered_by_priority(self) -> None:
        """Active paths come best priority first, ties in insertion order."""
        a, b, c = _path("mock://a", 1), _path("mock://b", 5), _path("mock://c", 5)
        g = PathGroup("d", [a, b, c])
        assert g.active == (b, c, a)
        g.set_state(b, PathState.PASSIVE, "standby")
        assert g.active == (c, a)
        assert g.in_state(PathState.PASSIVE) == [b]

    def test_duplicate_url_rejected(self) -> None:
        """The same URL cannot join twice."""
        g = PathGroup("d", [_path("mock://a")])
        with pytest.raises(ValueError, match="already"):
            g.add(_path("mock://a"))

    def test_listener_sees_change(self) -> None:
        """Listeners get (path, old, new, reason)."""
        g = PathGroup("d", [_path("mock://a")])
        seen: list[tuple[str, PathState, PathState, str]] = []
        g.add_listener(lambda p, o, n, r: seen.append((p.url, o, n, r)))
        (p,) = g.paths
        g.set_state(p, PathState.OFFLINE, "admin")
        assert seen == [("mock://a", PathState.ACTIVE, PathState.OFFLINE, "admin")]


class TestMarginal:
    """A path failing K times in T seconds is held out."""

    def test_held_out_after_k_failures(self) -> None:
        """The third failure within the window holds the path out for hold_out seconds."""
        clock = FakeClock()
        g = PathGroup(
            "d",
            [_path("mock://a")],
            marginal=MarginalPolicy(failures=3, window=60, hold_out=300),
            clock=clock,
        )
        (p,) = g.paths
        for i in range(3):
            clock.advance(10)
            marginal = g.path_failed(p, f"fail {i}")
            if i < 2:
                assert not marginal
                assert g.reinstate(p, PathState.ACTIVE, "checker up")
        assert marginal
        assert p.state is PathState.FAILED
        assert not g.reinstate(p, PathState.ACTIVE, "checker up")
        clock.advance(299)
        assert not g.may_reinstate(p)
        clock.advance(1)
        assert g.reinstate(p, PathState.ACTIVE, "checker up")

    def test_failures_outside_window_forgotten(self) -> None:
        """Failures spread wider than the window never make a path marginal."""
        clock = FakeClock()
        g = PathGroup("d", [_path("mock://a")], marginal=MarginalPolicy(2, 10, 100), clock=clock)
        (p,) = g.paths
        for _ in range(5):
            assert not g.path_failed(p, "x")
            g.reinstate(p, PathState.ACTIVE, "up")
            clock.advance(11)

    def test_offline_path_stays_offline(self) -> None:
        """A failure does not move an administratively offline path."""
        g = PathGroup("d", [_path("mock://a")])
        (p,) = g.paths
        g.set_state(p, PathState.OFFLINE, "admin")
        g.path_failed(p, "x")
        assert p.state is PathState.OFFLINE
        assert not g.reinstate(p, PathState.ACTIVE, "up")
