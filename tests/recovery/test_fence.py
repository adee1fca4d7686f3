"""Recovery fences the failed path before it resends a command the kernel may still hold."""

from __future__ import annotations

from typing import Any

import pytest

from tapepath.multipath import MultipathDevice
from tapepath.multipath.hooks import CommandInDoubtError
from tapepath.recovery import ChangerRecovery
from tapepath.scsi.changer import MoveMedium
from tapepath.testing.faults import BlackHole, FaultPlan
from tapepath.testing.library import VirtualLibrary
from tapepath.transport.base import Response, Transport
from tapepath.transport.sg_state import FenceResult

from .support import changer_device, library, send
from .test_changer_recovery import inventory, nth


class Fenceable(Transport):
    """A path's transport with the sg transport's fence()/unfence(), answering as told."""

    scheme = "fenceable"

    def __init__(self, inner: Transport, *, allow: bool) -> None:
        self.inner = inner
        self.url = inner.url
        self.allow = allow
        self.fenced = False
        self.calls: list[str] = []

    def execute(self, cdb: bytes, **kw: Any) -> Response:
        return self.inner.execute(cdb, **kw)

    def close(self) -> None:
        self.inner.close()

    def fence(self) -> FenceResult:
        self.calls.append("fence")
        if not self.allow:
            return FenceResult(False, "blocked", "cannot write state (EACCES): needs root")
        self.fenced = True
        return FenceResult(True, "offline")

    def unfence(self) -> FenceResult:
        self.calls.append("unfence")
        self.fenced = False
        return FenceResult(True, "running")


@pytest.fixture
def lib() -> Any:
    with library(slots=8, drives=2) as vl:
        yield vl


def start(lib: VirtualLibrary, allow: bool) -> tuple[MultipathDevice, ChangerRecovery, Fenceable]:
    hook = ChangerRecovery()
    dev = changer_device(lib, hook)
    inventory(dev)
    path = dev.paths[0]
    wrapped = Fenceable(path.transport, allow=allow)
    path.transport = wrapped
    lib.install(
        FaultPlan(seed=3).add(BlackHole(device="changer", port=0, trigger=nth(0xA5), times=1))
    )
    return dev, hook, wrapped


class TestFenceBeforeResend:
    """An unanswered MOVE MEDIUM on a fenceable path: fence, then read the state."""

    def test_fenced_then_resent(self, lib: VirtualLibrary) -> None:
        """The path is fenced once; the move is read as not started and resent once."""
        dev, hook, t = start(lib, allow=True)
        src, dst = lib.slot_address(1), lib.slot_address(6)
        barcode = lib.inventory()[src]
        assert send(dev, MoveMedium(0, src, dst).to_bytes(), timeout=30).ok
        assert t.calls == ["fence"]
        assert lib.where(barcode) == dst  # type: ignore[arg-type]
        assert hook.stats.resent == 1

    def test_unfenceable_is_ambiguous(self, lib: VirtualLibrary) -> None:
        """Fence refused (not root): CommandInDoubtError, nothing resent, nothing moved."""
        dev, hook, t = start(lib, allow=False)
        src, dst = lib.slot_address(1), lib.slot_address(6)
        barcode = lib.inventory()[src]
        with pytest.raises(CommandInDoubtError, match="could not be fenced"):
            send(dev, MoveMedium(0, src, dst).to_bytes(), timeout=30)
        assert t.calls == ["fence"]
        assert lib.where(barcode) == src  # type: ignore[arg-type]
        assert hook.stats.resent == 0


class TestMonitorUnfences:
    """The monitor lifts a fence before its checker may reinstate the path."""

    def test_unfence_then_reinstate(self) -> None:
        """A fenced FAILED path: no check while unfence() fails; reinstated once it works."""
        from tapepath.multipath import PathMonitor, PathState  # noqa: PLC0415
        from tests.multipath.fakes import FakeClock, FakeUnit, Mode  # noqa: PLC0415

        unit = FakeUnit(ports=2)
        clock = FakeClock()
        mon = PathMonitor(clock=clock)
        dev = MultipathDevice(
            unit.transports, name="unit", monitor=mon, clock=clock, sleep=clock.sleep,
            handler=None, polling_interval=1,
        )  # fmt: skip
        path = dev.group.find("mock://unit/port0")
        assert path is not None
        t = Fenceable(path.transport, allow=True)
        path.transport = t
        mon.run_once()
        unit.modes[0] = Mode.DOWN
        clock.advance(1)
        mon.run_once()
        assert path.state is PathState.FAILED
        assert t.fence().done
        unit.modes[0] = Mode.UP
        t.unfence = lambda: (t.calls.append("unfence"), FenceResult(False, "blocked", "x"))[1]  # type: ignore[method-assign]
        sent = len(unit.transports[0].requests)
        clock.advance(1)
        mon.run_once()
        assert path.state is PathState.FAILED  # still fenced: no check
        assert t.calls == ["fence", "unfence"]
        assert len(unit.transports[0].requests) == sent
        del t.unfence  # back to the class's working unfence()
        clock.advance(1)
        mon.run_once()
        assert t.calls[-1] == "unfence"
        assert not t.fenced
        assert path.state is PathState.ACTIVE
        dev.close()
