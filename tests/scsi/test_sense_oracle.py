"""External oracle: tapepath's sense decoding against sg3_utils' ``sg_decode_sense``.

The corpus (built here, deterministically) holds hand-made buffers for every sense key
specific format, deferred errors, vendor, range and unknown codes, truncated data and
lying lengths, plus buffers generated at random with a fixed seed, in both formats.
``sg_decode_sense`` decodes one buffer per run, so the whole corpus goes through one
``sh`` process that runs it once per line of hex on stdin (well under a second).

Compared: format, deferred, sense key, the ASC/ASCQ text (or its vendor/unknown
nature, or the range parameter), INFORMATION (and its VALID bit), FILEMARK/EOM/ILI,
the sense-key-specific fields and the FRU code.

Known, deliberate differences (T10's list is newer than sg3_utils 1.21's table):
T10 lists 20h/05h, 24h/02h and 24h/03h as "Obsolete" where sg3_utils keeps the old
names with "(obs)"; sg3_utils keeps SCSI-2's ranges 40h/01h-7Fh "Ram failure [0xNN]"
and 42h/NN "Power-on or self-test failure [0xNN]", which T10's list no longer has.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from dataclasses import dataclass

import pytest

from tapepath.scsi.asc import AscKind, asc_kind
from tapepath.scsi.asc_data import ASC_TEXT
from tapepath.scsi.sense import (
    ActualRetryCount,
    FieldPointer,
    ProgressIndication,
    SegmentPointer,
    Sense,
    SenseKey,
    UnitAttentionQueueOverflow,
    decode_sense,
    descriptor_sense,
    fixed_sense,
)

SEED = 20261122
RANDOM_COUNT = 320
SEPARATOR = "@@@ end of buffer @@@"


def run_oracle(buffers: list[bytes]) -> list[str]:
    """Decode every buffer with sg_decode_sense in one shell process; one text each."""
    tool = shutil.which("sg_decode_sense")
    assert tool is not None
    script = f'while IFS= read -r line; do "{tool}" $line; echo "{SEPARATOR}"; done'
    stdin = "".join(buf.hex(" ") + "\n" for buf in buffers)
    proc = subprocess.run(
        ["sh", "-c", script], input=stdin, capture_output=True, text=True, timeout=60, check=True
    )
    outputs = proc.stdout.split(SEPARATOR + "\n")
    assert outputs[-1] == ""
    assert len(outputs) - 1 == len(buffers)
    return outputs[:-1]


# --------------------------------------------------------------------------------------
# The corpus.


def handmade() -> list[bytes]:
    """Buffers chosen for coverage of each decoding branch."""
    h = bytes.fromhex
    return [
        fixed_sense(SenseKey.NOT_READY, 0x04, 0x01, sks=ProgressIndication(0x4000)),
        fixed_sense(SenseKey.NO_SENSE, 0, 0, sks=ProgressIndication(0xFFFF)),
        fixed_sense(SenseKey.ILLEGAL_REQUEST, 0x24, 0, sks=FieldPointer(True, True, 7, 0xFFF0)),
        fixed_sense(SenseKey.ILLEGAL_REQUEST, 0x26, 0, sks=FieldPointer(False, False, 0, 2)),
        fixed_sense(SenseKey.MEDIUM_ERROR, 0x11, 0, information=256, sks=ActualRetryCount(5)),
        fixed_sense(SenseKey.RECOVERED_ERROR, 0x17, 0x01, sks=ActualRetryCount(7)),
        fixed_sense(SenseKey.HARDWARE_ERROR, 0x44, 0x00, sks=ActualRetryCount(0x1234)),
        fixed_sense(SenseKey.COPY_ABORTED, 0x0D, 0, sks=SegmentPointer(True, True, 1, 16)),
        fixed_sense(SenseKey.COPY_ABORTED, 0x0D, 1, sks=SegmentPointer(False, False, 0, 3)),
        fixed_sense(SenseKey.UNIT_ATTENTION, 0x29, 0, sks=UnitAttentionQueueOverflow(True)),
        fixed_sense(SenseKey.UNIT_ATTENTION, 0x29, 0, sks=UnitAttentionQueueOverflow(False)),
        fixed_sense(SenseKey.MEDIUM_ERROR, 0x0C, 0x00, deferred=True, information=42),
        fixed_sense(SenseKey.NO_SENSE, 0, 1, filemark=True, information=1),
        fixed_sense(SenseKey.NO_SENSE, 0, 0, ili=True, information=-16),
        fixed_sense(SenseKey.VOLUME_OVERFLOW, 0, 2, eom=True, information=3),
        fixed_sense(SenseKey.BLANK_CHECK, 0, 5, eom=True),
        fixed_sense(SenseKey.UNIT_ATTENTION, 0x99, 0x01),
        fixed_sense(SenseKey.UNIT_ATTENTION, 0x2A, 0x85),
        fixed_sense(SenseKey.UNIT_ATTENTION, 0x31, 0x0F),
        fixed_sense(SenseKey.HARDWARE_ERROR, 0x40, 0x85),
        fixed_sense(SenseKey.ABORTED_COMMAND, 0x4D, 0x12),
        fixed_sense(SenseKey.MEDIUM_ERROR, 0x70, 0x12),
        fixed_sense(SenseKey.EQUAL, 0, 0, deferred=True, fru=0x22),
        fixed_sense(SenseKey.COMPLETED, 0, 0),
        fixed_sense(SenseKey.VENDOR_SPECIFIC, 0x80, 0x80),
        h("700002000000000a"),  # ends before the ASC
        h("700002000000000a000000000401"),  # ends after the ASCQ
        h("700002000000000a0000000004010080"),  # SKS cut
        h("70004000000000000000000000020000"),  # additional length 0: no ASC
        h("70000200000000ff00000000040100808000"),  # additional length too long
        h("700005000000000600000000240000c00002"),  # SKS beyond the additional length
        descriptor_sense(SenseKey.NOT_READY, 0x04, 0x01, sks=ProgressIndication(0x1234)),
        descriptor_sense(SenseKey.ILLEGAL_REQUEST, 0x24, 0, sks=FieldPointer(True, True, 3, 17)),
        descriptor_sense(SenseKey.COPY_ABORTED, 0x0D, 0, sks=SegmentPointer(False, True, 0, 16)),
        descriptor_sense(SenseKey.MEDIUM_ERROR, 0x11, 0, information=5, fru=7),
        descriptor_sense(SenseKey.NO_SENSE, 0, 0, information=-2, ili=True),
        descriptor_sense(SenseKey.NO_SENSE, 0, 1, filemark=True, eom=True),
        descriptor_sense(SenseKey.MEDIUM_ERROR, 0x11, 0, command_specific=0x12),
        descriptor_sense(SenseKey.UNIT_ATTENTION, 0x2A, 0x06, deferred=True),
        descriptor_sense(SenseKey.NOT_READY, 0x04, 0x01, extra=((0x80, b"\x01\x02\x03\x04"),)),
        h("72070000000000000c000a000000000000000000ff"),  # information, VALID clear
        h("7205240000000008020600 00cb00".replace(" ", "")),  # SKS descriptor cut short
        h("7202040100000030000a80000000000000000005"),  # additional length too long
        h("7200"),
        # Direct-access block device (0Dh): sg3_utils 1.21 wants 28 bytes, SBC says 22.
        h("72031100000000200d1ca000800003090000000000000010000000000000002000" * 6),
        h("720100000000000e090c010400104411552266334051"),  # ATA status return
        h("72000016000000080a06020407008000"),  # another progress indication
        h("72063f01000000080f0600000000003c"),  # microcode activation time
        h("72050000000000060b0401001111"),  # user data segment referral
    ]


def random_buffers(rng: random.Random, count: int) -> list[bytes]:
    """Sense buffers with random keys, codes, flags, fields and formats."""
    standard = sorted(ASC_TEXT)
    sks_makers = {
        SenseKey.ILLEGAL_REQUEST: lambda: FieldPointer(
            rng.random() < 0.5, rng.random() < 0.5, rng.randrange(8), rng.randrange(0x10000)
        ),
        SenseKey.RECOVERED_ERROR: lambda: ActualRetryCount(rng.randrange(0x10000)),
        SenseKey.MEDIUM_ERROR: lambda: ActualRetryCount(rng.randrange(0x10000)),
        SenseKey.HARDWARE_ERROR: lambda: ActualRetryCount(rng.randrange(0x10000)),
        SenseKey.NO_SENSE: lambda: ProgressIndication(rng.randrange(0x10000)),
        SenseKey.NOT_READY: lambda: ProgressIndication(rng.randrange(0x10000)),
        SenseKey.COPY_ABORTED: lambda: SegmentPointer(
            rng.random() < 0.5, rng.random() < 0.5, rng.randrange(8), rng.randrange(0x10000)
        ),
        SenseKey.UNIT_ATTENTION: lambda: UnitAttentionQueueOverflow(rng.random() < 0.5),
    }
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.7:
            code = rng.choice(standard)
            asc, ascq = code >> 8, code & 0xFF
        elif roll < 0.8:
            asc, ascq = rng.randrange(0x80, 0x100), rng.randrange(0x100)
        elif roll < 0.9:
            asc, ascq = rng.choice(standard) >> 8, rng.randrange(0x80, 0x100)
        else:
            asc, ascq = rng.randrange(0x80), rng.randrange(0x80)
        key = SenseKey(rng.randrange(16))
        maker = sks_makers.get(key)
        descriptor = rng.random() < 0.4
        bits = 64 if descriptor else 32
        args = {
            "information": rng.randrange(1 << bits) if rng.random() < 0.5 else None,
            "filemark": rng.random() < 0.2,
            "eom": rng.random() < 0.2,
            "ili": rng.random() < 0.2,
            "deferred": rng.random() < 0.2,
            "sks": maker() if maker is not None and rng.random() < 0.6 else None,
            "fru": rng.randrange(256) if rng.random() < 0.3 else 0,
        }
        if descriptor:
            out.append(descriptor_sense(key, asc, ascq, **args))  # type: ignore[arg-type]
        else:
            out.append(fixed_sense(key, asc, ascq, **args))  # type: ignore[arg-type]
    return out


def corpus() -> list[bytes]:
    """The whole corpus: hand-made then random (seeded)."""
    return handmade() + random_buffers(random.Random(SEED), RANDOM_COUNT)


# --------------------------------------------------------------------------------------
# Reading sg_decode_sense's text.


@dataclass
class OracleView:
    """What sg_decode_sense said about one buffer."""

    descriptor_format: bool
    deferred: bool
    sense_key: str
    asc_line: str | None
    information: int | None
    information_invalid: bool
    filemark: bool
    eom: bool
    ili: bool
    sks: tuple[object, ...] | None
    fru: int | None


HEADER = re.compile(r"^(Fixed|Descriptor) format, (current|<<<deferred>>>); Sense key: (.+)$")
INFO = re.compile(
    r"(?:(Valid=0, )?Info fld=0x([0-9a-f]+))"
    r"|(?:Information: (Valid=0 \(-> vendor specific\) )?0x([0-9a-f]+))"
)
FIELD = re.compile(r"Error in (Command|Data parameters): byte (\d+)(?: bit (\d))?")
SEGMENT = re.compile(
    r"Relative to start of (segment descriptor|parameter list), byte (\d+)(?: bit (\d))?"
)
RETRY = re.compile(r"Actual retry count: (0x[0-9a-f]+|\d+)")  # hex (fixed), decimal (descriptor)
LEGACY = re.compile(r"Additional sense: (?:Ram failure|Power-on or self-test failure) \[0x(\w+)\]")
PROGRESS = re.compile(r"(?<!Another )[Pp]rogress indication: ([\d.]+)%")
OVERFLOW = re.compile(r"overflow flag is (\d)")
FRU = re.compile(r"Field replaceable unit code: (0x[0-9a-f]+|\d+)")


def parse_oracle(text: str) -> OracleView:
    """Turn sg_decode_sense's output for one buffer into comparable fields."""
    lines = text.splitlines()
    head = HEADER.match(lines[0])
    assert head is not None, text
    asc_line = lines[1].strip() if len(lines) > 1 and not lines[1].startswith(" ") else None
    asc_line = asc_line or None
    info = INFO.search(text)
    information = None
    invalid = False
    if info:
        invalid = bool(info.group(1) or info.group(3))
        information = int(info.group(2) or info.group(4), 16)
    sks: tuple[object, ...] | None = None
    if m := FIELD.search(text):
        bit = int(m.group(3)) if m.group(3) is not None else None
        sks = ("field", m.group(1) == "Command", int(m.group(2)), bit)
    elif m := SEGMENT.search(text):
        bit = int(m.group(3)) if m.group(3) is not None else None
        sks = ("segment", m.group(1) == "segment descriptor", int(m.group(2)), bit)
    elif m := RETRY.search(text):
        sks = ("retry", int(m.group(1), 0))
    elif m := PROGRESS.search(text):
        sks = ("progress", float(m.group(1)))
    elif m := OVERFLOW.search(text):
        sks = ("overflow", m.group(1) == "1")
    fru = FRU.search(text)
    return OracleView(
        descriptor_format=head.group(1) == "Descriptor",
        deferred=head.group(2) != "current",
        sense_key=head.group(3),
        asc_line=asc_line,
        information=information,
        information_invalid=invalid,
        filemark=bool(re.search(r"\bFMK\b|FILEMARK", text)),
        eom=bool(re.search(r"\bEOM\b", text)),
        ili=bool(re.search(r"\bILI\b", text)),
        sks=sks,
        fru=int(fru.group(1), 0) if fru else None,
    )


