"""READ ELEMENT STATUS the way mtx reads it, for byte-exact status reports.

mtx asks for each element type's whole report in one command and parses a buffer that
starts zero-filled, so when a changer announces more bytes than it sends (tgtd does,
by 8 bytes, and without VOLTAG that cuts its last descriptor below the fixed 12 bytes)
mtx still sees every element, the missing bytes read as zeros. :func:`read_elements`
does the same, bounded by the announced length and the allocation length; a report
that does not fit one command is read with the library's paging instead.
"""

from __future__ import annotations

from tapepath.errors import CheckConditionError
from tapepath.inventory import ElementKind
from tapepath.library import Library
from tapepath.scsi.element_status import ElementDescriptor, ElementStatus, ReadElementStatus

__all__ = ["ALLOCATION", "read_elements"]

#: The allocation length of the one-command read (larger reports are paged).
ALLOCATION = 0xFFFF
_HEADER = 8


def _read(lib: Library, code: int, voltag: bool, dvcid: bool) -> bytes:
    cdb = ReadElementStatus(
        element_type=code, voltag=voltag, dvcid=dvcid, allocation_length=ALLOCATION
    )
    r = lib.execute(
        cdb.to_bytes(), what="READ ELEMENT STATUS", data_in_len=ALLOCATION, repeatable=True
    )
    return bytes(r.data)


def read_elements(lib: Library, kind: ElementKind, *, barcodes: bool) -> list[ElementDescriptor]:
    """Every descriptor of one element type, in address order.

    Args:
        lib: the changer.
        kind: the element type to read.
        barcodes: ask for volume tags (VOLTAG); mtx's ``nobarcode`` clears it. A changer
            that refuses the request with VOLTAG is asked again without it, as mtx does.

    Raises:
        TapepathError: the changer refused, or no path is left.
        DecodeError: the report does not parse even when padded.
    """
    code = int(kind.element_type)
    drives = kind is ElementKind.DRIVE
    try:
        data = _read(lib, code, barcodes, drives)
    except CheckConditionError as exc:
        if getattr(exc.sense, "sense_key", 0) <= 1 or not barcodes:
            raise
        data = _read(lib, code, False, drives)
    if len(data) < _HEADER:
        return []
    announced = _HEADER + int.from_bytes(data[5:8], "big")
    if announced > ALLOCATION:
        # more than one command holds: page through it
        return lib.descriptors(kind, voltag=barcodes, dvcid=drives)
    if len(data) < announced:
        data = data + bytes(announced - len(data))  # mtx's zero-filled buffer
    status = ElementStatus.from_bytes(data)
    return sorted(status.descriptors(code), key=lambda d: d.address)
