"""``sg:`` the Linux SCSI generic transport, in pure Python (ctypes + os calls).

Commands go through the sg driver's asynchronous interface: the transport ``write()``s a
``struct sg_io_hdr`` to the node, ``poll()``s with the caller's deadline and ``read()``s
the completion. A synchronous ``SG_IO`` ioctl would be simpler, but the kernel can hold
it for the iSCSI replacement timeout (120 s by default) on a cut path; with the
asynchronous interface :meth:`SgTransport.execute` returns ``TIMED_OUT`` on time while
the command is still outstanding in the kernel. Such late completions are collected and
discarded by later calls; the buffers the kernel points at stay alive until then.

Several threads may call :meth:`SgTransport.execute` on one transport: each command has
its own ``pack_id``; one waiting thread at a time reads completions and hands each to
its owner.

Nodes that are not sg nodes but accept ``SG_IO`` (``/dev/nstN``, ``/dev/schN``) are run
with the synchronous ioctl in a helper thread, so the deadline still holds (a write() of
the header there would write tape data, so the asynchronous interface is only used on
the sg major).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import select
import struct
import threading
import time
from typing import Protocol
from urllib.parse import urlsplit

import structlog

from tapepath.errors import TransportError
from tapepath.transport.base import DEFAULT_TIMEOUT, Outcome, Response, Transport, validate_request
from tapepath.transport.sg_outcome import classify_completion, errno_failure
from tapepath.transport.sg_struct import (
    SCSI_GENERIC_MAJOR,
    SENSE_MAX,
    SG_DXFER_FROM_DEV,
    SG_DXFER_NONE,
    SG_DXFER_TO_DEV,
    SG_GET_VERSION_NUM,
    SG_INTERFACE_ID,
    SG_IO,
    SG_MIN_VERSION,
    SgIoHdr,
)

__all__ = ["MAX_CDB", "OsSyscalls", "SgSyscalls", "SgTransport"]

log = structlog.get_logger("tapepath.transport.sg")

MAX_CDB = 252
"""The longest CDB the sg driver takes."""

_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_POLL_BAD = select.POLLERR | select.POLLHUP | select.POLLNVAL
_QUEUE_FULL = (errno.EAGAIN, errno.EDOM)
_KEEP_BUFFER = 1 << 20  # a thread keeps a data-in buffer up to this size between calls
_PACK_ID_MAX = 0x7FFFFFFF


class SgSyscalls(Protocol):
    """The system calls the transport makes; tests inject a fake kernel here."""

    def open(self, path: str, flags: int) -> int:
        """``os.open``."""
        ...

    def close(self, fd: int) -> None:
        """``os.close``."""
        ...

    def char_major(self, fd: int) -> int | None:
        """The major number of a character device, or None for anything else."""
        ...

    def ioctl(self, fd: int, request: int, arg: bytearray | ctypes.Structure) -> int:
        """``fcntl.ioctl`` with a mutable buffer (results land in ``arg``)."""
        ...

    def write(self, fd: int, buf: ctypes.Structure) -> int:
        """``os.write`` of a structure's bytes."""
        ...

    def readinto(self, fd: int, buf: ctypes.Structure) -> int:
        """Read into a structure (``os.readv``); raises OSError(EAGAIN) when nothing is ready."""
        ...

    def poll(self, fd: int, events: int, timeout_ms: int) -> int:
        """Wait up to ``timeout_ms`` for ``events``; return the events seen (0 on timeout)."""
        ...


class OsSyscalls:
    """The real system calls (``os``, ``fcntl``, ``select``)."""

    def __init__(self) -> None:
        self._pollers: dict[tuple[int, int], select.poll] = {}

    def open(self, path: str, flags: int) -> int:
        """``os.open``."""
        return os.open(path, flags)

    def close(self, fd: int) -> None:
        """``os.close``; forgets the fd's poll objects."""
        for key in [k for k in self._pollers if k[0] == fd]:
            del self._pollers[key]
        os.close(fd)

    def char_major(self, fd: int) -> int | None:
        """The major number of a character device, or None."""
        st = os.fstat(fd)
        import stat  # noqa: PLC0415  (only used when opening)

        return os.major(st.st_rdev) if stat.S_ISCHR(st.st_mode) else None

    def ioctl(self, fd: int, request: int, arg: bytearray | ctypes.Structure) -> int:
        """``fcntl.ioctl`` with a mutable buffer."""
        return int(fcntl.ioctl(fd, request, arg, True))

    def write(self, fd: int, buf: ctypes.Structure) -> int:
        """``os.write``."""
        return os.write(fd, buf)

    def readinto(self, fd: int, buf: ctypes.Structure) -> int:
        """``os.readv`` into one buffer."""
        return os.readv(fd, [buf])

    def poll(self, fd: int, events: int, timeout_ms: int) -> int:
        """``poll()`` on one fd (one poll object per fd and event mask, reused)."""
        key = (fd, events)
        poller = self._pollers.get(key)
        if poller is None:
            poller = select.poll()
            poller.register(fd, events)
            self._pollers[key] = poller
        for _fd, ev in poller.poll(timeout_ms):
            return ev
        return 0


