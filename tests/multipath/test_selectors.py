"""Tests of the path selectors."""

from __future__ import annotations

from collections import Counter

import pytest

from tapepath.multipath import Path, PathGroup, PathIdentity, PathState
from tapepath.multipath.selectors import (
    FailoverSelector,
    QueueLengthSelector,
    RoundRobinSelector,
    ServiceTimeSelector,
    make_selector,
)
from tapepath.testing.mock import MockTransport
from tapepath.transport import Response


def _paths(*prios: int) -> list[Path]:
    return [
        Path(MockTransport(lambda r: Response(), url=f"mock://p{i}"), PathIdentity(priority=pr))
        for i, pr in enumerate(prios)
    ]


class TestFailover:
    """Failover stays on one path until it is no longer active."""

    def test_sticky_then_next(self) -> None:
        """The current path is kept while ACTIVE, then the best remaining one is taken."""
        ps = _paths(5, 5, 1)
        g = PathGroup("d", ps)
        sel = FailoverSelector()
        assert sel.select(g.active) is ps[0]
        g.set_state(ps[0], PathState.FAILED, "x")
        assert sel.select(g.active) is ps[1]
        g.reinstate(ps[0], PathState.ACTIVE, "back")
        assert sel.select(g.active) is ps[1]  # sticky: no failback by the selector itself
        sel.reset()
        assert sel.select(g.active) is ps[0]


class TestSpreading:
    """Load-spreading selectors use every path of the best priority level."""

    def test_round_robin_even(self) -> None:
        """Round-robin spreads evenly over the top priority level only."""
        ps = _paths(5, 5, 5, 1)
        sel = RoundRobinSelector()
        counts = Counter(sel.select(ps).url for _ in range(300))
        assert counts == {"mock://p0": 100, "mock://p1": 100, "mock://p2": 100}

    def test_queue_length_least_loaded(self) -> None:
        """Queue-length picks the path with the fewest commands in flight."""
        ps = _paths(0, 0, 0)
        ps[0]._inflight, ps[1]._inflight, ps[2]._inflight = 3, 1, 2
        assert QueueLengthSelector().select(ps) is ps[1]

    def test_service_time_weighs_speed(self) -> None:
        """Service-time prefers a fast busy path over a slow idle one when that is quicker."""
        fast, slow = _paths(0, 0)
        for _ in range(10):
            fast.account(Response(duration=0.001), 0)
            slow.account(Response(duration=0.1), 0)
        fast._inflight = 3  # 4 x 1 ms beats 1 x 100 ms
        assert ServiceTimeSelector().select([slow, fast]) is fast
        fast._inflight = 200
        assert ServiceTimeSelector().select([slow, fast]) is slow

    @pytest.mark.parametrize("name", ["failover", "round-robin", "queue-length", "service-time"])
    def test_by_name(self, name: str) -> None:
        """Every policy name builds its selector; spreads is False only for failover."""
        assert make_selector(name).spreads == (name != "failover")

    def test_unknown_name(self) -> None:
        """An unknown name is a ValueError."""
        with pytest.raises(ValueError, match="random"):
            make_selector("random")
