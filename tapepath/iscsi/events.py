"""What the session core hands out: the :class:`Task` of a command and the events.

:class:`Task` is the mutable state of one SCSI command in flight, owned by
:class:`~tapepath.iscsi.session.SessionCore`; the event classes are what
:meth:`~tapepath.iscsi.session.SessionCore.receive` returns for the driver to act on.
"""

from __future__ import annotations

from attrs import frozen

from tapepath.scsi._wire import Bytes

__all__ = [
    "AsyncMessage",
    "Completed",
    "Event",
    "LogoutReply",
    "PingReply",
    "Rejected",
    "Task",
    "TextReply",
    "TmfReply",
    "Transmit",
]


class Task:
    """One SCSI command in flight (mutable state owned by the core).

    Attributes:
        itt: its Initiator Task Tag.
        lun: the LUN number.
        cmd_sn: the CmdSN it was sent with.
        cdb: the CDB.
        data_out: bytes to write (empty for reads).
        buf: where Data-In lands (None for writes and no-data commands).
        expected: the Expected Data Transfer Length.
        received: highest byte of data-in received so far.
        status: the SCSI status, once done.
        sense: sense bytes, if any.
        residual: the residual count the target reported (underflow) or 0.
        overflow: bytes the target could not send because the buffer was too small.
        done: True once the status has arrived (or the task was aborted or rejected).
        failure: why the target failed the task without a SCSI status (None if it has one).
        abandoned: the caller gave up waiting; later data goes to a scratch buffer.
        lost: the connection dropped with the task in flight (it may have run).
        waiter: an opaque slot for the driver.
    """

    __slots__ = (
        "abandoned",
        "buf",
        "cdb",
        "cmd_sn",
        "data_out",
        "done",
        "expected",
        "failure",
        "itt",
        "lost",
        "lun",
        "next_data_sn",
        "next_r2t_sn",
        "overflow",
        "received",
        "residual",
        "sense",
        "status",
        "waiter",
    )

    def __init__(  # noqa: PLR0917  (internal constructor, called in one place)
        self,
        itt: int,
        lun: int,
        cmd_sn: int,
        cdb: bytes,
        data_out: memoryview,
        buf: memoryview | None,
    ) -> None:
        self.itt = itt
        self.lun = lun
        self.cmd_sn = cmd_sn
        self.cdb = cdb
        self.data_out = data_out
        self.buf = buf
        self.expected = len(buf) if buf is not None else len(data_out)
        self.received = 0
        self.next_data_sn = 0
        self.next_r2t_sn = 0
        self.status = 0
        self.sense = b""
        self.residual = 0
        self.overflow = 0
        self.done = False
        self.failure: str | None = None
        self.abandoned = False
        self.lost = False
        self.waiter: object = None

    @property
    def transferred(self) -> int:
        """Bytes moved: data-in received, or data-out length minus the residual."""
        if self.buf is not None:
            return self.received
        return max(0, len(self.data_out) - self.residual)

    def __repr__(self) -> str:
        return f"<Task itt=0x{self.itt:08x} cmd_sn={self.cmd_sn} op=0x{self.cdb[0]:02x}>"


@frozen
class Completed:
    """A command finished (status, rejection or abort): look at the task."""

    task: Task


@frozen
class Transmit:
    """Bytes the driver must send now (Data-Out for an R2T, a NOP-Out answer)."""

    segments: list[Bytes]


@frozen
class PingReply:
    """The target answered our NOP-Out ping with this ITT."""

    itt: int


@frozen
class TmfReply:
    """A task management request finished."""

    itt: int
    response: int


@frozen
class TextReply:
    """A Text Response (``final`` False means more follows: send an empty request)."""

    itt: int
    data: bytes
    final: bool
    ttt: int


@frozen
class LogoutReply:
    """The Logout Response."""

    itt: int
    response: int
    time2wait: int
    time2retain: int


@frozen
class AsyncMessage:
    """An Asynchronous Message from the target.

    Attributes:
        event: the AsyncEvent code (see :class:`~tapepath.iscsi.opcodes.AsyncEvent`).
        vcode: the vendor code.
        parameters: Parameter1..3.
        lun: the LUN field (for SCSI events).
        sense: sense data of a SCSI async event.
    """

    event: int
    vcode: int
    parameters: tuple[int, int, int]
    lun: int
    sense: bytes


@frozen
class Rejected:
    """The target rejected a PDU.

    A rejected non-immediate command (SCSI Command, or a NOP-Out, Task Management,
    Text or Logout Request sent without the I bit) that the target did not count
    leaves a hole in the command sequence (RFC 7143 section 7.3): the target's
    ExpCmdSN stays at that CmdSN and every later command waits behind it. At
    ErrorRecoveryLevel 0 nothing is resent to plug it, so ``gap`` True tells the
    driver to drop the connection (session recovery); the rejected command itself
    was not executed and completes with its ``failure`` set and ``lost`` False.

    Attributes:
        reason: the Reject reason code (byte 2).
        itt: the ITT in the rejected PDU's header (0xFFFFFFFF when the data segment
            holds no whole header).
        gap: the rejected PDU left a CmdSN gap: drop the connection.
    """

    reason: int
    itt: int
    gap: bool = False


Event = (
    Completed | Transmit | PingReply | TmfReply | TextReply | LogoutReply | AsyncMessage | Rejected
)
