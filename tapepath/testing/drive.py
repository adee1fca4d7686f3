"""The SSC model of one tape drive: load state, block mode, position, and tape motion.

Methods work on values and raise :class:`~tapepath.testing._check.Check` for the
conditions SSC reports as CHECK CONDITION (with FILEMARK, EOM and ILI bits and the
INFORMATION residual where SSC puts one). The SCSI front end turns CDBs into these
calls; tests may also call them directly.
"""

from __future__ import annotations

from attrs import define, field

from tapepath.testing._check import Check, SenseKey
from tapepath.testing.tape_image import FILEMARK, Cartridge

__all__ = ["DriveModel", "PositionInfo"]

MAX_BLOCK = 0x100000  # largest record (READ BLOCK LIMITS maximum)
MIN_BLOCK = 1


def _not_ready_no_medium() -> Check:
    return Check(SenseKey.NOT_READY, 0x3A, 0x00)


@define(frozen=True)
class PositionInfo:
    """Where the tape is, as READ POSITION reports it.

    Attributes:
        block: the logical object number (records and filemarks before the position).
        file: the number of filemarks before the position.
        bop: at beginning of partition.
        eop: in the early-warning zone (beyond programmable early warning).
        eod: at end of data.
    """

    block: int
    file: int
    bop: bool
    eop: bool
    eod: bool


