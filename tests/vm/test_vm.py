"""tapepath's sg transport on real /dev/sgN nodes of a real Linux kernel (QEMU guest).

The guest is logged in to a tgtd VTL through two portals, so every logical unit has
two sg nodes. Commands run in the guest (``guest_ops``); CDBs are built and answers
parsed here with tapepath.scsi. The path-cut tests come last: they change the
sessions' state.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import pytest

from tapepath.scsi import (
    DeviceIdentification,
    ElementStatus,
    Inquiry,
    MoveMedium,
    Read6,
    ReadElementStatus,
    Rewind,
    StandardInquiry,
    SupportedVpdPages,
    TestUnitReady,
    UnitSerialNumber,
    Write6,
    WriteFilemarks6,
    decode_sense,
)
from tests.vm.harness import REPO, GuestLibrary

pytestmark = [
    pytest.mark.vm,
    pytest.mark.needs("qemu-system-x86_64", "tgtd", "tgtadm", "busybox", "apt-get"),
]

TUR = TestUnitReady().to_bytes()
CHANGER, TAPE, DISK = 8, 1, 0
DID_NO_CONNECT = 0x01
PHASE_TMO = 8
PHASES_FILE = REPO / ".cache" / "vm" / "cut-phases.json"


def run(
    g: GuestLibrary,
    path: str,
    cdb: bytes,
    *,
    data_in_len: int = 0,
    data_out: bytes = b"",
    timeout: float = 30.0,
) -> dict[str, Any]:
    """One command through SgTransport in the guest."""
    res: dict[str, Any] = g.vm.call(
        "execute",
        path=path,
        cdb=cdb.hex(),
        data_in_len=data_in_len,
        data_out=data_out.hex(),
        timeout=timeout,
    )
    return res


def good(r: dict[str, Any]) -> None:
    """Assert a command was delivered and answered GOOD."""
    assert r["outcome"] == "ok", r
    assert r["status"] == 0, r


def ok_data(g: GuestLibrary, path: str, cdb: bytes, n: int) -> bytes:
    """Run a data-in command that must succeed (a unit attention is cleared first)."""
    for _ in range(3):
        r = run(g, path, cdb, data_in_len=n)
        if r["outcome"] == "ok" and r["status"] == 0:
            return bytes.fromhex(r["data"])
        if r["outcome"] == "ok" and decode_sense(bytes.fromhex(r["sense"])).sense_key == 6:
            continue
        raise AssertionError(f"{cdb.hex()} on {path}: {r}")
    raise AssertionError(f"{cdb.hex()} on {path}: unit attentions do not stop")


def ready(g: GuestLibrary, path: str, tries: int = 20) -> None:
    """TEST UNIT READY until GOOD (unit attentions and becoming-ready are waited out)."""
    last: dict[str, Any] = {}
    for _ in range(tries):
        last = run(g, path, TUR)
        if last["outcome"] == "ok" and last["status"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never became ready: {last}")


def paths_of(g: GuestLibrary) -> list[dict[str, Any]]:
    """The guest's sg nodes (tapepath's sysfs enumeration)."""
    res: list[dict[str, Any]] = g.vm.call("list_paths")
    return res


def node(g: GuestLibrary, lun: int, portal_index: int) -> str:
    """The sg node of ``lun`` reached through portal 0 or 1."""
    session = g.sessions[portal_index]
    for p in paths_of(g):
        if p["session"] == session and p["hctl"].endswith(f":{lun}"):
            return str(p["path"])
    raise AssertionError(f"no node for LUN {lun} on session {session}")


def element_status(g: GuestLibrary, path: str, element_type: int) -> ElementStatus:
    """READ ELEMENT STATUS of one element type with volume tags (tgtd wants one type)."""
    cdb = ReadElementStatus(
        element_type=element_type, voltag=True, number_of_elements=64, allocation_length=1024
    ).to_bytes()
    return ElementStatus.from_bytes(ok_data(g, path, cdb, 1024))


def barcode(es: ElementStatus, address: int) -> str | None:
    """The stripped primary volume tag at ``address``, None when empty."""
    d = es.get(address)
    assert d is not None, f"element {address} not reported"
    if not d.full or d.primary_tag is None:
        return None
    return d.primary_tag.identifier.decode().strip()


def move(g: GuestLibrary, path: str, src: int, dst: int) -> None:
    """MOVE MEDIUM that must succeed."""
    cdb = MoveMedium(transport=g.vtl.transport_address, source=src, destination=dst).to_bytes()
    r = run(g, path, cdb, timeout=60)
    good(r)


class TestEnumeration:
    """The sg nodes as tapepath's sysfs enumeration lists them."""

    def test_two_paths_per_logical_unit(self, guest: GuestLibrary) -> None:
        """Every logical unit has one node per session, grouped by its VPD 83h identifier."""
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in paths_of(guest):
            assert p["identifier"], p
            groups[p["identifier"]].append(p)
        expected_luns = {0, *guest.vtl.luns}
        assert len(groups) == len(expected_luns)
        for members in groups.values():
            assert sorted(m["session"] for m in members) == sorted(guest.sessions)
            assert len({m["hctl"].rsplit(":", 1)[1] for m in members}) == 1  # same LUN
            assert len({m["type"] for m in members}) == 1
        types = sorted(ms[0]["type"] for ms in groups.values())
        assert types.count(CHANGER) == 1
        assert types.count(TAPE) == len(guest.vtl.drive_luns)

    def test_sysfs_identifier_matches_inquiry(self, guest: GuestLibrary) -> None:
        """The identifier sysfs gave is the one VPD page 83h says through the node itself."""
        for p in paths_of(guest):
            page = ok_data(guest, p["path"], Inquiry(evpd=True, page_code=0x83).to_bytes(), 252)
            ident = DeviceIdentification.from_bytes(page)
            assert ident.logical_unit_designator() is not None
            assert bytes.fromhex(p["vpd_pg83"]) == page[: len(bytes.fromhex(p["vpd_pg83"]))]


