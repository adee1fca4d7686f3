"""Recovery after a path failure: verify, notify, synchronise, resend, never twice.

A command is sent to the device at most once unless recovery has proof that its effect
is not there. Pass :class:`TapeRecovery` or :class:`ChangerRecovery` as the recovery
hook of a :class:`~tapepath.multipath.MultipathDevice`::

    from tapepath.multipath import MultipathDevice
    from tapepath.recovery import TapeRecovery

    hook = TapeRecovery()
    drive = MultipathDevice(urls, recovery=hook)
    ...
    hook.position   # TrackedPosition(block, file, known)
    hook.stats      # RecoveryStats(recoveries, completed, resent, ambiguous, failed)

The hook tracks the device's state from the commands that complete through the device
(whoever sends them, pyscsi included) and, when a path fails under a command, runs the
state machine of :mod:`tapepath.recovery.machine`. See docs/recovery.md.
"""

from tapepath.recovery.changer import ChangerRecovery, ChangerState
from tapepath.recovery.driver import RecoveryDriver, RecoveryStats, command_name
from tapepath.recovery.errors import (
    MoveAmbiguousError,
    PositionAmbiguousError,
    RecoveryStateError,
)
from tapepath.recovery.handlers import (
    DeviceHandler,
    GenericDeviceHandler,
    NotifyContext,
    NotifyPathLost,
    NotifyRefusedError,
    NotifyReport,
    device_handler,
    register_device_handler,
)
from tapepath.recovery.machine import TRANSITIONS, Action, Event, RecoveryMachine, State
from tapepath.recovery.tape import TapeRecovery
from tapepath.recovery.tracking import (
    DeviceState,
    ModeSettings,
    Reservation,
    TapeState,
    TrackedPosition,
)

__all__ = [
    "TRANSITIONS",
    "Action",
    "ChangerRecovery",
    "ChangerState",
    "DeviceHandler",
    "DeviceState",
    "Event",
    "GenericDeviceHandler",
    "ModeSettings",
    "MoveAmbiguousError",
    "NotifyContext",
    "NotifyPathLost",
    "NotifyRefusedError",
    "NotifyReport",
    "PositionAmbiguousError",
    "RecoveryDriver",
    "RecoveryMachine",
    "RecoveryStateError",
    "RecoveryStats",
    "Reservation",
    "State",
    "TapeRecovery",
    "TapeState",
    "TrackedPosition",
    "command_name",
    "device_handler",
    "register_device_handler",
]
