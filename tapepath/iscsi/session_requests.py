"""The session's requests and replies other than SCSI commands, sans-I/O.

:class:`RequestsMixin` is the part of :class:`~tapepath.iscsi.session.SessionCore`
that builds the immediate, non-SCSI requests (NOP-Out pings, task management, text,
logout) and handles what the target sends outside the SCSI data path: NOP-In (answers
to pings and the target's own pings), Task Management Responses (which complete the
commands a successful TMF aborted), Asynchronous Messages, Text and Logout Responses,
and Reject. A rejected non-immediate command that the target did not count leaves a
CmdSN gap; :class:`~tapepath.iscsi.events.Rejected` says so in ``gap`` and the driver
drops the connection. Command submission, the Data-In/R2T/Data-Out path and the
CmdSN/StatSN bookkeeping stay in :mod:`tapepath.iscsi.session`, whose ``receive``
dispatches here.

Like the rest of the core it never touches a socket or a thread, and a reply that names
no request that was sent raises :class:`~tapepath.errors.ProtocolError`.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from tapepath.errors import ProtocolError
from tapepath.iscsi.events import (
    AsyncMessage,
    Event,
    LogoutReply,
    PingReply,
    Rejected,
    Task,
    TextReply,
    TmfReply,
    Transmit,
)
from tapepath.iscsi.opcodes import AsyncEvent, Opcode, TmfFunction, TmfResponse
from tapepath.iscsi.pdu import NO_TAG, Pdu
from tapepath.iscsi.serial import serial_lt
from tapepath.iscsi.session_lun import encode_lun
from tapepath.scsi._wire import Bytes

__all__ = ["RequestsMixin"]

log = structlog.get_logger("tapepath.iscsi.session")

_SEQUENCED = frozenset(
    int(op)
    for op in (
        Opcode.NOP_OUT,
        Opcode.SCSI_COMMAND,
        Opcode.TASK_MGMT_REQUEST,
        Opcode.TEXT_REQUEST,
        Opcode.LOGOUT_REQUEST,
    )
)
"""Initiator opcodes whose non-immediate PDUs take a CmdSN (a Reject may leave a gap)."""


class RequestsMixin:
    """Non-SCSI requests and replies of a session (mixed into SessionCore)."""

    tasks: dict[int, Task]
    cmd_sn: int
    exp_stat_sn: int
    _pings: set[int]
    _tmfs: dict[int, tuple[int, int, int, int]]
    _others: set[int]
    _alloc_itt: Callable[[], int]
    _encode: Callable[[Pdu], list[Bytes]]
    _sequence: Callable[..., None]
    _complete: Callable[[Task], list[Event]]

    # -- requests -------------------------------------------------------------------
    def ping(self) -> tuple[int, list[Bytes]]:
        """A NOP-Out that asks for an answer (immediate; CmdSN not advanced)."""
        itt = self._alloc_itt()
        self._pings.add(itt)
        pdu = Pdu(
            Opcode.NOP_OUT,
            flags=0x80,
            immediate=True,
            itt=itt,
            words=(NO_TAG, self.cmd_sn, self.exp_stat_sn, 0, 0, 0, 0),
        )
        return itt, self._encode(pdu)

    def forget_ping(self, itt: int) -> None:
        """Stop waiting for the answer to ping ``itt`` (it missed)."""
        self._pings.discard(itt)

    def task_management(
        self, function: TmfFunction, lun: int = 0, referenced: Task | None = None
    ) -> tuple[int, list[Bytes]]:
        """A Task Management Function Request (immediate)."""
        itt = self._alloc_itt()
        ref_itt = referenced.itt if referenced is not None else NO_TAG
        ref_sn = referenced.cmd_sn if referenced is not None else 0
        if function is TmfFunction.ABORT_TASK and referenced is None:
            raise ValueError("ABORT TASK needs the task to abort")
        self._tmfs[itt] = (int(function), lun, ref_itt, self.cmd_sn)
        pdu = Pdu(
            Opcode.TASK_MGMT_REQUEST,
            flags=0x80 | int(function),
            immediate=True,
            lun=encode_lun(lun),
            itt=itt,
            words=(ref_itt, self.cmd_sn, self.exp_stat_sn, ref_sn, 0, 0, 0),
        )
        return itt, self._encode(pdu)

    def text_request(
        self, data: bytes, *, ttt: int = NO_TAG, itt: int | None = None
    ) -> tuple[int, list[Bytes]]:
        """A Text Request (send ``ttt`` and ``itt`` back to continue a reply)."""
        if itt is None:
            itt = self._alloc_itt()
            self._others.add(itt)
        pdu = Pdu(
            Opcode.TEXT_REQUEST,
            flags=0x80,
            immediate=True,
            itt=itt,
            words=(ttt, self.cmd_sn, self.exp_stat_sn, 0, 0, 0, 0),
            data=data,
        )
        return itt, self._encode(pdu)

    def logout(self, reason: int = 0, cid: int = 0) -> tuple[int, list[Bytes]]:
        """A Logout Request (reason 0: close the session)."""
        itt = self._alloc_itt()
        self._others.add(itt)
        pdu = Pdu(
            Opcode.LOGOUT_REQUEST,
            flags=0x80 | (reason & 0x7F),
            immediate=True,
            itt=itt,
            words=(cid << 16, self.cmd_sn, self.exp_stat_sn, 0, 0, 0, 0),
        )
        return itt, self._encode(pdu)

    # -- replies --------------------------------------------------------------------
    def _async_message(self, pdu: Pdu, seg: memoryview) -> list[Event]:
        self._sequence(pdu, advances=True)
        w = pdu.words[4]
        sense = b""
        if len(seg) >= 2:
            slen = int.from_bytes(seg[0:2], "big")
            sense = bytes(seg[2 : 2 + slen])
        msg = AsyncMessage(
            event=w >> 24,
            vcode=(w >> 16) & 0xFF,
            parameters=(w & 0xFFFF, pdu.words[5] >> 16, pdu.words[5] & 0xFFFF),
            lun=pdu.lun,
            sense=sense,
        )
        name = AsyncEvent(msg.event).name if msg.event in set(AsyncEvent) else str(msg.event)
        log.info("iscsi_async_message", async_event=name, parameters=msg.parameters)
        return [msg]

    def _text_response(self, pdu: Pdu, seg: memoryview) -> list[Event]:
        self._sequence(pdu, advances=True)
        if pdu.itt not in self._others:
            raise ProtocolError(f"Text Response for unknown ITT 0x{pdu.itt:08x}")
        if pdu.final:
            self._others.discard(pdu.itt)
        return [TextReply(pdu.itt, bytes(seg), pdu.final, pdu.ttt)]

    def _logout_response(self, pdu: Pdu) -> list[Event]:
        self._sequence(pdu, advances=True)
        if pdu.itt not in self._others:
            raise ProtocolError(f"Logout Response for unknown ITT 0x{pdu.itt:08x}")
        self._others.discard(pdu.itt)
        w = pdu.words[5]
        return [LogoutReply(pdu.itt, pdu.b2, w >> 16, w & 0xFFFF)]

    def _nop_in(self, pdu: Pdu, seg: memoryview) -> list[Event]:
        if pdu.itt != NO_TAG:
            self._sequence(pdu, advances=True)
            if pdu.itt not in self._pings:
                raise ProtocolError(f"NOP-In for ITT 0x{pdu.itt:08x}, which names no ping")
            self._pings.discard(pdu.itt)
            return [PingReply(pdu.itt)]
        self._sequence(pdu, advances=False)
        if pdu.ttt == NO_TAG:
            return []
        answer = Pdu(
            Opcode.NOP_OUT,
            flags=0x80,
            immediate=True,
            lun=pdu.lun,
            itt=NO_TAG,
            words=(pdu.ttt, self.cmd_sn, self.exp_stat_sn, 0, 0, 0, 0),
            data=bytes(seg),
        )
        return [Transmit(self._encode(answer))]

    def _tmf_response(self, pdu: Pdu) -> list[Event]:
        self._sequence(pdu, advances=True)
        entry = self._tmfs.pop(pdu.itt, None)
        if entry is None:
            raise ProtocolError(f"Task Management Response for unknown ITT 0x{pdu.itt:08x}")
        function, lun, ref_itt, tmf_sn = entry
        events: list[Event] = [TmfReply(pdu.itt, pdu.b2)]
        if pdu.b2 not in (TmfResponse.COMPLETE, TmfResponse.TASK_DOES_NOT_EXIST):
            return events
        victims: list[Task] = []
        if function == TmfFunction.ABORT_TASK:
            t = self.tasks.get(ref_itt)
            victims = [t] if t is not None else []
        elif function in (
            TmfFunction.ABORT_TASK_SET,
            TmfFunction.CLEAR_TASK_SET,
            TmfFunction.LOGICAL_UNIT_RESET,
        ):
            victims = [
                t for t in self.tasks.values() if t.lun == lun and serial_lt(t.cmd_sn, tmf_sn)
            ]
        elif function in (TmfFunction.TARGET_WARM_RESET, TmfFunction.TARGET_COLD_RESET):
            victims = [t for t in self.tasks.values() if serial_lt(t.cmd_sn, tmf_sn)]
        for t in victims:
            t.failure = f"aborted by {TmfFunction(function).name}"
            events += self._complete(t)
        return events

    def _reject(self, pdu: Pdu, seg: memoryview) -> list[Event]:
        self._sequence(pdu, advances=True)
        itt = NO_TAG
        gap_sn: int | None = None
        ends_task = False
        if len(seg) >= 48:
            itt = int.from_bytes(seg[16:20], "big")
            gap_sn = _gap_cmd_sn(seg, pdu.exp_cmd_sn)
            # only the command itself ends with its Reject: a target must not end a task
            # by rejecting one of its other PDUs (a Data-Out, a SNACK), it answers the
            # task with a SCSI Response later
            ends_task = seg[0] & 0x3F == Opcode.SCSI_COMMAND
        log.warning("iscsi_reject", reason=pdu.b2, itt=itt)
        if gap_sn is not None:
            log.warning(
                "iscsi_reject_cmdsn_gap",
                reason=pdu.b2,
                itt=itt,
                cmd_sn=gap_sn,
                exp_cmd_sn=pdu.exp_cmd_sn,
            )
        events: list[Event] = [Rejected(pdu.b2, itt, gap_sn is not None)]
        task = self.tasks.get(itt) if ends_task else None
        if task is not None:
            task.failure = f"rejected by the target (reason 0x{pdu.b2:02x})"
            events += self._complete(task)
        self._pings.discard(itt)
        self._others.discard(itt)
        if self._tmfs.pop(itt, None) is not None:
            events.append(TmfReply(itt, TmfResponse.REJECTED))
        return events


def _gap_cmd_sn(rejected: memoryview, exp_cmd_sn: int) -> int | None:
    """The CmdSN a rejected header leaves as a gap, or None when it leaves none.

    ``rejected`` is the header the Reject carries (at least 48 bytes) and
    ``exp_cmd_sn`` the Reject's own ExpCmdSN. Only a non-immediate PDU that takes a
    CmdSN can leave a gap, and only while the target has not counted it: RFC 7143
    section 7.3 says the CmdSN of a rejected command must be assumed not received,
    but a target that did count it says so with an ExpCmdSN past it.
    """
    first = rejected[0]
    if first & 0x40 or (first & 0x3F) not in _SEQUENCED:
        return None
    cmd_sn = int.from_bytes(rejected[24:28], "big")
    if serial_lt(cmd_sn, exp_cmd_sn):
        return None
    return cmd_sn
