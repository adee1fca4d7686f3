"""tapepath.testing: test without hardware.

- :class:`VirtualLibrary`: an in-process tape library (SMC changer, SSC drives) with
  several ports per device, active/passive ALUA control paths, persistent
  reservations and unit attentions per I_T nexus, reached as ``sim://NAME/DEVICE?port=N``.
- :class:`FaultPlan` and the fault values: deterministic fault injection.
- :class:`MockTransport`: a transport made from a plain function, for unit tests.
- The pytest plugin (:mod:`tapepath.testing.pytest_plugin`) provides the fixtures
  ``virtual_library`` and ``fault_plan``.
"""

from tapepath.testing.changer import ElementKind, ElementLayout
from tapepath.testing.clock import RealClock, VirtualClock
from tapepath.testing.faults import (
    Always,
    AtCommand,
    AtTime,
    BlackHole,
    Busy,
    CommandInfo,
    ControlPathFailure,
    Delay,
    DriveReset,
    FaultPlan,
    InjectUnitAttention,
    LinkDown,
    PowerCycle,
    ReservationConflict,
    ResponseLost,
    RobotStop,
    TaskSetFull,
    When,
)
from tapepath.testing.library import VirtualLibrary, lookup, registered_libraries
from tapepath.testing.mock import MockTransport, Request
from tapepath.testing.nexus import AluaState
from tapepath.testing.sim import SimTransport
from tapepath.testing.tape_image import FILEMARK, Cartridge, TapeImage

__all__ = [
    "FILEMARK",
    "AluaState",
    "Always",
    "AtCommand",
    "AtTime",
    "BlackHole",
    "Busy",
    "Cartridge",
    "CommandInfo",
    "ControlPathFailure",
    "Delay",
    "DriveReset",
    "ElementKind",
    "ElementLayout",
    "FaultPlan",
    "InjectUnitAttention",
    "LinkDown",
    "MockTransport",
    "PowerCycle",
    "RealClock",
    "Request",
    "ReservationConflict",
    "ResponseLost",
    "RobotStop",
    "SimTransport",
    "TapeImage",
    "TaskSetFull",
    "VirtualClock",
    "VirtualLibrary",
    "When",
    "lookup",
    "registered_libraries",
]
