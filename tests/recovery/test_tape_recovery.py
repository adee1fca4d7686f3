"""TapeRecovery against the VirtualLibrary and FaultPlan: every synchronise branch."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from tapepath.errors import AmbiguousPositionError
from tapepath.multipath import MultipathDevice
from tapepath.recovery import PositionAmbiguousError, TapeRecovery, TrackedPosition
from tapepath.scsi.mode import BlockDescriptor, ModeParameters, ModeSelect6
from tapepath.scsi.position import PositionShort
from tapepath.scsi.reservations import (
    PersistentReserveIn,
    PersistentReserveOut,
    PrInAction,
    PrOutAction,
    PrOutParameters,
    ReadReservation,
)
from tapepath.scsi.tape import Read6, Rewind, Space6, Write6, WriteFilemarks6
from tapepath.testing.faults import (
    BlackHole,
    CommandInfo,
    Delay,
    DriveReset,
    FaultPlan,
    LinkDown,
    ResponseLost,
    When,
)
from tapepath.testing.library import VirtualLibrary
from tapepath.transport.base import Response, Transport
from tapepath.transport.registry import open_transport

from .support import library, send, tape_device

DAYS = [b"mon", b"tue", b"wed", b"thu", b"fri"]


def nth(opcode: int, n: int, port: int | None = None) -> When:
    """A trigger for the n-th command with ``opcode`` (on ``port``)."""
    seen = [0]

    def pred(info: CommandInfo) -> bool:
        if info.opcode != opcode or (port is not None and info.port != port):
            return False
        seen[0] += 1
        return seen[0] == n

    return When(pred)


def first_on(port: int) -> When:
    """A trigger for the first command on ``port``."""
    return When(lambda info: info.port == port)


def write(dev: MultipathDevice, data: bytes) -> Response:
    return send(dev, Write6.for_data(data).to_bytes(), data_out=data)


def transitions(logs: list[dict[str, Any]]) -> list[str]:
    return [e["trigger"] for e in logs if e["event"] == "recovery_transition"]


@pytest.fixture
def lib() -> Any:
    with library(slots=4, drives=1) as vl:
        vl.insert(vl.drive_address(0), "RC0001L8")
        yield vl


def start(lib: VirtualLibrary, *faults: Any, **kw: Any) -> tuple[MultipathDevice, TapeRecovery]:
    hook = TapeRecovery(**kw)
    dev = tape_device(lib, hook)
    assert send(dev, Rewind().to_bytes()).ok
    lib.install(FaultPlan(seed=1).add(*faults))
    return dev, hook


class TestWrites:
    """A WRITE whose path failed: done once, whatever the fault."""

    def test_effect_there_is_completed(self, lib: VirtualLibrary) -> None:
        """The response was lost after the record was written: completed, not resent."""
        dev, hook = start(lib, ResponseLost(device="drive0", port=0, trigger=nth(0x0A, 2)))
        with capture_logs() as logs:
            results = [write(dev, d) for d in DAYS[:3]]
        assert all(r.ok for r in results)
        assert results[1].transferred == 3
        assert lib.tape(0).records() == DAYS[:3]  # type: ignore[union-attr]
        assert hook.stats.completed == 1
        assert hook.stats.resent == 0
        assert "effect_present" in transitions(logs)
        assert hook.position == TrackedPosition(3, 0, True)

    def test_not_sent_is_resent(self, lib: VirtualLibrary) -> None:
        """The link was down before the WRITE left: resent on the other port."""
        dev, hook = start(lib, LinkDown(device="drive0", port=0, trigger=nth(0x0A, 2)))
        assert all(write(dev, d).ok for d in DAYS[:3])
        assert lib.tape(0).records() == DAYS[:3]  # type: ignore[union-attr]
        assert hook.stats.resent == 1
        assert hook.stats.completed == 0

    def test_timed_out_not_run_is_resent(self, lib: VirtualLibrary) -> None:
        """A black hole (maybe executed, in fact not): the position proves it; resent."""
        dev, hook = start(lib, BlackHole(device="drive0", port=0, trigger=nth(0x0A, 2), times=1))
        with capture_logs() as logs:
            assert all(write(dev, d).ok for d in DAYS[:3])
        assert lib.tape(0).records() == DAYS[:3]  # type: ignore[union-attr]
        assert "state_read" in transitions(logs)
        assert hook.stats.resent == 1

    def test_filemarks_effect_there(self, lib: VirtualLibrary) -> None:
        """WRITE FILEMARKS 2 ran, its answer was lost: completed; the file number follows."""
        dev, hook = start(lib, ResponseLost(device="drive0", port=0, trigger=nth(0x10, 1)))
        write(dev, b"rec")
        assert send(dev, WriteFilemarks6(2).to_bytes()).ok
        assert hook.stats.completed == 1
        assert hook.position == TrackedPosition(3, 2, True)
        tape = lib.tape(0)
        assert tape is not None
        assert len(tape.objects) == 3


class TestAmbiguity:
    """Where the position proves nothing: the typed error, nothing resent."""

    def test_other_movement(self, lib: VirtualLibrary) -> None:
        """A SPACE 4 that stopped at a filemark after 3: neither before nor after."""
        dev, hook = start(lib)
        for d in (b"r1", b"r2"):
            write(dev, d)
        send(dev, WriteFilemarks6(1).to_bytes())
        write(dev, b"r3")
        send(dev, Rewind().to_bytes())
        lib.install(
            FaultPlan(seed=2).add(ResponseLost(device="drive0", port=0, trigger=nth(0x11, 1)))
        )
        with pytest.raises(AmbiguousPositionError) as info:
            send(dev, Space6(0, 4).to_bytes())
        err = info.value
        assert isinstance(err, PositionAmbiguousError)
        assert err.last_known == TrackedPosition(0, 0, True)
        assert err.expected == 4
        assert "block 3" in err.seen
        assert err.command[0] == 0x11
        assert "block 0" in str(err)
        assert "nothing was resent" in str(err)
        assert lib.position(0).block == 3  # type: ignore[union-attr]  # not spaced again
        assert not hook.position.known
        assert hook.stats.ambiguous == 1

    def test_no_position_known_before(self, lib: VirtualLibrary) -> None:
        """Nobody ever rewound or read the position: a lost WRITE cannot be judged."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        send(dev, bytes(6))  # the new nexus's unit attention first
        lib.install(FaultPlan().add(ResponseLost(device="drive0", port=0, trigger=nth(0x0A, 1))))
        with pytest.raises(AmbiguousPositionError) as info:
            write(dev, b"once")
        assert not info.value.last_known.known  # type: ignore[attr-defined]
        assert lib.tape(0).records() == [b"once"]  # type: ignore[union-attr]

    @pytest.mark.parametrize("refuse_long", [False, True])
    def test_device_reports_unknown(self, lib: VirtualLibrary, refuse_long: bool) -> None:
        """READ POSITION as tgtd answers it (long form zeros without BOP; short form
        BYCU/LOLU) after a lost WRITE: ambiguous, the record written once."""
        urls = lib.drive_urls(0)
        hook = TapeRecovery()
        paths: list[Transport] = [
            open_transport(urls[0]),
            TgtdLikePosition(open_transport(urls[1]), refuse_long=refuse_long),
        ]
        dev = MultipathDevice(paths, name="drive0", recovery=hook, handler=None, monitor=False)
        send(dev, Rewind().to_bytes())
        lib.install(FaultPlan().add(ResponseLost(device="drive0", port=0, trigger=nth(0x0A, 2))))
        write(dev, b"mon")
        with pytest.raises(AmbiguousPositionError) as info:
            write(dev, b"tue")
        assert "unknown" in info.value.seen  # type: ignore[attr-defined]
        assert info.value.last_known == TrackedPosition(1, 0, True)  # type: ignore[attr-defined]
        assert lib.tape(0).records() == [b"mon", b"tue"]  # type: ignore[union-attr]


