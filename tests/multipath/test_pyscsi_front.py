"""A MultipathDevice under the pyscsi front end, on the VirtualLibrary."""

from __future__ import annotations

import pytest
from pyscsi.pyscsi.scsi import SCSI
from pyscsi.pyscsi.scsi_sense import SCSICheckCondition

from tapepath.contrib.pyscsi import PyscsiDevice
from tapepath.multipath import MultipathDevice, PathState
from tapepath.multipath.handlers import AluaHandler
from tapepath.testing.library import VirtualLibrary


class TestPyscsiOverMultipath:
    """pyscsi runs over a multipath changer and keeps working when a control path dies."""

    def test_inventory_survives_control_path_loss(self, virtual_library: VirtualLibrary) -> None:
        """READ ELEMENT STATUS through pyscsi answers before and after the failover."""
        lib = virtual_library
        dev = MultipathDevice(lib.changer_urls(), monitor=False, handler=AluaHandler())
        scsi = SCSI(PyscsiDevice(dev, timeout=10))
        for _ in range(3):  # the unit attention of the new nexus comes first
            try:
                scsi.testunitready()
                break
            except SCSICheckCondition:
                continue

        def full_slots() -> int:
            r = scsi.readelementstatus(0, 100, element_type=2, voltag=1, alloclen=8192).result
            return sum(1 for e in r["element_status_pages"][0]["element_descriptors"] if e["full"])

        before = full_slots()
        lib.fail_control_path()
        assert full_slots() == before
        assert dev.current_path is dev.group.find(lib.changer_urls()[0])
        assert dev.current_path is not None
        assert dev.current_path.state is PathState.ACTIVE
        with pytest.raises(SCSICheckCondition) as info:
            scsi.movemedium(0, 0x7FF0, 0x7FF1)  # no such elements: the device's answer
        assert info.value.asc == 0x21
