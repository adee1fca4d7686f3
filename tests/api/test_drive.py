"""TapeDrive: data round trips, positioning, settings, reservations, alerts, failover."""

from __future__ import annotations

import itertools
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapepath
from tapepath.errors import (
    AmbiguousPositionError,
    BeginningOfMediumError,
    EndOfDataError,
    FilemarkEncountered,
    IncorrectLengthError,
    ReservationConflictError,
)
from tapepath.multipath import Decision, Fail, FailedCommand, MultipathDevice
from tapepath.scsi.classify import UnitAttention
from tapepath.scsi.position import PositionLong, PositionShort
from tapepath.scsi.sense import SenseKey, fixed_sense
from tapepath.scsi.tape import Write6
from tapepath.testing import (
    FILEMARK,
    DriveReset,
    FaultPlan,
    MockTransport,
    Request,
    ResponseLost,
    VirtualClock,
    VirtualLibrary,
    When,
)
from tapepath.transport.base import Response

_names = itertools.count()


class TestVariableBlocks:
    """Records written in variable mode read back one per read."""

    def test_round_trip_with_filemarks(
        self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive
    ) -> None:
        """Two files of records, filemarks between them; a filemark reads as b''."""
        records = [b"alpha", b"b" * 1000, b"gamma"]
        assert drive.write(records[0]) == 5
        drive.write(bytearray(records[1]))
        drive.write_filemarks(1)
        drive.write(memoryview(records[2]))
        drive.write_filemarks(1)
        assert virtual_library.tape(0).objects == [
            records[0],
            records[1],
            FILEMARK,
            records[2],
            FILEMARK,
        ]
        drive.rewind()
        got = [drive.read(4096) for _ in range(5)]
        assert got == [records[0], records[1], b"", records[2], b""]
        with pytest.raises(EndOfDataError):
            drive.read(4096)

    def test_short_record_and_long_record(self, drive: tapepath.TapeDrive) -> None:
        """A shorter record is returned whole; a longer one raises with its start and length."""
        drive.write(b"0123456789")
        drive.write(b"xyz")
        drive.rewind()
        with pytest.raises(IncorrectLengthError) as err:
            drive.read(4)
        assert err.value.data == b"0123"
        assert err.value.record_length == 10
        assert drive.read(100) == b"xyz"

    def test_readinto(self, drive: tapepath.TapeDrive) -> None:
        """readinto() fills the buffer and says how much; 0 at a filemark."""
        drive.write(b"hello")
        drive.write_filemarks()
        drive.rewind()
        buf = bytearray(16)
        assert drive.readinto(buf) == 5
        assert buf[:5] == b"hello"
        assert drive.readinto(buf) == 0

    @settings(max_examples=20)
    @given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8))
    def test_any_records(self, records: list[bytes]) -> None:
        """Any list of records reads back as written."""
        with VirtualLibrary(f"api-any-records-{next(_names)}", clock=VirtualClock()) as vlib:
            vlib.insert(vlib.drive_address(0), "HY0001L8")
            with tapepath.open_drive(vlib.drive_urls(0), monitor=False) as d:
                for r in records:
                    d.write(r)
                d.rewind()
                assert [d.read(300) for _ in records] == records
                assert vlib.tape(0).records() == records


class TestFixedBlocks:
    """Fixed-block mode: whole blocks in, whole blocks out."""

    def test_round_trip(self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive) -> None:
        """Four 512-byte blocks, a filemark: the blocks before it come first, then b''."""
        drive.set_block_size(512)
        assert drive.block_size == 512
        assert virtual_library.drive(0).block_size == 512
        data = bytes(range(256)) * 8
        drive.write(data)
        drive.write_filemarks(1)
        drive.write(b"z" * 512)
        drive.rewind()
        assert drive.read(1024) == data[:1024]
        assert drive.read(4096) == data[1024:]
        assert drive.read(512) == b""
        assert drive.read(512) == b"z" * 512
        with pytest.raises(EndOfDataError):
            drive.read(512)

    def test_partial_blocks_refused(self, drive: tapepath.TapeDrive) -> None:
        """Data that is not whole blocks is a ValueError, before anything is sent."""
        drive.set_block_size(512)
        with pytest.raises(ValueError, match="whole 512-byte blocks"):
            drive.write(b"x" * 100)
        with pytest.raises(ValueError, match="whole 512-byte blocks"):
            drive.read(100)

    def test_back_to_variable(
        self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive
    ) -> None:
        """set_block_size(0) returns to variable blocks."""
        drive.set_block_size(1024)
        drive.set_block_size(0)
        assert drive.block_size == 0
        assert virtual_library.drive(0).block_size == 0
        drive.write(b"abc")
        assert virtual_library.tape(0).records() == [b"abc"]


