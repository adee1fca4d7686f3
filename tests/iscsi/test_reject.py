"""Reject handling in the sans-I/O core: which rejected PDUs leave a CmdSN gap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tapepath.errors import ProtocolError
from tapepath.iscsi.events import Completed, Event, Rejected, Task, TmfReply
from tapepath.iscsi.opcodes import Opcode, TmfFunction, TmfResponse
from tapepath.iscsi.pdu import ALL_OPCODES, BHS_LEN, NO_TAG, Pdu, decode_header, encode_pdu
from tapepath.iscsi.session import SessionCore
from tapepath.iscsi.text import Params
from tapepath.scsi._wire import Bytes
from tests.iscsi import targetsim as T  # noqa: N812

INVALID_PDU_FIELD = 0x09
DATA_DIGEST_ERROR = 0x02
PROTOCOL_ERROR = 0x04
GAP_EVENT = "iscsi_reject_cmdsn_gap"


def core(cmd_sn: int = 1, **kw: object) -> SessionCore:
    """A core in full-feature phase whose next CmdSN is ``cmd_sn`` (window of 64)."""
    params = Params(**kw)  # type: ignore[arg-type]
    return SessionCore(params, cmd_sn=cmd_sn, exp_stat_sn=0, max_cmd_sn=(cmd_sn + 63) & 0xFFFFFFFF)


def header_of(segments: Sequence[Bytes]) -> bytes:
    """The 48-byte BHS of the first PDU in ``segments`` (what a Reject echoes back)."""
    return b"".join(bytes(s) for s in segments)[:BHS_LEN]


def hand_header(first_byte: int, *, itt: int = NO_TAG, cmd_sn: int = 0) -> bytes:
    """A 48-byte header: byte 0, the ITT at 16..19, ``cmd_sn`` at bytes 24..27."""
    h = bytearray(BHS_LEN)
    h[0] = first_byte
    h[1] = 0x80
    h[16:20] = itt.to_bytes(4, "big")
    h[24:28] = cmd_sn.to_bytes(4, "big")
    return bytes(h)


def reject(
    rejected: bytes, *, reason: int = INVALID_PDU_FIELD, stat_sn: int = 0, exp: int, mx: int
) -> Pdu:
    """A Reject PDU carrying ``rejected`` as its data segment."""
    return Pdu(
        Opcode.REJECT,
        flags=0x80,
        b2=reason,
        itt=NO_TAG,
        words=(NO_TAG, stat_sn, exp, mx, 0, 0, 0),
        data=rejected,
    )


def feed(c: SessionCore, pdu: Pdu) -> list[Event]:
    """Encode ``pdu`` as a target would and hand it to the core like the driver does."""
    raw = b"".join(bytes(s) for s in encode_pdu(pdu))
    hdr = decode_header(raw[:BHS_LEN], max_data=c.max_data)
    view = c.sink(hdr)
    view[:] = raw[BHS_LEN : BHS_LEN + hdr.data_length]
    return c.receive(hdr.pdu, view)


def read(c: SessionCore, n: int = 8) -> tuple[Task, bytes]:
    """Submit a READ(10) for ``n`` bytes; return its task and the header sent."""
    task, segs = c.submit(0, b"\x28" + bytes(9), buf=memoryview(bytearray(n)))
    return task, header_of(segs)


def gap_logs(logs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == GAP_EVENT]


class TestGap:
    """A rejected non-immediate command the target did not count."""

    def test_scsi_command_not_counted(self) -> None:
        """ExpCmdSN still at the command's CmdSN: gap, the task fails but is not lost."""
        c = core()
        task, head = read(c)
        with capture_logs() as logs:
            events = feed(c, reject(head, exp=task.cmd_sn, mx=task.cmd_sn + 63))
        assert events == [Rejected(INVALID_PDU_FIELD, task.itt, gap=True), Completed(task)]
        assert task.done
        assert task.failure is not None
        # the transport reads "rejected..." as not executed (maybe_executed False)
        assert task.failure.startswith("rejected")
        assert not task.lost
        assert task.itt not in c.tasks
        (entry,) = gap_logs(logs)
        assert entry["reason"] == INVALID_PDU_FIELD
        assert entry["itt"] == task.itt
        assert entry["cmd_sn"] == task.cmd_sn
        assert entry["exp_cmd_sn"] == task.cmd_sn
        assert entry["log_level"] == "warning"

    def test_later_commands_are_left_to_the_driver(self) -> None:
        """Commands behind the gap stay in flight; dropping the link reports them lost."""
        c = core()
        first, _ = read(c)
        middle, head = read(c)
        last, _ = read(c)
        # the target counted the first command, rejected the middle one, holds the last
        events = feed(c, reject(head, exp=middle.cmd_sn, mx=middle.cmd_sn + 63))
        (rej,) = [e for e in events if isinstance(e, Rejected)]
        assert rej.gap
        assert set(c.tasks) == {first.itt, last.itt}
        lost = c.fail_all()
        assert {t.itt for t in lost} == {first.itt, last.itt}
        assert all(t.lost for t in lost)
        assert not middle.lost
        assert middle.failure is not None

    def test_write_rejected_for_data_digest(self) -> None:
        """A write whose immediate data failed its digest leaves a gap too."""
        c = core(immediate_data=True, data_digest=True)
        task, segs = c.submit(0, b"\x0a" + bytes(5), data_out=b"abcd" * 4)
        head = header_of(segs)
        assert head[4:8] != bytes(4)  # the header announces immediate data
        events = feed(
            c, reject(head, reason=DATA_DIGEST_ERROR, exp=task.cmd_sn, mx=task.cmd_sn + 63)
        )
        assert events[0] == Rejected(DATA_DIGEST_ERROR, task.itt, gap=True)
        assert Completed(task) in events
        assert not task.lost

    @pytest.mark.parametrize(
        "opcode",
        [Opcode.NOP_OUT, Opcode.TASK_MGMT_REQUEST, Opcode.TEXT_REQUEST, Opcode.LOGOUT_REQUEST],
    )
    def test_other_non_immediate_commands(self, opcode: Opcode) -> None:
        """Any request sent without the I bit takes a CmdSN, so its rejection leaves a gap."""
        c = core()
        head = hand_header(int(opcode), itt=0x77, cmd_sn=c.cmd_sn)
        with capture_logs() as logs:
            events = feed(c, reject(head, exp=c.cmd_sn, mx=c.cmd_sn + 63))
        assert events == [Rejected(INVALID_PDU_FIELD, 0x77, gap=True)]
        assert len(gap_logs(logs)) == 1

    def test_unknown_itt_still_reports_the_gap(self) -> None:
        """The hole is in the target's sequence whatever the ITT names; no task completes."""
        c = core()
        task, head = read(c)
        forged = head[:16] + (task.itt + 1).to_bytes(4, "big") + head[20:]
        events = feed(c, reject(forged, exp=task.cmd_sn, mx=task.cmd_sn + 63))
        assert events == [Rejected(INVALID_PDU_FIELD, task.itt + 1, gap=True)]
        assert task.itt in c.tasks
        assert not task.done

    @given(st.integers(0, 2**32 - 1))
    @example(0xFFFFFFFF)
    @example(0x7FFFFFFF)
    def test_serial_arithmetic_across_the_wrap(self, start: int) -> None:
        """For any CmdSN, ExpCmdSN equal to it is a gap and one past it is none."""
        held = core(start)
        task, head = read(held)
        ev = feed(held, reject(head, exp=task.cmd_sn, mx=(task.cmd_sn + 63) & 0xFFFFFFFF))
        assert ev[0] == Rejected(INVALID_PDU_FIELD, task.itt, gap=True)
        counted = core(start)
        task, head = read(counted)
        nxt = (task.cmd_sn + 1) & 0xFFFFFFFF
        ev = feed(counted, reject(head, exp=nxt, mx=(nxt + 63) & 0xFFFFFFFF))
        assert ev[0] == Rejected(INVALID_PDU_FIELD, task.itt, gap=False)


