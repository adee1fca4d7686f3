"""The spti:// transport driven end to end through a fake kernel32.

The fake decodes the SCSI_PASS_THROUGH_DIRECT block the transport built (at the address
it passed, as the Windows I/O manager would), checks it, and answers through the same
pointers: data into DataBuffer, sense at SenseInfoOffset, the updated lengths and status.
The last error is kept per thread, as Windows does.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from collections.abc import Callable

import pytest
from attrs import define, field
from hypothesis import given
from hypothesis import strategies as st

from tapepath import errors
from tapepath.transport import Outcome, open_transport
from tapepath.transport.spti import (
    SptiAddress,
    SptiTransport,
    WinKernel32,
    device_name_from_url,
)
from tapepath.transport.spti_struct import (
    SPTD,
    SPTD_WITH_SENSE,
    IoScsiCapabilities,
    ScsiAddressStruct,
)

PASS_THROUGH_DIRECT = 0x4D014
GET_CAPABILITIES = 0x41010
GET_ADDRESS = 0x41018


@define
class Seen:
    """One pass-through as the fake received it."""

    cdb: bytes
    data_in: int
    length: int
    timeout_s: int
    buffer: int
    data_out: bytes
    nexus: tuple[int, int, int]
    sense_room: int


@define
class Reply:
    """The fake device's answer."""

    data: bytes = b""
    status: int = 0
    sense: bytes = b""
    error: int = 0
    block_s: float = 0.0
    claim_length: int | None = None  # a driver that reports a wrong DataTransferLength
    claim_sense: int | None = None  # ... or a wrong SenseInfoLength


@define
class FakeDevice:
    """A device behind a Win32 name."""

    responder: Callable[[Seen], Reply] = field(factory=lambda: lambda s: Reply())
    open_error: int = 0
    alignment_mask: int = 0
    max_transfer: int = 65536
    address: tuple[int, int, int, int] | None = (2, 0, 1, 0)
    capabilities: bool = True


@define
class FakeKernel32:
    """A fake kernel32 implementing the Kernel32 protocol."""

    devices: dict[str, FakeDevice] = field(factory=dict)
    seen: list[Seen] = field(factory=list)
    threads: list[int] = field(factory=list)
    opened: list[tuple[str, int]] = field(factory=list)
    closed: list[int] = field(factory=list)
    handles: dict[int, str] = field(factory=dict)
    tls: threading.local = field(factory=threading.local)

    def _fail(self, code: int) -> int:
        self.tls.error = code
        return 0

    def CreateFileW(
        self,
        name: str,
        access: int,
        share: int,
        security: None,
        disposition: int,
        flags: int,
        template: None,
    ) -> int:
        assert disposition == 3  # OPEN_EXISTING
        dev = self.devices.get(name)
        if dev is None:
            self._fail(2)
            return -1
        if dev.open_error and access:
            self._fail(dev.open_error)
            return -1
        handle = 100 + len(self.opened)
        self.opened.append((name, access))
        self.handles[handle] = name
        return handle

    def DeviceIoControl(
        self,
        handle: int,
        code: int,
        in_buf: int,
        in_size: int,
        out_buf: int,
        out_size: int,
        returned: int,
        overlapped: None,
    ) -> int:
        assert overlapped is None
        if handle in self.closed:
            return self._fail(6)
        dev = self.devices[self.handles[handle]]
        ret = ctypes.c_uint32.from_address(returned)
        if code == GET_CAPABILITIES:
            if not dev.capabilities:
                return self._fail(1)
            assert out_size == ctypes.sizeof(IoScsiCapabilities)
            caps = IoScsiCapabilities.from_address(out_buf)
            caps.Length = ctypes.sizeof(caps)
            caps.AlignmentMask = dev.alignment_mask
            caps.MaximumTransferLength = dev.max_transfer
            ret.value = ctypes.sizeof(caps)
            return 1
        if code == GET_ADDRESS:
            if dev.address is None:
                return self._fail(1)
            addr = ScsiAddressStruct.from_address(out_buf)
            addr.Length = ctypes.sizeof(addr)
            addr.PortNumber, addr.PathId, addr.TargetId, addr.Lun = dev.address
            ret.value = ctypes.sizeof(addr)
            return 1
        assert code == PASS_THROUGH_DIRECT
        self.threads.append(threading.get_ident())
        return self._pass_through(dev, in_buf, in_size, out_buf, out_size, ret)

    def _pass_through(
        self,
        dev: FakeDevice,
        in_buf: int,
        in_size: int,
        out_buf: int,
        out_size: int,
        ret: ctypes.c_uint32,
    ) -> int:
        assert in_buf == out_buf
        assert in_size == out_size
        block = SPTD_WITH_SENSE.from_address(in_buf)
        s = block.sptd
        assert s.Length == ctypes.sizeof(SPTD)
        assert 1 <= s.CdbLength <= 16
        assert s.SenseInfoOffset + s.SenseInfoLength <= in_size
        assert s.DataIn in (0, 1, 2)
        if s.DataTransferLength:
            assert s.DataBuffer, "data without a buffer"
            if s.DataBuffer & dev.alignment_mask:
                return self._fail(87)  # what Windows says for a misaligned buffer
        else:
            assert s.DataIn == 2
        data_out = b""
        if s.DataIn == 0:
            data_out = ctypes.string_at(s.DataBuffer, s.DataTransferLength)
        seen = Seen(
            cdb=bytes(s.Cdb[: s.CdbLength]),
            data_in=s.DataIn,
            length=s.DataTransferLength,
            timeout_s=s.TimeOutValue,
            buffer=s.DataBuffer or 0,
            data_out=data_out,
            nexus=(s.PathId, s.TargetId, s.Lun),
            sense_room=s.SenseInfoLength,
        )
        self.seen.append(seen)
        reply = dev.responder(seen)
        if reply.block_s:
            time.sleep(reply.block_s)
        if reply.error:
            return self._fail(reply.error)
        if s.DataIn == 1:
            n = min(len(reply.data), s.DataTransferLength)
            ctypes.memmove(s.DataBuffer, reply.data, n)
            s.DataTransferLength = n
        sense = reply.sense[: s.SenseInfoLength]
        ctypes.memmove(in_buf + s.SenseInfoOffset, sense, len(sense))
        s.SenseInfoLength = len(sense)
        if reply.claim_length is not None:
            s.DataTransferLength = reply.claim_length
        if reply.claim_sense is not None:
            s.SenseInfoLength = reply.claim_sense
        s.ScsiStatus = reply.status
        ret.value = s.SenseInfoOffset + len(sense)
        return 1

    def CloseHandle(self, handle: int) -> int:
        self.closed.append(handle)
        return 1

    def GetLastError(self) -> int:
        return int(getattr(self.tls, "error", 0))