class TestInquiry:
    """INQUIRY and VPD pages on every node, against sysfs and sg_inq."""

    def test_standard_inquiry_every_node(self, guest: GuestLibrary) -> None:
        """Standard INQUIRY decodes; type, vendor and product agree with sysfs."""
        for p in paths_of(guest):
            inq = StandardInquiry.from_bytes(ok_data(guest, p["path"], Inquiry().to_bytes(), 96))
            assert inq.peripheral_device_type == p["type"]
            assert inq.vendor == p["vendor"] == "IET"
            assert inq.product == p["product"]

    def test_vpd_pages_every_node(self, guest: GuestLibrary) -> None:
        """Pages 00h, 80h and 83h: the serial is the same through both paths of a unit."""
        serials: dict[str, set[str]] = defaultdict(set)
        for p in paths_of(guest):
            sup = SupportedVpdPages.from_bytes(
                ok_data(guest, p["path"], Inquiry(evpd=True, page_code=0).to_bytes(), 252)
            )
            assert {0x80, 0x83} <= set(sup.pages)
            usn = UnitSerialNumber.from_bytes(
                ok_data(guest, p["path"], Inquiry(evpd=True, page_code=0x80).to_bytes(), 252)
            )
            assert usn.serial_number == p["serial"]
            serials[p["identifier"]].add(usn.serial_number)
        assert all(len(s) == 1 for s in serials.values())

    def test_sg_inq_agrees(self, guest: GuestLibrary) -> None:
        """sg_inq (sg3_utils, C) reads the same vendor and product on the changer node."""
        path = node(guest, guest.vtl.changer_lun, 0)
        res = guest.vm.call("sg_tool", argv=["sg_inq", path])
        assert res["rc"] == 0, res
        inq = StandardInquiry.from_bytes(ok_data(guest, path, Inquiry().to_bytes(), 96))
        assert inq.vendor in res["stdout"]
        assert inq.product in res["stdout"]