class _Kit:
    """One command's memory the kernel points at: header, CDB, sense, data-in buffer.

    A thread reuses its kit from call to call; a kit whose command timed out is retired
    (kept alive until its late completion is read) and the thread gets a new one.
    """

    __slots__ = (
        "buf",
        "buf_cap",
        "cdb",
        "done",
        "error",
        "hdr",
        "out",
        "pin",
        "sense",
    )

    def __init__(self) -> None:
        self.hdr = SgIoHdr()
        self.cdb = (ctypes.c_ubyte * MAX_CDB)()
        self.sense = (ctypes.c_ubyte * SENSE_MAX)()
        self.hdr.interface_id = SG_INTERFACE_ID
        self.hdr.cmdp = ctypes.addressof(self.cdb)
        self.hdr.sbp = ctypes.addressof(self.sense)
        self.hdr.mx_sb_len = SENSE_MAX
        self.buf: ctypes.Array[ctypes.c_char] | None = None
        self.buf_cap = 0
        self.pin: object = None
        self.done = False
        self.error = 0
        self.out: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)

    def data_buffer(self, n: int) -> int:
        """Address of a preallocated buffer of at least ``n`` bytes."""
        if self.buf is None or self.buf_cap < n:
            self.buf = ctypes.create_string_buffer(max(n, 4096))
            self.buf_cap = max(n, 4096)
        return ctypes.addressof(self.buf)


def _timeout_ms(timeout: float) -> int:
    ms = int(timeout * 1000)
    if ms < timeout * 1000:
        ms += 1
    return max(1, min(ms, 0xFFFFFFFE))


