"""``sg:`` the Linux SCSI generic transport, in pure Python (ctypes + os calls).

Commands go through the sg driver's asynchronous interface: the transport ``write()``s a
``struct sg_io_hdr`` to the node, ``poll()``s with the caller's deadline and ``read()``s
the completion. A synchronous ``SG_IO`` ioctl would be simpler, but the kernel can hold
it for the iSCSI replacement timeout (120 s by default) on a cut path; with the
asynchronous interface :meth:`SgTransport.execute` returns ``TIMED_OUT`` on time while
the command is still outstanding in the kernel. Such late completions are collected and
discarded by later calls; the buffers the kernel points at stay alive until then.

A command that waits longer than ``state_interval`` also watches the node's SCSI device
state in sysfs: a blocked or offline device (a cut path) ends the wait at once as
``LINK_LOST``, and :meth:`SgTransport.fence` keeps what the kernel still holds from
running later (:mod:`tapepath.transport.sg_fence`).

Several threads may call :meth:`SgTransport.execute` on one transport: each command has
its own ``pack_id``; one waiting thread at a time reads completions and hands each to
its owner (:mod:`tapepath.transport.sg_wait`).

Nodes that are not sg nodes but accept ``SG_IO`` (``/dev/nstN``, ``/dev/schN``) are run
with the synchronous ioctl in a helper thread, so the deadline still holds (a write() of
the header there would write tape data, so the asynchronous interface is only used on
the sg major).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import os
import select
import struct
import threading
import time
from urllib.parse import urlsplit

import structlog

from tapepath.errors import TransportError
from tapepath.transport.base import DEFAULT_TIMEOUT, Outcome, Response, Transport, validate_request
from tapepath.transport.sg_fence import PathStateMixin
from tapepath.transport.sg_outcome import completion_response
from tapepath.transport.sg_state import DeviceStateWatch, PathDown
from tapepath.transport.sg_struct import (
    COMPLETION,
    COMPLETION_OFFSET,
    HDR_SIZE,
    KEEP_BUFFER,
    MAX_CDB,
    SCSI_GENERIC_MAJOR,
    SG_DXFER_FROM_DEV,
    SG_DXFER_NONE,
    SG_DXFER_TO_DEV,
    SG_GET_VERSION_NUM,
    SG_MIN_VERSION,
    BlockingCalls,
    Completion,
    Kit,
    OsSyscalls,
    SgSyscalls,
    out_pointer,
    prepare_kit,
    timeout_ms,
)
from tapepath.transport.sg_sync import sync_sg_io
from tapepath.transport.sg_wait import TIMED_OUT_TEXT, CompletionMixin

__all__ = ["MAX_CDB", "OsSyscalls", "SgSyscalls", "SgTransport"]

log = structlog.get_logger("tapepath.transport.sg")

_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_monotonic = time.monotonic
_unpack = COMPLETION.unpack_from
_AT = COMPLETION_OFFSET
_PACK_ID_MAX = 0x7FFFFFFF  # pack_id is a C int: ids wrap within it


class SgTransport(CompletionMixin, PathStateMixin, Transport):
    """A path through a Linux SCSI generic node (``sg:///dev/sg3``).

    Args:
        path: the device node (``/dev/sgN``; ``/dev/nstN`` and ``/dev/schN`` work too,
            with the synchronous ioctl in a helper thread).
        url: the URL to report (``sg://`` + path by default).
        syscalls: the system-call layer (tests inject a fake kernel).
        sysfs: where sysfs is mounted (tests pass a fake tree).
        state_interval: while a command waits longer than this (seconds), the device's
            sysfs state is read every ``state_interval``; a blocked or offline device
            ends the wait at once as ``LINK_LOST``. None: wait for the deadline only.
            A command that completes within the first interval never reads sysfs.

    Raises:
        TransportError: permission denied, no such node, or not a SCSI generic device.
    """

    scheme = "sg"

    def __init__(
        self,
        path: str,
        *,
        url: str | None = None,
        syscalls: SgSyscalls | None = None,
        sysfs: str | os.PathLike[str] = "/sys",
        state_interval: float | None = 0.05,
    ) -> None:
        if state_interval is not None and not state_interval > 0:
            raise ValueError(f"state_interval must be > 0 seconds or None, got {state_interval}")
        self.path = path
        self.url = url or f"sg://{path}"
        self._sys: SgSyscalls = syscalls if syscalls is not None else OsSyscalls()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._local = threading.local()
        self._inflight: dict[int, Kit] = {}
        self._retired: dict[int, Kit] = {}
        self._ids = itertools.count(1)
        self._read_lock = threading.Lock()  # held by the one thread reading completions
        self._waiters = 0
        self._closed = True  # until the node is open
        self._fast = False  # the fast path is open: an sg node, not closed
        self._rkit: Kit | None = None  # the reader role's kit (see execute)
        self._fd_closed = False
        self._rbuf = bytearray(HDR_SIZE)  # completions are read here
        self._rlist = [self._rbuf]
        self._blocking = BlockingCalls(f"sg-io {path}")
        self._watch = DeviceStateWatch.for_path(path, sysfs)
        self._slice = state_interval if self._watch is not None else None
        self._slice_ms = timeout_ms(self._slice) if self._slice is not None else 0
        self._down: PathDown | None = None  # last seen down; checked before each submit
        self._fenced = False
        self._removed = False  # fence() deleted the logical unit on this path
        self._fd = self._open(path)
        self._closed = False
        try:
            self.version = self._version()
            self._async = self._sys.char_major(self._fd) == SCSI_GENERIC_MAJOR
            self._write = self._sys.write
            self._readv = self._sys.readv
            self._poll_in = self._sys.poller(self._fd, _POLLIN)
            self._poll_room = self._sys.poller(self._fd, _POLLIN | _POLLOUT)
            self._fast = self._async
        except BaseException:
            self._closed = True  # so __del__ does not close the fd number again
            self._sys.close(self._fd)
            raise
        log.debug("sg_opened", path=path, version=self.version, asynchronous=self._async)

    # -- opening ---------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str) -> SgTransport:
        """Open ``sg:///dev/sgN`` (the path must be absolute; no host part).

        Raises:
            ValueError: the URL is not an sg URL.
            TransportError: the node cannot be opened as a SCSI generic device.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "sg":
            raise ValueError(f"not an sg URL: {url!r}")
        if parts.netloc or not parts.path.startswith("/") or parts.query or parts.fragment:
            raise ValueError(f"an sg URL is sg:///dev/sgN (absolute path, no host): {url!r}")
        return cls(parts.path, url=url)

    def _open(self, path: str) -> int:
        flags = os.O_RDWR | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            return self._sys.open(path, flags)
        except PermissionError as exc:
            raise TransportError(
                f"{path}: permission denied (need read/write access to the node; "
                "membership of its group, often 'tape' or 'disk', or CAP_SYS_RAWIO)"
            ) from exc
        except FileNotFoundError as exc:
            raise TransportError(f"{path}: no such device node") from exc
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            raise TransportError(f"{path}: cannot open ({name}: {exc.strerror})") from exc

    def _version(self) -> int:
        arg = bytearray(4)
        try:
            self._sys.ioctl(self._fd, SG_GET_VERSION_NUM, arg)
        except OSError as exc:
            raise TransportError(
                f"{self.path}: not a SCSI generic device (SG_GET_VERSION_NUM failed: "
                f"{errno.errorcode.get(exc.errno or 0, exc.errno)})"
            ) from exc
        (version,) = struct.unpack("=i", arg)
        if version < SG_MIN_VERSION:
            raise TransportError(f"{self.path}: sg driver version {version} lacks the v3 interface")
        return int(version)

    # -- commands ----------------------------------------------------------------

    def execute(
        self,
        cdb: bytes,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Send one command; see :meth:`Transport.execute`.

        Data-out is passed to the kernel by pointer (no copy for ``bytes`` and writable
        buffers); data-in lands in a preallocated buffer and is copied once into
        ``Response.data``.

        Fast path: nobody else is reading completions, so this thread takes the reader
        role (a non-blocking lock) and, with it, the reader's kit: it writes the
        command, polls and reads its own completion without registering it (one write,
        one poll, one read, no other lock, no per-thread lookup). Anything else (another
        reader, a late completion first, an error, a long wait) detaches the kit from
        the reader role, so it goes with the command, and takes the general way.
        """
        read_lock = self._read_lock
        if self._down is not None or not self._fast or not read_lock.acquire(False):
            return self._execute_shared(cdb, data_out, data_in_len, timeout)
        kit = self._rkit
        if kit is None:
            kit = self._rkit = self._new_kit()
        if (
            data_out
            or data_in_len != kit.shape
            or cdb != kit.last_cdb
            or timeout != kit.last_timeout
        ):
            try:
                n = self._load(kit, cdb, data_out, data_in_len, timeout)
            except BaseException:
                self._release_reader()
                raise
        else:  # the header is loaded for this command already
            n = data_in_len
        pid = kit.pid
        fd = self._fd
        ev = err = 0
        out = None
        start = _monotonic()
        # write, poll, read: the same steps as CompletionMixin._issue, inlined in both
        try:
            self._write(fd, kit.hdr)
        except OSError as exc:
            self._rkit = None  # the kit goes with the command
            self._register(kit, pid, release_reader=True)
            res = self._write_failed(kit, pid, exc, start + timeout, start)
            return self._respond(kit, res, n, data_in_len, start, reader_kit=True)
        except BaseException:  # interrupted: the command may be in the kernel
            self._rkit = None
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
        except BaseException:  # interrupted with the command in the kernel
            self._rkit = None
            self._interrupted(kit, pid)
            raise
        if out is not None:
            if not n and out == kit.clean:  # all zero: GOOD, nothing to read
                # positional: status, data, sense, residual, duration (a test compares
                # it with the keyword form)
                r = Response(0, b"", b"", 0, _monotonic() - start)
                read_lock.release()
                if self._waiters:
                    self._notify()
                return r
            if out[0] == pid:
                try:  # the kit is the reader's: read it before letting go
                    r = self._respond(kit, out, n, data_in_len, start)
                except BaseException:
                    self._release_reader()
                    raise
                read_lock.release()
                if self._waiters:
                    self._notify()
                return r
        self._rkit = None  # the kit goes with the command
        res = self._off_fast_path(kit, pid, start, timeout, ev=ev, out=out, err=err, fd=fd)
        return self._respond(kit, res, n, data_in_len, start, reader_kit=True)

    def _new_kit(self) -> Kit:
        """A new kit with the next ``pack_id``."""
        return Kit(next(self._ids) & _PACK_ID_MAX)

    def _thread_kit(self) -> Kit:
        """The calling thread's own kit (made on first use; off the fast path)."""
        try:
            kit: Kit = self._local.kit
        except AttributeError:
            kit = self._local.kit = self._new_kit()
        return kit

    def _execute_shared(
        self, cdb: bytes, data_out: bytes, data_in_len: int, timeout: float
    ) -> Response:
        """execute() off the fast path, with this thread's own kit: another thread reads
        completions, the path was seen down, or the node is synchronous or closed."""
        kit = self._thread_kit()
        n = self._load(kit, cdb, data_out, data_in_len, timeout)
        start = _monotonic()
        res = self._issue(kit, start, timeout)
        return self._respond(kit, res, n, data_in_len, start)

    def _load(self, kit: Kit, cdb: bytes, data_out: bytes, data_in_len: int, timeout: float) -> int:
        """Point ``kit``'s header at the command's data and CDB; the bytes to move."""
        hdr = kit.hdr
        if data_in_len:
            if data_out or data_in_len < 0:
                validate_request(cdb, data_out, data_in_len, timeout)
            n = data_in_len
            if n != kit.shape:
                kit.shape = None
                hdr.dxfer_direction = SG_DXFER_FROM_DEV
                hdr.dxfer_len = n
                hdr.dxferp = kit.data_buffer(n)
                kit.shape = n
        elif data_out:
            kit.shape = None
            hdr.dxfer_direction = SG_DXFER_TO_DEV
            hdr.dxfer_len = n = len(data_out)
            hdr.dxferp, kit.pin = out_pointer(data_out)
        else:
            n = 0
            if kit.shape != 0:
                hdr.dxfer_direction = SG_DXFER_NONE
                hdr.dxfer_len = 0
                hdr.dxferp = None
                kit.shape = 0
        if cdb != kit.last_cdb or timeout != kit.last_timeout:
            prepare_kit(kit, cdb, timeout, self._slice_ms)
        return n

    def _respond(
        self,
        kit: Kit,
        res: Response | Completion,
        n: int,
        data_in_len: int,
        start: float,
        *,
        reader_kit: bool = False,
    ) -> Response:
        """The Response for ``res`` (a failure as it is); ``kit`` is free afterwards.

        ``reader_kit``: ``kit`` was detached from the reader role when its command
        left the fast path; after a completion it is free again and, when the reader
        has no kit, becomes the reader's (a kit given up on never does).
        """
        if isinstance(res, Response):
            return res
        duration = _monotonic() - start
        if not n and not (res[1] or res[2] or res[3] or res[5] or res[4] & 7):
            r = Response(duration=duration)
        else:
            r = completion_response(res[1:], kit, n, bool(data_in_len), duration)
            kit.pin = None
            if kit.buf_cap > KEEP_BUFFER:
                kit.buf, kit.buf_cap, kit.shape = None, 0, None
        if reader_kit and self._rkit is None:
            self._rkit = kit
        return r

    def execute_into(
        self,
        cdb: bytes,
        buf: bytearray | memoryview,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Run a data-in command whose data lands straight in ``buf`` (no copy).

        ``buf`` must be writable and contiguous. If the command times out, the kernel
        still owns ``buf``'s memory until its late completion is collected (by a later
        call or :meth:`close`): the transport keeps a reference to it, and its contents
        are undefined until then.
        """
        view = memoryview(buf)
        if view.readonly or not view.contiguous:
            raise ValueError("execute_into needs a writable, contiguous buffer")
        view = view.cast("B")
        n = len(view)
        validate_request(cdb, b"", n, timeout)
        kit = self._thread_kit()
        hdr = kit.hdr
        if n:
            target = (ctypes.c_char * n).from_buffer(view)
            hdr.dxfer_direction = SG_DXFER_FROM_DEV
            hdr.dxferp = ctypes.addressof(target)
            kit.pin = (view, target)
        else:
            hdr.dxfer_direction = SG_DXFER_NONE
            hdr.dxferp = None
        hdr.dxfer_len = n
        kit.shape = None
        if cdb != kit.last_cdb or timeout != kit.last_timeout:
            prepare_kit(kit, cdb, timeout, self._slice_ms)
        start = _monotonic()
        res = self._issue(kit, start, timeout)
        if isinstance(res, Response):
            return res
        r = completion_response(res[1:], kit, n, False, _monotonic() - start)
        kit.pin = None
        return r

    def _submit_sync(self, kit: Kit, deadline: float, start: float) -> Response | Completion:
        """Run SG_IO in a helper thread so the deadline holds on non-sg nodes."""
        if self._closed:
            raise TransportError(f"{self.url}: transport is closed")
        r = sync_sg_io(
            self._sys, self._fd, self._blocking, kit, deadline=deadline, start=start, path=self.path
        )
        if r is not None:
            return r
        # The helper thread keeps the kit (and its buffers) alive until the ioctl returns.
        self._drop_thread_kit(kit)
        return Response.failure(
            Outcome.TIMED_OUT, TIMED_OUT_TEXT, duration=time.monotonic() - start
        )

    def _replace_fd(self, path: str | None) -> None:
        """Swap the node's fd: close it (``path`` None: fencing removed the unit, and the
        kernel frees its sg number only when the last fd closes), or open ``path`` (a
        rescan brought the unit back). Outstanding commands fail with ENODEV.
        """
        fd = -1 if path is None else self._open(path)
        with self._cond:
            old, self._fd = self._fd, fd
            if fd >= 0:
                self._poll_in = self._sys.poller(fd, _POLLIN)
                self._poll_room = self._sys.poller(fd, _POLLIN | _POLLOUT)
            for kit in self._inflight.values():
                kit.error = errno.ENODEV
                kit.done = True
            self._inflight.clear()
            self._cond.notify_all()
        if old >= 0:
            try:
                self._sys.close(old)
            except OSError as exc:
                log.debug("sg_close_failed", path=self.path, errno=exc.errno)
        with self._lock:
            self._retired.clear()  # the old fd is closed: the kernel drops their completions

    def __del__(self) -> None:
        # A transport dropped without close(): release the node (the kernel then drops
        # late completions without touching our memory).
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self.close()

    @property
    def outstanding(self) -> int:
        """Commands submitted whose completion has not been read (including abandoned ones)."""
        with self._lock:
            return len(self._inflight) + len(self._retired)

    def close(self) -> None:
        """Close the node; outstanding commands come back ``ABORTED``. Idempotent.

        Closing the node makes the kernel drop late completions without touching user
        memory, so the buffers kept for them are released here.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._fast = False
            self._cond.notify_all()
            fd = self._fd
        self._blocking.close()
        try:
            if fd >= 0:  # -1: fencing closed it already
                self._sys.close(fd)
        except OSError as exc:
            log.debug("sg_close_failed", path=self.path, errno=exc.errno)
        with self._lock:
            self._fd_closed = True
            retired = len(self._retired)
            self._retired.clear()
        log.debug("sg_closed", path=self.path, abandoned=retired)
