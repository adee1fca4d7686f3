"""An iSCSI session over one connection at a time, with reconnection and reinstatement.

:class:`IscsiSession` keeps one ISID for its whole life. When its connection dies it
does not reconnect by itself and never resends anything: the commands that were in
flight come back lost, and the next command (or an explicit :meth:`reconnect`) logs in
again with the same ISID, starting at the security stage, so the target reinstates
the session and clears the dead nexus's tasks. The new nexus then reports its unit
attention (power on / reset, or I_T nexus loss) to the first command, which the caller
sees as a CHECK CONDITION: it is not swallowed here.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

import attrs
import structlog

from tapepath.errors import PathFailureError
from tapepath.iscsi.connection import ConnectOptions, IscsiConnection
from tapepath.iscsi.login import make_isid
from tapepath.iscsi.opcodes import TmfFunction
from tapepath.iscsi.session import Task
from tapepath.scsi._wire import Bytes

__all__ = ["IscsiSession", "Submitted", "discover_targets"]

log = structlog.get_logger("tapepath.iscsi.driver")


@attrs.frozen
class Submitted:
    """A command handed to a connection: wait on it with :meth:`IscsiSession.wait`."""

    task: Task
    connection: IscsiConnection


class IscsiSession:
    """A normal session to one target through one portal.

    Args:
        options: portal, target, credentials and parameters.
        isid_qualifier: the 24-bit part of the ISID (random when None); keep it to
            reinstate this session from another process.
        connect: log in now (True) or at the first command.
    """

    def __init__(
        self,
        options: ConnectOptions,
        *,
        isid_qualifier: int | None = None,
        connect: bool = True,
    ) -> None:
        if options.target is None:
            raise ValueError("a normal session needs a target name")
        self.options = options
        qualifier = secrets.randbits(24) if isid_qualifier is None else isid_qualifier
        self.isid = make_isid(qualifier)
        self.logins = 0
        self._conn: IscsiConnection | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.on_lost: Callable[[str], None] | None = None
        if connect:
            self.reconnect()

    @property
    def connection(self) -> IscsiConnection | None:
        """The current connection (None before the first login or after close)."""
        return self._conn

    @property
    def connected(self) -> bool:
        """True while a logged-in connection is alive."""
        conn = self._conn
        return conn is not None and conn.alive

    def reconnect(self, deadline: float | None = None, *, force: bool = True) -> IscsiConnection:
        """Log in again with the same ISID (session reinstatement); return the connection.

        Args:
            deadline: ``time.monotonic()`` value by which the login must be done.
            force: replace a connection that is still alive (False: keep it, which is
                what a command does when several threads find the path down at once).

        Raises:
            LoginError, PathFailureError, ProtocolError: the login failed.
        """
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._lock.acquire(timeout=wait):
            raise PathFailureError(
                "another thread is still logging in and the deadline passed",
                maybe_executed=False,
            )
        try:
            return self._reconnect_locked(deadline, force=force)
        finally:
            self._lock.release()

    def _reconnect_locked(self, deadline: float | None, *, force: bool) -> IscsiConnection:
        if self._closed:
            raise PathFailureError("the session is closed", maybe_executed=False)
        old = self._conn
        if not force and old is not None and old.alive:
            return old
        if old is not None:
            old.close()
        conn = IscsiConnection.open(self.options, isid=self.isid, deadline=deadline)
        conn.on_lost = self._lost
        self._conn = conn
        self.logins += 1
        if self.logins > 1:
            log.info(
                "iscsi_session_reinstated",
                host=conn.peer[0],
                port=conn.peer[1],
                target=self.options.target,
                logins=self.logins,
            )
        return conn

    def _lost(self, reason: str) -> None:
        if self.on_lost is not None:
            self.on_lost(reason)

    def submit(
        self,
        lun: int,
        cdb: bytes,
        *,
        data_out: Bytes = b"",
        buf: memoryview | None = None,
        deadline: float,
        callback: Callable[[Task], None] | None = None,
    ) -> Submitted | None:
        """Send a command, reconnecting first if the connection is down.

        Args:
            lun: the LUN number.
            cdb: the CDB (up to 260 bytes; beyond 16 an extended-CDB AHS carries it).
            data_out: the bytes to write (immediate, unsolicited and R2T'd data as
                negotiated); not with ``buf``.
            buf: where Data-In lands, straight from the socket; its length is the
                Expected Data Transfer Length.
            deadline: ``time.monotonic()`` value for the login and the CmdSN window.
            callback: called with the task when it completes (status, rejection, abort
                or a lost connection), on the connection's reader thread: it must not
                block. It may submit further commands; they are sent together before
                the reader next waits, and there ``submit`` never waits for the window
                (it returns None when the window is closed). An exception it raises is
                logged and ignored. :meth:`wait` on such a command returns once the
                callback has run.

        Returns:
            The submitted command, or None if the CmdSN window stayed closed until
            the deadline (nothing was sent).

        Raises:
            PathFailureError: the path is down and a new login failed (not sent).
            LoginError: the new login was refused.
        """
        conn = self._conn
        if conn is None or not conn.alive:
            conn = self.reconnect(deadline, force=False)
        task = conn.submit(
            lun, cdb, data_out=data_out, buf=buf, deadline=deadline, callback=callback
        )
        if task is None:
            return None
        return Submitted(task, conn)

    @staticmethod
    def wait(sub: Submitted, deadline: float) -> bool:
        """Wait for a submitted command; False when the deadline passed first."""
        return sub.connection.wait(sub.task, deadline)

    def ping(self, timeout: float = 5.0) -> float:
        """One NOP-Out round trip on the current connection (seconds).

        Raises:
            PathFailureError: no connection, or no answer in time.
        """
        conn = self._conn
        if conn is None or not conn.alive:
            raise PathFailureError("not connected", maybe_executed=False)
        return conn.ping(timeout)

    def task_management(
        self, function: TmfFunction, lun: int = 0, task: Task | None = None, timeout: float = 10.0
    ) -> int:
        """Run a task management function on the current connection; return its response."""
        conn = self._conn
        if conn is None or not conn.alive:
            raise PathFailureError("not connected", maybe_executed=False)
        return conn.task_management(function, lun, task, timeout)

    def close(self) -> None:
        """Log out and close; idempotent."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.logout()


def discover_targets(
    options: ConnectOptions, *, isid_qualifier: int | None = None
) -> list[tuple[str, list[str]]]:
    """SendTargets=All on the portal of ``options``: ``[(iqn, [address,tpgt, ...]), ...]``."""
    qualifier = secrets.randbits(24) if isid_qualifier is None else isid_qualifier
    return _send_targets(options, isid=make_isid(qualifier))


def _send_targets(options: ConnectOptions, *, isid: int) -> list[tuple[str, list[str]]]:
    """SendTargets discovery on one portal: ``[(target_iqn, [address, ...]), ...]``.

    Raises:
        LoginError: the discovery login was refused.
        PathFailureError: the portal could not be reached.
    """
    conn = IscsiConnection.open(attrs.evolve(options, target=None, nop_interval=None), isid=isid)
    try:
        pairs = conn.text([("SendTargets", "All")], timeout=options.connect_timeout)
    finally:
        conn.logout()
    out: list[tuple[str, list[str]]] = []
    for key, value in pairs:
        if key == "TargetName":
            out.append((value, []))
        elif key == "TargetAddress" and out:
            out[-1][1].append(value)
    return out
