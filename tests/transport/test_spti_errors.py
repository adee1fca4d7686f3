"""SptiTransport: Windows error codes as outcomes, and device enumeration (split from
test_spti.py; the fake kernel32 lives there)."""

from __future__ import annotations

import time

import pytest

from tapepath.scsi.inquiry import StandardInquiry
from tapepath.scsi.vpd import UnitSerialNumber
from tapepath.transport import Outcome
from tapepath.transport.spti import (
    SptiAddress,
)
from tapepath.transport.spti_enum import list_spti_devices
from tests.transport.test_spti import (
    EXPECTED_ERRORS,
    INQ,
    TUR,
    FakeDevice,
    Reply,
    Seen,
    k32,
    opened,
)


class TestErrors:
    """GetLastError codes become outcomes with the code kept."""

    @pytest.mark.parametrize("code", sorted(EXPECTED_ERRORS))
    def test_error(self, code: int) -> None:
        """Each code maps as documented."""
        outcome, maybe = EXPECTED_ERRORS[code]
        fake = k32(Tape0=FakeDevice(responder=lambda s: Reply(error=code)))
        r = opened(fake).execute(TUR)
        assert r.outcome is outcome
        assert r.detail is not None
        assert r.detail.win_error == code
        assert r.detail.maybe_executed is maybe
        assert str(code) in r.detail.message

    def test_busy_is_retryable(self) -> None:
        """ERROR_BUSY says it is retryable."""
        fake = k32(Tape0=FakeDevice(responder=lambda s: Reply(error=170)))
        r = opened(fake).execute(TUR)
        assert r.detail is not None
        assert "retryable" in r.detail.message

    def test_deadline(self) -> None:
        """A DeviceIoControl that blocks still returns TIMED_OUT on time."""
        fake = k32(Tape0=FakeDevice(responder=lambda s: Reply(block_s=1.0, data=b"late")))
        buf = bytearray(4)
        start = time.monotonic()
        r = opened(fake).execute_into(INQ, buf, timeout=0.1)
        assert time.monotonic() - start < 0.6
        assert r.outcome is Outcome.TIMED_OUT
        assert r.detail is not None
        assert r.detail.maybe_executed


def inquiry_device(vendor: str, serial: str) -> FakeDevice:
    """A device answering standard INQUIRY and VPD 80h."""

    def responder(s: Seen) -> Reply:
        if s.cdb[0] != 0x12:
            return Reply()
        if not s.cdb[1] & 1:
            data = StandardInquiry(
                peripheral_device_type=1, vendor_raw=vendor, product_raw="LTO", revision_raw="1"
            ).to_bytes()
            return Reply(data=data)
        if s.cdb[2] == 0x80:
            return Reply(data=UnitSerialNumber(serial).to_bytes())
        return Reply(status=2, sense=bytes((0x70, 0, 5)) + bytes(15))

    return FakeDevice(responder=responder)


class TestEnumeration:
    """\\\\.\\TapeN and \\\\.\\ChangerN are probed."""

    def test_lists_present_devices(self) -> None:
        """Present devices are listed in order; gaps are skipped; refused ones kept."""
        fake = k32(
            Tape0=FakeDevice(address=(1, 0, 0, 0)),
            Tape2=FakeDevice(address=(1, 0, 2, 0)),
            Tape3=FakeDevice(open_error=5),
            Changer0=FakeDevice(address=(1, 0, 5, 0)),
        )
        devs = list_spti_devices(fake)
        assert [(d.name, d.kind) for d in devs] == [
            ("\\\\.\\Tape0", "tape"),
            ("\\\\.\\Tape2", "tape"),
            ("\\\\.\\Tape3", "tape"),
            ("\\\\.\\Changer0", "changer"),
        ]
        assert devs[1].address == SptiAddress(1, 0, 2, 0)
        assert devs[1].url == "spti://./Tape2"
        assert devs[2].address is not None
        assert devs[3].error is None
        # probing opens with no access rights and closes every handle
        assert {access for _, access in fake.opened} == {0}
        assert len(fake.closed) == len(fake.opened)

    def test_inquiry(self) -> None:
        """With inquiry=True, vendor and serial are read; unsupported 83h stays None."""
        fake = k32(Tape0=inquiry_device("IBM", "SER123"))
        (dev,) = list_spti_devices(fake, inquiry=True)
        assert (dev.vendor, dev.product, dev.serial) == ("IBM", "LTO", "SER123")
        assert dev.identification is None

    def test_inquiry_skips_refused(self) -> None:
        """A device refusing pass-through access is listed without INQUIRY data."""
        fake = k32(Tape0=FakeDevice(open_error=5))
        (dev,) = list_spti_devices(fake, inquiry=True)
        assert dev.error == 5
        assert dev.vendor is None
