"""Path-failure notification and fencing of the sg transport on a real kernel (QEMU guest).

The cut path's session gets a replacement timeout of 120 s, so the kernel holds the
commands on that path for two minutes. The transport must see the device blocked in
sysfs and give the command back as LINK_LOST at once; ``fence()`` must make a command
held during the cut fail instead of running when the portal returns; ``unfence()``
must bring the path back. What each run saw goes to .cache/vm/notify.json (for
docs/transports.md) before the assertions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tapepath.scsi import MoveMedium
from tests.vm.harness import REPO, GuestLibrary
from tests.vm.test_vm import TUR, barcode, element_status, node, ready

pytestmark = [
    pytest.mark.vm,
    pytest.mark.needs("qemu-system-x86_64", "tgtd", "tgtadm", "busybox", "apt-get"),
]

RECORD = REPO / ".cache" / "vm" / "notify.json"
LONG_TMO = 120
DID_NO_CONNECT = 0x01
STORAGE = 2  # element type code of storage slots


def run(
    g: GuestLibrary, path: str, cdb: bytes, *, timeout: float = 30.0, watch: bool = False
) -> Any:
    """One command through SgTransport in the guest (``watch``: with the state watch)."""
    return g.vm.call("execute", path=path, cdb=cdb.hex(), timeout=timeout, watch=watch)


def _record(name: str, value: Any) -> None:
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        data = {}
    data[name] = value
    RECORD.write_text(json.dumps(data, indent=1))


def _cut(g: GuestLibrary, index: int = 1) -> float:
    """Delete portal ``index`` and its connection on tgtd; the monotonic time of the cut."""
    (conn,) = [c for c in g.tgt.connections(g.vtl.tid) if c.sid == g.target_sids[index]]
    g.tgt.delete_portal(g.portals[index])
    g.tgt.delete_connection(conn.tid, conn.sid, conn.cid)
    return time.monotonic()


def _portal_back(g: GuestLibrary, index: int = 1, timeout: float = 60.0) -> float:
    """Add portal ``index`` again and wait for the guest's session; seconds it took."""
    start = time.monotonic()
    g.tgt.add_portal(g.portals[index])
    while time.monotonic() - start < timeout:
        if g.vm.call("session_state", session=g.sessions[index]) == "LOGGED_IN":
            g.relogged(index)
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"session {g.sessions[index]} did not log in again")


def _wait_state(g: GuestLibrary, path: str, want: str, timeout: float = 10.0) -> list[Any]:
    """Sample the node's device and session state until the device reads ``want``."""
    start = time.monotonic()
    samples: list[Any] = []
    while time.monotonic() - start < timeout:
        s = g.vm.call("states", path=path)
        samples.append([round(time.monotonic() - start, 3), s["device"], s["session"]])
        if s["device"] == want:
            return samples
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {want}: {samples[-3:]}")


@pytest.fixture
def long_tmo(guest: GuestLibrary) -> Iterator[GuestLibrary]:
    """Session 1 with a 120 s replacement timeout; the portal, state and timeout put back."""
    g = guest
    cut = node(g, g.vtl.changer_lun, 1)
    ready(g, cut)
    assert g.vm.call("set_recovery_tmo", session=g.sessions[1], seconds=LONG_TMO) == LONG_TMO
    try:
        yield g
    finally:
        if g.portals[1] not in g.tgt.portals:
            _portal_back(g)
        g.vm.call("close_transports")
        for p in g.vm.call("list_paths"):
            if p["state"] == "offline":
                g.vm.call("write_state", path=p["path"], value="running")
        g.vm.call("set_recovery_tmo", session=g.sessions[1], seconds=5)
        ready(g, node(g, g.vtl.changer_lun, 1))


