r"""``spti:`` the Windows SCSI pass-through transport (IOCTL_SCSI_PASS_THROUGH_DIRECT).

URLs name the Win32 device: ``spti://./Tape0`` is ``\\.\Tape0``, ``spti://./Changer0``
is ``\\.\Changer0``, and ``spti://./Scsi2:?path=0&target=3&lun=0`` addresses a logical
unit through the port driver ``\\.\Scsi2:``.

The module imports everywhere; kernel32 is loaded only when a device is opened, and it
is injectable (tests pass a fake). Each command is one ``DeviceIoControl`` with a
``SCSI_PASS_THROUGH_DIRECT`` followed by its sense buffer in one block; the data buffer
is passed by address and must satisfy the adapter's ``AlignmentMask`` (from
IOCTL_SCSI_GET_CAPABILITIES): a caller buffer that does not is bounced through an
aligned one. ``TimeOutValue`` is the caller's timeout in whole seconds, rounded up. The
ioctl runs in a helper thread so the caller's deadline holds even when the port driver
holds the request longer.
"""

from __future__ import annotations

import ctypes
import math
import queue
import re
import threading
import time
import weakref
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import structlog
from attrs import frozen

from tapepath.errors import TransportError
from tapepath.transport.base import DEFAULT_TIMEOUT, Outcome, Response, Transport, validate_request
from tapepath.transport.spti_struct import (
    ERROR_OUTCOME,
    FILE_SHARE_READ,
    FILE_SHARE_WRITE,
    GENERIC_READ,
    GENERIC_WRITE,
    INVALID_HANDLE,
    IOCTL_SCSI_GET_ADDRESS,
    IOCTL_SCSI_GET_CAPABILITIES,
    IOCTL_SCSI_PASS_THROUGH_DIRECT,
    OPEN_EXISTING,
    SCSI_IOCTL_DATA_IN,
    SCSI_IOCTL_DATA_OUT,
    SCSI_IOCTL_DATA_UNSPECIFIED,
    SENSE_MAX,
    SPTD,
    SPTD_WITH_SENSE,
    UNKNOWN_ERROR,
    IoScsiCapabilities,
    Kernel32,
    ScsiAddressStruct,
    WinError,
    WinKernel32,
)

__all__ = [
    "Kernel32",
    "SptiAddress",
    "SptiTransport",
    "WinKernel32",
    "device_name_from_url",
    "failure_for_error",
]

log = structlog.get_logger("tapepath.transport.spti")

MAX_TIMEOUT_S = 108_000  # 30 hours: the port drivers' upper bound
MAX_CDB = 16

_NAME = re.compile(r"(Tape|Changer)(\d{1,3})$|(Scsi)(\d{1,3}):$", re.IGNORECASE)


@frozen
class SptiAddress:
    """Where a device sits, from IOCTL_SCSI_GET_ADDRESS."""

    port: int
    path_id: int
    target_id: int
    lun: int

    def __str__(self) -> str:
        return f"{self.port}:{self.path_id}:{self.target_id}:{self.lun}"