class TgtdLikePosition(Transport):
    """A path whose drive answers READ POSITION as tgtd does: the long form all zeros
    (``refuse_long``: ILLEGAL REQUEST instead), the short form with BYCU and LOLU set."""

    scheme = "tgtdlike"

    def __init__(self, inner: Transport, *, refuse_long: bool = False) -> None:
        self.inner = inner
        self.refuse_long = refuse_long
        self.url = getattr(inner, "url", "tgtdlike")

    def execute(
        self, cdb: bytes, *, data_out: bytes = b"", data_in_len: int = 0, timeout: float = 30.0
    ) -> Response:
        if cdb[0] == 0x34:
            if cdb[1] & 0x1F == 6 and not self.refuse_long:
                zeros = bytes(32)[:data_in_len]
                return Response(data=zeros, transferred=len(zeros))
            if cdb[1] & 0x1F == 6:
                sense = bytes((0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0))
                return Response(status=2, sense=sense)
            data = PositionShort(bycu=True, lolu=True).to_bytes()
            return Response(data=data[:data_in_len], transferred=min(20, data_in_len))
        return self.inner.execute(cdb, data_out=data_out, data_in_len=data_in_len, timeout=timeout)

    def close(self) -> None:
        self.inner.close()


class TestReset:
    """A drive reset between the failure and the recovery: LOCATE back first."""

    def test_write_ran_then_reset(self, lib: VirtualLibrary) -> None:
        """The record was written, then the drive reset (rewound): LOCATE back, the
        record read back equals the data, completed without a second copy."""
        dev, hook = start(
            lib,
            ResponseLost(device="drive0", port=0, trigger=nth(0x0A, 4)),
            DriveReset(device="drive0", port=1, trigger=first_on(1)),
        )
        with capture_logs() as logs:
            assert all(write(dev, d).ok for d in DAYS)
        assert lib.tape(0).records() == DAYS  # type: ignore[union-attr]
        steps = transitions(logs)
        assert steps.index("position_lost") < steps.index("position_restored")
        assert "effect_present" in steps
        assert hook.position == TrackedPosition(5, 0, True)

    def test_write_not_sent_then_reset(self, lib: VirtualLibrary) -> None:
        """The WRITE never left, the drive reset: LOCATE back, then resend."""
        dev, hook = start(
            lib,
            LinkDown(device="drive0", port=0, trigger=nth(0x0A, 4)),
            DriveReset(device="drive0", port=1, trigger=first_on(1)),
        )
        with capture_logs() as logs:
            assert all(write(dev, d).ok for d in DAYS)
        assert lib.tape(0).records() == DAYS  # type: ignore[union-attr]
        assert "position_restored" in transitions(logs)
        assert hook.stats.resent == 1

    def test_write_at_bop_then_reset(self, lib: VirtualLibrary) -> None:
        """At block 0 a reset's rewind looks like "not run": the record is read to tell."""
        dev, hook = start(
            lib,
            ResponseLost(device="drive0", port=0, trigger=nth(0x0A, 1)),
            DriveReset(device="drive0", port=1, trigger=first_on(1)),
        )
        assert all(write(dev, d).ok for d in DAYS[:2])
        assert lib.tape(0).records() == DAYS[:2]  # type: ignore[union-attr]
        assert hook.stats.completed == 1