@define
class DriveModel:
    """One tape drive.

    Attributes:
        serial: the drive's serial number (VPD 80h, and DVCID in the changer).
        vendor: INQUIRY vendor identification (8 characters).
        product: INQUIRY product identification (16 characters).
        cartridge: the cartridge in the drive, loaded or not, or None.
        loaded: the tape is threaded and ready (LOAD done).
        position: the logical object number while loaded.
        block_size: 0 for variable-block mode, else the fixed block length.
        compression: the data compression page's DCE bit.
        preventers: the I_T nexuses (ids) that sent PREVENT MEDIUM REMOVAL; a lost
            nexus's prevention ends with it.
        density_code: the density code reported in the block descriptor.
        tape_alerts: TapeAlert flags (1..64) set now; LOG SENSE of page 2Eh clears them.
    """

    serial: str
    vendor: str = "TAPEPATH"
    product: str = "VIRTUAL LTO-8"
    cartridge: Cartridge | None = None
    loaded: bool = False
    position: int = 0
    block_size: int = 0
    compression: bool = True
    preventers: set[int] = field(factory=set)
    density_code: int = 0x5E
    tape_alerts: set[int] = field(factory=set)
    _pending_eom: bool = field(default=False, alias="_pending_eom")

    @property
    def prevent(self) -> bool:
        """Medium removal is prevented (by at least one I_T nexus)."""
        return bool(self.preventers)

    @prevent.setter
    def prevent(self, value: bool) -> None:
        """Set (as nexus 0, "the operator") or clear every prevention."""
        if value:
            self.preventers.add(0)
        else:
            self.preventers.clear()

    def set_prevent(self, nexus_id: int, prevent: bool) -> None:
        """PREVENT ALLOW MEDIUM REMOVAL from one I_T nexus (SPC: prevention is per nexus)."""
        if prevent:
            self.preventers.add(nexus_id)
        else:
            self.preventers.discard(nexus_id)

    def release(self, nexus_id: int) -> None:
        """A nexus was lost: its prevention ends."""
        self.preventers.discard(nexus_id)

    # ---- medium handling -------------------------------------------------------------

    def insert(self, cartridge: Cartridge) -> None:
        """Put a cartridge in the drive and load it (the changer's MOVE MEDIUM does this)."""
        if self.cartridge is not None:
            raise ValueError(f"drive {self.serial} already holds a cartridge")
        self.cartridge = cartridge
        self.loaded = True
        self.position = 0

    def eject(self) -> Cartridge:
        """Take the cartridge out (the changer's MOVE MEDIUM from this drive)."""
        if self.cartridge is None:
            raise ValueError(f"drive {self.serial} is empty")
        cart = self.cartridge
        self.cartridge = None
        self.loaded = False
        self.position = 0
        return cart

    def load(self) -> None:
        """LOAD UNLOAD with LOAD=1: thread the tape and go to BOP."""
        if self.cartridge is None:
            raise _not_ready_no_medium()
        self.loaded = True
        self.position = 0

    def unload(self) -> None:
        """LOAD UNLOAD with LOAD=0: rewind and unthread, ready for the robot."""
        if self.cartridge is None:
            raise _not_ready_no_medium()
        if self.prevent:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x53, 0x02)
        self.loaded = False
        self.position = 0

    def reset(self) -> None:
        """A drive reset: the tape rewinds (position lost to the host); settings stay."""
        self.position = 0

    @property
    def ready(self) -> bool:
        """A cartridge is loaded and ready."""
        return self.cartridge is not None and self.loaded

    def _cart(self) -> Cartridge:
        cart = self.cartridge
        if cart is None or not self.loaded:
            raise _not_ready_no_medium()
        return cart

    def check_ready(self) -> None:
        """Raise NOT READY 3A/00 unless a tape is loaded (TEST UNIT READY)."""
        self._cart()

    # ---- position ---------------------------------------------------------------------

    def read_position(self) -> PositionInfo:
        """The current position."""
        cart = self._cart()
        img = cart.image
        pos = self.position
        return PositionInfo(
            block=pos,
            file=img.file_number(pos),
            bop=pos == 0,
            eop=img.past_early_warning() and pos == img.eod,
            eod=pos == img.eod,
        )

    def rewind(self) -> None:
        """Go to BOP."""
        self._cart()
        self.position = 0

    def locate(self, block: int) -> None:
        """Go to logical object ``block``; beyond end of data is BLANK CHECK at EOD."""
        img = self._cart().image
        if block > img.eod:
            self.position = img.eod
            raise Check(SenseKey.BLANK_CHECK, 0x00, 0x05)
        self.position = block

    def space_eod(self) -> None:
        """SPACE to end of data."""
        self.position = self._cart().image.eod

    def space_blocks(self, count: int) -> None:
        """SPACE ``count`` records (negative: backwards); stops at a filemark or BOP/EOD."""
        objs = self._cart().image.objects
        pos = self.position
        if count >= 0:
            for done in range(count):
                if pos >= len(objs):
                    self.position = pos
                    raise Check(SenseKey.BLANK_CHECK, 0x00, 0x05, information=count - done)
                obj = objs[pos]
                pos += 1
                if obj is FILEMARK:
                    self.position = pos
                    raise Check(
                        SenseKey.NO_SENSE, 0x00, 0x01, filemark=True, information=count - done
                    )
        else:
            want = -count
            for done in range(want):
                if pos == 0:
                    self.position = 0
                    raise Check(SenseKey.NO_SENSE, 0x00, 0x04, eom=True, information=want - done)
                if objs[pos - 1] is FILEMARK:
                    self.position = pos - 1
                    raise Check(
                        SenseKey.NO_SENSE, 0x00, 0x01, filemark=True, information=want - done
                    )
                pos -= 1
        self.position = pos

    def space_filemarks(self, count: int) -> None:
        """SPACE ``count`` filemarks (negative: backwards, ending on the BOP side)."""
        objs = self._cart().image.objects
        pos = self.position
        if count >= 0:
            left = count
            while left:
                if pos >= len(objs):
                    self.position = pos
                    raise Check(SenseKey.BLANK_CHECK, 0x00, 0x05, information=left)
                if objs[pos] is FILEMARK:
                    left -= 1
                pos += 1
        else:
            left = -count
            while left:
                if pos == 0:
                    self.position = 0
                    raise Check(SenseKey.NO_SENSE, 0x00, 0x04, eom=True, information=left)
                pos -= 1
                if objs[pos] is FILEMARK:
                    left -= 1
        self.position = pos

    # ---- data -------------------------------------------------------------------------

    def _check_writable(self, cart: Cartridge) -> None:
        if cart.write_protected:
            raise Check(SenseKey.DATA_PROTECT, 0x27, 0x00)

    def write(self, data: bytes, *, fixed: bool, count: int) -> None:
        """WRITE: one record (variable mode) or ``count`` blocks of ``block_size`` (fixed).

        Raises:
            Check: ILLEGAL REQUEST for a block size mismatch, DATA PROTECT, VOLUME
                OVERFLOW at physical end of tape, or (after writing) NO SENSE with EOM
                set and ASC 00/02 in the early-warning zone.
        """
        cart = self._cart()
        self._check_writable(cart)
        img = cart.image
        if fixed:
            if self.block_size == 0:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, field_pointer=1)
            size = self.block_size
            if len(data) != size * count:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, field_pointer=2)
            chunks = [data[i * size : (i + 1) * size] for i in range(count)]
        else:
            if self.block_size and len(data) != self.block_size:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, field_pointer=1)
            if not MIN_BLOCK <= len(data) <= MAX_BLOCK:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, field_pointer=2)
            chunks = [data]
        img.truncate(self.position)
        for written, chunk in enumerate(chunks):
            if img.used + len(chunk) > img.capacity:
                left = len(chunks) - written if fixed else len(data)
                raise Check(SenseKey.VOLUME_OVERFLOW, 0x00, 0x02, eom=True, information=left)
            img.append(bytes(chunk))
            self.position += 1
        if img.past_early_warning():
            raise Check(SenseKey.NO_SENSE, 0x00, 0x02, eom=True, information=0)

    def write_filemarks(self, count: int) -> None:
        """WRITE FILEMARKS: ``count`` filemarks at the position (0 only flushes)."""
        cart = self._cart()
        if count == 0:
            return
        self._check_writable(cart)
        img = cart.image
        img.truncate(self.position)
        for _ in range(count):
            img.append(FILEMARK)
        self.position += count

    def erase(self) -> None:
        """ERASE (long or short alike): end of data at the current position."""
        cart = self._cart()
        self._check_writable(cart)
        cart.image.truncate(self.position)

    def read(self, length: int, *, fixed: bool, sili: bool) -> bytes:
        """READ: one record of up to ``length`` bytes, or ``length`` fixed blocks.

        Returns:
            The data.

        Raises:
            Check: NO SENSE + FILEMARK (00/01) at a filemark, BLANK CHECK (00/05) at end
                of data, ILI when a record's length differs from the request (INFORMATION
                = requested minus actual, negative for an overlength record). ``data`` on
                the exception holds what was transferred.
        """
        cart = self._cart()
        objs = cart.image.objects
        if fixed:
            if self.block_size == 0:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, field_pointer=1)
            out = bytearray()
            for done in range(length):
                if self.position >= len(objs):
                    raise Check(
                        SenseKey.BLANK_CHECK,
                        0x00,
                        0x05,
                        information=length - done,
                        data=bytes(out),
                    )
                obj = objs[self.position]
                self.position += 1
                if obj is FILEMARK:
                    raise Check(
                        SenseKey.NO_SENSE,
                        0x00,
                        0x01,
                        filemark=True,
                        information=length - done,
                        data=bytes(out),
                    )
                assert isinstance(obj, bytes)
                if len(obj) != self.block_size:
                    out += obj[: self.block_size]
                    raise Check(
                        SenseKey.NO_SENSE,
                        0x00,
                        0x00,
                        ili=True,
                        information=length - done,
                        data=bytes(out),
                    )
                out += obj
            return bytes(out)
        if self.position >= len(objs):
            raise Check(SenseKey.BLANK_CHECK, 0x00, 0x05, information=length)
        obj = objs[self.position]
        self.position += 1
        if obj is FILEMARK:
            raise Check(SenseKey.NO_SENSE, 0x00, 0x01, filemark=True, information=length)
        assert isinstance(obj, bytes)
        if len(obj) == length or (sili and len(obj) < length):
            return obj
        residual = length - len(obj)
        raise Check(
            SenseKey.NO_SENSE, 0x00, 0x00, ili=True, information=residual, data=obj[:length]
        )
