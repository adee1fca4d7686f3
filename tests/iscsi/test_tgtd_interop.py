"""The iscsi:// transport against a real tgtd: login, CHAP, digests, robot, tape, failures."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tapepath import open_transport
from tapepath.errors import AuthenticationError, LoginError, TransportError
from tapepath.iscsi.connection import ConnectOptions
from tapepath.iscsi.driver import IscsiSession, discover_targets
from tapepath.iscsi.opcodes import TmfFunction, TmfResponse
from tapepath.scsi.changer import MoveMedium
from tapepath.scsi.element_status import ElementStatus, ReadElementStatus
from tapepath.scsi.inquiry import Inquiry, StandardInquiry
from tapepath.scsi.luns import LunList, ReportLuns
from tapepath.scsi.sense import decode_sense
from tapepath.scsi.tape import Read6, Rewind, Space6, SpaceCode, Write6, WriteFilemarks6
from tapepath.testing.tgtd import TgtdInstance, find_free_port, sid_from_tsih
from tapepath.transport.base import Outcome, Response
from tapepath.transport.iscsi import IscsiTransport
from tests.iscsi.conftest import (
    CHAP_IQN,
    DIGEST_IQN,
    INI_SECRET,
    INI_USER,
    MUTUAL_IQN,
    TGT_SECRET,
    TGT_USER,
    Lab,
)

pytestmark = [pytest.mark.needs("tgtd", "tgtadm", "tgtimg"), pytest.mark.tgtd]

TUR = bytes(6)


def read16(lba: int, blocks: int) -> bytes:
    return bytes([0x88, 0]) + lba.to_bytes(8, "big") + blocks.to_bytes(4, "big") + bytes(2)


def write16(lba: int, blocks: int) -> bytes:
    return bytes([0x8A, 0]) + lba.to_bytes(8, "big") + blocks.to_bytes(4, "big") + bytes(2)


def ready(t: IscsiTransport) -> None:
    """Clear the power-on unit attention a new nexus reports."""
    for _ in range(4):
        if t.execute(TUR, timeout=5).ok:
            return
    pytest.fail("TEST UNIT READY never succeeded")


def inquiry(t: IscsiTransport) -> StandardInquiry:
    r = t.execute(Inquiry().to_bytes(), data_in_len=96, timeout=5)
    assert r.ok, r
    return StandardInquiry.from_bytes(r.data)


def element_status(t: IscsiTransport, element_type: int) -> ElementStatus:
    cdb = ReadElementStatus(
        element_type=element_type, voltag=True, number_of_elements=64, allocation_length=1024
    ).to_bytes()
    r = t.execute(cdb, data_in_len=1024, timeout=5)
    assert r.ok, r
    return ElementStatus.from_bytes(r.data)


def tag(es: ElementStatus, address: int) -> str | None:
    for d in es.descriptors():
        if d.address == address:
            return d.primary_tag.identifier.decode().strip() if d.full and d.primary_tag else None
    raise AssertionError(f"element {address} not reported")


class TestDiscoveryAndLogin:
    """SendTargets and logins without CHAP."""

    def test_send_targets(self, lab: Lab) -> None:
        """Discovery lists every target with the portal it listens on."""
        found = dict(discover_targets(ConnectOptions(host="127.0.0.1", port=lab.tgt.port)))
        assert set(found) >= {lab.vtl.iqn, CHAP_IQN, MUTUAL_IQN, DIGEST_IQN}
        assert any(a.startswith(f"127.0.0.1:{lab.tgt.port},") for a in found[lab.vtl.iqn])

    def test_open_transport_and_inquiry(self, lab: Lab) -> None:
        """open_transport picks the iscsi transport; the changer answers INQUIRY as a changer."""
        with open_transport(lab.url(lab.vtl.changer_lun)) as t:
            assert isinstance(t, IscsiTransport)
            inq = inquiry(t)
            assert inq.peripheral_device_type == 8
            assert t.session.connection is not None
            assert t.session.connection.params.max_xmit_data_segment_length == 8192

    def test_close_logs_out(self, lab: Lab) -> None:
        """close() logs out: the session disappears from the target."""
        t = IscsiTransport(lab.url(lab.disk_lun, query="nop_interval=0"))
        conn = t.session.connection
        assert conn is not None
        sid = sid_from_tsih(conn.tsih)
        assert sid in lab.tgt.sessions(lab.vtl.tid)
        t.close()
        deadline = time.monotonic() + 2
        while sid in lab.tgt.sessions(lab.vtl.tid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sid not in lab.tgt.sessions(lab.vtl.tid)
        with pytest.raises(TransportError):
            t.execute(TUR, timeout=1)

    def test_report_luns(self, lab: Lab) -> None:
        """REPORT LUNS lists the drives, the changer and the disk."""
        with IscsiTransport(lab.url(lab.vtl.changer_lun)) as t:
            ready(t)
            r = t.execute(ReportLuns().to_bytes(), data_in_len=8 + 8 * 256, timeout=5)
            assert r.ok, r
            luns = set(LunList.from_bytes(r.data).numbers)
        assert luns >= {*lab.vtl.drive_luns, lab.vtl.changer_lun, lab.disk_lun}

    def test_unknown_target(self, lab: Lab) -> None:
        """A login to a target that does not exist is a LoginError naming the reason."""
        with pytest.raises(LoginError, match="not found"):
            IscsiTransport(lab.url(1, iqn="iqn.2026-11.org.tapepath:nothere"))

    def test_no_portal(self) -> None:
        """An unreachable portal raises TransportError while opening."""
        with pytest.raises(TransportError):
            IscsiTransport("iscsi://127.0.0.1:1/iqn.2026-11.x:y/0?connect_timeout=1")


class TestChap:
    """CHAP against tgtd accounts."""

    def test_chap_login(self, lab: Lab) -> None:
        """The right secret logs in and the LUN works."""
        with IscsiTransport(lab.url(1, iqn=CHAP_IQN, auth=f"{INI_USER}%{INI_SECRET}")) as t:
            assert INI_SECRET not in t.url
            assert INI_SECRET not in repr(t)
            conn = t.session.connection
            assert conn is not None
            assert conn.login.chap_algorithm is not None
            ready(t)

    def test_wrong_secret(self, lab: Lab) -> None:
        """A wrong secret is refused with AuthenticationError, and the secret is not quoted."""
        with pytest.raises(AuthenticationError) as info:
            IscsiTransport(lab.url(1, iqn=CHAP_IQN, auth=f"{INI_USER}%wrongsecret99"))
        assert "wrongsecret99" not in str(info.value)

    def test_missing_credentials(self, lab: Lab) -> None:
        """A login without CHAP to a CHAP target is an authentication failure."""
        with pytest.raises(AuthenticationError):
            IscsiTransport(lab.url(1, iqn=CHAP_IQN))

    def test_env_credentials(self, lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
        """LIBISCSI_CHAP_USERNAME/PASSWORD are used when the URL has none."""
        monkeypatch.setenv("LIBISCSI_CHAP_USERNAME", INI_USER)
        monkeypatch.setenv("LIBISCSI_CHAP_PASSWORD", INI_SECRET)
        with IscsiTransport(lab.url(1, iqn=CHAP_IQN)) as t:
            ready(t)

    def test_mutual(self, lab: Lab) -> None:
        """Mutual CHAP: the target proves its secret too."""
        q = f"target_user={TGT_USER}&target_password={TGT_SECRET}"
        url = lab.url(1, iqn=MUTUAL_IQN, auth=f"{INI_USER}%{INI_SECRET}", query=q)
        with IscsiTransport(url) as t:
            assert TGT_SECRET not in t.url
            ready(t)

    def test_mutual_wrong_target_secret(self, lab: Lab) -> None:
        """A target that does not know the secret we expect is refused."""
        q = f"target_user={TGT_USER}&target_password=notthetarget1"
        url = lab.url(1, iqn=MUTUAL_IQN, auth=f"{INI_USER}%{INI_SECRET}", query=q)
        with pytest.raises(AuthenticationError, match="mutual"):
            IscsiTransport(url)


class TestDigests:
    """CRC32C header and data digests."""

    def test_digests_negotiated_and_data_intact(self, lab: Lab) -> None:
        """With digests required, 1 MiB written and read back is intact."""
        url = lab.url(1, iqn=DIGEST_IQN, query="header_digest=crc32c&data_digest=crc32c")
        with IscsiTransport(url) as t:
            conn = t.session.connection
            assert conn is not None
            assert conn.params.header_digest
            assert conn.params.data_digest
            ready(t)
            data = os.urandom(1 << 20)
            assert t.execute(write16(8, 2048), data_out=data, timeout=10).ok
            r = t.execute(read16(8, 2048), data_in_len=len(data), timeout=10)
            assert r.ok
            assert r.data == data

    def test_required_digest_not_offered(self, lab: Lab) -> None:
        """header_digest=crc32c (strict) fails against a target that offers only None."""
        with pytest.raises(LoginError, match="HeaderDigest"):
            IscsiTransport(lab.url(lab.disk_lun, query="header_digest=crc32c"))

    def test_optional_digest_falls_back(self, lab: Lab) -> None:
        """header_digest=crc32c-none logs in without digests where the target has none."""
        with IscsiTransport(lab.url(lab.disk_lun, query="header_digest=crc32c-none")) as t:
            conn = t.session.connection
            assert conn is not None
            assert not conn.params.header_digest
            ready(t)


class TestChanger:
    """The robot over iSCSI."""

    def test_element_status_and_move(self, lab: Lab) -> None:
        """READ ELEMENT STATUS shows barcodes; MOVE MEDIUM moves one and back."""
        v = lab.vtl
        with IscsiTransport(lab.url(v.changer_lun)) as t:
            ready(t)
            slots = element_status(t, 2)
            assert tag(slots, v.slot_addresses[0]) == v.barcodes[0]
            empty = v.slot_addresses[-1]
            assert tag(slots, empty) is None
            src = v.slot_addresses[1]
            r = t.execute(MoveMedium(v.transport_address, src, empty).to_bytes(), timeout=10)
            assert r.ok, r
            after = element_status(t, 2)
            assert tag(after, empty) == v.barcodes[1]
            assert tag(after, src) is None
            r = t.execute(MoveMedium(v.transport_address, empty, src).to_bytes(), timeout=10)
            assert r.ok
            r = t.execute(MoveMedium(v.transport_address, empty, src).to_bytes(), timeout=10)
            sense = decode_sense(r.sense)
            assert (sense.sense_key, sense.asc, sense.ascq) == (5, 0x3B, 0x0E)


class TestTape:
    """A tape round trip through a drive the robot loaded."""

    def test_write_filemark_space_read(self, lab: Lab) -> None:
        """Records and a filemark written, rewound, spaced over and read back."""
        v = lab.vtl
        with IscsiTransport(lab.url(v.changer_lun)) as changer:
            ready(changer)
            load = MoveMedium(v.transport_address, v.slot_addresses[2], v.drive_addresses[1])
            assert changer.execute(load.to_bytes(), timeout=10).ok
            try:
                with IscsiTransport(lab.url(v.drive_luns[1])) as tape:
                    ready(tape)
                    assert tape.execute(Rewind().to_bytes(), timeout=10).ok
                    records = [os.urandom(1000), os.urandom(262144), os.urandom(77)]
                    for rec in records[:2]:
                        w = tape.execute(Write6.for_data(rec).to_bytes(), data_out=rec, timeout=10)
                        assert w.ok, w
                    assert tape.execute(WriteFilemarks6(count=1).to_bytes(), timeout=10).ok
                    w = tape.execute(
                        Write6.for_data(records[2]).to_bytes(), data_out=records[2], timeout=10
                    )
                    assert w.ok
                    assert tape.execute(Rewind().to_bytes(), timeout=10).ok
                    for rec in records[:2]:
                        r = tape.execute(
                            Read6(transfer_length=len(rec)).to_bytes(),
                            data_in_len=len(rec),
                            timeout=10,
                        )
                        assert r.ok, r
                        assert r.data == rec
                    fm = tape.execute(
                        Read6(transfer_length=10).to_bytes(), data_in_len=10, timeout=5
                    )
                    sense = fm.sense_data
                    assert sense is not None
                    assert sense.filemark
                    assert tape.execute(Rewind().to_bytes(), timeout=10).ok
                    space = Space6(code=SpaceCode.FILEMARKS, count=1).to_bytes()
                    assert tape.execute(space, timeout=10).ok
                    r = tape.execute(
                        Read6(transfer_length=77).to_bytes(), data_in_len=77, timeout=10
                    )
                    assert r.ok
                    assert r.data == records[2]
            finally:
                back = MoveMedium(v.transport_address, v.drive_addresses[1], v.slot_addresses[2])
                changer.execute(back.to_bytes(), timeout=10)


class TestDataPath:
    """Large transfers and many commands in flight."""

    def test_4mib_write_uses_r2t_bursts(self, lab: Lab) -> None:
        """A 4 MiB WRITE is answered with several R2Ts and reads back intact."""
        options = ConnectOptions(
            host="127.0.0.1", port=lab.tgt.port, target=lab.vtl.iqn, nop_interval=None
        )
        session = IscsiSession(options)
        try:
            conn = session.connection
            assert conn is not None
            max_burst = conn.params.max_burst_length
            data = os.urandom(4 << 20)
            for _ in range(3):  # clear the unit attention
                sub = session.submit(lab.disk_lun, TUR, deadline=time.monotonic() + 5)
                assert sub is not None
                assert session.wait(sub, time.monotonic() + 5)
            sub = session.submit(
                lab.disk_lun, write16(0, 8192), data_out=data, deadline=time.monotonic() + 10
            )
            assert sub is not None
            assert session.wait(sub, time.monotonic() + 10)
            assert sub.task.status == 0
            assert sub.task.next_r2t_sn >= (len(data) - conn.params.first_burst_length) // max_burst
            assert sub.task.next_r2t_sn > 1
            buf = bytearray(len(data))
            sub = session.submit(
                lab.disk_lun, read16(0, 8192), buf=memoryview(buf), deadline=time.monotonic() + 10
            )
            assert sub is not None
            assert session.wait(sub, time.monotonic() + 10)
            assert sub.task.status == 0
            assert buf == data
        finally:
            session.close()

    def test_parallel_threads(self, lab: Lab) -> None:
        """Eight threads with commands in flight at once all get their own data."""
        with IscsiTransport(lab.url(lab.disk_lun)) as t:
            ready(t)
            blobs = [bytes([i]) * 65536 for i in range(8)]
            for i, blob in enumerate(blobs):
                assert t.execute(write16(1000 + i * 128, 128), data_out=blob, timeout=10).ok
            errors: list[str] = []

            def reader(i: int) -> None:
                for _ in range(20):
                    r = t.execute(read16(1000 + i * 128, 128), data_in_len=65536, timeout=10)
                    if not r.ok or r.data != blobs[i]:
                        errors.append(f"thread {i}: {r.outcome} status={r.status}")
                        return

            threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            assert errors == []

    def test_execute_into(self, lab: Lab) -> None:
        """execute_into fills the caller's buffer."""
        with IscsiTransport(lab.url(lab.disk_lun)) as t:
            ready(t)
            blob = os.urandom(8192)
            assert t.execute(write16(5000, 16), data_out=blob, timeout=10).ok
            buf = bytearray(8192)
            r = t.execute_into(read16(5000, 16), buf, timeout=10)
            assert r.ok
            assert r.transferred == 8192
            assert buf == blob


