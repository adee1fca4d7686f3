"""FaultPlan: deterministic faults for the virtual library.

A fault is a frozen value: what happens (link down, black hole, BUSY ...), where
(``device`` and ``port``; None matches any), when (a trigger: :class:`AtTime`,
:class:`AtCommand`, :class:`When`, or :class:`Always`) and for how long (``times``
commands, or ``duration`` seconds on the library's clock). A :class:`FaultPlan`
composes faults and keeps their progress; its random choices (``probability`` below 1)
come from its own seeded generator, so a run with the same seed and the same commands
fails the same way.

Example:
    >>> from tapepath.testing.faults import FaultPlan, LinkDown, AtCommand
    >>> plan = FaultPlan(seed=1).add(LinkDown(device="drive0", port=0, trigger=AtCommand(3)))
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator

from attrs import define, field, frozen

__all__ = [
    "Always",
    "AtCommand",
    "AtTime",
    "BlackHole",
    "Busy",
    "CommandInfo",
    "ControlPathFailure",
    "Delay",
    "DriveReset",
    "Fault",
    "FaultPlan",
    "InjectUnitAttention",
    "LinkDown",
    "PowerCycle",
    "ReservationConflict",
    "ResponseLost",
    "RobotStop",
    "TaskSetFull",
    "Trigger",
    "When",
]


@frozen
class CommandInfo:
    """What a trigger predicate sees about a command.

    Attributes:
        device: the device name (``changer``, ``drive0`` ...).
        port: the port index.
        cdb: the CDB.
        data_out: the data sent with it.
        now: the library clock's reading, relative to when the plan was installed.
        count: how many commands (this one included) matched the fault's target.
    """

    device: str
    port: int
    cdb: bytes
    data_out: bytes = b""
    now: float = 0.0
    count: int = 0

    @property
    def opcode(self) -> int:
        """The CDB's operation code."""
        return self.cdb[0] if self.cdb else -1


# ---- triggers ---------------------------------------------------------------------------


@frozen
class Always:
    """Armed from the first matching command."""

    def ready(self, info: CommandInfo) -> bool:
        """Always true."""
        return True


@frozen
class AtTime:
    """Armed once ``seconds`` have passed on the library clock since the plan was installed."""

    seconds: float

    def ready(self, info: CommandInfo) -> bool:
        """True from ``seconds`` on."""
        return info.now >= self.seconds


@frozen
class AtCommand:
    """Armed at the ``n``-th command (1-based) that matches the fault's device and port."""

    n: int = field()

    @n.validator
    def _check(self, _attr: object, value: int) -> None:
        if value < 1:
            raise ValueError(f"AtCommand.n must be >= 1, got {value}")

    def ready(self, info: CommandInfo) -> bool:
        """True from the n-th matching command on."""
        return info.count >= self.n


@frozen
class When:
    """Armed by the first command for which ``predicate(info)`` is true."""

    predicate: Callable[[CommandInfo], bool]

    def ready(self, info: CommandInfo) -> bool:
        """The predicate's verdict."""
        return bool(self.predicate(info))


Trigger = Always | AtTime | AtCommand | When


# ---- faults -----------------------------------------------------------------------------


@frozen(kw_only=True)
class _FaultBase:
    device: str | None = None
    port: int | None = None
    trigger: Trigger = field(factory=Always)
    times: int | None = 1
    duration: float | None = None
    probability: float = field(default=1.0)

    @probability.validator
    def _check_p(self, _attr: object, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"probability must be in 0..1, got {value}")

    def matches(self, device: str, port: int) -> bool:
        """The fault targets this device and port."""
        return (self.device is None or self.device == device) and (
            self.port is None or self.port == port
        )


@frozen(kw_only=True)
class LinkDown(_FaultBase):
    """The link goes down: commands fail as path failures (LINK_LOST, then NO_CONNECT).

    With ``port=None`` every port of the device goes down. The command that meets the
    cut gets LINK_LOST (not executed); later ones NO_CONNECT. The link stays down for
    ``duration`` seconds, or until :meth:`VirtualLibrary.set_link` brings it back
    (``duration=None``). ``times`` counts cuts (a cut link is not cut again).
    """


@frozen(kw_only=True)
class BlackHole(_FaultBase):
    """No answer: the command is not run and the caller waits its whole timeout (TIMED_OUT)."""

    times: int | None = None


@frozen(kw_only=True)
class Delay(_FaultBase):
    """The command runs after ``seconds`` more (on the library clock)."""

    seconds: float = 1.0


@frozen(kw_only=True)
class InjectUnitAttention(_FaultBase):
    """Queue a unit attention (asc, ascq) on the matching nexuses; the command then sees it."""

    asc: int = 0x29
    ascq: int = 0x00


@frozen(kw_only=True)
class Busy(_FaultBase):
    """The command is not run; status BUSY."""


