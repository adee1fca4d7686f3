"""read_elements: element status read as mtx reads it, from any bytes a changer sends."""

from __future__ import annotations

from typing import Any

from attrs import define, field
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.inventory import ElementKind
from tapepath.library import Library
from tapepath.mtx.elements import ALLOCATION, read_elements
from tapepath.scsi.element_status import ElementDescriptor


@define
class FakeResponse:
    """What Library.execute returns: only ``data`` is read."""

    data: bytes


@define
class FakeLibrary:
    """A changer that answers every READ ELEMENT STATUS with fixed bytes."""

    answer: bytes
    cdbs: list[bytes] = field(factory=list)
    paged: int = 0

    def execute(self, cdb: bytes, **_kw: Any) -> FakeResponse:
        self.cdbs.append(cdb)
        return FakeResponse(self.answer[:ALLOCATION])

    def descriptors(self, kind: ElementKind, **_kw: Any) -> list[ElementDescriptor]:
        self.paged += 1
        return []


def report(descriptors: list[bytes], dlen: int, code: int = 2, short: int = 0) -> bytes:
    """An element status report; ``short`` bytes are left off the end, as tgtd does."""
    body = b"".join(descriptors)
    page = bytes([code, 0]) + dlen.to_bytes(2, "big") + bytes([0]) + len(body).to_bytes(3, "big")
    count = len(page) + len(body)
    first = int.from_bytes(descriptors[0][:2], "big") if descriptors else 0
    head = (
        first.to_bytes(2, "big") + len(descriptors).to_bytes(2, "big") + bytes([0])
        + count.to_bytes(3, "big")
    )  # fmt: skip
    data = head + page + body
    return data[: len(data) - short] if short else data


def desc16(address: int, full: bool) -> bytes:
    """A 16-byte descriptor without volume tags."""
    return address.to_bytes(2, "big") + bytes([1 if full else 0]) + bytes(13)


def as_library(fake: FakeLibrary) -> Library:
    """The fake, typed as the Library read_elements takes."""
    return fake  # type: ignore[return-value]


class TestPadding:
    """A report cut short of its announced length is read as zero-filled, as mtx does."""

    def test_tgtd_short_last_descriptor(self) -> None:
        """tgtd sends 8 bytes less than announced: the last element is still reported."""
        data = report([desc16(1024 + i, i < 6) for i in range(8)], 16, short=8)
        got = read_elements(as_library(FakeLibrary(data)), ElementKind.SLOT, barcodes=False)
        assert [d.address for d in got] == list(range(1024, 1032))
        assert [d.full for d in got] == [True] * 6 + [False] * 2

    def test_voltag_bit_follows_barcodes(self) -> None:
        """nobarcode clears VOLTAG (CDB byte 1 bit 4); drives ask for DVCID."""
        fake = FakeLibrary(report([desc16(256, False)], 16, code=4))
        read_elements(as_library(fake), ElementKind.DRIVE, barcodes=False)
        read_elements(as_library(fake), ElementKind.DRIVE, barcodes=True)
        assert [c[1] & 0x10 for c in fake.cdbs] == [0, 0x10]
        assert all(c[6] & 0x01 for c in fake.cdbs)

    def test_big_report_is_paged(self) -> None:
        """A report announced beyond one command's allocation goes to the paged reader."""
        head = bytes(5) + (ALLOCATION).to_bytes(3, "big")
        fake = FakeLibrary(head + bytes(100))
        assert read_elements(as_library(fake), ElementKind.SLOT, barcodes=True) == []
        assert fake.paged == 1


@given(st.binary(max_size=600))
def test_any_bytes(raw: bytes) -> None:
    """Any answer gives descriptors or DecodeError, never more than announced."""
    try:
        got = read_elements(as_library(FakeLibrary(raw)), ElementKind.SLOT, barcodes=True)
    except DecodeError:
        return
    assert all(isinstance(d, ElementDescriptor) for d in got)
    assert len(got) <= max(len(raw), 8)
