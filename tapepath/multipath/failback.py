"""Failback: when traffic goes back to a better path that returned.

:class:`FailbackMixin` is the part of :class:`~tapepath.multipath.device.MultipathDevice`
that watches state changes (it is the group's listener) and applies the failback policy:
immediate, manual (:meth:`FailbackMixin.failback`), followover, or deferred by a number
of seconds (driven by :meth:`FailbackMixin.tick`, which the monitor calls).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from tapepath.multipath.group import PathGroup
from tapepath.multipath.path import Path, PathState
from tapepath.multipath.policy import FailbackMode, MultipathPolicy
from tapepath.multipath.selectors import FailoverSelector, Selector

__all__ = ["FailbackMixin"]

log = structlog.get_logger("tapepath.multipath")

_ACTIVE = PathState.ACTIVE


class FailbackMixin:
    """Failback rules of a multipath device (mixed into MultipathDevice)."""

    name: str
    group: PathGroup
    policy: MultipathPolicy
    clock: Callable[[], float]
    _selector: Selector
    _failover: FailoverSelector | None
    _fast: Path | None
    _failback_since: dict[int, float]

    def failback(self) -> Path | None:
        """Move traffic to the best active path now (the manual failback).

        Returns:
            The path the next command will use, or None when none is active.
        """
        self._selector.reset()
        self._fast = None
        self._failback_since.clear()
        active = self.group.active
        if not active:
            return None
        return self._selector.select(active)

    def tick(self, now: float) -> None:
        """Apply time-based rules (deferred failback); the monitor calls this."""
        if not self._failback_since or self._failover is None:
            return
        delay = self.policy.failback.delay
        for idx, since in list(self._failback_since.items()):
            if now - since < delay:
                continue
            del self._failback_since[idx]
            cur = self._failover.current
            best = self.group.active[0] if self.group.active else None
            if best is not None and best.index == idx and cur is not None and cur is not best:
                self._do_failback(best, f"deferred failback after {delay:g} s")

    def _on_state_change(self, path: Path, old: PathState, new: PathState, reason: str) -> None:
        self._fast = None
        fo = self._failover
        if new is not _ACTIVE or fo is None:
            return
        cur = fo.current
        if cur is None or cur is path or cur.state is not _ACTIVE:
            return
        if path.priority <= cur.priority:
            return
        pol = self.policy.failback
        if pol.mode is FailbackMode.DEFERRED:
            self._failback_since[path.index] = self.clock()
            return
        if pol.should_fail_back(healthy_for=0.0, reported_by_device=old is PathState.PASSIVE):
            self._do_failback(path, f"{pol.mode.value} failback")

    def _do_failback(self, to: Path, reason: str) -> None:
        fo = self._failover
        if fo is None:
            return
        old = fo.current
        fo.current = to
        self._fast = None
        log.info(
            "path_failback",
            device=self.name,
            old=old.url if old is not None else None,
            new=to.url,
            reason=reason,
        )
