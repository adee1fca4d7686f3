"""Waiting for sg completions: the reader role, handing completions out, late ones.

:class:`~tapepath.transport.sg.SgTransport` submits commands to the sg driver with
``write()`` and reads completions with ``readv()``. One thread at a time holds the
reader role (``_read_lock``): it polls the node and reads whatever completes, handing
each completion to the command that owns its ``pack_id`` (``_inflight``); the other
threads wait on a condition until their command is done, the reader role is free, or
their deadline passes. A command given up on (deadline, closed transport, path down)
is *retired*: its memory stays referenced until the kernel's late completion is read
and discarded, or the node is closed.

This module holds that machinery as a mixin, with the submission of a command on the
caller's own kit (:meth:`CompletionMixin._issue`, used off :meth:`SgTransport.execute`'s
fast path and by ``execute_into``); the transport class, its opening, its public
methods and the fast path are in :mod:`tapepath.transport.sg`.
"""

from __future__ import annotations

import errno
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from tapepath.errors import TransportError
from tapepath.transport.base import Outcome, Response
from tapepath.transport.sg_outcome import errno_failure
from tapepath.transport.sg_state import PathDown
from tapepath.transport.sg_struct import (
    COMPLETION,
    COMPLETION_OFFSET,
    Completion,
    Kit,
    Poller,
    SgIoHdr,
    timeout_ms,
)

__all__ = ["CompletionMixin"]

log = structlog.get_logger("tapepath.transport.sg")

_POLLIN = select.POLLIN
_POLL_BAD = select.POLLERR | select.POLLHUP | select.POLLNVAL
_QUEUE_FULL = (errno.EAGAIN, errno.EDOM)
_unpack = COMPLETION.unpack_from
_AT = COMPLETION_OFFSET
TIMED_OUT_TEXT = "no completion within the deadline; the command may still be in flight"
"""The message of a command given up on at its deadline."""


