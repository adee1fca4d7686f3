"""TapeDrive across a path failover, and records tgtd cuts short (split from test_drive.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapepath
from tapepath.api import default_recovery
from tapepath.errors import (
    IncorrectLengthError,
    TapepathError,
)
from tapepath.multipath import PathState
from tapepath.scsi.position import PositionShort
from tapepath.scsi.sense import SenseKey, fixed_sense
from tapepath.scsi.tape import Write6
from tapepath.testing import (
    AtCommand,
    FaultPlan,
    LinkDown,
    MockTransport,
    Request,
    ResponseLost,
    VirtualLibrary,
    When,
)
from tapepath.transport.base import Response
from tests.api.test_drive import _unknown_position


class TestFailover:
    """A cut drive path does not stop the writes."""

    def test_cut_port_mid_stream(
        self, virtual_library: VirtualLibrary, fault_plan: FaultPlan, drive: tapepath.TapeDrive
    ) -> None:
        """Port 0 goes down during the stream; every record lands once, in order."""
        fault_plan.add(LinkDown(device="drive0", port=0, trigger=AtCommand(6)))
        records = [f"rec{i}".encode() for i in range(12)]
        for r in records:
            drive.write(r)
        drive.write_filemarks(1)
        assert virtual_library.tape(0).records() == records
        assert fault_plan.fired
        assert drive.paths[0].state is PathState.FAILED
        drive.rewind()
        assert [drive.read(100) for _ in records] == records

    def test_lost_response_writes_once(
        self, virtual_library: VirtualLibrary, fault_plan: FaultPlan, drive: tapepath.TapeDrive
    ) -> None:
        """A WRITE that ran but whose answer was lost is not written again."""
        if default_recovery("tape") is None:
            pytest.skip("tapepath.recovery is not installed")
        drive.rewind()
        fault_plan.add(
            ResponseLost(
                device="drive0", port=0, trigger=When(lambda c: c.data_out == b"w3"), times=1
            )
        )
        records = [b"w%d" % i for i in range(6)]
        for r in records:
            drive.write(r)
        assert fault_plan.fired
        assert virtual_library.tape(0).records() == records
        assert drive.position().block == len(records)


def test_write_cdb_matches_the_codec(virtual_library: VirtualLibrary) -> None:
    """The WRITE the drive sends is the codec's WRITE(6) for the data (variable mode)."""
    virtual_library.insert(virtual_library.drive_address(0), "CD0001L8")
    mock = _unknown_position(virtual_library.drive_urls(0)[0])
    seen: list[Request] = []
    inner = mock._handler

    def record(req: Request) -> Response:
        seen.append(req)
        return inner(req)

    d = tapepath.TapeDrive(MockTransport(record))
    d.write(b"payload")
    writes = [r for r in seen if r.cdb[0] == Write6.OPCODE]
    assert writes[-1].cdb == Write6.for_data(b"payload").to_bytes()
    assert writes[-1].data_out == b"payload"


def _tgtd_short_reads(records: list[bytes], *, space_back: bool = True) -> MockTransport:
    """A variable-block tape whose READ of a record shorter than the allocation answers
    as tgtd 1.0.85 does: ILI, INFORMATION = allocation - record, and only
    (allocation - record) data bytes when that is fewer than the record."""
    at = [0]

    def handle(req: Request) -> Response:
        op = req.cdb[0]
        if op == 0x1A:  # MODE SENSE(6): variable blocks
            return Response(data=bytes((11, 0, 0, 8)) + bytes(8))
        if op == 0x34:  # READ POSITION: not known (as tgtd)
            return Response(data=PositionShort(bycu=True, lolu=True).to_bytes())
        if op == 0x01:
            at[0] = 0
            return Response()
        if op == 0x11:  # SPACE blocks
            if not space_back:
                return Response(status=2, sense=fixed_sense(SenseKey.ILLEGAL_REQUEST, 0x24, 0))
            count = int.from_bytes(req.cdb[2:5], "big", signed=True)
            at[0] += count
            return Response()
        if op == 0x08:
            alloc = int.from_bytes(req.cdb[2:5], "big")
            rec = records[at[0]]
            at[0] += 1
            if len(rec) == alloc:
                return Response(data=rec)
            residual = alloc - len(rec)
            sense = fixed_sense(SenseKey.NO_SENSE, 0, 0, ili=True, information=residual)
            sent = rec[: min(len(rec), residual)] if residual > 0 else rec[:alloc]
            return Response(status=2, sense=sense, data=sent)
        return Response()

    return MockTransport(handle, url="mock://tgtd-short-read")