class TestDetection:
    """A command on a cut path comes back as a path failure at once, not at its deadline."""

    def test_link_lost_long_before_deadline(self, long_tmo: GuestLibrary) -> None:
        """Replacement timeout 120 s, deadline 30 s: LINK_LOST within a second of the cut."""
        g = long_tmo
        cut = node(g, g.vtl.changer_lun, 1)
        other = node(g, g.vtl.changer_lun, 0)
        seen: dict[str, Any] = {"replacement_timeout": LONG_TMO}
        t_cut = _cut(g)
        try:
            first = run(g, cut, TUR, timeout=30.0, watch=True)
            seen["first_command"] = first
            seen["cut_to_answer_s"] = round(time.monotonic() - t_cut, 3)
            seen["states"] = _wait_state(g, cut, "blocked")
            held = run(g, cut, TUR, timeout=30.0, watch=True)
            seen["next_command"] = held
            seen["other_path"] = run(g, other, TUR, watch=True)
        finally:
            _record("detection", seen)
        assert first["outcome"] in ("link_lost", "no_connect"), first
        assert first["detail"]["maybe_executed"] == (first["outcome"] == "link_lost")
        assert first["duration"] < 2.0, first
        assert held["outcome"] == "no_connect", held
        assert not held["detail"]["maybe_executed"]
        assert "blocked" in held["detail"]["message"]
        assert held["duration"] < 0.5, held
        assert seen["other_path"]["outcome"] == "ok"
        assert g.vm.call("session_state", session=g.sessions[1]) == "FAILED"

    def test_held_command_released_by_block(self, long_tmo: GuestLibrary) -> None:
        """A command already waiting when the device blocks returns LINK_LOST, maybe executed."""
        g = long_tmo
        cut = node(g, g.vtl.changer_lun, 1)
        _cut(g)
        _wait_state(g, cut, "blocked")
        deadline_only = run(g, cut, TUR, timeout=2.0)
        watched = run(g, cut, TUR, timeout=30.0, watch=True)
        _record("held", {"deadline_only": deadline_only, "watched": watched})
        assert deadline_only["outcome"] == "timed_out"
        assert deadline_only["duration"] >= 1.9
        assert watched["outcome"] == "link_lost", watched
        assert watched["detail"]["maybe_executed"]
        assert "blocked" in watched["detail"]["message"]
        assert watched["duration"] < 1.0, watched


