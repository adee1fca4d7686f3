"""The SSC drive model: records, filemarks, EOD, positioning and the sense it raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.testing._check import Check
from tapepath.testing.drive import DriveModel
from tapepath.testing.tape_image import FILEMARK, Cartridge, TapeImage, pad_volume_tag


def loaded(objects: list[bytes | object] | None = None, **img: int) -> DriveModel:
    d = DriveModel(serial="S1")
    d.insert(Cartridge("A00001L8", TapeImage(list(objects or []), **img)))  # type: ignore[arg-type]
    return d


def check(exc: pytest.ExceptionInfo[Check]) -> tuple[int, int, int]:
    return (exc.value.key, exc.value.asc, exc.value.ascq)


class TestTapeImage:
    """Records, filemarks and the used-bytes account."""

    def test_truncate_discards_after_position(self) -> None:
        """Writing in the middle drops what followed."""
        img = TapeImage([b"a", FILEMARK, b"bc"])
        img.truncate(1)
        assert img.objects == [b"a"]
        assert img.used == 1

    def test_files_split_at_filemarks(self) -> None:
        """files() groups records between filemarks."""
        img = TapeImage([b"a", b"b", FILEMARK, FILEMARK, b"c"])
        assert img.files() == [[b"a", b"b"], [], [b"c"]]
        assert img.file_number(4) == 2

    def test_volume_tag_is_36_bytes_space_padded(self) -> None:
        """The primary volume tag: 32 bytes padded with spaces, then 4 zero bytes."""
        tag = Cartridge("ABC123L8").volume_tag
        assert len(tag) == 36
        assert tag[:32] == b"ABC123L8" + b" " * 24
        assert tag[32:] == bytes(4)

    @pytest.mark.parametrize("bad", ["", "x" * 33, "caf\u00e9", "tab\t"])
    def test_bad_barcodes_rejected(self, bad: str) -> None:
        """Barcodes must be 1..32 printable ASCII characters."""
        with pytest.raises(ValueError, match="barcode"):
            pad_volume_tag(bad)


class TestReadWrite:
    """READ and WRITE in variable and fixed block mode."""

    def test_variable_write_then_read(self) -> None:
        """A record reads back as written, the position advancing by one each."""
        d = loaded()
        d.write(b"hello", fixed=False, count=1)
        d.write(b"world!", fixed=False, count=1)
        assert d.position == 2
        d.rewind()
        assert d.read(5, fixed=False, sili=False) == b"hello"
        assert d.read(6, fixed=False, sili=False) == b"world!"

    def test_short_record_sets_ili_with_positive_residual(self) -> None:
        """Asking for more than the record: ILI, INFORMATION = requested - actual."""
        d = loaded([b"abc"])
        with pytest.raises(Check) as exc:
            d.read(10, fixed=False, sili=False)
        assert exc.value.ili
        assert exc.value.information == 7
        assert exc.value.data == b"abc"
        assert d.position == 1

    def test_sili_suppresses_short_record_ili(self) -> None:
        """With SILI a short record is no error."""
        d = loaded([b"abc"])
        assert d.read(10, fixed=False, sili=True) == b"abc"

    def test_long_record_sets_ili_with_negative_residual(self) -> None:
        """Asking for less than the record: the data is cut, INFORMATION is negative."""
        d = loaded([b"abcdef"])
        with pytest.raises(Check) as exc:
            d.read(4, fixed=False, sili=True)
        assert exc.value.ili
        assert exc.value.information == -2
        assert exc.value.data == b"abcd"

    def test_filemark_read(self) -> None:
        """Reading a filemark: NO SENSE 00/01 with FILEMARK, positioned after it."""
        d = loaded([FILEMARK, b"x"])
        with pytest.raises(Check) as exc:
            d.read(100, fixed=False, sili=False)
        assert check(exc) == (0, 0, 1)
        assert exc.value.filemark
        assert exc.value.information == 100
        assert d.position == 1

    def test_blank_check_at_eod(self) -> None:
        """Reading at end of data: BLANK CHECK 00/05."""
        d = loaded([b"x"])
        d.space_eod()
        with pytest.raises(Check) as exc:
            d.read(10, fixed=False, sili=False)
        assert check(exc) == (8, 0, 5)

    def test_write_in_middle_truncates(self) -> None:
        """A write after rewinding becomes the new end of data."""
        d = loaded([b"a", b"b", b"c"])
        d.locate(1)
        d.write(b"Z", fixed=False, count=1)
        assert d.cartridge is not None
        assert d.cartridge.image.objects == [b"a", b"Z"]

    def test_fixed_mode_blocks(self) -> None:
        """Fixed mode writes count blocks of block_size and reads them back."""
        d = loaded()
        d.block_size = 4
        d.write(b"aaaabbbbcccc", fixed=True, count=3)
        assert d.position == 3
        d.rewind()
        assert d.read(2, fixed=True, sili=False) == b"aaaabbbb"

    def test_fixed_read_stops_at_filemark_with_residual_count(self) -> None:
        """Fixed read across a filemark returns whole blocks and the blocks not read."""
        d = loaded([b"aaaa", FILEMARK])
        d.block_size = 4
        with pytest.raises(Check) as exc:
            d.read(3, fixed=True, sili=False)
        assert exc.value.filemark
        assert exc.value.information == 2
        assert exc.value.data == b"aaaa"

    def test_fixed_write_without_block_size_is_illegal(self) -> None:
        """FIXED=1 in variable mode is ILLEGAL REQUEST 24/00."""
        d = loaded()
        with pytest.raises(Check) as exc:
            d.write(b"abcd", fixed=True, count=1)
        assert check(exc) == (5, 0x24, 0)

    def test_early_warning_and_overflow(self) -> None:
        """Near the end a write succeeds with EOM 00/02; past it VOLUME OVERFLOW."""
        d = loaded(capacity=100, early_warning=30)
        d.write(b"x" * 60, fixed=False, count=1)
        with pytest.raises(Check) as exc:
            d.write(b"y" * 20, fixed=False, count=1)
        assert check(exc) == (0, 0, 2)
        assert exc.value.eom
        assert d.position == 2
        with pytest.raises(Check) as exc2:
            d.write(b"z" * 40, fixed=False, count=1)
        assert check(exc2) == (0xD, 0, 2)
        assert d.position == 2

    def test_write_protected(self) -> None:
        """A write-protected cartridge gives DATA PROTECT 27/00."""
        d = loaded()
        assert d.cartridge is not None
        d.cartridge.write_protected = True
        with pytest.raises(Check) as exc:
            d.write(b"a", fixed=False, count=1)
        assert check(exc) == (7, 0x27, 0)

    def test_no_medium(self) -> None:
        """Without a cartridge: NOT READY 3A/00."""
        d = DriveModel(serial="S")
        with pytest.raises(Check) as exc:
            d.read_position()
        assert check(exc) == (2, 0x3A, 0)


class TestMotion:
    """SPACE, LOCATE and READ POSITION."""

    def test_space_blocks_stops_after_filemark(self) -> None:
        """Spacing forward over a filemark stops past it with the residual count."""
        d = loaded([b"a", FILEMARK, b"b"])
        with pytest.raises(Check) as exc:
            d.space_blocks(5)
        assert exc.value.filemark
        assert exc.value.information == 4
        assert d.position == 2

    def test_space_blocks_backward_stops_before_filemark(self) -> None:
        """Spacing back onto a filemark stops on its BOP side, with the residual count."""
        d = loaded([b"a", FILEMARK, b"b", b"c"])
        d.space_eod()
        with pytest.raises(Check) as exc:
            d.space_blocks(-3)
        assert exc.value.information == 1
        assert d.position == 1

    def test_space_back_to_bop(self) -> None:
        """Spacing back past BOP: EOM with 00/04 and the residual."""
        d = loaded([b"a", b"b"])
        d.space_eod()
        with pytest.raises(Check) as exc:
            d.space_blocks(-5)
        assert check(exc) == (0, 0, 4)
        assert exc.value.information == 3
        assert d.position == 0

    def test_space_filemarks(self) -> None:
        """SPACE 2 filemarks lands after the second; back 1 lands before the last passed."""
        d = loaded([b"a", FILEMARK, b"b", FILEMARK, b"c"])
        d.space_filemarks(2)
        assert d.position == 4
        d.space_filemarks(-1)
        assert d.position == 3

    def test_space_filemarks_to_eod(self) -> None:
        """More filemarks than exist: BLANK CHECK at EOD with the count left."""
        d = loaded([FILEMARK, b"a"])
        with pytest.raises(Check) as exc:
            d.space_filemarks(3)
        assert check(exc) == (8, 0, 5)
        assert exc.value.information == 2
        assert d.position == 2

    def test_locate_and_position(self) -> None:
        """LOCATE goes to a logical object; READ POSITION reports block and file."""
        d = loaded([b"a", FILEMARK, b"b", b"c"])
        d.locate(3)
        pos = d.read_position()
        assert (pos.block, pos.file, pos.bop, pos.eod) == (3, 1, False, False)
        d.locate(0)
        assert d.read_position().bop

    def test_locate_beyond_eod(self) -> None:
        """LOCATE past end of data: BLANK CHECK, positioned at EOD."""
        d = loaded([b"a"])
        with pytest.raises(Check) as exc:
            d.locate(9)
        assert check(exc) == (8, 0, 5)
        assert d.position == 1

    def test_unload_prevented(self) -> None:
        """UNLOAD while PREVENT is set: 53/02."""
        d = loaded()
        d.prevent = True
        with pytest.raises(Check) as exc:
            d.unload()
        assert check(exc) == (5, 0x53, 2)


ops = st.one_of(
    st.tuples(st.just("write"), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("fm"), st.integers(0, 3)),
    st.tuples(st.just("locate"), st.integers(0, 40)),
    st.tuples(st.just("rewind"), st.none()),
    st.tuples(st.just("read"), st.integers(1, 10)),
    st.tuples(st.just("eod"), st.none()),
)


class TestAgainstSimpleModel:
    """Random sequences: tape content and position equal a list-and-index model."""

    @given(st.lists(ops, max_size=40))
    def test_content_and_position(self, seq: list[tuple[str, object]]) -> None:
        """After every step the drive agrees with a plain Python list and an index."""
        d = loaded()
        model: list[bytes | None] = []
        pos = 0
        for op, arg in seq:
            try:
                if op == "write":
                    assert isinstance(arg, bytes)
                    d.write(arg, fixed=False, count=1)
                elif op == "fm":
                    assert isinstance(arg, int)
                    d.write_filemarks(arg)
                elif op == "locate":
                    assert isinstance(arg, int)
                    d.locate(arg)
                elif op == "rewind":
                    d.rewind()
                elif op == "read":
                    assert isinstance(arg, int)
                    d.read(arg, fixed=False, sili=True)
                else:
                    d.space_eod()
            except Check:
                pass
            if op == "write":
                assert isinstance(arg, bytes)
                model[pos:] = [arg]
                pos += 1
            elif op == "fm":
                assert isinstance(arg, int)
                if arg:
                    model[pos:] = [None] * arg
                    pos += arg
            elif op == "locate":
                assert isinstance(arg, int)
                pos = min(arg, len(model))
            elif op == "rewind":
                pos = 0
            elif op == "read":
                if pos < len(model):
                    pos += 1
            else:
                pos = len(model)
            assert d.cartridge is not None
            got = [None if o is FILEMARK else o for o in d.cartridge.image.objects]
            assert got == model
            assert d.position == pos
            assert d.read_position().file == model[:pos].count(None)