# --------------------------------------------------------------------------------------
# Comparison.


def norm(text: str) -> str:
    """Case and spacing do not matter (sg3_utils writes "cdb", T10 "CDB")."""
    return re.sub(r"\s+", " ", text.lower()).strip()


def key_name(key: int) -> str:
    """sg3_utils' spelling of a sense key."""
    if key == SenseKey.VENDOR_SPECIFIC:
        return "Vendor specific(9)"
    return SenseKey(key).label.title()


def asc_present(buf: bytes, s: Sense) -> bool:
    """Whether the buffer (within its additional length) reaches the ASCQ."""
    if s.descriptor_format:
        return True
    return min(len(buf), 8 + buf[7] if len(buf) >= 8 else 18) >= 14


def check_asc(s: Sense, line: str | None) -> list[str]:
    """Compare the ASC/ASCQ text (or its kind) with the oracle's line."""
    assert line is not None
    kind = asc_kind(s.asc, s.ascq)
    legacy = LEGACY.fullmatch(line)
    if legacy and s.asc in (0x40, 0x42) and kind in (AscKind.UNKNOWN, AscKind.VENDOR):
        ok = int(legacy.group(1), 16) == s.ascq
    elif kind is AscKind.VENDOR:
        ok = "vendor specific" in line.lower()
    elif kind is AscKind.UNKNOWN:
        ok = bool(re.fullmatch(r"ASC=[0-9a-f]{2}, ASCQ=[0-9a-f]{2} \(hex\)", line))
    elif kind is AscKind.RANGE:
        m = re.search(r"(?:\[0x|of 0x)([0-9a-f]+)", line)
        ok = m is not None and int(m.group(1), 16) == s.ascq
    elif s.description == "Obsolete":
        ok = line.endswith("(obs)")
    else:
        ok = norm(line) == norm("Additional sense: " + s.description)
    return [] if ok else [f"ASC/ASCQ {s.asc:02X}/{s.ascq:02X}: {s.description!r} vs {line!r}"]


