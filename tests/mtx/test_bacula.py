"""Bacula's own mtx-changer script drives tapepath-mtx against a tgtd virtual library.

The changer LUN is reached through two tgtd portals (two iscsi:// paths given to
``-f`` as one comma-separated list). The script's list, listall, slots, loaded, load,
unload and transfer run once with both paths up, then again with the first portal
removed (its path refuses connections), where every command must fail over.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from attrs import frozen

import tapepath
from tapepath.testing.tgtd import TgtdInstance, VtlLayout
from tests.mtx.bacula import BaculaChanger, HarnessUnavailable, bacula_changer
from tests.support.tools import in_ci

pytestmark = [pytest.mark.needs("tgtd", "tgtadm", "tgtimg", "dpkg-deb", "perl"), pytest.mark.tgtd]


@frozen
class Lab:
    """tgtd with a VTL on two portals, and the rewritten Bacula script."""

    tgt: TgtdInstance
    vtl: VtlLayout
    ports: tuple[int, int]
    changer: BaculaChanger

    @property
    def ctl(self) -> str:
        """The changer device as Bacula passes it: both paths, comma-separated."""
        lun = self.vtl.changer_lun
        return ",".join(self.tgt.url(lun, port=p) for p in self.ports)

    def slot_of(self, barcode: str) -> int | None:
        """The mtx slot number holding ``barcode``, read with tapepath's own API."""
        with tapepath.open_library(self.ctl, monitor=False) as lib:
            inv = lib.inventory()
            for e in inv.storage:
                if e.full and e.barcode == barcode:
                    return e.ordinal
        return None

    def drive_holds(self, drive: int) -> str | None:
        """The barcode in drive ``drive`` (None when empty), read with tapepath's API."""
        with tapepath.open_library(self.ctl, monitor=False) as lib:
            d = lib.inventory().drive(drive)
            return d.barcode if d.full else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A private tgtd: 2 drives, 8 slots (6 cartridges), 1 import/export, 2 portals."""
    work = tmp_path_factory.mktemp("bacula")
    try:
        changer = bacula_changer(work)
    except HarnessUnavailable as exc:
        if in_ci():
            pytest.fail(f"CI=true and the bacula-sd package is not available: {exc}")
        pytest.skip(f"bacula-sd not available: {exc}")
    with TgtdInstance(control_port=random.randint(20000, 32767)) as tgt:
        vtl = tgt.configure_vtl(drives=2, slots=8, import_export=1)
        second = tgt.add_portal()
        yield Lab(tgt, vtl, (tgt.port, second), changer)


def lines(out: str) -> list[str]:
    """Non-empty output lines, trailing blanks dropped (mtx keeps a tag's padding, as tgtd
    sends it, and so does the script's perl)."""
    return [line.rstrip() for line in out.splitlines() if line.strip()]


def run_ok(
    lab: Lab, command: str, slot: str = "0", drive: str = "0", device: str = "/dev/nst0"
) -> str:
    """Run the script; it must exit 0 with nothing on stderr; return stdout."""
    r = lab.changer(lab.ctl, command, slot, device, drive)
    assert r.returncode == 0, (command, r.stdout, r.stderr)
    assert r.stderr == "", (command, r.stderr)
    return r.stdout


def check_round(lab: Lab, src: int, dst: int) -> None:
    """slots, list, listall, loaded, load, unload and transfer, checked against tgtd."""
    vtl = lab.vtl
    nslots = len(vtl.slot_addresses) + len(vtl.import_export_addresses)
    assert lines(run_ok(lab, "slots")) == [str(nslots)]
    barcode = lab.changer(lab.ctl, "list").stdout
    listed = dict(line.split(":", 1) for line in lines(barcode))
    expected = {}
    for code in vtl.barcodes:
        slot = lab.slot_of(code)
        if slot is not None:
            expected[str(slot)] = code
    assert listed == expected
    listall = lines(run_ok(lab, "listall"))
    assert listall[:2] == ["D:0:E", "D:1:E"]
    assert len(listall) == 2 + nslots
    for n in range(1, nslots + 1):
        kind = "I" if n > len(vtl.slot_addresses) else "S"
        want = f"{kind}:{n}:F:{expected[str(n)]}" if str(n) in expected else f"{kind}:{n}:E"
        assert listall[1 + n] == want
    assert lines(run_ok(lab, "loaded", drive="1")) == ["0"]

    code = expected[str(src)]
    out = run_ok(lab, "load", slot=str(src), drive="1")
    assert lines(out) == [f"Loading media from Storage Element {src} into drive 1...done"]
    assert lab.drive_holds(1) == code
    assert lines(run_ok(lab, "loaded", drive="1")) == [str(src)]
    assert f"{src}:{code}" in lines(run_ok(lab, "list"))
    assert f"D:1:F:{src}:{code}" in lines(run_ok(lab, "listall"))

    out = run_ok(lab, "unload", slot=str(src), drive="1")
    assert lines(out) == [f"Unloading drive 1 into Storage Element {src}...done"]
    assert lab.drive_holds(1) is None
    assert lab.slot_of(code) == src

    # transfer: Bacula passes the destination slot as the fourth argument
    assert run_ok(lab, "transfer", slot=str(src), device=str(dst)) == ""
    assert lab.slot_of(code) == dst


class TestBaculaMtxChanger:
    """Bacula's mtx-changer, unmodified but for its three hard-coded paths."""

    def test_both_paths_up(self, lab: Lab) -> None:
        """Every command works and the library ends as the commands say."""
        check_round(lab, src=1, dst=8)

    def test_first_path_cut(self, lab: Lab) -> None:
        """With the first portal removed every command fails over to the second path."""
        lab.tgt.delete_portal(lab.ports[0])
        try:
            check_round(lab, src=2, dst=7)
            # an error still looks like mtx's: a full destination slot
            r = lab.changer(lab.ctl, "transfer", "3", "4")
            assert r.returncode == 1
            assert r.stderr.endswith("is Already Full\n")
        finally:
            lab.tgt.add_portal(lab.ports[0])


def test_harness_rewrites_only_the_three_paths(tmp_path: Path) -> None:
    """The copy differs from the packaged script only in MTX, the conf path and the work dir."""
    try:
        changer = bacula_changer(tmp_path)
    except HarnessUnavailable as exc:
        pytest.skip(str(exc))
    text = changer.script.read_text()
    assert "/usr/sbin/mtx" not in text
    assert "/etc/bacula" not in text
    assert "/var/lib/bacula" not in text
    assert f". {changer.conf}" in text
