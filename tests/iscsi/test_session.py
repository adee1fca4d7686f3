"""Session and command state: sequence numbers, data placement, R2T, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import ProtocolError
from tapepath.iscsi.digest import digest_bytes
from tapepath.iscsi.opcodes import Opcode, TmfFunction
from tapepath.iscsi.pdu import (
    ALL_OPCODES,
    BHS_LEN,
    NO_TAG,
    Pdu,
    decode_header,
    decode_pdu,
    encode_pdu,
)
from tapepath.iscsi.serial import serial_add, serial_diff, serial_le, serial_lt
from tapepath.iscsi.session import (
    AsyncMessage,
    Completed,
    PingReply,
    SessionCore,
    TmfReply,
    Transmit,
    encode_lun,
)
from tapepath.iscsi.text import Params
from tests.iscsi import targetsim as T  # noqa: N812


def core(**kw: object) -> SessionCore:
    params = Params(**kw)  # type: ignore[arg-type]
    return SessionCore(params, cmd_sn=1, exp_stat_sn=0, max_cmd_sn=64)


def pdus_of(segments: list) -> list[Pdu]:  # type: ignore[type-arg]
    raw = b"".join(bytes(s) for s in segments)
    out = []
    while raw:
        hdr = decode_header(raw[:BHS_LEN], max_data=1 << 24, accept=ALL_OPCODES)
        n = BHS_LEN + hdr.ahs_length + hdr.data_length + (-hdr.data_length % 4)
        out.append(decode_pdu(raw[:n], max_data=1 << 24, accept=ALL_OPCODES))
        raw = raw[n:]
    return out


def feed(c: SessionCore, pdu: Pdu) -> list[object]:
    hdr = decode_header(pdu_bytes(pdu)[:BHS_LEN], max_data=c.max_data)
    view = c.sink(hdr)
    view[:] = pdu.data
    return list(c.receive(hdr.pdu, view))


def pdu_bytes(pdu: Pdu) -> bytes:
    return b"".join(bytes(s) for s in encode_pdu(pdu))


class TestSerial:
    """RFC 1982 arithmetic across the wrap."""

    def test_wrap(self) -> None:
        """0xFFFFFFFF comes before 0 and 1."""
        assert serial_lt(0xFFFFFFFF, 0)
        assert serial_le(0xFFFFFFFF, 1)
        assert not serial_lt(1, 0xFFFFFFFF)
        assert serial_add(0xFFFFFFFF, 2) == 1
        assert serial_diff(1, 0xFFFFFFFF) == 2

    @given(st.integers(0, 2**32 - 1), st.integers(1, 2**31 - 1))
    def test_order(self, a: int, n: int) -> None:
        """a comes before a + n for any n below 2**31."""
        assert serial_lt(a, serial_add(a, n))
        assert not serial_lt(serial_add(a, n), a)


class TestCommands:
    """Building SCSI Command PDUs."""

    def test_read_command(self) -> None:
        """A read sets R and F, the expected length, the CDB, and advances CmdSN."""
        c = core()
        buf = memoryview(bytearray(36))
        task, segs = c.submit(3, bytes([0x12, 0, 0, 0, 36, 0]), buf=buf)
        (pdu,) = pdus_of(segs)
        assert pdu.opcode == Opcode.SCSI_COMMAND
        assert pdu.flags == 0x80 | 0x40 | 0x01
        assert pdu.words[0] == 36
        assert pdu.cmd_sn == 1
        assert pdu.cdb[:6] == bytes([0x12, 0, 0, 0, 36, 0])
        assert pdu.lun == encode_lun(3)
        assert c.cmd_sn == 2
        assert task.itt == pdu.itt

    def test_header_digest_on_commands(self) -> None:
        """Reads, no-data and write commands all carry a correct header digest."""
        c = core(header_digest=True)
        for kw in ({"buf": memoryview(bytearray(4))}, {}, {"data_out": b"abcd"}):
            _, segs = c.submit(0, b"\x28" + bytes(9), **kw)  # type: ignore[arg-type]
            raw = bytes(segs[0])
            assert raw[48:52] == digest_bytes(raw[:48])

    def test_short_and_16_byte_cdbs(self) -> None:
        """CDBs up to 16 bytes are zero-padded into bytes 32..47."""
        c = core()
        for cdb in (b"\x00", bytes(range(1, 7)), bytes(range(1, 17))):
            _, segs = c.submit(0, cdb)
            (pdu,) = pdus_of(segs)
            assert pdu.cdb == cdb + bytes(16 - len(cdb))

    def test_immediate_data_capped(self) -> None:
        """Immediate data is limited by FirstBurstLength and the target's MRDSL."""
        c = core(immediate_data=True, initial_r2t=True, max_xmit_data_segment_length=8192)
        _, segs = c.submit(0, b"\x0a" + bytes(5), data_out=bytes(20000))
        (pdu,) = pdus_of(segs)
        assert len(pdu.data) == 8192
        assert pdu.final

    def test_unsolicited_data_out(self) -> None:
        """InitialR2T=No sends Data-Out up to FirstBurstLength with F on the last."""
        c = core(
            immediate_data=False,
            initial_r2t=False,
            first_burst_length=16384,
            max_xmit_data_segment_length=8192,
        )
        _, segs = c.submit(0, b"\x0a" + bytes(5), data_out=bytes(50000))
        cmd, d0, d1 = pdus_of(segs)
        assert not cmd.final
        assert cmd.data == b""
        assert (d0.data_sn, d0.buffer_offset, d0.final, d0.ttt) == (0, 0, False, NO_TAG)
        assert (d1.data_sn, d1.buffer_offset, d1.final) == (1, 8192, True)

    def test_extended_cdb(self) -> None:
        """A 32-byte CDB travels in an extended-CDB AHS."""
        c = core()
        cdb = bytes(range(32))
        _, segs = c.submit(0, cdb)
        (pdu,) = pdus_of(segs)
        assert pdu.cdb == cdb

    def test_window(self) -> None:
        """No command beyond MaxCmdSN; the window opens as MaxCmdSN grows."""
        c = SessionCore(Params(), cmd_sn=10, exp_stat_sn=0, max_cmd_sn=10)
        t, _ = c.submit(0, b"\0" * 6)
        assert not c.window_open()
        with pytest.raises(ProtocolError, match="window"):
            c.submit(0, b"\0" * 6)
        feed(c, T.scsi_response(t.itt, stat_sn=0, exp=11, mx=20))
        assert c.window_open()


