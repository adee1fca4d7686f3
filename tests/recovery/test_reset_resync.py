"""A power on or reset met anywhere: the nexus settings and the tape position come back
before the next command that depends on them, or the typed ambiguity error is raised.

These go through ``MultipathDevice`` + ``TapeRecovery`` alone (no ``TapeDrive``): the
recovery layer must protect any caller of the device.
"""

from __future__ import annotations

from typing import Any

import pytest

from tapepath.errors import AmbiguousPositionError
from tapepath.multipath import MultipathDevice
from tapepath.multipath.hooks import ResendIfSafe
from tapepath.recovery import TapeRecovery, TrackedPosition
from tapepath.recovery.tracking import TapeState
from tapepath.scsi.mode import BlockDescriptor, ModeParameters, ModeSelect6
from tapepath.scsi.position import ReadPosition
from tapepath.scsi.reservations import (
    PersistentReserveIn,
    PersistentReserveOut,
    PrInAction,
    PrOutAction,
    PrOutParameters,
    ReadReservation,
)
from tapepath.scsi.tape import Locate10, Read6, Rewind, Space6, Write6, WriteFilemarks6
from tapepath.testing import FILEMARK
from tapepath.testing.faults import AtCommand, BlackHole, DriveReset, FaultPlan, PowerCycle, When
from tapepath.testing.library import VirtualLibrary
from tapepath.transport.base import Outcome, Response

from .support import library, send, tape_device

KEY = 0x7A9E0001
MODE_SENSE_6 = bytes((0x1A, 0, 0x3F, 0, 0xFF, 0))
POWER_ON_SENSE = bytes((0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0))


@pytest.fixture
def lib() -> Any:
    with library(slots=4, drives=1) as vl:
        vl.insert(vl.drive_address(0), "RS0001L8")
        yield vl


def write(dev: MultipathDevice, data: bytes) -> Response:
    return send(dev, Write6.for_data(data).to_bytes(), data_out=data)


def filemark(dev: MultipathDevice) -> Response:
    return send(dev, WriteFilemarks6(1).to_bytes())


def read(dev: MultipathDevice) -> bytes:
    return send(dev, Read6(64).to_bytes(), data_in_len=64).data


def record_file_1(dev: MultipathDevice) -> None:
    """Tape: a, filemark, b, c; then positioned at the start of file 1 (block unknown)."""
    send(dev, Rewind().to_bytes())
    for step in (b"a", None, b"b", b"c"):
        assert (write(dev, step) if step else filemark(dev)).ok
    send(dev, Rewind().to_bytes())
    assert send(dev, Space6(1, 1).to_bytes()).ok


def query_recovery_meets_reset(lib: VirtualLibrary, dev: MultipathDevice) -> None:
    """MODE SENSE is black-holed on port 0; port 1 finds the drive reset (rewound)."""
    plan = FaultPlan().add(
        BlackHole(
            device="drive0",
            port=0,
            trigger=When(lambda c: c.opcode == MODE_SENSE_6[0]),
            times=1,
        ),
        DriveReset(device="drive0", port=1, trigger=AtCommand(1)),
    )
    lib.install(plan)
    r = dev.execute(MODE_SENSE_6, data_in_len=255, timeout=2.0)
    assert r.ok
    assert len(plan.fired) == 2
    lib.install(None)


