"""The driver's shared steps: verify, device handlers, failures, the diagram page."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from structlog.testing import capture_logs

from tapepath.errors import NoPathError, PathFailureError
from tapepath.multipath import MultipathDevice
from tapepath.recovery import (
    GenericDeviceHandler,
    NotifyContext,
    NotifyRefusedError,
    NotifyReport,
    TapeRecovery,
    device_handler,
    register_device_handler,
)
from tapepath.scsi.tape import Rewind, Write6
from tapepath.testing.faults import CommandInfo, FaultPlan, LinkDown, ResponseLost, When
from tapepath.transport.base import Response, Transport
from tapepath.transport.registry import open_transport

from .support import library, send, tape_device

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "draw_recovery_diagram", ROOT / "scripts/draw_recovery_diagram.py"
    )
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def nth_write(n: int, port: int = 0) -> When:
    seen = [0]

    def pred(info: CommandInfo) -> bool:
        if info.opcode != 0x0A or info.port != port:
            return False
        seen[0] += 1
        return seen[0] == n

    return When(pred)


class Marking(GenericDeviceHandler):
    """A vendor handler that extends the generic steps with its own notification."""

    name = "marking"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def notify(self, ctx: NotifyContext) -> NotifyReport:
        report = super().notify(ctx)
        self.calls.append(ctx.path.url)
        return report


class Refusing(GenericDeviceHandler):
    """A vendor handler whose device refuses the path change."""

    name = "refusing"

    def notify(self, ctx: NotifyContext) -> NotifyReport:
        raise NotifyRefusedError("the drive refused the path change", step="vendor")


class TestDeviceHandlers:
    """The notify step is replaceable and extensible."""

    def test_registry(self) -> None:
        """Names resolve to fresh instances; a name is registered once."""
        assert isinstance(device_handler(None), GenericDeviceHandler)
        assert device_handler("generic").name == "generic"
        register_device_handler("test-marking", Marking)
        assert isinstance(device_handler("test-marking"), Marking)
        with pytest.raises(ValueError, match="already registered"):
            register_device_handler("test-marking", Marking)
        with pytest.raises(KeyError, match="no device handler"):
            device_handler("no-such-handler")

    def test_vendor_handler_is_used(self) -> None:
        """The handler given to TapeRecovery is the one that notifies the new path."""
        handler = Marking()
        with library(slots=2, drives=1) as lib:
            lib.insert(lib.drive_address(0), "DH0001L8")
            hook = TapeRecovery(device_handler=handler)
            dev = tape_device(lib, hook)
            send(dev, Rewind().to_bytes())
            lib.install(FaultPlan().add(LinkDown(device="drive0", port=0, trigger=nth_write(1))))
            data = b"vendor"
            assert send(dev, Write6.for_data(data).to_bytes(), data_out=data).ok
            assert handler.calls == [lib.drive_urls(0)[1]]
            assert lib.tape(0).records() == [data]  # type: ignore[union-attr]

    def test_refused_notify_fails_the_command(self) -> None:
        """A refused notify fails the command with the handler's error; nothing resent."""
        with library(slots=2, drives=1) as lib:
            lib.insert(lib.drive_address(0), "DH0002L8")
            hook = TapeRecovery(device_handler=Refusing())
            dev = tape_device(lib, hook)
            send(dev, Rewind().to_bytes())
            lib.install(FaultPlan().add(LinkDown(device="drive0", port=0, trigger=nth_write(1))))
            with pytest.raises(NotifyRefusedError) as info:
                send(dev, Write6.for_data(b"x").to_bytes(), data_out=b"x")
            assert info.value.step == "vendor"
            assert lib.tape(0).records() == []  # type: ignore[union-attr]
            assert hook.stats.failed == 1