class TestUpperNodes:
    """SG_IO through the st and ch nodes (/dev/nstN, /dev/schN) of the same units."""

    def test_inquiry_through_nst_and_sch(self, guest: GuestLibrary) -> None:
        """Every tape and changer unit answers INQUIRY alike on its sg and upper nodes."""
        checked = 0
        for p in paths_of(guest):
            uppers = [n for n in p["tape_nodes"] if n.startswith("nst")] + p["changer_nodes"]
            if p["type"] in (TAPE, CHANGER):
                assert uppers, p
            want = ok_data(guest, p["path"], Inquiry().to_bytes(), 96)
            for name in uppers:
                got = ok_data(guest, f"/dev/{name}", Inquiry().to_bytes(), 96)
                assert got == want, (name, p["name"])
                checked += 1
        assert checked == 2 * (len(guest.vtl.drive_luns) + 1)

    def test_tur_through_sch(self, guest: GuestLibrary) -> None:
        """TEST UNIT READY through /dev/schN: GOOD, within its deadline."""
        (p,) = [
            p for p in paths_of(guest) if p["type"] == CHANGER and p["session"] == guest.sessions[0]
        ]
        path = f"/dev/{p['changer_nodes'][0]}"
        ready(guest, path)
        r = run(guest, path, TUR, timeout=5)
        good(r)
        assert r["duration"] < 5


class TestChanger:
    """READ ELEMENT STATUS and MOVE MEDIUM on the changer, through both paths."""

    def test_element_status_barcodes(self, guest: GuestLibrary) -> None:
        """Slots hold the configured barcodes; drives, picker and mail slot are empty."""
        vtl = guest.vtl
        for idx in (0, 1):
            path = node(guest, vtl.changer_lun, idx)
            slots = element_status(guest, path, 2)
            for i, addr in enumerate(vtl.slot_addresses):
                want = vtl.barcodes[i] if i < len(vtl.barcodes) else None
                assert barcode(slots, addr) == want
            drives = element_status(guest, path, 4)
            assert [barcode(drives, a) for a in vtl.drive_addresses] == [None] * len(
                vtl.drive_addresses
            )
            ie = element_status(guest, path, 3)
            assert all(barcode(ie, a) is None for a in vtl.import_export_addresses)

    def test_move_medium_seen_on_other_path(self, guest: GuestLibrary) -> None:
        """A move made through one path shows through the other, and moves back."""
        vtl = guest.vtl
        a = node(guest, vtl.changer_lun, 0)
        b = node(guest, vtl.changer_lun, 1)
        slot, drive = vtl.slot_addresses[0], vtl.drive_addresses[0]
        move(guest, a, slot, drive)
        drives = element_status(guest, b, 4)
        assert barcode(drives, drive) == vtl.barcodes[0]
        desc = drives.get(drive)
        assert desc is not None
        assert desc.source_valid
        assert desc.source_address == slot
        assert barcode(element_status(guest, b, 2), slot) is None
        move(guest, b, drive, slot)
        assert barcode(element_status(guest, a, 2), slot) == vtl.barcodes[0]

    def test_move_to_full_slot_is_device_error(self, guest: GuestLibrary) -> None:
        """MOVE MEDIUM into a full slot is a CHECK CONDITION (3B/0D), not a path failure."""
        vtl = guest.vtl
        path = node(guest, vtl.changer_lun, 0)
        cdb = MoveMedium(
            transport=vtl.transport_address,
            source=vtl.slot_addresses[0],
            destination=vtl.slot_addresses[1],
        ).to_bytes()
        r = run(guest, path, cdb)
        assert r["outcome"] == "ok"
        assert r["status"] == 2
        sense = decode_sense(bytes.fromhex(r["sense"]))
        assert (sense.sense_key, sense.asc, sense.ascq) == (5, 0x3B, 0x0D)


class TestDrive:
    """WRITE, WRITE FILEMARKS, REWIND and READ on a tape drive."""

    def test_write_rewind_read_back(self, guest: GuestLibrary) -> None:
        """Variable blocks written through one path read back the same through the other."""
        vtl = guest.vtl
        chg = node(guest, vtl.changer_lun, 0)
        slot, drive = vtl.slot_addresses[1], vtl.drive_addresses[1]
        lun = vtl.drive_luns[1]
        move(guest, chg, slot, drive)
        try:
            w = node(guest, lun, 0)
            r = node(guest, lun, 1)
            ready(guest, w)
            blocks = [bytes([i]) * n + b"tapepath" for i, n in enumerate((512, 4096, 32768))]
            for blk in blocks:
                res = run(guest, w, Write6.for_data(blk).to_bytes(), data_out=blk)
                good(res)
            res = run(guest, w, WriteFilemarks6(count=1).to_bytes())
            good(res)
            ready(guest, r)
            res = run(guest, r, Rewind().to_bytes(), timeout=60)
            good(res)
            for blk in blocks:  # exact lengths: GOOD and the very bytes
                got = run(guest, r, Read6(transfer_length=len(blk)).to_bytes(),
                          data_in_len=len(blk))  # fmt: skip
                good(got)
                assert bytes.fromhex(got["data"]) == blk
            mark = run(guest, r, Read6(transfer_length=65536).to_bytes(), data_in_len=65536)
            assert mark["status"] == 2
            assert decode_sense(bytes.fromhex(mark["sense"])).filemark
            run(guest, r, Rewind().to_bytes(), timeout=60)
        finally:
            move(guest, chg, drive, slot)


