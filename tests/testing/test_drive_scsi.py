"""A drive through sim:// paths: SSC commands, their sense, residuals and data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tapepath.scsi.attributes import AttributeList, ReadAttribute
from tapepath.scsi.density import DensitySupport, ReportDensitySupport
from tapepath.scsi.log import LogSense, TapeAlert
from tapepath.scsi.mode import BlockDescriptor, ModeParameters, ModeSelect6, ModeSense6
from tapepath.scsi.position import (
    PositionExtended,
    PositionLong,
    PositionShort,
    ReadPosition,
)
from tapepath.scsi.sense import decode_sense
from tapepath.scsi.tape import (
    BlockLimits,
    LoadUnload,
    Locate10,
    Locate16,
    Read6,
    ReadBlockLimits,
    Rewind,
    Space6,
    Space16,
    SpaceCode,
    Write6,
    WriteFilemarks6,
)
from tapepath.scsi.tape_pages import DataCompressionPage
from tapepath.testing import VirtualLibrary
from tapepath.transport import Transport
from tests.testing.helpers import ready, sense_of


@pytest.fixture
def lib() -> Iterator[VirtualLibrary]:
    with VirtualLibrary("drv") as lib:
        lib.insert(lib.drive_address(0), "DR0001L8")
        yield lib


@pytest.fixture
def t(lib: VirtualLibrary) -> Transport:
    return ready(lib.drive_urls(0)[0])


def write(t: Transport, data: bytes) -> None:
    r = t.execute(Write6.for_data(data).to_bytes(), data_out=data)
    assert r.ok, r


def fm(t: Transport, n: int = 1) -> None:
    assert t.execute(WriteFilemarks6(n).to_bytes()).ok


class TestReadWrite:
    """WRITE, READ and WRITE FILEMARKS."""

    def test_round_trip(self, lib: VirtualLibrary, t: Transport) -> None:
        """Records and filemarks land on the tape image and read back."""
        write(t, b"one")
        write(t, b"two")
        fm(t)
        image = lib.tape(0)
        assert image is not None
        assert image.files() == [[b"one", b"two"], []]
        assert t.execute(Rewind().to_bytes()).ok
        r = t.execute(Read6(3).to_bytes(), data_in_len=3)
        assert r.ok
        assert r.data == b"one"

    def test_ili_residual_in_sense(self, t: Transport) -> None:
        """A short record: CHECK CONDITION with ILI, INFORMATION = residual, data kept."""
        write(t, b"abc")
        t.execute(Rewind().to_bytes())
        r = t.execute(Read6(8).to_bytes(), data_in_len=8)
        s = decode_sense(r.sense)
        assert s.ili
        assert s.information == 5
        assert r.data == b"abc"
        assert r.residual == 5

    def test_filemark_and_blank_check(self, t: Transport) -> None:
        """A filemark reads as 00/01 FILEMARK; end of data as BLANK CHECK 00/05."""
        fm(t)
        t.execute(Rewind().to_bytes())
        r = t.execute(Read6(10).to_bytes(), data_in_len=10)
        assert sense_of(r) == (0, 0, 1)
        assert decode_sense(r.sense).filemark
        r = t.execute(Read6(10).to_bytes(), data_in_len=10)
        assert sense_of(r) == (8, 0, 5)

    def test_fixed_block_mode(self, lib: VirtualLibrary, t: Transport) -> None:
        """MODE SELECT sets a block length; fixed WRITE then writes that many blocks."""
        params = ModeParameters(block_descriptors=(BlockDescriptor(0, 0, 512),))
        cmd, data = ModeSelect6.for_parameters(params)
        assert t.execute(cmd.to_bytes(), data_out=data).ok
        assert lib.drive(0).block_size == 512
        payload = bytes(range(256)) * 4
        w = Write6(2, fixed=True, block_length=512)
        assert t.execute(w.to_bytes(), data_out=payload).ok
        assert lib.tape(0).records() == [payload[:512], payload[512:]]  # type: ignore[union-attr]
        r = t.execute(ModeSense6(page_code=0).to_bytes(), data_in_len=255)
        sensed = ModeParameters.from_bytes(r.data)
        assert sensed.block_descriptors[0].block_length == 512

    def test_mode_select_notifies_other_nexus(self, lib: VirtualLibrary, t: Transport) -> None:
        """Changing mode parameters posts 2A/01 on the other nexuses."""
        other = ready(lib.drive_urls(0)[1])
        page = DataCompressionPage(dce=False).to_mode_page()
        cmd, data = ModeSelect6.for_parameters(ModeParameters(pages=(page,)))
        assert t.execute(cmd.to_bytes(), data_out=data).ok
        assert lib.drive(0).compression is False
        assert sense_of(other.execute(bytes(6))) == (6, 0x2A, 0x01)

    def test_compression_page(self, t: Transport) -> None:
        """MODE SENSE page 0Fh reports DCE and DCC."""
        r = t.execute(ModeSense6(page_code=0x0F).to_bytes(), data_in_len=255)
        page = ModeParameters.from_bytes(r.data).page(0x0F)
        assert page is not None
        dc = DataCompressionPage.from_mode_page(page)
        assert dc.dce
        assert dc.dcc

    def test_no_tape(self, lib: VirtualLibrary) -> None:
        """An empty drive: TEST UNIT READY and READ give NOT READY 3A/00."""
        e = ready(lib.drive_urls(1)[0])
        assert sense_of(e.execute(bytes(6))) == (2, 0x3A, 0)
        assert sense_of(e.execute(Read6(10).to_bytes(), data_in_len=10)) == (2, 0x3A, 0)


class TestPositioning:
    """READ POSITION in all forms, SPACE and LOCATE."""

    @pytest.mark.parametrize("form", ["short", "long", "extended"])
    def test_read_position_forms(self, t: Transport, form: str) -> None:
        """Every form reports the same block after two records and a filemark."""
        write(t, b"a")
        write(t, b"b")
        fm(t)
        cmd = getattr(ReadPosition, form)()
        r = t.execute(cmd.to_bytes(), data_in_len=32)
        assert r.ok
        pos = {"short": PositionShort, "long": PositionLong, "extended": PositionExtended}[
            form
        ].from_bytes(r.data)
        assert pos.block == 3
        assert not pos.bop
        if isinstance(pos, PositionLong):
            assert pos.logical_file_identifier == 1

    def test_space_and_locate(self, t: Transport) -> None:
        """SPACE over filemarks and to EOD, LOCATE(10) and LOCATE(16) by file."""
        for rec in (b"a", b"b"):
            write(t, rec)
            fm(t)
        write(t, b"c")
        t.execute(Rewind().to_bytes())
        assert t.execute(Space6(SpaceCode.FILEMARKS, 2).to_bytes()).ok
        r = t.execute(Read6(1).to_bytes(), data_in_len=1)
        assert r.data == b"c"
        assert t.execute(Space16(SpaceCode.END_OF_DATA, 0).to_bytes()).ok
        assert t.execute(Locate10(block_address=1).to_bytes()).ok
        r = t.execute(Read6(1).to_bytes(), data_in_len=1)
        assert sense_of(r) == (0, 0, 1)
        assert t.execute(Locate16(logical_identifier=1, dest_type=1).to_bytes()).ok
        r = t.execute(Read6(1).to_bytes(), data_in_len=1)
        assert r.data == b"b"
        r = t.execute(Space6(SpaceCode.BLOCKS, 5).to_bytes())
        assert sense_of(r) == (0, 0, 1)
        assert decode_sense(r.sense).information == 5

    def test_locate_past_eod(self, t: Transport) -> None:
        """LOCATE beyond end of data: BLANK CHECK."""
        r = t.execute(Locate10(block_address=50).to_bytes())
        assert sense_of(r) == (8, 0, 5)


class TestInformation:
    """READ BLOCK LIMITS, REPORT DENSITY SUPPORT, LOG SENSE TapeAlert, LOAD/UNLOAD."""

    def test_block_limits(self, t: Transport) -> None:
        """Variable blocks from 1 byte up to 1 MiB."""
        r = t.execute(ReadBlockLimits().to_bytes(), data_in_len=6)
        lim = BlockLimits.from_bytes(r.data)
        assert (lim.min_block_length, lim.max_block_length) == (1, 1 << 20)

    def test_density(self, t: Transport) -> None:
        """One default, writable density."""
        r = t.execute(ReportDensitySupport().to_bytes(), data_in_len=4096)
        ds = DensitySupport.from_bytes(r.data)
        (d,) = ds.densities
        assert d.deflt
        assert d.wrtok

    def test_tapealert_cleared_by_reading(self, lib: VirtualLibrary, t: Transport) -> None:
        """Flags set on the model are reported once."""
        lib.drive(0).tape_alerts.update({3, 20})
        cmd = LogSense(page_code=0x2E, allocation_length=4096)
        r = t.execute(cmd.to_bytes(), data_in_len=4096)
        assert TapeAlert.from_bytes(r.data).flags == {3, 20}
        r = t.execute(cmd.to_bytes(), data_in_len=4096)
        assert TapeAlert.from_bytes(r.data).flags == frozenset()

    def test_unload_and_load(self, lib: VirtualLibrary, t: Transport) -> None:
        """UNLOAD makes the drive not ready; LOAD brings the tape back at BOP."""
        write(t, b"x")
        assert t.execute(LoadUnload(load=False).to_bytes()).ok
        assert sense_of(t.execute(bytes(6))) == (2, 0x3A, 0)
        assert t.execute(LoadUnload(load=True).to_bytes()).ok
        assert t.execute(bytes(6)).ok
        assert lib.position(0) is not None
        assert lib.position(0).block == 0  # type: ignore[union-attr]

    def test_read_attribute_barcode(self, t: Transport) -> None:
        """READ ATTRIBUTE returns the cartridge's barcode (0806h)."""
        cmd = ReadAttribute(allocation_length=4096)
        r = t.execute(cmd.to_bytes(), data_in_len=4096)
        assert r.ok, r
        attrs = AttributeList.from_bytes(r.data)
        assert attrs.barcode == "DR0001L8"
        assert attrs.get(0x0001) is not None

    def test_huge_residual_leaves_information_invalid(self, t: Transport) -> None:
        """A residual beyond 32 bits cannot be reported: VALID stays clear."""
        r = t.execute(Space16(SpaceCode.BLOCKS, 1 << 40).to_bytes())
        assert sense_of(r) == (8, 0, 5)
        assert decode_sense(r.sense).information is None

    def test_internal_error_is_a_check_condition(
        self, lib: VirtualLibrary, t: Transport, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bug in a handler answers HARDWARE ERROR 44/00 instead of raising."""

        def broken(*_args: object) -> bytes:
            raise RuntimeError("boom")

        front = lib._fronts["drive0"]
        monkeypatch.setitem(front.table, 0x05, (broken, *front.table[0x05][1:]))
        assert sense_of(t.execute(ReadBlockLimits().to_bytes(), data_in_len=6)) == (4, 0x44, 0)

    def test_unknown_opcode(self, t: Transport) -> None:
        """An opcode the drive does not have: 20/00."""
        assert sense_of(t.execute(bytes((0xE7, 0, 0, 0, 0, 0)))) == (5, 0x20, 0)