class TestFence:
    """fence() keeps a command held during a cut from running later; unfence() undoes it."""

    def _move_cdb(self, g: GuestLibrary) -> tuple[str, int, int]:
        src, dst = g.vtl.slot_addresses[0], g.vtl.slot_addresses[-1]
        cdb = MoveMedium(transport=g.vtl.transport_address, source=src, destination=dst)
        return cdb.to_bytes().hex(), src, dst

    def _slots(self, g: GuestLibrary, path: str, src: int, dst: int) -> tuple[Any, Any]:
        es = element_status(g, path, STORAGE)
        return barcode(es, src), barcode(es, dst)

    def test_unfenced_held_command_reaches_device_later(self, long_tmo: GuestLibrary) -> None:
        """Without a fence, a MOVE MEDIUM held during the cut is sent when the portal returns."""
        g = long_tmo
        cut, other = node(g, g.vtl.changer_lun, 1), node(g, g.vtl.changer_lun, 0)
        cdb, src, dst = self._move_cdb(g)
        before = self._slots(g, other, src, dst)
        assert before[0] is not None
        assert before[1] is None
        _cut(g)
        _wait_state(g, cut, "blocked")
        g.vm.call("start_raw", name="unfenced", path=cut, cdb=cdb)
        time.sleep(1.0)
        still_held = g.vm.call("raw_result", name="unfenced")
        back_s = _portal_back(g)
        late = g.vm.call("raw_result", name="unfenced", wait=20.0)
        after = self._slots(g, other, src, dst)
        _record("unfenced", {"held": still_held, "late": late, "back_s": back_s, "slots": after})
        if after[1] is not None:  # the late MOVE ran: put the cartridge back
            g.vm.call("execute", path=other, cdb=MoveMedium(
                transport=g.vtl.transport_address, source=dst, destination=src
            ).to_bytes().hex(), timeout=60.0)  # fmt: skip
        assert still_held is None
        assert late is not None
        assert late["host_status"] == 0, late  # delivered to the device, after the return
        if late["status"] == 0:
            assert after == (None, before[0])  # it ran late: the duplicate hazard
        else:
            assert late["sense"][4:6] == "06"  # tgtd's unit attention of the new nexus
            assert after == before

    def test_fence_during_block_stops_late_execution(self, long_tmo: GuestLibrary) -> None:
        """Fenced while blocked: the held MOVE fails at once and does not run after the return."""
        g = long_tmo
        cut, other = node(g, g.vtl.changer_lun, 1), node(g, g.vtl.changer_lun, 0)
        cdb, src, dst = self._move_cdb(g)
        before = self._slots(g, other, src, dst)
        g.vm.call("close_transports")  # no other fd on the node: it comes back as itself
        g.vm.call("close_devices")
        _cut(g)
        _wait_state(g, cut, "blocked")
        g.vm.call("start_raw", name="fenced", path=cut, cdb=cdb)
        time.sleep(1.0)
        assert g.vm.call("raw_result", name="fenced") is None
        t0 = time.monotonic()
        fence = g.vm.call("fence_path", path=cut)
        held = g.vm.call("raw_result", name="fenced", wait=10.0)
        fence_s = round(time.monotonic() - t0, 3)
        refused = run(g, cut, TUR, timeout=5.0, watch=True)
        back_s = _portal_back(g)
        time.sleep(1.0)
        after = self._slots(g, other, src, dst)
        unfence = g.vm.call("unfence_path", path=cut)
        again = [run(g, cut, TUR, timeout=10.0, watch=True) for _ in range(3)]
        _record(
            "fenced",
            {"fence": fence, "held": held, "fence_to_fail_s": fence_s, "refused": refused,
             "back_s": back_s, "slots": after, "unfence": unfence, "after_unfence": again},
        )  # fmt: skip
        assert fence["done"], fence
        assert held is not None, "the held command was not failed by the fence"
        assert held["host_status"] == DID_NO_CONNECT, held
        assert refused["outcome"] == "no_connect"
        assert not refused["detail"]["maybe_executed"]
        assert after == before, "the held MOVE MEDIUM ran after the portal returned"
        assert unfence["done"], unfence
        assert again[-1]["outcome"] == "ok", again
        assert again[-1]["status"] == 0, again

    def test_after_replacement_timeout(self, long_tmo: GuestLibrary) -> None:
        """Past the replacement timeout the device is transport-offline: the held command
        failed, fence() has nothing to write, unfence() works once the session is back."""
        g = long_tmo
        cut, other = node(g, g.vtl.changer_lun, 1), node(g, g.vtl.changer_lun, 0)
        cdb, src, dst = self._move_cdb(g)
        before = self._slots(g, other, src, dst)
        assert g.vm.call("set_recovery_tmo", session=g.sessions[1], seconds=2) == 2
        g.vm.call("close_transports")
        g.vm.call("close_devices")
        t_cut = _cut(g)
        _wait_state(g, cut, "blocked")
        g.vm.call("start_raw", name="expired", path=cut, cdb=cdb)
        samples = _wait_state(g, cut, "transport-offline", timeout=15.0)
        offline_after_s = round(time.monotonic() - t_cut, 3)
        held = g.vm.call("raw_result", name="expired", wait=5.0)
        fence = g.vm.call("fence_path", path=cut)
        early = g.vm.call("unfence_path", path=cut)  # the session is still down
        back_s = _portal_back(g)
        returned = g.vm.call("states", path=cut)
        refused = run(g, cut, TUR, timeout=5.0, watch=True)
        unfence = g.vm.call("unfence_path", path=cut)
        again = [run(g, cut, TUR, timeout=10.0, watch=True) for _ in range(3)]
        after = self._slots(g, other, src, dst)
        _record(
            "replacement_timeout_2s",
            {"samples": samples[-3:], "offline_after_s": offline_after_s, "held": held,
             "fence": fence, "early_unfence": early, "back_s": back_s, "returned": returned,
             "refused": refused, "unfence": unfence, "again": again[-1], "slots": after},
        )  # fmt: skip
        assert held is not None, "the held command outlived the replacement timeout"
        assert held["host_status"] != 0, held
        assert fence["done"], fence
        assert fence["state"] == "transport-offline", fence
        assert not early["done"], early
        assert refused["outcome"] == "no_connect", refused
        assert unfence["done"], unfence
        assert again[-1]["outcome"] == "ok", again
        assert again[-1]["status"] == 0, again
        assert after == before

    def test_fence_running_path_and_unfence(self, long_tmo: GuestLibrary) -> None:
        """On a running path fence() sets offline (commands refused), unfence() running."""
        g = long_tmo
        cut = node(g, g.vtl.changer_lun, 1)
        fence = g.vm.call("fence_path", path=cut)
        state = g.vm.call("states", path=cut)
        refused = run(g, cut, TUR, timeout=5.0, watch=True)
        kernel = run(g, cut, TUR, timeout=5.0)  # a transport without the fence's memory
        unfence = g.vm.call("unfence_path", path=cut)
        back = run(g, cut, TUR, timeout=5.0, watch=True)
        _record("fence_running", {"fence": fence, "kernel": kernel, "unfence": unfence})
        assert fence["done"], fence
        assert fence["state"] == "offline", fence
        assert state["device"] == "offline"
        assert refused["outcome"] == "no_connect"
        assert kernel["outcome"] == "no_connect"
        assert kernel["detail"]["host_status"] == DID_NO_CONNECT
        assert unfence["done"], unfence
        assert unfence["state"] == "running", unfence
        assert back["outcome"] == "ok", back
