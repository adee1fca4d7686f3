"""The recovery state machine: one table, no I/O.

A recovery goes detected -> verifying -> notifying -> synchronizing -> resending ->
recovered, or ends in failed; a path switch without a failed command starts at
notifying and ends with nothing outstanding. :data:`TRANSITIONS` is the whole machine:
a dict of ``(state, event) -> (action, next state)``. :class:`RecoveryMachine` looks
each event up there, logs one ``recovery_transition`` event and returns the
:class:`Action` the driver (:mod:`tapepath.recovery.driver`) must carry out. A pair that
is not in the table raises :class:`~tapepath.recovery.errors.RecoveryStateError`.
``scripts/draw_recovery_diagram.py`` draws the docs diagram from the same table.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence

import structlog

from tapepath.recovery.errors import RecoveryStateError

__all__ = ["TRANSITIONS", "Action", "Event", "RecoveryMachine", "State"]

log = structlog.get_logger("tapepath.recovery")


class State(enum.Enum):
    """Where a recovery is."""

    DETECTED = "detected"
    VERIFYING = "verifying"
    NOTIFYING = "notifying"
    SYNCHRONIZING = "synchronizing"
    RESENDING = "resending"
    RECOVERED = "recovered"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        """True for recovered and failed."""
        return self in (State.RECOVERED, State.FAILED)


class Event(enum.Enum):
    """What the driver observed."""

    PATH_FAILED = "path_failed"
    """A command's path failed under it (the start)."""
    PATH_SWITCHED = "path_switched"
    """The device moved to another path without a failed command (the monitor failed
    the old one, a failback): the new path is brought up to date before it is used."""
    PROBE_ANSWERED = "probe_answered"
    """The probed path answered."""
    PROBE_FAILED = "probe_failed"
    """The probed path did not answer; other paths are left to probe."""
    NO_PATH_LEFT = "no_path_left"
    """No path is left to probe."""
    NOTIFIED = "notified"
    """Unit attentions read, reservations moved, settings restored on the new path."""
    NOTIFY_PATH_LOST = "notify_path_lost"
    """The new path failed while it was being notified."""
    NOTIFY_FAILED = "notify_failed"
    """The device refused a notify step (a reservation could not be moved, ...)."""
    POSITION_LOST = "position_lost"
    """The device was reset and the position read is not one the command explains:
    LOCATE back to the tracked position first."""
    POSITION_RESTORED = "position_restored"
    """LOCATE back to the tracked position succeeded: decide again."""
    STATE_READ = "state_read"
    """The device state proves the command's effect is not there: resend it."""
    EFFECT_PRESENT = "effect_present"
    """The device state proves the command's effect is there: complete it, no resend."""
    MOVE_IN_TRANSPORT = "move_in_transport"
    """The cartridge of a MOVE MEDIUM is in the transport element: finish from there."""
    STATE_AMBIGUOUS = "state_ambiguous"
    """The device state proves neither: raise the ambiguity error, resend nothing."""
    SYNC_PATH_LOST = "sync_path_lost"
    """The new path failed while the state was read."""
    RESENT = "resent"
    """The command was handed back to the device to resend (or finished from the
    transport element)."""
    RESEND_FAILED = "resend_failed"
    """Finishing the command failed."""
    NOTHING_OUTSTANDING = "nothing_outstanding"
    """A path switch: the state is in order and no command waits for a decision."""
    ROBOT_BUSY = "robot_busy"
    """Finishing a move from the transport element met a robot still moving (04/01):
    read the element status again."""
    ABORTED = "aborted"
    """The driver gave up (an unexpected error, or the caller's deadline passed)."""


class Action(enum.Enum):
    """What the driver must do next."""

    PROBE_NEXT_PATH = "probe_next_path"
    NOTIFY = "notify"
    LOCATE_BACK = "locate_back"
    READ_STATE = "read_state"
    RESEND = "resend"
    FINISH_MOVE = "finish_move"
    COMPLETE = "complete"
    FAIL = "fail"


S = State
E = Event
A = Action

