"""A tape library's robot: inventory and cartridge moves, over every control path.

:class:`Library` is what :func:`tapepath.open_library` returns. It reads the inventory
one element type at a time (as tgtd needs), pages through it by allocation length, and
moves cartridges by element address, by barcode or by mtx number. It is thread-safe:
operations run one at a time, in the order their threads reached them.
"""

from __future__ import annotations

from typing import Union

import structlog

from tapepath.api import DEFAULT_TIMEOUT, DeviceHandle
from tapepath.errors import (
    CheckConditionError,
    DecodeError,
    ElementAddressError,
    ElementEmptyError,
    ElementFullError,
    UnknownElementError,
)
from tapepath.inventory import Element, ElementKind, Inventory, element_from_descriptor
from tapepath.scsi._wire import u16, u24
from tapepath.scsi.changer import ExchangeMedium, InitializeElementStatus, MoveMedium
from tapepath.scsi.classify import UnitAttention
from tapepath.scsi.element_status import ElementDescriptor, ElementStatus, ReadElementStatus
from tapepath.transport.base import Response, Transport

__all__ = ["ElementRef", "Library", "fill_cut_descriptor"]

log = structlog.get_logger("tapepath.library")

#: What the move functions accept for an element: the element, its address, or the
#: barcode of the cartridge it holds.
ElementRef = Union[Element, int, str]  # noqa: UP007  (a runtime alias on Python 3.10)

_KINDS = (ElementKind.TRANSPORT, ElementKind.SLOT, ElementKind.IMPORT_EXPORT, ElementKind.DRIVE)
_MAX_ALLOCATION = 0xFFFFFF
_MAX_PAGES = 4096
_MIN_PAGE = 64
_HEADER = 8
#: The fixed part of an element descriptor, which the codec needs whole.
_FIXED = 12
#: Bytes of a cut descriptor that must have arrived for it to be kept: the address
#: and the flags byte (full, except, access).
_MIN_RECEIVED = 3


def fill_cut_descriptor(data: bytes, alloc: int) -> bytes:
    """Complete the fixed 12 bytes of a last descriptor the changer sent cut.

    tgtd announces 8 bytes more than it sends; without volume tags its descriptors
    are 16 bytes long, so the last one of each answer arrives with 8 bytes and the codec
    (which needs the 12 fixed bytes) would drop it: the last slot, the import/export
    element or the transport would vanish from the inventory. When the answer is
    shorter than both the length it announces and the allocation length (so the
    changer, not the allocation, cut it) and the cut descriptor holds at least its
    address and flags, the missing fixed bytes are zero-filled, as mtx's zero-filled
    buffer does; the codec then returns it as ``partial``. Zeros read as "not known":
    no source address (SVALID 0), no ASC/ASCQ. Re-reading that element alone does not
    help on tgtd: the one-element answer is cut the same way.

    Args:
        data: the READ ELEMENT STATUS data as received.
        alloc: the allocation length it was asked with.

    Returns:
        ``data``, or ``data`` with zeros appended (at most 11 bytes).
    """
    if len(data) < 2 * _HEADER or len(data) >= alloc:
        return data
    if len(data) >= _HEADER + u24(data, 5):
        return data
    pos = _HEADER
    while pos + _HEADER <= len(data):
        dlen = u16(data, pos + 2)
        start = pos + _HEADER
        stop = start + u24(data, pos + 5)
        if stop > len(data):
            if dlen < _FIXED:
                return data
            received = (len(data) - start) % dlen
            if _MIN_RECEIVED <= received < _FIXED:
                log.info(
                    "element_descriptor_filled",
                    element_type=data[pos],
                    received=received,
                    filled=_FIXED - received,
                )
                return bytes(data) + bytes(_FIXED - received)
            return data
        pos = stop
    return data


