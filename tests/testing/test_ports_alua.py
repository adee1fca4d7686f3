"""Ports, I_T nexuses, unit attentions and explicit ALUA on the control paths."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

import tapepath
from tapepath.errors import TransportError
from tapepath.scsi.alua import (
    AccessState,
    ReportTargetPortGroups,
    SetTargetPortGroups,
    StpgDescriptor,
    StpgParameters,
    TargetPortGroups,
)
from tapepath.scsi.cdb import RequestSense
from tapepath.scsi.changer import MoveMedium
from tapepath.scsi.element_status import ReadElementStatus
from tapepath.scsi.inquiry import Inquiry, StandardInquiry
from tapepath.scsi.luns import LunList, ReportLuns
from tapepath.scsi.opcodes import OneCommandSupport, ReportSupportedOpcodes, SupportedOpcodes
from tapepath.scsi.sense import decode_sense
from tapepath.scsi.vpd import DeviceIdentification, UnitSerialNumber
from tapepath.testing import (
    AluaState,
    SimTransport,
    VirtualLibrary,
    lookup,
    registered_libraries,
)
from tapepath.transport import Transport
from tests.testing.helpers import ready, sense_of


@pytest.fixture
def lib() -> Iterator[VirtualLibrary]:
    with VirtualLibrary("alua", drives=3, control_paths=(0, 2), ports_per_drive=2) as lib:
        yield lib


def rtpg(t: Transport) -> TargetPortGroups:
    r = t.execute(ReportTargetPortGroups().to_bytes(), data_in_len=4096)
    assert r.ok, r
    return TargetPortGroups.from_bytes(r.data)


def stpg(t: Transport, tpg: int, state: int) -> tapepath.Response:
    cmd, data = SetTargetPortGroups.for_parameters(StpgParameters((StpgDescriptor(tpg, state),)))
    return t.execute(cmd.to_bytes(), data_out=data)


def vpd83(t: Transport) -> DeviceIdentification:
    r = t.execute(Inquiry(evpd=True, page_code=0x83).to_bytes(), data_in_len=255)
    assert r.ok
    return DeviceIdentification.from_bytes(r.data)


class TestUrls:
    """changer_urls, drive_urls and the registry."""

    def test_urls(self, lib: VirtualLibrary) -> None:
        """One changer URL per control path (active first); one drive URL per port."""
        assert lib.changer_urls() == ["sim://alua/changer?port=0", "sim://alua/changer?port=1"]
        assert lib.drive_urls(2) == ["sim://alua/drive2?port=0", "sim://alua/drive2?port=1"]
        lib.set_active_control_path(1)
        assert lib.changer_urls()[0] == "sim://alua/changer?port=1"

    def test_all_urls(self, lib: VirtualLibrary) -> None:
        """all_urls lists the changer's paths then every drive port."""
        urls = lib.all_urls()
        assert len(urls) == 2 + lib.drive_count * 2
        assert urls[:2] == lib.changer_urls()
        assert urls[-2:] == lib.drive_urls(2)

    def test_bad_urls(self, lib: VirtualLibrary) -> None:
        """Unknown library, device, port or parameter: clear errors."""
        with pytest.raises(TransportError, match="no VirtualLibrary"):
            tapepath.open_transport("sim://nope/changer")
        with pytest.raises(TransportError, match="no device"):
            tapepath.open_transport("sim://alua/drive9")
        with pytest.raises(TransportError, match="no port 5"):
            tapepath.open_transport("sim://alua/drive0?port=5")
        with pytest.raises(ValueError, match="unknown sim URL parameter"):
            tapepath.open_transport("sim://alua/drive0?speed=1")

    def test_unregister(self) -> None:
        """A closed library cannot be opened; a second live one with its name is refused."""
        lib = VirtualLibrary("once")
        with pytest.raises(ValueError, match="already registered"):
            VirtualLibrary("once")
        lib.close()
        with pytest.raises(TransportError):
            tapepath.open_transport("sim://once/changer")
        VirtualLibrary("once").close()

    def test_registry_is_weak(self) -> None:
        """A library nobody holds leaves the registry by itself."""
        lib = VirtualLibrary("weakly-held")
        assert "weakly-held" in registered_libraries()
        del lib
        gc.collect()
        assert "weakly-held" not in registered_libraries()
        with pytest.raises(LookupError):
            lookup("weakly-held")

    def test_device_by_index_and_serial(self, lib: VirtualLibrary) -> None:
        """DEVICE may be an index or a serial number."""
        t = tapepath.open_transport("sim://alua/1?port=1")
        assert isinstance(t, SimTransport)
        assert t.session.lu is lib.drive_lus[1]
        t2 = tapepath.open_transport(f"sim://alua/{lib.drive(2).serial}")
        assert isinstance(t2, SimTransport)
        assert t2.session.lu is lib.drive_lus[2]