def device_name_from_url(url: str) -> tuple[str, tuple[int, int, int]]:
    r"""The Win32 device name of an spti URL, and the (path, target, lun) for a port.

    ``spti://./Tape0`` gives ``\\.\Tape0``; ``spti://./Scsi1:?path=0&target=2&lun=0``
    gives ``\\.\Scsi1:`` and (0, 2, 0).

    Raises:
        ValueError: not an spti URL of one of the three forms.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "spti" or parts.netloc != ".":
        raise ValueError(f"an spti URL is spti://./Tape0, ./Changer0 or ./Scsi0: : {url!r}")
    name = parts.path.lstrip("/")
    m = _NAME.match(name)
    if m is None or parts.fragment:
        raise ValueError(f"unknown spti device {name!r} (Tape<N>, Changer<N> or Scsi<N>:)")
    query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
    nexus = (0, 0, 0)
    if m.group(3):
        unknown = set(query) - {"path", "target", "lun"}
        if unknown:
            raise ValueError(f"unknown spti URL parameter(s): {', '.join(sorted(unknown))}")
        try:
            nexus = tuple(int(query.get(k, "0")) for k in ("path", "target", "lun"))  # type: ignore[assignment]
        except ValueError as exc:
            raise ValueError(f"spti path/target/lun must be numbers: {url!r}") from exc
        if not all(0 <= v <= 255 for v in nexus):
            raise ValueError(f"spti path/target/lun must be 0..255: {url!r}")
    elif query:
        raise ValueError(f"spti parameters apply to Scsi<N>: ports only: {url!r}")
    return "\\\\.\\" + name, nexus


def failure_for_error(code: int, duration: float) -> Response:
    """The response for a DeviceIoControl that failed with Windows error ``code``."""
    rule = ERROR_OUTCOME.get(code, UNKNOWN_ERROR)
    try:
        name = WinError(code).name
    except ValueError:
        name = f"error {code}"
    retry = " (retryable)" if rule.retry else ""
    return Response.failure(
        rule.outcome,
        f"DeviceIoControl failed: {name} ({code}){retry}",
        maybe_executed=rule.maybe_executed,
        duration=duration,
        win_error=code,
        retryable=rule.retry,
    )


class _Call:
    """One pass-through in flight: the block, the data buffer and the result."""

    __slots__ = ("block", "data", "done", "error", "ok", "pin", "returned")

    def __init__(self) -> None:
        self.block: Any = SPTD_WITH_SENSE()
        self.returned = ctypes.c_uint32(0)
        self.data: Any = None
        self.pin: object = None
        self.done = threading.Event()
        self.ok = False
        self.error = 0


def _aligned(n: int, mask: int) -> tuple[Any, int]:
    """A buffer of ``n`` bytes whose address satisfies ``mask``; (owner, address)."""
    raw = ctypes.create_string_buffer(max(n, 1) + mask)
    addr = ctypes.addressof(raw)
    return raw, (addr + mask) & ~mask


class _Worker:
    """A daemon thread that runs one pass-through at a time for a transport.

    The caller waits for the call's event with its own deadline, so a DeviceIoControl
    that hangs holds only this thread (and the buffers of its call), never the caller.
    """

    def __init__(self, owner: SptiTransport, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        # A weak reference: idle workers must not keep a dropped transport alive.
        self._owner = weakref.ref(owner)
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def submit(self, call: _Call) -> None:
        """Run ``call`` on this thread."""
        self._jobs.put(call)

    def stop(self) -> None:
        """End the thread once it is idle."""
        self._jobs.put(None)

    def _loop(self) -> None:
        while True:
            call = self._jobs.get()
            if call is None:
                return
            owner = self._owner()
            if owner is None:
                call.done.set()
                return
            owner._ioctl(call)
            keep = owner._worker_done(self)  # back among the idle ones before the caller wakes
            del owner
            call.done.set()
            if not keep:
                return


_MAX_IDLE_WORKERS = 4


class SptiTransport(Transport):
    r"""A path through a Windows SCSI device (``spti://./Tape0``).

    Args:
        name: the Win32 device name (``\\.\Tape0``).
        url: the URL to report.
        nexus: (PathId, TargetId, Lun) for a ``\\.\ScsiN:`` port; ignored for class devices.
        kernel32: the kernel32 calls (the real one by default; tests pass a fake).

    Raises:
        TransportError: the device cannot be opened (no such device, access denied...).
        TransportUnavailableError: not on Windows and no kernel32 given.
    """

    scheme = "spti"

    def __init__(
        self,
        name: str,
        *,
        url: str | None = None,
        nexus: tuple[int, int, int] = (0, 0, 0),
        kernel32: Kernel32 | None = None,
    ) -> None:
        self.name = name
        self.url = url or "spti://./" + name.removeprefix("\\\\.\\")
        self.nexus = nexus
        self._k: Kernel32 = kernel32 if kernel32 is not None else WinKernel32()
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._closed = True  # until the device is open
        self._handle = self._k.CreateFileW(
            name,
            GENERIC_READ | GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            None,
            OPEN_EXISTING,
            0,
            None,
        )
        if self._handle == INVALID_HANDLE:
            raise _open_error(name, self._k.GetLastError())
        self._closed = False
        self.alignment_mask, self.max_transfer = self._capabilities()
        self.address = self._address()
        log.debug(
            "spti_opened",
            device=name,
            alignment_mask=self.alignment_mask,
            max_transfer=self.max_transfer,
            address=str(self.address) if self.address else None,
        )

    @classmethod
    def from_url(cls, url: str) -> SptiTransport:
        """Open ``spti://./Tape0`` (see :func:`device_name_from_url`)."""
        name, nexus = device_name_from_url(url)
        return cls(name, url=url, nexus=nexus)

    def _query(self, code: int, out: ctypes.Structure) -> bool:
        returned = ctypes.c_uint32(0)
        ok = self._k.DeviceIoControl(
            self._handle,
            code,
            0,
            0,
            ctypes.addressof(out),
            ctypes.sizeof(out),
            ctypes.addressof(returned),
            None,
        )
        return bool(ok) and returned.value >= 5

    def _capabilities(self) -> tuple[int, int | None]:
        caps = IoScsiCapabilities()
        if not self._query(IOCTL_SCSI_GET_CAPABILITIES, caps):
            log.debug("spti_no_capabilities", device=self.name, error=self._k.GetLastError())
            return 0, None
        mask = int(caps.AlignmentMask)
        if mask & (mask + 1):  # not of the form 2**k - 1: do not trust it
            mask = 0
        return mask, int(caps.MaximumTransferLength) or None

    def _address(self) -> SptiAddress | None:
        addr = ScsiAddressStruct()
        if not self._query(IOCTL_SCSI_GET_ADDRESS, addr):
            return None
        return SptiAddress(
            int(addr.PortNumber), int(addr.PathId), int(addr.TargetId), int(addr.Lun)
        )

    # -- commands ------------------------------------------------------------

    def execute(
        self,
        cdb: bytes,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Send one command; see :meth:`Transport.execute`."""
        validate_request(cdb, data_out, data_in_len, timeout)
        call = _Call()
        mask = self.alignment_mask
        if data_in_len:
            call.data, addr = _aligned(data_in_len, mask)
            r = self._run(call, cdb, SCSI_IOCTL_DATA_IN, addr, data_in_len, timeout=timeout)
            if r.path_failed:
                return r
            return _with_data(r, ctypes.string_at(addr, r.transferred))
        if data_out:
            addr, call.pin = _out_address(data_out, mask)
            return self._run(call, cdb, SCSI_IOCTL_DATA_OUT, addr, len(data_out), timeout=timeout)
        return self._run(call, cdb, SCSI_IOCTL_DATA_UNSPECIFIED, 0, 0, timeout=timeout)

    def execute_into(
        self,
        cdb: bytes,
        buf: bytearray | memoryview,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Read into ``buf`` directly when its address satisfies the alignment mask.

        Otherwise the data goes through an aligned buffer and is copied once. After a
        timeout the port driver may still write into ``buf``: it is kept referenced
        until then, and its contents are undefined.
        """
        view = memoryview(buf)
        if view.readonly or not view.contiguous:
            raise ValueError("execute_into needs a writable, contiguous buffer")
        view = view.cast("B")
        n = len(view)
        validate_request(cdb, b"", n, timeout)
        call = _Call()
        if not n:
            return self._run(call, cdb, SCSI_IOCTL_DATA_UNSPECIFIED, 0, 0, timeout=timeout)
        target = (ctypes.c_char * n).from_buffer(view)
        addr = ctypes.addressof(target)
        if addr & self.alignment_mask == 0:
            call.pin = (view, target)
            return self._run(call, cdb, SCSI_IOCTL_DATA_IN, addr, n, timeout=timeout)
        call.data, bounce = _aligned(n, self.alignment_mask)
        r = self._run(call, cdb, SCSI_IOCTL_DATA_IN, bounce, n, timeout=timeout)
        if not r.path_failed and r.transferred:
            ctypes.memmove(addr, bounce, r.transferred)
        del target
        return r

    def _run(
        self,
        call: _Call,
        cdb: bytes,
        direction: int,
        addr: int,
        length: int,
        *,
        timeout: float,
    ) -> Response:
        if len(cdb) > MAX_CDB:
            raise ValueError(
                f"SCSI_PASS_THROUGH_DIRECT takes CDBs of up to 16 bytes, got {len(cdb)}"
            )
        if self.max_transfer is not None and length > self.max_transfer:
            raise ValueError(
                f"{length} bytes exceed the adapter's MaximumTransferLength "
                f"({self.max_transfer}); split the transfer"
            )
        if self._closed:
            raise TransportError(f"{self.url}: transport is closed")
        block = call.block
        s = block.sptd
        s.Length = ctypes.sizeof(SPTD)
        s.PathId, s.TargetId, s.Lun = self.nexus
        s.CdbLength = len(cdb)
        s.SenseInfoLength = SENSE_MAX
        s.DataIn = direction
        s.DataTransferLength = length
        s.TimeOutValue = min(MAX_TIMEOUT_S, max(1, math.ceil(timeout)))
        s.DataBuffer = addr
        s.SenseInfoOffset = type(block).SenseBuf.offset
        ctypes.memmove(s.Cdb, cdb, len(cdb))
        start = time.perf_counter()
        self._worker().submit(call)
        if not call.done.wait(timeout):
            # The worker keeps `call` (and the buffers it points at) alive until the ioctl returns.
            return Response.failure(
                Outcome.TIMED_OUT,
                "no completion within the deadline; the command may still be in flight",
                duration=time.perf_counter() - start,
            )
        duration = time.perf_counter() - start
        call.pin = None
        if not call.ok:
            return failure_for_error(call.error, duration)
        sense_len = min(int(s.SenseInfoLength), SENSE_MAX)
        moved = min(int(s.DataTransferLength), length)
        return Response(
            status=int(s.ScsiStatus),
            sense=bytes(block.SenseBuf[:sense_len]) if sense_len else b"",
            residual=length - moved,
            duration=duration,
            transferred=moved,
        )

    def _ioctl(self, call: _Call) -> None:
        size = ctypes.sizeof(call.block)
        addr = ctypes.addressof(call.block)
        try:
            call.ok = bool(
                self._k.DeviceIoControl(
                    self._handle,
                    IOCTL_SCSI_PASS_THROUGH_DIRECT,
                    addr,
                    size,
                    addr,
                    size,
                    ctypes.addressof(call.returned),
                    None,
                )
            )
            if not call.ok:
                call.error = self._k.GetLastError()
        except BaseException as exc:  # a broken kernel32 object: report a failed ioctl
            log.error("spti_ioctl_raised", device=self.name, error=repr(exc))
            call.ok = False
            call.error = call.error or int(WinError.ERROR_GEN_FAILURE)

    def _worker(self) -> _Worker:
        """An idle helper thread, or a new one (a stuck ioctl keeps its own busy)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Worker(self, f"spti {self.name}")

    def _worker_done(self, worker: _Worker) -> bool:
        """Take a worker back after its ioctl; False tells it to end."""
        with self._lock:
            if self._closed or len(self._idle) >= _MAX_IDLE_WORKERS:
                return False
            self._idle.append(worker)
            return True

    def __del__(self) -> None:
        # Dropped without close(): release the handle and the idle helper threads.
        if not getattr(self, "_closed", True):
            with suppress(Exception):
                self.close()

    def close(self) -> None:
        """Close the handle; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()
        self._k.CloseHandle(self._handle)
        log.debug("spti_closed", device=self.name)


def _with_data(r: Response, data: bytes) -> Response:
    return Response(
        status=r.status,
        data=data,
        sense=r.sense,
        residual=r.residual,
        duration=r.duration,
        transferred=len(data),
    )


def _out_address(data: bytes | bytearray | memoryview, mask: int) -> tuple[int, object]:
    """The address to pass for data-out (copied once when not aligned or not writable)."""
    if isinstance(data, bytes):
        p = ctypes.c_char_p(data)
        addr = ctypes.cast(p, ctypes.c_void_p).value or 0
        if addr & mask == 0:
            return addr, p
    else:
        view = memoryview(data)
        if not view.readonly and view.contiguous:
            view = view.cast("B")
            arr = (ctypes.c_char * len(view)).from_buffer(view)
            if ctypes.addressof(arr) & mask == 0:
                return ctypes.addressof(arr), (view, arr)
    raw, addr = _aligned(len(data), mask)
    ctypes.memmove(addr, bytes(data), len(data))
    return addr, raw


def _open_error(name: str, code: int) -> TransportError:
    if code in (WinError.ERROR_FILE_NOT_FOUND, WinError.ERROR_PATH_NOT_FOUND):
        return TransportError(f"{name}: no such device (Windows error {code})")
    if code == WinError.ERROR_ACCESS_DENIED:
        return TransportError(
            f"{name}: access denied (Windows error 5; SCSI pass-through needs Administrator)"
        )
    if code == WinError.ERROR_SHARING_VIOLATION:
        return TransportError(f"{name}: in use by another program (Windows error 32)")
    return TransportError(f"{name}: cannot open (Windows error {code})")