class SgTransport(Transport):
    """A path through a Linux SCSI generic node (``sg:///dev/sg3``).

    Args:
        path: the device node (``/dev/sgN``; ``/dev/nstN`` and ``/dev/schN`` work too,
            with the synchronous ioctl in a helper thread).
        url: the URL to report (``sg://`` + path by default).
        syscalls: the system-call layer (tests inject a fake kernel).

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
    ) -> None:
        self.path = path
        self.url = url or f"sg://{path}"
        self._sys: SgSyscalls = syscalls if syscalls is not None else OsSyscalls()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._local = threading.local()
        self._inflight: dict[int, _Kit] = {}
        self._retired: dict[int, _Kit] = {}
        self._next_id = 1
        self._reader = False
        self._waiters = 0
        self._closed = False
        self._fd_closed = False
        self._rhdr = SgIoHdr()
        self._fd = self._open(path)
        try:
            self.version = self._version()
            self._async = self._sys.char_major(self._fd) == SCSI_GENERIC_MAJOR
        except BaseException:
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
        buffers); data-in lands in a per-thread preallocated buffer and is copied once
        into ``Response.data``.
        """
        validate_request(cdb, data_out, data_in_len, timeout)
        kit = self._kit()
        hdr = kit.hdr
        if data_in_len:
            hdr.dxfer_direction = SG_DXFER_FROM_DEV
            hdr.dxfer_len = data_in_len
            hdr.dxferp = kit.data_buffer(data_in_len)
        elif data_out:
            hdr.dxfer_direction = SG_DXFER_TO_DEV
            hdr.dxfer_len = len(data_out)
            hdr.dxferp, kit.pin = _out_pointer(data_out)
        else:
            hdr.dxfer_direction = SG_DXFER_NONE
            hdr.dxfer_len = 0
            hdr.dxferp = None
        r = self._run(kit, cdb, timeout)
        if r is not None:
            return r
        status, sb_len, host, driver, resid = kit.out
        n = hdr.dxfer_len
        resid = min(max(resid, 0), n)
        moved = n - resid
        data = ctypes.string_at(hdr.dxferp, moved) if data_in_len and moved else b""
        if kit.buf_cap > _KEEP_BUFFER:
            kit.buf, kit.buf_cap = None, 0
        kit.pin = None
        return classify_completion(
            status,
            host,
            driver,
            sense=ctypes.string_at(kit.sense, sb_len) if sb_len else b"",
            data=data,
            residual=resid,
            transferred=moved,
            duration=self._duration,
        )

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
        validate_request(cdb, b"", len(view), timeout)
        kit = self._kit()
        hdr = kit.hdr
        n = len(view)
        if n:
            target = (ctypes.c_char * n).from_buffer(view)
            hdr.dxfer_direction = SG_DXFER_FROM_DEV
            hdr.dxferp = ctypes.addressof(target)
            kit.pin = (view, target)
        else:
            hdr.dxfer_direction = SG_DXFER_NONE
            hdr.dxferp = None
        hdr.dxfer_len = n
        r = self._run(kit, cdb, timeout)
        if r is not None:
            return r
        kit.pin = None
        status, sb_len, host, driver, resid = kit.out
        resid = min(max(resid, 0), n)
        return classify_completion(
            status,
            host,
            driver,
            sense=ctypes.string_at(kit.sense, sb_len) if sb_len else b"",
            data=b"",
            residual=resid,
            transferred=n - resid,
            duration=self._duration,
        )

    @property
    def _duration(self) -> float:
        return float(getattr(self._local, "duration", 0.0))

    def _kit(self) -> _Kit:
        kit: _Kit | None = getattr(self._local, "kit", None)
        if kit is None:
            kit = self._local.kit = _Kit()
        return kit

    def _run(self, kit: _Kit, cdb: bytes, timeout: float) -> Response | None:
        """Submit ``kit`` and wait; None when it completed (results in ``kit.out``)."""
        if len(cdb) > MAX_CDB:
            raise ValueError(f"the sg driver takes CDBs of up to {MAX_CDB} bytes, got {len(cdb)}")
        hdr = kit.hdr
        ctypes.memmove(kit.cdb, cdb, len(cdb))
        hdr.cmd_len = len(cdb)
        hdr.timeout = _timeout_ms(timeout)
        start = time.perf_counter()
        deadline = time.monotonic() + timeout
        if self._async:
            r = self._submit_async(kit, deadline, start)
        else:
            r = self._submit_sync(kit, deadline, start)
        self._local.duration = time.perf_counter() - start
        return r

    def _new_id(self) -> int:
        pid = self._next_id
        self._next_id = 1 if pid >= _PACK_ID_MAX else pid + 1
        return pid

    def _submit_async(self, kit: _Kit, deadline: float, start: float) -> Response | None:
        hdr = kit.hdr
        fd = self._fd
        with self._lock:
            if self._closed:
                raise TransportError(f"{self.url}: transport is closed")
            pid = self._new_id()
            hdr.pack_id = pid
            kit.done = False
            kit.error = 0
            self._inflight[pid] = kit
        while True:
            try:
                self._sys.write(fd, hdr)
                break
            except OSError as exc:
                err = exc.errno or 0
                if err in _QUEUE_FULL and self._wait_for_room(deadline):
                    continue
                with self._lock:
                    self._inflight.pop(pid, None)
                kit.pin = None
                if err in _QUEUE_FULL:
                    return Response.failure(
                        Outcome.TIMED_OUT,
                        "sg queue full until the deadline (commands outstanding in the kernel)",
                        maybe_executed=False,
                        duration=time.perf_counter() - start,
                        errno=err,
                    )
                return errno_failure(
                    err, "write", maybe_executed=False, duration=time.perf_counter() - start
                )
        return self._wait(kit, pid, deadline, start)

    def _wait_for_room(self, deadline: float) -> bool:
        """Wait (collecting completions) until the fd takes another command or the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        with self._cond:
            if self._reader:
                self._waiters += 1
                try:
                    self._cond.wait(min(remaining, 0.05))
                finally:
                    self._waiters -= 1
                return True
            self._reader = True
        try:
            ev = self._sys.poll(self._fd, _POLLIN | _POLLOUT, _timeout_ms(min(remaining, 0.05)))
            if ev & _POLLIN:
                self._collect()
        finally:
            with self._cond:
                self._reader = False
                self._cond.notify_all()
        return True

    def _wait(self, kit: _Kit, pid: int, deadline: float, start: float) -> Response | None:
        lock = self._lock
        monotonic = time.monotonic
        while True:
            with lock:
                if kit.done:
                    break
                remaining = deadline - monotonic()
                if remaining <= 0 or self._closed:
                    return self._abandon(kit, pid, start)
                if self._reader:
                    self._waiters += 1
                    try:
                        self._cond.wait(remaining)
                    finally:
                        self._waiters -= 1
                    continue
                self._reader = True
            try:
                ev = self._sys.poll(self._fd, _POLLIN, int(remaining * 1000) + 1)
                if ev & _POLLIN:
                    self._collect(kit)
                elif ev & _POLL_BAD and not self._closed:
                    self._fail_all(errno.ENODEV)
            finally:
                with lock:
                    self._reader = False
                    if self._waiters:
                        self._cond.notify_all()
        if kit.error:
            kit.pin = None
            if self._closed:
                return Response.failure(
                    Outcome.ABORTED,
                    "transport closed while the command was outstanding",
                    duration=time.perf_counter() - start,
                )
            return errno_failure(
                kit.error, "read", maybe_executed=True, duration=time.perf_counter() - start
            )
        return None

    def _collect(self, mine: _Kit | None = None) -> None:
        """Read ready completions and hand each to its owner (reader only).

        Stops at EAGAIN, or as soon as ``mine`` has its completion.
        """
        rhdr = self._rhdr
        while mine is None or not mine.done:
            try:
                self._sys.readinto(self._fd, rhdr)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                self._fail_all(exc.errno or errno.EIO)
                return
            pid = rhdr.pack_id
            out = (rhdr.status, rhdr.sb_len_wr, rhdr.host_status, rhdr.driver_status, rhdr.resid)
            with self._lock:
                kit = self._inflight.pop(pid, None)
                if kit is not None:
                    kit.out = out
                    kit.done = True
                    continue
                late = self._retired.pop(pid, None)
            log.debug(
                "sg_late_completion",
                path=self.path,
                pack_id=pid,
                known=late is not None,
                status=out[0],
                host_status=out[2],
                driver_status=out[3],
            )

    def _fail_all(self, err: int) -> None:
        with self._lock:
            for kit in self._inflight.values():
                kit.error = err
                kit.done = True
            self._inflight.clear()

    def _abandon(self, kit: _Kit, pid: int, start: float) -> Response:
        """Give up on ``kit`` (caller holds the lock): retire it and hand out a new one."""
        self._inflight.pop(pid, None)
        if not self._fd_closed:  # the kernel may still write through the kit's pointers
            self._retired[pid] = kit
        self._local.kit = None
        closed = self._closed
        log.debug("sg_command_abandoned", path=self.path, pack_id=pid, closed=closed)
        return Response.failure(
            Outcome.ABORTED if closed else Outcome.TIMED_OUT,
            "transport closed while the command was outstanding"
            if closed
            else "no completion within the deadline; the command may still be in flight",
            maybe_executed=True,
            duration=time.perf_counter() - start,
        )

    def _submit_sync(self, kit: _Kit, deadline: float, start: float) -> Response | None:
        """Run SG_IO in a helper thread so the deadline holds on non-sg nodes."""
        if self._closed:
            raise TransportError(f"{self.url}: transport is closed")
        kit.done = False
        kit.error = 0
        finished = threading.Event()

        def run() -> None:
            try:
                self._sys.ioctl(self._fd, SG_IO, kit.hdr)
                h = kit.hdr
                kit.out = (h.status, h.sb_len_wr, h.host_status, h.driver_status, h.resid)
            except OSError as exc:
                kit.error = exc.errno or errno.EIO
            kit.done = True
            finished.set()

        threading.Thread(target=run, name=f"sg-io {self.path}", daemon=True).start()
        if finished.wait(max(0.0, deadline - time.monotonic())):
            if kit.error:
                kit.pin = None
                return errno_failure(
                    kit.error, "SG_IO", maybe_executed=True, duration=time.perf_counter() - start
                )
            return None
        # The helper thread keeps the kit (and its buffers) alive until the ioctl returns.
        self._local.kit = None
        return Response.failure(
            Outcome.TIMED_OUT,
            "no completion within the deadline; the command may still be in flight",
            duration=time.perf_counter() - start,
        )

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
            self._cond.notify_all()
            fd = self._fd
        try:
            self._sys.close(fd)
        except OSError as exc:
            log.debug("sg_close_failed", path=self.path, errno=exc.errno)
        with self._lock:
            self._fd_closed = True
            retired = len(self._retired)
            self._retired.clear()
        log.debug("sg_closed", path=self.path, abandoned=retired)


def _out_pointer(data: bytes | bytearray | memoryview) -> tuple[int, object]:
    """The address of ``data``'s bytes and the object(s) to keep alive while in flight."""
    if isinstance(data, bytes):
        p = ctypes.c_char_p(data)
        return ctypes.cast(p, ctypes.c_void_p).value or 0, p
    view = memoryview(data)
    if view.readonly or not view.contiguous:
        copy = bytearray(view)  # the one copy
        view = memoryview(copy)
    view = view.cast("B")
    arr = (ctypes.c_char * len(view)).from_buffer(view)
    return ctypes.addressof(arr), (view, arr)
