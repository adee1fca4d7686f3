"""mtx's view of a changer and the text mtx 1.3.12 prints for it, byte for byte.

:class:`MtxStatus` holds what mtx keeps after READ ELEMENT STATUS: drives numbered
from 0, storage elements numbered from 1 (import/export elements after the ordinary
slots, flagged), each with its volume tags as mtx copies them (the 36-byte field up to
the first byte outside 32..127, so trailing blanks stay). :func:`format_status`,
:func:`format_inquiry` and :func:`format_request_sense` produce mtx's output; they are
pure functions of their arguments.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import define, field

from tapepath.scsi.element_status import ElementDescriptor, VolumeTag

__all__ = [
    "PERIPHERAL_TYPES",
    "SENSE_KEYS",
    "MtxDrive",
    "MtxSlot",
    "MtxStatus",
    "format_inquiry",
    "format_request_sense",
    "format_status",
    "status_from_descriptors",
    "tag_text",
]

#: mtx's names of the peripheral device types (inquiry's "Product Type").
PERIPHERAL_TYPES: tuple[str, ...] = (
    "Disk Drive",
    "Tape Drive",
    "Printer",
    "Processor",
    "Write-once",
    "CD-ROM",
    "Scanner",
    "Optical",
    "Medium Changer",
    "Communications",
    "ASC IT8",
    "ASC IT8",
    "RAID Array",
    "Enclosure Services",
    "RBC Simplified Disk",
    "OCR/W",
    "Bridging Expander",
    *("Reserved",) * 14,
    "Unknown",
)

#: mtx's names of the sense keys (request sense reports).
SENSE_KEYS: tuple[str, ...] = (
    "No Sense",
    "Recovered Error",
    "Not Ready",
    "Medium Error",
    "Hardware Error",
    "Illegal Request",
    "Unit Attention",
    "Data Protect",
    "Blank Check",
    "0x09",
    "0x0a",
    "Aborted Command",
    "0x0c",
    "Volume Overflow",
    "Miscompare",
    "0x0f",
)


def tag_text(tag: VolumeTag | bytes | None) -> str:
    """A volume tag as mtx prints it: the bytes up to the first one outside 32..127.

    Args:
        tag: the tag (its 32-byte identifier is used), raw bytes, or None.

    Returns:
        The text ("" when there is none), trailing blanks kept.
    """
    if tag is None:
        return ""
    raw = tag.identifier if isinstance(tag, VolumeTag) else bytes(tag)
    out = bytearray()
    for b in raw:
        if b < 32 or b > 127:
            break
        out.append(b)
    return out.decode("latin-1")


@define
class MtxDrive:
    """A data transfer element as mtx keeps it.

    Attributes:
        address: the element address.
        full: holds a cartridge.
        source: the storage element number (from 1) the cartridge came from, or None
            for mtx's "Unknown".
        tag: the primary volume tag text ("" for none).
        alt_tag: the alternate volume tag text.
    """

    address: int
    full: bool = False
    source: int | None = None
    tag: str = ""
    alt_tag: str = ""


@define
class MtxSlot:
    """A storage or import/export element as mtx keeps it.

    Attributes:
        address: the element address.
        full: holds a cartridge.
        import_export: an import/export element (printed `` IMPORT/EXPORT``).
        tag: the primary volume tag text.
        alt_tag: the alternate volume tag text.
    """

    address: int
    full: bool = False
    import_export: bool = False
    tag: str = ""
    alt_tag: str = ""


@define
class MtxStatus:
    """What mtx knows of the changer: drives from 0, storage elements from 1.

    Attributes:
        drives: the data transfer elements, in address order.
        slots: storage elements, then import/export elements, each in address order.
        transport: the medium transport element address (for MOVE MEDIUM).
    """

    drives: list[MtxDrive] = field(factory=list)
    slots: list[MtxSlot] = field(factory=list)
    transport: int = 0

    @property
    def import_export_count(self) -> int:
        """How many storage elements are import/export elements."""
        return sum(1 for s in self.slots if s.import_export)

    def slot_number(self, address: int) -> int | None:
        """The storage element number (from 1) at ``address``, or None."""
        for i, s in enumerate(self.slots):
            if s.address == address:
                return i + 1
        return None


def status_from_descriptors(
    *,
    drives: Sequence[ElementDescriptor],
    slots: Sequence[ElementDescriptor],
    import_export: Sequence[ElementDescriptor],
    transports: Sequence[ElementDescriptor] = (),
    barcodes: bool = True,
) -> MtxStatus:
    """Build mtx's view from element descriptors, numbering as mtx does.

    A full drive whose source address is not a storage element, or names one that is
    full now, gets the next empty ordinary slot as its source (each such drive its own),
    as mtx guesses it; None ("Unknown") when none is left. Tags are kept whatever the
    element's state (mtx prints a drive's only when it is full).

    Args:
        drives: the data transfer element descriptors.
        slots: the storage element descriptors.
        import_export: the import/export element descriptors.
        transports: the medium transport descriptors (the first one moves media).
        barcodes: keep volume tags (False: mtx's ``nobarcode``).
    """

    def tags(d: ElementDescriptor) -> tuple[str, str]:
        if not barcodes:
            return "", ""
        return tag_text(d.primary_tag), tag_text(d.alternate_tag)

    st = MtxStatus(transport=min((t.address for t in transports), default=0))
    for d in sorted(slots, key=lambda x: x.address):
        t, a = tags(d)
        st.slots.append(MtxSlot(d.address, d.full, False, t, a))
    for d in sorted(import_export, key=lambda x: x.address):
        t, a = tags(d)
        st.slots.append(MtxSlot(d.address, d.full, True, t, a))
    # mtx's source numbers: a full drive keeps the storage element its (raw, SVALID not
    # checked) source address names when that element is empty now; the others take
    # the empty ordinary slots in turn, one each, and "Unknown" when none is left. An
    # empty drive keeps the raw address, which mtx shows as address + 1 if a later
    # command of the same call loads the drive.
    empties = [i + 1 for i, s in enumerate(st.slots) if not s.full and not s.import_export]
    taken = 0
    for d in sorted(drives, key=lambda x: x.address):
        source: int | None
        if d.full:
            number = st.slot_number(d.source_address)
            source = number if number is not None and not st.slots[number - 1].full else None
            if source is None:
                source = empties[taken] if taken < len(empties) else None
                taken += 1
        else:
            source = d.source_address + 1
        t, a = tags(d)
        st.drives.append(MtxDrive(d.address, d.full, source, t, a))
    return st


def format_status(device: str, st: MtxStatus) -> str:
    """The output of ``mtx -f DEVICE status``.

    Args:
        device: the ``-f`` text as typed.
        st: the changer's status.
    """
    lines = [
        f"  Storage Changer {device}:{len(st.drives)} Drives, {len(st.slots)} Slots "
        f"( {st.import_export_count} Import/Export )"
    ]
    for i, d in enumerate(st.drives):
        if not d.full:
            lines.append(f"Data Transfer Element {i}:Empty")
            continue
        text = f"Data Transfer Element {i}:"
        if d.source is not None:
            text += f"Full (Storage Element {d.source} Loaded)"
        else:
            text += "Full (Unknown Storage Element Loaded)"
        if d.tag:
            text += f":VolumeTag = {d.tag}"
        if d.alt_tag:
            text += f":AlternateVolumeTag = {d.alt_tag}"
        lines.append(text)
    for i, s in enumerate(st.slots):
        text = f"      Storage Element {i + 1}{' IMPORT/EXPORT' if s.import_export else ''}:"
        text += "Full " if s.full else "Empty"
        if s.tag:
            text += f":VolumeTag={s.tag}"
        if s.alt_tag:
            text += f":AlternateVolumeTag={s.alt_tag}"
        lines.append(text)
    return "\n".join(lines) + "\n"


def _field(raw: bytes, start: int, size: int) -> str:
    return raw[start : start + size].ljust(size, b"\0").decode("latin-1")


def format_inquiry(data: bytes) -> str:
    """The output of ``mtx inquiry`` for standard INQUIRY data.

    Short data is read as if zero-filled (mtx's buffer starts zeroed); the vendor,
    product and revision fields are printed whole, as mtx prints them.
    """
    raw = bytes(data[:36]).ljust(36, b"\0")
    pdt = raw[0] & 0x1F
    lines = [
        f"Product Type: {PERIPHERAL_TYPES[pdt]}",
        f"Vendor ID: '{_field(raw, 8, 8)}'",
        f"Product ID: '{_field(raw, 16, 16)}'",
        f"Revision: '{_field(raw, 32, 4)}'",
        f"Attached Changer API: {'Yes' if raw[6] & 0x08 else 'No'}",
    ]
    return "\n".join(lines) + "\n"


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def format_request_sense(sense: object) -> str:
    """mtx's request sense report (stderr) for a decoded sense value.

    Args:
        sense: a :class:`tapepath.scsi.sense.Sense` (read by attribute; missing fields
            read as zero/absent).
    """
    code = int(getattr(sense, "response_code", 0x70))
    fixed_code = 0x71 if code in (0x71, 0x73) else (0x70 if code in (0x70, 0x72) else code)
    msg = {0x70: "Current", 0x71: "Deferred"}.get(fixed_code, "Unknown?!")
    info = getattr(sense, "information", None)
    sks = getattr(sense, "sks", None)
    bpv = bool(getattr(sks, "bpv", False))
    cdb = bool(getattr(sks, "cdb", False))
    bit = int(getattr(sks, "bit_pointer", 0))
    pointer = int(getattr(sks, "field_pointer", 0))
    key = int(getattr(sense, "sense_key", 0)) & 0x0F
    p = "mtx: Request Sense: "
    lines = [
        f"{p}Long Report=yes",
        f"{p}Valid Residual={_yn(info is not None)}",
        f"{p}Error Code={fixed_code:x} ({msg})",
        f"{p}Sense Key={SENSE_KEYS[key]}",
        f"{p}FileMark={_yn(bool(getattr(sense, 'filemark', False)))}",
        f"{p}EOM={_yn(bool(getattr(sense, 'eom', False)))}",
        f"{p}ILI={_yn(bool(getattr(sense, 'ili', False)))}",
    ]
    if info is not None:
        b = (int(info) & 0xFFFFFFFF).to_bytes(4, "big")
        lines.append(f"{p}Residual = {b[0]:02X} {b[1]:02X} {b[2]:02X} {b[3]:02X}")
    lines.append(f"{p}Additional Sense Code = {int(getattr(sense, 'asc', 0)):02X}")
    lines.append(f"{p}Additional Sense Qualifier = {int(getattr(sense, 'ascq', 0)):02X}")
    if sks is not None:
        lines.append(f"{p}Field in Error = {bit:02X}")
    lines.append(f"{p}BPV={_yn(bpv)}")
    lines.append(f"{p}Error in CDB={_yn(cdb)}")
    lines.append(f"{p}SKSV={_yn(sks is not None)}")
    if bpv or sks is not None:
        lines.append(f"{p}Field Pointer = {pointer >> 8:02X} {pointer & 0xFF:02X}")
    return "\n".join(lines) + "\n"
