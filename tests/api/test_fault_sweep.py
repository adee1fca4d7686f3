"""A scripted session through the API with each kind of fault at many commands.

Robot load, five records and a filemark, rewind, read back, unload: it either ends
exactly as without the fault, or raises a typed ambiguity (or in-doubt) error with the
tape holding a prefix of the records; never a duplicate, a loss or an untyped error.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

import tapepath
from tapepath.errors import AmbiguityError, PathFailureError, ReservationConflictError
from tapepath.testing import (
    AtCommand,
    BlackHole,
    Busy,
    ControlPathFailure,
    Delay,
    DriveReset,
    FaultPlan,
    InjectUnitAttention,
    LinkDown,
    PowerCycle,
    ReservationConflict,
    ResponseLost,
    TaskSetFull,
    VirtualClock,
    VirtualLibrary,
)
from tapepath.testing.faults import Fault

RECORDS = [b"rec%d" % i for i in range(5)]
_names = itertools.count()

Maker = Callable[[str, int], Fault | None]
FAULTS: dict[str, Maker] = {
    "link_down": lambda dev, n: LinkDown(device=dev, port=0, trigger=AtCommand(n)),
    "black_hole": lambda dev, n: BlackHole(device=dev, port=0, trigger=AtCommand(n), times=1),
    "delay": lambda dev, n: Delay(seconds=10, device=dev, port=0, trigger=AtCommand(n), times=1),
    "busy": lambda dev, n: Busy(device=dev, port=0, trigger=AtCommand(n), times=2),
    "task_set_full": lambda dev, n: TaskSetFull(device=dev, port=0, trigger=AtCommand(n), times=1),
    "response_lost": lambda dev, n: ResponseLost(device=dev, port=0, trigger=AtCommand(n), times=1),
    "unit_attention": lambda dev, n: InjectUnitAttention(
        asc=0x29, ascq=0, device=dev, trigger=AtCommand(n), times=1
    ),
    "power_cycle": lambda dev, n: PowerCycle(device=dev, trigger=AtCommand(n), times=1),
    "drive_reset": lambda dev, n: (
        DriveReset(device=dev, trigger=AtCommand(n), times=1) if dev == "drive0" else None
    ),
    "control_path": lambda dev, n: (
        ControlPathFailure(device=dev, drive_too=False, trigger=AtCommand(n))
        if dev == "changer"
        else None
    ),
    "reservation_conflict": lambda dev, n: ReservationConflict(
        device=dev, port=0, trigger=AtCommand(n), times=1
    ),
}


def _session(vlib: VirtualLibrary) -> None:
    with (
        tapepath.open_library(vlib.changer_urls(), monitor=False, timeout=5) as lib,
        tapepath.open_drive(vlib.drive_urls(0), monitor=False, timeout=5, long_timeout=5) as d,
    ):
        lib.load(1, 0)
        d.rewind()
        for r in RECORDS:
            d.write(r)
        d.write_filemarks(1)
        d.rewind()
        got = [d.read(100) for _ in range(len(RECORDS) + 1)]
        assert got == [*RECORDS, b""]
        d.unload()
        lib.unload(0)


class TestFaultSweep:
    """Every fault kind of the FaultPlan, on the changer and on the drive."""

    @pytest.mark.parametrize("device", ["changer", "drive0"])
    @pytest.mark.parametrize("fault", sorted(FAULTS))
    def test_fault_at_every_third_command(self, fault: str, device: str) -> None:
        """Each outcome is exact, or a typed error with no record written twice."""
        fired = 0
        for n in range(1, 28, 3):
            f = FAULTS[fault](device, n)
            if f is None:
                continue
            with VirtualLibrary(f"sweep-{next(_names)}", clock=VirtualClock()) as vlib:
                plan = FaultPlan()
                plan.add(f)
                vlib.install(plan)
                allowed: tuple[type[Exception], ...] = (AmbiguityError, PathFailureError)
                if fault == "reservation_conflict":
                    allowed = (*allowed, ReservationConflictError)
                try:
                    _session(vlib)
                except allowed:
                    fired += bool(plan.fired)
                    records = vlib.cartridge("TP0001L8").image.records()
                    assert records == RECORDS[: len(records)], (fault, device, n, records)
                    continue
                records = vlib.cartridge("TP0001L8").image.records()
                assert records == RECORDS, (fault, device, n, records)
                assert vlib.where("TP0001L8") == vlib.slot_address(0), (fault, device, n)
                fired += bool(plan.fired)
        if FAULTS[fault](device, 1) is not None:
            assert fired >= 5, f"{fault} on {device} fired in only {fired} sessions"
