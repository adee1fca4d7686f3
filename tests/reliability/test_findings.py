"""What the fault campaign found: minimal reproductions of its failures.

Each test is the smallest scenario that shows one failure of the campaign, written as
the behaviour the library owes. A known, unfixed failure is marked
``xfail(strict=True)`` (the suite turns red on XPASS the day it is fixed, and the mark
must go); a fixed one stays as a plain regression test.
"""

from __future__ import annotations

import time

import pytest

import tapepath
from tapepath.errors import AmbiguityError
from tapepath.testing import (
    FILEMARK,
    AtCommand,
    BlackHole,
    DriveReset,
    FaultPlan,
    InjectUnitAttention,
    VirtualClock,
    VirtualLibrary,
    When,
)

MODE_SENSE_6 = 0x1A


class TestResetDuringRecoveryOfAQuery:
    """A drive reset met while recovering a non-positional command (campaign seed 1, sim
    scenario 975: ``python -m tapepath.testing.campaign --seed 1 --scenarios 1000``).

    Until the drive's reset handling of 01:58 UTC (2c4631b) the WRITE went at BOT over
    the filemark written before and returned normally. Now a regression test.
    """

    def test_write_after_reset_keeps_earlier_objects(self) -> None:
        """The MODE SENSE before a WRITE meets a black hole; the other port finds the
        drive reset (tape rewound). The WRITE must go after the filemark, or raise."""
        with VirtualLibrary("finding-reset-query", clock=VirtualClock()) as vlib:
            vlib.insert(vlib.drive_address(0), "FD0001L8")
            with tapepath.open_drive(vlib.drive_urls(0), monitor=False, timeout=5) as d:
                d.rewind()
                d.write_filemarks(1)
                plan = FaultPlan().add(
                    BlackHole(
                        device="drive0",
                        port=0,
                        trigger=When(lambda c: c.opcode == MODE_SENSE_6),
                        times=1,
                    ),
                    DriveReset(device="drive0", port=1, trigger=AtCommand(1)),
                )
                vlib.install(plan)
                try:
                    d.write(b"second")
                except AmbiguityError:
                    raised = True
                else:
                    raised = False
                assert len(plan.fired) == 2  # both faults met the commands they target
                objects = vlib.tape(0).objects
        assert raised or objects == [FILEMARK, b"second"], objects


class TestDeadlineThroughAFailover:
    """A black hole on the first command of a load, under a 5 s timeout (campaign seed 11,
    sim scenario 1: a load took 30 s on the virtual clock while recovery work in
    progress probed with its own 30 s timeout)."""

    def test_load_stays_within_its_bound(self) -> None:
        """The load completes on the other control path within three timeouts plus 2 s."""
        clock = VirtualClock()
        with VirtualLibrary("finding-deadline", clock=clock, slots=8, cartridges=6) as vlib:
            lib = tapepath.open_library(vlib.changer_urls(), monitor=False, timeout=5.0)
            try:
                plan = FaultPlan().add(
                    BlackHole(device="changer", port=0, trigger=AtCommand(1), times=2)
                )
                vlib.install(plan)
                start_virtual, start_real = clock.now(), time.monotonic()
                lib.load(1, 0)
                took = (clock.now() - start_virtual) + (time.monotonic() - start_real)
            finally:
                lib.close()
            assert plan.fired
            assert vlib.where(vlib.inventory()[vlib.drive_address(0)] or "") == (
                vlib.drive_address(0)
            )
        assert took <= 3 * 5.0 + 2.0


@pytest.mark.needs("tgtd", "tgtadm", "tgtimg")
class TestTgtdShortRecordRead:
    """A variable-mode READ of a record shorter than the allocation, on tgtd 1.0.85
    (campaign seed 1, tgtd scenario 359: "drive 1 read ... 2044 bytes, the model says
    2052 bytes"). tgtd sends (allocation - record) data bytes; until 8e9f8c7 TapeDrive.read
    returned them as the record. Now a regression test."""

    def test_record_over_half_the_allocation(self) -> None:
        """A 2052-byte record read with read(4096) comes back whole, or raises."""
        from tapepath.errors import TapepathError  # noqa: PLC0415
        from tapepath.testing.tgtd import TgtdInstance  # noqa: PLC0415

        record = bytes(range(256)) * 8 + b"tail"
        with TgtdInstance() as tgt:
            lay = tgt.configure_vtl(drives=1, slots=2, cartridge_mb=4)
            with tapepath.open_library([tgt.url(lay.changer_lun)], monitor=False) as lib:
                lib.load(1, 0)
                with tapepath.open_drive([tgt.url(lay.drive_luns[0])], monitor=False) as d:
                    d.rewind()
                    d.write(record)
                    d.rewind()
                    try:
                        got: bytes | None = d.read(4096)
                    except TapepathError:
                        got = None
        assert got is None or got == record, len(got)


