"""Tests of the sg:// transport against a fake sg driver (the injected syscall layer).

The fake kernel below behaves like the sg driver's asynchronous interface: write()
takes a ``struct sg_io_hdr`` and reads the CDB and data-out through its pointers, read()
hands back one completion and writes data-in and sense through the pointers the
header carried, poll() reports completions, and the queue holds 16 commands per fd.
The other test_sg_*.py files use it too (threads, kits, the synchronous path, outcomes,
the state watch); test_sg_syscalls.py covers the header layout and the real syscalls.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import select
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog.testing
from attrs import define, field
from hypothesis import given
from hypothesis import strategies as st

from tapepath import errors
from tapepath.transport import Outcome, Response, open_transport
from tapepath.transport.sg import SgTransport
from tapepath.transport.sg_struct import SgIoHdr

SG_IO_REQ = 0x2285
SG_VERSION_REQ = 0x2282


@define
class Seen:
    """One command as the fake driver received it."""

    cdb: bytes
    direction: int
    dxfer_len: int
    dxferp: int
    data_out: bytes
    timeout_ms: int
    mx_sb_len: int
    interface_id: int
    pack_id: int


@define
class Reply:
    """What the fake driver answers for one command."""

    data: bytes = b""
    sense: bytes = b""
    status: int = 0
    host: int = 0
    driver: int = 0
    resid: int | None = None
    delay: float | None = 0.0  # None: never completes
    write_errno: int = 0


Responder = Callable[[Seen], Reply]


@define
class _Pending:
    hdr: SgIoHdr
    seen: Seen
    reply: Reply
    due: float | None


@define
class FakeSg:
    """A fake sg driver implementing the SgSyscalls protocol."""

    responder: Responder = field(factory=lambda: lambda seen: Reply())
    major: int | None = 21
    version: int = 30536
    open_errno: int = 0
    version_errno: int = 0
    read_errno: int = 0
    poll_extra: int = 0
    queue_max: int = 16
    seen: list[Seen] = field(factory=list)
    header_addresses: list[int] = field(factory=list)
    ioctl_threads: list[int] = field(factory=list)
    pending: list[_Pending] = field(factory=list)
    closed: bool = False
    sync_release: threading.Event = field(factory=threading.Event)
    cond: threading.Condition = field(factory=threading.Condition)

    # -- SgSyscalls ---------------------------------------------------------
    def open(self, path: str, flags: int) -> int:
        assert flags & os.O_RDWR
        assert flags & os.O_NONBLOCK
        if self.open_errno:
            raise OSError(self.open_errno, os.strerror(self.open_errno), path)
        return 7

    def close(self, fd: int) -> None:
        with self.cond:
            self.closed = True
            self.pending.clear()
            self.cond.notify_all()

    def char_major(self, fd: int) -> int | None:
        return self.major

    def ioctl(self, fd: int, request: int, arg: bytearray | ctypes.Structure) -> int:
        if request == SG_VERSION_REQ:
            if self.version_errno:
                raise OSError(self.version_errno, os.strerror(self.version_errno))
            assert isinstance(arg, bytearray)
            struct.pack_into("=i", arg, 0, self.version)
            return 0
        assert request == SG_IO_REQ
        assert isinstance(arg, SgIoHdr)
        self.ioctl_threads.append(threading.get_ident())
        seen = self._take(arg)
        reply = self.responder(seen)
        if reply.write_errno:
            raise OSError(reply.write_errno, os.strerror(reply.write_errno))
        if reply.delay is None:
            self.sync_release.wait(10)
        self._complete_into(arg, reply)
        return 0

    def write(self, fd: int, buf: ctypes.Structure) -> int:
        assert not self.closed
        self.header_addresses.append(ctypes.addressof(buf))
        hdr = SgIoHdr.from_buffer_copy(buf)
        with self.cond:
            if len(self.pending) >= self.queue_max:
                raise OSError(errno.EDOM, "queue full")
        seen = self._take(hdr)
        reply = self.responder(seen)
        if reply.write_errno:
            raise OSError(reply.write_errno, os.strerror(reply.write_errno))
        due = None if reply.delay is None else time.monotonic() + reply.delay
        with self.cond:
            self.pending.append(_Pending(hdr, seen, reply, due))
            self.cond.notify_all()
        return ctypes.sizeof(hdr)

    def readv(self, fd: int, buffers: list[bytearray]) -> int:
        (buf,) = buffers
        assert len(buf) >= ctypes.sizeof(SgIoHdr)
        if self.read_errno:
            raise OSError(self.read_errno, os.strerror(self.read_errno))
        with self.cond:
            ready = self._ready()
            if ready is None:
                raise BlockingIOError(errno.EAGAIN, "nothing ready")
            self.pending.remove(ready)
        out = ready.hdr
        self._complete_into(out, ready.reply)
        memoryview(buf)[: ctypes.sizeof(out)] = bytes(out)
        return ctypes.sizeof(out)

    def poller(self, fd: int, events: int) -> Callable[[int], list[tuple[int, int]]]:
        def poll(timeout_ms: int) -> list[tuple[int, int]]:
            ev = self._poll(events, timeout_ms)
            return [(fd, ev)] if ev else []

        return poll

    def _poll(self, events: int, timeout_ms: int) -> int:
        end = time.monotonic() + timeout_ms / 1000
        with self.cond:
            while True:
                ev = self.poll_extra
                if self._ready() is not None:
                    ev |= select.POLLIN
                if len(self.pending) < self.queue_max:
                    ev |= select.POLLOUT
                ev &= events | select.POLLERR | select.POLLHUP | select.POLLNVAL
                if ev or self.closed:
                    return ev
                now = time.monotonic()
                if now >= end:
                    return 0
                wake = end
                dues = [p.due for p in self.pending if p.due is not None]
                if dues:
                    wake = min(wake, *dues)
                self.cond.wait(max(0.0, wake - now) + 0.0005)

    # -- helpers ------------------------------------------------------------
    def _ready(self) -> _Pending | None:
        now = time.monotonic()
        due = [p for p in self.pending if p.due is not None and p.due <= now]
        return min(due, key=lambda p: p.due or 0.0) if due else None

    def _take(self, hdr: SgIoHdr) -> Seen:
        cdb = ctypes.string_at(hdr.cmdp, hdr.cmd_len)
        out = b""
        if hdr.dxfer_direction == -2 and hdr.dxfer_len:
            out = ctypes.string_at(hdr.dxferp, hdr.dxfer_len)
        seen = Seen(
            cdb=cdb,
            direction=hdr.dxfer_direction,
            dxfer_len=hdr.dxfer_len,
            dxferp=hdr.dxferp or 0,
            data_out=out,
            timeout_ms=hdr.timeout,
            mx_sb_len=hdr.mx_sb_len,
            interface_id=hdr.interface_id,
            pack_id=hdr.pack_id,
        )
        with self.cond:
            self.seen.append(seen)
        return seen

    def _complete_into(self, hdr: SgIoHdr, reply: Reply) -> None:
        n = 0
        if hdr.dxfer_direction == -3 and reply.data:
            n = min(len(reply.data), hdr.dxfer_len)
            ctypes.memmove(hdr.dxferp, reply.data, n)
        elif hdr.dxfer_direction == -2:
            n = hdr.dxfer_len
        sb = reply.sense[: hdr.mx_sb_len]
        if sb:
            ctypes.memmove(hdr.sbp, sb, len(sb))
        hdr.sb_len_wr = len(sb)
        hdr.status = reply.status
        hdr.masked_status = reply.status >> 1
        hdr.host_status = reply.host
        hdr.driver_status = reply.driver
        hdr.resid = hdr.dxfer_len - n if reply.resid is None else reply.resid
        hdr.duration = 1


def by_cdb(table: dict[int, Reply]) -> Responder:
    """A responder choosing the reply by the CDB's opcode."""
    return lambda seen: table[seen.cdb[0]]