class TestIdentity:
    """INQUIRY and VPD across ports."""

    def test_inquiry(self, lib: VirtualLibrary) -> None:
        """The changer is type 08h, drives 01h; TPGS is explicit."""
        t = ready(lib.changer_urls()[0])
        inq = StandardInquiry.from_bytes(t.execute(Inquiry().to_bytes(), data_in_len=96).data)
        assert inq.peripheral_device_type == 8
        assert inq.tpgs == 2
        d = ready(lib.drive_urls(0)[0])
        inq = StandardInquiry.from_bytes(d.execute(Inquiry().to_bytes(), data_in_len=96).data)
        assert inq.peripheral_device_type == 1
        assert inq.tpgs == 2

    def test_same_naa_own_port_designators(self, lib: VirtualLibrary) -> None:
        """Every port of a device: the same NAA, its own relative port and group."""
        for urls in (lib.changer_urls(), lib.drive_urls(1)):
            ids = [vpd83(ready(u)) for u in urls]
            naas = {i.logical_unit_designator().identifier for i in ids}  # type: ignore[union-attr]
            assert len(naas) == 1
            assert [i.relative_target_port() for i in ids] == [1, 2]
            assert [i.target_port_group() for i in ids] == [1, 2]
        a = vpd83(ready(lib.drive_urls(0)[0])).logical_unit_designator()
        b = vpd83(ready(lib.drive_urls(1)[0])).logical_unit_designator()
        assert a is not None
        assert b is not None
        assert a.identifier != b.identifier

    def test_serial(self, lib: VirtualLibrary) -> None:
        """VPD 80h carries the drive's serial."""
        t = ready(lib.drive_urls(2)[1])
        r = t.execute(Inquiry(evpd=True, page_code=0x80).to_bytes(), data_in_len=255)
        assert UnitSerialNumber.from_bytes(r.data).serial_number == lib.drive(2).serial

    def test_report_luns(self, lib: VirtualLibrary) -> None:
        """REPORT LUNS: LUN 0, answered despite a pending unit attention."""
        t = tapepath.open_transport(lib.drive_urls(0)[0])
        r = t.execute(ReportLuns().to_bytes(), data_in_len=4096)
        assert r.ok
        assert LunList.from_bytes(r.data).numbers == (0,)


class TestSupportedOpcodes:
    """REPORT SUPPORTED OPERATION CODES."""

    def test_all_commands(self, lib: VirtualLibrary) -> None:
        """The changer lists MOVE MEDIUM and RTPG; a drive lists READ POSITION."""
        c = ready(lib.changer_urls()[0])
        r = c.execute(ReportSupportedOpcodes().to_bytes(), data_in_len=8192)
        ops = SupportedOpcodes.from_bytes(r.data)
        move = ops.find(0xA5)
        assert move is not None
        assert move.cdb_length == 12
        assert ops.find(0xA3, 0x0A) is not None
        assert ops.find(0x34) is None
        d = ready(lib.drive_urls(0)[0])
        r = d.execute(ReportSupportedOpcodes().to_bytes(), data_in_len=8192)
        assert SupportedOpcodes.from_bytes(r.data).find(0x34) is not None

    def test_one_command(self, lib: VirtualLibrary) -> None:
        """The one-command form says supported or not supported."""
        d = ready(lib.drive_urls(0)[0])
        ask = ReportSupportedOpcodes(reporting_options=1, requested_opcode=0x34)
        one = OneCommandSupport.from_bytes(d.execute(ask.to_bytes(), data_in_len=64).data)
        assert one.support == 3
        assert one.cdb_usage[0] == 0x34
        ask = ReportSupportedOpcodes(reporting_options=1, requested_opcode=0xA5)
        one = OneCommandSupport.from_bytes(d.execute(ask.to_bytes(), data_in_len=64).data)
        assert one.support == 1


