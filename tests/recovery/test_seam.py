"""The multipath seam recovery uses: observers, attach, Fail(fail_waiting)."""

from __future__ import annotations

from typing import Any

import pytest
from pyscsi.pyscsi.scsi import SCSI
from pyscsi.pyscsi.scsi_sense import SCSICheckCondition

from tapepath.contrib.pyscsi import PyscsiDevice
from tapepath.multipath import MultipathDevice
from tapepath.multipath.hooks import CommandInDoubtError, Complete, Decision, FailedCommand
from tapepath.recovery import ChangerRecovery
from tapepath.scsi.element_status import ReadElementStatus
from tapepath.testing.faults import CommandInfo, FaultPlan, ResponseLost, When
from tapepath.testing.mock import MockTransport, Request
from tapepath.transport.base import Outcome, Response

from .support import changer_device, library, send

Seen = list[tuple[bytes, bytes, Response, bytes]]


def _recorder(seen: Seen) -> Any:
    def observe(cdb: bytes, data_out: bytes, r: Response, data_in: bytes | memoryview) -> None:
        seen.append((cdb, data_out, r, bytes(data_in)))

    return observe


def _answer(req: Request) -> Response:
    data = bytes(range(req.data_in_len))
    return Response(data=data, transferred=len(data))


class CompleteAll:
    """A hook that completes every failed command with a marker response."""

    def __init__(self) -> None:
        self.attached: list[MultipathDevice] = []

    def attach(self, device: MultipathDevice) -> None:
        self.attached.append(device)

    def on_path_failure(self, device: MultipathDevice, failed: FailedCommand) -> Decision:
        return Complete(Response(data=b"made", transferred=4))


class TestObservers:
    """Every final response reaches the observers, once."""

    def test_fast_and_slow_paths(self) -> None:
        """execute() on the fast path and the first (slow) command are both observed."""
        dev = MultipathDevice([MockTransport(_answer, url="mock://a")], handler=None, monitor=False)
        seen: Seen = []
        dev.add_observer(_recorder(seen))
        for n in (4, 8, 2):
            dev.execute(bytes((0x12, 0, 0, 0, n, 0)), data_in_len=n)
        assert [len(s[3]) for s in seen] == [4, 8, 2]
        assert all(s[2].ok for s in seen)

    def test_execute_into_gives_the_filled_buffer(self) -> None:
        """execute_into: the observer sees the bytes that landed in the caller's buffer."""

        def into(req: Request) -> Response:
            return Response(data=b"\x07" * 5, transferred=5)

        dev = MultipathDevice([MockTransport(into, url="mock://a")], handler=None, monitor=False)
        seen: Seen = []
        dev.add_observer(_recorder(seen))
        buf = bytearray(16)
        dev.execute_into(bytes((0x12, 0, 0, 0, 16, 0)), buf)
        dev.execute_into(bytes((0x12, 0, 0, 0, 16, 0)), buf)
        assert [s[3] for s in seen] == [b"\x07" * 5, b"\x07" * 5]

    def test_two_observers_and_execute_on(self) -> None:
        """Both observers run, in order; execute_on is not observed."""
        dev = MultipathDevice([MockTransport(_answer, url="mock://a")], handler=None, monitor=False)
        order: list[str] = []
        dev.add_observer(lambda *a: order.append("first"))
        dev.add_observer(lambda *a: order.append("second"))
        dev.execute(bytes(6))
        dev.execute_on(dev.paths[0], bytes(6))
        assert order == ["first", "second"]

    def test_completed_by_the_hook_is_observed(self) -> None:
        """A response the hook completed (no resend) is what the observer sees."""
        calls = [0]

        def flaky(req: Request) -> Response:
            calls[0] += 1
            if calls[0] == 2:
                return Response.failure(Outcome.LINK_LOST, "cut")
            return Response()

        hook = CompleteAll()
        dev = MultipathDevice(
            [MockTransport(flaky, url="mock://a"), MockTransport(_answer, url="mock://b")],
            recovery=hook,
            handler=None,
            monitor=False,
        )
        assert hook.attached == [dev]
        seen: Seen = []
        dev.add_observer(_recorder(seen))
        dev.execute(bytes(6))
        r = dev.execute(bytes((0x0A, 0, 0, 0, 1, 0)), data_out=b"x")
        assert r.data == b"made"
        assert [s[2].data for s in seen] == [b"", b"made"]


class TestPyscsi:
    """pyscsi over a MultipathDevice gets recovery too (it only calls execute())."""

    def test_move_once(self) -> None:
        """A pyscsi MOVE MEDIUM whose answer was lost is not repeated."""
        with library(slots=8, drives=2) as lib:
            hook = ChangerRecovery()
            dev = changer_device(lib, hook)
            scsi = SCSI(PyscsiDevice(dev, timeout=10))
            for _ in range(3):
                try:
                    scsi.testunitready()
                    break
                except SCSICheckCondition:
                    continue
            res = ReadElementStatus(element_type=2, voltag=True)
            assert send(dev, res.to_bytes(), data_in_len=res.allocation_length).ok
            src, dst = lib.slot_address(0), lib.slot_address(7)
            barcode = lib.inventory()[src]
            plan = FaultPlan().add(
                ResponseLost(device="changer", port=0, trigger=When(_first_move))
            )
            lib.install(plan)
            scsi.movemedium(0, src, dst)
            assert lib.where(barcode) == dst  # type: ignore[arg-type]
            assert hook.stats.completed == 1


def _erase(info: CommandInfo) -> bool:
    return info.opcode == 0x19


def _first_move(info: CommandInfo) -> bool:
    return info.opcode == 0xA5


class TestWaitersKeepDefault:
    """Without fail_waiting, queued commands still go after a failed command."""

    def test_default_hook_unchanged(self) -> None:
        """ResendIfSafe's Fail leaves the next command free to go."""
        with library(slots=2, drives=1) as lib:
            lib.insert(lib.drive_address(0), "SE0001L8")
            dev = MultipathDevice(lib.drive_urls(0), handler=None, monitor=False)
            send(dev, bytes(6))
            lib.install(
                FaultPlan().add(ResponseLost(device="drive0", port=0, trigger=When(_erase)))
            )
            with pytest.raises(CommandInDoubtError):
                send(dev, bytes((0x19, 0, 0, 0, 0, 0)))  # ERASE: not safe to repeat
            assert send(dev, bytes(6)).ok