@frozen(kw_only=True)
class TaskSetFull(_FaultBase):
    """The command is not run; status TASK SET FULL."""


@frozen(kw_only=True)
class ReservationConflict(_FaultBase):
    """The command is not run; status RESERVATION CONFLICT."""


@frozen(kw_only=True)
class ResponseLost(_FaultBase):
    """The command runs, then the connection drops: LINK_LOST with maybe_executed=True.

    The nexus is lost; the next command through the port reconnects and sees 29/07.
    """


@frozen(kw_only=True)
class DriveReset(_FaultBase):
    """The drive resets before the command: tape rewound, 29/00 on every nexus."""


@frozen(kw_only=True)
class RobotStop(_FaultBase):
    """The robot stops in the middle of a MOVE/EXCHANGE MEDIUM.

    The cartridge stays in the medium transport element and the command ends with
    HARDWARE ERROR 15/01 (mechanical positioning error). Matches changer commands;
    commands other than moves leave it armed.
    """

    device: str | None = "changer"


@frozen(kw_only=True)
class ControlPathFailure(_FaultBase):
    """A control-path drive fails: its changer port vanishes (DEVICE_GONE) and another
    control path becomes active (2A/06 on the other changer nexuses).

    ``control_path`` is the changer port index of the failing control path (None: the
    active one). ``drive_too`` also takes that drive's own ports down.
    """

    control_path: int | None = None
    drive_too: bool = True


@frozen(kw_only=True)
class PowerCycle(_FaultBase):
    """The whole library power cycles before the command (see VirtualLibrary.power_cycle)."""


Fault = (
    LinkDown
    | BlackHole
    | Delay
    | InjectUnitAttention
    | Busy
    | TaskSetFull
    | ReservationConflict
    | ResponseLost
    | DriveReset
    | RobotStop
    | ControlPathFailure
    | PowerCycle
)


@define
class _Progress:
    seen: int = 0
    armed_at: float | None = None
    applied: int = 0
    done: bool = False


@define
class FaultPlan:
    """A composition of faults and their progress.

    Args:
        faults: the faults, evaluated in order for every command.
        seed: seeds the generator behind ``probability``.

    Attributes:
        fired: (fault, CommandInfo) for every application, for assertions.
    """

    faults: list[Fault] = field(factory=list)
    seed: int = 0
    fired: list[tuple[Fault, CommandInfo]] = field(factory=list)
    _progress: list[_Progress] = field(factory=list, init=False)
    _rng: random.Random = field(init=False)
    _origin: float | None = field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.faults = list(self.faults)
        self._rng = random.Random(self.seed)
        self._progress = [_Progress() for _ in self.faults]

    def add(self, *faults: Fault) -> FaultPlan:
        """Add faults; returns the plan, so calls chain."""
        for f in faults:
            self.faults.append(f)
            self._progress.append(_Progress())
        return self

    def __or__(self, other: FaultPlan) -> FaultPlan:
        """A new plan with the faults of both (seed of the left one)."""
        return FaultPlan([*self.faults, *other.faults], seed=self.seed)

    def __iter__(self) -> Iterator[Fault]:
        return iter(self.faults)

    def __len__(self) -> int:
        return len(self.faults)

    def start(self, now: float) -> None:
        """Set the time origin of AtTime triggers (the library does this on install)."""
        self._origin = now

    def clear(self) -> None:
        """Retire every fault (links already down stay down until set_link)."""
        for p in self._progress:
            p.done = True

    def active(
        self, device: str, port: int, cdb: bytes, data_out: bytes, now: float
    ) -> list[Fault]:
        """The faults that apply to this command, in plan order, and count it.

        An empty CDB is a poll in the middle of a command: only time triggers arm then
        and nothing is counted.
        """
        if self._origin is None:
            self._origin = now
        rel = now - self._origin
        out: list[Fault] = []
        for fault, prog in zip(self.faults, self._progress, strict=False):
            if prog.done or not fault.matches(device, port):
                continue
            poll = not cdb
            if not poll:
                prog.seen += 1
            elif not isinstance(fault.trigger, AtTime):
                continue
            info = CommandInfo(device, port, cdb, data_out, rel, prog.seen)
            if prog.armed_at is None:
                if not fault.trigger.ready(info):
                    continue
                prog.armed_at = rel
            if fault.duration is not None and rel - prog.armed_at > fault.duration:
                prog.done = True
                continue
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                continue
            prog.applied += 1
            if fault.times is not None and prog.applied >= fault.times:
                prog.done = True
            self.fired.append((fault, info))
            out.append(fault)
        return out

    def pending(self) -> Iterable[Fault]:
        """Faults not yet retired."""
        return [f for f, p in zip(self.faults, self._progress, strict=False) if not p.done]