class TestUnitAttentions:
    """Per-nexus unit attention queues."""

    def test_each_nexus_has_its_own(self, lib: VirtualLibrary) -> None:
        """Clearing the UA on one nexus leaves the other's pending."""
        a = tapepath.open_transport(lib.drive_urls(0)[0])
        b = tapepath.open_transport(lib.drive_urls(0)[1])
        assert sense_of(a.execute(bytes(6)))[0] == 6
        assert sense_of(b.execute(bytes(6))) == (6, 0x29, 0x00)

    def test_request_sense_reports_and_clears(self, lib: VirtualLibrary) -> None:
        """REQUEST SENSE returns the pending UA as data and consumes it."""
        t = tapepath.open_transport(lib.changer_urls()[0])
        r = t.execute(RequestSense().to_bytes(), data_in_len=252)
        s = decode_sense(r.data)
        assert (s.sense_key, s.asc, s.ascq) == (6, 0x29, 0)
        assert t.execute(bytes(6)).ok

    def test_reconnect_gives_nexus_loss(self, lib: VirtualLibrary) -> None:
        """A reconnect makes a new nexus that reports 29/07."""
        t = ready(lib.drive_urls(0)[0])
        assert isinstance(t, SimTransport)
        old = t.nexus_id
        t.reconnect()
        assert sense_of(t.execute(bytes(6))) == (6, 0x29, 0x07)
        assert t.nexus_id != old

    def test_link_cut_then_restore(self, lib: VirtualLibrary) -> None:
        """A cut port fails as a path failure; after restore the nexus is new (29/07)."""
        t = ready(lib.drive_urls(0)[0])
        other = ready(lib.drive_urls(0)[1])
        lib.set_link("drive0", 0, up=False)
        r = t.execute(bytes(6))
        assert r.path_failed
        assert r.outcome is tapepath.Outcome.NO_CONNECT
        assert r.detail is not None
        assert not r.detail.maybe_executed
        assert sense_of(other.execute(bytes(6))) == (2, 0x3A, 0x00)  # empty, but reachable
        lib.set_link("drive0", 0, up=True)
        assert sense_of(t.execute(bytes(6))) == (6, 0x29, 0x07)


class TestAlua:
    """Active and passive control paths, REPORT/SET TARGET PORT GROUPS."""

    def test_passive_answers_discovery(self, lib: VirtualLibrary) -> None:
        """The passive changer port answers INQUIRY, TUR and RTPG."""
        p = ready(lib.changer_urls()[1])
        assert p.execute(bytes(6)).ok
        assert p.execute(Inquiry().to_bytes(), data_in_len=96).ok
        groups = rtpg(p)
        states = {g.tpg_id: int(g.state) for g in groups.groups}
        assert states == {1: AccessState.ACTIVE_OPTIMIZED, 2: AccessState.STANDBY}

    def test_passive_rejects_media_commands(self, lib: VirtualLibrary) -> None:
        """MOVE MEDIUM and READ ELEMENT STATUS on the passive port: NOT READY 04/0B."""
        p = ready(lib.changer_urls()[1])
        r = p.execute(MoveMedium(0, lib.slot_address(0), lib.slot_address(23)).to_bytes())
        assert sense_of(r) == (2, 0x04, 0x0B)
        r = p.execute(ReadElementStatus().to_bytes(), data_in_len=4096)
        assert sense_of(r) == (2, 0x04, 0x0B)
        assert lib.where("TP0001L8") == lib.slot_address(0)

    def test_stpg_switches_and_notifies(self, lib: VirtualLibrary) -> None:
        """STPG on the passive port activates it; the other nexus sees 2A/06."""
        a = ready(lib.changer_urls()[0])
        p = ready(lib.changer_urls()[1])
        assert stpg(p, 2, AccessState.ACTIVE_OPTIMIZED).ok
        assert lib.control_path_states() == [AluaState.STANDBY, AluaState.ACTIVE_OPTIMIZED]
        assert p.execute(MoveMedium(0, lib.slot_address(0), lib.slot_address(23)).to_bytes()).ok
        assert sense_of(a.execute(bytes(6))) == (6, 0x2A, 0x06)
        r = a.execute(MoveMedium(0, lib.slot_address(23), lib.slot_address(0)).to_bytes())
        assert sense_of(r) == (2, 0x04, 0x0B)
        groups = rtpg(a)
        assert all(int(g.status) == 1 for g in groups.groups)

    def test_stpg_cannot_leave_no_active(self, lib: VirtualLibrary) -> None:
        """Setting the only active group to standby is refused (26/00)."""
        a = ready(lib.changer_urls()[0])
        assert sense_of(stpg(a, 1, AccessState.STANDBY)) == (5, 0x26, 0x00)
        assert sense_of(stpg(a, 9, AccessState.ACTIVE_OPTIMIZED)) == (5, 0x26, 0x00)

    def test_control_path_failure_activates_the_other(self, lib: VirtualLibrary) -> None:
        """The active control path fails: its LUN is gone and the other becomes active."""
        a = ready(lib.changer_urls()[0])
        p = ready(lib.changer_urls()[1])
        assert lib.fail_control_path() == 0
        r = a.execute(bytes(6))
        assert r.outcome is tapepath.Outcome.DEVICE_GONE
        assert sense_of(p.execute(bytes(6))) == (6, 0x2A, 0x06)
        assert p.execute(MoveMedium(0, lib.slot_address(0), lib.slot_address(23)).to_bytes()).ok
        assert lib.changer_urls() == ["sim://alua/changer?port=1"]
        d = tapepath.open_transport(lib.drive_urls(0)[0])
        assert d.execute(bytes(6)).outcome is tapepath.Outcome.DEVICE_GONE
        lib.repair_control_path(0)
        assert lib.control_path_states() == [AluaState.STANDBY, AluaState.ACTIVE_OPTIMIZED]