class TestSubmitSimple:
    """The driver's per-command path builds the same PDUs as :meth:`SessionCore.submit`."""

    @given(
        cdb=st.binary(min_size=1, max_size=16),
        lun=st.integers(0, 16383),
        read=st.booleans(),
        kind=st.sampled_from([bytes, bytearray, memoryview]),
    )
    def test_same_pdu_as_submit(self, cdb: bytes, lun: int, read: bool, kind: type) -> None:
        """Any CDB of 1..16 bytes, as bytes, bytearray or memoryview, any LUN."""
        a, b = core(), core()
        buf = memoryview(bytearray(512)) if read else None
        _, want = a.submit(lun, cdb, buf=buf)
        task, got = b.submit_simple(lun, kind(cdb), buf)
        assert [bytes(s) for s in got] == [bytes(s) for s in want]
        assert type(task.cdb) is bytes
        assert task.cdb == cdb

    def test_cdb_length_checked(self) -> None:
        """An empty CDB or one of 17 bytes is refused; nothing is allocated."""
        c = core()
        for cdb in (b"", bytes(17)):
            with pytest.raises(ValueError, match=r"1\.\.16"):
                c.submit_simple(0, cdb, None)
        assert not c.tasks
        assert c.cmd_sn == 1

    def test_itt_skips_tags_in_use(self) -> None:
        """The next tag is skipped while a ping or a command still holds it."""
        c = core()
        first, _ = c.submit_simple(0, bytes(6), None)
        ping_itt, _ = c.ping()
        second, _ = c.submit_simple(0, bytes(6), None)
        assert len({first.itt, ping_itt, second.itt}) == 3
        c._next_itt = first.itt  # wrap onto a tag still in flight
        third, _ = c.submit_simple(0, bytes(6), None)
        assert third.itt not in (first.itt, ping_itt, second.itt)
        assert third.itt != 0

    def test_invalid_lun_refused(self) -> None:
        """A LUN outside 0..16383 is refused with the LUN named."""
        with pytest.raises(ValueError, match="LUN"):
            core().submit_simple(16384, bytes(6), None)