def run_threads(worker: Callable[[int], None], n: int, join: float = 30.0) -> None:
    """Run ``worker(0) .. worker(n - 1)`` in ``n`` threads and join them."""
    threads = [threading.Thread(target=worker, args=(b,)) for b in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(join)


def make(fake: FakeSg, path: str = "/dev/sg3") -> SgTransport:
    """An SgTransport on the fake driver."""
    return SgTransport(path, syscalls=fake)


def tagged(tag: int) -> bytes:
    """An INQUIRY CDB carrying ``tag`` in its allocation length byte."""
    return bytes((0x12, 0, 0, 0, tag, 0))


def wrong_answer(r: Response, tag: int, stuck: bool) -> bool:
    """Whether ``r`` is not what a tagged INQUIRY owes: TIMED_OUT when its command
    is stuck, else GOOD with the tag four times."""
    if stuck:
        return r.outcome is not Outcome.TIMED_OUT
    return not r.ok or r.data != bytes([tag]) * 4


TUR = bytes(6)
INQ = bytes((0x12, 0, 0, 0, 96, 0))
WRITE6 = bytes((0x0A, 0, 0, 0, 4, 0))


class TestOpen:
    """Opening: clear errors for the wrong node, URL parsing, the registry."""

    def test_permission_denied(self) -> None:
        """EACCES on open becomes a TransportError that says permission denied."""
        with pytest.raises(errors.TransportError, match="permission denied"):
            make(FakeSg(open_errno=errno.EACCES))

    def test_missing_node(self) -> None:
        """ENOENT on open names the missing node."""
        with pytest.raises(errors.TransportError, match="no such device node"):
            make(FakeSg(open_errno=errno.ENOENT), "/dev/sg42")

    def test_not_sg(self) -> None:
        """A node that refuses SG_GET_VERSION_NUM is not a SCSI generic device."""
        fake = FakeSg(version_errno=errno.ENOTTY)
        with pytest.raises(errors.TransportError, match="not a SCSI generic device"):
            make(fake)
        assert fake.closed

    def test_failed_open_closes_once(self) -> None:
        """A node refused after opening is closed once, also when collected later."""
        closes: list[int] = []

        class Counting(FakeSg):
            def close(self, fd: int) -> None:
                closes.append(fd)

        with pytest.raises(errors.TransportError):
            make(Counting(version_errno=errno.ENOTTY))
        gc.collect()
        assert closes == [7]

    def test_old_driver(self) -> None:
        """A driver without the v3 interface is refused."""
        with pytest.raises(errors.TransportError, match="v3"):
            make(FakeSg(version=20000))

    def test_real_non_sg_node(self) -> None:
        """On the real OS, /dev/null is rejected as not a SCSI generic device."""
        with pytest.raises(errors.TransportError, match="not a SCSI generic device"):
            open_transport("sg:///dev/null")

    def test_real_missing_node(self, tmp_path: Path) -> None:
        """On the real OS, a missing node is a TransportError naming the path."""
        with pytest.raises(errors.TransportError, match="sg9"):
            open_transport(f"sg://{tmp_path}/sg9")

    @pytest.mark.parametrize(
        "url", ["sg://host/dev/sg3", "sg:dev/sg3", "sg:///dev/sg3?x=1", "iscsi:///dev/sg3"]
    )
    def test_bad_urls(self, url: str) -> None:
        """Malformed sg URLs are ValueErrors."""
        with pytest.raises(ValueError, match="URL"):
            SgTransport.from_url(url)

    def test_version_and_repr(self) -> None:
        """The driver version is kept and the URL shows in the repr."""
        t = make(FakeSg(version=30536))
        assert t.version == 30536
        assert "sg:///dev/sg3" in repr(t)


class TestDirections:
    """The three data directions reach the driver as sg_io_hdr fields."""

    def test_no_data(self) -> None:
        """TEST UNIT READY goes out with SG_DXFER_NONE and the v3 interface id."""
        fake = FakeSg()
        with make(fake) as t:
            r = t.execute(TUR, timeout=2.5)
        assert r.ok
        s = fake.seen[0]
        assert (s.cdb, s.direction, s.dxfer_len, s.interface_id) == (TUR, -1, 0, ord("S"))
        assert s.timeout_ms == 2500
        assert s.mx_sb_len == 252

    def test_timeout_rounds_up(self) -> None:
        """A fractional millisecond timeout is rounded up, never down to zero."""
        fake = FakeSg()
        make(fake).execute(TUR, timeout=0.0001)
        assert fake.seen[0].timeout_ms == 1

    def test_data_in(self) -> None:
        """Data-in comes back with its residual and transfer count."""
        fake = FakeSg(responder=lambda s: Reply(data=b"INQUIRY-DATA" * 3))
        r = make(fake).execute(INQ, data_in_len=96)
        assert fake.seen[0].direction == -3
        assert fake.seen[0].dxfer_len == 96
        assert r.data == b"INQUIRY-DATA" * 3
        assert (r.residual, r.transferred) == (60, 36)

    def test_data_out_bytes(self) -> None:
        """Data-out bytes reach the driver and count as transferred."""
        fake = FakeSg()
        r = make(fake).execute(WRITE6, data_out=b"abcd")
        assert fake.seen[0].direction == -2
        assert fake.seen[0].data_out == b"abcd"
        assert (r.residual, r.transferred) == (0, 4)

    def test_data_out_bytearray_not_copied(self) -> None:
        """A bytearray's own memory is handed to the driver (no copy)."""
        fake = FakeSg()
        payload = bytearray(b"0123456789")
        addr = ctypes.addressof((ctypes.c_char * len(payload)).from_buffer(payload))
        make(fake).execute(WRITE6, data_out=payload)  # type: ignore[arg-type]
        assert fake.seen[0].dxferp == addr
        assert fake.seen[0].data_out == b"0123456789"

    def test_data_out_readonly_view(self) -> None:
        """A read-only memoryview is sent correctly (copied once)."""
        fake = FakeSg()
        make(fake).execute(WRITE6, data_out=memoryview(b"xyz"))  # type: ignore[arg-type]
        assert fake.seen[0].data_out == b"xyz"

    def test_sense_captured(self) -> None:
        """CHECK CONDITION keeps the status and the sense bytes."""
        sense = bytes((0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x29, 0, 0, 0, 0, 0))
        fake = FakeSg(responder=lambda s: Reply(status=2, driver=8, sense=sense))
        r = make(fake).execute(TUR)
        assert r.check_condition
        assert not r.ok
        assert r.sense == sense
        assert r.outcome is Outcome.OK

    def test_long_sense_capped(self) -> None:
        """Sense longer than 252 bytes is cut to 252 by the driver's mx_sb_len."""
        sense = bytes(range(256)) + bytes(44)
        fake = FakeSg(responder=lambda s: Reply(status=2, sense=sense))
        r = make(fake).execute(TUR)
        assert r.sense == sense[:252]

    def test_cdb_too_long(self) -> None:
        """A CDB the driver cannot take is a ValueError before anything is sent."""
        fake = FakeSg()
        with pytest.raises(ValueError, match="252"):
            make(fake).execute(bytes(253))
        assert fake.seen == []

    def test_empty_cdb(self) -> None:
        """An empty CDB is refused, on a fresh transport and after other commands."""
        fake = FakeSg()
        t = make(fake)
        with pytest.raises(ValueError, match="CDB"):
            t.execute(b"")
        t.execute(TUR)
        with pytest.raises(ValueError, match="CDB"):
            t.execute(b"")
        with pytest.raises(ValueError, match="timeout"):
            t.execute(TUR, timeout=0)
        assert len(fake.seen) == 1

    def test_bad_arguments(self) -> None:
        """Both directions at once is a caller mistake."""
        with pytest.raises(ValueError, match="one direction"):
            make(FakeSg()).execute(WRITE6, data_out=b"x", data_in_len=4)

    @given(st.binary(min_size=1, max_size=16), st.binary(max_size=300), st.integers(0, 400))
    def test_any_command_round_trips(self, cdb: bytes, data: bytes, alloc: int) -> None:
        """Any CDB and answer size gives the right data, residual and transfer count."""
        fake = FakeSg(responder=lambda s: Reply(data=data))
        r = make(fake).execute(cdb, data_in_len=alloc)
        n = min(len(data), alloc) if alloc else 0
        assert fake.seen[0].cdb == cdb
        assert r.data == data[:n]
        assert r.transferred == n
        assert r.residual == alloc - n


class TestExecuteInto:
    """execute_into reads straight into the caller's buffer."""

    def test_lands_in_caller_buffer(self) -> None:
        """The driver is given the caller's buffer address and fills it."""
        fake = FakeSg(responder=lambda s: Reply(data=b"\x01\x02\x03"))
        buf = bytearray(8)
        addr = ctypes.addressof((ctypes.c_char * 8).from_buffer(buf))
        r = make(fake).execute_into(INQ, buf)
        assert fake.seen[0].dxferp == addr
        assert buf == b"\x01\x02\x03" + bytes(5)
        assert (r.data, r.transferred, r.residual) == (b"", 3, 5)

    def test_memoryview_slice(self) -> None:
        """A slice of a larger buffer is filled in place."""
        fake = FakeSg(responder=lambda s: Reply(data=b"ZZ"))
        big = bytearray(10)
        make(fake).execute_into(INQ, memoryview(big)[4:6])
        assert big == bytes(4) + b"ZZ" + bytes(4)

    def test_readonly_refused(self) -> None:
        """A read-only buffer is a ValueError."""
        with pytest.raises(ValueError, match="writable"):
            make(FakeSg()).execute_into(INQ, memoryview(b"abc"))  # type: ignore[arg-type]


class TestDeadlines:
    """The caller's deadline holds even when the kernel keeps the command."""

    def test_times_out_on_time(self) -> None:
        """A command the kernel never completes is TIMED_OUT, maybe executed, on time."""
        fake = FakeSg(responder=lambda s: Reply(delay=None))
        t = make(fake)
        start = time.monotonic()
        r = t.execute(TUR, timeout=0.2)
        elapsed = time.monotonic() - start
        assert r.outcome is Outcome.TIMED_OUT
        assert r.detail is not None
        assert r.detail.maybe_executed
        assert 0.15 <= elapsed < 1.0
        assert t.outstanding == 1

    def test_late_completion_discarded(self) -> None:
        """A late completion is collected by the next call and not mistaken for its answer."""
        replies = iter([Reply(data=b"OLD!", delay=0.3), Reply(data=b"NEW", delay=0.5)])
        fake = FakeSg(responder=lambda s: next(replies))
        t = make(fake)
        first = t.execute(INQ, data_in_len=4, timeout=0.1)
        assert first.outcome is Outcome.TIMED_OUT
        second = t.execute(INQ, data_in_len=4, timeout=2)
        assert second.ok
        assert second.data == b"NEW"
        assert t.outstanding == 0
        assert fake.pending == []

    def test_late_completion_into_pinned_buffer(self) -> None:
        """After an execute_into timeout the late data lands in the pinned caller buffer."""
        replies = iter([Reply(data=b"LATE", delay=0.2), Reply(delay=0.3)])
        fake = FakeSg(responder=lambda s: next(replies))
        t = make(fake)
        buf = bytearray(4)
        assert t.execute_into(INQ, buf, timeout=0.05).outcome is Outcome.TIMED_OUT
        assert t.execute(TUR, timeout=2).ok
        assert buf == b"LATE"

    def test_queue_full_until_deadline(self) -> None:
        """With the driver queue full of stuck commands, a new one times out unsent."""
        fake = FakeSg(responder=lambda s: Reply(delay=None), queue_max=2)
        t = make(fake)
        for _ in range(2):
            assert t.execute(TUR, timeout=0.05).outcome is Outcome.TIMED_OUT
        start = time.monotonic()
        r = t.execute(TUR, timeout=0.2)
        assert time.monotonic() - start < 1.0
        assert r.outcome is Outcome.TIMED_OUT
        assert r.detail is not None
        assert not r.detail.maybe_executed
        assert len(fake.seen) == 2

    def test_queue_frees_up(self) -> None:
        """When a stuck command completes, a waiting submission goes through."""
        replies = iter([Reply(delay=0.15), Reply()])
        fake = FakeSg(responder=lambda s: next(replies), queue_max=1)
        t = make(fake)
        assert t.execute(TUR, timeout=0.05).outcome is Outcome.TIMED_OUT
        assert t.execute(TUR, timeout=2).ok
        assert len(fake.seen) == 2


class TestCost:
    """What keeps the per-command cost small."""

    def test_header_reused_until_timeout(self) -> None:
        """A thread reuses its header; after a timeout it gets a fresh one."""
        replies = iter([Reply(), Reply(), Reply(delay=None), Reply()])
        fake = FakeSg(responder=lambda s: next(replies))
        t = make(fake)
        t.execute(TUR)
        t.execute(INQ, data_in_len=8)
        assert t.execute(TUR, timeout=0.05).outcome is Outcome.TIMED_OUT
        t.execute(TUR)
        a = fake.header_addresses
        assert a[0] == a[1] == a[2]
        assert a[3] != a[2]

    def test_fast_response_is_the_plain_one(self) -> None:
        """The fast path's GOOD answer is Response(duration=...) field for field."""
        fake = FakeSg(responder=lambda s: Reply(driver=s.cdb[4]))
        t = make(fake)
        for driver in (0, 0, 8, 0):  # DRIVER_SENSE alone leaves a GOOD answer plain too
            r = t.execute(bytes((0, 0, 0, 0, driver, 0)))
            assert type(r) is Response
            assert r == Response(duration=r.duration)
            assert 0 <= r.duration < 5

    def test_no_logging_on_success(self) -> None:
        """Successful commands log nothing; a timeout does."""
        t = make(FakeSg(responder=lambda s: Reply(data=b"x")))
        with structlog.testing.capture_logs() as logs:
            for _ in range(5):
                t.execute(INQ, data_in_len=4)
                t.execute(TUR)
        assert logs == []
        t2 = make(FakeSg(responder=lambda s: Reply(delay=None)))
        with structlog.testing.capture_logs() as logs:
            t2.execute(TUR, timeout=0.05)
        assert [e["event"] for e in logs] == ["sg_command_abandoned"]
