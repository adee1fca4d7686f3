"""The ``iscsi://`` transport: a pure-Python iSCSI initiator path.

One :class:`IscsiTransport` is one LUN behind one portal, over its own iSCSI session
(:class:`~tapepath.iscsi.driver.IscsiSession`). It never raises for a failed path:

- the connection drops with the command in flight: ``Outcome.LINK_LOST``,
  ``maybe_executed=True`` (reported as soon as the reader sees the close);
- no answer before ``timeout``: ``Outcome.TIMED_OUT``, ``maybe_executed=True``;
- the path is down and a new login fails: ``Outcome.NO_CONNECT``,
  ``maybe_executed=False``;
- the target rejected or aborted the command: ``Outcome.ABORTED``.

After a drop the next command logs in again with the same ISID (session
reinstatement); nothing is ever resent by the transport.
"""

from __future__ import annotations

import socket
import time

import structlog

from tapepath.errors import LoginError, PathFailureError, ProtocolError, TransportError
from tapepath.iscsi.connection import ConnectOptions
from tapepath.iscsi.driver import IscsiSession
from tapepath.iscsi.session import Task
from tapepath.iscsi.text import Params
from tapepath.iscsi.url import IscsiUrl, parse_iscsi_url
from tapepath.transport.base import (
    DEFAULT_TIMEOUT,
    Outcome,
    Response,
    Transport,
    validate_request,
)

__all__ = ["IscsiTransport", "options_from_url"]

log = structlog.get_logger("tapepath.transport.iscsi")

DEFAULT_NOP_INTERVAL = 1.0
"""Seconds between NOP-Out pings on an idle connection (the path checker and heartbeat)."""
DEFAULT_NOP_MISSES = 1
"""Silent intervals before the path is declared dead: a black hole is found within 2 s."""


def _default_initiator_name() -> str:
    host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname().lower())
    return f"iqn.2026-11.org.tapepath:{host or 'initiator'}"


def options_from_url(u: IscsiUrl, *, want: Params | None = None) -> ConnectOptions:
    """The connection options a parsed URL asks for."""
    base = want or Params(max_burst_length=1048576, first_burst_length=262144)
    import attrs  # noqa: PLC0415

    params = attrs.evolve(base, header_digest=u.header_digest, data_digest=u.data_digest)
    nop = DEFAULT_NOP_INTERVAL if u.nop_interval is None else u.nop_interval
    return ConnectOptions(
        host=u.host,
        port=u.port,
        target=u.target,
        initiator_name=u.initiator_name or _default_initiator_name(),
        credentials=u.credentials,
        want=params,
        require_header_digest=u.require_header_digest,
        require_data_digest=u.require_data_digest,
        connect_timeout=u.connect_timeout or 10.0,
        nop_interval=nop or None,
        nop_misses=u.nop_misses or DEFAULT_NOP_MISSES,
    )