class TestResetMetByTheRecoveryOfAQuery:
    """A reset found on the new path while recovering a command that does not move."""

    def test_the_next_write_goes_back_to_the_tracked_position(self, lib: VirtualLibrary) -> None:
        """The WRITE after the recovered MODE SENSE lands after the filemark, not at BOT."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        send(dev, Rewind().to_bytes())
        assert filemark(dev).ok
        query_recovery_meets_reset(lib, dev)
        assert lib.drive(0).position == 0  # the reset really rewound the tape
        assert write(dev, b"second").ok
        assert lib.tape(0).objects == [FILEMARK, b"second"]  # type: ignore[union-attr]
        assert hook.position == TrackedPosition(2, 1, True)

    def test_an_unknown_position_makes_the_next_write_ambiguous(self, lib: VirtualLibrary) -> None:
        """A READ after SPACE over a filemark: the block is not known and nothing finds
        it again; the WRITE raises, unsent, and keeps raising until REWIND settles it."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        record_file_1(dev)
        assert read(dev) == b"b"
        query_recovery_meets_reset(lib, dev)
        for _ in range(2):
            with pytest.raises(AmbiguousPositionError) as info:
                write(dev, b"over")
            assert info.value.command[0] == 0x0A
        with pytest.raises(AmbiguousPositionError):
            read(dev)
        assert lib.tape(0).objects == [b"a", FILEMARK, b"b", b"c"]  # type: ignore[union-attr]
        assert send(dev, Rewind().to_bytes()).ok
        assert read(dev) == b"a"

    def test_an_unknown_position_away_from_bop_is_the_drives_word(
        self, lib: VirtualLibrary
    ) -> None:
        """29/00 of a new nexus, no real reset, block unknown: the drive reports a
        position away from BOP, so it was not rewound; the READ goes on."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        record_file_1(dev)
        assert read(dev) == b"b"
        lib.install(
            FaultPlan().add(
                BlackHole(
                    device="drive0",
                    port=0,
                    trigger=When(lambda c: c.opcode == MODE_SENSE_6[0]),
                    times=1,
                )
            )
        )
        assert dev.execute(MODE_SENSE_6, data_in_len=255, timeout=2.0).ok
        assert read(dev) == b"c"
        assert hook.position == TrackedPosition(4, 1, True)

    def test_end_of_data_is_found_again(self, lib: VirtualLibrary) -> None:
        """Appending after SPACE to end of data (block unknown): after the reset the
        next WRITE goes to end of data again, not to BOT."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        record_file_1(dev)
        assert send(dev, Space6(3, 0).to_bytes()).ok  # to end of data: block unknown
        assert write(dev, b"d").ok
        assert not hook.position.known
        query_recovery_meets_reset(lib, dev)
        assert write(dev, b"e").ok
        objects = [b"a", FILEMARK, b"b", b"c", b"d", b"e"]
        assert lib.tape(0).objects == objects  # type: ignore[union-attr]

    def test_a_fresh_nexus_at_the_tracked_position_is_not_moved(self, lib: VirtualLibrary) -> None:
        """29/00 from a new nexus alone (no real reset): READ POSITION proves the tape is
        where it was, and no LOCATE is sent."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        send(dev, Rewind().to_bytes())
        assert write(dev, b"one").ok
        lib.install(
            FaultPlan().add(
                BlackHole(
                    device="drive0",
                    port=0,
                    trigger=When(lambda c: c.opcode == MODE_SENSE_6[0]),
                    times=1,
                )
            )
        )
        assert dev.execute(MODE_SENSE_6, data_in_len=255, timeout=2.0).ok
        sent: list[int] = []
        dev.paths[1].transport = _Recording(dev.paths[1].transport, sent)
        assert write(dev, b"two").ok
        assert 0x34 in sent  # it asked where the tape is
        assert 0x2B not in sent
        assert lib.tape(0).records() == [b"one", b"two"]  # type: ignore[union-attr]


class TestResetOnThePathInUse:
    """A power on or reset reported on the same path, with no failover."""

    def test_power_cycle_restores_the_block_size_and_the_position(
        self, lib: VirtualLibrary
    ) -> None:
        """Fixed 512-byte blocks set by MODE SELECT come back after a library power cycle
        reported on the WRITE, and the WRITE goes after the blocks written before."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        params = ModeParameters(block_descriptors=(BlockDescriptor(0, 0, 512),))
        cmd, data = ModeSelect6.for_parameters(params)
        assert send(dev, cmd.to_bytes(), data_out=data).ok
        send(dev, Rewind().to_bytes())
        blocks = bytes(range(256)) * 4
        wr = Write6.for_data(blocks, block_length=512).to_bytes()
        assert send(dev, wr, data_out=blocks).ok
        lib.install(FaultPlan().add(PowerCycle(device="drive0", port=0, trigger=AtCommand(1))))
        one = b"\x5a" * 512
        r = send(dev, Write6.for_data(one, block_length=512).to_bytes(), data_out=one)
        assert r.ok, r
        assert lib.drive(0).block_size == 512
        assert lib.tape(0).records() == [blocks[:512], blocks[512:], one]  # type: ignore[union-attr]
        assert hook.position == TrackedPosition(3, 0, True)
        assert hook.stats.resyncs == 1

    def test_power_cycle_takes_the_reservation_again(self, lib: VirtualLibrary) -> None:
        """A power loss dropped the persistent reservation (no APTPL): the key is
        registered and the reservation RESERVEd again before the WRITE goes."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        send(dev, Rewind().to_bytes())
        reg, data = PersistentReserveOut.for_parameters(
            PrOutAction.REGISTER, PrOutParameters(service_action_reservation_key=KEY)
        )
        assert send(dev, reg.to_bytes(), data_out=data).ok
        res, data = PersistentReserveOut.for_parameters(
            PrOutAction.RESERVE, PrOutParameters(reservation_key=KEY), pr_type=3
        )
        assert send(dev, res.to_bytes(), data_out=data).ok
        assert write(dev, b"a").ok
        lib.install(FaultPlan().add(PowerCycle(device="drive0", port=0, trigger=AtCommand(1))))
        assert write(dev, b"b").ok
        r = send(
            dev, PersistentReserveIn(PrInAction.READ_RESERVATION, 24).to_bytes(), data_in_len=24
        )
        held = ReadReservation.from_bytes(r.data)
        assert held.reservation_key == KEY
        assert held.pr_type == 3
        assert lib.tape(0).records() == [b"a", b"b"]  # type: ignore[union-attr]

    def test_reset_on_read_position_after_space_filemarks(self, lib: VirtualLibrary) -> None:
        """After SPACE over a filemark the block is unknown; a reset reported on the READ
        POSITION that follows: the next READ reads file 1 (REWIND, SPACE 1 filemark
        first), not file 0."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        record_file_1(dev)
        lib.install(FaultPlan().add(DriveReset(device="drive0", port=0, trigger=AtCommand(1))))
        r = dev.execute(ReadPosition.long().to_bytes(), data_in_len=32)
        assert r.check_condition  # 29/00
        assert lib.drive(0).position == 0
        r = send(dev, ReadPosition.long().to_bytes(), data_in_len=32)
        assert r.ok  # READ POSITION itself is not held back
        assert read(dev) == b"b"

    def test_a_reset_an_internal_command_consumed_is_not_missed(self, lib: VirtualLibrary) -> None:
        """The path monitor's TEST UNIT READY took the 29/00: the next WRITE still goes
        back to the tracked position first."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        send(dev, Rewind().to_bytes())
        for d in (b"a", b"b"):
            assert write(dev, d).ok
        lib.install(FaultPlan().add(DriveReset(device="drive0", port=0, trigger=AtCommand(1))))
        r = dev.execute_on(dev.paths[0], bytes(6))  # what a checker sends
        assert r.check_condition
        assert write(dev, b"c").ok
        assert lib.tape(0).records() == [b"a", b"b", b"c"]  # type: ignore[union-attr]

    def test_locate_back_refused_leaves_the_position_ambiguous(self, lib: VirtualLibrary) -> None:
        """A drive that cannot LOCATE back: the WRITE raises and nothing is written."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        send(dev, Rewind().to_bytes())
        assert write(dev, b"a").ok
        for p in dev.paths:
            p.transport = _NoLocate(p.transport)
        lib.install(FaultPlan().add(DriveReset(device="drive0", port=0, trigger=AtCommand(1))))
        r = dev.execute(ReadPosition.short().to_bytes(), data_in_len=20)
        assert r.check_condition  # the 29/00 of the reset
        with pytest.raises(AmbiguousPositionError, match="LOCATE back"):
            write(dev, b"b")
        with pytest.raises(AmbiguousPositionError):
            write(dev, b"b")
        assert lib.tape(0).records() == [b"a"]  # type: ignore[union-attr]

    def test_nothing_is_restored_when_nothing_was_set(self, lib: VirtualLibrary) -> None:
        """A fresh device: the 29/00 of the first command costs no extra command."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        sent: list[int] = []
        dev.paths[0].transport = _Recording(dev.paths[0].transport, sent)
        send(dev, Rewind().to_bytes())
        assert sent == [0x01, 0x01]  # the unit attention, then the REWIND itself
        assert hook.stats.resyncs == 0


class TestTrackedReset:
    """What TapeState remembers when a reset is reported."""

    def test_known_position_is_the_target(self) -> None:
        """A known position away from BOP is the one to return to."""
        s = TapeState(TrackedPosition(7, 1, True))
        s.observe(Write6.for_data(b"x").to_bytes(), b"x", Response(), b"")
        s.observe(bytes(6), b"", Response(status=2, sense=POWER_ON_SENSE), b"")
        assert s.reset_pending == (TrackedPosition(8, 1, True), False)
        assert not s.position.known
        assert s.nexus_reset

    def test_beginning_of_tape_needs_nothing(self) -> None:
        """At BOP a reset loses nothing of the position."""
        s = TapeState(TrackedPosition(0, 0, True))
        s.observe(bytes(6), b"", Response(status=2, sense=POWER_ON_SENSE), b"")
        assert s.reset_pending == (None, False)

    def test_unknown_after_a_motion_is_doubt(self) -> None:
        """A READ after SPACE filemarks: the position cannot be found again."""
        s = TapeState(TrackedPosition(3, 0, True))
        s.observe(Space6(1, 1).to_bytes(), b"", Response(), b"")
        s.observe(Read6(10).to_bytes(), b"", Response(data=b"x"), b"x")
        s.observe(bytes(6), b"", Response(status=2, sense=POWER_ON_SENSE), b"")
        assert s.reset_pending == (None, True)
        assert s.return_by is None

    def test_start_of_a_file_is_found_again(self) -> None:
        """Just after SPACE forward over filemarks: REWIND and SPACE find it again."""
        s = TapeState(TrackedPosition(3, 0, True))
        s.observe(Space6(1, 2).to_bytes(), b"", Response(), b"")
        s.observe(bytes(6), b"", Response(status=2, sense=POWER_ON_SENSE), b"")
        assert s.reset_pending == (None, False)
        assert s.return_by == ("file", 2)

    def test_after_a_write_end_of_data_is_found_again(self) -> None:
        """A write with the block unknown leaves the tape at end of data."""
        s = TapeState()
        s.observe(Space6(1, 1).to_bytes(), b"", Response(), b"")
        s.observe(Write6.for_data(b"x").to_bytes(), b"x", Response(), b"")
        s.observe(bytes(6), b"", Response(status=2, sense=POWER_ON_SENSE), b"")
        assert s.return_by == ("eod", 0)

    def test_unknown_without_motion_is_nothing(self) -> None:
        """Never positioned and never moved: nothing to lose."""
        s = TapeState()
        s.observe(bytes(6), b"", Response(status=2, sense=POWER_ON_SENSE), b"")
        assert s.reset_pending == (None, False)

    def test_a_locate_settles_it(self) -> None:
        """settle_reset with the position put back makes it known again."""
        s = TapeState(TrackedPosition(4, 0, True))
        s.observe(bytes(6), b"", Response(status=2, sense=POWER_ON_SENSE), b"")
        s.settle_reset(TrackedPosition(4, 0, True))
        assert s.reset_pending == (None, False)
        assert s.position == TrackedPosition(4, 0, True)
        s.observe(Locate10(block_address=9).to_bytes(), b"", Response(), b"")
        assert s.position.block == 9

    def test_a_path_failure_answer_is_not_a_reset(self) -> None:
        """Only a CHECK CONDITION with 29/xx counts."""
        s = TapeState(TrackedPosition(4, 0, True))
        s.observe(bytes(6), b"", Response(outcome=Outcome.TIMED_OUT), b"")
        assert s.reset_pending == (None, False)
        assert not s.nexus_reset


class _Recording:
    """A transport wrapper that records the opcodes sent through execute()."""

    def __init__(self, inner: Any, sent: list[int]) -> None:
        self._inner = inner
        self._sent = sent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def execute(self, cdb: bytes, **kw: Any) -> Response:
        self._sent.append(cdb[0])
        return self._inner.execute(cdb, **kw)  # type: ignore[no-any-return]


class _NoLocate(_Recording):
    """A drive without LOCATE (as tgtd): ILLEGAL REQUEST 20/00."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner, [])

    def execute(self, cdb: bytes, **kw: Any) -> Response:
        if cdb[0] in (0x2B, 0x92):
            sense = bytes((0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0))
            return Response(status=2, sense=sense)
        return super().execute(cdb, **kw)


