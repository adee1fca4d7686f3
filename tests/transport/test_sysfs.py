"""Tests of sg enumeration from sysfs, on fake sysfs trees built in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapepath.errors import TransportError
from tapepath.scsi.inquiry import StandardInquiry
from tapepath.scsi.vpd import (
    Association,
    CodeSet,
    Designator,
    DesignatorType,
    DeviceIdentification,
    UnitSerialNumber,
)
from tapepath.testing.mock import MockTransport, Request
from tapepath.transport import Response, Status, Transport
from tapepath.transport.sysfs import ScsiAddress, SgDevice, group_by_identifier, list_sg_devices

NAA_TAPE = bytes.fromhex("6001405aa1b2c3d4e5f6a7b8c9d0e1f2")
NAA_CHANGER = bytes.fromhex("600140511223344556677889900aabbc")


def pg83(naa: bytes, port: int) -> bytes:
    """A device identification page with an NAA LU designator and a relative port."""
    return DeviceIdentification(
        (
            Designator(DesignatorType.NAA, naa, CodeSet.BINARY, Association.LOGICAL_UNIT),
            Designator(
                DesignatorType.RELATIVE_TARGET_PORT,
                port.to_bytes(4, "big"),
                CodeSet.BINARY,
                Association.TARGET_PORT,
            ),
        ),
        peripheral_device_type=1,
    ).to_bytes()


def add_sg(
    root: Path,
    n: int,
    hctl: str,
    *,
    ptype: int | None = 1,
    vendor: str | None = "IBM",
    model: str | None = "ULT3580-TD8",
    rev: str | None = "Q380",
    pg80: bytes | None = None,
    pg83_raw: bytes | None = None,
    tapes: tuple[str, ...] = (),
    changers: tuple[str, ...] = (),
    legacy_links: bool = False,
) -> None:
    """Create sgN the way the kernel lays it out: class link to the device's scsi_generic."""
    dev = root / "devices" / "platform" / f"host{hctl.split(':', maxsplit=1)[0]}" / hctl
    sgdir = dev / "scsi_generic" / f"sg{n}"
    sgdir.mkdir(parents=True)
    (sgdir / "dev").write_text(f"21:{n}\n")
    os.symlink(os.path.relpath(dev, sgdir), sgdir / "device")
    cls = root / "class" / "scsi_generic"
    cls.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(sgdir, cls), cls / f"sg{n}")
    if ptype is not None:
        (dev / "type").write_text(f"{ptype}\n")
    for name, value in (("vendor", vendor), ("model", model), ("rev", rev)):
        if value is not None:
            (dev / name).write_text(value.ljust(8) + "\n")
    (dev / "state").write_text("running\n")
    if pg80 is not None:
        (dev / "vpd_pg80").write_bytes(pg80)
    if pg83_raw is not None:
        (dev / "vpd_pg83").write_bytes(pg83_raw)
    for t in tapes:
        if legacy_links:
            (dev / f"scsi_tape:{t}").mkdir()
        else:
            (dev / "scsi_tape" / t).mkdir(parents=True)
    for c in changers:
        if legacy_links:
            (dev / f"scsi_changer:{c}").mkdir()
        else:
            (dev / "scsi_changer" / c).mkdir(parents=True)


def no_opener(path: str) -> Transport:
    """An opener that must not be called."""
    raise AssertionError(f"INQUIRY fallback used for {path}")


