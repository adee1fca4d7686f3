"""Typed inventory values of a tape library: its elements and what they hold.

An :class:`Inventory` is a snapshot, built by :meth:`tapepath.library.Library.inventory`
from READ ELEMENT STATUS. It numbers elements the way mtx does: drives from 0, storage
slots from 1, import/export elements after the last slot (so with 24 slots the first
import/export element is 25), and transports from 0.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from attrs import Attribute, field, frozen
from attrs.validators import instance_of, optional

from tapepath.errors import UnknownElementError
from tapepath.scsi._wire import flag_field, uint_field
from tapepath.scsi.element_status import ElementDescriptor, ElementType

__all__ = ["Element", "ElementKind", "Inventory", "element_from_descriptor"]


class ElementKind(enum.Enum):
    """What an element is (SMC-3 element types, named for people)."""

    TRANSPORT = "transport"
    SLOT = "slot"
    IMPORT_EXPORT = "import_export"
    DRIVE = "drive"

    @property
    def element_type(self) -> ElementType:
        """The SMC element type code of this kind."""
        return _TYPE_OF[self]

    @classmethod
    def of(cls, element_type: int) -> ElementKind:
        """The kind of an SMC element type code (1-4).

        Raises:
            ValueError: not one of the four element types.
        """
        for kind, code in _TYPE_OF.items():
            if code == element_type:
                return kind
        raise ValueError(f"element type {element_type} is not 1-4")


_TYPE_OF = {
    ElementKind.TRANSPORT: ElementType.MEDIUM_TRANSPORT,
    ElementKind.SLOT: ElementType.STORAGE,
    ElementKind.IMPORT_EXPORT: ElementType.IMPORT_EXPORT,
    ElementKind.DRIVE: ElementType.DATA_TRANSFER,
}


@frozen
class Element:
    """One element of the library as READ ELEMENT STATUS reported it.

    Attributes:
        kind: transport, slot, import/export or drive.
        address: the element address (what MOVE MEDIUM takes).
        ordinal: the mtx number: drives and transports from 0, slots from 1,
            import/export elements after the slots.
        full: the element holds a cartridge.
        barcode: the primary volume tag without trailing blanks, or None.
        source: the address the cartridge came from (SVALID), or None.
        serial: a drive's serial number from its device identifier (DVCID), or None.
            From a T10 vendor ID identifier (vendor, product, serial: tgtd and many
            libraries) the part after the 24 bytes of vendor and product.
        identifier: the whole device identifier as text (DVCID), or None.
        accessible: the robot can reach the element (ACCESS).
        exception: the element is in an abnormal state (EXCEPT); see ``asc``/``ascq``.
        asc: additional sense code of the abnormal state (0 when none).
        ascq: its qualifier.
        partial: the device sent this descriptor cut short (tgtd); the fields that did
            not arrive hold their defaults.
    """

    kind: ElementKind = field(validator=instance_of(ElementKind))
    address: int = field(validator=uint_field(16))
    ordinal: int = field(validator=uint_field(16))
    full: bool = field(default=False, validator=flag_field)
    barcode: str | None = field(default=None, validator=optional(instance_of(str)))
    source: int | None = field(default=None, validator=optional(uint_field(16)))
    serial: str | None = field(default=None, validator=optional(instance_of(str)))
    identifier: str | None = field(default=None, validator=optional(instance_of(str)))
    accessible: bool = field(default=True, validator=flag_field)
    exception: bool = field(default=False, validator=flag_field)
    asc: int = field(default=0, validator=uint_field(8))
    ascq: int = field(default=0, validator=uint_field(8))
    partial: bool = field(default=False, validator=flag_field, eq=False)

    @property
    def label(self) -> str:
        """A short human name in mtx's terms: ``drive 0``, ``slot 3``, ``import/export 25``."""
        name = {
            ElementKind.TRANSPORT: "transport",
            ElementKind.SLOT: "slot",
            ElementKind.IMPORT_EXPORT: "import/export",
            ElementKind.DRIVE: "drive",
        }[self.kind]
        return f"{name} {self.ordinal}"

    def __str__(self) -> str:
        what = f"holds {self.barcode or 'an unlabelled cartridge'}" if self.full else "empty"
        return f"{self.label} (element {self.address:#x}, {what})"


_T10_VENDOR_ID = 1
_VENDOR_PRODUCT = 24


