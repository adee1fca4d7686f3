"""Medium changer mode pages (SMC-3): Element Address Assignment (1Dh) and Device
Capabilities (1Fh).

Each page class converts to and from the page body (the bytes after the page code and
page length bytes) with ``to_body()`` / ``from_body()``, and to and from a whole page
(code and length included) with ``to_bytes()`` / ``from_bytes()``.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, flag_field, uint_field
from tapepath.scsi.element_status import ElementType
from tapepath.scsi.mode import ModePageCodec

__all__ = ["DeviceCapabilitiesPage", "ElementAddressAssignmentPage", "ElementTypeSet"]

_BODY_LENGTH = 0x12


@frozen
class ElementAddressAssignmentPage(ModePageCodec):
    """Element Address Assignment mode page (1Dh): where each element type starts.

    Attributes:
        first_transport: first medium transport element address.
        transport_count: number of medium transport elements.
        first_storage: first storage element address.
        storage_count: number of storage elements.
        first_import_export: first import/export element address.
        import_export_count: number of import/export elements.
        first_data_transfer: first data transfer element address.
        data_transfer_count: number of data transfer elements.
        ps: the parameters saveable bit (MODE SENSE only).
    """

    PAGE_NAME: ClassVar[str] = "element address assignment page"
    PAGE_CODE: ClassVar[int] = 0x1D
    first_transport: int = field(default=0, validator=uint_field(16))
    transport_count: int = field(default=0, validator=uint_field(16))
    first_storage: int = field(default=0, validator=uint_field(16))
    storage_count: int = field(default=0, validator=uint_field(16))
    first_import_export: int = field(default=0, validator=uint_field(16))
    import_export_count: int = field(default=0, validator=uint_field(16))
    first_data_transfer: int = field(default=0, validator=uint_field(16))
    data_transfer_count: int = field(default=0, validator=uint_field(16))
    ps: bool = field(default=False, validator=flag_field)

    def range_of(self, element_type: int) -> range:
        """The element addresses of one element type (1-4)."""
        table = {
            ElementType.MEDIUM_TRANSPORT: (self.first_transport, self.transport_count),
            ElementType.STORAGE: (self.first_storage, self.storage_count),
            ElementType.IMPORT_EXPORT: (self.first_import_export, self.import_export_count),
            ElementType.DATA_TRANSFER: (self.first_data_transfer, self.data_transfer_count),
        }
        if element_type not in table:
            raise ValueError(f"element_type={element_type} is not 1..4")
        first, count = table[ElementType(element_type)]
        return range(first, first + count)

    def to_body(self) -> bytes:
        """The 18-byte page body."""
        values = (
            self.first_transport,
            self.transport_count,
            self.first_storage,
            self.storage_count,
            self.first_import_export,
            self.import_export_count,
            self.first_data_transfer,
            self.data_transfer_count,
        )
        return b"".join(v.to_bytes(2, "big") for v in values) + b"\0\0"

    @classmethod
    def from_body(cls, body: Bytes, *, ps: bool = False) -> ElementAddressAssignmentPage:
        """Parse the page body (at least 16 bytes; the 2 reserved bytes may be missing).

        Raises:
            DecodeError: the body is shorter than 16 bytes.
        """
        if len(body) < 16:
            raise DecodeError(f"element address assignment page: need 16 bytes, got {len(body)}")
        v = [int.from_bytes(body[i : i + 2], "big") for i in range(0, 16, 2)]
        return cls(
            first_transport=v[0],
            transport_count=v[1],
            first_storage=v[2],
            storage_count=v[3],
            first_import_export=v[4],
            import_export_count=v[5],
            first_data_transfer=v[6],
            data_transfer_count=v[7],
            ps=ps,
        )


def _bits4(_inst: object, attr: object, value: ElementTypeSet) -> None:
    if not isinstance(value, ElementTypeSet):
        raise ValueError(f"{getattr(attr, 'name', 'field')} must be an ElementTypeSet")


@frozen
class ElementTypeSet:
    """A set of element types as the capability bits of page 1Fh encode it.

    Attributes:
        transport: medium transport (MT).
        storage: storage (ST).
        import_export: import/export (I/E).
        data_transfer: data transfer (DT).
    """

    transport: bool = field(default=False, validator=flag_field)
    storage: bool = field(default=False, validator=flag_field)
    import_export: bool = field(default=False, validator=flag_field)
    data_transfer: bool = field(default=False, validator=flag_field)

    def __contains__(self, element_type: object) -> bool:
        """``ElementType.STORAGE in caps.move_from[ElementType.DATA_TRANSFER]``."""
        if not isinstance(element_type, int) or element_type not in (1, 2, 3, 4):
            return False
        return bool(self.to_bits() >> (element_type - 1) & 1)

    def to_bits(self) -> int:
        """The 4 bits: bit 0 MT, 1 ST, 2 I/E, 3 DT."""
        return (
            int(self.transport)
            | int(self.storage) << 1
            | int(self.import_export) << 2
            | int(self.data_transfer) << 3
        )

    @classmethod
    def from_bits(cls, bits: int) -> ElementTypeSet:
        """Build from the low 4 bits of a byte (the others are ignored)."""
        return cls(bool(bits & 1), bool(bits & 2), bool(bits & 4), bool(bits & 8))

    @classmethod
    def all(cls) -> ElementTypeSet:
        """Every element type."""
        return cls(True, True, True, True)


_EMPTY = ElementTypeSet()
_ORDER = (
    ElementType.MEDIUM_TRANSPORT,
    ElementType.STORAGE,
    ElementType.IMPORT_EXPORT,
    ElementType.DATA_TRANSFER,
)


@frozen
class DeviceCapabilitiesPage(ModePageCodec):
    """Device Capabilities mode page (1Fh): what can be stored, moved and exchanged.

    Attributes:
        storage: the element types that can hold a volume (StorMT..StorDT).
        move_from_transport: destinations a MOVE MEDIUM from a transport may use.
        move_from_storage: destinations from a storage element.
        move_from_import_export: destinations from an import/export element.
        move_from_data_transfer: destinations from a data transfer element.
        exchange_transport: element types an EXCHANGE MEDIUM with a transport source
            may use (likewise for the three others).
        exchange_storage: see ``exchange_transport``.
        exchange_import_export: see ``exchange_transport``.
        exchange_data_transfer: see ``exchange_transport``.
        ps: the parameters saveable bit (MODE SENSE only).
    """

    PAGE_NAME: ClassVar[str] = "device capabilities page"
    PAGE_CODE: ClassVar[int] = 0x1F
    storage: ElementTypeSet = field(default=_EMPTY, validator=_bits4)
    move_from_transport: ElementTypeSet = field(default=_EMPTY, validator=_bits4)
    move_from_storage: ElementTypeSet = field(default=_EMPTY, validator=_bits4)
    move_from_import_export: ElementTypeSet = field(default=_EMPTY, validator=_bits4)
    move_from_data_transfer: ElementTypeSet = field(default=_EMPTY, validator=_bits4)
    exchange_transport: ElementTypeSet = field(default=_EMPTY, validator=_bits4)
    exchange_storage: ElementTypeSet = field(default=_EMPTY, validator=_bits4)
    exchange_import_export: ElementTypeSet = field(default=_EMPTY, validator=_bits4)
    exchange_data_transfer: ElementTypeSet = field(default=_EMPTY, validator=_bits4)
    ps: bool = field(default=False, validator=flag_field)

    @property
    def move_from(self) -> dict[ElementType, ElementTypeSet]:
        """The move matrix by source element type."""
        return dict(
            zip(
                _ORDER,
                (
                    self.move_from_transport,
                    self.move_from_storage,
                    self.move_from_import_export,
                    self.move_from_data_transfer,
                ),
                strict=True,
            )
        )

    @property
    def exchange_from(self) -> dict[ElementType, ElementTypeSet]:
        """The exchange matrix by source element type."""
        return dict(
            zip(
                _ORDER,
                (
                    self.exchange_transport,
                    self.exchange_storage,
                    self.exchange_import_export,
                    self.exchange_data_transfer,
                ),
                strict=True,
            )
        )

    def can_move(self, source_type: int, destination_type: int) -> bool:
        """Whether MOVE MEDIUM from one element type to another is supported."""
        row = self.move_from.get(ElementType(source_type)) if source_type in _ORDER else None
        return row is not None and destination_type in row

    def to_body(self) -> bytes:
        """The 18-byte page body."""
        out = bytearray(_BODY_LENGTH)
        out[0] = self.storage.to_bits()
        for i, s in enumerate(self.move_from.values()):
            out[2 + i] = s.to_bits()
        for i, s in enumerate(self.exchange_from.values()):
            out[10 + i] = s.to_bits()
        return bytes(out)

    @classmethod
    def from_body(cls, body: Bytes, *, ps: bool = False) -> DeviceCapabilitiesPage:
        """Parse the page body (at least 14 bytes; reserved bits are ignored).

        Raises:
            DecodeError: the body is shorter than 14 bytes.
        """
        if len(body) < 14:
            raise DecodeError(f"device capabilities page: need 14 bytes, got {len(body)}")

        def bits(i: int) -> ElementTypeSet:
            return ElementTypeSet.from_bits(body[i])

        return cls(
            storage=bits(0),
            move_from_transport=bits(2),
            move_from_storage=bits(3),
            move_from_import_export=bits(4),
            move_from_data_transfer=bits(5),
            exchange_transport=bits(10),
            exchange_storage=bits(11),
            exchange_import_export=bits(12),
            exchange_data_transfer=bits(13),
            ps=ps,
        )
