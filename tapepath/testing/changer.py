"""The SMC model of the medium changer: elements, cartridges and robot moves.

Elements have addresses assigned per type from configurable start addresses. Every
cartridge is in exactly one element. A move is two steps, pick and place, so a
robot stopped (or a library powered off) between them leaves the cartridge in the
medium transport element, as on a real library.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterator

from attrs import define, field, frozen

from tapepath.testing._check import Check, SenseKey
from tapepath.testing.drive import DriveModel
from tapepath.testing.tape_image import Cartridge

__all__ = ["ChangerModel", "Element", "ElementKind", "ElementLayout"]


class ElementKind(enum.IntEnum):
    """SMC element type codes."""

    TRANSPORT = 1
    STORAGE = 2
    IMPORT_EXPORT = 3
    DATA_TRANSFER = 4


@frozen
class ElementLayout:
    """Where each element type's addresses start, and how many there are.

    Attributes:
        transport_start, transport_count: medium transport elements (robot grippers).
        storage_start, storage_count: slots.
        import_export_start, import_export_count: mail slots.
        drive_start: first data transfer element (one per drive).
    """

    transport_start: int = 0
    transport_count: int = 1
    storage_start: int = 0x1000
    storage_count: int = 24
    import_export_start: int = 0x10
    import_export_count: int = 4
    drive_start: int = 0x100

    def ranges(self, drives: int) -> dict[ElementKind, range]:
        """The address range of each element type for ``drives`` drives.

        Raises:
            ValueError: ranges overlap or leave the 16-bit address space.
        """
        out = {
            ElementKind.TRANSPORT: range(
                self.transport_start, self.transport_start + self.transport_count
            ),
            ElementKind.STORAGE: range(self.storage_start, self.storage_start + self.storage_count),
            ElementKind.IMPORT_EXPORT: range(
                self.import_export_start, self.import_export_start + self.import_export_count
            ),
            ElementKind.DATA_TRANSFER: range(self.drive_start, self.drive_start + drives),
        }
        spans = sorted((r.start, r.stop, k) for k, r in out.items() if len(r))
        for (_, stop, k1), (start, _, k2) in itertools.pairwise(spans):
            if start < stop:
                raise ValueError(f"element addresses of {k1.name} and {k2.name} overlap")
        if spans and spans[-1][1] > 0x10000:
            raise ValueError("element addresses must fit in 16 bits")
        if self.transport_count < 1:
            raise ValueError("a changer needs at least one medium transport element")
        return out


@define(eq=False)
class Element:
    """One element and what it holds.

    Attributes:
        address: the element address.
        kind: the element type.
        cartridge: the cartridge in it, or None.
        source: the address the cartridge last came from (SVALID when not None).
        drive: for a data transfer element, the drive's model.
        operator_placed: for an import/export element, the operator put the cartridge in
            (ImpExp bit).
        exception: (asc, ascq) when the element is in an abnormal state (Except bit).
    """

    address: int
    kind: ElementKind
    cartridge: Cartridge | None = None
    source: int | None = None
    drive: DriveModel | None = None
    operator_placed: bool = False
    exception: tuple[int, int] | None = None

    @property
    def full(self) -> bool:
        """A cartridge is in the element."""
        return self.cartridge is not None


def _invalid_address() -> Check:
    return Check(SenseKey.ILLEGAL_REQUEST, 0x21, 0x01)


@define
class ChangerModel:
    """The medium changer: elements by address and the robot.

    Args:
        layout: element address assignment.
        drives: the drive models, one per data transfer element, in address order.
        auto_unload: a MOVE MEDIUM from a drive whose tape is still loaded unloads it
            first (True), or fails with ILLEGAL REQUEST 53/00 (False, strict: the
            application must send LOAD UNLOAD to the drive first).
    """

    layout: ElementLayout
    drives: list[DriveModel]
    auto_unload: bool = True
    elements: dict[int, Element] = field(factory=dict)
    preventers: set[int] = field(factory=set)
    status_valid: bool = True

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

    def __attrs_post_init__(self) -> None:
        if not self.elements:
            ranges = self.layout.ranges(len(self.drives))
            for kind, rng in ranges.items():
                for i, addr in enumerate(rng):
                    drive = self.drives[i] if kind is ElementKind.DATA_TRANSFER else None
                    self.elements[addr] = Element(addr, kind, drive=drive)

    # ---- lookup -----------------------------------------------------------------------

    def of_kind(self, kind: ElementKind) -> list[Element]:
        """The elements of one type, in address order."""
        return sorted(
            (e for e in self.elements.values() if e.kind is kind), key=lambda e: e.address
        )

    def sorted_elements(self) -> list[Element]:
        """All elements in address order."""
        return [self.elements[a] for a in sorted(self.elements)]

    def element(self, address: int) -> Element:
        """The element at ``address``; ILLEGAL REQUEST 21/01 if there is none."""
        el = self.elements.get(address)
        if el is None:
            raise _invalid_address()
        return el

    def cartridges(self) -> Iterator[tuple[Element, Cartridge]]:
        """Every (element, cartridge) pair."""
        for el in self.sorted_elements():
            if el.cartridge is not None:
                yield el, el.cartridge

    def find(self, barcode: str) -> Element | None:
        """The element holding the cartridge with ``barcode``, or None."""
        for el, cart in self.cartridges():
            if cart.barcode == barcode:
                return el
        return None

    @property
    def transport(self) -> Element:
        """The first medium transport element (the robot's gripper)."""
        return self.of_kind(ElementKind.TRANSPORT)[0]

    # ---- operator actions -------------------------------------------------------------

    def place(self, address: int, cartridge: Cartridge) -> None:
        """Put a cartridge into an empty element by hand (setup and operator actions)."""
        el = self.element(address)
        if el.cartridge is not None:
            raise ValueError(f"element {address:#x} is full")
        if cartridge.barcode is not None and self.find(cartridge.barcode) is not None:
            raise ValueError(f"barcode {cartridge.barcode!r} is already in the library")
        el.cartridge = cartridge
        el.source = None
        el.operator_placed = el.kind is ElementKind.IMPORT_EXPORT
        if el.drive is not None:
            el.drive.insert(cartridge)

    def take(self, address: int) -> Cartridge:
        """Remove a cartridge by hand (an operator emptying a mail slot)."""
        el = self.element(address)
        if el.cartridge is None:
            raise ValueError(f"element {address:#x} is empty")
        if el.kind is ElementKind.IMPORT_EXPORT and self.prevent:
            raise ValueError("medium removal is prevented on the import/export elements")
        cart = el.cartridge
        if el.drive is not None:
            el.drive.eject()
        el.cartridge = None
        el.source = None
        return cart

    # ---- robot ------------------------------------------------------------------------

    def check_move(self, transport: int, source: int, destination: int) -> None:
        """Validate a MOVE MEDIUM without doing it (raises the sense a library returns)."""
        t = self.element(transport)
        if t.kind is not ElementKind.TRANSPORT:
            raise _invalid_address()
        src = self.element(source)
        dst = self.element(destination)
        if src.cartridge is None:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x3B, 0x0E)
        if dst is not src and dst.cartridge is not None:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x3B, 0x0D)
        self._check_gripper(t, src)
        self._check_can_leave(src)

    def _check_gripper(self, transport: Element, src: Element) -> None:
        """A gripper still holding a cartridge (a stopped move) cannot pick another."""
        if transport.cartridge is not None and src is not transport:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x3B, 0x0D)

    def _check_can_leave(self, src: Element) -> None:
        drive = src.drive
        if drive is None:
            return
        if drive.prevent:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x53, 0x02)
        if drive.loaded and not self.auto_unload:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x53, 0x00)

    def pick(self, source: int) -> Cartridge:
        """First half of a move: the cartridge leaves ``source`` for the transport element."""
        src = self.element(source)
        cart = src.cartridge
        assert cart is not None
        if src.drive is not None:
            src.drive.eject()
        src.cartridge = None
        src.operator_placed = False
        t = self.transport
        if t is not src:
            t.cartridge = cart
            t.source = source
        return cart

    def put(self, destination: int, cartridge: Cartridge, source: int) -> None:
        """Second half of a move: the cartridge goes from the transport to ``destination``."""
        t = self.transport
        if t.cartridge is cartridge:
            t.cartridge = None
            t.source = None
        dst = self.element(destination)
        dst.cartridge = cartridge
        dst.source = source
        dst.operator_placed = False
        if dst.drive is not None:
            dst.drive.insert(cartridge)

    def move(self, transport: int, source: int, destination: int) -> None:
        """MOVE MEDIUM in one step (no robot time)."""
        self.check_move(transport, source, destination)
        if source == destination:
            return
        cart = self.pick(source)
        self.put(destination, cart, source)

    def check_exchange(self, transport: int, source: int, first: int, second: int) -> None:
        """Validate an EXCHANGE MEDIUM: source full, first destination full (and another
        element), second destination free or the source."""
        t = self.element(transport)
        if t.kind is not ElementKind.TRANSPORT:
            raise _invalid_address()
        src = self.element(source)
        d1 = self.element(first)
        d2 = self.element(second)
        if src is d1:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, field_pointer=4)
        if src.cartridge is None or d1.cartridge is None:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x3B, 0x0E)
        if d2 is not src and d2.cartridge is not None:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x3B, 0x0D)
        if t.cartridge is not None:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x3B, 0x0D)
        self._check_can_leave(src)
        self._check_can_leave(d1)

    def exchange(self, transport: int, source: int, first: int, second: int) -> None:
        """EXCHANGE MEDIUM: source's cartridge to ``first``, ``first``'s to ``second``."""
        self.check_exchange(transport, source, first, second)
        a = self.pick(source)
        # the first cartridge waits in the gripper while the second one moves
        b_el = self.element(first)
        b = b_el.cartridge
        assert b is not None
        if b_el.drive is not None:
            b_el.drive.eject()
        b_el.cartridge = None
        self.put(first, a, source)
        dst2 = self.element(second)
        dst2.cartridge = b
        dst2.source = first
        if dst2.drive is not None:
            dst2.drive.insert(b)

    def position_to(self, transport: int, destination: int) -> None:
        """POSITION TO ELEMENT: check both addresses (the robot just moves)."""
        if self.element(transport).kind is not ElementKind.TRANSPORT:
            raise _invalid_address()
        self.element(destination)

    def initialize_status(self) -> None:
        """INITIALIZE ELEMENT STATUS: the inventory is valid again."""
        self.status_valid = True