def element_from_descriptor(d: ElementDescriptor, kind: ElementKind, ordinal: int) -> Element:
    """The :class:`Element` of one parsed element descriptor.

    Args:
        d: the descriptor.
        kind: the element kind of the page it came in.
        ordinal: its mtx number.
    """
    serial = identifier = None
    if kind is ElementKind.DRIVE and d.device_id is not None:
        identifier = d.device_id.text or None
        serial = identifier
        if d.device_id.designator_type == _T10_VENDOR_ID and identifier is not None:
            serial = identifier[_VENDOR_PRODUCT:].strip() or None
    return Element(
        kind=kind,
        address=d.address,
        ordinal=ordinal,
        full=d.full,
        barcode=d.barcode if d.full else None,
        source=d.source if d.full else None,
        serial=serial,
        identifier=identifier,
        accessible=d.access,
        exception=d.except_,
        asc=d.asc,
        ascq=d.ascq,
        partial=d.partial,
    )


def _elements(
    kind: ElementKind,
) -> Callable[[Any, Attribute[tuple[Element, ...]], tuple[Element, ...]], None]:
    def check(
        _inst: Any, _attr: Attribute[tuple[Element, ...]], value: tuple[Element, ...]
    ) -> None:
        for e in value:
            if not isinstance(e, Element) or e.kind is not kind:
                raise ValueError(f"every element of the {kind.value} list must be a {kind}")

    return check


def _tuple(items: Iterable[Element]) -> tuple[Element, ...]:
    return tuple(items)


@frozen
class Inventory:
    """What a library holds, by element kind, in element address order.

    Attributes:
        transports: the medium transport elements (robot grippers).
        slots: the storage elements, numbered from 1.
        import_export: the import/export elements (mail slots), numbered after the slots.
        drives: the data transfer elements, numbered from 0.
    """

    transports: tuple[Element, ...] = field(
        default=(), converter=_tuple, validator=_elements(ElementKind.TRANSPORT)
    )
    slots: tuple[Element, ...] = field(
        default=(), converter=_tuple, validator=_elements(ElementKind.SLOT)
    )
    import_export: tuple[Element, ...] = field(
        default=(), converter=_tuple, validator=_elements(ElementKind.IMPORT_EXPORT)
    )
    drives: tuple[Element, ...] = field(
        default=(), converter=_tuple, validator=_elements(ElementKind.DRIVE)
    )

    def __iter__(self) -> Iterator[Element]:
        """Every element: transports, drives, slots, then import/export elements."""
        yield from self.transports
        yield from self.drives
        yield from self.slots
        yield from self.import_export

    def __len__(self) -> int:
        return len(self.transports) + len(self.drives) + len(self.slots) + len(self.import_export)

    @property
    def storage(self) -> tuple[Element, ...]:
        """Slots and import/export elements together, in mtx order (1, 2, ...)."""
        return self.slots + self.import_export

    def element(self, address: int) -> Element:
        """The element at ``address``.

        Raises:
            UnknownElementError: the library has no such element.
        """
        for e in self:
            if e.address == address:
                return e
        raise UnknownElementError(f"the library has no element at address {address:#x}")

    def find(self, barcode: str) -> Element:
        """The element holding the cartridge labelled ``barcode`` (trailing blanks ignored).

        Raises:
            UnknownElementError: no element holds it.
        """
        wanted = barcode.rstrip(" ")
        for e in self:
            if e.full and e.barcode == wanted:
                return e
        raise UnknownElementError(f"no element holds a cartridge labelled {wanted!r}")

    def slot(self, number: int) -> Element:
        """Storage element ``number`` in mtx numbering (import/export after the slots).

        Raises:
            UnknownElementError: no such slot.
        """
        storage = self.storage
        if not 1 <= number <= len(storage):
            raise UnknownElementError(f"slot {number} does not exist (slots are 1..{len(storage)})")
        return storage[number - 1]

    def drive(self, number: int) -> Element:
        """Drive ``number`` in mtx numbering (from 0).

        Raises:
            UnknownElementError: no such drive.
        """
        if not 0 <= number < len(self.drives):
            raise UnknownElementError(
                f"drive {number} does not exist (drives are 0..{len(self.drives) - 1})"
            )
        return self.drives[number]

    def drive_for(self, serial: str) -> Element:
        """The drive whose DVCID serial number (or whole identifier) is ``serial``.

        Blanks around either are ignored.

        Raises:
            UnknownElementError: no drive reports that serial number.
        """
        wanted = serial.strip()
        for e in self.drives:
            if wanted and wanted in (e.serial, e.identifier):
                return e
        raise UnknownElementError(f"no drive reports the serial number {wanted!r}")

    def first_empty_slot(self) -> Element | None:
        """The first empty ordinary slot (import/export elements are not used), or None."""
        return next((e for e in self.slots if not e.full), None)

    @property
    def barcodes(self) -> dict[str, int]:
        """Barcode -> element address of every labelled cartridge."""
        return {e.barcode: e.address for e in self if e.full and e.barcode is not None}