class TestPositioning:
    """space, locate, rewind and position()."""

    @pytest.fixture
    def written(self, drive: tapepath.TapeDrive) -> tapepath.TapeDrive:
        """r0 r1 FM r2 FM FM: objects 0..5, end of data at 6."""
        for r in (b"r0", b"r1"):
            drive.write(r)
        drive.write_filemarks(1)
        drive.write(b"r2")
        drive.write_filemarks(2)
        return drive

    def test_position_after_writes(
        self, virtual_library: VirtualLibrary, written: tapepath.TapeDrive
    ) -> None:
        """The drive's position counts records and filemarks; file counts filemarks."""
        p = written.position()
        assert (p.block, p.file, p.source) == (6, 3, "device")
        assert p.block == virtual_library.position(0).block
        written.rewind()
        p = written.position()
        assert (p.block, p.file, p.bop) == (0, 0, True)

    def test_space_filemarks_and_eod(self, written: tapepath.TapeDrive) -> None:
        """Spacing a filemark lands on the next file; eod at the end of data."""
        written.rewind()
        written.space(1, "filemarks")
        assert (written.position().block, written.position().file) == (3, 1)
        assert written.read(10) == b"r2"
        written.space(0, "eod")
        assert written.position().block == 6
        written.space(-1, "filemarks")
        assert written.position().block == 5

    def test_space_blocks_meets_a_filemark(self, written: tapepath.TapeDrive) -> None:
        """Spacing 5 blocks from the start stops after the filemark at object 2."""
        written.rewind()
        with pytest.raises(FilemarkEncountered) as err:
            written.space(5)
        assert err.value.residual == 3
        assert written.position().block == 3

    def test_space_past_the_beginning(self, written: tapepath.TapeDrive) -> None:
        """Spacing backwards past the start reports the beginning of the medium."""
        written.locate(1)
        with pytest.raises(BeginningOfMediumError):
            written.space(-5)
        assert written.position().block == 0

    def test_space_past_the_end(self, written: tapepath.TapeDrive) -> None:
        """Spacing beyond the recorded data raises EndOfDataError."""
        written.space(0, "eod")
        with pytest.raises(EndOfDataError):
            written.space(3)

    def test_locate(self, written: tapepath.TapeDrive) -> None:
        """locate(n) goes to object n; the next read is that record."""
        written.locate(3)
        assert written.read(10) == b"r2"
        written.locate(1)
        p = written.position()
        assert (p.block, p.file) == (1, 0)
        assert written.read(10) == b"r1"

    def test_bad_arguments(self, drive: tapepath.TapeDrive) -> None:
        """Bad units, sizes and blocks are ValueErrors."""
        with pytest.raises(ValueError, match="unit"):
            drive.space(1, "setmarks")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="block"):
            drive.locate(-1)
        with pytest.raises(ValueError, match="size"):
            drive.read(0)
        with pytest.raises(ValueError, match="no data"):
            drive.write(b"")
        with pytest.raises(ValueError, match="count"):
            drive.write_filemarks(-1)


