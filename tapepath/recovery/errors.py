"""The errors recovery raises, with what it saw.

:class:`PositionAmbiguousError` and :class:`MoveAmbiguousError` are the
:class:`~tapepath.errors.AmbiguousPositionError` and
:class:`~tapepath.errors.AmbiguousMoveError` of :mod:`tapepath.errors` (catch those) with
attributes that say what recovery knew and what it found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tapepath.errors import AmbiguousMoveError, AmbiguousPositionError, TapepathError

if TYPE_CHECKING:
    from tapepath.recovery.tracking import TrackedPosition

__all__ = ["MoveAmbiguousError", "PositionAmbiguousError", "RecoveryStateError"]


class RecoveryStateError(TapepathError):
    """An event the recovery state machine's table has no transition for (a bug).

    Attributes:
        state: the machine's state.
        event: the event it was given.
    """

    def __init__(self, message: str, *, state: str, event: str) -> None:
        super().__init__(message)
        self.state = state
        self.event = event


class PositionAmbiguousError(AmbiguousPositionError):
    """After failover the tape position proves neither that a command ran nor that it
    did not; nothing was resent.

    Attributes:
        last_known: the last position known good (before the command).
        seen: what the drive reported on the new path (a short text).
        command: the CDB of the command in doubt.
        expected: the position the command would have left, when it has one.
    """

    def __init__(
        self,
        message: str,
        *,
        last_known: TrackedPosition,
        seen: str,
        command: bytes,
        expected: int | None = None,
    ) -> None:
        super().__init__(message)
        self.last_known = last_known
        self.seen = seen
        self.command = command
        self.expected = expected


class MoveAmbiguousError(AmbiguousMoveError):
    """After failover the element status proves neither that a MOVE MEDIUM (or EXCHANGE
    MEDIUM) ran nor that it did not; nothing was resent.

    Attributes:
        seen: element address -> what was seen there (``"full TP0001L8 from 1000h"``,
            ``"empty"``).
        command: the CDB of the command in doubt.
        source: the source element address.
        destination: the destination element address.
    """

    def __init__(
        self,
        message: str,
        *,
        seen: dict[int, str],
        command: bytes,
        source: int,
        destination: int,
    ) -> None:
        super().__init__(message)
        self.seen = seen
        self.command = command
        self.source = source
        self.destination = destination
