"""How sg completions, errnos and closing map to outcomes, end to end through the fake driver."""

from __future__ import annotations

import errno
import gc
import select
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath import errors
from tapepath.transport import Outcome, Response
from tapepath.transport.sg_outcome import (
    DRIVER_STATUS,
    HOST_STATUS,
    Kind,
    classify_completion,
    errno_failure,
    host_status_name,
)
from tests.transport.test_sg import TUR, FakeSg, Reply, make

INQ6 = bytes((0x12, 0, 0, 0, 64, 0))
CHECK = bytes((0x70, 0, 0x03, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0, 0, 0, 0, 0))

# What each DID_* code must mean, written from the kernel's scsi.h and the brief:
# (name, outcome, retry-on-same-path, device error)
EXPECTED_HOST = {
    0x01: ("DID_NO_CONNECT", Outcome.NO_CONNECT, False, False),
    0x02: ("DID_BUS_BUSY", Outcome.ABORTED, True, False),
    0x03: ("DID_TIME_OUT", Outcome.TIMED_OUT, False, False),
    0x04: ("DID_BAD_TARGET", Outcome.DEVICE_GONE, False, False),
    0x05: ("DID_ABORT", Outcome.ABORTED, False, False),
    0x06: ("DID_PARITY", Outcome.ABORTED, True, False),
    0x07: ("DID_ERROR", Outcome.LINK_LOST, False, False),
    0x08: ("DID_RESET", Outcome.ABORTED, False, False),
    0x09: ("DID_BAD_INTR", Outcome.ABORTED, False, False),
    0x0B: ("DID_SOFT_ERROR", Outcome.ABORTED, True, False),
    0x0C: ("DID_IMM_RETRY", Outcome.ABORTED, True, False),
    0x0D: ("DID_REQUEUE", Outcome.ABORTED, True, False),
    0x0E: ("DID_TRANSPORT_DISRUPTED", Outcome.LINK_LOST, False, False),
    0x0F: ("DID_TRANSPORT_FAILFAST", Outcome.LINK_LOST, False, False),
    0x10: ("DID_TARGET_FAILURE", Outcome.OK, False, True),
    0x11: ("DID_NEXUS_FAILURE", Outcome.OK, False, True),
    0x12: ("DID_ALLOC_FAILURE", Outcome.OK, False, True),
    0x13: ("DID_MEDIUM_ERROR", Outcome.OK, False, True),
    0x14: ("DID_TRANSPORT_MARGINAL", Outcome.LINK_LOST, False, False),
}


class TestHostStatus:
    """Every DID_* code maps as documented, through the whole transport."""

    @pytest.mark.parametrize("host", sorted(EXPECTED_HOST))
    def test_host_status(self, host: int) -> None:
        """The outcome matches the table and the raw codes are kept."""
        name, outcome, retry, device = EXPECTED_HOST[host]
        assert host_status_name(host) == name
        assert HOST_STATUS[host].kind is (
            Kind.RETRY if retry else Kind.DEVICE if device else Kind.PATH
        )
        status = 2 if device else 0
        fake = FakeSg(responder=lambda s: Reply(host=host, status=status, driver=0x08))
        r = make(fake).execute(TUR)
        assert r.outcome is outcome
        assert r.detail is not None
        assert (r.detail.host_status, r.detail.driver_status) == (host, 0x08)
        assert name in r.detail.message
        assert ("retryable" in r.detail.message) is retry
        assert not r.ok
        if device:
            assert r.status == 2
        else:
            assert r.path_failed

    def test_ok(self) -> None:
        """DID_OK with GOOD status is a plain success without detail."""
        r = make(FakeSg(responder=lambda s: Reply())).execute(TUR)
        assert r.ok
        assert r.detail is None

    def test_passthrough_is_ok(self) -> None:
        """DID_PASSTHROUGH lets the SCSI status speak."""
        r = make(FakeSg(responder=lambda s: Reply(host=0x0A, status=0x08))).execute(TUR)
        assert r.outcome is Outcome.OK
        assert r.status == 0x08

    def test_device_error_with_good_status(self) -> None:
        """A device-error host code with GOOD status does not read as success."""
        r = make(FakeSg(responder=lambda s: Reply(host=0x10, status=0))).execute(TUR)
        assert not r.ok
        assert r.outcome is Outcome.ABORTED

    def test_unknown_host_code(self) -> None:
        """An unknown host code is a path failure that names the hex value."""
        r = make(FakeSg(responder=lambda s: Reply(host=0x2A))).execute(TUR)
        assert r.outcome is Outcome.LINK_LOST
        assert r.detail is not None
        assert "0x2a" in r.detail.message

    def test_path_failure_keeps_sense(self) -> None:
        """Sense that came with a transport failure is kept."""
        r = make(FakeSg(responder=lambda s: Reply(host=0x0E, status=2, sense=CHECK))).execute(TUR)
        assert r.outcome is Outcome.LINK_LOST
        assert r.sense == CHECK

    def test_disrupted_then_no_connect(self) -> None:
        """The phases of a cut iSCSI path come back as LINK_LOST, then NO_CONNECT."""
        replies = iter([Reply(host=0x0E), Reply(host=0x01)])
        t = make(FakeSg(responder=lambda s: next(replies)))
        assert t.execute(TUR).outcome is Outcome.LINK_LOST
        assert t.execute(TUR).outcome is Outcome.NO_CONNECT


