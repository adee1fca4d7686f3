"""tapepath against libiscsi's tools on the same target, and our traffic through tshark."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tapepath.iscsi.connection import ConnectOptions
from tapepath.iscsi.driver import discover_targets
from tapepath.scsi.inquiry import Inquiry, StandardInquiry
from tapepath.scsi.luns import LunList, ReportLuns
from tapepath.transport.iscsi import IscsiTransport
from tests.iscsi.conftest import DIGEST_IQN, Lab
from tests.support.tools import which

pytestmark = pytest.mark.tgtd

# SPC peripheral device types as libiscsi names them in iscsi-ls / iscsi-inq.
LIBISCSI_TYPES = {
    0x00: "DIRECT_ACCESS",
    0x01: "SEQUENTIAL_ACCESS",
    0x08: "MEDIA_CHANGER",
    0x0C: "STORAGE_ARRAY_CONTROLLER",
}


def run(*args: str, timeout: float = 30, ok_codes: tuple[int, ...] = (0,)) -> str:
    tool = which(args[0])
    assert tool is not None
    res = subprocess.run(
        [tool, *args[1:]], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert res.returncode in ok_codes, res.stderr or res.stdout
    return res.stdout


def our_inquiry(url: str) -> StandardInquiry:
    with IscsiTransport(url) as t:
        r = t.execute(Inquiry().to_bytes(), data_in_len=96, timeout=5)
        assert r.ok
        return StandardInquiry.from_bytes(r.data)


@pytest.mark.needs("tgtd", "tgtadm", "tgtimg", "iscsi-inq", "iscsi-ls")
class TestLibiscsiAgrees:
    """What libiscsi reads is what tapepath reads."""

    def test_iscsi_ls(self, own_tgtd: Lab) -> None:
        """Targets, portals, LUNs and device types match iscsi-ls -s."""
        lab = own_tgtd
        out = run("iscsi-ls", "-s", f"iscsi://127.0.0.1:{lab.tgt.port}/")
        theirs: dict[str, dict[int, str]] = {}
        current = ""
        for line in out.splitlines():
            m = re.match(r"Target:(\S+) Portal:(\S+)", line)
            if m:
                current = m.group(1)
                theirs[current] = {}
            m = re.match(r"Lun:(\d+)\s+Type:(\w+)", line)
            if m:
                theirs[current][int(m.group(1))] = m.group(2)
        ours = dict(discover_targets(ConnectOptions(host="127.0.0.1", port=lab.tgt.port)))
        assert set(theirs) == set(ours) == {lab.vtl.iqn}
        with IscsiTransport(lab.url(lab.vtl.changer_lun)) as t:
            for _ in range(3):
                r = t.execute(ReportLuns().to_bytes(), data_in_len=2056, timeout=5)
                if r.ok:
                    break
            assert r.ok
            luns = LunList.from_bytes(r.data).numbers
        assert set(luns) == set(theirs[lab.vtl.iqn])
        for lun in luns:
            inq = our_inquiry(lab.url(lun))
            assert LIBISCSI_TYPES[int(inq.peripheral_device_type)] == theirs[lab.vtl.iqn][lun]

    @pytest.mark.parametrize("which_lun", ["changer", "drive", "disk"])
    def test_iscsi_inq_standard(self, lab: Lab, which_lun: str) -> None:
        """Vendor, product, revision and flags match iscsi-inq."""
        lun = {
            "changer": lab.vtl.changer_lun,
            "drive": lab.vtl.drive_luns[0],
            "disk": lab.disk_lun,
        }[which_lun]
        out = run("iscsi-inq", lab.url(lun))
        pairs = (line.partition(":") for line in out.splitlines())
        fields = {k.strip(): v for k, sep, v in pairs if sep}
        inq = our_inquiry(lab.url(lun))
        assert fields["Vendor"].rstrip() == inq.vendor
        assert fields["Product"].rstrip() == inq.product
        assert fields["Revision"].rstrip() == inq.revision
        assert fields["Peripheral Device Type"] == LIBISCSI_TYPES[int(inq.peripheral_device_type)]
        assert int(fields["Removable"]) == int(inq.rmb)
        assert int(fields["HiSup"]) == int(inq.hisup)
        assert int(fields["CmdQue"]) == int(inq.cmdque)
        theirs = {
            int(line.split(":")[1].split()[0], 16)
            for line in out.splitlines()
            if line.startswith("Version Descriptor:")
        }
        assert theirs == {d for d in inq.version_descriptors if d}

    def test_iscsi_inq_serial(self, lab: Lab) -> None:
        """The unit serial number (VPD 80h) matches iscsi-inq -e 1 -c 128."""
        out = run("iscsi-inq", "-e", "1", "-c", "128", lab.url(lab.disk_lun))
        m = re.search(r"Unit Serial Number:\[(.*)\]", out)
        assert m is not None
        with IscsiTransport(lab.url(lab.disk_lun)) as t:
            r = t.execute(Inquiry(evpd=True, page_code=0x80).to_bytes(), data_in_len=255, timeout=5)
            assert r.ok
            length = int.from_bytes(r.data[2:4], "big")
            serial = r.data[4 : 4 + length].decode("ascii")
        assert serial == m.group(1)


@pytest.mark.needs("tgtd", "tgtadm", "tgtimg", "tcpdump", "tshark")
class TestWire:
    """Our traffic as Wireshark's iSCSI dissector sees it."""

    def test_no_malformed_pdus(self, lab: Lab, tmp_path: Path) -> None:
        """Login, commands, R2T/Data-Out, Data-In, digests, NOP and logout decode cleanly."""
        if os.geteuid() != 0:
            pytest.skip("capturing on lo needs root")
        pcap = tmp_path / "iscsi.pcap"
        tcpdump = which("tcpdump")
        assert tcpdump is not None
        port = lab.tgt.port
        proc = subprocess.Popen(
            [tcpdump, "-i", "lo", "-U", "-s", "0", "-w", str(pcap), f"tcp port {port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            assert "listening" in proc.stderr.readline()
            for url in (
                lab.url(lab.disk_lun),
                lab.url(1, iqn=DIGEST_IQN, query="header_digest=crc32c&data_digest=crc32c"),
            ):
                with IscsiTransport(url) as t:
                    for _ in range(2):
                        t.execute(bytes(6), timeout=5)
                    t.execute(Inquiry().to_bytes(), data_in_len=96, timeout=5)
                    data = os.urandom(600 * 512)
                    cdb = bytes([0x8A, 0]) + bytes(8) + (600).to_bytes(4, "big") + bytes(2)
                    assert t.execute(cdb, data_out=data, timeout=10).ok
                    cdb = bytes([0x88, 0]) + bytes(8) + (600).to_bytes(4, "big") + bytes(2)
                    assert t.execute(cdb, data_in_len=len(data), timeout=10).data == data
                    t.session.ping()
            time.sleep(0.3)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        base = ["tshark", "-r", str(pcap), "-o", f"iscsi.target_ports:{port}"]
        opcodes = run(*base, "-Y", "iscsi", "-T", "fields", "-e", "iscsi.opcode")
        seen = {int(op, 16) for line in opcodes.split() for op in line.split(",")}
        # login, SCSI command/response, Data-Out/In, R2T, NOP, logout all decoded
        assert {0x03, 0x23, 0x01, 0x21, 0x05, 0x25, 0x31, 0x00, 0x20, 0x06, 0x26} <= seen
        bad = run(*base, "-Y", '_ws.malformed || _ws.expert.severity >= "Error"')
        assert bad.strip() == "", bad
