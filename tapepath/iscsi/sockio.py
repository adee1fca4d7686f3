"""Socket I/O for the iSCSI driver: tuning, gathered sends, bounded reads, the login.

:class:`Reader` reads through one preallocated buffer in batches, and lets a large
data segment land straight in its destination (``recv_into`` with ``MSG_WAITALL``).
:func:`sendall` hands PDU segments to ``socket.sendmsg`` without joining them.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Sized

from tapepath.errors import PathFailureError, ProtocolError
from tapepath.iscsi.login import LoginConfig, LoginMachine, LoginResult, Redirect
from tapepath.iscsi.options import ConnectOptions
from tapepath.iscsi.pdu import BHS_LEN, FrameDecoder, Pdu, encode_pdu
from tapepath.scsi._wire import Bytes

__all__ = [
    "SOCKET_BUFFER",
    "Reader",
    "connect_socket",
    "login_on_socket",
    "sendall",
    "tune_socket",
]

_RECV_BUF = 256 * 1024
_BATCH = 64 * 1024
_WAITALL = getattr(socket, "MSG_WAITALL", 0)
_DIRECT = 4096
"""Data segments at least this long are read with recv_into straight into place."""
_IOV_MAX = 1000
_LOGIN_MAX_DATA = 65536
_ALWAYS = (True,)


SOCKET_BUFFER: int | None = None
"""SO_RCVBUF/SO_SNDBUF to set, or None to keep the kernel's autotuning."""


def tune_socket(sock: socket.socket) -> None:
    """TCP_NODELAY and keepalive (and fixed buffers when SOCKET_BUFFER is set)."""
    if SOCKET_BUFFER is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        opt = getattr(socket, name, None)
        if opt is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, opt, value)


def _as_bytes(segment: Bytes) -> Bytes:
    """``segment`` as a buffer whose ``len`` counts bytes (a byte view unless it is one)."""
    if type(segment) is bytes:
        return segment
    if type(segment) is memoryview and segment.format == "B" and segment.ndim == 1:
        return segment
    return memoryview(segment).cast("B")


def sendall(sock: socket.socket, segments: list[Bytes]) -> None:
    """sendmsg the segments completely, in batches of at most IOV_MAX buffers.

    One ``bytes`` segment (a command PDU without data, the common case) goes with one
    ``send``; a list of up to IOV_MAX segments (a Data-Out burst: headers and views of
    the caller's data) with one ``sendmsg`` when the socket takes it all; only what a
    call leaves takes the general way.
    """
    if len(segments) == 1 and type(segments[0]) is bytes:
        only = segments[0]
        sent = sock.send(only)
        if sent == len(only):
            return
        segments = [memoryview(only)[sent:]]
    pending = [s if type(s) is bytes else _as_bytes(s) for s in segments]
    if len(pending) <= _IOV_MAX:
        sent = sock.sendmsg(pending)
        if sent == sum(map(len, pending)):
            return
        pending = _advance(pending, sent)
    pending = [s for s in pending if len(s)]
    while pending:
        batch = pending[:_IOV_MAX]
        pending = _advance(batch, sock.sendmsg(batch)) + pending[len(batch) :]


def _advance(batch: list[Bytes], sent: int) -> list[Bytes]:
    """What is left of ``batch`` (byte-counted buffers) after ``sent`` bytes went out."""
    i = 0
    while i < len(batch) and sent >= len(batch[i]):
        sent -= len(batch[i])
        i += 1
    rest = batch[i:]
    if rest and sent:
        rest[0] = memoryview(rest[0])[sent:]
    return rest


