"""A tape drive's SCSI front end: SSC commands on the drive model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tapepath.errors import DecodeError
from tapepath.scsi.attributes import (
    Attribute,
    AttributeIdList,
    AttributeList,
    MamAttribute,
    ReadAttribute,
)
from tapepath.scsi.changer import PreventAllowMediumRemoval
from tapepath.scsi.density import DensityDescriptor, DensitySupport, ReportDensitySupport
from tapepath.scsi.log import LogSense, TapeAlert
from tapepath.scsi.mode import (
    BlockDescriptor,
    ModePage,
    ModeParameters,
    ModeSelect6,
    ModeSelect10,
    ModeSense6,
    ModeSense10,
)
from tapepath.scsi.position import PositionExtended, PositionLong, PositionShort, ReadPosition
from tapepath.scsi.tape import (
    BlockLimits,
    Erase,
    LoadUnload,
    Locate10,
    Locate16,
    MaximumLogicalObjectIdentifier,
    Read6,
    ReadBlockLimits,
    Rewind,
    Space6,
    Space16,
    Write6,
    WriteFilemarks6,
)
from tapepath.scsi.tape_pages import DataCompressionPage
from tapepath.testing._check import Check, SenseKey, invalid_field
from tapepath.testing._front import Front
from tapepath.testing.drive import MAX_BLOCK, DriveModel
from tapepath.testing.nexus import MODE_CHANGED, Nexus
from tapepath.testing.reservations import Access

if TYPE_CHECKING:
    from tapepath.testing.engine import Session
    from tapepath.testing.library import VirtualLibrary

__all__ = ["DriveFront"]

_DENSITY = DensityDescriptor(
    primary_code=0x5E,
    secondary_code=0x5E,
    wrtok=True,
    deflt=True,
    bits_per_mm=20670,
    media_width=127,
    tracks=6656,
    capacity=12_000_000,
    assigning_organization="LTO-CVE",
    density_name="U-832",
    description="Ultrium 8/16T",
)


class DriveFront(Front):
    """SSC commands for one drive."""

    PDT = 0x01
    PRODUCT = "VIRTUAL LTO-8"

    def __init__(self, lib: VirtualLibrary, index: int) -> None:
        super().__init__(lib, lib.drive_lus[index])
        self.drive: DriveModel = lib.drive_models[index]
        w, r = Access.WRITE, Access.READ
        self.table.update(
            {
                0x08: (self.read, r, False),
                0x0A: (self.write, w, False),
                0x10: (self.write_filemarks, w, False),
                0x11: (self.space, w, False),
                0x91: (self.space, w, False),
                0x2B: (self.locate, w, False),
                0x92: (self.locate, w, False),
                0x34: (self.read_position, r, False),
                0x01: (self.rewind, w, False),
                0x1B: (self.load_unload, w, False),
                0x05: (self.read_block_limits, r, True),
                0x1A: (self.mode_sense, r, True),
                0x5A: (self.mode_sense, r, True),
                0x15: (self.mode_select, w, False),
                0x55: (self.mode_select, w, False),
                0x44: (self.report_density_support, r, True),
                0x4D: (self.log_sense, r, True),
                0x1E: (self.prevent_allow, w, False),
                0x19: (self.erase, w, False),
                0x8C: (self.read_attribute, r, False),
            }
        )

    def test_unit_ready(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """TEST UNIT READY: NOT READY 3A/00 without a loaded tape."""
        super().test_unit_ready(s, nx, cdb, data_out, n)
        self.drive.check_ready()
        return b""

    # ---- data -------------------------------------------------------------------------

    def read(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """READ(6)."""
        cmd = Read6.from_bytes(cdb)
        if cmd.transfer_length == 0:
            return b""
        return self.drive.read(cmd.transfer_length, fixed=cmd.fixed, sili=cmd.sili)

    def write(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """WRITE(6): the data must be as long as the CDB announces."""
        cmd = Write6.from_bytes(cdb)
        if cmd.transfer_length == 0:
            return b""
        if cmd.fixed:
            self.drive.write(data_out, fixed=True, count=cmd.transfer_length)
        else:
            if len(data_out) != cmd.transfer_length:
                raise invalid_field(2)
            self.drive.write(data_out, fixed=False, count=1)
        return b""

    def write_filemarks(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """WRITE FILEMARKS(6) (setmarks are not supported)."""
        cmd = WriteFilemarks6.from_bytes(cdb)
        if cmd.wsmk:
            raise invalid_field(1)
        self.drive.write_filemarks(cmd.count)
        return b""

    def erase(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """ERASE: end of data at the position."""
        Erase.from_bytes(cdb)
        self.drive.erase()
        return b""

    # ---- motion -----------------------------------------------------------------------

    def space(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """SPACE(6) and SPACE(16): blocks, filemarks, end of data."""
        cmd: Space6 | Space16
        if cdb[0] == 0x11:
            cmd = Space6.from_bytes(cdb)
        else:
            cmd = Space16.from_bytes(cdb)
            if cmd.parameter_length:
                raise invalid_field(12)
        code = int(cmd.code)
        if code == 0:
            self.drive.space_blocks(cmd.count)
        elif code == 1:
            self.drive.space_filemarks(cmd.count)
        elif code == 3:
            self.drive.space_eod()
        else:
            raise invalid_field(1)
        return b""

    def locate(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """LOCATE(10) and LOCATE(16) (one partition: changing to another is 24/00)."""
        drive = self.drive
        if cdb[0] == 0x2B:
            cmd10 = Locate10.from_bytes(cdb)
            if cmd10.cp and cmd10.partition:
                raise invalid_field(8)
            drive.locate(cmd10.block_address)
            return b""
        cmd = Locate16.from_bytes(cdb)
        if cmd.cp and cmd.partition:
            raise invalid_field(3)
        if cmd.dest_type == 0:
            drive.locate(cmd.logical_identifier)
        elif cmd.dest_type == 1:
            drive.rewind()
            if cmd.logical_identifier:
                drive.space_filemarks(cmd.logical_identifier)
        elif cmd.dest_type == 3:
            drive.space_eod()
        else:
            raise invalid_field(1)
        return b""

    def rewind(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """REWIND."""
        Rewind.from_bytes(cdb)
        self.drive.rewind()
        return b""

    def load_unload(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """LOAD UNLOAD (retension and EOT are not supported)."""
        cmd = LoadUnload.from_bytes(cdb)
        if cmd.eot or cmd.reten:
            raise invalid_field(4)
        if cmd.load:
            self.drive.load()
        else:
            self.drive.unload()
        return b""

    def read_position(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """READ POSITION: short (00h/01h), long (06h) and extended (08h) forms."""
        cmd = ReadPosition.from_bytes(cdb)
        pos = self.drive.read_position()
        sa = cmd.service_action
        flags = {"bop": pos.bop, "eop": pos.eop, "bpew": pos.eop}
        if sa in (0, 1, 8):  # short and extended forms carry the same locations
            form = PositionShort if sa != 8 else PositionExtended
            return form(**flags, first_location=pos.block, last_location=pos.block).to_bytes()
        if sa == 6:
            return PositionLong(
                **flags, logical_object_number=pos.block, logical_file_identifier=pos.file
            ).to_bytes()
        raise invalid_field(1)

    def prevent_allow(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """PREVENT ALLOW MEDIUM REMOVAL."""
        cmd = PreventAllowMediumRemoval.from_bytes(cdb)
        self.drive.set_prevent(nx.id, bool(cmd.prevent & 1))
        return b""

    # ---- information ------------------------------------------------------------------

    def read_block_limits(
        self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int
    ) -> bytes:
        """READ BLOCK LIMITS (and the MLOI form)."""
        cmd = ReadBlockLimits.from_bytes(cdb)
        if cmd.mloi:
            cart = self.drive.cartridge
            top = cart.image.capacity if cart is not None else 0
            return MaximumLogicalObjectIdentifier(top).to_bytes()
        return BlockLimits(max_block_length=MAX_BLOCK, min_block_length=1).to_bytes()

    def report_density_support(
        self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int
    ) -> bytes:
        """REPORT DENSITY SUPPORT: one LTO-8 density."""
        cmd = ReportDensitySupport.from_bytes(cdb)
        if cmd.medium_type:
            raise invalid_field(1)
        if cmd.media:
            self.drive.check_ready()
        return DensitySupport((_DENSITY,)).to_bytes()

    def log_sense(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """LOG SENSE: supported pages (00h) and TapeAlert (2Eh, cleared by reading)."""
        cmd = LogSense.from_bytes(cdb)
        if cmd.subpage_code:
            raise invalid_field(3)
        if cmd.page_code == 0x00:
            pages = bytes((0x00, 0x2E))
            return bytes((0x00, 0x00)) + len(pages).to_bytes(2, "big") + pages
        if cmd.page_code == TapeAlert.PAGE_CODE:
            flags = frozenset(self.drive.tape_alerts)
            self.drive.tape_alerts.clear()
            return TapeAlert(flags).to_bytes()
        raise invalid_field(2)

    def attributes(self) -> list[Attribute]:
        """The medium auxiliary memory attributes of the loaded cartridge."""
        cart = self.drive.cartridge
        if cart is None:
            raise Check(SenseKey.NOT_READY, 0x3A, 0x00)
        img = cart.image
        mib = 1 << 20
        out = [
            Attribute.binary(
                MamAttribute.REMAINING_CAPACITY_IN_PARTITION,
                max(0, img.capacity - img.used) // mib,
                8,
                read_only=True,
            ),
            Attribute.binary(
                MamAttribute.MAXIMUM_CAPACITY_IN_PARTITION, img.capacity // mib, 8, read_only=True
            ),
        ]
        if cart.barcode is not None:
            out.append(Attribute.ascii(MamAttribute.BARCODE, cart.barcode, 32))
        return out

    def read_attribute(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """READ ATTRIBUTE: values (00h) and the attribute list (01h) of partition 0."""
        cmd = ReadAttribute.from_bytes(cdb)
        if cmd.partition or cmd.logical_volume:
            raise invalid_field(7)
        attrs = [a for a in self.attributes() if a.id >= cmd.first_attribute]
        if int(cmd.service_action) == 0:
            if cmd.first_attribute and not attrs:
                raise invalid_field(8)
            return AttributeList(tuple(attrs)).to_bytes()
        if int(cmd.service_action) == 1:
            return AttributeIdList(tuple(a.id for a in attrs)).to_bytes()
        raise invalid_field(1)

    # ---- mode -------------------------------------------------------------------------

    def _pages(self, changeable: bool) -> dict[int, ModePage]:
        if changeable:
            dc = DataCompressionPage(dce=True)
        else:
            dc = DataCompressionPage(
                dce=self.drive.compression,
                dcc=True,
                dde=True,
                compression_algorithm=1,
                decompression_algorithm=1,
            )
        return {0x0F: dc.to_mode_page()}

    def mode_sense(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """MODE SENSE (6)/(10): block descriptor and the data compression page."""
        cmd: ModeSense6 | ModeSense10
        ten = cdb[0] == 0x5A
        cmd = ModeSense10.from_bytes(cdb) if ten else ModeSense6.from_bytes(cdb)
        pc = int(cmd.page_control)
        pages = self._pages(pc == 1)
        if cmd.subpage_code not in (0, 0xFF):
            raise invalid_field(3)
        if cmd.page_code == 0x3F:
            chosen = list(pages.values())
        elif cmd.page_code == 0:
            chosen = []
        elif cmd.page_code in pages:
            chosen = [pages[cmd.page_code]]
        else:
            raise invalid_field(2)
        drive = self.drive
        blocks: tuple[BlockDescriptor, ...] = ()
        if not cmd.dbd:
            length = 0xFFFFFF if pc == 1 else drive.block_size
            blocks = (BlockDescriptor(drive.density_code if pc != 1 else 0, 0, length),)
        cart = drive.cartridge
        wp = 0x80 if cart is not None and cart.write_protected and pc != 1 else 0
        params = ModeParameters(
            device_specific_parameter=wp | 0x10,
            block_descriptors=blocks,
            pages=tuple(chosen),
            ten_byte=ten,
        )
        return params.to_bytes()

    def mode_select(self, s: Session, nx: Nexus, cdb: bytes, data_out: bytes, n: int) -> bytes:
        """MODE SELECT (6)/(10): block length from the block descriptor, compression page."""
        ten = cdb[0] == 0x55
        cmd: ModeSelect6 | ModeSelect10
        cmd = ModeSelect10.from_bytes(cdb) if ten else ModeSelect6.from_bytes(cdb)
        if len(data_out) != cmd.parameter_list_length:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x1A, 0x00)
        if not data_out:
            return b""
        try:
            params = ModeParameters.from_bytes(data_out, ten_byte=ten)
        except DecodeError:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00) from None
        block_size = self.drive.block_size
        compression = self.drive.compression
        if len(params.block_descriptors) > 1:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00)
        for bd in params.block_descriptors:
            if bd.block_length > MAX_BLOCK:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00)
            block_size = bd.block_length
        for page in params.pages:
            if page.page_code != 0x0F:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00)
            try:
                compression = DataCompressionPage.from_mode_page(page).dce
            except DecodeError:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00) from None
        changed = (block_size, compression) != (self.drive.block_size, self.drive.compression)
        self.drive.block_size = block_size
        self.drive.compression = compression
        if changed:
            self.lu.broadcast(*MODE_CHANGED, except_nexus=nx)
        return b""
