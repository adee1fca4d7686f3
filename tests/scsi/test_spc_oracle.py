"""sg3_utils as an independent oracle for the SPC decoders.

A corpus of INQUIRY data, VPD pages 00h/80h/83h, TapeAlert log pages and MAM attribute
lists (part fixed, part drawn at random with a fixed seed) is written to binary files and
decoded by ``sg_inq``, ``sg_vpd``, ``sg_logs`` and ``sg_read_attr`` (each with ``--raw``
so the input file is binary). The fields they print are compared with tapepath's decoding.
"""

from __future__ import annotations

import random
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapepath.scsi.attributes import BARCODE, Attribute, AttributeFormat, AttributeList
from tapepath.scsi.inquiry import StandardInquiry
from tapepath.scsi.log import TapeAlert
from tapepath.scsi.luns import AddressMethod, decode_lun
from tapepath.scsi.vpd import (
    Association,
    Designator,
    DesignatorType,
    DeviceIdentification,
    SupportedVpdPages,
    UnitSerialNumber,
)
from tests.support.tools import which

SEED = 20261122
PRINTABLE = bytes(range(0x20, 0x7F))


def _run(tool: str, *args: str) -> str:
    exe = which(tool)
    assert exe is not None
    proc = subprocess.run(
        [exe, *args], capture_output=True, text=True, errors="replace", timeout=20, check=False
    )
    assert proc.returncode == 0, f"{tool} {args} failed: {proc.stderr}"
    return proc.stdout


# -- corpus ----------------------------------------------------------------------------


def _printable(rng: random.Random, n: int) -> bytes:
    return bytes(rng.choice(PRINTABLE) for _ in range(n))


def inquiry_corpus() -> list[bytes]:
    """Standard INQUIRY data: 3 fixed, 25 random (all header bits random)."""
    rng = random.Random(SEED)
    fixed = [
        StandardInquiry(
            peripheral_device_type=1,
            rmb=True,
            tpgs=1,
            multip=True,
            cmdque=True,
            vendor_raw="IBM",
            product_raw="ULT3580-TD8",
            revision_raw="M4B0",
            version_descriptors=(0x0460, 0x0200),
        ).to_bytes(),
        StandardInquiry(
            peripheral_device_type=8, vendor_raw="TAPEPATH", product_raw="VLIB", revision_raw="0100"
        ).to_bytes(),
        StandardInquiry(
            peripheral_qualifier=3, peripheral_device_type=0x1F, vendor_raw="X"
        ).to_bytes(),
    ]
    out = list(fixed)
    for _ in range(25):
        size = rng.choice([36, 56, 58, 74, 96])
        buf = bytearray(rng.getrandbits(8) for _ in range(size))
        buf[4] = size - 5
        buf[8:36] = _printable(rng, 28)
        out.append(bytes(buf))
    return out


def _random_designator(rng: random.Random) -> Designator:
    kind = rng.choice([1, 2, 3, 4, 5, 6, 8, 0xA])
    assoc = rng.choice([0, 1, 2])
    proto = rng.choice([0, 5, 6])
    if kind == DesignatorType.T10_VENDOR_ID:
        return Designator(kind, _printable(rng, rng.randint(8, 24)), 2, assoc)
    if kind == DesignatorType.EUI64:
        return Designator(kind, bytes(rng.getrandbits(8) for _ in range(rng.choice([8, 12, 16]))))
    if kind == DesignatorType.NAA:
        naa = rng.choice([2, 3, 5, 6])
        size = 16 if naa == 6 else 8
        ident = bytes([naa << 4 | rng.getrandbits(4)]) + rng.randbytes(size - 1)
        return Designator(kind, ident, 1, assoc)
    if kind in (4, 5, 6):
        value = rng.getrandbits(16)
        return Designator(kind, b"\0\0" + value.to_bytes(2, "big"), 1, 1 if kind != 6 else 0)
    if kind == DesignatorType.SCSI_NAME_STRING:
        name = b"iqn.2026-11.example:" + bytes(rng.choice(b"abcdefghij") for _ in range(9))
        name += b"\0" * (4 - len(name) % 4)
        return Designator(kind, name, 3, assoc, proto, piv=True)
    uuid_raw = bytes([0x10, 0]) + rng.randbytes(16)
    return Designator(kind, uuid_raw, 1, 0)


