"""The fault kinds of the matrix: each one built for the n-th command of the session.

Every factory takes the command the fault-free session sends at that index (device,
port) and how many commands that device and port had seen by then, and returns the
fault aimed at exactly that command with an :class:`~tapepath.testing.AtCommand`
trigger. The session is deterministic up to the first fault, so the fault lands on
the same command in the faulted run.
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import frozen

from tapepath.testing import (
    AtCommand,
    BlackHole,
    Busy,
    ControlPathFailure,
    Delay,
    DriveReset,
    InjectUnitAttention,
    LinkDown,
    PowerCycle,
    ReservationConflict,
    ResponseLost,
    RobotStop,
    TaskSetFull,
)
from tapepath.testing.faults import Fault
from tests.proof.session import Command


@frozen
class FaultKind:
    """One row of the matrix.

    Attributes:
        name: the test id.
        make: builds the faults for (command, its count on that device and port).
        applies: whether the fault means anything at that command (a drive reset
            aimed at a changer command is a no-op in the library, so it is not a case).
        must_recover: the library has proof of what happened (the command did not run,
            or ran and answered), so the session must end as the fault-free one: no
            typed error is acceptable.
    """

    name: str
    make: Callable[[Command, int], tuple[Fault, ...]]
    applies: Callable[[Command], bool] = lambda _c: True
    must_recover: bool = False


def _on_drive(c: Command) -> bool:
    return c.device.startswith("drive")


def _on_move(c: Command) -> bool:
    return c.opcode in (MOVE_MEDIUM, EXCHANGE_MEDIUM)


MOVE_MEDIUM, EXCHANGE_MEDIUM = 0xA5, 0xA6


def _kind(
    name: str,
    cls: Callable[..., Fault],
    *,
    applies: Callable[[Command], bool] = lambda _c: True,
    must_recover: bool = False,
    **options: object,
) -> FaultKind:
    """A row whose fault is ``cls(**options)`` aimed at the command."""

    def make(c: Command, n: int) -> tuple[Fault, ...]:
        return (cls(device=c.device, port=c.port, trigger=AtCommand(n), **options),)

    return FaultKind(name, make, applies, must_recover)


def _stopped_and_lost(c: Command, n: int) -> tuple[Fault, ...]:
    """The robot stops half-way through this move (or exchange) and its answer is lost."""
    at = AtCommand(n)
    return (
        RobotStop(device=c.device, port=c.port, trigger=at),
        ResponseLost(device=c.device, port=c.port, trigger=at),
    )


KINDS: tuple[FaultKind, ...] = (
    _kind("link_down", LinkDown, must_recover=True),
    _kind("link_flap", LinkDown, duration=1.0, must_recover=True),
    _kind("black_hole", BlackHole, times=None),
    _kind("delay", Delay, seconds=2.0, must_recover=True),
    _kind("delay_past_deadline", Delay, seconds=1e5),
    _kind("unit_attention_reset", InjectUnitAttention, asc=0x29, ascq=0x00, must_recover=True),
    _kind("unit_attention_mode", InjectUnitAttention, asc=0x2A, ascq=0x01, must_recover=True),
    _kind("busy", Busy, must_recover=True),  # once: each retry sleeps (real time) in the API
    _kind("task_set_full", TaskSetFull, must_recover=True),
    _kind("reservation_conflict", ReservationConflict),
    _kind("response_lost", ResponseLost),
    _kind("drive_reset", DriveReset, applies=_on_drive, must_recover=True),
    _kind("robot_stop", RobotStop),
    FaultKind("robot_stop_response_lost", _stopped_and_lost, _on_move),
    _kind("control_path_failure", ControlPathFailure, drive_too=False, must_recover=True),
    _kind("control_path_and_drive_failure", ControlPathFailure, drive_too=True),
    _kind("power_cycle", PowerCycle, must_recover=True),
)