class TestDataOutFrames:
    """Data-Out sequences: the packed headers match the generic PDU encoder, byte for byte."""

    @given(
        total=st.integers(1, 40000),
        chunk=st.sampled_from([512, 1000, 4096, 8192, 65536]),
        start=st.integers(0, 39999),
        hd=st.booleans(),
        dd=st.booleans(),
        ttt=st.integers(0, 0xFFFFFFFE),
        lun=st.integers(0, 16383),
    )
    def test_same_bytes_as_encode_pdu(
        self, total: int, chunk: int, start: int, hd: bool, dd: bool, ttt: int, lun: int
    ) -> None:
        """Any range, segment size, digests, TTT and LUN."""
        c = core(header_digest=hd, data_digest=dd, max_xmit_data_segment_length=chunk)
        data = bytes(i & 0xFF for i in range(total))
        task, _ = c.submit(lun, b"\x0a" + bytes(5), data_out=data)
        offset = start % total
        length = total - offset
        got = b"".join(bytes(x) for x in c._data_out(task, ttt, offset, length))
        want = b""
        data_sn = 0
        pos = offset
        while pos < total:
            n = min(chunk, total - pos)
            pdu = Pdu(
                Opcode.DATA_OUT,
                flags=0x80 if pos + n >= total else 0,
                lun=encode_lun(lun),
                itt=task.itt,
                words=(ttt, 0, c.exp_stat_sn, 0, data_sn, pos, 0),
                data=data[pos : pos + n],
            )
            want += b"".join(bytes(x) for x in encode_pdu(pdu, header_digest=hd, data_digest=dd))
            pos += n
            data_sn += 1
        assert got == want


class TestDataIn:
    """Data-In placement and completion."""

    def test_data_lands_in_buffer(self) -> None:
        """Segments land at their offsets in the caller's buffer, status completes."""
        c = core()
        buf = memoryview(bytearray(10))
        t, _ = c.submit(0, b"\x08" + bytes(5), buf=buf)
        assert feed(c, T.data_in(t.itt, b"abcd", offset=0, data_sn=0)) == []
        ev = feed(c, T.data_in(t.itt, b"ef", offset=4, data_sn=1, status=0, residual=(0x02, 4)))
        assert ev == [Completed(t)]
        assert bytes(buf[:6]) == b"abcdef"
        assert t.residual == 4
        assert t.transferred == 6
        assert c.exp_stat_sn == 1
        assert not c.tasks

    def test_overrun_refused(self) -> None:
        """Data past the buffer is a protocol error, not a write past it."""
        c = core()
        t, _ = c.submit(0, b"\x08" + bytes(5), buf=memoryview(bytearray(4)))
        with pytest.raises(ProtocolError, match="overruns"):
            feed(c, T.data_in(t.itt, b"abcdef", offset=0, data_sn=0))

    def test_datasn_gap(self) -> None:
        """A missing DataSN is a protocol error."""
        c = core()
        t, _ = c.submit(0, b"\x08" + bytes(5), buf=memoryview(bytearray(8)))
        with pytest.raises(ProtocolError, match="DataSN"):
            feed(c, T.data_in(t.itt, b"ab", offset=0, data_sn=1))

    def test_unknown_itt(self) -> None:
        """Data-In for a tag never issued is refused."""
        c = core()
        with pytest.raises(ProtocolError, match="names no command"):
            feed(c, T.data_in(0x777, b"ab", offset=0, data_sn=0))

    def test_abandoned_task_does_not_touch_buffer(self) -> None:
        """After a timeout, late data goes to scratch, not the caller's buffer."""
        c = core()
        buf = memoryview(bytearray(4))
        t, _ = c.submit(0, b"\x08" + bytes(5), buf=buf)
        c.abandon(t)
        feed(c, T.data_in(t.itt, b"LATE", offset=0, data_sn=0, status=0))
        assert bytes(buf) == bytes(4)


class TestResponses:
    """SCSI Response, sequence numbers and sense."""

    def test_check_condition_with_sense(self) -> None:
        """Status and sense bytes are taken from the response."""
        c = core()
        t, _ = c.submit(0, b"\0" * 6)
        sense = bytes([0x70, 0, 6, 0, 0, 0, 0, 10] + [0] * 4 + [0x29, 0] + [0] * 4)
        feed(c, T.scsi_response(t.itt, status=2, sense=sense))
        assert t.status == 2
        assert t.sense == sense

    def test_sense_length_past_data(self) -> None:
        """A SenseLength beyond the segment is refused."""
        c = core()
        t, _ = c.submit(0, b"\0" * 6)
        bad = T.scsi_response(t.itt)
        bad = Pdu(bad.opcode, bad.flags, False, 0, 2, 0, t.itt, bad.words, b"", b"\x00\x50abc")
        with pytest.raises(ProtocolError, match="SenseLength"):
            feed(c, bad)

    def test_old_statsn(self) -> None:
        """A StatSN behind the window is a protocol error."""
        c = SessionCore(Params(), cmd_sn=1, exp_stat_sn=50, max_cmd_sn=64)
        t, _ = c.submit(0, b"\0" * 6)
        with pytest.raises(ProtocolError, match="StatSN"):
            feed(c, T.scsi_response(t.itt, stat_sn=10))

    def test_expcmdsn_beyond_sent(self) -> None:
        """An ExpCmdSN acknowledging unsent commands is a protocol error."""
        c = core()
        t, _ = c.submit(0, b"\0" * 6)
        with pytest.raises(ProtocolError, match="ExpCmdSN"):
            feed(c, T.scsi_response(t.itt, exp=9))

    def test_target_failure(self) -> None:
        """A non-zero iSCSI response marks the task failed."""
        c = core()
        t, _ = c.submit(0, b"\0" * 6)
        feed(c, T.scsi_response(t.itt, response=1))
        assert t.failure is not None