class TestSysfs:
    """What sysfs alone gives."""

    def test_two_paths_of_a_library(self, tmp_path: Path) -> None:
        """A changer and a drive over two portals: four nodes, grouped by page 83h."""
        serial = UnitSerialNumber("1013000999").to_bytes()
        for n, hctl, port in ((0, "2:0:0:1", 1), (2, "3:0:0:1", 2)):
            add_sg(
                tmp_path,
                n,
                hctl,
                pg80=serial,
                pg83_raw=pg83(NAA_TAPE, port),
                tapes=("nst0" if n == 0 else "nst1", "st0" if n == 0 else "st1", "st0a"),
            )
        for n, hctl, port in ((1, "2:0:0:2", 1), (10, "3:0:0:2", 2)):
            add_sg(
                tmp_path,
                n,
                hctl,
                ptype=8,
                vendor="STK",
                model="L700",
                rev="0104",
                pg83_raw=pg83(NAA_CHANGER, port),
                pg80=UnitSerialNumber("XYZZY_A").to_bytes(),
                changers=(f"sch{n}",),
            )
        devs = list_sg_devices(tmp_path, "/dev", opener=no_opener)
        assert [d.name for d in devs] == ["sg0", "sg1", "sg2", "sg10"]
        sg0 = devs[0]
        assert sg0.path == "/dev/sg0"
        assert sg0.url == "sg:///dev/sg0"
        assert sg0.address == ScsiAddress(2, 0, 0, 1)
        assert str(sg0.address) == "2:0:0:1"
        assert (sg0.peripheral_type, sg0.vendor, sg0.product, sg0.revision) == (
            1,
            "IBM",
            "ULT3580-TD8",
            "Q380",
        )
        assert sg0.serial == "1013000999"
        assert sg0.tape_nodes == ("nst0", "st0")
        assert sg0.changer_nodes == ()
        assert sg0.state == "running"
        assert sg0.from_inquiry == ()
        assert devs[1].changer_nodes == ("sch1",)
        assert devs[1].peripheral_type == 8
        groups = group_by_identifier(devs)
        assert sorted([d.name for d in g] for g in groups.values()) == [
            ["sg0", "sg2"],
            ["sg1", "sg10"],
        ]
        assert NAA_TAPE.hex() in next(k for k, g in groups.items() if g[0].name == "sg0").lower()
        assert devs[0].identification is not None
        assert devs[0].identification.relative_target_port() == 1
        assert devs[2].identification is not None
        assert devs[2].identification.relative_target_port() == 2

    def test_legacy_links(self, tmp_path: Path) -> None:
        """Older kernels' scsi_tape:stN entries are found too."""
        add_sg(
            tmp_path,
            0,
            "0:0:0:0",
            pg80=UnitSerialNumber("S").to_bytes(),
            pg83_raw=pg83(NAA_TAPE, 1),
            tapes=("st0", "nst0"),
            legacy_links=True,
        )
        (dev,) = list_sg_devices(tmp_path, opener=no_opener)
        assert dev.tape_nodes == ("nst0", "st0")

    def test_no_sg_class(self, tmp_path: Path) -> None:
        """No scsi_generic class (sg not loaded): an empty list."""
        assert list_sg_devices(tmp_path) == []

    def test_malformed_vpd_kept_raw(self, tmp_path: Path) -> None:
        """A page 83h that does not parse is kept raw, identification None."""
        add_sg(tmp_path, 0, "0:0:0:0", pg80=b"\x01\x80\x00\x09abc", pg83_raw=b"\x01\x83\x00\x10xx")
        (dev,) = list_sg_devices(tmp_path, inquiry=False)
        assert dev.vpd_pg83 == b"\x01\x83\x00\x10xx"
        assert dev.identification is None
        assert dev.identifier is None
        assert dev.serial is None

    def test_unidentified_nodes_stand_alone(self, tmp_path: Path) -> None:
        """Nodes without page 83h are not grouped with each other."""
        add_sg(tmp_path, 0, "0:0:0:0")
        add_sg(tmp_path, 1, "0:0:1:0")
        groups = group_by_identifier(list_sg_devices(tmp_path, inquiry=False))
        assert groups == {
            "sg:///dev/sg0": [groups["sg:///dev/sg0"][0]],
            "sg:///dev/sg1": [groups["sg:///dev/sg1"][0]],
        }

    def test_dev_root(self, tmp_path: Path) -> None:
        """The node path follows the /dev root given."""
        add_sg(tmp_path, 4, "0:0:1:0")
        (dev,) = list_sg_devices(tmp_path, "/host/dev", inquiry=False)
        assert dev.path == "/host/dev/sg4"
        assert dev.number == 4

    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
    @given(st.binary(max_size=300), st.binary(max_size=300), st.binary(max_size=20))
    def test_arbitrary_attribute_bytes(
        self, tmp_path: Path, p80: bytes, p83: bytes, typ: bytes
    ) -> None:
        """Any bytes in the attribute files give a device, never an exception."""
        root = tmp_path / os.urandom(6).hex()
        add_sg(root, 0, "0:0:0:0", pg80=p80, pg83_raw=p83)
        (root / "devices/platform/host0/0:0:0:0/type").write_bytes(typ)
        (dev,) = list_sg_devices(root, inquiry=False)
        assert isinstance(dev, SgDevice)
        assert dev.peripheral_type is None or 0 <= dev.peripheral_type <= 31
        assert dev.vpd_pg83 == (p83 or None)