class TestNoGap:
    """Rejects that leave the command sequence whole keep their old handling."""

    def test_counted_command(self) -> None:
        """ExpCmdSN past the command's CmdSN: no gap, the task still fails as rejected."""
        c = core()
        task, head = read(c)
        nxt = task.cmd_sn + 1
        with capture_logs() as logs:
            events = feed(c, reject(head, exp=nxt, mx=nxt + 63))
        assert events == [Rejected(INVALID_PDU_FIELD, task.itt, gap=False), Completed(task)]
        assert task.failure is not None
        assert not task.lost
        assert gap_logs(logs) == []
        assert [e["event"] for e in logs] == ["iscsi_reject"]

    def test_ping(self) -> None:
        """Our immediate NOP-Out carries the current CmdSN yet leaves no gap."""
        c = core()
        itt, segs = c.ping()
        head = header_of(segs)
        assert int.from_bytes(head[24:28], "big") == c.cmd_sn
        with capture_logs() as logs:
            events = feed(c, reject(head, exp=c.cmd_sn, mx=c.cmd_sn + 63))
        assert events == [Rejected(INVALID_PDU_FIELD, itt, gap=False)]
        assert gap_logs(logs) == []
        answer = Pdu(Opcode.NOP_IN, flags=0x80, itt=itt, words=(NO_TAG, 1, 1, 64, 0, 0, 0))
        with pytest.raises(ProtocolError, match="names no ping"):
            feed(c, answer)  # the rejected ping was forgotten

    def test_task_management(self) -> None:
        """A rejected (immediate) TMF request reports REJECTED and no gap."""
        c = core()
        task, _ = read(c)
        itt, segs = c.task_management(TmfFunction.ABORT_TASK, referenced=task)
        head = header_of(segs)
        events = feed(c, reject(head, exp=c.cmd_sn, mx=c.cmd_sn + 63))
        assert events == [
            Rejected(INVALID_PDU_FIELD, itt, gap=False),
            TmfReply(itt, TmfResponse.REJECTED),
        ]
        assert task.itt in c.tasks

    @pytest.mark.parametrize("kind", ["text", "logout"])
    def test_text_and_logout(self, kind: str) -> None:
        """Our Text and Logout Requests are immediate: no gap, the request is forgotten."""
        c = core()
        itt, segs = c.text_request(b"SendTargets=All\0") if kind == "text" else c.logout()
        head = header_of(segs)
        events = feed(c, reject(head, exp=c.cmd_sn, mx=c.cmd_sn + 63))
        assert events == [Rejected(INVALID_PDU_FIELD, itt, gap=False)]
        op = Opcode.TEXT_RESPONSE if kind == "text" else Opcode.LOGOUT_RESPONSE
        late = Pdu(op, flags=0x80, itt=itt, words=(NO_TAG, 1, 1, 64, 0, 0, 0))
        with pytest.raises(ProtocolError, match="unknown ITT"):
            feed(c, late)  # the rejected request was forgotten

    def test_immediate_scsi_command(self) -> None:
        """A SCSI Command with the I bit set takes no CmdSN of its own."""
        c = core()
        head = hand_header(0x40 | Opcode.SCSI_COMMAND, itt=5, cmd_sn=c.cmd_sn)
        events = feed(c, reject(head, exp=c.cmd_sn, mx=c.cmd_sn + 63))
        assert events == [Rejected(INVALID_PDU_FIELD, 5, gap=False)]

    @pytest.mark.parametrize("opcode", [Opcode.DATA_OUT, Opcode.SNACK_REQUEST])
    def test_non_command_pdus(self, opcode: Opcode) -> None:
        """Data-Out and SNACK carry no CmdSN: whatever bytes 24..27 hold, no gap."""
        c = core()
        head = hand_header(int(opcode), itt=9, cmd_sn=c.cmd_sn)
        with capture_logs() as logs:
            events = feed(c, reject(head, reason=PROTOCOL_ERROR, exp=c.cmd_sn, mx=c.cmd_sn + 63))
        assert events == [Rejected(PROTOCOL_ERROR, 9, gap=False)]
        assert gap_logs(logs) == []

    def test_rejected_unsolicited_data_out(self) -> None:
        """A real unsolicited Data-Out of ours, rejected for its digest: no gap."""
        c = core(initial_r2t=False, immediate_data=False, data_digest=True)
        task, segs = c.submit(0, b"\x0a" + bytes(5), data_out=b"wxyz" * 4)
        raw = b"".join(bytes(s) for s in segs)
        hdr = decode_header(raw[:BHS_LEN], max_data=1 << 16, accept=ALL_OPCODES)
        data_out = raw[BHS_LEN + hdr.data_length + (-hdr.data_length % 4) :][:BHS_LEN]
        assert data_out[0] & 0x3F == Opcode.DATA_OUT
        events = feed(
            c, reject(data_out, reason=DATA_DIGEST_ERROR, exp=task.cmd_sn, mx=task.cmd_sn + 63)
        )
        assert events == [Rejected(DATA_DIGEST_ERROR, task.itt, gap=False)]

    def test_rejected_data_out_leaves_the_task_to_its_response(self) -> None:
        """A target must not end a task with a Reject of its Data-Out: its response does."""
        c = core(initial_r2t=False, immediate_data=False)
        task, segs = c.submit(0, b"\x0a" + bytes(5), data_out=b"wxyz" * 4)
        raw = b"".join(bytes(s) for s in segs)
        data_out = raw[BHS_LEN:][:BHS_LEN]
        assert data_out[0] & 0x3F == Opcode.DATA_OUT
        feed(c, reject(data_out, reason=PROTOCOL_ERROR, exp=task.cmd_sn + 1, mx=task.cmd_sn + 64))
        assert not task.done
        assert task.failure is None
        assert task.itt in c.tasks
        sense = bytes([0x70, 0, 0x0B, 0, 0, 0, 0, 10]) + bytes(10)
        events = feed(
            c, T.scsi_response(task.itt, status=2, stat_sn=1, exp=task.cmd_sn + 1, sense=sense)
        )
        assert events == [Completed(task)]
        assert task.status == 2
        assert task.failure is None


