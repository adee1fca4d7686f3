"""Campaign scenarios on the in-process virtual library, with FaultPlan faults.

Each scenario builds a fresh :class:`~tapepath.testing.VirtualLibrary` on a
:class:`~tapepath.testing.VirtualClock` (black holes and delays cost no real time),
draws one to three faults at random command counts, runs the workload through
``tapepath.open_library`` / ``open_drive`` on every port, and then compares the
library's cartridges and tapes with the model.
"""

from __future__ import annotations

import itertools
import random
import time
from typing import TYPE_CHECKING

from tapepath.testing.campaign.model import FILEMARK_TOKEN, Model
from tapepath.testing.campaign.report import Tally
from tapepath.testing.campaign.workload import Workload
from tapepath.testing.clock import VirtualClock
from tapepath.testing.faults import (
    AtCommand,
    BlackHole,
    Busy,
    ControlPathFailure,
    Delay,
    DriveReset,
    Fault,
    FaultPlan,
    InjectUnitAttention,
    LinkDown,
    PowerCycle,
    ResponseLost,
    TaskSetFull,
)
from tapepath.testing.library import VirtualLibrary

if TYPE_CHECKING:
    from tapepath.drive import TapeDrive
    from tapepath.library import Library

__all__ = ["SIM_FAULTS", "run_sim_scenario"]

_names = itertools.count()

SIM_FAULTS = (
    "link_down",
    "black_hole",
    "response_lost",
    "delay",
    "busy",
    "task_set_full",
    "unit_attention",
    "drive_reset",
    "control_path_failure",
    "power_cycle",
)
"""The FaultPlan faults a sim scenario draws from."""

TIMEOUT = 5.0
"""Seconds each command may take (the virtual clock makes waiting free)."""

DRIVES = 2
SLOTS = 8


def _fault(rng: random.Random, kind: str) -> Fault:
    device = rng.choice(["changer", *[f"drive{i}" for i in range(DRIVES)]])
    port = rng.choice([0, 1])
    trigger = AtCommand(rng.randint(1, 12))
    if kind == "link_down":
        return LinkDown(device=device, port=port, trigger=trigger, duration=rng.choice([None, 2.0]))
    if kind == "black_hole":
        return BlackHole(device=device, port=port, trigger=trigger, times=rng.randint(1, 2))
    if kind == "response_lost":
        return ResponseLost(device=device, port=port, trigger=trigger)
    if kind == "delay":
        return Delay(device=device, port=port, trigger=trigger, seconds=rng.choice([0.5, 9.0]))
    if kind == "busy":
        return Busy(device=device, port=port, trigger=trigger, times=rng.randint(1, 3))
    if kind == "task_set_full":
        return TaskSetFull(device=device, port=port, trigger=trigger)
    if kind == "unit_attention":
        asc, ascq = rng.choice([(0x29, 0x00), (0x2A, 0x01), (0x28, 0x00), (0x3F, 0x0E)])
        return InjectUnitAttention(device=device, port=port, trigger=trigger, asc=asc, ascq=ascq)
    if kind == "drive_reset":
        return DriveReset(device=f"drive{rng.randrange(DRIVES)}", trigger=trigger)
    if kind == "control_path_failure":
        return ControlPathFailure(device="changer", trigger=trigger, drive_too=False)
    return PowerCycle(device=device, trigger=trigger)


class _SimRig:
    def __init__(self, vlib: VirtualLibrary, library: Library, drives: list[TapeDrive]) -> None:
        self.vlib = vlib
        self._library = library
        self._drives = drives
        self.slot_addresses = tuple(vlib.slot_address(i) for i in range(SLOTS))

    @property
    def library(self) -> Library:
        return self._library

    def drive(self, i: int) -> TapeDrive:
        return self._drives[i]

    def before_call(self, index: int) -> None:
        """FaultPlan faults trigger on command counts: nothing to do between calls."""

    def now(self) -> float:
        return time.monotonic() + self.vlib.clock.now()

    def bound(self, kind: str) -> float:
        # Every command may wait its timeout on each of the two paths and once more
        # while recovery verifies; REWIND and moves get the same timeout here.
        return 3 * TIMEOUT + 2.0


def run_sim_scenario(seed: int, tally: Tally, *, calls: int = 16) -> None:
    """Run one seeded scenario on a fresh virtual library and add its counts to ``tally``.

    Args:
        seed: the scenario's seed (the faults and the calls follow from it).
        tally: where the counts go.
        calls: how many calls the workload makes at most.
    """
    rng = random.Random(seed)
    kinds = rng.sample(SIM_FAULTS, rng.randint(1, 3))
    plan = FaultPlan(seed=seed).add(*(_fault(rng, k) for k in kinds))
    own = Tally(scenarios=1, sim_scenarios=1)
    vlib = VirtualLibrary(
        f"campaign-{seed}-{next(_names)}",
        slots=SLOTS,
        drives=DRIVES,
        cartridges=SLOTS - 2,
        clock=VirtualClock(),
    )
    import tapepath  # noqa: PLC0415  (tapepath imports tapepath.testing lazily)

    with vlib:
        model = Model(
            location={c: a for a, c in vlib.inventory().items() if c is not None},
            drive_addresses=tuple(vlib.drive_address(i) for i in range(DRIVES)),
        )
        library = tapepath.open_library(
            vlib.changer_urls(), monitor=False, timeout=TIMEOUT, move_timeout=TIMEOUT
        )
        drives = [
            tapepath.open_drive(
                vlib.drive_urls(i), monitor=False, timeout=TIMEOUT, long_timeout=TIMEOUT
            )
            for i in range(DRIVES)
        ]
        try:
            vlib.install(plan)
            work = Workload(_SimRig(vlib, library, drives), model, rng, own, f"sim{seed}")
            work.run(calls)
        finally:
            vlib.install(None)
            for d in drives:
                d.close()
            library.close()
        _check(vlib, model, own, f"sim{seed}")
        own.faults_injected = len(plan.fired)
        if plan.fired:
            own.scenarios_with_faults = 1
            if work.errors == 0:
                own.recovered_transparently = 1
    tally.add(own)


def _check(vlib: VirtualLibrary, model: Model, tally: Tally, tag: str) -> None:
    actual = {code: vlib.where(code) for code in model.location}
    bad = model.misplaced(actual)
    if bad:
        tally.cartridges_misplaced += bad
        tally.failures.append(f"{tag}: {bad} cartridge(s) misplaced: {actual} vs {model.location}")
    for code in model.tapes:
        if actual.get(code) is None:
            continue
        objs = [
            o if isinstance(o, bytes) else FILEMARK_TOKEN
            for o in vlib.cartridge(code).image.objects
        ]
        result = model.check_tape(code, objs)
        if not result.clean:
            tally.records_lost += result.lost
            tally.records_duplicated += result.duplicated
            tally.records_foreign += result.foreign
            tally.failures.append(
                f"{tag}: tape {code}: lost {result.lost}, duplicated {result.duplicated},"
                f" foreign {result.foreign}"
            )
