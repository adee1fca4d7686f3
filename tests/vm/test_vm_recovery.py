"""Recovery with the real kernel's sg nodes: a path cut during a MOVE MEDIUM sequence.

In the guest, ``tests/proof/vm_moves.py`` opens the changer with
``tapepath.open_library`` over its two sg nodes (one per iSCSI session) and loads and
unloads one cartridge eight times. After the second move it waits while the host cuts
the session the library is using (its portal, then its connection, on the tgtd side).
The library must go on over the other sg node: every move done exactly once, as the
inventory after each move shows, with the cut path FAILED.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest

from tests.vm.harness import REPO, GuestLibrary

pytestmark = [
    pytest.mark.vm,
    pytest.mark.needs("qemu-system-x86_64", "tgtd", "tgtadm", "busybox", "apt-get"),
]

SCRIPT = REPO / "tests" / "proof" / "vm_moves.py"
RECORD = REPO / ".cache" / "vm" / "move-sequence-cut.json"
"""What the last run saw (for docs/failover.md), written before the assertions."""
HELD_RECORD = REPO / ".cache" / "vm" / "held-move.json"
MOVES = 8
CUT_AFTER = 2
PROGRESS = "/tmp/tapepath-vm-moves.progress"
OUT = "/tmp/tapepath-vm-moves.json"
GO = "/tmp/tapepath-vm-moves.go"
BACK = "/tmp/tapepath-vm-moves.back"


def _changer_node(g: GuestLibrary, portal_index: int) -> str:
    session = g.sessions[portal_index]
    for p in g.vm.call("list_paths"):
        if p["session"] == session and str(p["hctl"]).endswith(f":{g.vtl.changer_lun}"):
            return f"sg://{p['path']}"
    raise AssertionError(f"no changer node on session {session}")


def _cut(g: GuestLibrary, index: int) -> None:
    """Portal ``index`` goes away and its connection is deleted on the target side."""
    (conn,) = [c for c in g.tgt.connections(g.vtl.tid) if c.sid == g.target_sids[index]]
    g.tgt.delete_portal(g.portals[index])
    g.tgt.delete_connection(conn.tid, conn.sid, conn.cid)


def _restore(g: GuestLibrary, index: int, timeout: float = 60.0) -> None:
    """Portal ``index`` back; wait until the guest's session is logged in again."""
    g.tgt.add_portal(g.portals[index])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if g.vm.call("session_state", session=g.sessions[index]) == "LOGGED_IN":
            g.relogged(index)
            _rescan(g, index, deadline)
            return
        time.sleep(0.2)
    raise AssertionError(f"session {g.sessions[index]} did not log in again")


def _rescan(g: GuestLibrary, index: int, deadline: float) -> None:
    """Scan the SCSI hosts until the session's changer node is back.

    Recovery fences a path that may still hold a move: on a blocked device that deletes
    the logical unit, and the monitor that would scan it back is not running here.
    """
    while time.monotonic() < deadline:
        g.vm.sh("sh", "-c", "for h in /sys/class/scsi_host/host*; do echo '- - -' > $h/scan; done")
        try:
            _changer_node(g, index)
        except AssertionError:
            time.sleep(0.2)
        else:
            return
    raise AssertionError(f"the changer node of session {g.sessions[index]} did not come back")