def inquiry_handler(req: Request) -> Response:
    """A tape drive answering standard INQUIRY and VPD 80h/83h."""
    cdb = req.cdb
    assert cdb[0] == 0x12
    if not cdb[1] & 1:
        return Response(
            data=StandardInquiry(
                peripheral_device_type=1,
                vendor_raw="HP",
                product_raw="Ultrium 6-SCSI",
                revision_raw="J5SW",
            ).to_bytes()
        )
    if cdb[2] == 0x80:
        return Response(data=UnitSerialNumber("HU1234").to_bytes())
    if cdb[2] == 0x83:
        return Response(data=pg83(NAA_TAPE, 1))
    return Response(status=Status.CHECK_CONDITION, sense=bytes((0x70, 0, 5)) + bytes(15))


class TestInquiryFallback:
    """What sysfs lacks is asked with INQUIRY."""

    def test_fills_missing(self, tmp_path: Path) -> None:
        """Without vendor/type/VPD files the device answers them."""
        add_sg(tmp_path, 0, "0:0:0:0", ptype=None, vendor=None, model=None, rev=None)
        opened: list[str] = []
        mocks: list[MockTransport] = []

        def opener(path: str) -> Transport:
            opened.append(path)
            mocks.append(MockTransport(inquiry_handler))
            return mocks[-1]

        (dev,) = list_sg_devices(tmp_path, "/dev", opener=opener)
        assert opened == ["/dev/sg0"]
        assert (dev.peripheral_type, dev.vendor, dev.product, dev.revision) == (
            1,
            "HP",
            "Ultrium 6-SCSI",
            "J5SW",
        )
        assert dev.serial == "HU1234"
        assert dev.identifier is not None
        assert "vpd_pg83" in dev.from_inquiry
        assert "vendor" in dev.from_inquiry
        assert [r.cdb[2] for r in mocks[0].requests] == [0, 0x80, 0x83]

    def test_keeps_sysfs_values(self, tmp_path: Path) -> None:
        """Only the missing page is asked; sysfs values are not overwritten."""
        add_sg(tmp_path, 0, "0:0:0:0", vendor="QUANTUM", pg83_raw=pg83(NAA_CHANGER, 3))
        mock = MockTransport(inquiry_handler)
        (dev,) = list_sg_devices(tmp_path, opener=lambda p: mock)
        assert [r.cdb[2] for r in mock.requests] == [0x80]
        assert dev.vendor == "QUANTUM"
        assert dev.serial == "HU1234"
        assert dev.from_inquiry == ("vpd_pg80",)

    def test_unsupported_page(self, tmp_path: Path) -> None:
        """A CHECK CONDITION for a VPD page leaves it None."""
        add_sg(tmp_path, 0, "0:0:0:0", pg83_raw=pg83(NAA_TAPE, 1))

        def handler(req: Request) -> Response:
            return Response(status=Status.CHECK_CONDITION)

        (dev,) = list_sg_devices(tmp_path, opener=lambda p: MockTransport(handler))
        assert dev.vpd_pg80 is None
        assert dev.serial is None
        assert dev.from_inquiry == ()

    def test_open_failure(self, tmp_path: Path) -> None:
        """A node that cannot be opened keeps what sysfs had."""
        add_sg(tmp_path, 0, "0:0:0:0")

        def opener(path: str) -> Transport:
            raise TransportError(f"{path}: permission denied")

        (dev,) = list_sg_devices(tmp_path, opener=opener)
        assert dev.vendor == "IBM"
        assert dev.vpd_pg80 is None

    def test_default_opener_on_missing_node(self, tmp_path: Path) -> None:
        """The default opener (SgTransport) failing on a missing node is not fatal."""
        add_sg(tmp_path, 0, "0:0:0:0")
        (dev,) = list_sg_devices(tmp_path, str(tmp_path / "dev"))
        assert dev.vpd_pg80 is None

    def test_no_inquiry(self, tmp_path: Path) -> None:
        """inquiry=False never opens a node."""
        add_sg(tmp_path, 0, "0:0:0:0", vendor=None)
        (dev,) = list_sg_devices(tmp_path, inquiry=False, opener=no_opener)
        assert dev.vendor is None


class TestScsiAddress:
    """H:C:T:L parsing."""

    def test_parse(self) -> None:
        """Four numbers parse; order sorts by host first."""
        assert ScsiAddress.parse("3:0:12:5") == ScsiAddress(3, 0, 12, 5)
        assert ScsiAddress(1, 0, 0, 9) < ScsiAddress(2, 0, 0, 0)

    @pytest.mark.parametrize("text", ["", "1:2:3", "a:b:c:d", "host0", "1:2:3:4:5"])
    def test_bad(self, text: str) -> None:
        """Anything else is a ValueError."""
        with pytest.raises(ValueError, match="H:C:T:L"):
            ScsiAddress.parse(text)
