"""Multipath against the VirtualLibrary: control paths, ALUA, drive ports, the monitor."""

from __future__ import annotations

import time
from typing import Any

import pytest
from structlog.testing import capture_logs

from tapepath.multipath import CommandInDoubtError, MultipathDevice, PathMonitor, PathState
from tapepath.multipath.handlers import AluaHandler
from tapepath.testing.faults import AtCommand, ControlPathFailure, FaultPlan, ResponseLost, When
from tapepath.testing.library import VirtualLibrary
from tapepath.testing.nexus import AluaState

TUR = bytes(6)
RES = bytes((0xB8, 0x12, 0, 0, 0, 10, 0, 0, 0x10, 0, 0, 0))  # READ ELEMENT STATUS, VOLTAG
VPD83 = bytes((0x12, 1, 0x83, 1, 0, 0))


def _changer(lib: VirtualLibrary, **kw: Any) -> MultipathDevice:
    kw.setdefault("monitor", False)
    return MultipathDevice(lib.changer_urls(), name="changer", handler=AluaHandler(), **kw)


def _ok(dev: MultipathDevice, cdb: bytes, n: int = 0) -> None:
    """Send, passing the first-command unit attentions a new nexus starts with."""
    for _ in range(4):
        r = dev.execute(cdb, data_in_len=n, timeout=5)
        if r.ok:
            return
        assert r.check_condition
        sense = r.sense_data
        assert sense is not None
        assert sense.sense_key == 6, sense
    raise AssertionError("no GOOD answer")


def _p(dev: MultipathDevice, url: str) -> Any:
    p = dev.group.find(url)
    assert p is not None
    return p


class TestControlPaths:
    """The changer's active and passive control paths (ALUA explicit)."""

    def test_attach_finds_active(self, virtual_library: VirtualLibrary) -> None:
        """Attach marks the active control path ACTIVE and the passive one PASSIVE."""
        lib = virtual_library
        dev = _changer(lib)
        a, b = lib.changer_urls()
        assert _p(dev, a).state is PathState.ACTIVE
        assert _p(dev, b).state is PathState.PASSIVE
        _ok(dev, RES, 4096)
        assert dev.current_path is _p(dev, a)

    def test_control_path_failure(self, virtual_library: VirtualLibrary) -> None:
        """The active control-path drive fails; the library moves on, so do we."""
        lib = virtual_library
        dev = _changer(lib)
        a, b = lib.changer_urls()
        _ok(dev, RES, 4096)
        with capture_logs() as logs:
            lib.fail_control_path()
            _ok(dev, RES, 4096)
        assert _p(dev, a).state is PathState.FAILED
        assert _p(dev, b).state is PathState.ACTIVE
        assert lib.active_control_path() == 1
        changes = [(e["path"], e["new"]) for e in logs if e["event"] == "path_state_changed"]
        assert (a, "failed") in changes
        assert (b, "active") in changes

    def test_link_cut_activates_passive(self, virtual_library: VirtualLibrary) -> None:
        """The library does not switch by itself on a cut link: SET TARGET PORT GROUPS does."""
        lib = virtual_library
        dev = _changer(lib)
        _ok(dev, RES, 4096)
        lib.set_link("changer", 0, False)
        _ok(dev, RES, 4096)
        assert lib.control_path_states() == [AluaState.STANDBY, AluaState.ACTIVE_OPTIMIZED]

    def test_library_switches_by_itself(self, virtual_library: VirtualLibrary) -> None:
        """The library moves its active control path: 2A/06 re-reads the states."""
        lib = virtual_library
        dev = _changer(lib)
        a, b = lib.changer_urls()
        _ok(dev, RES, 4096)
        lib.set_active_control_path(1)
        _ok(dev, RES, 4096)  # port 1's new nexus still has its power-on unit attention
        assert _p(dev, a).state is PathState.PASSIVE
        assert _p(dev, b).state is PathState.ACTIVE
        assert dev.current_path is _p(dev, b)

    def test_without_alua_standby_answer(self, virtual_library: VirtualLibrary) -> None:
        """With no handler, the passive control path shows itself by 02/04/0B."""
        lib = virtual_library
        a, b = lib.changer_urls()
        dev = MultipathDevice([b, a], name="changer", handler=None, monitor=False)
        _ok(dev, RES, 4096)  # tried on b first: standby, so it went to a
        assert _p(dev, b).state is PathState.PASSIVE
        assert dev.current_path is _p(dev, a)
        lib.fail_control_path()  # the library activates b by itself
        _ok(dev, RES, 4096)
        assert _p(dev, b).state is PathState.ACTIVE

    def test_fault_plan_control_path(self) -> None:
        """A ControlPathFailure injected at the third command is survived."""
        plan = FaultPlan().add(ControlPathFailure(device="changer", trigger=AtCommand(3)))
        with VirtualLibrary("mp-fault-cp", fault_plan=plan) as lib:
            dev = _changer(lib)
            for _ in range(6):
                _ok(dev, RES, 4096)
            assert lib.active_control_path() == 1

    def test_monitor_reinstates_repaired(self, virtual_library: VirtualLibrary) -> None:
        """After repair, the monitor's rtpg check brings the path back as PASSIVE."""
        lib = virtual_library
        mon = PathMonitor()
        dev = _changer(lib, monitor=mon, polling_interval=0.001)
        a, _b = lib.changer_urls()
        _ok(dev, RES, 4096)
        lib.fail_control_path()
        _ok(dev, RES, 4096)
        assert _p(dev, a).state is PathState.FAILED
        lib.repair_control_path(0)
        for _ in range(100):
            mon.run_once()
            if _p(dev, a).state is not PathState.FAILED:
                break
            time.sleep(0.002)
        assert _p(dev, a).state is PathState.PASSIVE


class TestDrivePorts:
    """A tape drive's symmetric ports."""

    def test_safe_command_fails_over(self, virtual_library: VirtualLibrary) -> None:
        """INQUIRY on a cut port is resent on the other port."""
        lib = virtual_library
        urls = lib.drive_urls(0)
        dev = MultipathDevice(urls, monitor=False)
        _ok(dev, VPD83, 256)
        lib.set_link("drive0", 0, False)
        _ok(dev, VPD83, 256)
        assert _p(dev, urls[0]).state is PathState.FAILED
        assert dev.current_path is _p(dev, urls[1])

    def test_write_in_doubt(self) -> None:
        """A WRITE whose response is lost is not resent (the recovery layer decides); one
        refused by a link already down is resent on the other port."""
        write = bytes((0x0A, 0, 0, 0, 16, 0))  # WRITE(6), variable, 16 bytes
        cut = When(lambda info: info.opcode == 0x0A)
        plan = FaultPlan().add(ResponseLost(device="drive0", port=0, trigger=cut))
        with VirtualLibrary("mp-write-doubt", fault_plan=plan) as lib:
            dev = MultipathDevice(lib.drive_urls(0), monitor=False)
            with pytest.raises(CommandInDoubtError) as info:
                dev.execute(write, data_out=b"x" * 16, timeout=5)
            assert info.value.path == lib.drive_urls(0)[0]
            assert info.value.maybe_executed
            lib.set_link("drive0", 1, False)
            lib.set_link("drive0", 0, True)
            dev.group.reinstate(_p(dev, lib.drive_urls(0)[0]), PathState.ACTIVE, "test")
            r = dev.execute(write, data_out=b"y" * 16, timeout=5)
            assert not r.path_failed  # the drive answered (no tape: 02/3A), on port 0
            assert dev.current_path is _p(dev, lib.drive_urls(0)[0])
