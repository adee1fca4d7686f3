"""ChangerRecovery against the VirtualLibrary: moves done, not started, half done, other."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from tapepath.errors import AmbiguousMoveError
from tapepath.multipath import MultipathDevice
from tapepath.recovery import ChangerRecovery, MoveAmbiguousError
from tapepath.scsi.changer import ExchangeMedium, MoveMedium
from tapepath.scsi.element_status import ReadElementStatus
from tapepath.testing.faults import (
    BlackHole,
    CommandInfo,
    ControlPathFailure,
    Delay,
    FaultPlan,
    LinkDown,
    ResponseLost,
    RobotStop,
    When,
)
from tapepath.testing.library import VirtualLibrary
from tapepath.transport.base import Response

from .support import changer_device, library, send


def nth(opcode: int, n: int = 1, port: int = 0) -> When:
    """A trigger for the n-th command with ``opcode`` on ``port``."""
    seen = [0]

    def pred(info: CommandInfo) -> bool:
        if info.opcode != opcode or info.port != port:
            return False
        seen[0] += 1
        return seen[0] == n

    return When(pred)


def transitions(logs: list[dict[str, Any]]) -> list[str]:
    return [e["trigger"] for e in logs if e["event"] == "recovery_transition"]


@pytest.fixture
def lib() -> Any:
    with library(slots=8, drives=2) as vl:
        yield vl


def start(lib: VirtualLibrary, *faults: Any) -> tuple[MultipathDevice, ChangerRecovery]:
    hook = ChangerRecovery()
    dev = changer_device(lib, hook)
    inventory(dev)
    lib.install(FaultPlan(seed=3).add(*faults))
    return dev, hook


def inventory(dev: MultipathDevice) -> Response:
    """READ ELEMENT STATUS with volume tags, as an application's inventory does."""
    res = ReadElementStatus(voltag=True)
    r = send(dev, res.to_bytes(), data_in_len=res.allocation_length)
    assert r.ok
    return r


def move(dev: MultipathDevice, src: int, dst: int) -> Response:
    return send(dev, MoveMedium(0, src, dst).to_bytes(), timeout=30)


class TestMove:
    """A MOVE MEDIUM whose path failed happens exactly once or raises."""

    def test_done_is_completed(self, lib: VirtualLibrary) -> None:
        """The robot moved, the answer was lost: completed, not moved again."""
        dev, hook = start(lib, ResponseLost(device="changer", port=0, trigger=nth(0xA5)))
        src, dst = lib.slot_address(0), lib.slot_address(7)
        barcode = lib.inventory()[src]
        with capture_logs() as logs:
            assert move(dev, src, dst).ok
        assert lib.where(barcode) == dst  # type: ignore[arg-type]
        assert "effect_present" in transitions(logs)
        assert hook.stats.completed == 1
        assert hook.stats.resent == 0

    def test_not_started_is_resent(self, lib: VirtualLibrary) -> None:
        """No answer and nothing moved: the element status proves it; resent once."""
        dev, hook = start(lib, BlackHole(device="changer", port=0, trigger=nth(0xA5), times=1))
        src, dst = lib.slot_address(1), lib.slot_address(6)
        barcode = lib.inventory()[src]
        with capture_logs() as logs:
            assert move(dev, src, dst).ok
        assert lib.where(barcode) == dst  # type: ignore[arg-type]
        assert "state_read" in transitions(logs)
        assert hook.stats.resent == 1

    def test_in_transport_is_finished(self, lib: VirtualLibrary) -> None:
        """The robot stopped with the cartridge in its gripper and the answer was lost:
        the move is finished from the transport element."""
        dev, hook = start(
            lib,
            RobotStop(device="changer", port=0, trigger=nth(0xA5)),
            ResponseLost(device="changer", port=0, trigger=nth(0xA5)),
        )
        src, dst = lib.slot_address(2), lib.slot_address(7)
        barcode = lib.inventory()[src]
        with capture_logs() as logs:
            assert move(dev, src, dst).ok
        assert lib.where(barcode) == dst  # type: ignore[arg-type]
        assert "move_in_transport" in transitions(logs)
        assert hook.stats.resent == 1

    def test_anything_else_is_ambiguous(self, lib: VirtualLibrary) -> None:
        """Another cartridge appeared at the source meanwhile: neither done nor not
        started; MoveAmbiguousError says what was seen; nothing moved again."""
        src, dst, other = lib.slot_address(0), lib.slot_address(7), lib.slot_address(3)

        def operator(info: CommandInfo) -> bool:
            if info.port != 1:
                return False
            a, b = lib.element(src), lib.element(other)
            a.cartridge, b.cartridge = b.cartridge, None
            return True

        dev, hook = start(
            lib,
            ResponseLost(device="changer", port=0, trigger=nth(0xA5)),
            Delay(seconds=0, device="changer", port=1, trigger=When(operator)),
        )
        moved = lib.inventory()[src]
        with pytest.raises(AmbiguousMoveError) as info:
            move(dev, src, dst)
        err = info.value
        assert isinstance(err, MoveAmbiguousError)
        assert (err.source, err.destination) == (src, dst)
        assert err.seen[src].startswith("full")
        assert err.seen[dst].startswith("full")
        assert moved in err.seen[dst]
        assert f"{src:04X}h" in str(err)
        assert lib.where(moved) == dst  # type: ignore[arg-type]
        assert hook.stats.ambiguous == 1


