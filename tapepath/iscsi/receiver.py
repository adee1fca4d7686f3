"""The receive side of an iSCSI connection: the reader thread and what it wakes.

:class:`ReceiverMixin` is the part of :class:`~tapepath.iscsi.connection.IscsiConnection`
that runs on its reader thread. It reads PDUs through one
:class:`~tapepath.iscsi.sockio.Reader`, hands them to the sans-I/O core under the
connection lock, and acts on what the core returns: it wakes the threads (or runs the
callbacks) of finished commands, sends what an R2T asks for, answers the replies that
pings, task management, text and logout requests wait for, and fails the connection
on a protocol error, a lost socket or a Reject that leaves a CmdSN gap. It also sends
what completion callbacks submitted (they run on this thread) before it blocks.

The PDUs of SCSI commands (Data-In, SCSI Response and R2T, without AHS) are read from
their header fields directly, with the core's checks, and no PDU object is built;
everything else goes through :func:`~tapepath.iscsi.pdu.decode_header` and
:meth:`SessionCore.receive`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from threading import get_ident

import structlog

from tapepath.errors import ProtocolError
from tapepath.iscsi.digest import digest_bytes
from tapepath.iscsi.opcodes import Opcode
from tapepath.iscsi.pdu import BHS_LEN, BHS_STRUCT, check_ahs, decode_header
from tapepath.iscsi.session import (
    AsyncMessage,
    Completed,
    LogoutReply,
    PingReply,
    Rejected,
    SessionCore,
    Task,
    TextReply,
    TmfReply,
    Transmit,
)
from tapepath.iscsi.sockio import Reader, sendall
from tapepath.iscsi.text import Params
from tapepath.scsi._wire import Bytes

__all__ = ["ReceiverMixin"]

log = structlog.get_logger("tapepath.iscsi.connection")

_EMPTY = memoryview(b"")


class _Waiter:
    """What a thread blocked on one task waits for.

    A task without a callback will be waited on, so it gets its (held) lock at once. A
    task with a callback gets one only if somebody waits on it: the waiter stores the
    lock, then looks at ``finished``; :meth:`ReceiverMixin._wake` sets ``finished``
    after the callback, then looks at the lock. Whichever comes second sees the other,
    so a wait returns once the callback has run, and never misses the wake-up.
    """

    __slots__ = ("callback", "finished", "lock")

    def __init__(self, callback: Callable[[Task], None] | None = None) -> None:
        self.callback = callback
        self.finished = False
        if callback is None:
            self.lock: threading.Lock | None = threading.Lock()
            self.lock.acquire()
        else:
            self.lock = None


class _Reply:
    """A reply slot for pings, TMFs, text and logout."""

    __slots__ = ("event", "value")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.value: object = None


class ReceiverMixin:
    """The reader thread of an iSCSI connection (mixed into IscsiConnection)."""

    params: Params
    peer: tuple[str, int]
    core: SessionCore
    async_messages: deque[AsyncMessage]
    on_async: Callable[[AsyncMessage], None] | None
    _sock: socket.socket
    _lock: threading.Lock
    _send_lock: threading.Lock
    _window: threading.Condition
    _replies: dict[int, _Reply]
    _corked: list[Bytes]
    _reader_ident: int | None
    _last_rx: float
    _window_waiters: int
    _fail: Callable[[str], None]
    _send: Callable[[list[Bytes]], None]
    _logout_on_request: Callable[[float], None]

    @staticmethod
    def _wake(task: Task) -> None:
        waiter = task.waiter
        if isinstance(waiter, _Waiter):
            if waiter.callback is not None:
                try:
                    waiter.callback(task)
                except Exception:  # a caller's bug must not kill the reader
                    log.exception("iscsi_callback_failed", itt=task.itt)
            waiter.finished = True  # then look at the lock (see _Waiter)
            lock = waiter.lock
            if lock is not None:
                lock.release()

    def _flush_corked(self) -> None:
        """Send what completion callbacks submitted, before the reader blocks."""
        corked = self._corked
        if not corked:
            return
        with self._lock:
            segments = corked[:]
            corked.clear()
            self._send_lock.acquire()
        try:
            sendall(self._sock, segments)
        except OSError as exc:
            self._send_lock.release()
            self._fail(f"send failed: {exc}")
            return
        self._send_lock.release()

    # -- the reader -------------------------------------------------------------------
    def _read_loop(self) -> None:
        self._reader_ident = get_ident()
        reader = Reader(self._sock, self._flush_corked, self._corked)
        hd = self.params.header_digest
        dd = self.params.data_digest
        core = self.core
        lock = self._lock
        max_data = core.max_data
        unpack = BHS_STRUCT.unpack
        data_in = int(Opcode.DATA_IN)
        response = int(Opcode.SCSI_RESPONSE)
        r2t = int(Opcode.R2T)
        try:
            while True:
                bhs = reader.take(BHS_LEN)
                f = unpack(bhs)
                n = f[5] << 16 | f[6]
                op = f[0] & 0x3F
                # the PDUs of commands, without AHS, straight from their header fields
                # (with the core's checks); anything else is decoded in full below
                if op == data_in and not f[4] and n <= max_data:
                    # Data-In straight into the command's buffer
                    if hd:
                        _check_header_digest(reader, bhs)
                    itt, offset = f[8], f[14]
                    reader.adapt(n)
                    if n:
                        with lock:
                            dest = core.data_in_sink(itt, f[13], offset, n)
                        reader.read_into(dest)
                        if n & 3 or dd:
                            _check_tail(reader, dest, dd)
                    self._last_rx = time.monotonic()
                    with lock:
                        task = core.data_in_done(
                            itt, f[1], f[3], f[10], f[11], f[12], offset, n, f[15]
                        )
                        if self._window_waiters:
                            self._window.notify_all()
                    if task is not None:
                        self._wake(task)
                    continue
                if op == response and not f[4] and n <= max_data:
                    if hd:
                        _check_header_digest(reader, bhs)
                    seg = _EMPTY
                    if n:  # sense data, into a buffer of its own
                        seg = memoryview(bytearray(n))
                        reader.read_into(seg)
                        if n & 3 or dd:
                            _check_tail(reader, seg, dd)
                    self._last_rx = time.monotonic()
                    with lock:
                        task = core.response_done(
                            f[8], f[1], f[2], f[3], f[10], f[11], f[12], f[15], seg
                        )
                        if self._window_waiters:
                            self._window.notify_all()
                    self._wake(task)
                    continue
                if op == r2t and not f[4] and not n:
                    if hd:
                        _check_header_digest(reader, bhs)
                    self._last_rx = time.monotonic()
                    with lock:
                        segments = core.r2t_received(
                            f[8], f[9], f[10], f[11], f[12], f[13], f[14], f[15]
                        )
                        if self._window_waiters:
                            self._window.notify_all()
                    if segments:
                        self._send(segments)
                    continue
                header = decode_header(bhs, max_data=max_data)
                if header.ahs_length or hd:
                    covered = bytes(bhs)
                    if header.ahs_length:
                        ahs = bytes(reader.take(header.ahs_length))
                        check_ahs(ahs)
                        covered += ahs
                    if hd and bytes(reader.take(4)) != digest_bytes(covered):
                        raise ProtocolError("header digest mismatch")
                n = header.data_length
                sink: memoryview | None = None
                if n:
                    with lock:
                        sink = core.sink(header)
                    reader.read_into(sink)
                    if n & 3 or dd:
                        _check_tail(reader, sink, dd)
                self._last_rx = time.monotonic()
                with lock:
                    events = core.receive(header.pdu, sink if sink is not None else _EMPTY)
                    if self._window_waiters:
                        self._window.notify_all()
                for event in events:
                    self._handle(event)
        except ProtocolError as exc:
            log.error("iscsi_protocol_error", host=self.peer[0], port=self.peer[1], error=str(exc))
            self._fail(f"protocol error: {exc}")
        except (OSError, ConnectionError) as exc:
            self._fail(f"connection lost: {exc}")
        except Exception as exc:  # a bug must still fail the tasks, not hang them
            log.exception("iscsi_reader_crashed")
            self._fail(f"reader failed: {exc!r}")

    def _handle(self, event: object) -> None:
        if isinstance(event, Completed):
            self._wake(event.task)
        elif isinstance(event, Transmit):
            self._send(event.segments)
        elif isinstance(event, PingReply | TmfReply | TextReply | LogoutReply):
            with self._lock:
                reply = self._replies.pop(event.itt, None)
            if reply is not None:
                reply.value = event
                reply.event.set()
        elif isinstance(event, AsyncMessage):
            self.async_messages.append(event)
            if self.on_async is not None:
                self.on_async(event)
            if event.event in (2, 3):  # the target drops the connection / session
                self._fail(f"target announced a drop (async event {event.event})")
            elif event.event == 1:  # the target asks for a logout within Parameter3 s
                threading.Thread(
                    target=self._logout_on_request,
                    args=(float(event.parameters[2] or 2),),
                    name="iscsi-logout",
                    daemon=True,
                ).start()
        elif isinstance(event, Rejected):
            with self._lock:
                reply = self._replies.pop(event.itt, None)
            if reply is not None:
                reply.event.set()
            if event.gap:
                # the target holds every later command behind the rejected CmdSN, and at
                # ErrorRecoveryLevel 0 nothing is resent here: recover the session
                self._fail(
                    f"the target rejected a command and left a CmdSN gap "
                    f"(reason 0x{event.reason:02x})"
                )


def _check_header_digest(reader: Reader, bhs: memoryview) -> None:
    """Read the header digest after ``bhs`` (a BHS without AHS) and check it.

    Raises:
        ProtocolError: the digest does not match.
    """
    want = digest_bytes(bhs)  # before the next read: bhs is a view of the read buffer
    if bytes(reader.take(4)) != want:
        raise ProtocolError("header digest mismatch")


def _check_tail(reader: Reader, segment: memoryview, data_digest: bool) -> None:
    """Read the padding (and data digest) after ``segment`` and check the digest.

    Raises:
        ProtocolError: the data digest does not match.
    """
    pad = -len(segment) & 3
    tail = reader.take(pad + (4 if data_digest else 0))
    if data_digest and tail[pad:] != digest_bytes(segment, tail[:pad]):
        raise ProtocolError("data digest mismatch")
