"""Session and command state of a full-feature iSCSI connection, sans-I/O.

:class:`SessionCore` turns requests into encoded PDUs and received PDUs into events.
It keeps CmdSN / ExpStatSN / MaxCmdSN with 32-bit serial arithmetic, allocates ITTs,
sends immediate and unsolicited data within FirstBurstLength, answers R2Ts with
Data-Out sequences (DataSN per sequence), places Data-In straight into the command's
buffer (:meth:`SessionCore.sink`), and reads status, residuals and sense. It never
touches a socket or a thread; the driver calls it under one lock.

Everything a target sends is checked before it is used: an ITT that names no command,
a DataSN or R2TSN out of sequence, data outside the command's buffer, a StatSN behind
the window or an ExpCmdSN beyond what was sent raise
:class:`~tapepath.errors.ProtocolError`, and the driver drops the connection.

The non-SCSI requests and replies (pings, task management, text, logout, asynchronous
messages, rejects) live in :class:`~tapepath.iscsi.session_requests.RequestsMixin`,
which :class:`SessionCore` mixes in; :func:`encode_lun` lives in
:mod:`tapepath.iscsi.session_lun` and is re-exported here.
"""

from __future__ import annotations

import struct
from typing import Final

from tapepath.errors import ProtocolError
from tapepath.iscsi.digest import digest_bytes
from tapepath.iscsi.events import (
    AsyncMessage,
    Completed,
    Event,
    LogoutReply,
    PingReply,
    Rejected,
    Task,
    TextReply,
    TmfReply,
    Transmit,
)
from tapepath.iscsi.opcodes import Opcode
from tapepath.iscsi.pdu import BHS_STRUCT, NO_TAG, Header, Pdu, encode_pdu, frame
from tapepath.iscsi.serial import serial_add, serial_diff
from tapepath.iscsi.session_lun import encode_lun
from tapepath.iscsi.session_requests import RequestsMixin
from tapepath.iscsi.text import Params
from tapepath.scsi._wire import Bytes

__all__ = [
    "AsyncMessage",
    "Completed",
    "LogoutReply",
    "PingReply",
    "Rejected",
    "SessionCore",
    "Task",
    "TextReply",
    "TmfReply",
    "Transmit",
    "encode_lun",
]

_EMPTY: Final = memoryview(b"")
_CMD_HEAD: Final = struct.Struct(">BBBBBBHQIIII")
"""The first 32 bytes of a SCSI Command BHS (the CDB's 16 bytes follow)."""
_STATSN_SLACK: Final = 4096
"""How far ahead of ExpStatSN a StatSN may jump before it is called out of window."""