class TestControlPath:
    """The active control path is lost: the passive one is made active."""

    def test_passive_path_activated(self, lib: VirtualLibrary) -> None:
        """The link of the active control path goes down: SET TARGET PORT GROUPS on the
        standby one, and the move goes on there."""
        dev, _hook = start(lib, LinkDown(device="changer", port=0, trigger=nth(0xA5)))
        assert lib.active_control_path() == 0
        src, dst = lib.slot_address(4), lib.slot_address(6)
        barcode = lib.inventory()[src]
        with capture_logs() as logs:
            assert move(dev, src, dst).ok
        assert lib.where(barcode) == dst  # type: ignore[arg-type]
        assert lib.active_control_path() == 1
        notified = [e for e in logs if e.get("trigger") == "notified"]
        assert notified
        assert notified[0]["activated"] is True


class TestExchange:
    """EXCHANGE MEDIUM: done or not started by the barcodes seen before."""

    def _swap(self, lib: VirtualLibrary) -> tuple[bytes, int, int, str, str]:
        a, b = lib.slot_address(0), lib.slot_address(1)
        inv = lib.inventory()
        return ExchangeMedium(0, a, b, a).to_bytes(), a, b, inv[a] or "", inv[b] or ""

    def test_done_is_completed(self, lib: VirtualLibrary) -> None:
        """A swap that ran with its answer lost is completed, not swapped back."""
        dev, hook = start(lib, ResponseLost(device="changer", port=0, trigger=nth(0xA6)))
        cdb, a, b, first, second = self._swap(lib)
        assert send(dev, cdb, timeout=30).ok
        assert (lib.where(first), lib.where(second)) == (b, a)
        assert hook.stats.completed == 1

    def test_not_started_is_resent(self, lib: VirtualLibrary) -> None:
        """A swap that never ran is resent once."""
        dev, hook = start(lib, BlackHole(device="changer", port=0, trigger=nth(0xA6), times=1))
        cdb, a, b, first, second = self._swap(lib)
        assert send(dev, cdb, timeout=30).ok
        assert (lib.where(first), lib.where(second)) == (b, a)
        assert hook.stats.resent == 1


class TestRepeatable:
    """Changer commands that change nothing when repeated are resent without a look."""

    def test_initialize_element_status(self, lib: VirtualLibrary) -> None:
        """INITIALIZE ELEMENT STATUS whose answer was lost: resent, no element read."""
        dev, hook = start(lib, ResponseLost(device="changer", port=0, trigger=nth(0x07)))
        with capture_logs() as logs:
            assert send(dev, bytes((0x07, 0, 0, 0, 0, 0)), timeout=30).ok
        assert hook.stats.resent == 1
        assert "state_read" in transitions(logs)


class TestControlPathFailure:
    """The library's own control-path failover (the drive behind it failed)."""

    def test_device_gone_resends_on_the_new_active_path(self, lib: VirtualLibrary) -> None:
        """The active control path vanishes under a MOVE (not run): resent once on the
        control path the library made active (2A/06 read by notify)."""
        dev, hook = start(lib, ControlPathFailure(device="changer", port=0, trigger=nth(0xA5)))
        src, dst = lib.slot_address(3), lib.slot_address(6)
        barcode = lib.inventory()[src]
        with capture_logs() as logs:
            assert move(dev, src, dst).ok
        assert lib.where(barcode) == dst  # type: ignore[arg-type]
        assert lib.active_control_path() == 1
        assert hook.stats.resent == 1
        notified = [e for e in logs if e.get("trigger") == "notified"]
        assert notified
        assert "alua_state_changed" in notified[0]["unit_attentions"]
