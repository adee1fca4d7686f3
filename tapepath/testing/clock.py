"""Clocks for the virtual library: the real one, and a virtual one tests can drive.

Everything in :mod:`tapepath.testing` that waits (robot moves, delays, black holes)
asks its library's clock, so a test with a :class:`VirtualClock` runs a 60-second
black hole in microseconds while keeping the same order of events.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "RealClock", "VirtualClock"]


class Clock(Protocol):
    """What the virtual library needs from a clock."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (real or virtual)."""
        ...


class RealClock:
    """The wall clock: :func:`time.monotonic` and :func:`time.sleep`."""

    def now(self) -> float:
        """Seconds from :func:`time.monotonic`."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """A clock that moves only when something sleeps on it or a test advances it.

    Thread-safe. ``sleep()`` returns at once after moving the clock forward, so
    waits cost nothing while their order and their effect on time triggers stay.

    Args:
        start: the initial reading.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the clock by ``seconds`` and return at once."""
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move the clock forward (negative values are an error)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        with self._lock:
            self._now += seconds
