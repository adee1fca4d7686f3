"""The T10 ASC/ASCQ table, its ranges and fallbacks, and the generator."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.scsi.asc import AscKind, asc_description, asc_kind, asc_lookup
from tapepath.scsi.asc_data import ASC_RANGE_TEXT, ASC_TEXT, ENTRY_COUNT

ROOT = Path(__file__).resolve().parents[2]


def load_generator() -> ModuleType:
    """Import scripts/gen_asc_table.py as a module."""
    spec = importlib.util.spec_from_file_location(
        "gen_asc_table", ROOT / "scripts/gen_asc_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_asc_table"] = module
    spec.loader.exec_module(module)
    return module


class TestTable:
    """Known T10 entries are present with their standard names."""

    @pytest.mark.parametrize(
        ("asc", "ascq", "text"),
        [
            (0x00, 0x00, "No additional sense information"),
            (0x00, 0x01, "Filemark detected"),
            (0x04, 0x0A, "Logical unit not accessible, asymmetric access state transition"),
            (0x04, 0x0B, "Logical unit not accessible, target port in standby state"),
            (0x04, 0x0C, "Logical unit not accessible, target port in unavailable state"),
            (0x04, 0x12, "Logical unit not ready, offline"),
            (0x24, 0x00, "Invalid field in CDB"),
            (0x29, 0x07, "I_T nexus loss occurred"),
            (0x2A, 0x06, "Asymmetric access state changed"),
            (0x3A, 0x00, "Medium not present"),
            (0x3B, 0x0D, "Medium destination element full"),
            (0x3F, 0x0E, "Reported LUNs data has changed"),
            (0x53, 0x02, "Medium removal prevented"),
        ],
    )
    def test_known_entries(self, asc: int, ascq: int, text: str) -> None:
        """Spot checks against the standard's wording."""
        assert asc_description(asc, ascq) == text
        assert asc_kind(asc, ascq) is AscKind.STANDARD

    def test_size(self) -> None:
        """The whole list is there, not a hand-picked subset."""
        assert len(ASC_TEXT) == ENTRY_COUNT
        assert ENTRY_COUNT > 700
        assert set(ASC_RANGE_TEXT) == {0x40, 0x4D, 0x70}

    def test_texts_are_clean(self) -> None:
        """No device-type letters leaked into texts; none empty; sentence case."""
        for key, text in ASC_TEXT.items():
            assert text, hex(key)
            assert text == text.strip(), hex(key)
            assert "  " not in text, hex(key)
            assert text[0].isupper() or text[0].isdigit() or text.startswith("iSCSI"), hex(key)


class TestRangesAndFallbacks:
    """Parameterised ranges, vendor-specific codes and unknown codes."""

    def test_diagnostic_failure_on_component(self) -> None:
        """40h/80h-FFh names the component; 40h/00h is its own entry."""
        assert asc_description(0x40, 0x85) == "Diagnostic failure on component 85h"
        assert asc_kind(0x40, 0xFF) is AscKind.RANGE
        assert asc_description(0x40, 0x00) == "RAM failure (should use 40 NN)"

    def test_below_range_is_unknown(self) -> None:
        """40h/01h-7Fh (other than assigned ones) is not in the range."""
        assert asc_lookup(0x40, 0x05) is None
        assert asc_kind(0x40, 0x05) is AscKind.UNKNOWN

    def test_tagged_overlapped_and_decompression(self) -> None:
        """4Dh/NN and 70h/NN carry their parameter."""
        assert asc_description(0x4D, 0x12) == "Tagged overlapped commands (task tag 12h)"
        assert asc_description(0x70, 0x03) == "Decompression exception short algorithm ID of 03h"
        assert asc_description(0x71, 0x00) == "Decompression exception long algorithm ID"

    def test_vendor_asc(self) -> None:
        """ASC 80h-FFh is vendor specific."""
        assert asc_description(0x99, 0x01) == "Vendor specific ASC 0x99, ASCQ 0x01"
        assert asc_kind(0x80, 0x00) is AscKind.VENDOR

    def test_vendor_ascq(self) -> None:
        """ASCQ 80h-FFh under a standard ASC is vendor specific."""
        assert asc_description(0x3B, 0x90) == "Vendor specific ASCQ 0x90 for ASC 0x3B"
        assert asc_kind(0x3B, 0x90) is AscKind.VENDOR

    def test_unknown(self) -> None:
        """A reserved code gets the fallback text."""
        assert asc_description(0x31, 0x0F) == "ASC/ASCQ 0x31 0x0F (unknown)"
        assert asc_kind(0x31, 0x0F) is AscKind.UNKNOWN

    @pytest.mark.parametrize(("asc", "ascq"), [(-1, 0), (0, 256), (256, 0)])
    def test_out_of_range_arguments(self, asc: int, ascq: int) -> None:
        """Values that are not bytes are a caller bug."""
        with pytest.raises(ValueError, match="asc"):
            asc_description(asc, ascq)

    @given(st.integers(0, 255), st.integers(0, 255))
    def test_every_pair_has_a_text(self, asc: int, ascq: int) -> None:
        """All 65,536 pairs resolve to a non-empty text consistent with their kind."""
        text = asc_description(asc, ascq)
        kind = asc_kind(asc, ascq)
        assert text
        if kind is AscKind.UNKNOWN:
            assert text.endswith("(unknown)")
        elif kind is AscKind.VENDOR:
            assert text.startswith("Vendor specific")
        else:
            assert text == asc_lookup(asc, ascq)


