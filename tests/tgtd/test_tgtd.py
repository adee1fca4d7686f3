"""Tests of tapepath.testing.tgtd: parsing helpers, and a real private tgtd."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath import open_transport
from tapepath.scsi import MoveMedium, Read6, Rewind, Write6, WriteFilemarks6
from tapepath.testing import tgtd as tgtd_mod
from tapepath.testing.tgtd import (
    Connection,
    TgtadmError,
    TgtdInstance,
    VtlLayout,
    sid_from_tsih,
)
from tapepath.transport import Transport

needs_tgtd = pytest.mark.needs("tgtd", "tgtadm", "tgtimg")
needs_inq = pytest.mark.needs("tgtd", "tgtadm", "tgtimg", "iscsi-inq")

SHOW_CONN = """\
Session: 4
    Connection: 0
        Initiator: iqn.2010-11.libiscsi:one
        IP Address: 127.0.0.1
Session: 7
    Connection: 0
        Initiator: iqn.1993-08.org.debian:01:guest
        IP Address: 10.0.2.15
    Connection: 1
        Initiator: iqn.1993-08.org.debian:01:guest
        IP Address: 10.0.2.15
"""


def _inq(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["iscsi-inq", *args, url], capture_output=True, text=True, timeout=20, check=False
    )


def _connect_refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        return False


class TestHelpers:
    """Parsing and small helpers, without tgtd."""

    def test_parse_connections(self) -> None:
        """Each Session/Connection block becomes one Connection with its fields."""
        got = tgtd_mod._parse_connections(3, SHOW_CONN)
        assert got == [
            Connection(3, 4, 0, "iqn.2010-11.libiscsi:one", "127.0.0.1"),
            Connection(3, 7, 0, "iqn.1993-08.org.debian:01:guest", "10.0.2.15"),
            Connection(3, 7, 1, "iqn.1993-08.org.debian:01:guest", "10.0.2.15"),
        ]

    def test_parse_no_connections(self) -> None:
        """An empty listing is no connection."""
        assert tgtd_mod._parse_connections(1, "") == []

    @given(st.text())
    def test_parse_arbitrary_text(self, text: str) -> None:
        """Arbitrary tgtadm output gives connections or ValueError, nothing else."""
        try:
            conns = tgtd_mod._parse_connections(1, text)
        except ValueError:
            return
        assert all(isinstance(c, Connection) for c in conns)

    def test_sid_from_tsih_swaps_bytes(self) -> None:
        """TSIH 0x0100 on the wire is tgtadm session 1; 0x0302 is 0x0203."""
        assert sid_from_tsih(0x0100) == 1
        assert sid_from_tsih(0x0302) == 0x0203

    @given(st.integers(0, 0xFFFF))
    def test_sid_from_tsih_involution(self, tsih: int) -> None:
        """Swapping twice gives the TSIH back, and the bytes are the reversed pair."""
        sid = sid_from_tsih(tsih)
        assert sid_from_tsih(sid) == tsih
        assert sid.to_bytes(2, "big") == tsih.to_bytes(2, "little")

    def test_sid_from_tsih_range(self) -> None:
        """A TSIH wider than 16 bits is refused."""
        with pytest.raises(ValueError, match="16 bits"):
            sid_from_tsih(0x10000)

    def test_redact_hides_passwords(self) -> None:
        """The value after --password never survives redaction."""
        shown = tgtd_mod._redact(["--user", "u", "--password", "hunter2hunter2"])
        assert "hunter2hunter2" not in shown
        assert shown[:3] == ["--user", "u", "--password"]

    def test_layout_luns(self) -> None:
        """VtlLayout.luns lists changer, drives and disk in ascending order."""
        lay = VtlLayout(
            tid=1,
            iqn="iqn.x:y",
            media_dir=tgtd_mod.Path("/nonexistent"),
            changer_lun=3,
            drive_luns=(1, 2),
            transport_address=1,
            drive_addresses=(256, 257),
            slot_addresses=(1024,),
            import_export_addresses=(),
            barcodes=(),
            disk_lun=4,
        )
        assert lay.luns == (1, 2, 3, 4)


@needs_tgtd
@pytest.mark.tgtd
class TestLifecycle:
    """Start, stop, kill, restart, pause of a private tgtd."""

    def test_start_and_stop(self) -> None:
        """The instance listens on its own port only and is gone after stop()."""
        tgt = TgtdInstance()
        tgt.start()
        pid, port, workdir = tgt.pid, tgt.port, tgt.workdir
        assert pid is not None
        assert tgt.running
        assert tgt._listed_portals() == [port]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        tgt.stop()
        assert not tgt.running
        assert not workdir.exists()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert _connect_refused(port)
        tgt.stop()  # twice is harmless

    def test_two_instances_do_not_collide(self) -> None:
        """Two instances pick different channels and ports, and each sees only its targets."""
        with TgtdInstance() as a, TgtdInstance() as b:
            assert a.control_port != b.control_port
            assert a.port != b.port
            a.new_target(1, "iqn.2026-11.test:a")
            assert "iqn.2026-11.test:a" in a.tgtadm("--op", "show", "--mode", "target")
            assert "iqn.2026-11.test:a" not in b.tgtadm("--op", "show", "--mode", "target")

    def test_taken_port_is_an_error(self) -> None:
        """Asking for a port someone else listens on fails instead of listening elsewhere."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            taken = s.getsockname()[1]
            tgt = TgtdInstance(port=taken, control_port=None, start_timeout=5)
            with pytest.raises(tgtd_mod.TgtdError, match="did not start"):
                tgt.start()
            tgt.stop()

    def test_tgtadm_error_is_typed(self) -> None:
        """A failing tgtadm command raises TgtadmError with its return code."""
        with TgtdInstance() as tgt, pytest.raises(TgtadmError) as info:
            tgt.delete_target(99)
        assert info.value.returncode != 0
        assert "--tid 99" in str(info.value)

    def test_pause_is_a_black_hole(self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]) -> None:
        """While paused, a login gets no answer; after resume it works."""
        tgt, _ = tgtd_vtl
        tgt.pause()
        try:
            with socket.create_connection(("127.0.0.1", tgt.port), timeout=2) as s:
                s.sendall(b"\x43" + bytes(47))  # a login request header
                s.settimeout(0.5)
                with pytest.raises(TimeoutError):
                    s.recv(48)
        finally:
            tgt.resume()
        assert tgt._answers()

    @needs_inq
    def test_kill_and_restart(self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]) -> None:
        """After kill() nothing answers; restart() brings back both portals and the LUNs."""
        tgt, vtl = tgtd_vtl
        first, second = tgt.portals
        old_pid = tgt.pid
        tgt.kill()
        assert not tgt.running
        assert _connect_refused(first)
        tgt.restart()
        assert tgt.pid != old_pid
        assert tgt.portals == (first, second)
        for port in (first, second):
            res = _inq(tgt.url(vtl.changer_lun, port=port))
            assert res.returncode == 0, res.stderr
            assert "MEDIA_CHANGER" in res.stdout