class TestSwitchNotifyWithinTheCallersTime:
    """A notify sent for a path switch (no failed command) waited the recovery's own
    30 s command timeout on a black hole, where the waiting call had 5 s (campaign seed
    3, sim scenario 696: "rewind took 30.00 s (bound 17.0 s)"). The device now hands the
    caller's timeout to the hook's ``on_path_switch`` / ``before_command``, which bound
    their commands by it. Now a regression test."""

    def test_campaign_scenario(self) -> None:
        """The scenario itself runs clean: no call over its bound, nothing lost."""
        from tapepath.testing.campaign.report import Tally  # noqa: PLC0415
        from tapepath.testing.campaign.runner import scenario_seed  # noqa: PLC0415
        from tapepath.testing.campaign.sim import run_sim_scenario  # noqa: PLC0415

        tally = Tally()
        run_sim_scenario(scenario_seed(3, 696), tally)
        assert tally.deadline_overruns == 0, tally.failures
        assert tally.ok, tally.failures

    def test_old_style_hooks_still_called(self) -> None:
        """A hook written without the timeout keyword is called without it."""
        from tapepath.multipath.hooks import with_timeout  # noqa: PLC0415

        seen: list[tuple[object, ...]] = []

        def old(device: object, old: object, new: object) -> object:
            seen.append((device, old, new))
            return new

        def new(device: object, old: object, new: object, *, timeout: float) -> object:
            seen.append((device, old, new, timeout))
            return new

        adapted_old = with_timeout(old)
        adapted_new = with_timeout(new)
        assert adapted_old is not None
        assert adapted_new is not None
        assert adapted_new is new
        adapted_old("d", "a", "b", timeout=5.0)
        adapted_new("d", "a", "b", timeout=5.0)
        assert seen == [("d", "a", "b"), ("d", "a", "b", 5.0)]


class TestActivationWithinTheCallersTime:
    """Recovery activating a passive changer path waited out an ALUA transition by the
    transition policy alone (up to 30 x 2 s), where the waiting call had 5 s (campaign
    seed 4, sim scenario 212: "move took 20.00 s (bound 17.0 s)"). The device now
    hands the handler the time left (``activate(..., timeout=)``), and the ALUA handler
    stops waiting there. Now a regression test."""

    def test_campaign_scenario(self) -> None:
        """The scenario runs clean: no call over its bound, nothing lost."""
        from tapepath.testing.campaign.report import Tally  # noqa: PLC0415
        from tapepath.testing.campaign.runner import scenario_seed  # noqa: PLC0415
        from tapepath.testing.campaign.sim import run_sim_scenario  # noqa: PLC0415

        tally = Tally()
        run_sim_scenario(scenario_seed(4, 212), tally)
        assert tally.deadline_overruns == 0, tally.failures
        assert tally.ok, tally.failures


class TestMediumChangedWithoutALoad:
    """A "medium may have changed" unit attention while the tape stayed where it was
    (campaign seed 11, sim scenario 11534828: ``python -m tapepath.testing.campaign
    --seed 11 --scenarios 1000``). A new I_T nexus can report it without any load.

    The drive took the report for a load and counted from the beginning of the tape; a
    reset later made it locate back to block 1 instead of 3, and the WRITE that followed
    went over a filemark and a record written before, returning normally.
    """

    def test_write_after_medium_changed_then_reset(self) -> None:
        """28/00 on a WRITE after a filemark, then a drive reset: nothing is lost."""
        with VirtualLibrary("finding-medium-changed", clock=VirtualClock()) as vlib:
            vlib.insert(vlib.drive_address(0), "FD0002L8")
            with tapepath.open_drive(vlib.drive_urls(0), monitor=False, timeout=5) as d:
                d.rewind()
                d.write(b"first")
                d.write_filemarks(1)
                vlib.install(
                    FaultPlan().add(
                        InjectUnitAttention(
                            device="drive0", trigger=AtCommand(1), asc=0x28, ascq=0x00
                        )
                    )
                )
                d.write(b"second")
                vlib.install(FaultPlan().add(DriveReset(device="drive0", trigger=AtCommand(1))))
                try:
                    d.write(b"third")
                except AmbiguityError:
                    raised = True
                else:
                    raised = False
                objects = vlib.tape(0).objects
        assert objects[:3] == [b"first", FILEMARK, b"second"], objects
        assert raised or objects == [b"first", FILEMARK, b"second", b"third"], objects

    def test_real_load_still_counts_from_the_beginning(self) -> None:
        """After a load, the first WRITE goes at the beginning of the tape, as before."""
        with VirtualLibrary("finding-medium-loaded", clock=VirtualClock()) as vlib:
            lib = tapepath.open_library(vlib.changer_urls(), monitor=False, timeout=5)
            try:
                lib.load(slot=1, drive=0)
                with tapepath.open_drive(vlib.drive_urls(0), monitor=False, timeout=5) as d:
                    d.write(b"at the beginning")
                    assert d.position().block == 1
                objects = vlib.tape(0).objects
            finally:
                lib.close()
        assert objects == [b"at the beginning"], objects