def _wait_for(g: GuestLibrary, what: str, done: Any, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = g.vm.sh("cat", what)["stdout"]
        if done(text):
            return str(text)
        time.sleep(0.1)
    log = g.vm.sh("cat", OUT + ".log")["stdout"]
    raise AssertionError(f"timed out waiting on {what} (last: {text!r}); guest log:\n{log}")


class TestMoveSequenceCut:
    """open_library over two sg nodes: a cut session mid-sequence, the moves go on."""

    def _start(self, g: GuestLibrary, urls: list[str], moves: int, *, final: bool) -> None:
        g.vm.sh("rm", "-f", PROGRESS, OUT, GO, BACK)
        command = (
            f"{sys.executable} {SCRIPT} --urls {','.join(urls)} --moves {moves} "
            f"--pause 0.2 --progress {PROGRESS} --out {OUT} "
            f"--wait-after {CUT_AFTER} --wait-file {GO}"
            + (f" --final-file {BACK}" if final else "")
            + f" > {OUT}.log 2>&1 &"
        )
        g.vm.sh("sh", "-c", command)

    def test_moves_continue_over_the_other_sg_node(self, guest: GuestLibrary) -> None:
        """Each of the eight moves done once; those after the cut went over the other node."""
        g = guest
        urls = [_changer_node(g, 0), _changer_node(g, 1)]
        self._start(g, urls, MOVES, final=False)
        cut = False
        try:
            _wait_for(g, PROGRESS, lambda t: len(t.split()) >= CUT_AFTER, 120.0)
            _cut(g, 0)
            cut = True
            g.vm.sh("touch", GO)  # the guest waits for this after move CUT_AFTER
            text = _wait_for(g, OUT, lambda t: t.strip().startswith("{"), 180.0)
        finally:
            if cut:
                _restore(g, 0)
        result = json.loads(text)
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(result, indent=1))
        assert "failed" not in result, result
        moves = result["moves"]
        assert len(moves) == MOVES
        home = result["slot_address"]
        for m in moves:
            assert m["error"] is None, m
            if m["op"] == "load":  # the cartridge is in the drive, once: its slot is empty
                assert (m["drive_barcode"], m["slot_barcode"]) == (result["barcode"], None), m
                assert m["drive_source"] == home, m
            else:
                assert (m["drive_barcode"], m["slot_barcode"]) == (None, result["barcode"]), m
        first, second = urls
        assert result["states"][first] == "failed", result["states"]
        assert result["states"][second] == "active", result["states"]
        for m in moves[:CUT_AFTER]:  # before the cut: all on the first node
            assert m["sent"][second] == 0, m
        assert moves[CUT_AFTER]["sent"][second] > 0, moves[CUT_AFTER]  # it failed over
        for m in moves[CUT_AFTER + 1 :]:  # after the failover: all on the second node
            assert m["sent"][first] == 0, m
            assert m["sent"][second] > 0, m

    def test_a_move_held_on_the_cut_path_does_not_run_when_it_returns(
        self, guest: GuestLibrary
    ) -> None:
        """The MOVE the kernel still holds on the cut session never runs after the failover.

        The cut session gets a 30 s replacement timeout, so the kernel still holds the
        first move after the cut (a load) when the portal returns, after the next move
        (an unload) has put the cartridge back in its slot. Recovery resent that load on
        the other node; if the held copy ran on the session's return, the cartridge would
        silently go back into the drive. (Seen here: it does not run, because it is the
        first command on the new I_T nexus and tgtd answers it with the unit attention
        29/00, which the guest kernel logs as "Power-on or device reset occurred"; since
        recovery fences such a path before resending, the held copy is also failed by the
        kernel when the device goes offline.)
        """
        g = guest
        urls = [_changer_node(g, 0), _changer_node(g, 1)]
        assert g.vm.call("set_recovery_tmo", session=g.sessions[0], seconds=30) == 30
        cut = False
        try:
            self._start(g, urls, CUT_AFTER + 2, final=True)
            _wait_for(g, PROGRESS, lambda t: len(t.split()) >= CUT_AFTER, 120.0)
            _cut(g, 0)
            cut = True
            g.vm.sh("touch", GO)
            _wait_for(g, PROGRESS, lambda t: len(t.split()) >= CUT_AFTER + 2, 60.0)
            _restore(g, 0)  # within the 30 s: the session comes back with what it held
            cut = False
            g.vm.sh("touch", BACK)
            text = _wait_for(g, OUT, lambda t: t.strip().startswith("{"), 120.0)
        finally:
            if cut:
                _restore(g, 0)
            g.vm.call("set_recovery_tmo", session=g.sessions[0], seconds=5)
        result = json.loads(text)
        result["guest_kernel_log"] = g.vm.sh("dmesg")["stdout"].splitlines()[-40:]
        HELD_RECORD.write_text(json.dumps(result, indent=1))
        assert "failed" not in result, result
        assert all(m["error"] is None for m in result["moves"]), result["moves"]
        last = result["moves"][-1]
        assert (last["drive_barcode"], last["slot_barcode"]) == (None, result["barcode"]), last
        final = result["final"]
        assert (final["drive_barcode"], final["slot_barcode"]) == (None, result["barcode"]), (
            f"after the cut session came back: {final}"
        )