class Reader:
    """Bounded buffered reading with direct placement of large segments."""

    def __init__(
        self,
        sock: socket.socket,
        before_wait: Callable[[], None],
        pending: Sized | None = None,
    ) -> None:
        self.sock = sock
        self.pending: Sized = pending if pending is not None else _ALWAYS
        """``before_wait`` runs before a blocking read while this is not empty (by
        default always)."""
        self.buf = bytearray(_RECV_BUF)
        self.view = memoryview(self.buf)
        self.start = 0
        self.end = 0
        self.before_wait = before_wait
        self.batch = _BATCH

    def adapt(self, segment: int) -> None:
        """Tune batching after a data segment of ``segment`` bytes.

        After a large segment the next one is likely large too: then only its header
        is read ahead, so its data goes straight to its buffer.
        """
        self.batch = _BATCH if segment < _BATCH // 2 else BHS_LEN

    def _fill(self, need: int) -> None:
        if self.start + need > len(self.buf):
            n = self.end - self.start
            self.view[:n] = self.view[self.start : self.end]
            self.start, self.end = 0, n
        while self.end - self.start < need:
            if self.pending:
                self.before_wait()
            # at most self.batch per call: enough to batch small PDUs, while the bulk of
            # a large data segment is left for read_into to receive in place
            want = max(need - (self.end - self.start), self.batch)
            got = self.sock.recv_into(self.view[self.end :], min(len(self.buf) - self.end, want))
            if not got:
                raise ConnectionError("connection closed by the target")
            self.end += got

    def take(self, n: int) -> memoryview:
        """The next ``n`` bytes (valid until the next call)."""
        if self.end - self.start < n:
            self._fill(n)
        v = self.view[self.start : self.start + n]
        self.start += n
        return v

    def read_into(self, dest: memoryview) -> None:
        """Fill ``dest`` exactly: buffered bytes first, then straight from the socket."""
        n = len(dest)
        have = min(n, self.end - self.start)
        if have:
            dest[:have] = self.view[self.start : self.start + have]
            self.start += have
        pos = have
        if pos < n and n - pos < _DIRECT:
            self._fill(n - pos)
            dest[pos:] = self.view[self.start : self.start + n - pos]
            self.start += n - pos
            return
        while pos < n:
            if self.pending:
                self.before_wait()
            # MSG_WAITALL: one wake-up for the whole rest of the segment; the kernel
            # copies into place as the data arrives
            got = self.sock.recv_into(dest[pos:], n - pos, _WAITALL)
            if not got:
                raise ConnectionError("connection closed by the target")
            pos += got


def connect_socket(host: str, port: int, deadline: float) -> socket.socket:
    """A tuned TCP connection to ``host:port`` made before ``deadline``.

    Raises:
        PathFailureError: the portal cannot be reached in time (nothing was sent).
    """
    left = deadline - time.monotonic()
    if left <= 0:
        raise PathFailureError(f"no time left to connect to {host}:{port}", maybe_executed=False)
    try:
        sock = socket.create_connection((host, port), timeout=left)
    except OSError as exc:
        raise PathFailureError(
            f"cannot connect to {host}:{port}: {exc.strerror or exc}", maybe_executed=False
        ) from exc
    tune_socket(sock)
    return sock


def login_on_socket(
    sock: socket.socket,
    options: ConnectOptions,
    *,
    isid: int,
    cmd_sn: int,
    deadline: float,
) -> LoginResult | Redirect:
    """Run the login state machine over ``sock`` (blocking, bounded by ``deadline``).

    Raises:
        LoginError: the target refused (AuthenticationError for CHAP failures).
        PathFailureError: the connection failed or the deadline passed.
        ProtocolError: the target broke the protocol.
    """
    config = LoginConfig(
        initiator_name=options.initiator_name,
        target_name=options.target,
        isid=isid,
        cmd_sn=cmd_sn,
        credentials=options.credentials,
        want=options.want,
    )
    machine = LoginMachine(config)
    decoder = FrameDecoder(max_data=_LOGIN_MAX_DATA)
    request = machine.start()
    buf = bytearray(65536)
    while True:
        sendall(sock, encode_pdu(request))
        pdus: list[Pdu] = []
        while not pdus:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PathFailureError("login timed out", maybe_executed=False)
            sock.settimeout(left)
            try:
                n = sock.recv_into(buf)
            except OSError as exc:
                raise PathFailureError(f"login failed: {exc}", maybe_executed=False) from exc
            if not n:
                raise PathFailureError(
                    "the target closed the connection during login", maybe_executed=False
                )
            pdus = decoder.feed(memoryview(buf)[:n])
        if len(pdus) != 1 or decoder.buffered:
            raise ProtocolError("unexpected extra PDUs during login")
        step = machine.receive(pdus[0])
        if isinstance(step, LoginResult | Redirect):
            return step
        request = step