def _cut(g: GuestLibrary, index: int = 1) -> None:
    """Cut path ``index`` on the target side: its portal, then its connection."""
    conns = g.tgt.connections(g.vtl.tid)
    assert len(conns) == 2, conns
    (conn,) = [c for c in conns if c.sid == g.target_sids[index]]
    g.tgt.delete_portal(g.portals[index])
    g.tgt.delete_connection(conn.tid, conn.sid, conn.cid)


def _restore(g: GuestLibrary, index: int = 1, timeout: float = 30.0) -> dict[str, Any]:
    """Bring portal ``index`` back; wait until its session is logged in again."""
    g.tgt.add_portal(g.portals[index])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if g.vm.call("session_state", session=g.sessions[index]) == "LOGGED_IN":
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the cut session did not log in again")
    g.relogged(index)
    path = node(g, g.vtl.changer_lun, index)
    first = run(g, path, TUR)
    ready(g, path)
    return first


def _record(name: str, value: Any) -> None:
    PHASES_FILE.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(PHASES_FILE.read_text())
    except (OSError, ValueError):
        data = {}
    data[name] = value
    PHASES_FILE.write_text(json.dumps(data, indent=1))


class TestCutPath:
    """A path cut on the target side, phase by phase (replacement timeout 8 s)."""

    def test_phases(self, guest: GuestLibrary) -> None:
        """In flight, recovering, timed out, back: typed path failures; the other path works."""
        g = guest
        vtl = g.vtl
        assert vtl.disk_lun is not None
        cut_chg = node(g, vtl.changer_lun, 1)
        good_chg = node(g, vtl.changer_lun, 0)
        cut_disk = node(g, vtl.disk_lun, 1)
        ready(g, cut_chg)
        ready(g, good_chg)
        ready(g, cut_disk)
        seen: dict[str, Any] = {"replacement_timeout": PHASE_TMO}
        # A little longer than the login's 5 s, so a loaded machine still fits phase 2 in.
        assert g.vm.call("set_recovery_tmo", session=g.sessions[1], seconds=PHASE_TMO) == 8
        try:
            self._phases(g, cut_chg, good_chg, cut_disk, seen)
        finally:
            _record("replacement_timeout_8s", seen)
            if g.portals[1] not in g.tgt.portals:  # a phase failed: leave the VM usable
                _restore(g)
            g.vm.call("set_recovery_tmo", session=g.sessions[1], seconds=5)

    def _phases(
        self, g: GuestLibrary, cut_chg: str, good_chg: str, cut_disk: str, seen: dict[str, Any]
    ) -> None:
        # Phase 1: commands in flight when the connection drops.
        g.vm.call("start_writer", path=cut_disk)
        time.sleep(1.0)
        t_cut = time.monotonic()
        _cut(g)
        writer = g.vm.call("stop_writer", wait=20)
        inflight = writer[0]
        seen["in_flight"] = inflight
        assert inflight["outcome"] != "ok", writer
        assert inflight["detail"] is not None
        # Phase 2: while the kernel recovers the session, it holds new commands.
        assert time.monotonic() - t_cut < PHASE_TMO - 2, "too slow to see the recovery"
        recovering = run(g, cut_chg, TUR, timeout=1.0)
        seen["recovering"] = recovering
        assert recovering["outcome"] == "timed_out", recovering
        assert 0.9 <= recovering["duration"] < 3.0
        other = run(g, good_chg, TUR)
        good(other)
        assert g.vm.call("session_state", session=g.sessions[1]) != "LOGGED_IN"
        # Phase 3: after the replacement timeout the device is offline.
        time.sleep(max(0.0, PHASE_TMO + 0.5 - (time.monotonic() - t_cut)))
        failed = run(g, cut_chg, TUR, timeout=5.0)
        seen["after_replacement_timeout"] = failed
        assert failed["outcome"] == "no_connect", failed
        assert failed["detail"]["host_status"] == DID_NO_CONNECT
        assert failed["duration"] < 1.0
        fresh = g.vm.call("execute_fresh", path=cut_chg, cdb=TUR.hex())
        seen["fresh_transport_after_timeout"] = fresh
        assert fresh["outcome"] in ("no_connect", "device_gone"), fresh
        seen["raw_ioctl_after_timeout"] = g.vm.call("raw_sg_io", path=cut_chg, cdb=TUR.hex())
        seen["sg_turs_after_timeout"] = g.vm.call("sg_tool", argv=["sg_turs", cut_chg])
        for _ in range(3):  # stays that way, and the other path keeps working
            again = run(g, cut_chg, TUR, timeout=5.0)
            assert again["outcome"] == "no_connect", again
            other = run(g, good_chg, TUR)
            good(other)
        # Phase 4: the portal returns; the new nexus reports its unit attention.
        first = _restore(g)
        seen["after_return_first_command"] = first
        assert first["outcome"] == "ok"
        if first["status"] == 2:
            s = decode_sense(bytes.fromhex(first["sense"]))
            assert (s.sense_key, s.asc) == (6, 0x29)

    def test_deadline_with_long_replacement_timeout(self, guest: GuestLibrary) -> None:
        """With recovery_tmo 120 s, a command on the cut path is TIMED_OUT at its deadline."""
        g = guest
        cut_chg = node(g, g.vtl.changer_lun, 1)
        good_chg = node(g, g.vtl.changer_lun, 0)
        ready(g, cut_chg)
        assert g.vm.call("set_recovery_tmo", session=g.sessions[1], seconds=120) == 120
        try:
            _cut(g)
            time.sleep(0.5)
            results = [run(g, cut_chg, TUR, timeout=2.0) for _ in range(2)]
            _record("replacement_timeout_120s", results)
            for r in results:
                assert r["outcome"] == "timed_out", r
                assert 1.9 <= r["duration"] < 4.0, r
                assert r["detail"]["maybe_executed"]
            other = run(g, good_chg, TUR)
            good(other)
        finally:
            if g.portals[1] not in g.tgt.portals:
                _restore(g)
            g.vm.call("set_recovery_tmo", session=g.sessions[1], seconds=5)
        ready(g, cut_chg)