class _Watcher(ResendIfSafe):
    """A hook that records before_command calls and answers as told."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.again = False
        self.fail: Exception | None = None

    def before_command(self, device: Any, path: Any, cdb: bytes) -> tuple[Any, bool]:
        self.calls.append(cdb[0])
        if self.fail is not None:
            raise self.fail
        return path, self.again


class TestBeforeCommandSeam:
    """MultipathDevice.request_resync() and the hook's before_command."""

    def test_called_only_when_asked(self, lib: VirtualLibrary) -> None:
        """Nothing before a request; the next command after one; again while asked."""
        hook = _Watcher()
        dev = tape_device(lib, hook)  # type: ignore[arg-type]
        send(dev, Rewind().to_bytes())
        assert hook.calls == []
        dev.request_resync()
        hook.again = True
        send(dev, bytes(6))
        hook.again = False
        send(dev, Rewind().to_bytes())
        send(dev, bytes(6))
        assert hook.calls == [0x00, 0x01]

    def test_a_raise_fails_the_command_unsent(self, lib: VirtualLibrary) -> None:
        """The error reaches the caller, the command is not sent, and the hook is asked
        again at the next command."""
        hook = _Watcher()
        dev = tape_device(lib, hook)  # type: ignore[arg-type]
        send(dev, Rewind().to_bytes())
        assert write(dev, b"a").ok
        dev.request_resync()
        hook.fail = AmbiguousPositionError("no")
        with pytest.raises(AmbiguousPositionError):
            write(dev, b"b")
        hook.fail = None
        assert write(dev, b"c").ok
        assert hook.calls == [0x0A, 0x0A]
        assert lib.tape(0).records() == [b"a", b"c"]  # type: ignore[union-attr]