class TestRead:
    """A READ whose answer was lost: its data is gone, so LOCATE back and read again."""

    def test_read_again(self, lib: VirtualLibrary) -> None:
        """The caller gets the record it asked for; the next READ gets the next one."""
        dev, hook = start(lib)
        for d in DAYS[:3]:
            write(dev, d)
        send(dev, Rewind().to_bytes())
        lib.install(FaultPlan().add(ResponseLost(device="drive0", port=0, trigger=nth(0x08, 2))))
        got = [send(dev, Read6(3).to_bytes(), data_in_len=3).data for _ in range(3)]
        assert got == DAYS[:3]
        assert hook.position == TrackedPosition(3, 0, True)


class TestNotify:
    """What the new nexus must get back: PREVENT, the block size, the reservation."""

    def test_prevent_and_block_size_restored(self, lib: VirtualLibrary) -> None:
        """Fixed 4-byte blocks and PREVENT set through port 0; port 0 is cut and the block
        size lost meanwhile: both are restored on port 1 and the WRITE goes on."""

        def lose_block_size(info: CommandInfo) -> bool:
            if info.port == 1:
                lib.drive(0).block_size = 0  # as a reset to defaults would
                return True
            return False

        dev, hook = start(lib)
        assert send(dev, bytes((0x1E, 0, 0, 0, 1, 0))).ok
        params = ModeParameters(block_descriptors=[BlockDescriptor(block_length=4)])
        cdb, data = ModeSelect6.for_parameters(params)
        assert send(dev, cdb.to_bytes(), data_out=data).ok
        assert hook.state.mode.block_length == 4
        lib.install(
            FaultPlan().add(
                LinkDown(device="drive0", port=0, trigger=nth(0x0A, 2)),
                Delay(seconds=0, device="drive0", port=1, trigger=When(lose_block_size)),
            )
        )
        for block in (b"AAAA", b"BBBBCCCC"):
            r = send(dev, Write6.for_data(block, block_length=4).to_bytes(), data_out=block)
            assert r.ok, r
        assert lib.drive(0).block_size == 4
        assert lib.drive(0).prevent
        assert lib.tape(0).records() == [b"AAAA", b"BBBB", b"CCCC"]  # type: ignore[union-attr]

    @pytest.mark.parametrize("all_tg_pt", [False, True])
    def test_reservation_moved(self, lib: VirtualLibrary, all_tg_pt: bool) -> None:
        """An EXCLUSIVE ACCESS reservation through port 0 moves to port 1 (REGISTER AND
        IGNORE EXISTING KEY, PREEMPT); with ALL_TG_PT nothing needs to move."""
        key = 0x5EED
        dev, _hook = start(lib)
        reg, data = PersistentReserveOut.for_parameters(
            PrOutAction.REGISTER,
            PrOutParameters(service_action_reservation_key=key, all_tg_pt=all_tg_pt),
        )
        assert send(dev, reg.to_bytes(), data_out=data).ok
        res, data = PersistentReserveOut.for_parameters(
            PrOutAction.RESERVE, PrOutParameters(reservation_key=key), pr_type=3
        )
        assert send(dev, res.to_bytes(), data_out=data).ok
        lib.install(FaultPlan().add(LinkDown(device="drive0", port=0, trigger=nth(0x0A, 1))))
        with capture_logs() as logs:
            assert write(dev, b"mine").ok
        assert lib.tape(0).records() == [b"mine"]  # type: ignore[union-attr]
        notified = [e for e in logs if e.get("trigger") == "notified"]
        assert notified
        assert notified[0]["reservation_moved"] is (not all_tg_pt)
        pr_in = PersistentReserveIn(PrInAction.READ_RESERVATION)
        r = send(dev, pr_in.to_bytes(), data_in_len=pr_in.allocation_length)
        held = ReadReservation.from_bytes(r.data)
        assert held.reservation_key == key
        assert held.pr_type == 3