def k32(**devices: FakeDevice) -> FakeKernel32:
    """A fake kernel32 with devices named by keyword (Tape0 -> \\\\.\\Tape0)."""
    return FakeKernel32({f"\\\\.\\{k.replace('_', ':')}": v for k, v in devices.items()})


def opened(fake: FakeKernel32, name: str = "\\\\.\\Tape0", **kw: object) -> SptiTransport:
    """An SptiTransport on the fake."""
    return SptiTransport(name, kernel32=fake, **kw)  # type: ignore[arg-type]


TUR = bytes(6)
INQ = bytes((0x12, 0, 0, 0, 36, 0))
WRITE6 = bytes((0x0A, 0, 0, 0, 8, 0))


class TestUrls:
    """spti URLs name \\\\.\\TapeN, \\\\.\\ChangerN and \\\\.\\ScsiN:."""

    @pytest.mark.parametrize(
        ("url", "name", "nexus"),
        [
            ("spti://./Tape0", "\\\\.\\Tape0", (0, 0, 0)),
            ("spti://./Changer12", "\\\\.\\Changer12", (0, 0, 0)),
            ("spti://./Scsi2:?path=1&target=3&lun=4", "\\\\.\\Scsi2:", (1, 3, 4)),
            ("spti://./Scsi0:", "\\\\.\\Scsi0:", (0, 0, 0)),
        ],
    )
    def test_good(self, url: str, name: str, nexus: tuple[int, int, int]) -> None:
        """Each form gives its device name and nexus."""
        assert device_name_from_url(url) == (name, nexus)

    @pytest.mark.parametrize(
        "url",
        [
            "spti://host/Tape0",
            "spti://./Disk0",
            "spti://./Tape",
            "spti://./Tape0?lun=1",
            "spti://./Scsi1:?target=300",
            "spti://./Scsi1:?bus=1",
            "spti://./Scsi1:?lun=x",
            "sg://./Tape0",
        ],
    )
    def test_bad(self, url: str) -> None:
        """Anything else is a ValueError."""
        with pytest.raises(ValueError, match="spti"):
            device_name_from_url(url)

    def test_nexus_reaches_the_structure(self) -> None:
        """A port URL's path/target/lun go into PathId/TargetId/Lun."""
        fake = k32(Scsi2_=FakeDevice())
        name, nexus = device_name_from_url("spti://./Scsi2:?path=1&target=5&lun=2")
        t = SptiTransport(name, nexus=nexus, kernel32=fake)
        t.execute(TUR)
        assert fake.seen[0].nexus == (1, 5, 2)
        assert t.url == "spti://./Scsi2:"


