"""The I/O driver against a scripted target on a socketpair (no tgtd needed)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tapepath.iscsi.connection import ConnectOptions, IscsiConnection
from tapepath.iscsi.digest import digest_bytes
from tapepath.iscsi.login import LoginResult, make_isid
from tapepath.iscsi.opcodes import INITIATOR_OPCODES, Opcode
from tapepath.iscsi.pdu import NO_TAG, FrameDecoder, Pdu, encode_pdu
from tapepath.iscsi.text import Params
from tapepath.transport.base import Outcome, Response
from tapepath.transport.iscsi import IscsiTransport
from tests.iscsi import targetsim as T  # noqa: N812


class FakeTarget:
    """The target end of a socketpair: reads initiator PDUs, writes what the test says."""

    def __init__(self, sock: socket.socket, *, digests: bool = False) -> None:
        self.sock = sock
        self.sock.settimeout(5)
        self.decoder = FrameDecoder(
            max_data=1 << 20, header_digest=digests, data_digest=digests, accept=INITIATOR_OPCODES
        )
        self.digests = digests
        self.pending: list[Pdu] = []

    def expect(self, opcode: int) -> Pdu:
        """The next PDU from the initiator, which must have ``opcode``."""
        while not self.pending:
            chunk = self.sock.recv(65536)
            assert chunk, "initiator closed the connection"
            self.pending += self.decoder.feed(chunk)
        pdu = self.pending.pop(0)
        assert pdu.opcode == opcode, f"expected 0x{opcode:02x}, got {pdu!r}"
        return pdu

    def send(self, pdu: Pdu) -> None:
        """Send one PDU (with digests when negotiated)."""
        segs = encode_pdu(pdu, header_digest=self.digests, data_digest=self.digests)
        self.sock.sendall(b"".join(bytes(s) for s in segs))

    def send_raw(self, raw: bytes) -> None:
        """Send bytes as they are."""
        self.sock.sendall(raw)


def connect(
    params: Params | None = None, *, nop_interval: float | None = None, nop_misses: int = 2
) -> tuple[IscsiConnection, FakeTarget]:
    ours, theirs = socket.socketpair()
    p = params or Params()
    result = LoginResult(
        params=p,
        tsih=7,
        exp_stat_sn=1,
        exp_cmd_sn=1,
        max_cmd_sn=64,
        chap_algorithm=None,
        target_keys=(),
    )
    options = ConnectOptions(
        host="fake", target="iqn.2026-11.test:t", nop_interval=nop_interval, nop_misses=nop_misses
    )
    conn = IscsiConnection.from_socket(ours, options, result, isid=make_isid(3), peer=("fake", 0))
    return conn, FakeTarget(theirs, digests=p.header_digest)


@pytest.fixture
def pair() -> Iterator[tuple[IscsiConnection, FakeTarget]]:
    conn, target = connect()
    yield conn, target
    conn.close()
    target.sock.close()


def far() -> float:
    return time.monotonic() + 5


class TestDataPath:
    """Commands through the real reader thread."""

    def test_read(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """Data-In lands in the buffer and the waiter wakes with the status."""
        conn, target = pair
        buf = bytearray(8)
        task = conn.submit(0, b"\x08" + bytes(5), buf=memoryview(buf), deadline=far())
        assert task is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        target.send(T.data_in(cmd.itt, b"abcd", offset=0, data_sn=0, stat_sn=1, exp=2))
        target.send(T.data_in(cmd.itt, b"efgh", offset=4, data_sn=1, status=0, stat_sn=1, exp=2))
        assert conn.wait(task, far())
        assert buf == b"abcdefgh"
        assert task.status == 0

    def test_write_with_r2t(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """An R2T is answered with Data-Out carrying the requested range."""
        conn, target = pair
        data = bytes(range(256)) * 48  # 12 KiB: 8 KiB immediate, 4 KiB by R2T
        task = conn.submit(0, b"\x0a" + bytes(5), data_out=data, deadline=far())
        assert task is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        assert bytes(cmd.data) == data[:8192]
        target.send(T.r2t(cmd.itt, ttt=9, r2t_sn=0, offset=8192, length=4096, stat_sn=1))
        out = target.expect(Opcode.DATA_OUT)
        assert (out.ttt, out.buffer_offset, out.final) == (9, 8192, True)
        assert bytes(out.data) == data[8192:]
        target.send(T.scsi_response(cmd.itt, stat_sn=1, exp=2))
        assert conn.wait(task, far())
        assert task.transferred == len(data)

    def test_target_ping_answered(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """A NOP-In with a TTT gets a NOP-Out with the same TTT."""
        conn, target = pair
        target.send(T.nop_in(NO_TAG, ttt=0x1234, stat_sn=1, data=b"hi"))
        answer = target.expect(Opcode.NOP_OUT)
        assert (answer.itt, answer.ttt, bytes(answer.data)) == (NO_TAG, 0x1234, b"hi")
        assert conn.alive

    def test_digests(self) -> None:
        """With digests negotiated, a good PDU passes and a corrupted one drops the link."""
        conn, target = connect(Params(header_digest=True, data_digest=True))
        try:
            buf = bytearray(4)
            task = conn.submit(0, b"\x08" + bytes(5), buf=memoryview(buf), deadline=far())
            assert task is not None
            cmd = target.expect(Opcode.SCSI_COMMAND)
            target.send(T.data_in(cmd.itt, b"okay", offset=0, data_sn=0, status=0, stat_sn=1))
            assert conn.wait(task, far())
            assert buf == b"okay"
            task = conn.submit(0, b"\x08" + bytes(5), buf=memoryview(buf), deadline=far())
            assert task is not None
            cmd = target.expect(Opcode.SCSI_COMMAND)
            raw = bytearray(
                b"".join(
                    bytes(s)
                    for s in encode_pdu(
                        T.data_in(cmd.itt, b"evil", offset=0, data_sn=0, status=0, stat_sn=2),
                        header_digest=True,
                        data_digest=True,
                    )
                )
            )
            raw[52] ^= 0xFF  # first data byte: the data digest no longer matches
            target.send_raw(bytes(raw))
            assert conn.wait(task, far())
            assert task.lost
            assert "data digest" in (conn.failure or "")
        finally:
            conn.close()
            target.sock.close()


def _raw(pdu: Pdu, *, corrupt: int | None = None) -> bytes:
    """``pdu`` with both digests, one byte flipped at ``corrupt`` if given."""
    raw = bytearray(
        b"".join(bytes(s) for s in encode_pdu(pdu, header_digest=True, data_digest=True))
    )
    if corrupt is not None:
        raw[corrupt] ^= 0xFF
    return bytes(raw)


class TestCommandPdusWithDigests:
    """R2T and SCSI Response (read from their header fields) with digests on."""

    def test_write_and_sense_pass(self) -> None:
        """A write answered by R2T, then a CHECK CONDITION with sense: all checked."""
        conn, target = connect(Params(header_digest=True, data_digest=True))
        try:
            data = bytes(range(256)) * 48  # 8 KiB immediate, 4 KiB by R2T
            task = conn.submit(0, b"\x0a" + bytes(5), data_out=data, deadline=far())
            assert task is not None
            cmd = target.expect(Opcode.SCSI_COMMAND)
            target.send_raw(_raw(T.r2t(cmd.itt, ttt=5, r2t_sn=0, offset=8192, length=4096)))
            out = target.expect(Opcode.DATA_OUT)
            assert bytes(out.data) == data[8192:]
            sense = bytes([0x70, 0, 0x03, 0, 0, 0, 0, 10]) + bytes(4) + b"\x0c\x00" + bytes(4)
            target.send_raw(_raw(T.scsi_response(cmd.itt, status=2, stat_sn=1, sense=sense)))
            assert conn.wait(task, far())
            assert task.status == 2
            assert task.sense == sense
            assert conn.alive
        finally:
            conn.close()
            target.sock.close()

    @pytest.mark.parametrize(
        ("kind", "corrupt", "reason"),
        [
            ("r2t", 3, "header digest"),
            ("response", 40, "header digest"),
            ("response", 52, "data digest"),
        ],
    )
    def test_corruption_drops_link(self, kind: str, corrupt: int, reason: str) -> None:
        """A flipped byte in an R2T's header or a response's header or sense."""
        conn, target = connect(Params(header_digest=True, data_digest=True))
        try:
            if kind == "r2t":
                task = conn.submit(0, b"\x0a" + bytes(5), data_out=bytes(12288), deadline=far())
                assert task is not None
                cmd = target.expect(Opcode.SCSI_COMMAND)
                pdu = T.r2t(cmd.itt, ttt=5, r2t_sn=0, offset=8192, length=4096)
            else:
                task = conn.submit(0, bytes(6), deadline=far())
                assert task is not None
                cmd = target.expect(Opcode.SCSI_COMMAND)
                pdu = T.scsi_response(cmd.itt, status=2, stat_sn=1, sense=bytes(18))
            target.send_raw(_raw(pdu, corrupt=corrupt))
            assert conn.wait(task, far())
            assert task.lost
            assert reason in (conn.failure or "")
        finally:
            conn.close()
            target.sock.close()


class TestHostileTarget:
    """A broken target drops the connection and fails what was in flight."""

    def test_oversized_segment(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """A DataSegmentLength over our limit is refused before any of it is read."""
        conn, target = pair
        task = conn.submit(0, bytes(6), deadline=far())
        assert task is not None
        target.expect(Opcode.SCSI_COMMAND)
        header = bytearray(48)
        header[0] = Opcode.NOP_IN
        header[1] = 0x80
        header[5:8] = (conn.core.max_data + 1).to_bytes(3, "big")
        target.send_raw(bytes(header))
        assert conn.wait(task, far())
        assert task.lost
        assert "exceeds" in (conn.failure or "")

    def test_unknown_itt(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """A response for a tag never issued is a protocol error."""
        conn, target = pair
        task = conn.submit(0, bytes(6), deadline=far())
        assert task is not None
        target.expect(Opcode.SCSI_COMMAND)
        target.send(T.scsi_response(0x4242, stat_sn=1))
        assert conn.wait(task, far())
        assert task.lost
        assert not conn.alive

    def test_target_closes(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """A plain close fails the commands in flight within 100 ms."""
        conn, target = pair
        task = conn.submit(0, bytes(6), deadline=far())
        assert task is not None
        target.expect(Opcode.SCSI_COMMAND)
        t0 = time.monotonic()
        target.sock.close()
        assert conn.wait(task, far())
        assert time.monotonic() - t0 < 0.1
        assert task.lost

    def test_timeout_then_late_answer(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """A timed-out read keeps its tag; its late data does not reach the buffer."""
        conn, target = pair
        buf = bytearray(4)
        task = conn.submit(0, b"\x08" + bytes(5), buf=memoryview(buf), deadline=far())
        assert task is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        assert not conn.wait(task, time.monotonic() + 0.05)
        assert task.abandoned
        target.send(T.data_in(cmd.itt, b"late", offset=0, data_sn=0, status=0, stat_sn=1))
        deadline = time.monotonic() + 2
        while cmd.itt in conn.core.tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        assert cmd.itt not in conn.core.tasks
        assert buf == bytes(4)
        assert conn.alive


class TestWindow:
    """Senders wait for the CmdSN window, within their deadline."""

    def test_sender_waits_for_window(self) -> None:
        """With MaxCmdSN reached, a second command waits until a response opens the window."""
        ours, theirs = socket.socketpair()
        result = LoginResult(
            params=Params(),
            tsih=7,
            exp_stat_sn=1,
            exp_cmd_sn=1,
            max_cmd_sn=1,
            chap_algorithm=None,
            target_keys=(),
        )
        options = ConnectOptions(host="fake", target="iqn.2026-11.test:t", nop_interval=None)
        conn = IscsiConnection.from_socket(ours, options, result, isid=make_isid(4))
        target = FakeTarget(theirs)
        try:
            first = conn.submit(0, bytes(6), deadline=far())
            assert first is not None
            cmd1 = target.expect(Opcode.SCSI_COMMAND)
            assert conn.submit(0, bytes(6), deadline=time.monotonic() + 0.05) is None
            got: list[object] = []
            th = threading.Thread(
                target=lambda: got.append(conn.submit(0, bytes(6), deadline=far()))
            )
            th.start()
            time.sleep(0.05)
            assert not got
            target.send(T.scsi_response(cmd1.itt, stat_sn=1, exp=2, mx=2))
            th.join(timeout=2)
            assert got
            assert got[0] is not None
            cmd2 = target.expect(Opcode.SCSI_COMMAND)
            assert cmd2.cmd_sn == 2
        finally:
            conn.close()
            theirs.close()


class TestAbortOnTimeout:
    """A timed-out command is aborted so its tag comes back."""

    def test_abort_task_sent_and_tag_freed(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """After a timeout the target gets ABORT TASK for that command; COMPLETE frees it."""
        conn, target = pair
        task = conn.submit(2, bytes(6), deadline=far())
        assert task is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        assert not conn.wait(task, time.monotonic() + 0.02)
        tmf = target.expect(Opcode.TASK_MGMT_REQUEST)
        assert tmf.flags & 0x7F == 1  # ABORT TASK
        assert tmf.ttt == cmd.itt  # the Referenced Task Tag
        assert tmf.words[3] == cmd.cmd_sn  # RefCmdSN
        assert tmf.immediate
        target.send(
            Pdu(Opcode.TASK_MGMT_RESPONSE, 0x80, False, 0, 0, 0, tmf.itt, T.words(0, 1, 2, 64))
        )
        deadline = time.monotonic() + 2
        while conn.core.tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not conn.core.tasks
        assert task.failure is not None
        assert conn.alive


class TestPingsAndMessages:
    """NOP-Out heartbeat and asynchronous messages."""

    def test_silent_target_declared_dead(self) -> None:
        """With no answers, the link dies within interval x (misses + 1)."""
        interval, misses = 0.1, 2
        t0 = time.monotonic()  # silence is counted from the connection's start
        conn, target = connect(nop_interval=interval, nop_misses=misses)
        try:
            task = conn.submit(0, bytes(6), deadline=far())
            assert task is not None
            assert conn.wait(task, far())
            took = time.monotonic() - t0
            assert task.lost
            assert interval * misses <= took <= interval * (misses + 1)
            assert "NOP" in (conn.failure or "")
        finally:
            conn.close()
            target.sock.close()

    def test_answered_pings_keep_link(self) -> None:
        """A target that answers pings keeps the connection alive past the limit."""
        interval = 0.05
        conn, target = connect(nop_interval=interval, nop_misses=2)
        stop = threading.Event()

        def answer() -> None:
            sn = 1
            while not stop.is_set():
                try:
                    ping = target.expect(Opcode.NOP_OUT)
                    target.send(T.nop_in(ping.itt, stat_sn=sn))
                except (OSError, AssertionError):
                    return
                sn += 1

        th = threading.Thread(target=answer, daemon=True)
        th.start()
        try:
            time.sleep(interval * 8)
            assert conn.alive
        finally:
            stop.set()
            conn.close()
            target.sock.close()
            th.join(timeout=2)

    def test_logout_requested(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """Async event 1 makes the initiator log out."""
        conn, target = pair
        msg = Pdu(
            Opcode.ASYNC_MESSAGE,
            0x80,
            False,
            0,
            0,
            0,
            NO_TAG,
            T.words(NO_TAG, 1, 1, 64, 1 << 24, 0, 1),
        )
        target.send(msg)
        req = target.expect(Opcode.LOGOUT_REQUEST)
        assert req.immediate
        target.send(
            Pdu(Opcode.LOGOUT_RESPONSE, 0x80, False, 0, 0, 0, req.itt, T.words(0, 2, 1, 64))
        )
        deadline = time.monotonic() + 2
        while conn.alive and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not conn.alive
        assert conn.async_messages[0].event == 1

    def test_header_digest_helper(self) -> None:
        """The fake target's digests agree with the codec's (sanity of the harness)."""
        raw = b"".join(bytes(s) for s in encode_pdu(Pdu(Opcode.NOP_IN, 0x80), header_digest=True))
        assert raw[48:] == digest_bytes(raw[:48])


class TestCallbacks:
    """Completion callbacks run on the reader thread and cannot break it."""

    def test_failing_callback_does_not_kill_reader(
        self, pair: tuple[IscsiConnection, FakeTarget]
    ) -> None:
        """A callback that raises is logged; the connection keeps working."""
        conn, target = pair

        def boom(_task: object) -> None:
            raise RuntimeError("caller bug")

        task = conn.submit(0, bytes(6), deadline=far(), callback=boom)
        assert task is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        target.send(T.scsi_response(cmd.itt, stat_sn=1, exp=2))
        assert conn.wait(task, far())
        second = conn.submit(0, bytes(6), deadline=far())
        assert second is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        target.send(T.scsi_response(cmd.itt, stat_sn=2, exp=3))
        assert conn.wait(second, far())
        assert conn.alive

    def test_wait_on_callback_task_before_completion(
        self, pair: tuple[IscsiConnection, FakeTarget]
    ) -> None:
        """A thread may wait on a callback task: it wakes after the callback has run."""
        conn, target = pair
        order: list[str] = []
        task = conn.submit(0, bytes(6), deadline=far(), callback=lambda t: order.append("cb"))
        assert task is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        waited: list[bool] = []
        waiter = threading.Thread(target=lambda: waited.append(conn.wait(task, far())))
        waiter.start()
        time.sleep(0.05)  # the waiter is blocked before the answer arrives
        assert not waited
        target.send(T.scsi_response(cmd.itt, stat_sn=1, exp=2))
        waiter.join(5)
        order.append("woke")
        assert waited == [True]
        assert order == ["cb", "woke"]

    def test_wait_on_callback_task_after_completion(
        self, pair: tuple[IscsiConnection, FakeTarget]
    ) -> None:
        """Waiting on a callback task that already finished returns at once."""
        conn, target = pair
        ran = threading.Event()
        task = conn.submit(0, bytes(6), deadline=far(), callback=lambda t: ran.set())
        assert task is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        target.send(T.scsi_response(cmd.itt, stat_sn=1, exp=2))
        assert ran.wait(5)
        t0 = time.monotonic()
        assert conn.wait(task, far())
        assert time.monotonic() - t0 < 1.0
        assert task.done
        assert task.status == 0

    def test_wait_during_callback_returns_after_it(
        self, pair: tuple[IscsiConnection, FakeTarget]
    ) -> None:
        """A wait that starts while the callback runs returns once the callback is done."""
        conn, target = pair
        order: list[str] = []
        running = threading.Event()

        def slow(_task: object) -> None:
            running.set()
            time.sleep(0.2)
            order.append("cb")

        task = conn.submit(0, bytes(6), deadline=far(), callback=slow)
        assert task is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        target.send(T.scsi_response(cmd.itt, stat_sn=1, exp=2))
        assert running.wait(5)
        assert task.done  # the core has finished it; its callback has not
        assert conn.wait(task, far())
        order.append("woke")
        assert order == ["cb", "woke"]

    def test_callback_task_times_out(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """A callback task that is waited on and never answered times out (and is aborted)."""
        conn, target = pair
        task = conn.submit(0, bytes(6), deadline=far(), callback=lambda t: None)
        assert task is not None
        target.expect(Opcode.SCSI_COMMAND)
        assert not conn.wait(task, time.monotonic() + 0.1)
        tmf = target.expect(Opcode.TASK_MGMT_REQUEST)
        assert tmf.words[0] == task.itt  # Referenced Task Tag

    def test_resubmit_from_callback_is_sent(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """A command a callback submits on the reader thread goes out before it waits."""
        conn, target = pair
        second: list[object] = []

        def again(_task: object) -> None:
            second.append(conn.submit(0, bytes(6), deadline=far()))

        task = conn.submit(0, bytes(6), deadline=far(), callback=again)
        assert task is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        target.send(T.scsi_response(cmd.itt, stat_sn=1, exp=2))
        nxt = target.expect(Opcode.SCSI_COMMAND)
        assert nxt.itt != cmd.itt
        assert nxt.cmd_sn == cmd.cmd_sn + 1
        target.send(T.scsi_response(nxt.itt, stat_sn=2, exp=3))
        (sub,) = second
        assert isinstance(sub, type(task))
        assert conn.wait(sub, far())


class TestRejectGap:
    """A Reject that leaves a CmdSN gap drops the connection; the rejected task was not run."""

    def test_gap_drops_connection(self, pair: tuple[IscsiConnection, FakeTarget]) -> None:
        """The rejected command fails as rejected; the one behind it is reported lost."""
        conn, target = pair
        first = conn.submit(0, bytes(6), deadline=far())
        second = conn.submit(0, bytes(6), deadline=far())
        assert first is not None
        assert second is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        target.expect(Opcode.SCSI_COMMAND)
        raw = b"".join(bytes(s) for s in encode_pdu(cmd))[:48]
        target.send(T.reject(raw, reason=0x09, stat_sn=1, exp=cmd.cmd_sn, mx=cmd.cmd_sn + 63))
        assert conn.wait(first, far())
        assert conn.wait(second, far())
        assert first.failure is not None
        assert first.failure.startswith("rejected")
        assert not first.lost
        assert second.lost
        assert not conn.alive
        assert conn.failure is not None
        assert "CmdSN gap" in conn.failure

    def test_counted_reject_keeps_connection(
        self, pair: tuple[IscsiConnection, FakeTarget]
    ) -> None:
        """A Reject whose ExpCmdSN is past the command leaves the connection up."""
        conn, target = pair
        task = conn.submit(0, bytes(6), deadline=far())
        assert task is not None
        cmd = target.expect(Opcode.SCSI_COMMAND)
        raw = b"".join(bytes(s) for s in encode_pdu(cmd))[:48]
        target.send(T.reject(raw, reason=0x09, stat_sn=1, exp=cmd.cmd_sn + 1, mx=cmd.cmd_sn + 64))
        assert conn.wait(task, far())
        assert task.failure is not None
        assert not task.lost
        assert conn.alive


class TestDeadlinesDuringLogin:
    """A login that hangs never holds a caller past its own deadline."""

    def test_hanging_login_bounded(self) -> None:
        """A portal that accepts but never answers: both callers return on time."""
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        port = srv.getsockname()[1]
        try:
            t = IscsiTransport(
                f"iscsi://127.0.0.1:{port}/iqn.2026-11.test:t/0?nop_interval=0", connect=False
            )
            first: list[Response] = []
            th = threading.Thread(target=lambda: first.append(t.execute(bytes(6), timeout=0.8)))
            t0 = time.monotonic()
            th.start()
            time.sleep(0.1)
            second = t.execute(bytes(6), timeout=0.2)
            took = time.monotonic() - t0
            assert second.outcome is Outcome.NO_CONNECT
            assert second.detail is not None
            assert not second.detail.maybe_executed
            assert took < 0.6
            th.join(timeout=3)
            assert first[0].outcome is Outcome.NO_CONNECT
            assert time.monotonic() - t0 < 1.5
            t.close()
        finally:
            srv.close()