class TestWaiters:
    """Commands submitted during a recovery wait, then go in order, or fail with it."""

    def _run(
        self, lib: VirtualLibrary, dev: MultipathDevice, first: bytes, later: list[bytes]
    ) -> tuple[list[Any], Any]:
        entered, release = threading.Event(), threading.Event()

        def hold(info: CommandInfo) -> bool:
            if info.port == 1:
                entered.set()
                release.wait(10)
                return True
            return False

        lib.install(
            FaultPlan().add(
                ResponseLost(device="drive0", port=0, trigger=nth(0x0A, 1)),
                Delay(seconds=0, device="drive0", port=1, trigger=When(hold)),
            )
        )
        results: list[Any] = [None] * len(later)
        first_result: list[Any] = [None]

        def go(slot: list[Any], i: int, data: bytes) -> None:
            try:
                slot[i] = write(dev, data)
            except Exception as exc:
                slot[i] = exc

        a = threading.Thread(target=go, args=(first_result, 0, first))
        a.start()
        assert entered.wait(10)
        threads = []
        for i, data in enumerate(later):
            t = threading.Thread(target=go, args=(results, i, data))
            t.start()
            threads.append(t)
            _until(lambda n=i + 1: dev.gate.queued >= n)
        release.set()
        for t in [a, *threads]:
            t.join(10)
        return results, first_result[0]

    def test_waiting_commands_keep_order(self, lib: VirtualLibrary) -> None:
        """A WRITE is recovered while two more queue: the tape has all three, in order."""
        dev, _hook = start(lib)
        results, first = self._run(lib, dev, b"first", [b"second", b"third"])
        assert first.ok
        assert all(r.ok for r in results)
        assert lib.tape(0).records() == [b"first", b"second", b"third"]  # type: ignore[union-attr]

    def test_failed_recovery_fails_waiters(self, lib: VirtualLibrary) -> None:
        """The recovery ends ambiguous: the queued WRITEs fail with the same error, unsent."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)  # no rewind: the position is not known
        send(dev, bytes(6))
        results, first = self._run(lib, dev, b"first", [b"second", b"third"])
        assert isinstance(first, AmbiguousPositionError)
        assert all(r is first for r in results)
        assert lib.tape(0).records() == [b"first"]  # type: ignore[union-attr]
        # the application decides; after that the device works again
        assert send(dev, Rewind().to_bytes()).ok


def _until(cond: Callable[[], bool], limit: float = 10.0) -> None:
    import time  # noqa: PLC0415

    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.001)


class TestLoadUnload:
    """LOAD UNLOAD: an UNLOAD is judged by TEST UNIT READY, a LOAD is resent."""

    def test_unload_done_is_completed(self, lib: VirtualLibrary) -> None:
        """The drive unloaded, the answer was lost: completed (no medium), not resent."""
        dev, hook = start(lib, ResponseLost(device="drive0", port=0, trigger=nth(0x1B, 1)))
        assert send(dev, bytes((0x1B, 0, 0, 0, 0, 0))).ok
        assert not lib.drive(0).loaded
        assert hook.stats.completed == 1
        assert not hook.position.known

    def test_unload_not_run_is_resent(self, lib: VirtualLibrary) -> None:
        """No answer and still loaded: resent."""
        dev, hook = start(lib, BlackHole(device="drive0", port=0, trigger=nth(0x1B, 1), times=1))
        assert send(dev, bytes((0x1B, 0, 0, 0, 0, 0))).ok
        assert not lib.drive(0).loaded
        assert hook.stats.resent == 1

    def test_load_is_resent(self, lib: VirtualLibrary) -> None:
        """A LOAD whose answer was lost is sent again; the tape is at BOP either way."""
        dev, hook = start(lib)
        assert send(dev, bytes((0x1B, 0, 0, 0, 0, 0))).ok
        lib.install(FaultPlan().add(ResponseLost(device="drive0", port=0, trigger=nth(0x1B, 1))))
        assert send(dev, bytes((0x1B, 0, 0, 0, 1, 0))).ok
        assert lib.drive(0).loaded
        assert hook.stats.resent == 1
        assert hook.position == TrackedPosition(0, 0, True)


class TestFixedReset:
    """Fixed-block WRITEs after a reset are checked by reading their blocks back."""

    def test_fixed_write_ran_then_reset(self, lib: VirtualLibrary) -> None:
        """Two 4-byte blocks written, the answer lost, the drive reset: read back and
        found equal, so completed; the tape holds them once."""
        dev, hook = start(lib)
        params = ModeParameters(block_descriptors=[BlockDescriptor(block_length=4)])
        cdb, data = ModeSelect6.for_parameters(params)
        assert send(dev, cdb.to_bytes(), data_out=data).ok
        lib.install(
            FaultPlan().add(
                ResponseLost(device="drive0", port=0, trigger=nth(0x0A, 2)),
                DriveReset(device="drive0", port=1, trigger=first_on(1)),
            )
        )
        for blocks in (b"AAAABBBB", b"CCCCDDDD", b"EEEE"):
            r = send(dev, Write6.for_data(blocks, block_length=4).to_bytes(), data_out=blocks)
            assert r.ok, r
        assert lib.tape(0).records() == [b"AAAA", b"BBBB", b"CCCC", b"DDDD", b"EEEE"]  # type: ignore[union-attr]
        assert hook.stats.completed == 1
        assert hook.position == TrackedPosition(5, 0, True)