class TestOpen:
    """Opening on Linux and through the fake."""

    def test_not_windows(self) -> None:
        """Without Windows the real kernel32 is a clear TransportUnavailableError."""
        if hasattr(ctypes, "WinDLL"):
            pytest.skip("running on Windows")
        with pytest.raises(errors.TransportUnavailableError, match="Windows"):
            WinKernel32()
        with pytest.raises(errors.TransportUnavailableError, match="Windows"):
            open_transport("spti://./Tape0")

    def test_missing(self) -> None:
        """A device that does not exist: no such device."""
        with pytest.raises(errors.TransportError, match="no such device"):
            opened(k32(), "\\\\.\\Tape7")

    def test_access_denied(self) -> None:
        """Access denied names the cause."""
        with pytest.raises(errors.TransportError, match="Administrator"):
            opened(k32(Tape0=FakeDevice(open_error=5)))

    def test_in_use(self) -> None:
        """A sharing violation says the device is in use."""
        with pytest.raises(errors.TransportError, match="in use"):
            opened(k32(Tape0=FakeDevice(open_error=32)))

    def test_capabilities_and_address(self) -> None:
        """The alignment mask, maximum transfer and SCSI address are read on open."""
        fake = k32(Tape0=FakeDevice(alignment_mask=7, max_transfer=4096, address=(3, 0, 2, 1)))
        t = opened(fake)
        assert (t.alignment_mask, t.max_transfer) == (7, 4096)
        assert t.address == SptiAddress(3, 0, 2, 1)
        assert str(t.address) == "3:0:2:1"
        assert fake.opened == [("\\\\.\\Tape0", 0xC0000000)]

    def test_no_capabilities(self) -> None:
        """A driver without IOCTL_SCSI_GET_CAPABILITIES leaves no alignment demand."""
        t = opened(k32(Tape0=FakeDevice(capabilities=False, address=None)))
        assert t.alignment_mask == 0
        assert t.address is None

    def test_close(self) -> None:
        """close() closes the handle once; later commands raise."""
        fake = k32(Tape0=FakeDevice())
        t = opened(fake)
        with t:
            pass
        t.close()
        assert fake.closed == [100]
        with pytest.raises(errors.TransportError, match="closed"):
            t.execute(TUR)


class TestCommands:
    """The structure the transport builds, and the answers it reads back."""

    def test_no_data(self) -> None:
        """No data: DataIn unspecified, no buffer, the CDB and sense room set."""
        fake = k32(Tape0=FakeDevice())
        r = opened(fake).execute(TUR, timeout=7)
        assert r.ok
        s = fake.seen[0]
        assert (s.cdb, s.data_in, s.length, s.buffer, s.timeout_s) == (TUR, 2, 0, 0, 7)
        assert s.sense_room == 252

    @pytest.mark.parametrize(
        ("timeout", "seconds"), [(0.2, 1), (2.5, 3), (60.0, 60), (1e9, 108_000)]
    )
    def test_timeout_rounds_up(self, timeout: float, seconds: int) -> None:
        """TimeOutValue is whole seconds, rounded up, capped."""
        fake = k32(Tape0=FakeDevice())
        opened(fake).execute(TUR, timeout=timeout)
        assert fake.seen[0].timeout_s == seconds

    def test_data_in(self) -> None:
        """Data-in: DataIn 1, data and residual from the returned length."""
        fake = k32(Tape0=FakeDevice(responder=lambda s: Reply(data=b"HP      Ultrium")))
        r = opened(fake).execute(INQ, data_in_len=36)
        assert fake.seen[0].data_in == 1
        assert fake.seen[0].length == 36
        assert r.data == b"HP      Ultrium"
        assert (r.transferred, r.residual) == (15, 21)

    def test_data_out(self) -> None:
        """Data-out: DataIn 0 and the bytes reach the device."""
        fake = k32(Tape0=FakeDevice())
        r = opened(fake).execute(WRITE6, data_out=b"8 bytes!")
        assert fake.seen[0].data_in == 0
        assert fake.seen[0].data_out == b"8 bytes!"
        assert (r.transferred, r.residual) == (8, 0)

    def test_check_condition(self) -> None:
        """Status and sense come back from the block."""
        sense = bytes((0x70, 0, 2, 0, 0, 0, 0, 10)) + bytes(10)
        fake = k32(Tape0=FakeDevice(responder=lambda s: Reply(status=2, sense=sense)))
        r = opened(fake).execute(TUR)
        assert r.check_condition
        assert r.sense == sense

    def test_cdb_too_long(self) -> None:
        """SCSI_PASS_THROUGH_DIRECT holds 16 CDB bytes at most."""
        with pytest.raises(ValueError, match="16"):
            opened(k32(Tape0=FakeDevice())).execute(bytes(32))

    def test_transfer_too_long(self) -> None:
        """More than MaximumTransferLength is refused before anything is sent."""
        fake = k32(Tape0=FakeDevice(max_transfer=4096))
        t = opened(fake)
        with pytest.raises(ValueError, match="MaximumTransferLength"):
            t.execute(INQ, data_in_len=4097)
        with pytest.raises(ValueError, match="MaximumTransferLength"):
            t.execute(WRITE6, data_out=bytes(5000))
        assert t.execute(INQ, data_in_len=4096).ok
        assert len(fake.seen) == 1

    @given(st.binary(min_size=1, max_size=16), st.binary(max_size=200), st.integers(0, 300))
    def test_any_answer(self, cdb: bytes, data: bytes, alloc: int) -> None:
        """Any CDB and answer give consistent data, transfer and residual."""
        fake = k32(Tape0=FakeDevice(responder=lambda s: Reply(data=data)))
        r = opened(fake).execute(cdb, data_in_len=alloc)
        n = min(len(data), alloc) if alloc else 0
        assert fake.seen[0].cdb == cdb
        assert r.data == data[:n]
        assert (r.transferred, r.residual) == (n, alloc - n)