def vpd83_corpus() -> list[bytes]:
    """Device identification pages: 2 fixed, 20 random with 1..8 designators."""
    rng = random.Random(SEED + 83)
    naa = Designator(DesignatorType.NAA, bytes.fromhex("6005076312345678") + bytes(8))
    rtp = Designator(DesignatorType.RELATIVE_TARGET_PORT, b"\0\0\0\x02", 1, Association.TARGET_PORT)
    tpg = Designator(DesignatorType.TARGET_PORT_GROUP, b"\0\0\0\x01", 1, Association.TARGET_PORT)
    pages = [
        DeviceIdentification((naa, rtp, tpg), 0, 8).to_bytes(),
        DeviceIdentification(
            (Designator(DesignatorType.T10_VENDOR_ID, b"TAPEPATHVLIB-0001", 2),), 0, 1
        ).to_bytes(),
    ]
    for _ in range(20):
        ds = tuple(_random_designator(rng) for _ in range(rng.randint(1, 8)))
        pages.append(DeviceIdentification(ds, 0, rng.choice([1, 8])).to_bytes())
    return pages


def vpd_other_corpus() -> list[bytes]:
    """Pages 00h and 80h: 2 fixed, 10 random."""
    rng = random.Random(SEED + 80)
    out = [
        SupportedVpdPages((0x00, 0x80, 0x83)).to_bytes(),
        UnitSerialNumber("  1013000123").to_bytes(),
    ]
    known = [0x00, 0x80, 0x83, 0x86, 0x87, 0x88, 0x89, 0x8A, 0xB0, 0xB1, 0xB2]
    for _ in range(5):
        out.append(
            SupportedVpdPages(tuple(sorted(rng.sample(known, rng.randint(1, 8))))).to_bytes()
        )
        out.append(UnitSerialNumber(_printable(rng, rng.randint(1, 30)).strip()).to_bytes())
    return out


def tapealert_corpus() -> list[bytes]:
    """TapeAlert pages: 3 fixed, 20 random flag sets."""
    rng = random.Random(SEED + 0x2E)
    out = [
        TapeAlert().to_bytes(),
        TapeAlert({3, 20}).to_bytes(),
        TapeAlert(range(1, 65)).to_bytes(),
    ]
    for _ in range(20):
        out.append(TapeAlert(rng.sample(range(1, 65), rng.randint(0, 12))).to_bytes())
    return out


# Attributes sg_read_attr decodes as numbers or strings (id, format, length).
_MAM_KINDS = [
    (0x0000, AttributeFormat.BINARY, 8),
    (0x0001, AttributeFormat.BINARY, 8),
    (0x0003, AttributeFormat.BINARY, 8),
    (0x0007, AttributeFormat.BINARY, 2),
    (0x0400, AttributeFormat.ASCII, 8),
    (0x0401, AttributeFormat.ASCII, 32),
    (0x0800, AttributeFormat.ASCII, 8),
    (0x0801, AttributeFormat.ASCII, 32),
    (0x0802, AttributeFormat.ASCII, 8),
    (0x0806, AttributeFormat.ASCII, 32),
]


