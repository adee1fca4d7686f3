"""FaultPlan: each fault, each trigger, determinism, and the pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tapepath
from tapepath.scsi.changer import MoveMedium
from tapepath.scsi.position import PositionLong, ReadPosition
from tapepath.scsi.tape import Write6
from tapepath.testing import (
    AtCommand,
    AtTime,
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
    RobotStop,
    TaskSetFull,
    VirtualClock,
    VirtualLibrary,
    When,
)
from tapepath.transport import Outcome, Status, Transport
from tests.testing.helpers import ready, sense_of

WRITE = Write6.for_data(b"rec")


@pytest.fixture
def lib() -> Iterator[VirtualLibrary]:
    with VirtualLibrary("flt", clock=VirtualClock(), move_time=10.0) as lib:
        lib.insert(lib.drive_address(0), "FL0001L8")
        yield lib


def block(t: Transport) -> int:
    r = t.execute(ReadPosition.long().to_bytes(), data_in_len=32)
    assert r.ok, r
    return PositionLong.from_bytes(r.data).logical_object_number


def write(t: Transport) -> object:
    return t.execute(WRITE.to_bytes(), data_out=b"rec")


class TestPathFaults:
    """Faults that break the path."""

    def test_link_down_at_command(self, lib: VirtualLibrary) -> None:
        """The 3rd command meets the cut (LINK_LOST, not executed); then NO_CONNECT."""
        t = ready(lib.drive_urls(0)[0])
        lib.install(FaultPlan().add(LinkDown(device="drive0", port=0, trigger=AtCommand(3))))
        assert write(t).ok  # type: ignore[attr-defined]
        assert write(t).ok  # type: ignore[attr-defined]
        r = t.execute(WRITE.to_bytes(), data_out=b"rec")
        assert r.outcome is Outcome.LINK_LOST
        assert r.detail is not None
        assert not r.detail.maybe_executed
        assert t.execute(bytes(6)).outcome is Outcome.NO_CONNECT
        assert lib.tape(0).records() == [b"rec", b"rec"]  # type: ignore[union-attr]
        other = ready(lib.drive_urls(0)[1])
        assert block(other) == 2

    def test_link_down_for_a_duration(self, lib: VirtualLibrary) -> None:
        """A link down for 5 s comes back by itself; the nexus is new (29/07)."""
        t = ready(lib.drive_urls(0)[0])
        plan = FaultPlan().add(LinkDown(device="drive0", trigger=AtCommand(1), duration=5))
        lib.install(plan)
        other = tapepath.open_transport(lib.drive_urls(0)[1])
        assert t.execute(bytes(6)).outcome is Outcome.LINK_LOST
        lib.clock.sleep(4)  # type: ignore[attr-defined]
        assert t.execute(bytes(6)).outcome is Outcome.NO_CONNECT
        assert other.execute(bytes(6)).outcome is Outcome.NO_CONNECT  # port=None: all ports
        lib.clock.sleep(2)  # type: ignore[attr-defined]
        assert sense_of(t.execute(bytes(6))) == (6, 0x29, 0x07)

    def test_black_hole_waits_the_timeout(self, lib: VirtualLibrary) -> None:
        """No answer: TIMED_OUT after the caller's timeout (virtual), command not run."""
        t = ready(lib.drive_urls(0)[0])
        lib.install(FaultPlan().add(BlackHole(device="drive0", times=1)))
        start = lib.clock.now()
        r = t.execute(WRITE.to_bytes(), data_out=b"rec", timeout=30)
        assert r.outcome is Outcome.TIMED_OUT
        assert lib.clock.now() - start == pytest.approx(30)
        assert block(t) == 0

    def test_delay(self, lib: VirtualLibrary) -> None:
        """A delay costs clock time and the command runs."""
        t = ready(lib.drive_urls(0)[0])
        lib.install(FaultPlan().add(Delay(seconds=2.5, device="drive0")))
        start = lib.clock.now()
        r = write(t)
        assert r.ok  # type: ignore[attr-defined]
        assert r.duration == pytest.approx(2.5)  # type: ignore[attr-defined]
        assert lib.clock.now() - start == pytest.approx(2.5)

    def test_delay_past_deadline_runs_but_times_out(self, lib: VirtualLibrary) -> None:
        """A delay longer than the timeout: TIMED_OUT, yet the command took effect."""
        t = ready(lib.drive_urls(0)[0])
        lib.install(FaultPlan().add(Delay(seconds=100, device="drive0")))
        r = t.execute(WRITE.to_bytes(), data_out=b"rec", timeout=10)
        assert r.outcome is Outcome.TIMED_OUT
        assert block(t) == 1

    def test_response_lost_is_the_ambiguous_case(self, lib: VirtualLibrary) -> None:
        """The write happens, the caller sees LINK_LOST maybe_executed, then 29/07."""
        t = ready(lib.drive_urls(0)[0])
        lib.install(FaultPlan().add(ResponseLost(trigger=When(lambda c: c.opcode == 0x0A))))
        assert t.execute(bytes(6)).ok
        r = write(t)
        assert r.outcome is Outcome.LINK_LOST  # type: ignore[attr-defined]
        assert r.detail.maybe_executed  # type: ignore[attr-defined]
        assert sense_of(t.execute(bytes(6))) == (6, 0x29, 0x07)
        assert block(t) == 1
        assert write(t).ok  # type: ignore[attr-defined]