class Library(DeviceHandle):
    """A medium changer behind all its control paths.

    Args:
        device: the changer: a :class:`~tapepath.multipath.MultipathDevice` (as
            :func:`tapepath.open_library` makes it) or any transport.
        timeout: seconds for ordinary commands.
        move_timeout: seconds for MOVE MEDIUM and EXCHANGE MEDIUM.
        page_bytes: the allocation length of each READ ELEMENT STATUS (the answer is
            read in as many pages as it takes).

    Element references (``src``, ``dst``) are an :class:`~tapepath.inventory.Element`,
    an element address (int), or a barcode (str: the element holding that cartridge).
    Numbers given to :meth:`load`, :meth:`unload` and :meth:`transfer` are mtx numbers:
    slots from 1 (import/export elements after the slots), drives from 0.
    """

    def __init__(
        self,
        device: Transport,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        move_timeout: float = 300.0,
        page_bytes: int = 0xFFFF,
    ) -> None:
        if not _MIN_PAGE <= page_bytes <= _MAX_ALLOCATION:
            raise ValueError(f"page_bytes must be {_MIN_PAGE}..{_MAX_ALLOCATION}, not {page_bytes}")
        if move_timeout <= 0:
            raise ValueError(f"move_timeout must be positive, not {move_timeout}")
        super().__init__(device, timeout=timeout)
        self.move_timeout = move_timeout
        self.page_bytes = page_bytes
        self._layout: Inventory | None = None
        self._voltag = True
        self._dvcid = True

    def __repr__(self) -> str:
        return f"Library({getattr(self.device, 'name', self.device.url)!r})"

    def _on_unit_attention(self, kind: UnitAttention) -> None:
        if kind is UnitAttention.POWER_ON_RESET:
            self._layout = None

    # -- inventory -----------------------------------------------------------------------

    def inventory(self) -> Inventory:
        """Read the whole inventory now (READ ELEMENT STATUS, one element type at a time).

        Returns:
            The elements by kind, in address order, numbered as mtx numbers them;
            barcodes are read (VOLTAG) and drive serial numbers (DVCID) when the
            changer gives them.

        Raises:
            TapepathError: a typed error when the changer refuses or no path is left.
        """
        with self._lock:
            lists: dict[ElementKind, list[ElementDescriptor]] = {
                kind: self._read_kind(kind) for kind in _KINDS
            }
            slots = lists[ElementKind.SLOT]
            inv = Inventory(
                transports=[
                    element_from_descriptor(d, ElementKind.TRANSPORT, i)
                    for i, d in enumerate(lists[ElementKind.TRANSPORT])
                ],
                slots=[
                    element_from_descriptor(d, ElementKind.SLOT, i + 1) for i, d in enumerate(slots)
                ],
                import_export=[
                    element_from_descriptor(d, ElementKind.IMPORT_EXPORT, len(slots) + i + 1)
                    for i, d in enumerate(lists[ElementKind.IMPORT_EXPORT])
                ],
                drives=[
                    element_from_descriptor(d, ElementKind.DRIVE, i)
                    for i, d in enumerate(lists[ElementKind.DRIVE])
                ],
            )
            self._layout = inv
            return inv

    def descriptors(
        self, kind: ElementKind, *, voltag: bool = True, dvcid: bool = False
    ) -> list[ElementDescriptor]:
        """Every element descriptor of one element type, as the changer reports them.

        READ ELEMENT STATUS for ``kind`` only, paged by allocation length, through the
        multipath device with failover. A changer that refuses a bit with ILLEGAL
        REQUEST / INVALID FIELD IN CDB (24h) is asked again without DVCID, then without
        VOLTAG. A last descriptor the changer sends cut below its 12 fixed bytes (tgtd
        without VOLTAG) is kept: the missing bytes read as zeros and the descriptor is
        marked ``partial`` (its source address then reads as not known).

        Args:
            kind: the element type.
            voltag: ask for the volume tags (barcodes).
            dvcid: ask for the device identifiers (drive serial numbers; drives only).

        Returns:
            The descriptors in address order.

        Raises:
            TapepathError: a typed error when the changer refuses or no path is left.
            DecodeError: the changer's answer does not parse.
        """
        with self._lock:
            bits = {"voltag": voltag, "dvcid": dvcid}
            return self._read_descriptors(kind, bits)

    def execute(
        self,
        cdb: bytes | bytearray,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float | None = None,
        what: str | None = None,
        repeatable: bool = False,
    ) -> Response:
        """Send one command to the changer through the multipath device.

        The command goes through the same runner as the library's own commands: it
        fails over to another control path (the recovery hook decides what is
        resent), passes over unit attentions, retries BUSY and "becoming ready", and
        turns a failure into a typed error.

        Args:
            cdb: the command descriptor block.
            data_out: the data to send.
            data_in_len: the most bytes to accept back.
            timeout: seconds (default: the library's ``timeout``).
            what: the command in words, for error messages (default: its opcode).
            repeatable: sending it twice does no harm (an ABORTED COMMAND is then
                retried); leave False for commands that move cartridges.

        Returns:
            The response (GOOD or recovered): ``data`` holds what came back.

        Raises:
            ValueError: an empty CDB.
            TapepathError: a typed error (see :func:`tapepath.api.error_for`),
                NoPathError, an AmbiguityError from recovery, PathFailureError.
        """
        command = bytes(cdb)
        if not command:
            raise ValueError("execute: an empty CDB")
        with self._lock:
            return self._run(
                command,
                what or f"command {command[0]:02X}h",
                data_out=bytes(data_out),
                data_in_len=data_in_len,
                timeout=timeout,
                repeatable=repeatable,
            )

    def _read_kind(self, kind: ElementKind) -> list[ElementDescriptor]:
        """The inventory's read of one type: VOLTAG, DVCID for drives, and whatever bit
        the changer refused stays off for the next inventories."""
        bits = {"voltag": self._voltag, "dvcid": kind is ElementKind.DRIVE and self._dvcid}
        found = self._read_descriptors(kind, bits)
        if not bits["voltag"]:
            self._voltag = False
        if kind is ElementKind.DRIVE and not bits["dvcid"]:
            self._dvcid = False
        return found

    def _read_descriptors(
        self, kind: ElementKind, bits: dict[str, bool]
    ) -> list[ElementDescriptor]:
        """Every descriptor of one element type, paging by allocation length; ``bits``
        (voltag, dvcid) lose what the changer refuses."""
        code = int(kind.element_type)
        found: dict[int, ElementDescriptor] = {}
        start = 0
        alloc = self.page_bytes
        for _ in range(_MAX_PAGES):
            try:
                data = self._read_page(code, start, alloc, bits)
            except ElementAddressError:
                if not found:
                    raise
                break  # asked past the last element of this type: there is no more
            try:
                status = ElementStatus.from_bytes(fill_cut_descriptor(data, alloc))
            except DecodeError as exc:
                raise DecodeError(
                    f"READ ELEMENT STATUS ({kind.value}, from {start:#x}): {exc}"
                ) from None
            got = [d for d in status.descriptors(code) if d.address >= start]
            if not got:
                break
            dlen = max(
                (p.descriptor_length or 0 for p in status.pages if p.element_type == code),
                default=0,
            )
            # The changer puts in every whole descriptor that fits; when one more would
            # still have fitted, it has no more to give (a short last descriptor is then
            # the device's own, as tgtd sends it, and is kept).
            if len(data) + max(dlen, 1) <= alloc:
                found.update((d.address, d) for d in got)
                break
            complete = [d for d in got if not d.partial]
            if not complete:
                need = min((status.byte_count or 0) + 8, _MAX_ALLOCATION)
                if need > alloc:
                    alloc = need  # not even one descriptor fitted: ask for the whole report
                    continue
                found.update((d.address, d) for d in got)
                break
            found.update((d.address, d) for d in complete)
            last = max(d.address for d in complete)
            if last >= 0xFFFF:
                break
            start = last + 1
        return [found[a] for a in sorted(found)]

    def _read_page(self, code: int, start: int, alloc: int, bits: dict[str, bool]) -> bytes:
        while True:
            cdb = ReadElementStatus(
                element_type=code,
                voltag=bits["voltag"],
                starting_address=start,
                dvcid=bits["dvcid"],
                allocation_length=alloc,
            )
            try:
                r = self._run(cdb.to_bytes(), "READ ELEMENT STATUS", data_in_len=alloc)
            except CheckConditionError as exc:
                sense = exc.sense
                if getattr(sense, "sense_key", None) != 5 or getattr(sense, "asc", None) != 0x24:
                    raise
                # an invalid field: drop the optional bits one at a time
                if cdb.dvcid:
                    bits["dvcid"] = False
                    continue
                if cdb.voltag:
                    bits["voltag"] = False
                    continue
                raise
            return r.data

    # -- element references ------------------------------------------------------------

    def _known(self) -> Inventory:
        return self._layout if self._layout is not None else self.inventory()

    def _address(self, ref: ElementRef, inv: Inventory | None = None) -> int:
        if isinstance(ref, Element):
            return ref.address
        if isinstance(ref, bool) or not isinstance(ref, (int, str)):
            raise TypeError(f"an element is an Element, an address or a barcode, not {ref!r}")
        if isinstance(ref, int):
            if not 0 <= ref <= 0xFFFF:
                raise ValueError(f"element address {ref} is not 0..65535")
            return ref
        return (inv if inv is not None else self.inventory()).find(ref).address

    def _label(self, address: int) -> str:
        if self._layout is not None:
            try:
                return f"{self._layout.element(address).label} ({address:#x})"
            except UnknownElementError:
                pass
        return f"element {address:#x}"

    def _transport_address(self) -> int:
        inv = self._known()
        return inv.transports[0].address if inv.transports else 0

    # -- moves ---------------------------------------------------------------------------

    def move(self, src: ElementRef, dst: ElementRef, *, invert: bool = False) -> None:
        """Move a cartridge from ``src`` to ``dst`` (MOVE MEDIUM).

        Args:
            src: the element holding the cartridge (Element, address or barcode).
            dst: the empty destination element.
            invert: turn the cartridge over (two-sided media; most libraries refuse).

        Raises:
            ElementEmptyError: nothing at ``src`` (3B/0E).
            ElementFullError: ``dst`` is full (3B/0D).
            ElementAddressError: an address the changer does not have (21/01).
            MediumRemovalPreventedError: the drive at ``src`` prevents removal (53/02).
            UnknownElementError: no cartridge has that barcode.
            AmbiguousMoveError: a path failed during the move and recovery could not tell
                whether it happened.
        """
        with self._lock:
            inv = self.inventory() if isinstance(src, str) or isinstance(dst, str) else None
            s, d = self._address(src, inv), self._address(dst, inv)
            self._move(s, d, invert=invert)

    def _move(self, src: int, dst: int, *, invert: bool = False, what: str = "") -> None:
        cdb = MoveMedium(self._transport_address(), src, dst, invert)
        text = what or f"MOVE MEDIUM {self._label(src)} -> {self._label(dst)}"
        began = self._clock()
        self._run(cdb.to_bytes(), text, timeout=self.move_timeout, repeatable=False)
        log.info(
            "library_move",
            device=getattr(self.device, "name", ""),
            source=src,
            destination=dst,
            seconds=round(self._clock() - began, 4),
        )

    def exchange(self, src: ElementRef, dst1: ElementRef, dst2: ElementRef | None = None) -> None:
        """Exchange cartridges (EXCHANGE MEDIUM): ``src`` goes to ``dst1``, the cartridge
        of ``dst1`` goes to ``dst2`` (default: to ``src``, a swap).

        Raises:
            CheckConditionError: typed as for :meth:`move`; a changer without EXCHANGE
                MEDIUM (tgtd) refuses with ILLEGAL REQUEST.
        """
        with self._lock:
            refs = (src, dst1, dst2)
            inv = self.inventory() if any(isinstance(r, str) for r in refs) else None
            s = self._address(src, inv)
            d1 = self._address(dst1, inv)
            d2 = s if dst2 is None else self._address(dst2, inv)
            cdb = ExchangeMedium(self._transport_address(), s, d1, d2)
            text = f"EXCHANGE MEDIUM {self._label(s)} -> {self._label(d1)} -> {self._label(d2)}"
            self._run(cdb.to_bytes(), text, timeout=self.move_timeout, repeatable=False)
            log.info(
                "library_exchange",
                device=getattr(self.device, "name", ""),
                source=s,
                first_destination=d1,
                second_destination=d2,
            )

    def load(self, slot: int, drive: int = 0) -> None:
        """Load the cartridge of slot ``slot`` into drive ``drive`` (mtx numbers).

        Raises:
            UnknownElementError: no such slot or drive.
            ElementEmptyError: the slot is empty.
            ElementFullError: the drive is full.
        """
        with self._lock:
            inv = self._known()
            s, d = inv.slot(slot), inv.drive(drive)
            self._move(
                s.address,
                d.address,
                what=f"load slot {slot} ({s.address:#x}) into drive {drive} ({d.address:#x})",
            )

    def unload(self, drive: int = 0, slot: int | None = None) -> int:
        """Put the cartridge of drive ``drive`` back in a slot (mtx numbers).

        Args:
            drive: the drive number (from 0).
            slot: the slot number; None: the slot the cartridge came from when it is
                known and empty, else the first empty slot (as mtx does).

        Returns:
            The slot number the cartridge went to.

        Raises:
            ElementEmptyError: the drive is empty.
            ElementFullError: the slot is full, or no slot is empty.
            MediumRemovalPreventedError: the drive prevents removal (53/02): unload the
                tape in the drive first, or allow removal.
        """
        with self._lock:
            inv = self.inventory()
            d = inv.drive(drive)
            if slot is not None:
                target = inv.slot(slot)
            else:
                if not d.full:
                    raise ElementEmptyError(f"unload: drive {drive} is empty")
                target = self._home_of(d, inv)
            self._move(
                d.address,
                target.address,
                what=(
                    f"unload drive {drive} ({d.address:#x}) into slot {target.ordinal} "
                    f"({target.address:#x})"
                ),
            )
            return target.ordinal

    @staticmethod
    def _home_of(d: Element, inv: Inventory) -> Element:
        if d.source is not None:
            try:
                home = inv.element(d.source)
            except UnknownElementError:
                home = None
            if (
                home is not None
                and home.kind in (ElementKind.SLOT, ElementKind.IMPORT_EXPORT)
                and not home.full
            ):
                return home
        empty = inv.first_empty_slot()
        if empty is None:
            raise ElementFullError(f"unload: drive {d.ordinal}: no slot is empty")
        return empty

    def transfer(self, src_slot: int, dst_slot: int) -> None:
        """Move a cartridge from one slot to another (mtx numbers).

        Raises:
            UnknownElementError: no such slot.
            ElementEmptyError: the source slot is empty.
            ElementFullError: the destination slot is full.
        """
        with self._lock:
            inv = self._known()
            s, d = inv.slot(src_slot), inv.slot(dst_slot)
            self._move(
                s.address,
                d.address,
                what=(
                    f"transfer slot {src_slot} ({s.address:#x}) to slot {dst_slot} ({d.address:#x})"
                ),
            )

    def drive_for(self, serial: str) -> Element:
        """The drive element whose serial number (DVCID) is ``serial``, read now.

        Raises:
            UnknownElementError: no drive reports it (or the changer gives no DVCID).
        """
        return self.inventory().drive_for(serial)

    def initialize(self, timeout: float = 1800.0) -> None:
        """Make the changer inventory every element again (INITIALIZE ELEMENT STATUS).

        Args:
            timeout: seconds (mtx allows 30 minutes).
        """
        with self._lock:
            self._run(
                InitializeElementStatus().to_bytes(), "INITIALIZE ELEMENT STATUS", timeout=timeout
            )
            self._layout = None
