"""The path group: every path to one logical unit, and the only place states change.

Each change of a path's state goes through :meth:`PathGroup.set_state`, which logs one
``path_state_changed`` event (device, path URL, old and new state, reason), refreshes
the list of usable paths and wakes up commands waiting for a path. The marginal-path
rule (K failures in T seconds hold a path out) lives here too, since it decides
whether a path may return.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import structlog

from tapepath.multipath.path import Path, PathIdentity, PathState
from tapepath.multipath.policy import MarginalPolicy

__all__ = ["PathGroup", "StateListener"]

log = structlog.get_logger("tapepath.multipath")

StateListener = Callable[[Path, PathState, PathState, str], None]
"""Called after a state change with (path, old, new, reason), outside the group lock."""


class PathGroup:
    """The paths of one device and their states.

    Args:
        device: the device's name, for the log.
        paths: the paths, in the order given (ties of priority keep this order).
        marginal: the marginal-path rule.
        clock: the time source (monotonic seconds); injectable for tests.

    Attributes:
        device: the device's name.
        marginal: the marginal-path rule.
    """

    def __init__(
        self,
        device: str,
        paths: Iterable[Path] = (),
        *,
        marginal: MarginalPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = device
        self.marginal = marginal if marginal is not None else MarginalPolicy()
        self.clock = clock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._paths: list[Path] = []
        self._active: tuple[Path, ...] = ()
        self._listeners: list[StateListener] = []
        self.version = 0
        """Bumped on every change (states, membership, priorities)."""
        for p in paths:
            self.add(p)

    # -- reading ---------------------------------------------------------------------

    @property
    def paths(self) -> tuple[Path, ...]:
        """All paths, best priority first (ties in the order they were added)."""
        with self._lock:
            return tuple(self._ordered())

    @property
    def active(self) -> tuple[Path, ...]:
        """The ACTIVE paths, best priority first (a cached tuple: cheap to read)."""
        return self._active

    def in_state(self, *states: PathState) -> list[Path]:
        """The paths in any of ``states``, best priority first."""
        with self._lock:
            return [p for p in self._ordered() if p.state in states]

    def find(self, url: str) -> Path | None:
        """The path with this URL, or None."""
        with self._lock:
            for p in self._paths:
                if p.url == url:
                    return p
        return None

    def __len__(self) -> int:
        return len(self._paths)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.paths)

    # -- changing --------------------------------------------------------------------

    def add(self, path: Path, reason: str = "added") -> None:
        """Add a path (hot add). Its state is logged as a change from OFFLINE.

        Raises:
            ValueError: a path with the same URL is already in the group.
        """
        with self._lock:
            if any(p.url == path.url for p in self._paths):
                raise ValueError(f"{self.device}: path {path.url} is already in the group")
            path.index = max((p.index for p in self._paths), default=-1) + 1
            self._paths.append(path)
            self._refresh()
        log.info(
            "path_added",
            device=self.device,
            path=path.url,
            state=path.state.value,
            priority=path.priority,
            reason=reason,
        )

    def remove(self, path: Path, reason: str = "removed") -> None:
        """Take a path out of the group (it is not closed)."""
        with self._lock:
            self._paths.remove(path)
            self._refresh()
            self._changed.notify_all()
        log.info("path_removed", device=self.device, path=path.url, reason=reason)

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener`` after every state change."""
        with self._lock:
            self._listeners.append(listener)

    def set_identity(self, path: Path, identity: PathIdentity) -> None:
        """Replace what is known of a path's identity (priority included)."""
        with self._lock:
            path.identity = identity
            self._refresh()

    def set_state(self, path: Path, new: PathState, reason: str) -> bool:
        """Move ``path`` to ``new``, log it and wake the waiters.

        Returns:
            True if the state changed (an unchanged state logs nothing).
        """
        with self._lock:
            if path.state is new:
                return False
            old = path._set_state(new, self.clock())
            self._refresh()
            self._changed.notify_all()
            listeners = tuple(self._listeners)
        log.info(
            "path_state_changed",
            device=self.device,
            path=path.url,
            old=old.value,
            new=new.value,
            reason=reason,
        )
        for listener in listeners:
            listener(path, old, new, reason)
        return True

    def path_failed(self, path: Path, reason: str) -> bool:
        """Record a path failure and mark the path FAILED.

        Applies the marginal rule: a path with too many recent failures is held out
        (:attr:`Path.held_until`) and the reason says so.

        Returns:
            True if the path was just found marginal.
        """
        now = self.clock()
        with self._lock:
            path.failures = self.marginal.prune(path.failures, now)
            path.failures.append(now)
            marginal = self.marginal.is_marginal(path.failures, now)
            if marginal:
                path.held_until = now + self.marginal.hold_out
                path.failures = []
        if path.state is not PathState.OFFLINE:
            self.set_state(
                path,
                PathState.FAILED,
                f"marginal ({self.marginal.failures} failures in {self.marginal.window:g} s), "
                f"held out {self.marginal.hold_out:g} s; last: {reason}"
                if marginal
                else reason,
            )
        return marginal

    def may_reinstate(self, path: Path) -> bool:
        """False while a marginal path is held out or the path is administratively offline."""
        return path.state is not PathState.OFFLINE and self.clock() >= path.held_until

    def reinstate(self, path: Path, new: PathState, reason: str) -> bool:
        """Bring a FAILED or PROBING path back as ``new`` unless it is held out.

        Returns:
            True if the path changed state.
        """
        if not self.may_reinstate(path):
            return False
        return self.set_state(path, new, reason)

    # -- waiting ---------------------------------------------------------------------

    def wait_for_change(self, timeout: float) -> None:
        """Block until some path changes state or ``timeout`` seconds pass."""
        with self._changed:
            self._changed.wait(timeout)

    # -- internals -------------------------------------------------------------------

    def _ordered(self) -> Sequence[Path]:
        return sorted(self._paths, key=lambda p: (-p.priority, p.index))

    def _refresh(self) -> None:
        self._active = tuple(p for p in self._ordered() if p.state is PathState.ACTIVE)
        self.version += 1