class TestStatusFaults:
    """Faults that answer with a status, without running the command."""

    @pytest.mark.parametrize(
        ("fault", "expected"),
        [
            (Busy(), Status.BUSY),
            (TaskSetFull(), Status.TASK_SET_FULL),
            (ReservationConflict(), Status.RESERVATION_CONFLICT),
        ],
    )
    def test_status_once(self, lib: VirtualLibrary, fault: Busy, expected: int) -> None:
        """The command gets the status once and is not run; the next one runs."""
        t = ready(lib.drive_urls(0)[0])
        lib.install(FaultPlan().add(fault))
        assert write(t).status == expected  # type: ignore[attr-defined]
        assert block(t) == 0
        assert write(t).ok  # type: ignore[attr-defined]

    def test_injected_unit_attention(self, lib: VirtualLibrary) -> None:
        """An injected UA reaches the matching port's nexus only."""
        a = ready(lib.drive_urls(0)[0])
        b = ready(lib.drive_urls(0)[1])
        lib.install(FaultPlan().add(InjectUnitAttention(port=0, asc=0x2A, ascq=0x01)))
        assert sense_of(a.execute(bytes(6))) == (6, 0x2A, 0x01)
        assert b.execute(bytes(6)).ok


class TestDeviceFaults:
    """Faults that change the device's state."""

    def test_drive_reset(self, lib: VirtualLibrary) -> None:
        """A drive reset rewinds the tape and posts 29/00."""
        t = ready(lib.drive_urls(0)[0])
        assert write(t).ok  # type: ignore[attr-defined]
        lib.install(FaultPlan().add(DriveReset(device="drive0", trigger=AtCommand(2))))
        assert t.execute(bytes(6)).ok
        assert sense_of(t.execute(bytes(6))) == (6, 0x29, 0x00)
        assert block(t) == 0
        assert lib.tape(0).records() == [b"rec"]  # type: ignore[union-attr]

    def test_robot_stop_leaves_cartridge_in_transport(self, lib: VirtualLibrary) -> None:
        """A robot stopped mid-move: 15/01, cartridge in the transport element."""
        c = ready(lib.changer_urls()[0])
        lib.install(FaultPlan().add(RobotStop(trigger=When(lambda i: i.opcode == 0xA5))))
        src, dst = lib.slot_address(0), lib.slot_address(20)
        r = c.execute(MoveMedium(0, src, dst).to_bytes())
        assert sense_of(r) == (4, 0x15, 0x01)
        transport = lib.layout.transport_start
        assert lib.where("TP0001L8") == transport
        assert lib.element(transport).source == src
        assert c.execute(MoveMedium(0, transport, src).to_bytes()).ok
        assert lib.where("TP0001L8") == src

    def test_robot_stop_at_time_during_move(self, lib: VirtualLibrary) -> None:
        """A time trigger that falls inside a 10 s move stops it half-way."""
        c = ready(lib.changer_urls()[0])
        lib.install(FaultPlan().add(RobotStop(trigger=AtTime(5.0))))
        r = c.execute(MoveMedium(0, lib.slot_address(0), lib.slot_address(20)).to_bytes())
        assert sense_of(r) == (4, 0x15, 0x01)
        assert lib.where("TP0001L8") == lib.layout.transport_start

    def test_link_cut_during_move(self, lib: VirtualLibrary) -> None:
        """A cut during a move: the caller sees LINK_LOST maybe_executed; the move finished."""
        c = ready(lib.changer_urls()[0])
        lib.install(FaultPlan().add(LinkDown(device="changer", port=0, trigger=AtTime(3.0))))
        r = c.execute(MoveMedium(0, lib.slot_address(0), lib.slot_address(20)).to_bytes())
        assert r.outcome is Outcome.LINK_LOST
        assert r.detail is not None
        assert r.detail.maybe_executed
        assert lib.where("TP0001L8") == lib.slot_address(20)

    def test_control_path_failure_at_time(self, lib: VirtualLibrary) -> None:
        """After the trigger time the active control path is gone; the other is active."""
        a = ready(lib.changer_urls()[0])
        p = ready(lib.changer_urls()[1])
        lib.install(FaultPlan().add(ControlPathFailure(device="changer", trigger=AtTime(60))))
        assert a.execute(bytes(6)).ok
        lib.clock.sleep(61)  # type: ignore[attr-defined]
        assert a.execute(bytes(6)).outcome is Outcome.DEVICE_GONE
        assert sense_of(p.execute(bytes(6))) == (6, 0x2A, 0x06)
        assert p.execute(MoveMedium(0, lib.slot_address(0), lib.slot_address(20)).to_bytes()).ok

    def test_power_cycle(self, lib: VirtualLibrary) -> None:
        """A power cycle: 29/00 on every path, tape at BOP, cartridges where they were."""
        d = ready(lib.drive_urls(0)[0])
        c = ready(lib.changer_urls()[0])
        assert write(d).ok  # type: ignore[attr-defined]
        before = lib.inventory()
        lib.install(FaultPlan().add(PowerCycle(device="changer")))
        assert sense_of(c.execute(bytes(6))) == (6, 0x29, 0x00)
        assert sense_of(d.execute(bytes(6))) == (6, 0x29, 0x00)
        assert block(d) == 0
        assert lib.inventory() == before