class TestVerify:
    """Probing the other paths in order."""

    def test_path_lost_during_notify_moves_on(self) -> None:
        """The first path probed dies while notified: the next one is used."""
        with library(slots=2, drives=1, ports_per_drive=3) as lib:
            lib.insert(lib.drive_address(0), "VF0001L8")
            hook = TapeRecovery()
            dev = tape_device(lib, hook)
            send(dev, Rewind().to_bytes())
            second_cmd = [0]

            def second_on_port1(info: CommandInfo) -> bool:
                if info.port != 1:
                    return False
                second_cmd[0] += 1
                return second_cmd[0] == 2  # the probe answers, then the link goes

            lib.install(
                FaultPlan().add(
                    ResponseLost(device="drive0", port=0, trigger=nth_write(2)),
                    LinkDown(device="drive0", port=1, trigger=When(second_on_port1)),
                )
            )
            with capture_logs() as logs:
                for d in (b"a", b"b", b"c"):
                    assert send(dev, Write6.for_data(d).to_bytes(), data_out=d).ok
            steps = [e["trigger"] for e in logs if e["event"] == "recovery_transition"]
            assert "notify_path_lost" in steps
            assert lib.tape(0).records() == [b"a", b"b", b"c"]  # type: ignore[union-attr]
            done = [e for e in logs if e.get("trigger") == "effect_present"]
            assert done[0]["new_path"] == lib.drive_urls(0)[2]

    def test_no_path_left(self) -> None:
        """Every other path is down: NoPathError, nothing resent."""
        with library(slots=2, drives=1) as lib:
            lib.insert(lib.drive_address(0), "VF0002L8")
            hook = TapeRecovery()
            dev = tape_device(lib, hook)
            send(dev, Rewind().to_bytes())
            lib.set_link("drive0", 1, False)
            lib.install(
                FaultPlan().add(ResponseLost(device="drive0", port=0, trigger=nth_write(1)))
            )
            with pytest.raises(NoPathError, match="nothing was resent"):
                send(dev, Write6.for_data(b"z").to_bytes(), data_out=b"z")
            assert lib.tape(0).records() == [b"z"]  # type: ignore[union-attr]
            assert hook.stats.failed == 1

    def test_attached_once(self) -> None:
        """A hook belongs to one device."""
        with library(slots=2, drives=2) as lib:
            hook = TapeRecovery()
            tape_device(lib, hook, 0)
            with pytest.raises(ValueError, match="already attached"):
                MultipathDevice(lib.drive_urls(1), recovery=hook, handler=None, monitor=False)


class TestDiagram:
    """docs/recovery.md carries the diagram of the current table."""

    def test_page_is_current(self) -> None:
        """Fails when the table changed and the script was not run."""
        mod: Any = _script()
        page = (ROOT / "docs/recovery.md").read_text(encoding="utf-8")
        assert mod.render(page) == page
        assert mod.main(["--check"]) == 0

    def test_every_transition_drawn(self) -> None:
        """Each (state, event) of the table is one line of the diagram."""
        from tapepath.recovery.machine import TRANSITIONS  # noqa: PLC0415

        text = _script().diagram()
        for (src, event), (action, dst) in TRANSITIONS.items():
            assert f"{src.value} --> {dst.value}: {event.value} / {action.value}" in text

    def test_markers_required(self) -> None:
        """A page without the markers is an error, not a silent no-op."""
        with pytest.raises(ValueError, match="markers"):
            _script().render("# no markers here\n")


class Pinging(Transport):
    """A sim path with an iSCSI-like ping(): answered, or not (session dropped)."""

    scheme = "pinging"

    def __init__(self, inner: Transport, *, answers: bool) -> None:
        self.inner = inner
        self.url = getattr(inner, "url", "pinging")
        self.answers = answers
        self.pings = 0

    def ping(self, timeout: float = 5.0) -> float:
        self.pings += 1
        if not self.answers:
            raise PathFailureError("not connected")
        return 0.001

    def execute(
        self, cdb: bytes, *, data_out: bytes = b"", data_in_len: int = 0, timeout: float = 30.0
    ) -> Response:
        return self.inner.execute(cdb, data_out=data_out, data_in_len=data_in_len, timeout=timeout)

    def close(self) -> None:
        self.inner.close()


class TestProbe:
    """A NOP first where the transport can ping; TEST UNIT READY when it cannot answer."""

    @pytest.mark.parametrize("answers", [True, False])
    def test_ping_then_tur(self, answers: bool) -> None:
        """The probe pings; an unanswered ping falls back to TUR, which answers."""
        with library(slots=2, drives=1) as lib:
            lib.insert(lib.drive_address(0), "PB0001L8")
            urls = lib.drive_urls(0)
            second = Pinging(open_transport(urls[1]), answers=answers)
            hook = TapeRecovery()
            dev = MultipathDevice(
                [open_transport(urls[0]), second],
                recovery=hook,
                handler=None,
                monitor=False,
            )
            send(dev, Rewind().to_bytes())
            lib.install(FaultPlan().add(LinkDown(device="drive0", port=0, trigger=nth_write(1))))
            assert send(dev, Write6.for_data(b"p").to_bytes(), data_out=b"p").ok
            assert second.pings == 1
            assert hook.stats.resent == 1
            assert lib.tape(0).records() == [b"p"]  # type: ignore[union-attr]