class TestTaskManagement:
    """Task management functions as tgtd answers them."""

    def test_tmf_responses(self, lab: Lab) -> None:
        """ABORT TASK SET and LUN RESET complete; TARGET WARM RESET is not supported."""
        with IscsiTransport(lab.url(lab.disk_lun)) as t:
            ready(t)
            s = t.session
            assert s.task_management(TmfFunction.ABORT_TASK_SET, lab.disk_lun) == 0
            assert s.task_management(TmfFunction.LOGICAL_UNIT_RESET, lab.disk_lun) == 0
            warm = s.task_management(TmfFunction.TARGET_WARM_RESET, 0)
            assert warm in (TmfResponse.COMPLETE, TmfResponse.NOT_SUPPORTED)
            r = t.execute(TUR, timeout=5)  # the LUN reset leaves a unit attention
            assert r.check_condition
            assert decode_sense(r.sense).sense_key == 6

    def test_ping(self, lab: Lab) -> None:
        """A NOP-Out ping is answered."""
        with IscsiTransport(lab.url(lab.disk_lun, query="nop_interval=0")) as t:
            assert t.session.ping(timeout=2) < 2


class TestFailures:
    """Path cuts, black holes and reinstatement."""

    def _our_sid(self, t: IscsiTransport) -> int:
        conn = t.session.connection
        assert conn is not None
        return sid_from_tsih(conn.tsih)

    def test_connection_killed_mid_command(self, lab: Lab) -> None:
        """Commands in flight when the target drops the connection fail within 100 ms."""
        t = IscsiTransport(lab.url(lab.disk_lun, query="nop_interval=0"))
        try:
            ready(t)
            sid = self._our_sid(t)
            results: list[tuple[float, Response]] = []
            stop = threading.Event()

            def stream() -> None:
                while not stop.is_set():
                    r = t.execute(read16(0, 16384), data_in_len=8 << 20, timeout=10)
                    results.append((time.monotonic(), r))
                    if r.outcome is not Outcome.OK:
                        return

            threads = [threading.Thread(target=stream) for _ in range(3)]
            for th in threads:
                th.start()
            time.sleep(0.2)
            lab.tgt.delete_connection(lab.vtl.tid, sid)
            dropped = time.monotonic()
            stop.set()
            for th in threads:
                th.join(timeout=10)
            lost = [(ts, r) for ts, r in results if r.outcome is Outcome.LINK_LOST]
            assert lost, [r.outcome for _, r in results]
            for ts, r in lost:
                assert r.detail is not None
                assert r.detail.maybe_executed
                assert ts - dropped < 0.1
            # the next command reinstates the session and sees the new nexus's attention
            r = t.execute(TUR, timeout=10)
            assert r.outcome is Outcome.OK
            assert t.session.logins == 2
        finally:
            t.close()

    def test_reinstatement_replaces_the_session(self, lab: Lab) -> None:
        """A reconnect with the same ISID leaves one session on the target, not two."""
        t = IscsiTransport(lab.url(lab.disk_lun, query="nop_interval=0"))
        try:
            ready(t)
            conn = t.session.connection
            assert conn is not None
            isid = conn.isid
            before = set(lab.tgt.sessions(lab.vtl.tid))
            lab.tgt.delete_connection(lab.vtl.tid, self._our_sid(t))
            deadline = time.monotonic() + 1
            while t.session.connected and time.monotonic() < deadline:
                time.sleep(0.005)
            assert not t.session.connected
            t.reconnect()
            conn2 = t.session.connection
            assert conn2 is not None
            assert conn2.isid == isid
            after = set(lab.tgt.sessions(lab.vtl.tid))
            assert len(after) == len(before)
            r = t.execute(TUR, timeout=5)
            assert r.check_condition, "the new nexus's unit attention must reach the caller"
            assert decode_sense(r.sense).sense_key == 6
        finally:
            t.close()

    def test_one_login_for_many_threads(self, lab: Lab) -> None:
        """Threads that find the path down together trigger one reinstatement, not several."""
        t = IscsiTransport(lab.url(lab.disk_lun, query="nop_interval=0"))
        try:
            ready(t)
            lab.tgt.delete_connection(lab.vtl.tid, self._our_sid(t))
            deadline = time.monotonic() + 1
            while t.session.connected and time.monotonic() < deadline:
                time.sleep(0.005)
            outcomes: list[Outcome] = []
            threads = [
                threading.Thread(target=lambda: outcomes.append(t.execute(TUR, timeout=10).outcome))
                for _ in range(6)
            ]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            assert outcomes == [Outcome.OK] * 6
            assert t.session.logins == 2
        finally:
            t.close()

    def test_black_hole_detected_by_ping(self, own_tgtd: Lab) -> None:
        """A paused tgtd is declared dead within interval x (misses + 1)."""
        interval, misses = 0.3, 2
        url = own_tgtd.url(own_tgtd.disk_lun, query=f"nop_interval={interval}&nop_misses={misses}")
        t = IscsiTransport(url)
        try:
            ready(t)
            result: list[Response] = []
            own_tgtd.tgt.pause()
            paused = time.monotonic()
            th = threading.Thread(
                target=lambda: result.append(t.execute(TUR, timeout=30)), daemon=True
            )
            th.start()
            while t.session.connected and time.monotonic() - paused < 5:
                time.sleep(0.01)
            detected = time.monotonic() - paused
            th.join(timeout=1)
            own_tgtd.tgt.resume()
            assert detected <= interval * (misses + 1)
            assert result
            assert result[0].outcome is Outcome.LINK_LOST
            assert t.execute(TUR, timeout=10).outcome is Outcome.OK
        finally:
            t.close()

    def test_timeout_reported(self, own_tgtd: Lab) -> None:
        """A command without an answer by its deadline is TIMED_OUT, maybe executed."""
        t = IscsiTransport(own_tgtd.url(own_tgtd.disk_lun, query="nop_interval=0"))
        try:
            ready(t)
            own_tgtd.tgt.pause()
            try:
                t0 = time.monotonic()
                r = t.execute(TUR, timeout=0.3)
                took = time.monotonic() - t0
            finally:
                own_tgtd.tgt.resume()
            assert r.outcome is Outcome.TIMED_OUT
            assert r.detail is not None
            assert r.detail.maybe_executed
            assert 0.3 <= took < 0.6
            assert t.execute(TUR, timeout=5).outcome is Outcome.OK
        finally:
            t.close()