class TestShortSegment:
    """A Reject without a whole rejected header names nothing and leaves no gap."""

    @pytest.mark.parametrize("length", [0, 1, 24, 47])
    def test_truncated_header(self, length: int) -> None:
        """Fewer than 48 bytes: no ITT, no gap, nothing completed, StatSN advanced."""
        c = core()
        task, head = read(c)
        with capture_logs() as logs:
            events = feed(c, reject(head[:length], stat_sn=0, exp=task.cmd_sn, mx=64))
        assert events == [Rejected(INVALID_PDU_FIELD, NO_TAG, gap=False)]
        assert task.itt in c.tasks
        assert c.exp_stat_sn == 1
        assert gap_logs(logs) == []

    def test_longer_segment_uses_the_first_48_bytes(self) -> None:
        """Bytes after the rejected header do not change the decision."""
        c = core()
        task, head = read(c)
        events = feed(c, reject(head + b"\xff" * 20, exp=task.cmd_sn, mx=task.cmd_sn + 63))
        assert events[0] == Rejected(INVALID_PDU_FIELD, task.itt, gap=True)

    def test_stat_sn_outside_window(self) -> None:
        """A Reject whose StatSN is far ahead is a protocol error, as before."""
        c = core()
        _, head = read(c)
        with pytest.raises(ProtocolError, match="StatSN"):
            feed(c, reject(head, stat_sn=1 << 20, exp=1, mx=64))