def expected_sks(s: Sense) -> tuple[object, ...] | None:
    """Our sense-key-specific data in the oracle's terms."""
    sks = s.sks
    if isinstance(sks, FieldPointer):
        return ("field", sks.cdb, sks.field_pointer, sks.bit_pointer if sks.bpv else None)
    if isinstance(sks, SegmentPointer):
        return ("segment", sks.sd, sks.field_pointer, sks.bit_pointer if sks.bpv else None)
    if isinstance(sks, ActualRetryCount):
        return ("retry", sks.count)
    if isinstance(sks, ProgressIndication):
        return ("progress", sks.fraction * 100)
    if isinstance(sks, UnitAttentionQueueOverflow):
        return ("overflow", sks.overflow)
    return None


def compare(buf: bytes, s: Sense, o: OracleView) -> list[str]:
    """Every disagreement between tapepath's decoding and the oracle's."""
    problems = []
    if (s.descriptor_format, s.deferred) != (o.descriptor_format, o.deferred):
        problems.append(f"format/deferred {s.descriptor_format}/{s.deferred} vs oracle")
    if key_name(s.sense_key) != o.sense_key:
        problems.append(f"sense key {key_name(s.sense_key)!r} vs {o.sense_key!r}")
    if asc_present(buf, s):
        problems += check_asc(s, o.asc_line)
    elif o.asc_line is not None:
        problems.append(f"oracle shows an ASC we say is absent: {o.asc_line!r}")
    oracle_info = None if o.information_invalid else o.information
    if s.information != oracle_info:
        problems.append(f"information {s.information} vs {oracle_info}")
    if (s.filemark, s.eom, s.ili) != (o.filemark, o.eom, o.ili):
        problems.append(f"flags {(s.filemark, s.eom, s.ili)} vs {(o.filemark, o.eom, o.ili)}")
    ours = expected_sks(s)
    if ours is not None and ours[0] == "progress":
        if o.sks is None or o.sks[0] != "progress" or abs(o.sks[1] - ours[1]) > 0.011:  # type: ignore[operator]
            problems.append(f"progress {ours} vs {o.sks}")
    elif ours != o.sks:
        problems.append(f"sks {ours} vs {o.sks}")
    if s.fru and o.fru != s.fru:
        problems.append(f"fru {s.fru} vs {o.fru}")
    return problems


