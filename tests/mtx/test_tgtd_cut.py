"""tapepath-mtx's commands over tgtd when a live iSCSI connection is deleted under them.

The session opens both paths of the changer LUN (two portals); then the first path's
connection is deleted on the target side (``tgtadm --op delete --mode conn``) and its
portal removed, so it can neither answer nor come back. The next command meets the dead
connection and must complete once, on the other path.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import pytest

import tapepath
from tapepath.mtx.args import Command
from tapepath.mtx.commands import MtxSession
from tapepath.testing.tgtd import TgtdInstance, VtlLayout

pytestmark = [pytest.mark.needs("tgtd", "tgtadm", "tgtimg"), pytest.mark.tgtd]


@pytest.fixture
def tgt() -> Iterator[tuple[TgtdInstance, VtlLayout, str]]:
    """tgtd with a 2-drive, 8-slot library on two portals; the -f text for both paths."""
    with TgtdInstance(control_port=random.randint(20000, 32767)) as t:
        vtl = t.configure_vtl(drives=2, slots=8, import_export=1)
        second = t.add_portal()
        ctl = ",".join(t.url(vtl.changer_lun, port=p) for p in (t.port, second))
        yield t, vtl, ctl


def cut_first_path(t: TgtdInstance) -> None:
    """Delete the first login's connection (the first path's) and its portal."""
    t.delete_portal(t.port)
    first = min(t.connections(), key=lambda c: c.sid)
    t.delete_connection(first.tid, first.sid, first.cid)


class TestConnectionDeleted:
    """Commands of one mtx call keep working when a path dies between them."""

    def test_load_after_cut(self, tgt: tuple[TgtdInstance, VtlLayout, str]) -> None:
        """status on both paths, cut, then load: done once, on the surviving path."""
        t, vtl, ctl = tgt
        out, err = io.StringIO(), io.StringIO()
        session = MtxSession(out=out, err=err)
        try:
            session.set_device(ctl)
            session.run(Command("status"))
            assert len(t.connections()) == 2
            cut_first_path(t)
            session.run(Command("load", 3, 1))
            session.run(Command("unload", 3, 1))
            session.run(Command("load", 4, 0))
        finally:
            session.close()
        assert err.getvalue() == ""
        assert out.getvalue().endswith(
            "Loading media from Storage Element 3 into drive 1...done\n"
            "Unloading drive 1 into Storage Element 3...done\n"
            "Loading media from Storage Element 4 into drive 0...done\n"
        )
        with tapepath.open_library(ctl, monitor=False) as lib:
            inv = lib.inventory()
        assert inv.drive(1).full is False
        assert inv.slot(3).barcode == vtl.barcodes[2]
        assert inv.drive(0).barcode == vtl.barcodes[3]
        assert inv.slot(4).full is False
