"""Multipath policies as frozen values (urllib3's ``Retry`` is the model).

A policy never sleeps and never does I/O: it answers questions ("is this path
marginal?", "how long do I wait before the next try?") and returns new values with
:func:`attrs.evolve`. The device and the monitor own the clocks and the sleeping.

The same settings are accepted as keyword arguments (:meth:`MultipathPolicy.from_settings`)
and from the TOML configuration file (:mod:`tapepath.multipath.config`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from attrs import field, frozen

from tapepath.errors import ConfigError

__all__ = [
    "DEFAULT_PRIORITIES",
    "SAME_PATH_RETRY",
    "SELECTORS",
    "CheckerPolicy",
    "FailbackMode",
    "FailbackPolicy",
    "MarginalPolicy",
    "MultipathPolicy",
    "NoPathPolicy",
    "RetryPolicy",
]

SELECTORS = ("failover", "round-robin", "queue-length", "service-time")
"""The path selector names."""

CHECKERS = ("auto", "tur", "inquiry", "rtpg", "iscsi-nop", "none")
"""The path checker names."""

DEFAULT_PRIORITIES: tuple[tuple[str, int], ...] = (
    ("sg", 20),
    ("spti", 20),
    ("sim", 20),
    ("iscsi", 10),
)
"""URL prefix -> priority: direct (HBA) paths above remote (iSCSI) ones by default."""


def _positive(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and value > 0 and not math.isnan(value)):
        raise ConfigError(f"{attr.name} must be a number > 0, got {value!r}")


def _nonneg(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and value >= 0 and not math.isnan(value)):
        raise ConfigError(f"{attr.name} must be a number >= 0, got {value!r}")


def _nonneg_int(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise ConfigError(f"{attr.name} must be an integer >= 0, got {value!r}")


class FailbackMode(enum.Enum):
    """When traffic goes back to a better path that has returned."""

    IMMEDIATE = "immediate"
    """As soon as the better path is reinstated."""
    MANUAL = "manual"
    """Only when the application calls :meth:`MultipathDevice.failback`."""
    FOLLOWOVER = "followover"
    """Only when the device itself reports the better path active again (another host
    or the library moved it back); tapepath never switches port groups back itself."""
    DEFERRED = "deferred"
    """After the better path has stayed healthy for ``delay`` seconds."""


@frozen
class FailbackPolicy:
    """The failback rule.

    Attributes:
        mode: see :class:`FailbackMode`.
        delay: seconds of health before a DEFERRED failback.
    """

    mode: FailbackMode = FailbackMode.IMMEDIATE
    delay: float = field(default=0.0, validator=_nonneg)

    @classmethod
    def parse(cls, value: object) -> FailbackPolicy:
        """Read a multipath.conf-style value: a mode name or a number of seconds.

        Raises:
            ConfigError: the value is neither.
        """
        if isinstance(value, FailbackPolicy):
            return value
        if isinstance(value, FailbackMode):
            return cls(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return cls(FailbackMode.DEFERRED, float(value))
        if isinstance(value, str):
            try:
                return cls(FailbackMode(value.lower()))
            except ValueError:
                pass
        names = ", ".join(m.value for m in FailbackMode if m is not FailbackMode.DEFERRED)
        raise ConfigError(f"failback must be one of {names} or a number of seconds, got {value!r}")

    def should_fail_back(self, *, healthy_for: float, reported_by_device: bool) -> bool:
        """Whether to move traffic back to a better path now.

        Args:
            healthy_for: seconds since the better path was reinstated.
            reported_by_device: True when the device itself made the path active again
                (not an activation tapepath asked for).
        """
        if self.mode is FailbackMode.IMMEDIATE:
            return True
        if self.mode is FailbackMode.DEFERRED:
            return healthy_for >= self.delay
        if self.mode is FailbackMode.FOLLOWOVER:
            return reported_by_device
        return False


@frozen
class NoPathPolicy:
    """What a command does when no path is usable.

    Attributes:
        queue_for: seconds to wait for a path to return before raising
            :class:`~tapepath.errors.NoPathError`; 0 fails at once, ``math.inf`` waits
            for ever (multipath.conf's ``queue_if_no_path``), bounded by nothing but
            the caller.
    """

    queue_for: float = field(default=0.0, validator=_nonneg)

    @classmethod
    def parse(cls, value: object) -> NoPathPolicy:
        """Read ``"fail"``, ``"queue"`` or a number of seconds."""
        if isinstance(value, NoPathPolicy):
            return value
        if value == "fail":
            return cls(0.0)
        if value == "queue":
            return cls(math.inf)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return cls(float(value))
        raise ConfigError(f"no_path must be 'fail', 'queue' or seconds >= 0, got {value!r}")

    def deadline(self, now: float) -> float:
        """The clock time at which a waiting command gives up."""
        return now + self.queue_for


@frozen
class MarginalPolicy:
    """The marginal-path rule: a path failing ``failures`` times in ``window`` seconds
    is held out for ``hold_out`` seconds even if its checker says it is fine.

    Attributes:
        failures: failures that make a path marginal (0 disables the rule).
        window: the window in seconds.
        hold_out: how long a marginal path stays out, in seconds.
    """

    failures: int = field(default=3, validator=_nonneg_int)
    window: float = field(default=60.0, validator=_positive)
    hold_out: float = field(default=300.0, validator=_nonneg)

    def prune(self, failure_times: Sequence[float], now: float) -> list[float]:
        """The failure times still inside the window."""
        start = now - self.window
        return [t for t in failure_times if t > start]

    def is_marginal(self, failure_times: Sequence[float], now: float) -> bool:
        """True when the recent failures make the path marginal."""
        if self.failures == 0:
            return False
        return len(self.prune(failure_times, now)) >= self.failures


def _factor(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and value >= 1 and not math.isnan(value)):
        raise ConfigError(f"{attr.name} must be a number >= 1, got {value!r}")


@frozen
class RetryPolicy:
    """Retries of a command that is to be repeated later on the same path: the device
    said its port group is transitioning (04/0A), or the transport reported a passing
    failure (``FailureDetail.retryable``: a busy bus, a requeue).

    ``increment()`` returns the policy for the next attempt; ``exhausted`` says when to
    stop; ``delay()`` says how long to wait. Nothing here sleeps. The defaults follow
    Linux scsi_dh_alua (2 s between retries, up to 60 s).

    Attributes:
        total: attempts left.
        backoff: seconds before the first retry.
        history: attempts made so far.
        factor: each delay is the previous one times this (1: a constant delay).
        max_delay: no delay is longer than this, in seconds.
    """

    total: int = field(default=30, validator=_nonneg_int)
    backoff: float = field(default=2.0, validator=_nonneg)
    history: int = field(default=0, validator=_nonneg_int)
    factor: float = field(default=1.0, validator=_factor)
    max_delay: float = field(default=math.inf, validator=_nonneg)

    @property
    def exhausted(self) -> bool:
        """True when no attempt is left."""
        return self.total <= 0

    def increment(self) -> RetryPolicy:
        """The policy after one more attempt."""
        return attrs.evolve(self, total=max(self.total - 1, 0), history=self.history + 1)

    def delay(self) -> float:
        """Seconds to wait before the next attempt: ``backoff * factor**history``, at
        most ``max_delay``."""
        if self.factor == 1 or self.history == 0:
            return min(self.backoff, self.max_delay)
        try:
            grown = self.backoff * self.factor**self.history
        except OverflowError:
            return self.max_delay
        return min(grown, self.max_delay)


SAME_PATH_RETRY = RetryPolicy(total=3, backoff=0.01, factor=2.0, max_delay=1.0)
"""The default same-path retries of a passing transport failure: 3, after 10, 20 and
40 ms (a busy bus or a requeue clears in milliseconds; Linux retries such commands on
the same path before it reports them)."""


@frozen
class CheckerPolicy:
    """How the monitor probes idle, passive and failed paths.

    Attributes:
        name: the checker (``auto``, ``tur``, ``inquiry``, ``rtpg``, ``iscsi-nop``,
            ``none``); ``auto`` is ``rtpg`` for ALUA devices, else ``tur``.
        interval: seconds between checks of one path (multipath.conf's polling_interval).
        timeout: the deadline of one check command, in seconds.
    """

    name: str = field(default="auto")
    interval: float = field(default=5.0, validator=_positive)
    timeout: float = field(default=10.0, validator=_positive)

    @name.validator
    def _check_name(self, _attr: attrs.Attribute[str], value: str) -> None:
        if value not in CHECKERS:
            raise ConfigError(f"checker must be one of {', '.join(CHECKERS)}, got {value!r}")


def _priorities(value: object) -> tuple[tuple[str, int], ...]:
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"priorities must map URL prefixes to integers, got {value!r}")
    out: list[tuple[str, int]] = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ConfigError(f"priorities: bad entry {item!r}")
        prefix, prio = item
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError(f"priorities: a key must be a URL prefix, got {prefix!r}")
        if not isinstance(prio, int) or isinstance(prio, bool):
            raise ConfigError(f"priorities.{prefix} must be an integer, got {prio!r}")
        out.append((prefix, prio))
    return tuple(out)


@frozen
class MultipathPolicy:
    """Every setting of a multipath device, with multipath.conf-like defaults.

    Attributes:
        selector: the path selector name (see :data:`SELECTORS`); ``failover`` is the
            default and the only sensible one for tape data streams and changers.
        failback: the failback rule.
        no_path: the no-path rule.
        marginal: the marginal-path rule.
        checker: the path checker and its polling interval and timeout.
        transition: retries while a port group is transitioning.
        retry_same_path: retries on the same path of a command whose transport
            reported a passing failure (``FailureDetail.retryable``); ``total=0``
            turns them off (every such failure is then a path failure).
        priorities: URL prefix (or bare scheme) -> priority; the longest matching
            prefix wins. Larger is preferred.
    """

    selector: str = field(default="failover")
    failback: FailbackPolicy = field(factory=FailbackPolicy)
    no_path: NoPathPolicy = field(factory=NoPathPolicy)
    marginal: MarginalPolicy = field(factory=MarginalPolicy)
    checker: CheckerPolicy = field(factory=CheckerPolicy)
    transition: RetryPolicy = field(factory=RetryPolicy)
    retry_same_path: RetryPolicy = field(default=SAME_PATH_RETRY)
    priorities: tuple[tuple[str, int], ...] = field(
        default=DEFAULT_PRIORITIES, converter=_priorities
    )

    @selector.validator
    def _check_selector(self, _attr: attrs.Attribute[str], value: str) -> None:
        if value not in SELECTORS:
            raise ConfigError(f"selector must be one of {', '.join(SELECTORS)}, got {value!r}")

    def priority_for(self, url: str) -> int:
        """The configured priority of a path URL (0 when nothing matches)."""
        best: tuple[int, int] | None = None
        for prefix, prio in self.priorities:
            key = prefix if "://" in prefix else prefix + "://"
            if url.startswith(key) and (best is None or len(key) > best[0]):
                best = (len(key), prio)
        return best[1] if best else 0

    def updated(self, **settings: Any) -> MultipathPolicy:
        """A copy with flat settings applied (see :meth:`from_settings`)."""
        return MultipathPolicy.from_settings(settings, base=self)

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, base: MultipathPolicy | None = None
    ) -> MultipathPolicy:
        """Build a policy from flat settings, the names the config file and the API share.

        Keys: ``selector``, ``failback`` (mode name or seconds), ``no_path`` (``"fail"``,
        ``"queue"`` or seconds), ``polling_interval``, ``checker``, ``checker_timeout``,
        ``marginal_failures``, ``marginal_window``, ``marginal_hold``,
        ``transition_retries``, ``transition_delay``, ``same_path_retries``,
        ``same_path_delay`` (the first delay; each next one doubles, at most 1 s),
        ``priorities`` (a mapping).

        Raises:
            ConfigError: an unknown key or a bad value; the message names the key.
        """
        p = base if base is not None else cls()
        unknown = sorted(set(settings) - set(_SETTING_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown setting(s): {', '.join(unknown)} (known: {', '.join(_SETTING_KEYS)})"
            )
        for key, value in settings.items():
            try:
                p = _apply(p, key, value)
            except ConfigError as exc:
                raise ConfigError(f"{key}: {exc}") from None
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{key}: {exc}") from None
        return p


def _apply(p: MultipathPolicy, key: str, value: Any) -> MultipathPolicy:
    ev = attrs.evolve
    if key == "selector":
        return ev(p, selector=value)
    if key == "failback":
        return ev(p, failback=FailbackPolicy.parse(value))
    if key == "no_path":
        return ev(p, no_path=NoPathPolicy.parse(value))
    if key == "polling_interval":
        return ev(p, checker=ev(p.checker, interval=value))
    if key == "checker":
        return ev(p, checker=ev(p.checker, name=value))
    if key == "checker_timeout":
        return ev(p, checker=ev(p.checker, timeout=value))
    if key == "marginal_failures":
        return ev(p, marginal=ev(p.marginal, failures=value))
    if key == "marginal_window":
        return ev(p, marginal=ev(p.marginal, window=value))
    if key == "marginal_hold":
        return ev(p, marginal=ev(p.marginal, hold_out=value))
    if key == "transition_retries":
        return ev(p, transition=ev(p.transition, total=value))
    if key == "transition_delay":
        return ev(p, transition=ev(p.transition, backoff=value))
    if key == "same_path_retries":
        return ev(p, retry_same_path=ev(p.retry_same_path, total=value))
    if key == "same_path_delay":
        return ev(p, retry_same_path=ev(p.retry_same_path, backoff=value))
    # priorities: merged over the current ones, the new entries winning
    merged = dict(p.priorities)
    merged.update(_priorities(value))
    return ev(p, priorities=tuple(merged.items()))


_SETTING_KEYS = (
    "checker",
    "checker_timeout",
    "failback",
    "marginal_failures",
    "marginal_hold",
    "marginal_window",
    "no_path",
    "polling_interval",
    "priorities",
    "same_path_delay",
    "same_path_retries",
    "selector",
    "transition_delay",
    "transition_retries",
)