@pytest.fixture(scope="module")
def oracle_results() -> list[tuple[bytes, Sense, OracleView]]:
    """The corpus decoded by both sides (one sg_decode_sense batch)."""
    buffers = corpus()
    texts = run_oracle(buffers)
    return [
        (buf, decode_sense(buf), parse_oracle(text))
        for buf, text in zip(buffers, texts, strict=True)
    ]


class TestCorpus:
    """The corpus itself."""

    def test_size_and_variety(self) -> None:
        """A few hundred buffers, both formats, deferred, with and without SKS."""
        buffers = corpus()
        decoded = [decode_sense(b) for b in buffers]
        assert len(buffers) == len(handmade()) + RANDOM_COUNT
        assert len(buffers) >= 300
        assert any(s.descriptor_format for s in decoded)
        assert any(not s.descriptor_format for s in decoded)
        assert sum(s.deferred for s in decoded) > 20
        assert sum(s.sks is not None for s in decoded) > 50
        kinds = {asc_kind(s.asc, s.ascq) for s in decoded}
        assert kinds == set(AscKind)

    def test_seeded(self) -> None:
        """The random part is the same every run."""
        assert random_buffers(random.Random(SEED), 5) == random_buffers(random.Random(SEED), 5)


@pytest.mark.needs("sg_decode_sense")
class TestOracle:
    """tapepath agrees with sg_decode_sense on every buffer of the corpus."""

    def test_corpus_agrees(self, oracle_results: list[tuple[bytes, Sense, OracleView]]) -> None:
        """Field by field, for the whole corpus."""
        failures = []
        for buf, s, o in oracle_results:
            problems = compare(buf, s, o)
            if problems:
                failures.append(f"{buf.hex()}: {'; '.join(problems)}")
        assert not failures, "\n".join(failures[:20])

    def test_sks_compared_for_every_format(
        self, oracle_results: list[tuple[bytes, Sense, OracleView]]
    ) -> None:
        """The oracle saw each SKS variant (so the comparison is not vacuous)."""
        seen = {o.sks[0] for _, _, o in oracle_results if o.sks is not None}
        assert seen == {"field", "segment", "retry", "progress", "overflow"}

    def test_whole_table_agrees(self) -> None:
        """Every T10 entry of the table has sg3_utils' text (bar the obsolete ones)."""
        keys = sorted(ASC_TEXT)
        buffers = [fixed_sense(SenseKey.NO_SENSE, k >> 8, k & 0xFF) for k in keys]
        texts = run_oracle(buffers)
        failures = []
        for buf, text in zip(buffers, texts, strict=True):
            s = decode_sense(buf)
            failures += check_asc(s, parse_oracle(text).asc_line)
        assert not failures, "\n".join(failures[:20])