class TestWorkers:
    """The helper threads that keep the deadline."""

    def test_worker_reused(self) -> None:
        """Sequential commands run on one helper thread, not the caller's."""
        fake = k32(Tape0=FakeDevice())
        t = opened(fake)
        for _ in range(5):
            assert t.execute(TUR).ok
        assert len(set(fake.threads)) == 1
        assert fake.threads[0] != threading.get_ident()

    def test_stuck_worker_replaced(self) -> None:
        """A command stuck in DeviceIoControl keeps its thread; the next gets another."""
        replies = iter([Reply(block_s=0.5), Reply(), Reply()])
        fake = k32(Tape0=FakeDevice(responder=lambda s: next(replies)))
        t = opened(fake)
        assert t.execute(TUR, timeout=0.05).outcome is Outcome.TIMED_OUT
        assert t.execute(TUR).ok
        assert fake.threads[1] != fake.threads[0]
        time.sleep(0.6)
        assert t.execute(TUR).ok
        assert fake.threads[2] in fake.threads[:2]

    def test_broken_kernel32(self) -> None:
        """An exception inside DeviceIoControl is a failed command, not a hang."""

        def boom(seen: Seen) -> Reply:
            raise RuntimeError("broken")

        t = opened(k32(Tape0=FakeDevice(responder=boom)))
        r = t.execute(TUR, timeout=2)
        assert r.outcome is Outcome.LINK_LOST
        assert r.detail is not None
        assert r.detail.win_error == 31

    def test_close_ends_idle_workers(self) -> None:
        """close() ends the idle helper threads."""
        fake = k32(Tape0=FakeDevice())
        t = opened(fake)
        t.execute(TUR)
        before = {th.ident for th in threading.enumerate() if th.name.startswith("spti ")}
        assert fake.threads[0] in before
        t.close()
        for _ in range(100):
            alive = {th.ident for th in threading.enumerate() if th.name.startswith("spti ")}
            if fake.threads[0] not in alive:
                break
            time.sleep(0.01)
        assert fake.threads[0] not in alive


class TestBounds:
    """Whatever the driver writes back, the response stays within the request."""

    @given(
        st.integers(0, 2**32 - 1),
        st.integers(0, 255),
        st.integers(0, 255),
        st.integers(0, 512),
        st.booleans(),
    )
    def test_wild_driver_answers(
        self, length: int, sense_len: int, status: int, alloc: int, data_in: bool
    ) -> None:
        """Claimed lengths beyond the buffers are cut to what was asked."""
        reply = Reply(claim_length=length, claim_sense=sense_len, status=status, data=b"d" * 8)
        t = opened(k32(Tape0=FakeDevice(responder=lambda s: reply)))
        if data_in and alloc:
            r = t.execute(INQ, data_in_len=alloc)
            assert len(r.data) == r.transferred
        else:
            r = t.execute(WRITE6, data_out=bytes(alloc)) if alloc else t.execute(TUR)
        assert 0 <= r.transferred <= alloc
        assert r.residual + r.transferred == alloc
        assert len(r.sense) <= 252
        assert r.status == status