class IscsiTransport(Transport):
    """One LUN over a pure-Python iSCSI session.

    Args:
        url: ``iscsi://[user[%password]@]host[:port]/target-iqn/lun[?...]``.
        connect: log in now (default) or at the first command.
        want: operational parameters to offer (tapepath's defaults when None).

    Raises:
        ValueError: the URL is malformed or names no target and LUN.
        LoginError: the target refused the login (AuthenticationError for CHAP).
        TransportError: the portal could not be reached.
    """

    scheme = "iscsi"

    def __init__(self, url: str, *, connect: bool = True, want: Params | None = None) -> None:
        parsed = parse_iscsi_url(url)
        if parsed.target is None or parsed.lun is None:
            raise ValueError("an iscsi:// transport URL needs /target-iqn/lun")
        self.url = parsed.public()
        self.lun = parsed.lun
        self.options = options_from_url(parsed, want=want)
        self._closed = False
        try:
            self.session = IscsiSession(self.options, connect=connect)
        except (PathFailureError, ProtocolError) as exc:
            raise TransportError(f"cannot open {self.url}: {exc}") from exc

    @classmethod
    def from_url(cls, url: str) -> IscsiTransport:
        """Open the transport for ``url`` (see the class docstring)."""
        return cls(url)

    def _run(
        self,
        cdb: bytes,
        data_out: bytes,
        buf: memoryview | None,
        timeout: float,
    ) -> tuple[Task | None, Response | None, float]:
        t0 = time.monotonic()
        deadline = t0 + timeout
        if self._closed:
            raise TransportError(f"{self.url} is closed")
        try:
            sub = self.session.submit(self.lun, cdb, data_out=data_out, buf=buf, deadline=deadline)
        except (PathFailureError, LoginError, ProtocolError) as exc:
            return (
                None,
                Response.failure(
                    Outcome.NO_CONNECT,
                    f"{self.url}: {exc}",
                    maybe_executed=False,
                    duration=time.monotonic() - t0,
                ),
                t0,
            )
        if sub is None:
            return (
                None,
                Response.failure(
                    Outcome.TIMED_OUT,
                    "the CmdSN window stayed closed until the deadline; not sent",
                    maybe_executed=False,
                    duration=time.monotonic() - t0,
                ),
                t0,
            )
        if not self.session.wait(sub, deadline):
            log.warning("iscsi_command_timed_out", url=self.url, opcode=cdb[0], timeout=timeout)
            return (
                None,
                Response.failure(
                    Outcome.TIMED_OUT,
                    f"no answer within {timeout:g} s",
                    maybe_executed=True,
                    duration=time.monotonic() - t0,
                ),
                t0,
            )
        task = sub.task
        if task.lost:
            reason = sub.connection.failure or "connection lost"
            return (
                None,
                Response.failure(
                    Outcome.LINK_LOST,
                    f"{self.url}: {reason}",
                    maybe_executed=True,
                    duration=time.monotonic() - t0,
                ),
                t0,
            )
        if task.failure is not None:
            return (
                None,
                Response.failure(
                    Outcome.ABORTED,
                    f"{self.url}: {task.failure}",
                    maybe_executed=not task.failure.startswith("rejected"),
                    duration=time.monotonic() - t0,
                ),
                t0,
            )
        return task, None, t0

    def execute(
        self,
        cdb: bytes,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Send one command on this path (see :class:`~tapepath.transport.base.Transport`)."""
        validate_request(cdb, data_out, data_in_len, timeout)
        buf = bytearray(data_in_len) if data_in_len else None
        task, failed, t0 = self._run(
            bytes(cdb), data_out, memoryview(buf) if buf is not None else None, timeout
        )
        if failed is not None:
            return failed
        assert task is not None
        n = task.transferred
        data = b""
        if buf is not None:
            data = bytes(buf) if n == len(buf) else bytes(buf[:n])
        residual = task.residual if task.residual else max(0, task.expected - task.transferred)
        return Response(
            status=task.status,
            data=data,
            sense=task.sense,
            residual=residual,
            duration=time.monotonic() - t0,
            transferred=n,
        )

    def execute_into(
        self,
        cdb: bytes,
        buf: bytearray | memoryview,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """A data-in command whose data lands directly in ``buf`` (no copy).

        If the command times out, the buffer may still receive bytes that were already
        on their way when the deadline passed.
        """
        view = memoryview(buf).cast("B")
        validate_request(cdb, b"", len(view), timeout)
        task, failed, t0 = self._run(bytes(cdb), b"", view if len(view) else None, timeout)
        if failed is not None:
            return failed
        assert task is not None
        residual = task.residual if task.residual else max(0, task.expected - task.transferred)
        return Response(
            status=task.status,
            sense=task.sense,
            residual=residual,
            duration=time.monotonic() - t0,
            transferred=task.transferred,
        )

    def ping(self, timeout: float = 5.0) -> float:
        """One NOP-Out round trip on the current connection, in seconds (a path check).

        Raises:
            PathFailureError: not connected, or no answer within ``timeout``.
        """
        return self.session.ping(timeout)

    def reconnect(self, timeout: float = 10.0) -> None:
        """Log in again now with the same ISID (session reinstatement).

        Raises:
            LoginError, PathFailureError, ProtocolError: the login failed.
        """
        self.session.reconnect(time.monotonic() + timeout)

    def close(self) -> None:
        """Log out and close; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.session.close()