@needs_inq
@pytest.mark.tgtd
class TestVtl:
    """The virtual tape library as a real initiator (libiscsi) sees it."""

    def test_device_types(self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]) -> None:
        """The changer LUN is a media changer and each drive LUN a sequential-access device."""
        tgt, vtl = tgtd_vtl
        assert "MEDIA_CHANGER" in _inq(tgt.url(vtl.changer_lun)).stdout
        for lun in vtl.drive_luns:
            assert "SEQUENTIAL_ACCESS" in _inq(tgt.url(lun)).stdout
        assert vtl.disk_lun is not None
        assert "DIRECT_ACCESS" in _inq(tgt.url(vtl.disk_lun)).stdout

    def test_layout(self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]) -> None:
        """Addresses do not overlap and the cartridges exist as images."""
        _, vtl = tgtd_vtl
        addrs = [
            vtl.transport_address,
            *vtl.drive_addresses,
            *vtl.slot_addresses,
            *vtl.import_export_addresses,
        ]
        assert len(addrs) == len(set(addrs))
        assert len(vtl.barcodes) == len(vtl.slot_addresses) - 2
        for code in vtl.barcodes:
            assert (vtl.media_dir / code).is_file()

    def test_same_identifier_on_both_portals(
        self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]
    ) -> None:
        """VPD page 83h of a LUN is the same through either portal (it groups the paths)."""
        tgt, vtl = tgtd_vtl
        first, second = tgt.portals
        a = _inq(tgt.url(vtl.changer_lun, port=first), "-e", "1", "-c", "131")
        b = _inq(tgt.url(vtl.changer_lun, port=second), "-e", "1", "-c", "131")
        assert a.returncode == 0, a.stderr
        assert a.stdout == b.stdout
        assert "Designator" in a.stdout or "designator" in a.stdout.lower()

    def test_delete_portal_refuses_new_logins(
        self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]
    ) -> None:
        """A deleted portal refuses connects; the other one still serves."""
        tgt, vtl = tgtd_vtl
        first, second = tgt.portals
        tgt.delete_portal(second)
        assert tgt.portals == (first,)
        assert _connect_refused(second)
        assert _inq(tgt.url(vtl.changer_lun, port=first)).returncode == 0
        again = tgt.add_portal(second)
        assert again == second
        assert _inq(tgt.url(vtl.changer_lun, port=second)).returncode == 0