class CompletionMixin:
    """The completion side of SgTransport (which sets the attributes declared here)."""

    path: str
    url: str
    _fast: bool
    _async: bool
    _lock: threading.Lock
    _cond: threading.Condition
    _local: threading.local
    _inflight: dict[int, Kit]
    _retired: dict[int, Kit]
    _read_lock: threading.Lock
    _waiters: int
    _closed: bool
    _fd_closed: bool
    _fd: int
    _rbuf: bytearray
    _rlist: list[bytearray]
    _slice: float | None
    _down: PathDown | None
    _poll_in: Poller
    _poll_room: Poller

    _write: Callable[[int, SgIoHdr], int]
    _readv: Callable[[int, list[bytearray]], int]

    if TYPE_CHECKING:

        def _check_state(self) -> None: ...

        def _refuse_if_down(self, start: float) -> Response | None: ...

        def _submit_sync(
            self, kit: Kit, deadline: float, start: float
        ) -> Response | Completion: ...

    def _issue(self, kit: Kit, start: float, timeout: float) -> Response | Completion:
        """Submit ``kit`` (this thread's own) and wait: the completion, or a failure.

        The same fast path as ``SgTransport.execute`` when the reader role is free (the kit is
        the thread's, so it needs no detaching), else :meth:`_issue_slow`.
        """
        if self._down is not None:
            refused = self._refuse_if_down(start)
            if refused is not None:
                return refused
        read_lock = self._read_lock
        if not self._fast or not read_lock.acquire(False):
            return self._issue_slow(kit, start, timeout)
        pid = kit.pid
        fd = self._fd
        ev = err = 0
        out = None
        # write, poll, read: the same steps as SgTransport.execute's fast path, inlined in
        # both on purpose (a call more per command costs tens of microseconds in a guest)
        try:
            self._write(fd, kit.hdr)
        except OSError as exc:
            self._register(kit, pid, release_reader=True)
            return self._write_failed(kit, pid, exc, start + timeout, start)
        except BaseException:
            self._interrupted(kit, pid)
            raise
        try:
            ready = self._poll_in(kit.poll_ms)
            if ready:
                ev = ready[0][1]
                if ev & _POLLIN:
                    self._readv(fd, self._rlist)
                    out = _unpack(self._rbuf, _AT)
        except BlockingIOError:
            ev = 0
        except OSError as exc:
            err = exc.errno or errno.EIO
        except BaseException:
            self._interrupted(kit, pid)
            raise
        if out is not None and out[0] == pid:
            self._release_reader()
            return out
        return self._off_fast_path(kit, pid, start, timeout, ev=ev, out=out, err=err, fd=fd)

    def _off_fast_path(
        self,
        kit: Kit,
        pid: int,
        start: float,
        timeout: float,
        *,
        ev: int,
        out: Completion | None,
        err: int,
        fd: int,
    ) -> Response | Completion:
        """The submitted command leaves the fast path (the caller holds the reader role).

        It is registered, what the reader saw is handled (another command's completion
        ``out``, a read error ``err``, or poll events ``ev`` without a completion), the
        reader role is given up and the command waits the general way. When fencing
        closed or replaced the node (``fd``) meanwhile, the kernel dropped the command:
        it fails at once (ENODEV, as the registered ones did), with nothing to retire.
        """
        if fd != self._fd:
            with self._lock:
                kit.error = errno.ENODEV
                kit.done = True
            self._release_reader()
            return self._finish_wait(kit, pid, start, timeout)
        self._register(kit, pid, release_reader=False)
        if out is not None:
            self._dispatch(out)
        elif err:
            self._fail_all(err)
        elif ev & _POLL_BAD and not self._closed:
            self._fail_all(errno.ENODEV)
        self._release_reader()
        return self._finish_wait(kit, pid, start, timeout)

    def _issue_slow(self, kit: Kit, start: float, timeout: float) -> Response | Completion:
        """Submit while another thread reads completions (or on a synchronous node)."""
        if not self._async:
            return self._submit_sync(kit, start + timeout, start)
        with self._lock:
            if self._closed:
                raise TransportError(f"{self.url}: transport is closed")
            pid = kit.pid
            kit.done = False
            kit.error = 0
            self._inflight[pid] = kit
        try:
            self._write(self._fd, kit.hdr)
        except OSError as exc:
            return self._write_failed(kit, pid, exc, start + timeout, start)
        return self._finish_wait(kit, pid, start, timeout)

    def _register(self, kit: Kit, pid: int, *, release_reader: bool) -> None:
        """Enter ``kit`` among the commands whose completion any reader may collect."""
        with self._lock:
            kit.done = False
            kit.error = 0
            self._inflight[pid] = kit
            if release_reader:
                self._read_lock.release()
                if self._waiters:
                    self._cond.notify_all()

    def _finish_wait(
        self, kit: Kit, pid: int, start: float, timeout: float
    ) -> Response | Completion:
        r = self._wait(kit, pid, start + timeout, start)
        return r if r is not None else kit.out

    def _notify(self) -> None:
        with self._lock:
            self._cond.notify_all()

    def _release_reader(self) -> None:
        """Give up the reader role and wake the waiters.

        Waiters count themselves before they try the reader role (both under the
        condition's lock), so reading the count after the release loses no wakeup.
        """
        self._read_lock.release()
        if self._waiters:
            self._notify()

    def _take_reader(self, wait: float) -> bool:
        """Take the reader role, or wait up to ``wait`` seconds (caller holds the lock)."""
        self._waiters += 1
        try:
            if self._read_lock.acquire(False):
                return True
            self._cond.wait(wait)
            return False
        finally:
            self._waiters -= 1

    def _write_failed(
        self, kit: Kit, pid: int, exc: OSError, deadline: float, start: float
    ) -> Response | Completion:
        """write() failed: wait for room when the queue is full, else report the errno."""
        err = exc.errno or 0
        while err in _QUEUE_FULL and self._wait_for_room(deadline):
            try:
                self._write(self._fd, kit.hdr)
            except OSError as again:
                err = again.errno or 0
                continue
            r = self._wait(kit, pid, deadline, start)
            return r if r is not None else kit.out
        with self._lock:
            self._inflight.pop(pid, None)
        kit.pin = None
        if err in _QUEUE_FULL:
            return Response.failure(
                Outcome.TIMED_OUT,
                "sg queue full until the deadline (commands outstanding in the kernel)",
                maybe_executed=False,
                duration=time.monotonic() - start,
                errno=err,
            )
        return errno_failure(err, "write", maybe_executed=False, duration=time.monotonic() - start)

    def _wait_for_room(self, deadline: float) -> bool:
        """Wait (collecting completions) until the fd takes another command or the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        with self._lock:
            if not self._take_reader(min(remaining, 0.05)):
                return True
        try:
            ready = self._poll_room(timeout_ms(min(remaining, 0.05)))
            if ready and ready[0][1] & _POLLIN:
                self._collect()
        finally:
            self._release_reader()
        return True

    def _wait(self, kit: Kit, pid: int, deadline: float, start: float) -> Response | None:
        """Wait for ``kit``'s completion, taking turns reading; None when it arrived."""
        lock = self._lock
        step = self._slice
        while True:
            with lock:
                if kit.done:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return self._abandon(kit, pid, start)
                if self._down is not None:
                    return self._abandon(kit, pid, start, self._down)
                if step is not None and remaining > step:
                    remaining = step
                if not self._take_reader(remaining):
                    continue
            try:
                ready = self._poll_in(int(remaining * 1000) + 1)
                ev = ready[0][1] if ready else 0
                if ev & _POLLIN:
                    self._collect(kit)
                elif ev & _POLL_BAD and not self._closed:
                    self._fail_all(errno.ENODEV)
                elif step is not None and not ev:
                    self._check_state()
            finally:
                self._release_reader()
        if kit.error:
            kit.pin = None
            # The kernel may not be done with a failed command: its kit (and pack_id)
            # is not used again.
            self._drop_thread_kit(kit)
            if self._closed:
                return Response.failure(
                    Outcome.ABORTED,
                    "transport closed while the command was outstanding",
                    duration=time.monotonic() - start,
                )
            return errno_failure(
                kit.error, "read", maybe_executed=True, duration=time.monotonic() - start
            )
        return None

    def _collect(self, mine: Kit | None = None) -> None:
        """Read ready completions and hand each to its owner (reader only).

        Stops at EAGAIN, or as soon as ``mine`` has its completion.
        """
        rbuf = self._rbuf
        unpack = COMPLETION.unpack_from
        while mine is None or not mine.done:
            try:
                self._readv(self._fd, self._rlist)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                self._fail_all(exc.errno or errno.EIO)
                return
            self._dispatch(unpack(rbuf, COMPLETION_OFFSET))

    def _dispatch(self, out: Completion) -> None:
        """Hand a completion to its waiting kit, or discard a late one."""
        pid = out[0]
        with self._lock:
            kit = self._inflight.pop(pid, None)
            if kit is not None:
                kit.out = out
                kit.done = True
                if self._waiters:
                    self._cond.notify_all()
                return
            late = self._retired.pop(pid, None)
        log.debug(
            "sg_late_completion",
            path=self.path,
            pack_id=pid,
            known=late is not None,
            status=out[1],
            host_status=out[3],
            driver_status=out[4],
        )

    def _fail_all(self, err: int) -> None:
        """Fail every registered command with ``err`` (a read or poll error on the node).

        The kernel may still hold them: their kits are retired like abandoned ones
        (kept alive until a late completion is read or the node is closed).
        """
        with self._lock:
            for kit in self._inflight.values():
                kit.error = err
                kit.done = True
            if not self._fd_closed:
                self._retired.update(self._inflight)
            self._inflight.clear()

    def _interrupted(self, kit: Kit, pid: int) -> None:
        """The caller was interrupted (KeyboardInterrupt, a signal handler's exception)
        on the fast path, its command perhaps in the kernel: retire the kit (the kernel
        may still write through its pointers; a late completion is then discarded) and
        give up the reader role, so the transport stays usable."""
        with self._lock:
            if not self._fd_closed:
                self._retired[pid] = kit
            self._drop_thread_kit(kit)
        self._release_reader()
        log.debug("sg_command_interrupted", path=self.path, pack_id=pid)

    def _drop_thread_kit(self, kit: Kit) -> None:
        """The calling thread's kit is ``kit`` no more (the kernel may still use it)."""
        local = self._local.__dict__
        if local.get("kit") is kit:
            del local["kit"]

    def _abandon(self, kit: Kit, pid: int, start: float, down: PathDown | None = None) -> Response:
        """Give up on ``kit`` (caller holds the lock): retire it and hand out a new one.

        ``down``: the path showed down in sysfs (LINK_LOST), else the deadline passed or
        the transport closed.
        """
        self._inflight.pop(pid, None)
        if not self._fd_closed:  # the kernel may still write through the kit's pointers
            self._retired[pid] = kit
        self._drop_thread_kit(kit)
        closed = self._closed
        log.debug("sg_command_abandoned", path=self.path, pack_id=pid, closed=closed)
        if down is not None and not closed:
            return Response.failure(
                Outcome.LINK_LOST,
                f"{down.describe()}: path down while the command was held in the kernel "
                "(it may still run if the path returns unfenced)",
                maybe_executed=True,
                duration=time.monotonic() - start,
            )
        return Response.failure(
            Outcome.ABORTED if closed else Outcome.TIMED_OUT,
            "transport closed while the command was outstanding" if closed else TIMED_OUT_TEXT,
            maybe_executed=True,
            duration=time.monotonic() - start,
        )
