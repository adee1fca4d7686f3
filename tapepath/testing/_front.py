"""The SCSI front end every simulated logical unit shares.

A front end turns a CDB into calls on the models and the models' answers into SCSI
status, data and sense, using the codec classes of :mod:`tapepath.scsi` both ways.
It applies, in this order: pending unit attentions, the port's ALUA state, the
persistent reservation, then the command's handler. This module holds what changer
and drives have in common (INQUIRY and VPD, REPORT LUNS, REQUEST SENSE, persistent
reservations); the device fronts add their command tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from tapepath.errors import DecodeError
from tapepath.scsi.alua import (
    AccessState,
    ReportTargetPortGroups,
    SetTargetPortGroups,
    StpgDescriptor,
    StpgParameters,
    TargetPortGroup,
    TargetPortGroups,
)
from tapepath.scsi.cdb import RequestSense, TestUnitReady
from tapepath.scsi.inquiry import Inquiry, StandardInquiry
from tapepath.scsi.luns import LunList, ReportLuns
from tapepath.scsi.opcodes import (
    OneCommandSupport,
    ReportingOptions,
    ReportSupportedOpcodes,
    Support,
    SupportedCommand,
    SupportedOpcodes,
)
from tapepath.scsi.reservations import (
    FullStatusDescriptor,
    PersistentReserveIn,
    PersistentReserveOut,
    PrInAction,
    PrOutAction,
    PrOutParameters,
    PrType,
    ReadFullStatus,
    ReadKeys,
    ReadReservation,
    ReportCapabilities,
    TransportId,
)
from tapepath.scsi.sense import fixed_sense
from tapepath.scsi.vpd import (
    Association,
    CodeSet,
    Designator,
    DesignatorType,
    DeviceIdentification,
    SupportedVpdPages,
    UnitSerialNumber,
)
from tapepath.testing._check import Check, SenseKey, invalid_field, invalid_opcode
from tapepath.testing.nexus import AluaState, LogicalUnit, Nexus, Port
from tapepath.testing.reservations import Access, Conflict

if TYPE_CHECKING:
    from tapepath.testing.engine import Session
    from tapepath.testing.library import VirtualLibrary

__all__ = ["Front", "Handler"]

log = structlog.get_logger("tapepath.testing")

GOOD = 0x00
CHECK_CONDITION = 0x02
RESERVATION_CONFLICT = 0x18

Handler = Callable[["Session", Nexus, bytes, bytes, int], bytes]
"""(session, nexus, cdb, data_out, allocation) -> data-in bytes; raises Check or Conflict."""

# Commands a unit attention does not stop (SPC): INQUIRY, REPORT LUNS, REQUEST SENSE.
_UA_EXEMPT = frozenset({0x12, 0xA0, 0x03})
_STANDBY_ASC = {
    AluaState.STANDBY: (0x04, 0x0B),
    AluaState.UNAVAILABLE: (0x04, 0x0C),
    AluaState.OFFLINE: (0x04, 0x12),
    AluaState.TRANSITIONING: (0x04, 0x0A),
}
_ALL_TYPES = frozenset(PrType)


def _cdb_length(opcode: int) -> int:
    """The CDB length of an operation code's group (SPC)."""
    return {0: 6, 1: 10, 2: 10, 4: 16, 5: 12}.get(opcode >> 5, 10)