@pytest.mark.needs("tgtd", "tgtadm", "tgtimg", "iscsi-perf")
@pytest.mark.tgtd
class TestConnections:
    """Listing and deleting connections of a live session."""

    def test_list_and_delete(self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]) -> None:
        """A live session is listed; deleting it drops it and the initiator logs in anew."""
        tgt, vtl = tgtd_vtl
        perf = subprocess.Popen(
            ["iscsi-perf", "-t", "5", "-m", "1", tgt.url(vtl.disk_lun or 0)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            conns = _wait_for(lambda: tgt.connections(vtl.tid))
            assert len(conns) == 1
            c = conns[0]
            assert c.initiator.startswith("iqn.")
            assert c.address == "127.0.0.1"
            assert tgt.sessions(vtl.tid) == [c.sid]
            tgt.delete_connection(c.tid, c.sid, c.cid)
            later = _wait_for(lambda: [x for x in tgt.connections(vtl.tid) if x.sid != c.sid])
            assert later[0].sid > c.sid
            assert c.sid not in tgt.sessions(vtl.tid)
        finally:
            perf.kill()
            perf.wait()

    def test_delete_unknown_connection(self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]) -> None:
        """Deleting a connection that does not exist is a TgtadmError."""
        tgt, vtl = tgtd_vtl
        with pytest.raises(TgtadmError):
            tgt.delete_connection(vtl.tid, 4242, 0)


@needs_inq
@pytest.mark.tgtd
class TestSecurityAndParams:
    """CHAP accounts, digests and NOP-In settings."""

    def test_chap_incoming(self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]) -> None:
        """With an incoming account bound, only the right secret logs in."""
        tgt, vtl = tgtd_vtl
        secret = "s3cretpassw0rd"
        tgt.add_chap(vtl.tid, "alice", secret)
        assert "alice" in tgt.accounts()
        url = tgt.url(vtl.changer_lun)
        assert _inq(url).returncode != 0
        authed = url.replace("iscsi://", f"iscsi://alice%{secret}@")
        res = _inq(authed)
        assert res.returncode == 0, res.stderr
        tgt.remove_chap(vtl.tid, "alice")
        assert "alice" not in tgt.accounts()
        assert _inq(url).returncode == 0

    def test_secret_not_in_errors(self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]) -> None:
        """A failing account command does not put the password in the exception."""
        tgt, _ = tgtd_vtl
        secret = "n0tInTheMessage"
        with pytest.raises(TgtadmError) as info:
            tgt.add_chap(99, "bob", secret)  # target 99 does not exist: bind fails
        assert secret not in str(info.value)
        assert secret not in repr(info.value)

    def test_outgoing_account_listed(self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]) -> None:
        """An outgoing (mutual CHAP) account is bound and shown."""
        tgt, vtl = tgtd_vtl
        tgt.add_chap(vtl.tid, "target-side", "0utgoingsecret", outgoing=True)
        shown = tgt.tgtadm("--op", "show", "--mode", "target")
        assert "target-side (outgoing)" in shown

    def test_digests_and_nop(self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]) -> None:
        """Digest and NOP-In settings reach the target's parameters."""
        tgt, vtl = tgtd_vtl
        assert tgt.target_params(vtl.tid)["HeaderDigest"] == "None"
        tgt.require_digests(vtl.tid)
        tgt.set_nop_interval(vtl.tid, 3, 2)
        params = tgt.target_params(vtl.tid)
        assert params["HeaderDigest"] == "CRC32C"
        assert params["DataDigest"] == "CRC32C"
        assert params["nop_interval"] == "3"
        assert params["nop_count"] == "2"
        tgt.enable_digests(vtl.tid)
        res = _inq(tgt.url(vtl.changer_lun))
        assert res.returncode == 0, res.stderr


def _wait_for(probe: object, timeout: float = 5.0) -> list[Connection]:
    assert callable(probe)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return list(got)
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _good(t: Transport, cdb: bytes, *, data_out: bytes = b"", data_in_len: int = 0) -> bytes:
    for _ in range(10):  # unit attentions and "becoming ready" of a fresh nexus
        r = t.execute(cdb, data_out=data_out, data_in_len=data_in_len, timeout=10)
        if r.ok:
            return r.data
        time.sleep(0.05)
    raise AssertionError(f"{cdb.hex()} failed: {r}")


@needs_tgtd
@pytest.mark.tgtd
class TestRestartKeepsMedia:
    """kill() and restart() keep what was written on a cartridge."""

    def test_tape_data_survives_restart(self, tgtd_vtl: tuple[TgtdInstance, VtlLayout]) -> None:
        """A block written before a crash reads back after restart and a new load."""
        tgt, vtl = tgtd_vtl
        load = MoveMedium(
            transport=vtl.transport_address,
            source=vtl.slot_addresses[0],
            destination=vtl.drive_addresses[0],
        ).to_bytes()
        block = b"written before the crash " * 40
        with open_transport(tgt.url(vtl.changer_lun)) as chg:
            _good(chg, bytes(6))
            _good(chg, load)
        with open_transport(tgt.url(vtl.drive_luns[0])) as drv:
            _good(drv, bytes(6))
            _good(drv, Write6.for_data(block).to_bytes(), data_out=block)
            _good(drv, WriteFilemarks6(count=1).to_bytes())
        tgt.kill()
        tgt.restart()
        with open_transport(tgt.url(vtl.changer_lun)) as chg:
            _good(chg, bytes(6))
            _good(chg, load)  # the replayed configuration put the cartridge back in its slot
        with open_transport(tgt.url(vtl.drive_luns[0])) as drv:
            _good(drv, bytes(6))
            _good(drv, Rewind().to_bytes())
            got = _good(drv, Read6(transfer_length=len(block)).to_bytes(), data_in_len=len(block))
        assert got == block