class TestCutRecord:
    """A record shorter than the allocation that arrives cut is read again, never returned cut."""

    RECORDS = [b"A" * 2052, b"B" * 100, bytes(range(256)) * 12]

    def test_read_again_whole(self) -> None:
        """read(4096) of 2052- and 3072-byte records returns them whole; short ones as before."""
        mock = _tgtd_short_reads(self.RECORDS)
        d = tapepath.TapeDrive(mock)
        d.rewind()
        assert [d.read(4096) for _ in self.RECORDS] == self.RECORDS
        spaces = [r.cdb for r in mock.requests if r.cdb[0] == 0x11]
        assert len(spaces) == 2  # one SPACE -1 per cut record
        assert d.position().block == 3

    def test_readinto_again_whole(self) -> None:
        """readinto gets the whole record into the buffer."""
        d = tapepath.TapeDrive(_tgtd_short_reads(self.RECORDS))
        d.rewind()
        buf = bytearray(4096)
        assert d.readinto(buf) == 2052
        assert bytes(buf[:2052]) == self.RECORDS[0]

    def test_no_space_back_raises(self) -> None:
        """When the drive cannot space back, IncorrectLengthError names the record length."""
        d = tapepath.TapeDrive(_tgtd_short_reads(self.RECORDS, space_back=False))
        d.rewind()
        with pytest.raises(IncorrectLengthError, match="2052 bytes") as info:
            d.read(4096)
        assert info.value.record_length == 2052
        assert info.value.data == b""


class TestCutRecordAnswers:
    """Whatever a drive sends for a short record and its re-read, read() returns the
    whole record or raises a typed error: never fewer bytes than the sense implies."""

    @settings(max_examples=60, deadline=None)
    @given(
        st.integers(1, 2048),
        st.data(),
    )
    def test_whole_or_typed(self, n: int, data: st.DataObject) -> None:
        """read(n) of a record of at most n bytes: the whole record, or TapepathError."""
        record = data.draw(st.integers(1, n), label="record")
        arrived = data.draw(st.integers(0, n), label="arrived")
        again = data.draw(
            st.one_of(
                st.binary(max_size=n).map(lambda b: Response(data=b)),
                st.binary(max_size=40).map(lambda s: Response(status=2, sense=s)),
                st.just(Response(status=0x22)),
            ),
            label="re-read answer",
        )
        reads = [0]

        def handle(req: Request) -> Response:
            op = req.cdb[0]
            if op == 0x1A:
                return Response(data=bytes((11, 0, 0, 8)) + bytes(8))
            if op == 0x34:
                return Response(data=PositionShort(bycu=True, lolu=True).to_bytes())
            if op == 0x08:
                reads[0] += 1
                if reads[0] > 1:
                    return again
                sense = fixed_sense(SenseKey.NO_SENSE, ili=True, information=n - record)
                return Response(status=2, sense=sense, data=bytes(arrived))
            return Response()

        d = tapepath.TapeDrive(MockTransport(handle, url="mock://cut-fuzz"), timeout=0.005)
        try:
            got = d.read(n)
        except TapepathError:
            return
        if record == n:
            assert len(got) <= n
        else:
            assert len(got) == record