class TestDeterminism:
    """Seeded probability and plan composition."""

    @staticmethod
    def run(seed: int) -> list[bool]:
        with VirtualLibrary("det", clock=VirtualClock()) as lib:
            t = ready(lib.changer_urls()[0])
            lib.install(FaultPlan(seed=seed).add(Busy(times=None, probability=0.3)))
            return [t.execute(bytes(6)).status == Status.BUSY for _ in range(60)]

    def test_same_seed_same_faults(self) -> None:
        """Two runs with one seed fail the same commands; another seed differs."""
        a, b, c = self.run(11), self.run(11), self.run(12)
        assert a == b
        assert a != c
        assert 5 < sum(a) < 40

    def test_compose_and_record(self) -> None:
        """Plans compose with |; fired faults are recorded with the command."""
        plan = FaultPlan().add(Busy(device="changer")) | FaultPlan().add(
            TaskSetFull(device="changer", trigger=AtCommand(2))
        )
        assert len(plan) == 2
        with VirtualLibrary("rec", clock=VirtualClock()) as lib:
            t = ready(lib.changer_urls()[0])
            lib.install(plan)
            assert t.execute(bytes(6)).status == Status.BUSY
            assert t.execute(bytes(6)).status == Status.TASK_SET_FULL
            assert t.execute(bytes(6)).ok
        assert [f for f, _ in plan.fired] == list(plan)
        assert plan.fired[0][1].cdb == bytes(6)

    def test_validation(self) -> None:
        """Bad fault values are refused."""
        with pytest.raises(ValueError, match="probability"):
            Busy(probability=1.5)
        with pytest.raises(ValueError, match="AtCommand"):
            AtCommand(0)


class TestFixtures:
    """The pytest plugin's fixtures."""

    @pytest.mark.virtual_library(drives=3, slots=8)
    def test_marker_configures(self, virtual_library: VirtualLibrary) -> None:
        """The marker's arguments reach VirtualLibrary; the clock is virtual."""
        assert len(virtual_library.drive_models) == 3
        assert virtual_library.layout.storage_count == 8
        assert isinstance(virtual_library.clock, VirtualClock)

    def test_fault_plan_is_installed(
        self, virtual_library: VirtualLibrary, fault_plan: FaultPlan
    ) -> None:
        """Faults added to the fixture plan take effect on the fixture library."""
        fault_plan.add(BlackHole(device="changer"))
        c = tapepath.open_transport(virtual_library.changer_urls()[0])
        assert c.execute(bytes(6), timeout=5).outcome is Outcome.TIMED_OUT