class SessionCore(RequestsMixin):
    """Command state of one connection in full-feature phase.

    Args:
        params: the negotiated parameters.
        cmd_sn: the next CmdSN to use (the login's CmdSN).
        exp_stat_sn: the next StatSN expected (from the login).
        max_cmd_sn: the target's MaxCmdSN (from the login).
        max_in_flight: a local cap on commands outstanding, whatever the window says.
    """

    def __init__(
        self,
        params: Params,
        *,
        cmd_sn: int,
        exp_stat_sn: int,
        max_cmd_sn: int,
        max_in_flight: int = 256,
    ) -> None:
        self.params = params
        self.cmd_sn = cmd_sn
        self.exp_stat_sn = exp_stat_sn
        self.exp_cmd_sn = cmd_sn
        self.max_cmd_sn = max_cmd_sn
        self.max_in_flight = max_in_flight
        self.tasks: dict[int, Task] = {}
        self._next_itt = 1
        self._pings: set[int] = set()
        self._tmfs: dict[int, tuple[int, int, int, int]] = {}
        self._others: set[int] = set()
        self._hd = params.header_digest
        self._dd = params.data_digest
        self._chunk = params.max_xmit_data_segment_length

    # -- limits ---------------------------------------------------------------------
    @property
    def max_data(self) -> int:
        """The largest data segment the target may send (for decode_header)."""
        return self.params.max_recv_data_segment_length

    def window_open(self) -> bool:
        """True when another non-immediate command may be sent now."""
        # serial_le(cmd_sn, max_cmd_sn), inlined: this runs for every command
        return (self.max_cmd_sn - self.cmd_sn) & 0xFFFFFFFF < 0x80000000 and len(
            self.tasks
        ) < self.max_in_flight

    def _encode(self, pdu: Pdu) -> list[Bytes]:
        return encode_pdu(pdu, header_digest=self._hd, data_digest=self._dd)

    def _alloc_itt(self) -> int:
        itt = self._next_itt
        tasks, pings, tmfs, others = self.tasks, self._pings, self._tmfs, self._others
        while itt in tasks or itt in pings or itt in tmfs or itt in others or not itt:
            itt = (itt + 1) & 0x7FFFFFFF
        self._next_itt = (itt + 1) & 0x7FFFFFFF or 1
        return itt

    # -- requests -------------------------------------------------------------------
    def submit(
        self,
        lun: int,
        cdb: bytes,
        *,
        data_out: Bytes = b"",
        buf: memoryview | None = None,
    ) -> tuple[Task, list[Bytes]]:
        """Start a SCSI command; return its task and the segments to send.

        Immediate data and unsolicited Data-Out go with it as the parameters allow;
        the rest of a write follows the target's R2Ts.

        Raises:
            ProtocolError: the CmdSN window is closed (check :meth:`window_open`).
            ValueError: both data_out and buf, or a CDB of more than 260 bytes.
        """
        if not self.window_open():
            raise ProtocolError("the CmdSN window is closed")
        if data_out and buf is not None:
            raise ValueError("a command moves data in one direction")
        n_cdb = len(cdb)
        if not 1 <= n_cdb <= 260:
            raise ValueError("CDB must be 1..260 bytes")
        if not data_out and n_cdb <= 16:
            return self.submit_simple(lun, cdb, buf)
        out = memoryview(data_out).cast("B") if data_out else _EMPTY
        itt = self._alloc_itt()
        task = Task(itt, lun, self.cmd_sn, bytes(cdb), out, buf)
        p = self.params
        n_out = len(out)
        immediate = 0
        if n_out and p.immediate_data:
            immediate = min(n_out, p.first_burst_length, self._chunk)
        unsolicited = 0
        if n_out and not p.initial_r2t:
            unsolicited = min(n_out, p.first_burst_length) - immediate
        flags = 0x01 | (0x40 if buf is not None else 0) | (0x20 if n_out else 0)
        if unsolicited <= 0:
            flags |= 0x80
        cdb16 = bytes(cdb[:16]) if len(cdb) >= 16 else bytes(cdb) + bytes(16 - len(cdb))
        ahs = b""
        if len(cdb) > 16:
            ext = bytes(cdb[16:])
            ahs = (len(ext) + 1).to_bytes(2, "big") + b"\x01\x00" + ext
            ahs += b"\0" * (-len(ahs) & 3)
        data = out[:immediate] if immediate else b""
        dlen = len(data)
        head = (
            _CMD_HEAD.pack(
                Opcode.SCSI_COMMAND,
                flags,
                0,
                0,
                len(ahs) // 4,
                dlen >> 16,
                dlen & 0xFFFF,
                encode_lun(lun),
                itt,
                task.expected,
                self.cmd_sn,
                self.exp_stat_sn,
            )
            + cdb16
            + ahs
        )
        self.cmd_sn = (self.cmd_sn + 1) & 0xFFFFFFFF
        self.tasks[itt] = task
        segments = frame(head, data, header_digest=self._hd, data_digest=self._dd)
        if unsolicited > 0:
            segments += self._data_out(task, NO_TAG, immediate, unsolicited)
        return task, segments

    def submit_simple(
        self, lun: int, cdb: Bytes, buf: memoryview | None
    ) -> tuple[Task, list[Bytes]]:
        """:meth:`submit` for the common case: a read or no-data command, CDB <= 16 bytes.

        The driver's per-command path: the caller has checked the window (under the
        same lock) and that there is no data to send; the CDB's length is checked here.

        Raises:
            ValueError: an empty CDB or one of more than 16 bytes.
        """
        n_cdb = len(cdb)
        if n_cdb == 16:
            cdb16 = cdb = bytes(cdb)
        elif 1 <= n_cdb < 16:
            cdb = bytes(cdb)
            cdb16 = cdb + bytes(16 - n_cdb)
        else:
            raise ValueError("submit_simple takes a CDB of 1..16 bytes")
        tasks = self.tasks
        itt = self._next_itt
        if itt in tasks or self._pings or self._tmfs or self._others:
            itt = self._alloc_itt()
        else:
            self._next_itt = (itt + 1) & 0x7FFFFFFF or 1
        cmd_sn = self.cmd_sn
        task = Task(itt, lun, cmd_sn, cdb, _EMPTY, buf)
        head = (
            _CMD_HEAD.pack(
                0x01,  # SCSI Command
                0xC1 if buf is not None else 0x81,  # F, R when reading, ATTR=simple
                0,
                0,
                0,
                0,
                0,
                lun << 48 if 0 <= lun < 256 else encode_lun(lun),
                itt,
                task.expected,
                cmd_sn,
                self.exp_stat_sn,
            )
            + cdb16
        )
        if self._hd:
            head += digest_bytes(head)
        self.cmd_sn = (cmd_sn + 1) & 0xFFFFFFFF
        tasks[itt] = task
        return task, [head]

    def _data_out(self, task: Task, ttt: int, offset: int, length: int) -> list[Bytes]:
        """The Data-Out PDUs of ``task``'s bytes ``offset .. offset + length``.

        One sequence (DataSN from 0, F on the last), at most the target's
        MaxRecvDataSegmentLength each; the headers are packed directly (a 256 KiB write
        to a target that takes 8 KiB segments is 32 of them) and the data is not copied.
        """
        segments: list[Bytes] = []
        end = offset + length
        data_sn = 0
        lun_field = encode_lun(task.lun)
        itt = task.itt
        exp_stat_sn = self.exp_stat_sn
        chunk = self._chunk
        data = task.data_out
        hd, dd = self._hd, self._dd
        pack = BHS_STRUCT.pack
        op = int(Opcode.DATA_OUT)
        while offset < end:
            n = min(chunk, end - offset)
            nxt = offset + n
            head = pack(
                op,
                0x80 if nxt >= end else 0,
                0,
                0,
                0,
                n >> 16,
                n & 0xFFFF,
                lun_field,
                itt,
                ttt,
                0,
                exp_stat_sn,
                0,
                data_sn,
                offset,
                0,
            )
            if hd or dd or n & 3:
                segments += frame(head, data[offset:nxt], header_digest=hd, data_digest=dd)
            else:
                segments.append(head)
                segments.append(data[offset:nxt])
            offset = nxt
            data_sn += 1
        return segments

    def abandon(self, task: Task) -> None:
        """The caller stopped waiting: keep the ITT busy, send later data to scratch."""
        task.abandoned = True

    def fail_all(self) -> list[Task]:
        """The connection is gone: return every task in flight and forget them."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.lost = True
            task.done = True
        self.tasks.clear()
        self._pings.clear()
        self._tmfs.clear()
        self._others.clear()
        return tasks

    # -- receiving ------------------------------------------------------------------
    def sink(self, header: Header) -> memoryview:
        """Where the data segment of ``header``'s PDU must be read into.

        For Data-In this is the command's own buffer at the PDU's offset, so data is
        never copied; otherwise a fresh buffer of exactly the segment's length (already
        bounded by the negotiated MaxRecvDataSegmentLength).

        Raises:
            ProtocolError: Data-In for an unknown or finished command, out of sequence,
                or outside the command's buffer.
        """
        pdu, n = header.pdu, header.data_length
        if pdu.opcode != Opcode.DATA_IN:
            return memoryview(bytearray(n))
        return self.data_in_sink(pdu.itt, pdu.data_sn, pdu.buffer_offset, n)

    def data_in_sink(self, itt: int, data_sn: int, offset: int, n: int) -> memoryview:
        """:meth:`sink` for a Data-In PDU, from its header fields (the driver's fast path).

        Raises:
            ProtocolError: as :meth:`sink`.
        """
        task = self.tasks.get(itt)
        if task is None:
            raise ProtocolError(f"Data-In for ITT 0x{itt:08x}, which names no command")
        if task.buf is None or task.done:
            raise ProtocolError(f"Data-In for {task!r}, which reads no data")
        if data_sn != task.next_data_sn:
            raise ProtocolError(
                f"Data-In DataSN {data_sn} out of sequence (expected {task.next_data_sn})"
            )
        if offset + n > task.expected:
            raise ProtocolError(
                f"Data-In of {n} bytes at offset {offset} overruns the {task.expected}-byte buffer"
            )
        if task.abandoned:
            return memoryview(bytearray(n))
        return task.buf[offset : offset + n]

    def _sequence(self, pdu: Pdu, *, advances: bool) -> None:
        self._numbers(pdu.stat_sn, pdu.exp_cmd_sn, pdu.max_cmd_sn, advances)

    def _numbers(self, stat_sn: int, exp: int, mx: int, advances: bool) -> None:
        if advances:
            if stat_sn == self.exp_stat_sn:
                self.exp_stat_sn = (stat_sn + 1) & 0xFFFFFFFF
            else:
                d = serial_diff(stat_sn, self.exp_stat_sn)
                if d < 0 or d > _STATSN_SLACK:
                    raise ProtocolError(
                        f"StatSN {stat_sn} outside the window (expected {self.exp_stat_sn})"
                    )
                self.exp_stat_sn = serial_add(stat_sn, 1)
        if exp == self.exp_cmd_sn and mx == self.max_cmd_sn:
            return
        # serial arithmetic inlined (every response carries these two numbers)
        span = (mx - exp) & 0xFFFFFFFF
        if 0x80000000 <= span < 0xFFFFFFFF:
            return  # MaxCmdSN < ExpCmdSN - 1: the RFC says ignore both
        if 0 < (exp - self.cmd_sn) & 0xFFFFFFFF < 0x80000000:
            raise ProtocolError(f"ExpCmdSN {exp} acknowledges commands never sent")
        if 0 < (exp - self.exp_cmd_sn) & 0xFFFFFFFF < 0x80000000:
            self.exp_cmd_sn = exp
        if 0 < (mx - self.max_cmd_sn) & 0xFFFFFFFF < 0x80000000:
            self.max_cmd_sn = mx

    def receive(self, pdu: Pdu, data: memoryview | None = None) -> list[Event]:
        """Process one PDU from the target whose data segment is ``data``.

        ``data`` defaults to ``pdu.data``; for Data-In it is the view :meth:`sink`
        returned.

        Raises:
            ProtocolError: the PDU breaks the protocol; drop the connection.
        """
        seg = memoryview(pdu.data) if data is None else data
        op = pdu.opcode
        if op == Opcode.DATA_IN:
            return self._data_in(pdu, seg)
        if op == Opcode.SCSI_RESPONSE:
            return self._scsi_response(pdu, seg)
        if op == Opcode.R2T:
            return self._r2t(pdu)
        if op == Opcode.NOP_IN:
            return self._nop_in(pdu, seg)
        if op == Opcode.TASK_MGMT_RESPONSE:
            return self._tmf_response(pdu)
        if op == Opcode.ASYNC_MESSAGE:
            return self._async_message(pdu, seg)
        if op == Opcode.TEXT_RESPONSE:
            return self._text_response(pdu, seg)
        if op == Opcode.LOGOUT_RESPONSE:
            return self._logout_response(pdu)
        if op == Opcode.REJECT:
            return self._reject(pdu, seg)
        raise ProtocolError(f"opcode 0x{op:02x} is not valid in full-feature phase")

    def _complete(self, task: Task) -> list[Event]:
        task.done = True
        del self.tasks[task.itt]
        return [Completed(task)]

    def _data_in(self, pdu: Pdu, seg: memoryview) -> list[Event]:
        w = pdu.words
        task = self.data_in_done(pdu.itt, pdu.flags, pdu.b3, w[1], w[2], w[3], w[5], len(seg), w[6])
        return [Completed(task)] if task is not None else []

    def data_in_done(  # noqa: PLR0917  (the per-PDU hot path: positional on purpose)
        self,
        itt: int,
        flags: int,
        status: int,
        stat_sn: int,
        exp_cmd_sn: int,
        max_cmd_sn: int,
        offset: int,
        n: int,
        residual: int,
    ) -> Task | None:
        """Account a Data-In PDU whose data is in place; the task if it completed.

        The driver's fast path (no :class:`Pdu` built); :meth:`receive` uses it too.

        Raises:
            ProtocolError: an unknown ITT, a bad StatSN window, S without F, or a
                residual larger than the transfer.
        """
        task = self.tasks.get(itt)
        if task is None:
            raise ProtocolError(f"Data-In for ITT 0x{itt:08x}, which names no command")
        has_status = bool(flags & 0x01)
        self._numbers(stat_sn, exp_cmd_sn, max_cmd_sn, has_status)
        task.next_data_sn = (task.next_data_sn + 1) & 0xFFFFFFFF
        end = offset + n
        task.received = max(task.received, end)
        if not has_status:
            return None
        if not flags & 0x80:
            raise ProtocolError("Data-In with status but without the F bit")
        task.status = status
        if flags & 0x02:
            if residual > task.expected:
                raise ProtocolError("residual underflow larger than the transfer")
            task.residual = residual
        elif flags & 0x04:
            task.overflow = residual
        task.done = True
        del self.tasks[itt]
        return task

    def _scsi_response(self, pdu: Pdu, seg: memoryview) -> list[Event]:
        w = pdu.words
        task = self.response_done(pdu.itt, pdu.flags, pdu.b2, pdu.b3, w[1], w[2], w[3], w[6], seg)
        return [Completed(task)]

    def response_done(  # noqa: PLR0917  (the per-PDU hot path: positional on purpose)
        self,
        itt: int,
        flags: int,
        response: int,
        status: int,
        stat_sn: int,
        exp_cmd_sn: int,
        max_cmd_sn: int,
        residual: int,
        seg: memoryview,
    ) -> Task:
        """Account a SCSI Response whose data segment (sense) is ``seg``; its task.

        The driver's fast path (no :class:`Pdu` built); :meth:`receive` uses it too.

        Raises:
            ProtocolError: an unknown ITT, a bad StatSN window, a SenseLength past the
                segment, a residual larger than the transfer, or more Data-In than the
                residual allows.
        """
        task = self.tasks.get(itt)
        if task is None:
            raise ProtocolError(f"SCSI Response for ITT 0x{itt:08x}, which names no command")
        self._numbers(stat_sn, exp_cmd_sn, max_cmd_sn, True)
        if response != 0:
            task.failure = f"target failure (iSCSI response 0x{response:02x})"
        task.status = status
        if len(seg) >= 2:
            slen = seg[0] << 8 | seg[1]
            if 2 + slen > len(seg):
                raise ProtocolError("SenseLength runs past the data segment")
            task.sense = bytes(seg[2 : 2 + slen])
        if flags & 0x02:  # U: underflow
            if residual > task.expected:
                raise ProtocolError("residual underflow larger than the transfer")
            task.residual = residual
        elif flags & 0x04:  # O: overflow
            task.overflow = residual
        if task.buf is not None and task.received > task.expected - task.residual:
            raise ProtocolError("more Data-In than the residual count allows")
        task.done = True
        del self.tasks[itt]
        return task

    def _r2t(self, pdu: Pdu) -> list[Event]:
        w = pdu.words
        segments = self.r2t_received(pdu.itt, w[0], w[1], w[2], w[3], w[4], w[5], w[6])
        return [Transmit(segments)] if segments else []

    def r2t_received(  # noqa: PLR0917  (the per-PDU hot path: positional on purpose)
        self,
        itt: int,
        ttt: int,
        stat_sn: int,
        exp_cmd_sn: int,
        max_cmd_sn: int,
        r2t_sn: int,
        offset: int,
        length: int,
    ) -> list[Bytes]:
        """Answer an R2T: the Data-Out PDUs to send (none for an abandoned command).

        The driver's fast path (no :class:`Pdu` built); :meth:`receive` uses it too.

        Raises:
            ProtocolError: an unknown ITT, a command that writes nothing or is done, an
                R2TSN out of sequence, a length of 0 or beyond MaxBurstLength, a range
                beyond the command's data, or the reserved Target Transfer Tag.
        """
        task = self.tasks.get(itt)
        if task is None:
            raise ProtocolError(f"R2T for ITT 0x{itt:08x}, which names no command")
        self._numbers(stat_sn, exp_cmd_sn, max_cmd_sn, False)
        if not task.data_out or task.done:
            raise ProtocolError(f"R2T for {task!r}, which writes no data")
        if r2t_sn != task.next_r2t_sn:
            raise ProtocolError(f"R2TSN {r2t_sn} out of sequence (expected {task.next_r2t_sn})")
        if length == 0 or length > self.params.max_burst_length:
            raise ProtocolError(f"R2T asks for {length} bytes (MaxBurstLength applies)")
        if offset + length > len(task.data_out):
            raise ProtocolError("R2T asks for data beyond the command's buffer")
        if ttt == NO_TAG:
            raise ProtocolError("R2T with the reserved Target Transfer Tag")
        task.next_r2t_sn = (task.next_r2t_sn + 1) & 0xFFFFFFFF
        if task.abandoned:
            return []
        return self._data_out(task, ttt, offset, length)