def _unknown_position(url: str, name: str = "mock://tgtd-tape") -> MockTransport:
    """A drive answering READ POSITION as tgtd does (short: LOLU/BYCU, long: zeros)."""
    sim = tapepath.open_transport(url)

    def handle(req: Request) -> Response:
        if req.cdb[0] == 0x34:
            if req.cdb[1] & 0x1F == 6:
                return Response(data=PositionLong().to_bytes())
            return Response(data=PositionShort(bycu=True, lolu=True).to_bytes())
        return sim.execute(
            req.cdb, data_out=req.data_out, data_in_len=req.data_in_len, timeout=req.timeout
        )

    return MockTransport(handle, url=name)


class TestTrackedPosition:
    """When the drive cannot tell its position, the tracked one is reported."""

    def test_fallback(self, virtual_library: VirtualLibrary) -> None:
        """Writes, filemarks, reads and rewinds are counted by the library itself."""
        virtual_library.insert(virtual_library.drive_address(0), "TR0001L8")
        d = tapepath.TapeDrive(_unknown_position(virtual_library.drive_urls(0)[0]))
        d.rewind()
        d.write(b"a")
        d.write(b"b")
        d.write_filemarks(1)
        d.write(b"c")
        p = d.position()
        assert (p.block, p.file, p.source) == (4, 1, "tracked")
        assert p.block == virtual_library.position(0).block
        d.rewind()
        assert d.read(10) == b"a"
        assert d.position().block == 1
        assert d.read(10) == b"b"
        assert d.read(10) == b""
        assert (d.position().block, d.position().file) == (3, 1)

    def test_unknown_until_positioned(self, virtual_library: VirtualLibrary) -> None:
        """Before any rewind the library knows nothing and says so."""
        virtual_library.insert(virtual_library.drive_address(0), "TR0002L8")
        d = tapepath.TapeDrive(_unknown_position(virtual_library.drive_urls(0)[0]))
        d.space(0, "eod")
        p = d.position()
        assert p.block is None
        assert p.source == "tracked"


class TestReset:
    """A drive reset (tape rewound) never makes the next write land at the beginning."""

    def test_write_after_reset_goes_where_it_belongs(
        self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive
    ) -> None:
        """After 29/00 the drive locates back to the tracked block, then writes."""
        drive.write(b"one")
        drive.write(b"two")
        virtual_library.reset_drive(0)
        assert virtual_library.position(0).block == 0
        drive.write(b"three")
        assert virtual_library.tape(0).records() == [b"one", b"two", b"three"]
        assert UnitAttention.POWER_ON_RESET in drive.unit_attentions

    def test_reset_after_spacing_filemarks(
        self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive
    ) -> None:
        """A reset met by the READ POSITION after SPACE: the tape goes back to file 1."""
        for f in (b"file0", b"file1"):
            drive.write(f)
            drive.write_filemarks(1)
        drive.rewind()
        plan = FaultPlan()
        plan.add(DriveReset(device="drive0", trigger=When(lambda c: c.opcode == 0x34), times=1))
        virtual_library.install(plan)
        drive.space(1, "filemarks")
        assert plan.fired
        assert drive.read(100) == b"file1"
        assert (drive.position().block, drive.position().file) == (3, 1)

    def test_modes_restored_after_power_cycle(
        self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive
    ) -> None:
        """The block size and compression the application set survive a power cycle."""
        drive.set_block_size(512)
        drive.set_compression(False)
        drive.write(b"a" * 1024)
        virtual_library.power_cycle()
        assert virtual_library.drive(0).block_size == 0
        drive.write(b"b" * 1024)
        assert virtual_library.drive(0).block_size == 512
        assert virtual_library.drive(0).compression is False
        assert [len(r) for r in virtual_library.tape(0).records()] == [512] * 4

    def test_reset_with_unknown_block_is_ambiguous(self, virtual_library: VirtualLibrary) -> None:
        """On a drive that cannot report its position, a reset mid-file raises, never guesses."""
        virtual_library.insert(virtual_library.drive_address(0), "UB0001L8")
        d = tapepath.TapeDrive(_unknown_position(virtual_library.drive_urls(0)[0]))
        d.rewind()
        d.write(b"x")
        d.space(0, "eod")
        virtual_library.reset_drive(0)
        with pytest.raises(AmbiguousPositionError, match="cannot be found again"):
            d.write(b"y")
        with pytest.raises(AmbiguousPositionError):
            d.write(b"y")
        d.rewind()
        d.space(1)
        d.write(b"y")
        assert virtual_library.tape(0).records() == [b"x", b"y"]

    def test_reset_seen_by_another_command(
        self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive
    ) -> None:
        """A reset reported to a non-positional command still brings the tape back."""
        for r in (b"a", b"b", b"c"):
            drive.write(r)
        virtual_library.reset_drive(0)
        drive.tape_alerts()
        assert virtual_library.position(0).block == 0
        assert drive.position().block == 3
        drive.write(b"d")
        assert virtual_library.tape(0).records() == [b"a", b"b", b"c", b"d"]


