"""One path to a logical unit: its transport, identity, state and statistics.

A :class:`Path` is owned by exactly one :class:`~tapepath.multipath.group.PathGroup`;
its state is read here but changed only through the group, which logs every change.
Statistics are plain counters bumped on the command hot path (no lock: under heavy
concurrency a count may be off by a few); :attr:`Path.stats` returns a frozen snapshot.
"""

from __future__ import annotations

import enum
import time
from collections import deque

from attrs import field, frozen
from attrs.validators import instance_of, optional

from tapepath.transport.base import Response, Transport

__all__ = ["Path", "PathIdentity", "PathState", "PathStats"]


class PathState(enum.Enum):
    """Where a path stands.

    Only ACTIVE paths carry application commands.
    """

    ACTIVE = "active"
    """Usable: commands may be sent on it."""
    PASSIVE = "passive"
    """Alive but not serving commands (ALUA standby/unavailable, passive control path)."""
    FAILED = "failed"
    """The path broke; the monitor probes it and reinstates it when it answers."""
    PROBING = "probing"
    """A checker or an activation is running on it right now."""
    OFFLINE = "offline"
    """Taken out by the administrator (or the device says offline); never used nor probed."""


def _nonneg(_inst: object, attr: object, value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{getattr(attr, 'name', 'value')} must be >= 0, got {value}")


@frozen
class PathIdentity:
    """What a path says about the logical unit and the port it reaches it through.

    Attributes:
        designator: the logical-unit designator (VPD 83h, hex text such as
            ``"naa.5000e11100000001"``), or None when unknown.
        relative_port: the relative target port identifier, when known.
        port_group: the target port group (ALUA), when known.
        priority: larger is preferred (multipath-tools convention); direct paths
            rank above served ones.
    """

    designator: str | None = field(default=None, validator=optional(instance_of(str)))
    relative_port: int | None = field(default=None, validator=_nonneg)
    port_group: int | None = field(default=None, validator=_nonneg)
    priority: int = field(default=0, validator=instance_of(int))


@frozen
class PathStats:
    """A snapshot of one path's counters.

    Attributes:
        commands: commands sent on the path.
        errors: commands that met a path failure there.
        bytes_in: bytes read from the device.
        bytes_out: bytes written to the device.
        latency_avg: mean duration of the completed commands, in seconds.
        last_error: a short account of the last path failure, or None.
        last_change: the clock time of the last state change.
        inflight: commands outstanding now (only counted by load-spreading selectors).
    """

    commands: int
    errors: int
    bytes_in: int
    bytes_out: int
    latency_avg: float
    last_error: str | None
    last_change: float
    inflight: int


class Path:
    """One transport to one logical unit, with its state and counters.

    Args:
        transport: the open transport of this path.
        identity: what is known of the unit and the port.
        state: the initial state (ACTIVE unless known otherwise).
        clock: the time source for :attr:`PathStats.last_change`.

    Attributes:
        transport: the path's transport.
        url: the transport's URL.
        identity: the path's identity (replaced as it is learnt, through the group).
    """

    __slots__ = (
        "_busy_time",
        "_bytes_in",
        "_bytes_out",
        "_commands",
        "_errors",
        "_inflight",
        "_last_change",
        "_last_error",
        "_state",
        "failures",
        "held_until",
        "identity",
        "index",
        "send",
        "transport",
        "unit_attentions",
        "url",
    )

    def __init__(
        self,
        transport: Transport,
        identity: PathIdentity | None = None,
        *,
        state: PathState = PathState.ACTIVE,
        clock: float | None = None,
    ) -> None:
        self.transport = transport
        self.send = transport.execute
        """The transport's bound ``execute`` (looked up once, for the hot path)."""
        self.url: str = getattr(transport, "url", repr(transport))
        self.identity = identity if identity is not None else PathIdentity()
        self.index = 0
        self._state = state
        self._commands = 0
        self._errors = 0
        self._bytes_in = 0
        self._bytes_out = 0
        self._busy_time = 0.0
        self._inflight = 0
        self._last_error: str | None = None
        self._last_change = time.monotonic() if clock is None else clock
        self.failures: list[float] = []
        """Clock times of recent path failures (for the marginal-path rule)."""
        self.held_until = 0.0
        """Clock time before which a marginal path is not reinstated."""
        self.unit_attentions: deque[bytes] = deque(maxlen=32)
        """Sense data of unit attentions that internal commands (checkers, handlers)
        consumed on this path, oldest first, kept for recovery to read."""

    @property
    def state(self) -> PathState:
        """The current state (changed only by the path's group)."""
        return self._state

    @property
    def priority(self) -> int:
        """The path's priority (larger is preferred)."""
        return self.identity.priority

    @property
    def commands(self) -> int:
        """Commands sent on this path so far."""
        return self._commands

    @property
    def inflight(self) -> int:
        """Commands outstanding on this path (counted by load-spreading selectors)."""
        return self._inflight

    @property
    def stats(self) -> PathStats:
        """A frozen snapshot of the counters."""
        done = self._commands - self._errors
        return PathStats(
            commands=self._commands,
            errors=self._errors,
            bytes_in=self._bytes_in,
            bytes_out=self._bytes_out,
            latency_avg=self._busy_time / done if done > 0 else 0.0,
            last_error=self._last_error,
            last_change=self._last_change,
            inflight=self._inflight,
        )

    @property
    def service_time(self) -> float:
        """Mean seconds per completed command (0.0 before the first one)."""
        done = self._commands - self._errors
        return self._busy_time / done if done > 0 else 0.0

    def account(self, response: Response, data_out_len: int) -> None:
        """Count one command's result (called by the device on the hot path)."""
        self._commands += 1
        if response.path_failed:
            self._errors += 1
            detail = response.detail
            self._last_error = (
                f"{response.outcome.value}: {detail.message}" if detail else response.outcome.value
            )
            return
        self._busy_time += response.duration
        if data_out_len:
            self._bytes_out += response.transferred
        else:
            self._bytes_in += response.transferred

    def take_unit_attentions(self) -> list[bytes]:
        """Return and forget the unit attentions internal commands consumed here."""
        found = list(self.unit_attentions)
        self.unit_attentions.clear()
        return found

    def _set_state(self, state: PathState, now: float) -> PathState:
        """Change the state; only :class:`PathGroup` calls this. Returns the old state."""
        old = self._state
        self._state = state
        self._last_change = now
        return old

    def __repr__(self) -> str:
        return f"<Path {self.url} {self._state.value} prio={self.identity.priority}>"