def _random_attribute(rng: random.Random, ident: int, fmt: int, size: int) -> Attribute:
    if fmt == AttributeFormat.BINARY:
        return Attribute.binary(
            ident, rng.getrandbits(8 * size - 1), size, read_only=rng.random() < 0.5
        )
    text = bytes(
        rng.choice(b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(rng.randint(1, size))
    )
    return Attribute.ascii(ident, text.decode(), size)


def mam_corpus() -> list[bytes]:
    """MAM attribute lists: 1 fixed, 15 random."""
    rng = random.Random(SEED + 0x8C)
    out = [
        AttributeList(
            (
                Attribute.binary(0x0000, 1500000, 8, read_only=True),
                Attribute.ascii(BARCODE, "A00001L8", 32),
            )
        ).to_bytes()
    ]
    for _ in range(15):
        kinds = sorted(rng.sample(_MAM_KINDS, rng.randint(1, 6)))
        out.append(AttributeList(tuple(_random_attribute(rng, *k) for k in kinds)).to_bytes())
    return out


def lun_corpus() -> list[bytes]:
    """Single-level 8-byte LUNs of every address method: 4 fixed, 40 random."""
    rng = random.Random(SEED + 0xA0)
    out = [bytes.fromhex(h) for h in ("0000000000000000", "0005000000000000", "412c000000000000")]
    out.append(bytes.fromhex("ad56000000000000"))
    for _ in range(10):
        out.append(bytes([0, rng.getrandbits(8)]) + bytes(6))  # peripheral, bus 0
        out.append(bytes([rng.randint(1, 63), rng.getrandbits(8)]) + bytes(6))  # with a bus
        out.append(bytes([0x40 | rng.getrandbits(6), rng.getrandbits(8)]) + bytes(6))  # flat
        out.append(bytes([0x80 | rng.getrandbits(6), rng.getrandbits(8)]) + bytes(6))  # LU
    return out


def corpus_size() -> int:
    """The number of buffers fed to sg3_utils."""
    return sum(
        len(f())
        for f in (
            inquiry_corpus,
            vpd83_corpus,
            vpd_other_corpus,
            tapealert_corpus,
            mam_corpus,
            lun_corpus,
        )
    )


def _files(tmp_path: Path, name: str, bufs: list[bytes]) -> Iterator[tuple[Path, bytes]]:
    for i, buf in enumerate(bufs):
        path = tmp_path / f"{name}{i}.bin"
        path.write_bytes(buf)
        yield path, buf


# -- parsing sg3_utils output ------------------------------------------------------------


def _kv(text: str) -> dict[str, str]:
    cleaned = text.replace("(VS=", "VS=").replace(")", "").replace("]", "")
    return dict(re.findall(r"([A-Za-z0-9_]+)=(\S+)", cleaned))


def _designators_of(text: str) -> dict[int, list[tuple[str, str]]]:
    """sg_vpd's designators grouped by association: (type text, first value line)."""
    heads = {
        "Addressed logical unit:": 0,
        "Target port:": 1,
        "Target device that contains addressed lu:": 2,
    }
    out: dict[int, list[tuple[str, str]]] = {0: [], 1: [], 2: []}
    assoc = -1
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped in heads:
            assoc = heads[stripped]
        elif stripped.startswith("designator type:"):
            kind = stripped.split(":", 1)[1].split(",")[0].strip()
            rest = [ln.strip() for ln in lines[i + 1 : i + 4]]
            rest = [r for r in rest if not r.startswith("transport:")]
            out[assoc].append((kind, rest[0] if rest else ""))
    return out


_SG_TYPE = {
    DesignatorType.T10_VENDOR_ID: "T10 vendor identification",
    DesignatorType.EUI64: "EUI-64 based",
    DesignatorType.NAA: "NAA",
    DesignatorType.RELATIVE_TARGET_PORT: "Relative target port",
    DesignatorType.TARGET_PORT_GROUP: "Target port group",
    DesignatorType.LOGICAL_UNIT_GROUP: "Logical unit group",
    DesignatorType.SCSI_NAME_STRING: "SCSI name string",
    DesignatorType.UUID: "UUID identifier",
}


def _expected_value(d: Designator) -> str:
    """The first line sg_vpd prints under a designator, from tapepath's decoding."""
    kind = d.designator_type
    if kind == DesignatorType.T10_VENDOR_ID:
        return f"vendor id: {d.identifier[:8].decode()}".rstrip()
    if kind in (DesignatorType.EUI64, DesignatorType.NAA):
        return "0x" + d.identifier.hex()
    if kind == DesignatorType.RELATIVE_TARGET_PORT:
        return f"Relative target port: 0x{d.number:x}"
    if kind == DesignatorType.TARGET_PORT_GROUP:
        return f"Target port group: 0x{d.number:x}"
    if kind == DesignatorType.LOGICAL_UNIT_GROUP:
        return f"Logical unit group: 0x{d.number:x}"
    if kind == DesignatorType.SCSI_NAME_STRING:
        return "SCSI name string:"
    return f"Locally assigned UUID: {d.uuid}"


# -- the tests -----------------------------------------------------------------------------


@pytest.mark.needs("sg_inq", "sg_vpd", "sg_logs", "sg_read_attr")
class TestSg3UtilsOracle:
    """tapepath's SPC decoders agree with sg3_utils on the corpus."""

    def test_corpus_size(self) -> None:
        """The corpus has the size the closing note reports."""
        assert corpus_size() == 28 + 22 + 12 + 23 + 16 + 44

    def test_inquiry(self, tmp_path: Path) -> None:
        """sg_inq --raw --inhex: every header field, identifiers and version descriptors."""
        for path, buf in _files(tmp_path, "inq", inquiry_corpus()):
            out = _run("sg_inq", "--raw", "-d", f"--inhex={path}")
            inq = StandardInquiry.from_bytes(buf)
            kv = _kv(out)
            expected = {
                "PQual": inq.peripheral_qualifier,
                "PDT": inq.peripheral_device_type,
                "RMB": int(inq.rmb),
                "LU_CONG": int(inq.lu_cong),
                "NormACA": int(inq.normaca),
                "HiSUP": int(inq.hisup),
                "Resp_data_format": inq.response_data_format,
                "SCCS": int(inq.sccs),
                "ACC": int(inq.acc),
                "TPGS": inq.tpgs,
                "3PC": int(inq.three_pc),
                "Protect": int(inq.protect),
                "EncServ": int(inq.encserv),
                "MultiP": int(inq.multip),
                "CmdQue": int(inq.cmdque),
            }
            got = {k: int(kv[k]) for k in expected}
            assert got == expected, (buf.hex(), out)
            assert int(kv["version"], 16) == inq.version
            if inq.multip:
                assert int(kv["VS"]) == int(inq.vs1)
            if len(buf) > 56:
                assert int(kv["IUS"]) == int(inq.ius)
                assert int(kv["QAS"]) == int(inq.qas)
                assert int(kv["Clocking"], 16) == inq.clocking
            ident = dict(re.findall(r"^ (Vendor|Product) identification: (.*)$", out, re.M))
            assert ident["Vendor"].rstrip() == inq.vendor
            assert ident["Product"].rstrip() == inq.product
            rev = re.search(r"Product revision level: (.*)$", out, re.M)
            assert rev is not None
            assert rev.group(1).rstrip() == inq.revision
            if "Version descriptors:" in out:
                lines = out.split("Version descriptors:")[1].strip().splitlines()
                assert len(lines) == sum(1 for v in inq.version_descriptors if v)

    def test_vpd83(self, tmp_path: Path) -> None:
        """sg_vpd --raw --inhex: each designator's association, type and value."""
        compared = 0
        for path, buf in _files(tmp_path, "vpd83_", vpd83_corpus()):
            out = _run("sg_vpd", "--raw", f"--inhex={path}")
            page = DeviceIdentification.from_bytes(buf)
            got = _designators_of(out)
            compared += sum(len(v) for v in got.values())
            for assoc in (0, 1, 2):
                mine = [d for d in page.designators if d.association == assoc]
                expected = [
                    (_SG_TYPE[DesignatorType(d.designator_type)], _expected_value(d)) for d in mine
                ]
                assert got[assoc] == expected, (buf.hex(), out)
        assert compared > 40

    def test_vpd_00_80(self, tmp_path: Path) -> None:
        """sg_vpd: the number of supported pages and the serial number."""
        for path, buf in _files(tmp_path, "vpd_", vpd_other_corpus()):
            out = _run("sg_vpd", "--raw", f"--inhex={path}")
            if buf[1] == 0x80:
                serial = re.search(r"Unit serial number: (.*)$", out, re.M)
                assert serial is not None
                assert serial.group(1).strip() == UnitSerialNumber.from_bytes(buf).serial_number
            else:
                listed = out.strip().splitlines()[1:]
                assert len(listed) == len(SupportedVpdPages.from_bytes(buf).pages), out

    def test_tapealert(self, tmp_path: Path) -> None:
        """sg_logs --raw --in: the 64 flags in order, and the names of the common ones."""
        for path, buf in _files(tmp_path, "ta", tapealert_corpus()):
            out = _run("sg_logs", "--raw", f"--in={path}")
            alert = TapeAlert.from_bytes(buf)
            lines = [ln.strip() for ln in out.splitlines() if re.search(r": [01]$", ln)]
            assert len(lines) == 64
            flags = {i + 1 for i, ln in enumerate(lines) if ln.endswith(": 1")}
            assert flags == set(alert.flags)
            for n in (1, 2, 3, 20, 21, 52):
                assert lines[n - 1].split(":")[0].lower() == alert_name(n).lower()

    def test_mam(self, tmp_path: Path) -> None:
        """sg_read_attr --raw --in: one line per attribute, numbers and strings agree."""
        for path, buf in _files(tmp_path, "mam", mam_corpus()):
            out = _run("sg_read_attr", "--raw", f"--in={path}")
            data = AttributeList.from_bytes(buf)
            lines = [ln for ln in out.splitlines()[1:] if ln.startswith("  ")]
            assert len(lines) == len(data.attributes), out
            for line, attr in zip(lines, data.attributes, strict=False):
                value = line.split(": ", 1)[1]
                if attr.format == AttributeFormat.BINARY:
                    assert int(value) == attr.as_int
                else:
                    assert value.rstrip() == attr.text
            if data.barcode is not None:
                assert re.search(rf"Barcode: {re.escape(data.barcode)}\s*$", out, re.M)


@pytest.mark.needs("sg_luns")
class TestSgLunsOracle:
    """decode_lun agrees with ``sg_luns --test``."""

    def test_luns(self) -> None:
        """Method, bus, target and LUN of each corpus LUN."""
        for raw in lun_corpus():
            out = _run("sg_luns", f"--test={raw.hex()}").splitlines()[1]
            lun = decode_lun(raw)
            fields = {k: int(v) for k, v in re.findall(r"(bus_id|target|lun)=(\d+)", out)}
            if lun.method == AddressMethod.PERIPHERAL and lun.bus:
                assert "Peripheral device addressing" in out
                assert fields == {"bus_id": lun.bus, "target": lun.number}, out
            elif lun.method == AddressMethod.PERIPHERAL:
                assert "Peripheral device addressing" in out
                assert fields == {"lun": lun.number}, out
            elif lun.method == AddressMethod.FLAT:
                assert "Flat space addressing" in out
                assert fields == {"lun": lun.number}, out
            else:
                assert "Logical unit addressing" in out
                assert fields == {"bus_id": lun.bus, "target": lun.target, "lun": lun.number}, out


def alert_name(n: int) -> str:
    """tapepath's name of TapeAlert flag ``n``."""
    from tapepath.scsi.log import TAPE_ALERT_NAMES  # noqa: PLC0415

    return TAPE_ALERT_NAMES[n]
