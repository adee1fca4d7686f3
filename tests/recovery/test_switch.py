"""Path switches without a failed command (the monitor failed the path, a failback):
the new path is brought up to date before the next command goes there."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from tapepath.multipath import MultipathDevice, PathState
from tapepath.recovery import ChangerRecovery, TapeRecovery, TrackedPosition
from tapepath.scsi.changer import MoveMedium
from tapepath.scsi.reservations import PersistentReserveOut, PrOutAction, PrOutParameters
from tapepath.scsi.tape import Rewind, Write6
from tapepath.testing.faults import DriveReset, FaultPlan, When
from tapepath.testing.library import VirtualLibrary
from tapepath.transport.base import Response

from .support import changer_device, library, send, tape_device

KEY = 0xC0FFEE


@pytest.fixture
def lib() -> Any:
    with library(slots=8, drives=2) as vl:
        vl.insert(vl.drive_address(0), "SW0001L8")
        yield vl


def write(dev: MultipathDevice, data: bytes) -> Response:
    return send(dev, Write6.for_data(data).to_bytes(), data_out=data)


def reserve(dev: MultipathDevice) -> None:
    reg, data = PersistentReserveOut.for_parameters(
        PrOutAction.REGISTER, PrOutParameters(service_action_reservation_key=KEY)
    )
    assert send(dev, reg.to_bytes(), data_out=data).ok
    res, data = PersistentReserveOut.for_parameters(
        PrOutAction.RESERVE, PrOutParameters(reservation_key=KEY), pr_type=3
    )
    assert send(dev, res.to_bytes(), data_out=data).ok


def monitor_fails(lib: VirtualLibrary, dev: MultipathDevice, device: str, port: int) -> None:
    """What the path monitor does to a path whose NOP went unanswered."""
    lib.set_link(device, port, False)
    p = dev.paths[port]
    dev.group.path_failed(p, "monitor: no answer")
    assert p.state is PathState.FAILED


class TestTape:
    """A tape drive moved to another port by the monitor, then back."""

    def test_reservation_follows(self, lib: VirtualLibrary) -> None:
        """The reservation taken through port 0 is moved before a WRITE goes to port 1,
        and moved back on failback."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        send(dev, Rewind().to_bytes())
        reserve(dev)
        assert write(dev, b"one").ok
        monitor_fails(lib, dev, "drive0", 0)
        with capture_logs() as logs:
            assert write(dev, b"two").ok
        assert hook.stats.switches == 1
        assert hook.stats.recoveries == 0
        switched = [e for e in logs if e.get("trigger") == "path_switched"]
        assert switched
        assert switched[0]["new_path"] == lib.drive_urls(0)[1]
        lib.set_link("drive0", 0, True)
        dev.group.set_state(dev.paths[0], PathState.ACTIVE, "monitor: answers again")
        assert dev.failback() is dev.paths[0]
        assert write(dev, b"three").ok
        assert hook.stats.switches == 2
        assert lib.tape(0).records() == [b"one", b"two", b"three"]  # type: ignore[union-attr]

    def test_without_the_hook_the_reservation_is_lost(self, lib: VirtualLibrary) -> None:
        """The control case: the default hook sends the WRITE to port 1 as it is, and the
        drive answers RESERVATION CONFLICT there."""
        dev = MultipathDevice(lib.drive_urls(0), handler=None, monitor=False)
        send(dev, Rewind().to_bytes())
        reserve(dev)
        monitor_fails(lib, dev, "drive0", 0)
        r = write(dev, b"two")
        assert r.status == 0x18

    def test_reset_on_the_new_path_locates_back(self, lib: VirtualLibrary) -> None:
        """The drive was reset (rewound) while the monitor moved the path: the tape is
        put back at the tracked block before the next WRITE, which does not land at BOP."""
        hook = TapeRecovery()
        dev = tape_device(lib, hook)
        send(dev, Rewind().to_bytes())
        for d in (b"a", b"b", b"c"):
            assert write(dev, d).ok
        lib.install(
            FaultPlan().add(
                DriveReset(device="drive0", port=1, trigger=When(lambda i: i.port == 1))
            )
        )
        monitor_fails(lib, dev, "drive0", 0)
        with capture_logs() as logs:
            assert write(dev, b"d").ok
        steps = [e["trigger"] for e in logs if e["event"] == "recovery_transition"]
        assert "position_restored" in steps
        assert lib.tape(0).records() == [b"a", b"b", b"c", b"d"]  # type: ignore[union-attr]
        assert hook.position == TrackedPosition(4, 0, True)


class TestChanger:
    """The changer's active control path is failed by the monitor."""

    def test_move_goes_to_the_activated_path(self, lib: VirtualLibrary) -> None:
        """The device activates the standby control path (no active one is left); the
        switch notifies it before the MOVE, which happens once."""
        hook = ChangerRecovery()
        dev = changer_device(lib, hook)
        assert send(dev, bytes(6)).ok
        src, dst = lib.slot_address(1), lib.slot_address(7)
        barcode = lib.inventory()[src]
        monitor_fails(lib, dev, "changer", 0)
        with capture_logs() as logs:
            assert send(dev, MoveMedium(0, src, dst).to_bytes(), timeout=30).ok
        assert lib.active_control_path() == 1
        assert lib.where(barcode) == dst  # type: ignore[arg-type]
        assert hook.stats.switches == 1
        steps = [e["trigger"] for e in logs if e["event"] == "recovery_transition"]
        assert steps == ["path_switched", "notified", "nothing_outstanding"]