class TestDriverStatus:
    """The driver byte's low nibble, when the host byte is OK."""

    @pytest.mark.parametrize(
        ("driver", "outcome"),
        [
            (0x00, Outcome.OK),
            (0x08, Outcome.OK),
            (0x28, Outcome.OK),  # a suggestion in the high nibble does not matter
            (0x01, Outcome.ABORTED),
            (0x02, Outcome.ABORTED),
            (0x04, Outcome.ABORTED),
            (0x05, Outcome.ABORTED),
            (0x06, Outcome.TIMED_OUT),
            (0x07, Outcome.ABORTED),
        ],
    )
    def test_driver_status(self, driver: int, outcome: Outcome) -> None:
        """Each driver code gives the expected outcome, raw value kept on failure."""
        r = make(FakeSg(responder=lambda s: Reply(driver=driver))).execute(TUR)
        assert r.outcome is outcome
        if outcome is not Outcome.OK:
            assert r.detail is not None
            assert r.detail.driver_status == driver

    def test_driver_media_is_device_error(self) -> None:
        """DRIVER_MEDIA with CHECK CONDITION leaves the device's sense to speak."""
        r = make(FakeSg(responder=lambda s: Reply(driver=0x03, status=2, sense=CHECK))).execute(TUR)
        assert r.check_condition
        assert r.sense == CHECK

    def test_table_covers_nibble(self) -> None:
        """Every documented driver code 0..8 has a row."""
        assert sorted(DRIVER_STATUS) == list(range(9))


class TestErrno:
    """Errors of the system calls themselves."""

    @pytest.mark.parametrize(
        ("err", "outcome"),
        [
            (errno.ENODEV, Outcome.DEVICE_GONE),
            (errno.ENXIO, Outcome.NO_CONNECT),
            (errno.EIO, Outcome.DEVICE_GONE),
            (errno.ENOENT, Outcome.DEVICE_GONE),
            (errno.EBADF, Outcome.NO_CONNECT),
            (errno.EINVAL, Outcome.ABORTED),
        ],
    )
    def test_errno(self, err: int, outcome: Outcome) -> None:
        """The errno decides the outcome and is kept in the detail."""
        r = errno_failure(err, "write", maybe_executed=False, duration=0.0)
        assert r.outcome is outcome
        assert r.detail is not None
        assert r.detail.errno == err
        assert errno.errorcode[err] in r.detail.message