class Front:
    """Dispatch for one logical unit (subclasses fill :attr:`table`).

    Attributes:
        table: opcode -> (handler, reservation access class, allowed on a standby port).
    """

    PDT = 0x00
    PRODUCT = "VIRTUAL"

    def __init__(self, lib: VirtualLibrary, lu: LogicalUnit) -> None:
        self.lib = lib
        self.lu = lu
        self.table: dict[int, tuple[Handler, Access, bool]] = {
            0x00: (self.test_unit_ready, Access.ALWAYS, True),
            0x03: (self.request_sense, Access.ALWAYS, True),
            0x12: (self.inquiry, Access.ALWAYS, True),
            0xA0: (self.report_luns, Access.ALWAYS, True),
            0x5E: (self.pr_in, Access.ALWAYS, True),
            0x5F: (self.pr_out, Access.ALWAYS, True),
            0xA3: (self.maintenance_in, Access.ALWAYS, True),
            0xA4: (self.maintenance_out, Access.ALWAYS, True),
        }
        self._inquiry = self._standard_inquiry()
        self._tur = TestUnitReady().to_bytes()

    # ---- the gate ---------------------------------------------------------------------

    def handle(
        self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, alloc: int
    ) -> tuple[int, bytes, bytes]:
        """Run one command: (status, data-in, sense)."""
        op = cdb[0]
        if nx.unit_attentions and op not in _UA_EXEMPT:
            asc, ascq = nx.unit_attentions.popleft()
            return CHECK_CONDITION, b"", fixed_sense(SenseKey.UNIT_ATTENTION, asc, ascq)
        entry = self.table.get(op)
        try:
            if entry is None:
                raise invalid_opcode()
            handler, access, standby_ok = entry
            state = nx.port.state
            if state > AluaState.ACTIVE_NON_OPTIMIZED and not standby_ok:
                asc, ascq = _STANDBY_ASC.get(AluaState(state), (0x04, 0x0B))
                raise Check(SenseKey.NOT_READY, asc, ascq)
            if self.lu.pr.reservation is not None:
                self.lu.pr.check_access(nx.initiator, nx.port.relative_id, access)
            return GOOD, handler(s, nx, cdb, data_out, alloc), b""
        except Check as c:
            return CHECK_CONDITION, c.data, c.sense()
        except Conflict:
            return RESERVATION_CONFLICT, b"", b""
        except DecodeError:
            return CHECK_CONDITION, b"", invalid_field().sense()
        except Exception:  # a simulator bug must not crash the caller: 44/00 and a log
            log.exception("sim_internal_error", device=self.lu.name, cdb=cdb.hex())
            return CHECK_CONDITION, b"", fixed_sense(SenseKey.HARDWARE_ERROR, 0x44, 0x00)

    # ---- commands every logical unit has ----------------------------------------------

    def test_unit_ready(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """TEST UNIT READY (subclasses check readiness)."""
        if cdb != self._tur:
            TestUnitReady.from_bytes(cdb)
        return b""

    def request_sense(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """REQUEST SENSE: a pending unit attention (consumed) or NO SENSE."""
        RequestSense.from_bytes(cdb)
        if nx.unit_attentions:
            asc, ascq = nx.unit_attentions.popleft()
            return fixed_sense(SenseKey.UNIT_ATTENTION, asc, ascq)
        return fixed_sense(SenseKey.NO_SENSE, 0, 0)

    def _standard_inquiry(self) -> bytes:
        return StandardInquiry(
            peripheral_device_type=self.PDT,
            rmb=True,
            version=6,
            response_data_format=2,
            tpgs=2,
            multip=True,
            cmdque=False,
            vendor_raw=b"TAPEPATH",
            product_raw=self.PRODUCT.encode("ascii"),
            revision_raw=b"0100",
        ).to_bytes()

    def vpd_pages(self) -> tuple[int, ...]:
        """The VPD pages this unit answers."""
        return (0x00, 0x80, 0x83)

    def vpd(self, port: Port, page: int) -> bytes:
        """Encode one VPD page, or raise ILLEGAL REQUEST 24/00."""
        pdt = self.PDT
        if page == 0x00:
            return SupportedVpdPages(self.vpd_pages(), peripheral_device_type=pdt).to_bytes()
        if page == 0x80:
            return UnitSerialNumber(self.lu.serial, peripheral_device_type=pdt).to_bytes()
        if page == 0x83:
            return self.device_identification(port).to_bytes()
        raise invalid_field(2)

    def device_identification(self, port: Port) -> DeviceIdentification:
        """VPD 83h: the LU's NAA (the same on every port), then this port's designators."""
        return DeviceIdentification(
            (
                Designator(DesignatorType.NAA, self.lu.naa.to_bytes(8, "big")),
                Designator(
                    DesignatorType.T10_VENDOR_ID,
                    b"TAPEPATH" + self.lu.serial.encode("ascii"),
                    code_set=CodeSet.ASCII,
                ),
                Designator(
                    DesignatorType.RELATIVE_TARGET_PORT,
                    port.relative_id.to_bytes(4, "big"),
                    association=Association.TARGET_PORT,
                ),
                Designator(
                    DesignatorType.TARGET_PORT_GROUP,
                    port.group.to_bytes(4, "big"),
                    association=Association.TARGET_PORT,
                ),
            ),
            peripheral_device_type=self.PDT,
        )

    def inquiry(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """INQUIRY: standard data or a VPD page."""
        cmd = Inquiry.from_bytes(cdb)
        if not cmd.evpd:
            return self._inquiry
        return self.vpd(nx.port, cmd.page_code)

    def report_luns(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """REPORT LUNS: LUN 0 only (each simulated device is its own target)."""
        ReportLuns.from_bytes(cdb)
        return LunList((0,)).to_bytes()

    # ---- persistent reservations ------------------------------------------------------

    def pr_in(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """PERSISTENT RESERVE IN."""
        cmd = PersistentReserveIn.from_bytes(cdb)
        pr = self.lu.pr
        sa = int(cmd.service_action)
        if sa == PrInAction.READ_KEYS:
            return ReadKeys(pr.generation, tuple(pr.registrations.values())).to_bytes()
        if sa == PrInAction.READ_RESERVATION:
            res = pr.reservation
            if res is None:
                return ReadReservation(pr.generation).to_bytes()
            return ReadReservation(pr.generation, res.key, int(res.type)).to_bytes()
        if sa == PrInAction.REPORT_CAPABILITIES:
            return ReportCapabilities(
                crh=False,
                atp_c=True,
                ptpl_c=True,
                tmv=True,
                ptpl_a=pr.aptpl,
                type_mask=ReportCapabilities.mask_for(_ALL_TYPES),
            ).to_bytes()
        if sa == PrInAction.READ_FULL_STATUS:
            res = pr.reservation
            descs = []
            for (initiator, port), key in pr.registrations.items():
                holder = res is not None and (
                    res.type.all_registrants
                    or res.holder
                    == (
                        initiator,
                        port,
                    )
                )
                descs.append(
                    FullStatusDescriptor(
                        reservation_key=key,
                        transport_id=TransportId.iscsi(initiator),
                        all_tg_pt=port is None,
                        r_holder=holder,
                        pr_type=int(res.type) if holder and res is not None else 0,
                        relative_target_port=port or 0,
                    )
                )
            return ReadFullStatus(pr.generation, tuple(descs)).to_bytes()
        raise invalid_field(1)

    def pr_out(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """PERSISTENT RESERVE OUT (REGISTER AND MOVE is not supported: 24/00)."""
        cmd = PersistentReserveOut.from_bytes(cdb)
        if len(data_out) != cmd.parameter_list_length or len(data_out) < 24:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x1A, 0x00)
        try:
            params = PrOutParameters.from_bytes(data_out)
        except DecodeError:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00) from None
        if params.spec_i_pt:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00)
        pr = self.lu.pr
        me, port = nx.initiator, nx.port.relative_id
        key, sa_key = params.reservation_key, params.service_action_reservation_key
        sa = int(cmd.service_action)
        rtype = int(cmd.pr_type)
        if cmd.scope != 0 and sa in (1, 2, 4, 5):
            raise invalid_field(2)
        if sa in (PrOutAction.REGISTER, PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY):
            notices = pr.register(
                me,
                port,
                key,
                sa_key,
                ignore_existing=sa == PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY,
                all_tg_pt=params.all_tg_pt,
                aptpl=params.aptpl,
            )
        elif sa == PrOutAction.RESERVE:
            pr.reserve(me, port, key, rtype)
            notices = []
        elif sa == PrOutAction.RELEASE:
            notices = pr.release(me, port, key, rtype)
        elif sa == PrOutAction.CLEAR:
            notices = pr.clear(me, port, key)
        elif sa in (PrOutAction.PREEMPT, PrOutAction.PREEMPT_AND_ABORT):
            notices = pr.preempt(me, port, key, sa_key, rtype)
        else:
            raise invalid_field(1)
        for (initiator, rport), asc, ascq in notices:
            for other in self.lu.nexuses:
                if other is nx:
                    continue
                if other.initiator == initiator and rport in (None, other.port.relative_id):
                    other.post(asc, ascq)
        return b""

    # ---- ALUA -------------------------------------------------------------------------

    def supported_commands(self) -> list[tuple[int, int | None]]:
        """(opcode, service action or None) of every command this unit answers."""
        out: list[tuple[int, int | None]] = []
        for op in sorted(self.table):
            if op == 0xA3:
                out += [(op, 0x0A), (op, 0x0C)]
            elif op == 0xA4:
                out.append((op, 0x0A))
            else:
                out.append((op, None))
        return out

    def report_supported_opcodes(self, cdb: bytes) -> bytes:
        """REPORT SUPPORTED OPERATION CODES: all commands, or one."""
        cmd = ReportSupportedOpcodes.from_bytes(cdb)
        known = self.supported_commands()
        opt = int(cmd.reporting_options)
        if opt == ReportingOptions.ALL_COMMANDS:
            return SupportedOpcodes(
                tuple(
                    SupportedCommand(
                        opcode=op,
                        cdb_length=_cdb_length(op),
                        service_action=sa or 0,
                        service_action_valid=sa is not None,
                    )
                    for op, sa in known
                )
            ).to_bytes()
        op = cmd.requested_opcode
        if opt == ReportingOptions.ONE_COMMAND:
            if any(o == op and sa is not None for o, sa in known):
                raise invalid_field(2)  # it has service actions: ask with one
            found = (op, None) in known
        elif opt == ReportingOptions.ONE_COMMAND_WITH_SERVICE_ACTION:
            found = (op, cmd.requested_service_action) in known
        else:
            raise invalid_field(2)
        if not found:
            return OneCommandSupport(support=Support.NOT_SUPPORTED).to_bytes()
        usage = bytes((op,)) + b"\xff" * (_cdb_length(op) - 1)
        return OneCommandSupport(support=Support.SUPPORTED, cdb_usage=usage).to_bytes()

    def maintenance_in(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """MAINTENANCE IN: REPORT TARGET PORT GROUPS (0Ah), REPORT SUPPORTED OPCODES (0Ch)."""
        if len(cdb) >= 2 and cdb[1] & 0x1F == 0x0C:
            return self.report_supported_opcodes(cdb)
        if len(cdb) < 2 or cdb[1] & 0x1F != 0x0A:
            raise invalid_field(1)
        cmd = ReportTargetPortGroups.from_bytes(cdb)
        groups = tuple(
            TargetPortGroup(
                tpg_id=p.group,
                state=int(p.state),
                pref=p.preferred,
                relative_target_ports=(p.relative_id,),
                status=p.status,
                t_sup=False,
                o_sup=False,
                lbd_sup=False,
                u_sup=True,
                s_sup=True,
                an_sup=False,
                ao_sup=True,
            )
            for p in self.lu.ports
        )
        return TargetPortGroups(groups, extended=cmd.extended).to_bytes()

    def maintenance_out(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """MAINTENANCE OUT: SET TARGET PORT GROUPS (service action 0Ah)."""
        if len(cdb) < 2 or cdb[1] & 0x1F != 0x0A:
            raise invalid_field(1)
        cmd = SetTargetPortGroups.from_bytes(cdb)
        if len(data_out) != cmd.parameter_list_length:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x1A, 0x00)
        try:
            params = StpgParameters.from_bytes(data_out)
        except DecodeError:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00) from None
        groups = {p.group: p for p in self.lu.ports}
        for d in params.descriptors:
            if d.tpg_id not in groups or int(d.state) not in (0, 1, 2):
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00)
        self.set_port_states(nx, params.descriptors)
        return b""

    def set_port_states(self, nx: Nexus, descriptors: tuple[StpgDescriptor, ...]) -> None:
        """Apply SET TARGET PORT GROUPS; a drive's ports are always active/optimized."""
        for d in descriptors:
            if int(d.state) != AccessState.ACTIVE_OPTIMIZED:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00)
