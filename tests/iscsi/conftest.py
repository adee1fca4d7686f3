"""Fixtures for the iSCSI interop tests: a private tgtd with a VTL, a disk and CHAP targets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from attrs import frozen

from tapepath.testing.tgtd import TgtdInstance, VtlLayout
from tests.support.tools import require_tool

CHAP_IQN = "iqn.2026-11.org.tapepath:chap"
MUTUAL_IQN = "iqn.2026-11.org.tapepath:mutual"
DIGEST_IQN = "iqn.2026-11.org.tapepath:digest"
INI_USER, INI_SECRET = "tapeuser", "initiatorpass1"
TGT_USER, TGT_SECRET = "tgtuser", "targetsecret12"


@frozen
class Lab:
    """The running target and what is configured on it."""

    tgt: TgtdInstance
    vtl: VtlLayout
    disk_lun: int

    def url(self, lun: int, *, iqn: str | None = None, query: str = "", auth: str = "") -> str:
        """``iscsi://[auth@]127.0.0.1:PORT/IQN/LUN[?query]``."""
        base = self.tgt.url(lun, iqn=iqn)
        if auth:
            base = base.replace("iscsi://", f"iscsi://{auth}@", 1)
        return base + (f"?{query}" if query else "")


def _disk(tgt: TgtdInstance, tid: int, iqn: str, name: str) -> Path:
    path = tgt.workdir / name
    with open(path, "wb") as f:
        f.truncate(4 * 1024 * 1024)
    tgt.new_target(tid, iqn)
    tgt.add_lun(tid, 1, path)
    return path


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """tgtd with a VTL and disk (tid 1), a CHAP target (2), mutual CHAP (3), digests (4)."""
    require_tool("tgtd", "tgtadm", "tgtimg")
    with TgtdInstance() as tgt:
        vtl = tgt.configure_vtl(drives=2, slots=8, disk_mb=64)
        assert vtl.disk_lun is not None
        _disk(tgt, 2, CHAP_IQN, "chap.img")
        tgt.add_chap(2, INI_USER, INI_SECRET)
        _disk(tgt, 3, MUTUAL_IQN, "mutual.img")
        tgt.tgtadm("--op", "bind", "--mode", "account", "--tid", "3", "--user", INI_USER)
        tgt.add_chap(3, TGT_USER, TGT_SECRET, outgoing=True)
        _disk(tgt, 4, DIGEST_IQN, "digest.img")
        tgt.require_digests(4)
        yield Lab(tgt, vtl, vtl.disk_lun)


@pytest.fixture
def own_tgtd() -> Iterator[Lab]:
    """A tgtd of the test's own (for pausing it), with a small VTL and disk."""
    require_tool("tgtd", "tgtadm", "tgtimg")
    with TgtdInstance() as tgt:
        vtl = tgt.configure_vtl(drives=1, slots=4, disk_mb=16)
        assert vtl.disk_lun is not None
        yield Lab(tgt, vtl, vtl.disk_lun)