class TestR2T:
    """Solicited Data-Out."""

    def test_r2t_sequences(self) -> None:
        """Each R2T gets Data-Out PDUs of at most MRDSL, DataSN from 0, F on the last."""
        c = core(immediate_data=False, max_xmit_data_segment_length=4096, max_burst_length=8192)
        data = bytes(range(256)) * 64  # 16 KiB
        t, _ = c.submit(0, b"\x0a" + bytes(5), data_out=data)
        (tx,) = feed(c, T.r2t(t.itt, ttt=0x55, r2t_sn=0, offset=0, length=8192))
        assert isinstance(tx, Transmit)
        outs = pdus_of(tx.segments)
        assert [(p.data_sn, p.buffer_offset, p.final, p.ttt) for p in outs] == [
            (0, 0, False, 0x55),
            (1, 4096, True, 0x55),
        ]
        (tx2,) = feed(c, T.r2t(t.itt, ttt=0x56, r2t_sn=1, offset=8192, length=8192))
        outs2 = pdus_of(tx2.segments)
        assert b"".join(p.data for p in outs + outs2) == data

    @pytest.mark.parametrize(
        ("r2t_sn", "offset", "length", "match"),
        [
            (1, 0, 4096, "R2TSN"),
            (0, 12000, 8192, "beyond"),
            (0, 0, 1 << 20, "MaxBurstLength"),
            (0, 0, 0, "MaxBurstLength"),
        ],
    )
    def test_bad_r2t(self, r2t_sn: int, offset: int, length: int, match: str) -> None:
        """R2Ts out of sequence, out of range or too large are refused."""
        c = core(immediate_data=False)
        t, _ = c.submit(0, b"\x0a" + bytes(5), data_out=bytes(16384))
        with pytest.raises(ProtocolError, match=match):
            feed(c, T.r2t(t.itt, ttt=1, r2t_sn=r2t_sn, offset=offset, length=length))

    def test_r2t_for_read(self) -> None:
        """An R2T for a read command is refused."""
        c = core()
        t, _ = c.submit(0, b"\x08" + bytes(5), buf=memoryview(bytearray(4)))
        with pytest.raises(ProtocolError):
            feed(c, T.r2t(t.itt, ttt=1, r2t_sn=0, offset=0, length=4))


class TestNopTmfAsync:
    """Pings, target pings, task management and async messages."""

    def test_ping_roundtrip(self) -> None:
        """Our ping is immediate and does not advance CmdSN; the answer names it."""
        c = core()
        itt, segs = c.ping()
        (p,) = pdus_of(segs)
        assert p.immediate
        assert p.ttt == NO_TAG
        assert c.cmd_sn == 1
        assert feed(c, T.nop_in(itt)) == [PingReply(itt)]

    def test_unknown_ping_answer(self) -> None:
        """A NOP-In for a tag never pinged is refused."""
        with pytest.raises(ProtocolError, match="ping"):
            feed(core(), T.nop_in(0x99))

    def test_target_ping_answered(self) -> None:
        """A target NOP-In with a TTT gets a NOP-Out echoing the TTT and data."""
        c = core()
        (tx,) = feed(c, T.nop_in(NO_TAG, ttt=0x42, data=b"xyz"))
        assert isinstance(tx, Transmit)
        (p,) = pdus_of(tx.segments)
        assert (p.opcode, p.itt, p.ttt, bytes(p.data)) == (Opcode.NOP_OUT, NO_TAG, 0x42, b"xyz")

    def test_lun_reset_aborts_tasks(self) -> None:
        """A completed LUN RESET completes the LUN's earlier tasks as aborted."""
        c = core()
        t0, _ = c.submit(0, b"\0" * 6)
        t1, _ = c.submit(1, b"\0" * 6)
        itt, segs = c.task_management(TmfFunction.LOGICAL_UNIT_RESET, lun=0)
        (p,) = pdus_of(segs)
        assert p.flags == 0x80 | 5
        resp = Pdu(Opcode.TASK_MGMT_RESPONSE, 0x80, False, 0, 0, 0, itt, T.words(0, 0, 1, 64))
        ev = feed(c, resp)
        assert ev[0] == TmfReply(itt, 0)
        assert Completed(t0) in ev
        assert t0.failure is not None
        assert t1.itt in c.tasks

    def test_async_message(self) -> None:
        """An async message is decoded, with its sense data."""
        c = core()
        msg = Pdu(
            Opcode.ASYNC_MESSAGE,
            0x80,
            False,
            0,
            0,
            0,
            NO_TAG,
            T.words(0, 0, 1, 64, 1 << 24 | 5, 3 << 16 | 4),
            b"",
            b"",
        )
        (ev,) = feed(c, msg)
        assert ev == AsyncMessage(1, 0, (5, 3, 4), 0, b"")

    def test_fail_all(self) -> None:
        """Losing the connection hands back every task in flight."""
        c = core()
        t0, _ = c.submit(0, b"\0" * 6)
        t1, _ = c.submit(0, b"\0" * 6)
        assert set(c.fail_all()) == {t0, t1}
        assert not c.tasks


