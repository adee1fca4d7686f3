"""The changer's SCSI front end: SMC commands on the changer model.

Robot moves go through :meth:`VirtualLibrary.robot_wait`, which releases the library
lock for the move time, so a fault or a test can act while the cartridge sits in the
medium transport element.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tapepath.scsi.alua import StpgDescriptor
from tapepath.scsi.changer import (
    ExchangeMedium,
    InitializeElementStatus,
    InitializeElementStatusWithRange,
    MoveMedium,
    PositionToElement,
    PreventAllowMediumRemoval,
)
from tapepath.scsi.changer_pages import (
    DeviceCapabilitiesPage,
    ElementAddressAssignmentPage,
    ElementTypeSet,
)
from tapepath.scsi.element_status import (
    DeviceIdentifier,
    ElementDescriptor,
    ElementStatus,
    ElementStatusPage,
    ReadElementStatus,
    VolumeTag,
)
from tapepath.scsi.mode import ModePage, ModeParameters, ModeSense6, ModeSense10
from tapepath.testing._check import Check, SenseKey, invalid_field
from tapepath.testing._front import Front
from tapepath.testing.changer import Element, ElementKind
from tapepath.testing.nexus import MEDIUM_CHANGED, AluaState, Nexus
from tapepath.testing.reservations import Access

if TYPE_CHECKING:
    from tapepath.testing.engine import Session
    from tapepath.testing.library import VirtualLibrary

__all__ = ["ChangerFront"]

_ALL_TYPES = ElementTypeSet(transport=True, storage=True, import_export=True, data_transfer=True)
_STORE = ElementTypeSet(transport=False, storage=True, import_export=True, data_transfer=True)


class ChangerFront(Front):
    """SMC commands for the library's changer logical unit."""

    PDT = 0x08
    PRODUCT = "VIRTUAL LIBRARY"

    def __init__(self, lib: VirtualLibrary) -> None:
        super().__init__(lib, lib.changer_lu)
        self.changer = lib.changer
        w, r = Access.WRITE, Access.READ
        self.table.update(
            {
                0xA5: (self.move_medium, w, False),
                0xA6: (self.exchange_medium, w, False),
                0xB8: (self.read_element_status, r, False),
                0x07: (self.initialize_element_status, w, False),
                0x37: (self.initialize_element_status_range, w, False),
                0x2B: (self.position_to_element, w, False),
                0x1E: (self.prevent_allow, w, False),
                0x1A: (self.mode_sense, r, True),
                0x5A: (self.mode_sense, r, True),
            }
        )

    # ---- ALUA: one active control path ------------------------------------------------

    def set_port_states(self, nx: Nexus, descriptors: tuple[StpgDescriptor, ...]) -> None:
        """Activate the group asked for (the others go standby, 2A/06 to their nexuses).

        Asking for standby on the active group is refused (26/00) unless the same
        request activates another group: one control path is always active.
        """
        by_group = {p.group: p for p in self.lu.ports}
        activate = [d for d in descriptors if int(d.state) in (0, 1)]
        if len(activate) > 1:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00)
        for d in descriptors:
            port = by_group[d.tpg_id]
            if not port.present:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00)
            if int(d.state) == 2 and port.state is AluaState.ACTIVE_OPTIMIZED and not activate:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00)
        if activate:
            port = by_group[activate[0].tpg_id]
            if port.state is not AluaState.ACTIVE_OPTIMIZED:
                for p in self.lu.ports:
                    p.status = 1
                self.lib._activate(port.index, by=nx)

    # ---- moves ------------------------------------------------------------------------

    def _entered(self, el: Element) -> None:
        if el.drive is not None:
            self.lib._drive_lu_at(el.address).broadcast(*MEDIUM_CHANGED)

    def move_medium(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """MOVE MEDIUM: pick, robot time, place (HARDWARE ERROR 15/01 if the robot stops)."""
        cmd = MoveMedium.from_bytes(cdb)
        if cmd.invert:
            raise invalid_field(10)
        self.lib.check_robot()
        ch = self.changer
        ch.check_move(cmd.transport, cmd.source, cmd.destination)
        if cmd.source == cmd.destination:
            return b""
        cart = ch.pick(cmd.source)
        if self.lib.robot_wait(s):
            raise Check(SenseKey.HARDWARE_ERROR, 0x15, 0x01)
        if ch.element(cmd.destination).cartridge is not None:  # filled by hand meanwhile
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x3B, 0x0D)
        ch.put(cmd.destination, cart, cmd.source)
        self._entered(ch.element(cmd.destination))
        return b""

    def exchange_medium(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """EXCHANGE MEDIUM."""
        cmd = ExchangeMedium.from_bytes(cdb)
        if cmd.inv1 or cmd.inv2:
            raise invalid_field(10)
        self.lib.check_robot()
        ch = self.changer
        ch.check_exchange(cmd.transport, cmd.source, cmd.first_destination, cmd.second_destination)
        if self.lib.robot_wait(s):
            ch.pick(cmd.source)
            raise Check(SenseKey.HARDWARE_ERROR, 0x15, 0x01)
        ch.exchange(cmd.transport, cmd.source, cmd.first_destination, cmd.second_destination)
        self._entered(ch.element(cmd.first_destination))
        self._entered(ch.element(cmd.second_destination))
        return b""

    def position_to_element(
        self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int
    ) -> bytes:
        """POSITION TO ELEMENT."""
        cmd = PositionToElement.from_bytes(cdb)
        if cmd.invert:
            raise invalid_field(8)
        self.lib.check_robot()
        self.changer.position_to(cmd.transport, cmd.destination)
        return b""

    def initialize_element_status(
        self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int
    ) -> bytes:
        """INITIALIZE ELEMENT STATUS."""
        InitializeElementStatus.from_bytes(cdb)
        self.lib.check_robot()
        self.changer.initialize_status()
        return b""

    def initialize_element_status_range(
        self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int
    ) -> bytes:
        """INITIALIZE ELEMENT STATUS WITH RANGE."""
        cmd = InitializeElementStatusWithRange.from_bytes(cdb)
        self.lib.check_robot()
        if cmd.range_ and cmd.number_of_elements:
            self.changer.element(cmd.starting_address)
        self.changer.initialize_status()
        return b""

    def prevent_allow(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """PREVENT ALLOW MEDIUM REMOVAL: lock the import/export elements."""
        cmd = PreventAllowMediumRemoval.from_bytes(cdb)
        self.changer.set_prevent(nx.id, bool(cmd.prevent & 1))
        return b""

    # ---- element status ---------------------------------------------------------------

    def _descriptor(self, el: Element, voltag: bool, dvcid: bool) -> ElementDescriptor:
        cart = el.cartridge
        tag = None
        if voltag:
            tag = VolumeTag(cart.volume_tag[:32]) if cart is not None else VolumeTag(bytes(32))
        device_id = None
        if dvcid and el.drive is not None:
            device_id = DeviceIdentifier(
                code_set=2, designator_type=0, identifier=el.drive.serial.encode("ascii")
            )
        exc = el.exception
        return ElementDescriptor(
            address=el.address,
            full=cart is not None,
            impexp=el.operator_placed,
            except_=exc is not None,
            access=el.kind is not ElementKind.TRANSPORT,
            exenab=el.kind is ElementKind.IMPORT_EXPORT,
            inenab=el.kind is ElementKind.IMPORT_EXPORT,
            asc=exc[0] if exc else 0,
            ascq=exc[1] if exc else 0,
            source_valid=cart is not None and el.source is not None,
            source_address=el.source if cart is not None and el.source is not None else 0,
            medium_type=1 if cart is not None else 0,
            primary_tag=tag,
            device_id=device_id,
        )

    def read_element_status(
        self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int
    ) -> bytes:
        """READ ELEMENT STATUS, paged: only whole descriptors that fit the allocation length.

        When not even one descriptor fits, the complete report is returned cut to the
        allocation length (so the header tells the initiator how much there is).
        """
        cmd = ReadElementStatus.from_bytes(cdb)
        ch = self.changer
        etype = int(cmd.element_type)
        if etype > 4:
            raise invalid_field(1)
        chosen = [
            el
            for el in ch.sorted_elements()
            if el.address >= cmd.starting_address and (etype in (0, el.kind))
        ][: cmd.number_of_elements]
        if not chosen and (
            cmd.starting_address > max(ch.elements, default=0)
            or (etype == 0 and cmd.starting_address not in ch.elements)
        ):
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x21, 0x01)
        groups: list[list[Element]] = []
        for el in chosen:
            if groups and groups[-1][0].kind is el.kind:
                groups[-1].append(el)
            else:
                groups.append([el])
        room = cmd.allocation_length - 8
        pages: list[ElementStatusPage] = []
        full: list[ElementStatusPage] = []
        fits = True
        for group in groups:
            descs = [self._descriptor(el, cmd.voltag, cmd.dvcid) for el in group]
            page = ElementStatusPage(int(group[0].kind), tuple(descs), pvoltag=cmd.voltag)
            full.append(page)
            if not fits:
                continue
            size = page.effective_descriptor_length
            k = min(len(descs), max(0, (room - 8) // size)) if size else 0
            if k:
                pages.append(
                    ElementStatusPage(
                        int(group[0].kind),
                        tuple(descs[:k]),
                        pvoltag=cmd.voltag,
                        descriptor_length=size,
                    )
                )
                room -= 8 + k * size
            if k < len(descs):
                fits = False
        first = chosen[0].address if chosen else cmd.starting_address
        if not pages and full:
            return ElementStatus(first, None, tuple(full)).to_bytes()[: cmd.allocation_length]
        return ElementStatus(first, None, tuple(pages)).to_bytes()

    # ---- mode pages -------------------------------------------------------------------

    def mode_pages(self) -> dict[int, ModePage]:
        """Pages 1Dh (element address assignment) and 1Fh (device capabilities)."""
        lay = self.lib.layout
        eaa = ElementAddressAssignmentPage(
            first_transport=lay.transport_start,
            transport_count=lay.transport_count,
            first_storage=lay.storage_start,
            storage_count=lay.storage_count,
            first_import_export=lay.import_export_start,
            import_export_count=lay.import_export_count,
            first_data_transfer=lay.drive_start,
            data_transfer_count=len(self.lib.drive_models),
        )
        caps = DeviceCapabilitiesPage(
            storage=_STORE,
            move_from_transport=_STORE,
            move_from_storage=_STORE,
            move_from_import_export=_STORE,
            move_from_data_transfer=_STORE,
            exchange_transport=_ALL_TYPES,
            exchange_storage=_STORE,
            exchange_import_export=_STORE,
            exchange_data_transfer=_STORE,
        )
        return {0x1D: eaa.to_mode_page(), 0x1F: caps.to_mode_page()}

    def mode_sense(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """MODE SENSE (6) and (10): pages 1Dh and 1Fh, no block descriptors."""
        cmd: ModeSense6 | ModeSense10
        cmd = ModeSense6.from_bytes(cdb) if cdb[0] == 0x1A else ModeSense10.from_bytes(cdb)
        pages = self.mode_pages()
        if cmd.subpage_code not in (0, 0xFF):
            raise invalid_field(3)
        if cmd.page_code == 0x3F:
            chosen = list(pages.values())
        elif cmd.page_code in pages:
            chosen = [pages[cmd.page_code]]
        else:
            raise invalid_field(2)
        if int(cmd.page_control) == 1:
            chosen = [ModePage(p.page_code, bytes(len(p.data))) for p in chosen]
        params = ModeParameters(pages=tuple(chosen), ten_byte=cdb[0] == 0x5A)
        return params.to_bytes()