class TestEndOfTape:
    """The early warning is a flag; the physical end raises, and nothing is duplicated."""

    @pytest.mark.virtual_library(capacity=64 * 1024)
    def test_fill_the_tape(
        self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive
    ) -> None:
        """Writes succeed into the early-warning zone, then EndOfMediumError with the residual."""
        written: list[bytes] = []
        warned_at = None
        failure: tapepath.EndOfMediumError | None = None
        for i in range(100):
            record = bytes([i]) * 4096
            try:
                drive.write(record)
            except tapepath.EndOfMediumError as exc:
                failure = exc
                break
            written.append(record)
            if drive.early_warning and warned_at is None:
                warned_at = i
        assert failure is not None
        assert failure.residual == 4096
        assert warned_at is not None
        assert warned_at < len(written)
        assert virtual_library.tape(0).records() == written


class TestFailedCommands:
    """A command that failed after it may have moved the tape makes the drive ask again."""

    def test_medium_error_forgets_the_position(self, virtual_library: VirtualLibrary) -> None:
        """After a MEDIUM ERROR on a WRITE the position comes from READ POSITION again."""
        virtual_library.insert(virtual_library.drive_address(0), "ME0001L8")
        sim = tapepath.open_transport(virtual_library.drive_urls(0)[0])
        failing = {"write": False}

        def handle(req: Request) -> Response:
            if req.cdb[0] == Write6.OPCODE and failing["write"]:
                failing["write"] = False
                return Response(status=2, sense=fixed_sense(SenseKey.MEDIUM_ERROR, 0x0C, 0))
            return sim.execute(
                req.cdb, data_out=req.data_out, data_in_len=req.data_in_len, timeout=req.timeout
            )

        mock = MockTransport(handle)
        d = tapepath.TapeDrive(mock)
        d.write(b"a")
        failing["write"] = True
        with pytest.raises(tapepath.CheckConditionError, match="MEDIUM ERROR"):
            d.write(b"b")
        before = sum(r.cdb[0] == 0x34 for r in mock.requests)
        d.write(b"c")
        assert sum(r.cdb[0] == 0x34 for r in mock.requests) > before
        assert d.position().block == 2


class _AlwaysAmbiguous:
    """A recovery hook that can never prove anything."""

    def on_path_failure(self, device: MultipathDevice, failed: FailedCommand) -> Decision:
        return Fail(AmbiguousPositionError(f"in doubt: opcode {failed.opcode:02X}h"))


class TestAfterAmbiguity:
    """After an ambiguity the position is unknown and writes wait for the application."""

    def test_position_unknown_and_writes_refused(self, virtual_library: VirtualLibrary) -> None:
        """The in-doubt WRITE ran; position() does not claim the old block; writes are held."""
        virtual_library.insert(virtual_library.drive_address(0), "AM0001L8")
        plan = FaultPlan()
        plan.add(ResponseLost(device="drive0", port=0, trigger=When(lambda c: c.data_out == b"w2")))
        virtual_library.install(plan)
        paths = [
            _unknown_position(u, f"mock://port{i}")
            for i, u in enumerate(virtual_library.drive_urls(0))
        ]
        dev = MultipathDevice(paths, recovery=_AlwaysAmbiguous(), monitor=False, handler=None)
        with tapepath.TapeDrive(dev) as d:
            d.rewind()
            d.write(b"w0")
            d.write(b"w1")
            with pytest.raises(AmbiguousPositionError, match="in doubt"):
                d.write(b"w2")
            assert d.position().block is None
            with pytest.raises(AmbiguousPositionError, match="not sent"):
                d.write(b"w3")
            with pytest.raises(AmbiguousPositionError, match="not sent"):
                d.write_filemarks(1)
            assert virtual_library.tape(0).records() == [b"w0", b"w1", b"w2"]
            d.rewind()
            assert d.read(10) == b"w0"
            d.write(b"new")
        assert virtual_library.tape(0).records() == [b"w0", b"new"]


