"""The tapepath CLI on a real iSCSI target (tgtd) through two portals, one of them cut."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest
from attrs import frozen

from tapepath.testing.tgtd import TgtdInstance, VtlLayout
from tests.cli.conftest import Run

pytestmark = [pytest.mark.needs("tgtd", "tgtadm", "tgtimg"), pytest.mark.tgtd]


@frozen
class Target:
    """tgtd with a VTL on two portals."""

    tgt: TgtdInstance
    vtl: VtlLayout
    ports: tuple[int, int]

    def urls(self, lun: int) -> str:
        """The -d text: one URL per portal."""
        return ",".join(self.tgt.url(lun, port=p) for p in self.ports)


@pytest.fixture
def target() -> Iterator[Target]:
    """A private tgtd: 2 drives, 8 slots, 1 import/export element, 2 portals."""
    with TgtdInstance(control_port=random.randint(20000, 32767)) as tgt:
        vtl = tgt.configure_vtl(drives=2, slots=8, import_export=1)
        second = tgt.add_portal()
        yield Target(tgt, vtl, (tgt.port, second))


class TestOverIscsi:
    """status, inventory and moves over iSCSI, before and after a portal is removed."""

    def test_status_and_moves(self, run: Run, target: Target) -> None:
        """Both paths show; with the first portal gone, a load still completes."""
        dev = target.urls(target.vtl.changer_lun)
        doc = run.json("status", "-d", dev)
        (device,) = doc["devices"]
        assert device["type"] == "changer"
        assert [p["state"] for p in device["paths"]] == ["active", "active"]
        assert sorted(p["role"] for p in device["paths"]) == ["active", "standby"]
        inv = run.json("inventory", "-d", dev)["inventory"]
        assert [s["barcode"] for s in inv["slots"] if s["full"]] == list(target.vtl.barcodes)
        target.tgt.delete_portal(target.ports[0])
        r = run("--json", "-d", dev, "load", "2", "1")
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout)["barcode"] == target.vtl.barcodes[1]
        inv = run.json("inventory", "-d", dev)["inventory"]
        assert inv["drives"][1]["barcode"] == target.vtl.barcodes[1]
        assert inv["slots"][1]["full"] is False
