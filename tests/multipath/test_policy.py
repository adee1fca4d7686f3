"""Tests of the policy values: parsing, validation, and the rules they answer."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import ConfigError
from tapepath.multipath import (
    CheckerPolicy,
    FailbackMode,
    FailbackPolicy,
    MarginalPolicy,
    MultipathPolicy,
    NoPathPolicy,
    RetryPolicy,
)


class TestFailback:
    """Failback accepts mode names or seconds, like multipath.conf."""

    @pytest.mark.parametrize("name", ["immediate", "manual", "followover", "MANUAL"])
    def test_names(self, name: str) -> None:
        """Mode names parse, case-insensitively."""
        assert FailbackPolicy.parse(name).mode is FailbackMode(name.lower())

    def test_seconds_mean_deferred(self) -> None:
        """A number is a deferred failback after that many seconds."""
        p = FailbackPolicy.parse(30)
        assert p == FailbackPolicy(FailbackMode.DEFERRED, 30.0)
        assert not p.should_fail_back(healthy_for=29.9, reported_by_device=False)
        assert p.should_fail_back(healthy_for=30, reported_by_device=False)

    @pytest.mark.parametrize("bad", ["sometimes", -1, True, None])
    def test_bad(self, bad: object) -> None:
        """Anything else is a ConfigError naming failback."""
        with pytest.raises(ConfigError, match="failback"):
            FailbackPolicy.parse(bad)

    def test_rules(self) -> None:
        """immediate always, manual never, followover only when the device did it."""
        imm, man, fol = (
            FailbackPolicy(m)
            for m in (FailbackMode.IMMEDIATE, FailbackMode.MANUAL, FailbackMode.FOLLOWOVER)
        )
        assert imm.should_fail_back(healthy_for=0, reported_by_device=False)
        assert not man.should_fail_back(healthy_for=1e9, reported_by_device=True)
        assert fol.should_fail_back(healthy_for=0, reported_by_device=True)
        assert not fol.should_fail_back(healthy_for=1e9, reported_by_device=False)


class TestNoPath:
    """The no-path policy: fail, queue, or seconds."""

    def test_forms(self) -> None:
        """'fail' is 0 s, 'queue' is for ever, a number is seconds."""
        assert NoPathPolicy.parse("fail").queue_for == 0
        assert NoPathPolicy.parse("queue").queue_for == math.inf
        assert NoPathPolicy.parse(12).deadline(100.0) == 112.0

    @pytest.mark.parametrize("bad", ["later", -3, [1]])
    def test_bad(self, bad: object) -> None:
        """Bad values name the setting."""
        with pytest.raises(ConfigError, match="no_path"):
            NoPathPolicy.parse(bad)


class TestRetry:
    """RetryPolicy evolves and never sleeps."""

    def test_increment_until_exhausted(self) -> None:
        """Each increment uses one attempt and records history."""
        r = RetryPolicy(total=2, backoff=0.5)
        assert not r.exhausted
        assert r.delay() == 0.5
        r2 = r.increment().increment()
        assert r2.exhausted
        assert r2.history == 2
        assert r.total == 2  # the original is untouched

    @given(st.integers(min_value=0, max_value=50), st.integers(min_value=0, max_value=60))
    def test_attempt_count(self, total: int, steps: int) -> None:
        """After n increments exactly min(n, total) attempts are used."""
        r = RetryPolicy(total=total)
        for _ in range(steps):
            r = r.increment()
        assert r.total == max(total - steps, 0)
        assert r.exhausted == (steps >= total)


class TestMarginalRule:
    """The K-in-T rule."""

    @given(st.lists(st.floats(min_value=0, max_value=200), max_size=20))
    def test_matches_count_in_window(self, times: list[float]) -> None:
        """Marginal exactly when at least K failures fall in (now - T, now]."""
        rule = MarginalPolicy(failures=3, window=50, hold_out=10)
        now = 200.0
        inside = [t for t in times if t > now - 50]
        assert rule.is_marginal(times, now) == (len(inside) >= 3)

    def test_disabled(self) -> None:
        """failures=0 disables the rule."""
        assert not MarginalPolicy(failures=0).is_marginal([1.0] * 10, 1.0)


class TestMultipathPolicy:
    """Flat settings build a policy; errors name the key."""

    def test_settings(self) -> None:
        """Every flat key lands in its part."""
        p = MultipathPolicy.from_settings(
            {
                "selector": "round-robin",
                "failback": "manual",
                "no_path": 30,
                "polling_interval": 2,
                "checker": "inquiry",
                "checker_timeout": 3,
                "marginal_failures": 5,
                "marginal_window": 20,
                "marginal_hold": 40,
                "transition_retries": 4,
                "transition_delay": 0.5,
                "priorities": {"iscsi://10.0.0.1": 90},
            }
        )
        assert p.selector == "round-robin"
        assert p.failback.mode is FailbackMode.MANUAL
        assert p.no_path.queue_for == 30
        assert p.checker == CheckerPolicy("inquiry", 2, 3)
        assert p.marginal == MarginalPolicy(5, 20, 40)
        assert p.transition == RetryPolicy(4, 0.5)
        assert p.priority_for("iscsi://10.0.0.1:3260/iqn.x/0") == 90
        assert p.priority_for("iscsi://10.0.0.2:3260/iqn.x/0") == 10
        assert p.priority_for("sg:///dev/sg1") == 20
        assert p.priority_for("weird://x") == 0

    def test_unknown_key(self) -> None:
        """An unknown key is named."""
        with pytest.raises(ConfigError, match="polling_intervall"):
            MultipathPolicy.from_settings({"polling_intervall": 1})

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("selector", "random"),
            ("polling_interval", 0),
            ("checker", "ping"),
            ("checker_timeout", "5"),
            ("marginal_failures", 1.5),
            ("priorities", {"sg": "high"}),
        ],
    )
    def test_bad_values(self, key: str, value: object) -> None:
        """A bad value raises ConfigError starting with the key."""
        with pytest.raises(ConfigError, match=f"^{key}"):
            MultipathPolicy.from_settings({key: value})

    def test_updated_keeps_the_rest(self) -> None:
        """updated() changes only what it is given."""
        base = MultipathPolicy(selector="service-time")
        p = base.updated(no_path="queue")
        assert p.selector == "service-time"
        assert p.no_path.queue_for == math.inf
        assert attrs.evolve(p, no_path=base.no_path) == base