class TestSettings:
    """Compression and TapeAlert."""

    def test_compression(self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive) -> None:
        """set_compression toggles the drive's DCE."""
        drive.set_compression(False)
        assert drive.compression is False
        assert virtual_library.drive(0).compression is False
        drive.set_compression(True)
        assert drive.compression is True
        assert virtual_library.drive(0).compression is True

    def test_tape_alerts(self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive) -> None:
        """Set flags come back with their SSC names; reading clears them."""
        virtual_library.drive(0).tape_alerts = {4, 20}
        alerts = drive.tape_alerts()
        assert alerts.flags == {4, 20}
        assert 20 in alerts
        assert alerts.names[1] == "Cleaning required"
        assert drive.tape_alerts().flags == frozenset()


class TestReady:
    """wait_ready() waits for a cartridge, within its time."""

    def test_empty_drive(self, virtual_library: VirtualLibrary) -> None:
        """An empty drive is not ready: MediumNotPresentError once the time is up."""
        with (
            tapepath.open_drive(virtual_library.drive_urls(1), monitor=False) as d,
            pytest.raises(tapepath.MediumNotPresentError),
        ):
            d.wait_ready(timeout=0.1)

    def test_loaded_by_the_robot(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """After the robot loads it, the drive is ready and at the beginning of the tape."""
        library.load(2, 1)
        with tapepath.open_drive(virtual_library.drive_urls(1), monitor=False) as d:
            d.wait_ready(timeout=5)
            assert d.position().bop


class TestReservations:
    """reserve() registers the application's key and reserves; release() undoes both."""

    def test_other_initiator_is_kept_out(
        self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive
    ) -> None:
        """While reserved, another initiator's write conflicts; after release it works."""
        drive.reserve(0xABCD)
        other_urls = [u + "&initiator=other" for u in virtual_library.drive_urls(0)]
        with tapepath.open_drive(other_urls, monitor=False, reservation_key=0x99) as other:
            with pytest.raises(ReservationConflictError):
                other.write(b"intruder")
            with pytest.raises(ReservationConflictError):
                other.reserve()
            drive.write(b"mine")
            drive.release()
            other.write(b"theirs")
        assert virtual_library.tape(0).records() == [b"mine", b"theirs"]

    def test_key_required(self, drive: tapepath.TapeDrive) -> None:
        """With no key configured or given, reserve() refuses."""
        with pytest.raises(ValueError, match="key"):
            drive.reserve()

    def test_release_without_reserve(self, drive: tapepath.TapeDrive) -> None:
        """release() with nothing reserved sends nothing and does not fail."""
        drive.release()


class TestThreads:
    """Several threads can write through one TapeDrive."""

    def test_concurrent_writers(
        self, virtual_library: VirtualLibrary, drive: tapepath.TapeDrive
    ) -> None:
        """Every record of four writer threads is on the tape exactly once."""
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for i in range(25):
                    drive.write(f"t{n}-{i}".encode())
                    drive.position()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        records = virtual_library.tape(0).records()
        assert sorted(records) == sorted(f"t{n}-{i}".encode() for n in range(4) for i in range(25))
        for n in range(4):
            mine = [r for r in records if r.startswith(f"t{n}-".encode())]
            assert mine == [f"t{n}-{i}".encode() for i in range(25)]
        assert drive.position().block == 100