class TestMultipath:
    """tapepath's discovery and failover over the guest's real sg nodes."""

    def test_discover_groups_paths(self, guest: GuestLibrary) -> None:
        """discover(["sg"]) makes one device per logical unit, each with both nodes."""
        devices = guest.vm.call("discover_devices")
        by_type: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for d in devices:
            assert len(d["urls"]) == 2, d
            by_type[d["device_type"]].append(d)
        assert len(by_type[CHANGER]) == 1
        assert len(by_type[TAPE]) == len(guest.vtl.drive_luns)
        nodes = {f"sg://{p['path']}" for p in paths_of(guest)}
        assert {u for d in devices for u in d["urls"]} == nodes

    def test_failover_on_a_cut_path(self, guest: GuestLibrary) -> None:
        """Cutting the path in use: the changer device answers through the other one."""
        g = guest
        devices = g.vm.call("discover_devices")
        (changer,) = [d for d in devices if d["device_type"] == CHANGER]
        key = changer["urls"][0]
        first = g.vm.call("mp_execute", key=key, cdb=TUR.hex(), timeout=10.0)
        for _ in range(3):
            if first["outcome"] == "ok" and first["status"] == 0:
                break
            first = g.vm.call("mp_execute", key=key, cdb=TUR.hex(), timeout=10.0)
        good(first)
        used = first["current"]
        assert used in changer["urls"]
        session = next(p["session"] for p in paths_of(g) if f"sg://{p['path']}" == used)
        index = g.sessions.index(session)
        _cut(g, index)
        try:
            started = time.monotonic()
            after = g.vm.call("mp_execute", key=key, cdb=TUR.hex(), timeout=30.0)
            seen = {k: v for k, v in after.items() if k != "data"}
            seen["wall_seconds"] = round(time.monotonic() - started, 3)
            _record("multipath_failover", seen)
            good(after)
            assert after["current"] != used
            assert after["states"][used] != "active"
        finally:
            _restore(g, index)