class TestLifetime:
    """A transport dropped without close() does not leak its handle or threads."""

    def test_dropped_transport_closes(self) -> None:
        """Idle helper threads do not keep the transport alive; collection closes it."""
        fake = k32(Tape0=FakeDevice())
        t = opened(fake)
        assert t.execute(TUR).ok
        worker = fake.threads[0]
        del t
        gc.collect()
        assert fake.closed == [100]
        for _ in range(100):
            if worker not in {th.ident for th in threading.enumerate()}:
                break
            time.sleep(0.01)
        assert worker not in {th.ident for th in threading.enumerate()}

    def test_failed_open_closes_nothing(self) -> None:
        """A device that could not be opened has no handle to close, then or later."""
        fake = k32()
        with pytest.raises(errors.TransportError):
            opened(fake, "\\\\.\\Tape9")
        gc.collect()
        assert fake.closed == []


class TestAlignment:
    """Buffers meet the adapter's AlignmentMask."""

    def test_execute_buffer_aligned(self) -> None:
        """execute() always hands over an aligned buffer."""
        fake = k32(Tape0=FakeDevice(alignment_mask=0x1FF, responder=lambda s: Reply(data=b"x")))
        r = opened(fake).execute(INQ, data_in_len=36)
        assert fake.seen[0].buffer & 0x1FF == 0
        assert r.data == b"x"

    def test_execute_into_aligned_direct(self) -> None:
        """An aligned caller buffer is used directly."""
        fake = k32(Tape0=FakeDevice(alignment_mask=0, responder=lambda s: Reply(data=b"abc")))
        buf = bytearray(8)
        addr = ctypes.addressof((ctypes.c_char * 8).from_buffer(buf))
        r = opened(fake).execute_into(INQ, buf)
        assert fake.seen[0].buffer == addr
        assert buf[:3] == b"abc"
        assert (r.transferred, r.residual, r.data) == (3, 5, b"")

    def test_execute_into_unaligned_bounced(self) -> None:
        """A misaligned caller buffer goes through an aligned one; data still lands."""
        fake = k32(Tape0=FakeDevice(alignment_mask=0xF, responder=lambda s: Reply(data=b"DATA")))
        big = bytearray(64)
        base = ctypes.addressof((ctypes.c_char * 64).from_buffer(big))
        skew = 1 if (base + 1) & 0xF else 2
        view = memoryview(big)[skew : skew + 8]
        r = opened(fake).execute_into(INQ, view)
        assert fake.seen[0].buffer & 0xF == 0
        assert fake.seen[0].buffer != base + skew
        assert big[skew : skew + 4] == b"DATA"
        assert r.transferred == 4

    def test_data_out_unaligned_copied(self) -> None:
        """Misaligned data-out is copied into an aligned buffer with the same bytes."""
        fake = k32(Tape0=FakeDevice(alignment_mask=0xF))
        big = bytearray(b"_" * 3 + b"payload!" + b"_" * 5)
        base = ctypes.addressof((ctypes.c_char * len(big)).from_buffer(big))
        view = memoryview(big)[3:11]
        opened(fake).execute(WRITE6, data_out=view)  # type: ignore[arg-type]
        assert fake.seen[0].buffer & 0xF == 0
        assert fake.seen[0].buffer != base + 3 or (base + 3) & 0xF == 0
        assert fake.seen[0].data_out == b"payload!"


# GetLastError codes and what they must mean (from the brief and winerror.h):
# (outcome, maybe_executed)
EXPECTED_ERRORS = {
    1167: (Outcome.NO_CONNECT, True),  # ERROR_DEVICE_NOT_CONNECTED
    121: (Outcome.TIMED_OUT, True),  # ERROR_SEM_TIMEOUT
    1117: (Outcome.LINK_LOST, True),  # ERROR_IO_DEVICE
    2: (Outcome.DEVICE_GONE, True),  # ERROR_FILE_NOT_FOUND
    5: (Outcome.NO_CONNECT, False),  # ERROR_ACCESS_DENIED
    1: (Outcome.ABORTED, False),  # ERROR_INVALID_FUNCTION
    21: (Outcome.NO_CONNECT, True),  # ERROR_NOT_READY
    170: (Outcome.ABORTED, False),  # ERROR_BUSY
    995: (Outcome.ABORTED, True),  # ERROR_OPERATION_ABORTED
    1617: (Outcome.DEVICE_GONE, True),  # ERROR_DEVICE_REMOVED
    4242: (Outcome.LINK_LOST, True),  # unknown
}