class TestClassifyProperties:
    """Properties over arbitrary completions."""

    @given(
        st.integers(0, 255),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
        st.binary(max_size=252),
    )
    def test_never_ok_on_failure(self, status: int, host: int, driver: int, sense: bytes) -> None:
        """A response is ok only with a clean host byte and a good status."""
        r = classify_completion(
            status,
            host,
            driver,
            sense=sense,
            data=b"",
            residual=0,
            transferred=0,
            duration=0.0,
        )
        assert isinstance(r, Response)
        if r.ok:
            assert host in (0x00, 0x0A)
            assert status in (0x00, 0x04)
            assert driver & 0xF in (0x0, 0x8)
        if r.outcome is not Outcome.OK:
            assert r.detail is not None
            assert r.detail.host_status == host

    @given(
        st.integers(0, 255),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
        st.integers(-(2**31), 2**31 - 1),
        st.binary(max_size=300),
        st.binary(max_size=64),
        st.integers(1, 64),
    )
    def test_any_completion_through_transport(
        self, status: int, host: int, driver: int, resid: int, sense: bytes, data: bytes, n: int
    ) -> None:
        """Whatever the driver reports, the response's counts stay within the request."""
        reply = Reply(status=status, host=host, driver=driver, resid=resid, sense=sense, data=data)
        r = make(FakeSg(responder=lambda s: reply)).execute(INQ6, data_in_len=n)
        assert isinstance(r, Response)
        assert len(r.sense) <= 252
        if r.outcome is Outcome.OK:
            assert 0 <= r.transferred <= n
            assert r.residual + r.transferred == n
            assert len(r.data) == r.transferred
        if r.ok:
            assert host in (0x00, 0x0A)
            assert status in (0x00, 0x04)


class TestFailures:
    """System-call errors from a vanished node and closing."""

    @pytest.mark.parametrize("err", [errno.ENODEV, errno.EIO, errno.ENOENT])
    def test_write_on_vanished_node(self, err: int) -> None:
        """write() failing because the node vanished: DEVICE_GONE, not sent."""
        fake = FakeSg(responder=lambda s: Reply(write_errno=err))
        r = make(fake).execute(TUR)
        assert r.outcome is Outcome.DEVICE_GONE
        assert r.detail is not None
        assert (r.detail.errno, r.detail.maybe_executed) == (err, False)

    def test_write_on_offline_device(self) -> None:
        """write() refused with ENXIO (device offline, path down): NO_CONNECT, not sent."""
        fake = FakeSg(responder=lambda s: Reply(write_errno=errno.ENXIO))
        r = make(fake).execute(TUR)
        assert r.outcome is Outcome.NO_CONNECT
        assert r.detail is not None
        assert (r.detail.errno, r.detail.maybe_executed) == (errno.ENXIO, False)

    def test_read_on_vanished_node(self) -> None:
        """read() failing with ENODEV: DEVICE_GONE, maybe executed."""
        fake = FakeSg(read_errno=errno.ENODEV)
        r = make(fake).execute(TUR, timeout=1)
        assert r.outcome is Outcome.DEVICE_GONE
        assert r.detail is not None
        assert (r.detail.errno, r.detail.maybe_executed) == (errno.ENODEV, True)

    def test_hangup(self) -> None:
        """POLLHUP without a completion: DEVICE_GONE."""
        fake = FakeSg(responder=lambda s: Reply(delay=None), poll_extra=select.POLLHUP)
        r = make(fake).execute(TUR, timeout=1)
        assert r.outcome is Outcome.DEVICE_GONE

    def test_closed_transport(self) -> None:
        """After close(), execute raises TransportError; close is idempotent."""
        fake = FakeSg()
        t = make(fake)
        t.close()
        t.close()
        assert fake.closed
        with pytest.raises(errors.TransportError, match="closed"):
            t.execute(TUR)

    def test_dropped_transport_closes_node(self) -> None:
        """A transport dropped without close() releases its node."""
        fake = FakeSg()
        t = make(fake)
        t.execute(TUR)
        del t
        gc.collect()
        assert fake.closed

    def test_close_aborts_waiters(self) -> None:
        """A command outstanding when the transport closes comes back ABORTED at once."""
        fake = FakeSg(responder=lambda s: Reply(delay=None))
        t = make(fake)
        out: list[Outcome] = []
        th = threading.Thread(target=lambda: out.append(t.execute(TUR, timeout=5).outcome))
        th.start()
        time.sleep(0.1)
        start = time.monotonic()
        t.close()
        th.join(5)
        assert time.monotonic() - start < 1.0
        assert out == [Outcome.ABORTED]
        assert t.outstanding == 0