TRANSITIONS: dict[tuple[State, Event], tuple[Action, State]] = {
    (S.DETECTED, E.PATH_FAILED): (A.PROBE_NEXT_PATH, S.VERIFYING),
    (S.DETECTED, E.PATH_SWITCHED): (A.NOTIFY, S.NOTIFYING),
    (S.DETECTED, E.ABORTED): (A.FAIL, S.FAILED),
    (S.VERIFYING, E.PROBE_FAILED): (A.PROBE_NEXT_PATH, S.VERIFYING),
    (S.VERIFYING, E.PROBE_ANSWERED): (A.NOTIFY, S.NOTIFYING),
    (S.VERIFYING, E.NO_PATH_LEFT): (A.FAIL, S.FAILED),
    (S.VERIFYING, E.ABORTED): (A.FAIL, S.FAILED),
    (S.NOTIFYING, E.NOTIFIED): (A.READ_STATE, S.SYNCHRONIZING),
    (S.NOTIFYING, E.NOTIFY_PATH_LOST): (A.PROBE_NEXT_PATH, S.VERIFYING),
    (S.NOTIFYING, E.NOTIFY_FAILED): (A.FAIL, S.FAILED),
    (S.NOTIFYING, E.ABORTED): (A.FAIL, S.FAILED),
    (S.SYNCHRONIZING, E.POSITION_LOST): (A.LOCATE_BACK, S.SYNCHRONIZING),
    (S.SYNCHRONIZING, E.POSITION_RESTORED): (A.READ_STATE, S.SYNCHRONIZING),
    (S.SYNCHRONIZING, E.STATE_READ): (A.RESEND, S.RESENDING),
    (S.SYNCHRONIZING, E.EFFECT_PRESENT): (A.COMPLETE, S.RECOVERED),
    (S.SYNCHRONIZING, E.MOVE_IN_TRANSPORT): (A.FINISH_MOVE, S.RESENDING),
    (S.SYNCHRONIZING, E.NOTHING_OUTSTANDING): (A.COMPLETE, S.RECOVERED),
    (S.SYNCHRONIZING, E.STATE_AMBIGUOUS): (A.FAIL, S.FAILED),
    (S.SYNCHRONIZING, E.SYNC_PATH_LOST): (A.PROBE_NEXT_PATH, S.VERIFYING),
    (S.SYNCHRONIZING, E.ABORTED): (A.FAIL, S.FAILED),
    (S.RESENDING, E.RESENT): (A.COMPLETE, S.RECOVERED),
    (S.RESENDING, E.RESEND_FAILED): (A.FAIL, S.FAILED),
    (S.RESENDING, E.ROBOT_BUSY): (A.READ_STATE, S.SYNCHRONIZING),
    (S.RESENDING, E.ABORTED): (A.FAIL, S.FAILED),
}
"""The whole machine: (state, event) -> (action, next state)."""

del S, E, A


class RecoveryMachine:
    """One recovery of one device, driven by events; does no I/O.

    Args:
        device: the device's name (for the log).
        old_path: the URL of the path that failed.
        commands: the commands concerned, as short texts (``"WRITE(6) 0Ah"``).
        clock: the monotonic clock for the elapsed time.

    Attributes:
        state: the current state.
        new_path: the URL of the path recovery moved to, once known.
        history: every (old state, event, action, new state) so far.
    """

    def __init__(
        self,
        device: str,
        old_path: str,
        commands: Sequence[str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = device
        self.old_path = old_path
        self.commands = tuple(commands)
        self.state = State.DETECTED
        self.new_path: str | None = None
        self.history: list[tuple[State, Event, Action, State]] = []
        self._clock = clock
        self._start = clock()

    @property
    def elapsed(self) -> float:
        """Seconds since the machine was made (the failure was detected)."""
        return self._clock() - self._start

    def handle(self, event: Event, *, new_path: str | None = None, **why: object) -> Action:
        """Feed one event; return the action for the driver.

        Args:
            event: what happened.
            new_path: the path now in use, when it changed (a probe answered).
            **why: extra key/value fields for the log event.

        Raises:
            RecoveryStateError: ``(state, event)`` is not in :data:`TRANSITIONS`.
        """
        key = (self.state, event)
        found = TRANSITIONS.get(key)
        if found is None:
            raise RecoveryStateError(
                f"{self.device}: recovery event {event.value} is not allowed in state "
                f"{self.state.value}",
                state=self.state.value,
                event=event.value,
            )
        action, nxt = found
        if new_path is not None:
            self.new_path = new_path
        old = self.state
        self.state = nxt
        self.history.append((old, event, action, nxt))
        log.info(
            "recovery_transition",
            device=self.device,
            old_path=self.old_path,
            new_path=self.new_path,
            commands=list(self.commands),
            elapsed=round(self.elapsed, 6),
            old=old.value,
            trigger=event.value,
            action=action.value,
            new=nxt.value,
            **why,
        )
        return action