SAMPLE = """File: ASC-NUM.TXT
ASC/ASCQ DZTPROMAEBKVF  Description
-------- -------------  ----------------------------------------------------
00h/00h  DZTPROMAEBKVF  NO ADDITIONAL SENSE INFORMATION
0Fh/00h
24h/00h  DZTPROMAEBKVF  INVALID FIELD IN CDB
29h/07h  DZTPROMAEBKVF  I_T NEXUS LOSS OCCURRED
40h/NNh  DZTPROMAEBKVF  DIAGNOSTIC FAILURE ON COMPONENT NN (80h-FFh)
"""


class TestGenerator:
    """scripts/gen_asc_table.py parses T10's layout and renders importable Python."""

    def test_parse(self) -> None:
        """Descriptions start at the header's column; reserved lines are skipped."""
        gen = load_generator()
        exact, ranges = gen.parse(SAMPLE.splitlines())
        assert exact[0x0000] == "No additional sense information"
        assert exact[0x2400] == "Invalid field in CDB"
        assert exact[0x2907] == "I_T nexus loss occurred"
        assert 0x0F00 not in exact
        assert ranges == {0x40: "Diagnostic failure on component NN (80h-FFh)"}

    def test_sentence_case_keeps_acronyms(self) -> None:
        """Acronyms and hex bytes survive lower-casing."""
        gen = load_generator()
        assert gen.sentence_case("ISCSI IP ADDRESS CHANGED") == "iSCSI IP address changed"
        assert gen.sentence_case("LUN 80H-FFH") == "LUN 80h-FFh"

    def test_render_round_trip(self, tmp_path: Path) -> None:
        """The rendered module defines the tables it was given."""
        gen = load_generator()
        source = tmp_path / "asc-num.txt"
        filler = "".join(
            f"{0x50 + i // 256:02X}h/{i % 256:02X}h  {'D':13}  FILLER {i}\n" for i in range(600)
        )
        source.write_text(SAMPLE + filler)
        out = tmp_path / "asc_data.py"
        assert gen.main([str(source), str(out)]) == 0
        namespace: dict[str, object] = {}
        exec(compile(out.read_text(), str(out), "exec"), namespace)
        assert namespace["ASC_TEXT"][0x2400] == "Invalid field in CDB"  # type: ignore[index]
        assert namespace["ENTRY_COUNT"] == len(namespace["ASC_TEXT"])  # type: ignore[arg-type]

    def test_refuses_a_file_that_is_not_the_list(self, tmp_path: Path) -> None:
        """A file with too few entries is refused rather than shrinking the table."""
        gen = load_generator()
        source = tmp_path / "asc-num.txt"
        source.write_text(SAMPLE)
        assert gen.main([str(source), str(tmp_path / "out.py")]) == 1
