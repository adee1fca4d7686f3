"""The recovery gate: commands submitted while a recovery runs wait, then go in order.

From a path failure until the command that met it is done (its recovery hook consulted
and the decision carried out: :meth:`RecoveryGate.recovering`), every command submitted
to the device queues here, within its own deadline. Then the queued commands go one at a
time in the order they arrived, each finishing before
the next starts, so none overtakes an earlier one (the MSCP seed's "idle all
outstanding I/O before switching"; a tape WRITE never overtakes an earlier WRITE). New
commands keep queueing until the queue is empty. The recovering thread itself never
queues: the hook sends its own commands freely.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tapepath.errors import NoPathError

__all__ = ["RecoveryGate"]


class RecoveryGate:
    """The queue in front of one device during and right after a recovery.

    Args:
        name: the device's name, for error messages.

    Attributes:
        held: True while a recovery runs.
        queued: commands waiting or being served from the queue.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.held = False
        self.queued = 0
        self._cond = threading.Condition()
        self._lock = threading.RLock()
        self._owner: int | None = None
        self._next = 0
        self._serving = 0
        self._abandoned: set[int] = set()
        self._closed = False

    @property
    def busy(self) -> bool:
        """True when a command must go through :meth:`wait` (a recovery or a queue)."""
        return self.held or self.queued > 0

    @contextmanager
    def recovering(self) -> Iterator[bool]:
        """Hold the gate for one recovery (recoveries run one at a time; a nested one in
        the same thread does not hold again). Yields whether this call holds it."""
        me = threading.get_ident()
        with self._lock:
            outer = self._owner is None
            if outer:
                self._owner = me
                self.held = True
            try:
                yield outer
            finally:
                if outer:
                    self._owner = None
                    self.held = False
                    with self._cond:
                        self._cond.notify_all()

    def wait(self, timeout: float) -> int | None:
        """Queue until this command's turn; return its ticket for :meth:`release`.

        Returns None (no ticket) for the recovering thread itself.

        Raises:
            NoPathError: the turn did not come within ``timeout`` seconds (not sent).
        """
        if self._owner == threading.get_ident():
            return None
        deadline = time.monotonic() + timeout
        with self._cond:
            ticket = self._next
            self._next += 1
            self.queued += 1
            while (self.held or ticket != self._serving) and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.queued -= 1
                    self._abandoned.add(ticket)
                    self._advance()
                    raise NoPathError(
                        f"{self.name}: waited {timeout:g} s behind a recovery; not sent"
                    )
                self._cond.wait(remaining)
            return ticket

    def release(self, ticket: int) -> None:
        """The command with ``ticket`` is done: let the next one go."""
        with self._cond:
            self.queued -= 1
            if ticket == self._serving:
                self._serving += 1
            else:  # released out of turn (the gate was closed while it waited)
                self._abandoned.add(ticket)
            self._advance()

    def close(self) -> None:
        """Let every waiter out (the device is closing; their commands will fail)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _advance(self) -> None:
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1
        self._cond.notify_all()
