"""Symmetric multipath over a real iSCSI target: tgtd with two portals to one target."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tapepath.multipath import MultipathDevice, PathMonitor, PathState
from tapepath.multipath.discovery import discover
from tapepath.testing.tgtd import TgtdInstance, VtlLayout

pytestmark = [pytest.mark.needs("tgtd", "tgtadm", "tgtimg"), pytest.mark.tgtd]

INQUIRY = bytes((0x12, 0, 0, 0, 96, 0))
RES = bytes((0xB8, 0x10, 0, 0, 0, 32, 0, 0, 0x10, 0, 0, 0))  # READ ELEMENT STATUS


@pytest.fixture
def lab() -> Iterator[tuple[TgtdInstance, VtlLayout, int, int]]:
    """A private tgtd with a VTL reachable through two loopback portals."""
    with TgtdInstance() as tgt:
        layout = tgt.configure_vtl(drives=1, slots=4)
        second = tgt.add_portal()
        yield tgt, layout, tgt.port, second


def _ok(dev: MultipathDevice, cdb: bytes, n: int) -> None:
    for _ in range(4):  # a new nexus starts with unit attentions
        r = dev.execute(cdb, data_in_len=n, timeout=10)
        if r.ok:
            return
        sense = r.sense_data
        assert sense is not None
        assert sense.sense_key == 6, sense
    raise AssertionError("no GOOD answer")


def _p(dev: MultipathDevice, url: str) -> Any:
    p = dev.group.find(url)
    assert p is not None
    return p


class TestTwoPortals:
    """Cut one connection: commands go on through the other; the monitor brings it back."""

    def test_cut_and_return(self, lab: tuple[TgtdInstance, VtlLayout, int, int]) -> None:
        """The changer answers through portal B while portal A is cut, then A is reinstated."""
        tgt, layout, port_a, port_b = lab
        url_a = tgt.url(layout.changer_lun, port=port_a)
        url_b = tgt.url(layout.changer_lun, port=port_b)
        mon = PathMonitor()
        dev = MultipathDevice(
            [url_a, url_b], name="tgt-changer", monitor=mon, checker="tur", polling_interval=0.05
        )
        try:
            _ok(dev, RES, 4096)
            assert dev.current_path is _p(dev, url_a)
            _ok(dev, INQUIRY, 96)  # log in on both paths: the second session is B's
            mon.run_once()
            time.sleep(0.06)
            mon.run_once()
            sessions = tgt.sessions(layout.tid)
            assert len(sessions) == 2
            tgt.delete_portal(port_a)  # no reconnect through A
            tgt.delete_connection(layout.tid, sessions[0])
            _ok(dev, RES, 4096)
            assert _p(dev, url_a).state is PathState.FAILED
            assert dev.current_path is _p(dev, url_b)
            tgt.add_portal(port_a)
            for _ in range(100):
                mon.run_once()
                if _p(dev, url_a).state is PathState.ACTIVE:
                    break
                time.sleep(0.05)
            assert _p(dev, url_a).state is PathState.ACTIVE
            _ok(dev, RES, 4096)
        finally:
            dev.close()

    def test_nop_checker_finds_idle_cut(
        self, lab: tuple[TgtdInstance, VtlLayout, int, int]
    ) -> None:
        """With no command outstanding, the iscsi-nop checker finds a cut connection and,
        once the portal answers again, logs in and reinstates the path."""
        tgt, layout, port_a, port_b = lab
        url_a = tgt.url(layout.changer_lun, port=port_a)
        url_b = tgt.url(layout.changer_lun, port=port_b)
        mon = PathMonitor()
        dev = MultipathDevice(
            [url_a, url_b], monitor=mon, checker="iscsi-nop", polling_interval=0.05
        )
        try:
            _ok(dev, INQUIRY, 96)  # logs in on A
            sessions = tgt.sessions(layout.tid)
            tgt.delete_portal(port_a)
            tgt.delete_connection(layout.tid, sessions[0])
            for _ in range(100):
                mon.run_once()
                if _p(dev, url_a).state is PathState.FAILED:
                    break
                time.sleep(0.05)
            assert _p(dev, url_a).state is PathState.FAILED
            tgt.add_portal(port_a)
            for _ in range(100):
                mon.run_once()
                if _p(dev, url_a).state is PathState.ACTIVE:
                    break
                time.sleep(0.05)
            assert _p(dev, url_a).state is PathState.ACTIVE
        finally:
            dev.close()

    def test_discovery_groups_portals(self, lab: tuple[TgtdInstance, VtlLayout, int, int]) -> None:
        """Discovery through both portals finds each LUN once, with two paths."""
        _tgt, _layout, port_a, port_b = lab
        devs = discover(
            [f"iscsi://127.0.0.1:{port_a}", f"iscsi://127.0.0.1:{port_b}"], monitor=False
        )
        try:
            kinds = sorted(
                (d.device_type or 0, len(d.paths)) for d in devs if d.device_type in (1, 8)
            )
            assert kinds == [(1, 2), (8, 2)]
        finally:
            for d in devs:
                d.close()