_EVENT_TYPES = (Completed, Rejected, TmfReply)


class TestHostileRejects:
    """Arbitrary Reject PDUs give events or ProtocolError, nothing else."""

    @given(
        reason=st.integers(0, 255),
        payload=st.one_of(
            st.binary(max_size=120),
            st.tuples(st.integers(0, 2), st.integers(0, 255), st.binary(max_size=40)),
        ),
        stat_sn=st.one_of(st.just(0), st.integers(0, 2**32 - 1)),
        exp=st.one_of(st.integers(1, 4), st.integers(0, 2**32 - 1)),
        mx=st.one_of(st.just(64), st.integers(0, 2**32 - 1)),
    )
    def test_random_reject(
        self,
        reason: int,
        payload: bytes | tuple[int, int, bytes],
        stat_sn: int,
        exp: int,
        mx: int,
    ) -> None:
        """Random bytes, or a real header with byte 0 replaced: events or ProtocolError."""
        c = core()
        sent = [read(c) for _ in range(3)]
        if isinstance(payload, tuple):
            which, first, tail = payload
            head = sent[which][1]
            data = bytes([first]) + head[1:] + tail
        else:
            data = payload
        before = set(c.tasks)
        try:
            events = feed(c, reject(data, reason=reason, stat_sn=stat_sn, exp=exp, mx=mx))
        except ProtocolError:
            return
        assert all(isinstance(e, _EVENT_TYPES) for e in events)
        rejected = [e for e in events if isinstance(e, Rejected)]
        assert len(rejected) == 1
        assert events[0] is rejected[0]
        assert rejected[0].reason == reason
        if rejected[0].gap:
            assert len(data) >= BHS_LEN
            assert not data[0] & 0x40
        for e in events:
            if isinstance(e, Completed):
                assert e.task.failure is not None
                assert not e.task.lost
                assert e.task.itt in before
                assert e.task.itt not in c.tasks
