"""The I/O driver: one TCP connection in full-feature phase around the sans-I/O core.

An :class:`IscsiConnection` owns a blocking socket (TCP_NODELAY, keepalive), one
reader thread and, when pings are on, one pinger thread. The reader pulls bytes into
a preallocated buffer and lets Data-In segments land straight in the command's
buffer (``recv_into``); senders hand whole PDU batches to ``socket.sendmsg``. The
core (:class:`~tapepath.iscsi.session.SessionCore`) is only ever called under one
lock, so many threads can have commands in flight at once, up to the CmdSN window.

When the connection breaks (EOF, a socket error, a protocol error, missed pings),
every command in flight is completed at once with ``lost=True``; nothing is resent
here. :class:`~tapepath.iscsi.driver.IscsiSession` reconnects and decides the rest.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from threading import get_ident

import structlog

from tapepath.errors import LoginError, PathFailureError, ProtocolError
from tapepath.iscsi.login import LoginResult, Redirect
from tapepath.iscsi.opcodes import TmfFunction
from tapepath.iscsi.options import ConnectOptions
from tapepath.iscsi.receiver import ReceiverMixin, _Reply, _Waiter
from tapepath.iscsi.session import (
    AsyncMessage,
    SessionCore,
    Task,
    TextReply,
    TmfReply,
)
from tapepath.iscsi.sockio import connect_socket, login_on_socket, sendall
from tapepath.iscsi.text import decode_text, encode_text
from tapepath.scsi._wire import Bytes

__all__ = ["ConnectOptions", "IscsiConnection"]

log = structlog.get_logger("tapepath.iscsi.connection")


class IscsiConnection(ReceiverMixin):
    """One logged-in connection (use :meth:`open`)."""

    def __init__(
        self,
        sock: socket.socket,
        options: ConnectOptions,
        result: LoginResult,
        *,
        isid: int,
        cmd_sn: int,
        peer: tuple[str, int],
    ) -> None:
        self.options = options
        self.login = result
        self.params = result.params
        self.isid = isid
        self.tsih = result.tsih
        self.peer = peer
        self._sock = sock
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._window = threading.Condition(self._lock)
        self.core = SessionCore(
            result.params,
            cmd_sn=cmd_sn,
            exp_stat_sn=result.exp_stat_sn,
            max_cmd_sn=result.max_cmd_sn,
        )
        self._replies: dict[int, _Reply] = {}
        self._dead: str | None = None
        self._closing = False
        self.async_messages: deque[AsyncMessage] = deque(maxlen=64)
        self.on_async: Callable[[AsyncMessage], None] | None = None
        self.on_lost: Callable[[str], None] | None = None
        self._reader = threading.Thread(
            target=self._read_loop, name=f"iscsi-reader-{peer[0]}:{peer[1]}", daemon=True
        )
        self._stop_ping = threading.Event()
        self._last_rx = time.monotonic()
        self._window_waiters = 0
        self._corked: list[Bytes] = []
        """PDUs completion callbacks submitted, sent before the reader next waits
        (always the same list: the reader checks it without a call)."""
        self._reader_ident: int | None = None
        self._pinger: threading.Thread | None = None

    # -- opening --------------------------------------------------------------------
    @classmethod
    def open(
        cls, options: ConnectOptions, *, isid: int, cmd_sn: int = 1, deadline: float | None = None
    ) -> IscsiConnection:
        """Connect, log in (following redirects) and start the reader.

        Raises:
            LoginError: the target refused the login (AuthenticationError for CHAP).
            PathFailureError: the portal could not be reached or broke during login.
            ProtocolError: the target broke the protocol during login.
        """
        if deadline is None:
            deadline = time.monotonic() + options.connect_timeout
        host, port = options.host, options.port
        for _ in range(options.max_redirects + 1):
            sock = connect_socket(host, port, deadline)
            try:
                step = login_on_socket(sock, options, isid=isid, cmd_sn=cmd_sn, deadline=deadline)
            except BaseException:
                sock.close()
                raise
            if isinstance(step, Redirect):
                sock.close()
                host, port = step.host, step.port
                continue
            if options.require_header_digest and not step.params.header_digest:
                sock.close()
                raise LoginError("HeaderDigest=CRC32C was required but not negotiated")
            if options.require_data_digest and not step.params.data_digest:
                sock.close()
                raise LoginError("DataDigest=CRC32C was required but not negotiated")
            sock.settimeout(None)
            conn = cls(sock, options, step, isid=isid, cmd_sn=cmd_sn, peer=(host, port))
            conn._start()
            log.info(
                "iscsi_connected",
                host=host,
                port=port,
                target=options.target,
                tsih=step.tsih,
                header_digest=step.params.header_digest,
                data_digest=step.params.data_digest,
            )
            return conn
        raise LoginError(f"more than {options.max_redirects} login redirects")

    def _logout_on_request(self, within: float) -> None:
        """Let the commands in flight finish (up to ``within`` s), then log out."""
        deadline = time.monotonic() + within * 0.8
        while time.monotonic() < deadline:
            with self._lock:
                if not self.core.tasks or self._dead is not None:
                    break
            time.sleep(0.01)
        log.info("iscsi_logout_requested_by_target", host=self.peer[0], port=self.peer[1])
        self.logout(timeout=max(0.5, within * 0.2))

    @classmethod
    def from_socket(
        cls,
        sock: socket.socket,
        options: ConnectOptions,
        result: LoginResult,
        *,
        isid: int,
        cmd_sn: int = 1,
        peer: tuple[str, int] = ("?", 0),
    ) -> IscsiConnection:
        """Run full-feature phase on a socket whose login already happened elsewhere.

        For tests (a scripted target on a socketpair) and custom login flows.
        """
        sock.settimeout(None)
        conn = cls(sock, options, result, isid=isid, cmd_sn=cmd_sn, peer=peer)
        conn._start()
        return conn

    def _start(self) -> None:
        self._reader.start()
        if self.options.nop_interval:
            self._pinger = threading.Thread(
                target=self._ping_loop, name="iscsi-pinger", daemon=True
            )
            self._pinger.start()

    # -- state ----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """False once the connection has failed or been closed."""
        return self._dead is None

    @property
    def failure(self) -> str | None:
        """Why the connection died (None while alive)."""
        return self._dead

    def _fail(self, reason: str) -> None:
        """Declare the connection dead: shut the socket, complete all tasks as lost."""
        with self._lock:
            if self._dead is not None:
                return
            self._dead = reason
            tasks = self.core.fail_all()
            replies = list(self._replies.values())
            self._replies.clear()
            self._window.notify_all()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._stop_ping.set()
        if not self._closing:
            log.warning(
                "iscsi_connection_lost",
                host=self.peer[0],
                port=self.peer[1],
                reason=reason,
                in_flight=len(tasks),
            )
        for task in tasks:
            self._wake(task)
        for reply in replies:
            reply.event.set()
        if self.on_lost is not None and not self._closing:
            try:
                self.on_lost(reason)
            except Exception:
                log.exception("iscsi_on_lost_callback_failed")

    # -- sending --------------------------------------------------------------------
    def _send(self, segments: list[Bytes]) -> None:
        # _fail takes the core lock: call it only after the send lock is released
        # (submit takes the core lock first, then the send lock)
        error: OSError | None = None
        with self._send_lock:
            try:
                sendall(self._sock, segments)
            except OSError as exc:
                error = exc
        if error is not None:
            self._fail(f"send failed: {error}")

    def submit(
        self,
        lun: int,
        cdb: bytes,
        *,
        data_out: Bytes = b"",
        buf: memoryview | None = None,
        deadline: float,
        callback: Callable[[Task], None] | None = None,
    ) -> Task | None:
        """Send a SCSI command; None if the window did not open before ``deadline``.

        Raises:
            PathFailureError: the connection is dead (the command was not sent).
        """
        waiter = _Waiter(callback)
        on_reader = get_ident() == self._reader_ident
        core = self.core
        with self._lock:
            while self._dead is not None or not core.window_open():
                if self._dead is not None:
                    raise PathFailureError(
                        f"connection is down: {self._dead}", maybe_executed=False
                    )
                left = deadline - time.monotonic()
                if left <= 0 or on_reader:
                    return None  # the reader must never wait for itself
                self._window_waiters += 1
                try:
                    self._window.wait(left)
                finally:
                    self._window_waiters -= 1
            if not data_out and len(cdb) <= 16:
                task, segments = core.submit_simple(lun, cdb, buf)
            else:
                task, segments = core.submit(lun, cdb, data_out=data_out, buf=buf)
            task.waiter = waiter
            corked = self._corked
            if on_reader:
                # a completion callback: batch with the others, sent before the reader waits
                corked += segments
                return task
            if corked:
                segments = corked + segments
                corked.clear()
            self._send_lock.acquire()  # keep CmdSN order on the wire
        try:
            sendall(self._sock, segments)
        except OSError as exc:
            self._send_lock.release()
            self._fail(f"send failed: {exc}")
            return task
        self._send_lock.release()
        return task

    def wait(self, task: Task, deadline: float) -> bool:
        """Wait for ``task`` until ``deadline``; False on timeout.

        A task that times out is abandoned: later data for it is dropped, and an ABORT
        TASK is sent (without waiting) so the target frees it and its tag comes back.
        """
        waiter = task.waiter
        assert isinstance(waiter, _Waiter)
        lock = waiter.lock
        if lock is None:  # a callback task: store a lock, then look (see _Waiter)
            lock = threading.Lock()
            lock.acquire()
            waiter.lock = lock
            if waiter.finished:
                return True
        left = deadline - time.monotonic()
        if left > 0 and lock.acquire(timeout=left):
            return True
        segments: list[Bytes] = []
        with self._lock:
            if task.done:
                lock.acquire()
                return True
            self.core.abandon(task)
            if self._dead is None:
                _, segments = self.core.task_management(TmfFunction.ABORT_TASK, task.lun, task)
        if segments:
            log.info("iscsi_task_abort_sent", itt=task.itt, cmd_sn=task.cmd_sn)
            self._send(segments)
        return False

    def _request(self, build: Callable[[], tuple[int, list[Bytes]]], timeout: float) -> object:
        reply = _Reply()
        with self._lock:
            if self._dead is not None:
                raise PathFailureError(f"connection is down: {self._dead}", maybe_executed=False)
            itt, segments = build()
            self._replies[itt] = reply
        self._send(segments)
        if not reply.event.wait(timeout):
            with self._lock:
                self._replies.pop(itt, None)
                self.core.forget_ping(itt)
            raise PathFailureError("no answer from the target in time")
        if reply.value is None:
            raise PathFailureError(f"connection lost: {self._dead}")
        return reply.value

    def ping(self, timeout: float = 5.0) -> float:
        """Send one NOP-Out and wait for its NOP-In; return the round trip in seconds.

        Raises:
            PathFailureError: no answer in time, or the connection is down.
        """
        t0 = time.monotonic()
        self._request(self.core.ping, timeout)
        return time.monotonic() - t0

    def task_management(
        self,
        function: TmfFunction,
        lun: int = 0,
        task: Task | None = None,
        timeout: float = 10.0,
    ) -> int:
        """Run a task management function; return the response code (0: complete)."""
        value = self._request(lambda: self.core.task_management(function, lun, task), timeout)
        assert isinstance(value, TmfReply)
        return value.response

    def text(self, pairs: list[tuple[str, str]], timeout: float = 10.0) -> list[tuple[str, str]]:
        """A Text exchange (continued while the target says more follows)."""
        data = encode_text(pairs)
        collected = bytearray()
        itt: int | None = None
        ttt = 0xFFFFFFFF
        while True:
            current_itt = itt

            def build(
                d: bytes = data, t: int = ttt, i: int | None = current_itt
            ) -> tuple[int, list[Bytes]]:
                return self.core.text_request(d, ttt=t, itt=i)

            value = self._request(build, timeout)
            assert isinstance(value, TextReply)
            collected += value.data
            if len(collected) > 1 << 20:
                raise ProtocolError("text response longer than 1 MiB")
            if value.final:
                return decode_text(collected)
            itt, ttt, data = value.itt, value.ttt, b""

    def logout(self, timeout: float = 5.0) -> None:
        """Log out (close the session) and close the connection; never raises for a dead link."""
        if self._dead is None:
            self._closing = True
            with contextlib.suppress(PathFailureError, ProtocolError):
                self._request(self.core.logout, timeout)
        self.close()

    def close(self) -> None:
        """Close the connection without logging out; tasks in flight are reported lost."""
        self._closing = True
        self._fail("closed by the initiator")
        self._stop_ping.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._reader.is_alive() and threading.current_thread() is not self._reader:
            self._reader.join(timeout=2.0)
        pinger = self._pinger
        if pinger is not None and pinger.is_alive() and threading.current_thread() is not pinger:
            pinger.join(timeout=2.0)

    # -- the pinger ---------------------------------------------------------------------
    def _ping_loop(self) -> None:
        """Ping every interval; declare the link dead after ``misses`` silent intervals.

        The reader stamps every PDU it receives. Pings keep an idle link talking, so a
        healthy connection is never silent for ``misses`` intervals; a black hole is
        found at most ``interval * misses + interval / 4`` after it began, which is
        inside the promised ``interval * (misses + 1)``.
        """
        interval = self.options.nop_interval
        assert interval is not None
        misses = max(1, self.options.nop_misses)
        period = interval if misses >= 2 else interval / 2
        limit = interval * misses
        tick = interval / 4
        next_ping = time.monotonic()
        while not self._stop_ping.wait(tick):
            if self._dead is not None:
                return
            now = time.monotonic()
            silent = now - self._last_rx
            if silent >= limit:
                log.warning(
                    "iscsi_nop_timeout", host=self.peer[0], port=self.peer[1], silent=silent
                )
                self._fail(f"no answer to NOP-Out pings for {silent:.2f} s")
                return
            if now < next_ping:
                continue
            next_ping = now + period
            with self._lock:
                itt, segments = self.core.ping()
                self._replies[itt] = _Reply()
            self._send(segments)