class TestRedirect:
    """Login redirection as tgtd sends it."""

    def test_redirect_followed(self, own_tgtd: Lab) -> None:
        """A target redirected to another portal (another tgtd) is reached there."""
        other = TgtdInstance()
        with other:
            vtl = other.configure_vtl(drives=1, slots=4, disk_mb=16)
            port = find_free_port("127.0.0.2")
            other.tgtadm("--op", "new", "--mode", "portal", "--param", f"portal=127.0.0.2:{port}")
            tid = own_tgtd.vtl.tid
            own_tgtd.tgt.set_target_param(tid, "RedirectAddress", "127.0.0.2")
            own_tgtd.tgt.set_target_param(tid, "RedirectPort", str(port))
            own_tgtd.tgt.set_target_param(tid, "RedirectReason", "Temporary")
            assert vtl.disk_lun is not None
            with IscsiTransport(own_tgtd.url(vtl.disk_lun, query="nop_interval=0")) as t:
                conn = t.session.connection
                assert conn is not None
                assert conn.peer == ("127.0.0.2", port)
                ready(t)

    def test_redirect_loop_bounded(self, own_tgtd: Lab) -> None:
        """A target that keeps redirecting ends in a LoginError, not a loop."""
        tgt = own_tgtd.tgt
        port = find_free_port("127.0.0.2")
        tgt.tgtadm("--op", "new", "--mode", "portal", "--param", f"portal=127.0.0.2:{port}")
        tgt.set_target_param(own_tgtd.vtl.tid, "RedirectAddress", "127.0.0.2")
        tgt.set_target_param(own_tgtd.vtl.tid, "RedirectPort", str(port))
        tgt.set_target_param(own_tgtd.vtl.tid, "RedirectReason", "Permanent")
        with pytest.raises(LoginError, match="redirects"):
            IscsiTransport(own_tgtd.url(own_tgtd.disk_lun))
