"""Path selectors: which ACTIVE path carries the next command.

- :class:`FailoverSelector` (the default, and the only one for tape data streams and
  changers): one path at a time, the best by priority; it stays on that path until the
  path fails or a failback moves it.
- :class:`RoundRobinSelector`, :class:`QueueLengthSelector`,
  :class:`ServiceTimeSelector`: spread commands over every active path, for devices
  where order does not matter (disk LUNs, read-only inquiries), as the RDP driver did.

Each device has its own selector instance. ``select`` gets the ACTIVE paths, best
priority first, never empty.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import ClassVar, Protocol

from tapepath.multipath.path import Path, PathState

__all__ = [
    "FailoverSelector",
    "QueueLengthSelector",
    "RoundRobinSelector",
    "Selector",
    "ServiceTimeSelector",
    "make_selector",
]


class Selector(Protocol):
    """Chooses a path among the active ones.

    Attributes:
        spreads: True when the selector spreads load and needs in-flight counts.
    """

    spreads: ClassVar[bool]

    def select(self, active: Sequence[Path]) -> Path:
        """Pick one of ``active`` (never empty; best priority first)."""
        ...

    def reset(self) -> None:
        """Forget any sticky choice (called on failback)."""
        ...


class FailoverSelector:
    """One path at a time: the current one while it is ACTIVE, else the best."""

    spreads: ClassVar[bool] = False

    def __init__(self) -> None:
        self.current: Path | None = None

    def select(self, active: Sequence[Path]) -> Path:
        """The current path if still active, else the best-priority active path."""
        cur = self.current
        if cur is not None and cur.state is PathState.ACTIVE:
            return cur
        self.current = active[0]
        return active[0]

    def reset(self) -> None:
        """Go to the best path at the next command."""
        self.current = None


class RoundRobinSelector:
    """Each active path in turn, among the best priority level."""

    spreads: ClassVar[bool] = True

    def __init__(self) -> None:
        self._counter = itertools.count()

    def select(self, active: Sequence[Path]) -> Path:
        """The next path of the best priority level."""
        top = _top_level(active)
        return top[next(self._counter) % len(top)]

    def reset(self) -> None:
        """Nothing sticky to forget."""


class QueueLengthSelector:
    """The active path with the fewest commands outstanding (best priority level)."""

    spreads: ClassVar[bool] = True

    def select(self, active: Sequence[Path]) -> Path:
        """The least-loaded path."""
        return min(_top_level(active), key=lambda p: p.inflight)

    def reset(self) -> None:
        """Nothing sticky to forget."""


class ServiceTimeSelector:
    """The active path with the least expected wait: (in-flight + 1) x mean service time."""

    spreads: ClassVar[bool] = True

    def select(self, active: Sequence[Path]) -> Path:
        """The path expected to finish a new command first."""
        return min(_top_level(active), key=lambda p: (p.inflight + 1) * p.service_time)

    def reset(self) -> None:
        """Nothing sticky to forget."""


def _top_level(active: Sequence[Path]) -> Sequence[Path]:
    best = active[0].priority
    if active[-1].priority == best:
        return active
    return [p for p in active if p.priority == best]


def make_selector(name: str) -> Selector:
    """A new selector by its policy name (``failover``, ``round-robin``, ...).

    Raises:
        ValueError: an unknown name.
    """
    if name == "failover":
        return FailoverSelector()
    if name == "round-robin":
        return RoundRobinSelector()
    if name == "queue-length":
        return QueueLengthSelector()
    if name == "service-time":
        return ServiceTimeSelector()
    raise ValueError(f"unknown path selector {name!r}")
