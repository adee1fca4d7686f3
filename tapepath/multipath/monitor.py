"""The path monitor: one background thread that checks the paths of every device.

Each registered device's paths are checked every ``policy.checker.interval`` seconds
when they are FAILED or PASSIVE, and when they are ACTIVE but idle (no command went
through them since the last check), so a failure is found with no command outstanding
and a path that comes back is reinstated. OFFLINE and PROBING paths are left alone.
The monitor also drives the devices' time-based rules (deferred failback).

Tests build their own monitor with a fake ``clock`` and call :meth:`PathMonitor.run_once`
instead of starting the thread.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from tapepath.multipath.checkers import Checker, apply_check, make_checker
from tapepath.multipath.path import PathState

if TYPE_CHECKING:
    from tapepath.multipath.device import MultipathDevice
    from tapepath.multipath.path import Path

__all__ = ["PathMonitor", "default_monitor"]

log = structlog.get_logger("tapepath.multipath.monitor")


class _Slot:
    __slots__ = ("commands", "due")

    def __init__(self, due: float, commands: int) -> None:
        self.due = due
        self.commands = commands


class PathMonitor:
    """Checks the paths of many devices from one thread.

    Args:
        clock: monotonic time source.
        checkers: checker instances by name (default: built from the policy names).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        checkers: dict[str, Checker] | None = None,
    ) -> None:
        self.clock = clock
        self._checkers: dict[str, Checker | None] = dict(checkers or {})
        # weak: a device nobody holds any more (and never closed) is not kept alive here
        self._devices: weakref.WeakSet[MultipathDevice] = weakref.WeakSet()
        self._slots: weakref.WeakKeyDictionary[MultipathDevice, dict[int, _Slot]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checks = 0
        """Checks run since the monitor was made."""

    # -- registration ------------------------------------------------------------------

    def register(self, device: MultipathDevice) -> None:
        """Start checking ``device``'s paths."""
        with self._lock:
            self._devices.add(device)
        self._wake.set()

    def unregister(self, device: MultipathDevice) -> None:
        """Stop checking ``device``."""
        with self._lock:
            self._devices.discard(device)
            self._slots.pop(device, None)

    @property
    def devices(self) -> list[MultipathDevice]:
        """The devices being monitored."""
        with self._lock:
            return list(self._devices)

    # -- one round ---------------------------------------------------------------------

    def run_once(self) -> float:
        """Check every path that is due now; return the clock time of the next due check."""
        now = self.clock()
        next_due = now + 1.0
        for device in self.devices:
            pol = device.policy.checker
            checker = self._checker(pol.name)
            device.tick(now)
            with self._lock:
                slots = self._slots.setdefault(device, {})
            for path in device.group.paths:
                state = path.state
                if state is PathState.OFFLINE or state is PathState.PROBING:
                    continue
                commands = path.commands
                slot = slots.get(path.index)
                if slot is None:
                    slot = slots[path.index] = _Slot(now + pol.interval, commands)
                if now < slot.due:
                    next_due = min(next_due, slot.due)
                    continue
                busy = state is PathState.ACTIVE and commands != slot.commands
                if checker is not None and not busy and not self._unfenced(path):
                    slot.due = now + pol.interval  # fenced and not back yet: stays FAILED
                    next_due = min(next_due, slot.due)
                    continue
                if checker is not None and not busy:
                    found = checker.check(device, path, pol.timeout)
                    self.checks += 1
                    apply_check(device, path, found)
                slot.due = now + pol.interval
                slot.commands = path.commands
                next_due = min(next_due, slot.due)
        return next_due

    @staticmethod
    def _unfenced(path: Path) -> bool:
        """False while ``path``'s transport is fenced and cannot be brought back yet.

        Recovery fences a failed sg path (its transport then refuses every command);
        before the checker may reinstate it, the fence is lifted (``unfence()``: the
        device is set running, or scanned back, once its session is logged in).
        """
        transport = path.transport
        if not getattr(transport, "fenced", False):
            return True
        unfence = getattr(transport, "unfence", None)
        if not callable(unfence):
            return True
        result = unfence()
        if not result.done:
            log.debug("monitor_unfence_pending", path=path.url, reason=result.reason)
        return bool(result.done)

    def _checker(self, name: str) -> Checker | None:
        if name not in self._checkers:
            self._checkers[name] = make_checker(name)
        return self._checkers[name]

    # -- the thread --------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="tapepath-path-monitor", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        self._wake.set()
        t = self._thread
        if t is not None:
            t.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                next_due = self.run_once()
            except Exception as exc:  # the monitor must outlive one bad device
                log.error("monitor_round_failed", error=f"{type(exc).__name__}: {exc}")
                next_due = self.clock() + 1.0
            delay = min(max(next_due - self.clock(), 0.01), 1.0)
            self._wake.wait(delay)
            self._wake.clear()


_default: PathMonitor | None = None
_default_lock = threading.Lock()


def default_monitor() -> PathMonitor:
    """The shared monitor of the process, its thread started on first use."""
    global _default  # noqa: PLW0603  (one monitor per process)
    with _default_lock:
        if _default is None:
            _default = PathMonitor()
        _default.start()
        return _default