class TestHostileStream:
    """Arbitrary PDUs never escape as anything but ProtocolError."""

    @given(
        st.sampled_from([0x20, 0x21, 0x22, 0x24, 0x25, 0x26, 0x31, 0x32, 0x3F, 0x23]),
        st.integers(0, 255),
        st.integers(0, 3),
        st.tuples(*[st.integers(0, 2**32 - 1)] * 7),
        st.binary(max_size=64),
    )
    def test_random_target_pdu(
        self, op: int, flags: int, itt_pick: int, words: tuple[int, ...], data: bytes
    ) -> None:
        """Random target PDUs against live tasks give events or ProtocolError."""
        c = core()
        r, _ = c.submit(0, b"\x08" + bytes(5), buf=memoryview(bytearray(32)))
        w, _ = c.submit(0, b"\x0a" + bytes(5), data_out=bytes(32))
        itt = [r.itt, w.itt, NO_TAG, 12345][itt_pick]
        pdu = Pdu(op, flags, False, 0, 0, 0, itt, words, b"", data)
        try:
            hdr = decode_header(pdu_bytes(pdu)[:BHS_LEN], max_data=c.max_data)
            view = c.sink(hdr)
            view[:] = data
            c.receive(hdr.pdu, view)
        except ProtocolError:
            return


class TestWindowWrap:
    """The CmdSN window across the 32-bit wrap."""

    def test_window_open_across_wrap(self) -> None:
        """CmdSN 0xFFFFFFFF with MaxCmdSN 0 is inside the window; CmdSN 1 is not."""
        assert SessionCore(Params(), cmd_sn=0xFFFFFFFF, exp_stat_sn=0, max_cmd_sn=0).window_open()
        assert not SessionCore(Params(), cmd_sn=1, exp_stat_sn=0, max_cmd_sn=0).window_open()

    def test_max_cmd_sn_advances_across_wrap(self) -> None:
        """A MaxCmdSN past the wrap moves the window forward."""
        c = SessionCore(Params(), cmd_sn=0xFFFFFFF0, exp_stat_sn=0, max_cmd_sn=0xFFFFFFF0)
        t, _ = c.submit(0, b"\0" * 6)
        feed(c, T.scsi_response(t.itt, exp=0xFFFFFFF1, mx=5))
        assert c.max_cmd_sn == 5
        assert c.window_open()

    def test_inconsistent_numbers_ignored(self) -> None:
        """MaxCmdSN below ExpCmdSN - 1 leaves both unchanged, as the RFC says."""
        c = core()
        t, _ = c.submit(0, b"\0" * 6)
        feed(c, T.scsi_response(t.itt, exp=2, mx=0))
        assert (c.exp_cmd_sn, c.max_cmd_sn) == (1, 64)

    def test_older_max_cmd_sn_does_not_shrink(self) -> None:
        """A stale, smaller MaxCmdSN does not close the window again."""
        c = core()
        t0, _ = c.submit(0, b"\0" * 6)
        t1, _ = c.submit(0, b"\0" * 6)
        feed(c, T.scsi_response(t0.itt, stat_sn=0, exp=2, mx=100))
        feed(c, T.scsi_response(t1.itt, stat_sn=1, exp=3, mx=90))
        assert c.max_cmd_sn == 100
