"""Passing transport failures: which sg and SPTI codes say ``retryable`` and whether they ran."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.transport import Outcome, Response
from tapepath.transport.base import FailureDetail
from tapepath.transport.sg_outcome import DRIVER_STATUS, HOST_STATUS, Kind, classify_completion
from tapepath.transport.spti import failure_for_error
from tests.transport.test_sg import TUR, WRITE6, FakeSg, Reply, make

# Written from the kernel's meaning of each code (include/scsi/scsi_status.h comments and
# scsi_decide_disposition): code -> may the command have run?
RETRY_HOST = {
    0x02: False,  # DID_BUS_BUSY: the bus stayed busy, the command was not delivered
    0x06: True,  # DID_PARITY: a parity error during the transfer
    0x0B: True,  # DID_SOFT_ERROR: the LLD wants an issued command retried
    0x0C: False,  # DID_IMM_RETRY: not queued (e.g. iSCSI session not logged in)
    0x0D: False,  # DID_REQUEUE: handed back to the queue, not started
}
RETRY_DRIVER = {
    0x1: True,  # DRIVER_BUSY: no current kernel sets it; unknown, so assume it ran
    0x2: True,  # DRIVER_SOFT: a soft error after issuing
}


def _complete(host: int, driver: int, status: int = 0) -> Response:
    return classify_completion(
        status,
        host,
        driver,
        sense=b"",
        data=b"",
        residual=0,
        transferred=0,
        duration=0.001,
    )


class TestHostRows:
    """Each DID_* code the kernel means as passing is retryable, with its maybe_executed."""

    @pytest.mark.parametrize(("host", "ran"), sorted(RETRY_HOST.items()))
    def test_retry_row(self, host: int, ran: bool) -> None:
        """The completion is ABORTED, retryable, with the decided maybe_executed."""
        r = _complete(host, 0)
        assert r.outcome is Outcome.ABORTED
        assert r.detail is not None
        assert r.detail.retryable is True
        assert r.detail.maybe_executed is ran
        assert r.detail.host_status == host

    @pytest.mark.parametrize(("host", "ran"), sorted(RETRY_HOST.items()))
    def test_through_the_driver(self, host: int, ran: bool) -> None:
        """End to end through the fake sg driver: the same answer for a WRITE."""
        r = make(FakeSg(responder=lambda s: Reply(host=host))).execute(WRITE6, data_out=b"abcd")
        assert r.path_failed
        assert r.detail is not None
        assert (r.detail.retryable, r.detail.maybe_executed) == (True, ran)

    def test_every_retry_row_has_a_reason(self) -> None:
        """The table says why for each retry row, and only those rows are RETRY."""
        retry = {code for code, rule in HOST_STATUS.items() if rule.kind is Kind.RETRY}
        assert retry == set(RETRY_HOST)
        assert all(HOST_STATUS[c].reason for c in retry)

    @given(st.integers(0, 0xFF), st.integers(0, 0xFF))
    def test_only_retry_rows_are_retryable(self, host: int, driver: int) -> None:
        """Any host/driver pair: retryable exactly when the deciding code is a retry row."""
        r = _complete(host, driver, status=0)
        if host in RETRY_HOST:
            expected: bool | None = RETRY_HOST[host]
        elif host in (0x00, 0x0A) and driver & 0xF in RETRY_DRIVER:
            expected = RETRY_DRIVER[driver & 0xF]
        else:
            expected = None
        if expected is None:
            assert r.detail is None or r.detail.retryable is False
        else:
            assert r.detail is not None
            assert r.detail.retryable is True
            assert r.detail.maybe_executed is expected


class TestDriverRows:
    """The driver-byte retry codes, under DID_OK."""

    @pytest.mark.parametrize(("driver", "ran"), sorted(RETRY_DRIVER.items()))
    def test_retry_row(self, driver: int, ran: bool) -> None:
        """DRIVER_BUSY and DRIVER_SOFT are retryable and may have run."""
        r = _complete(0, driver)
        assert r.outcome is Outcome.ABORTED
        assert r.detail is not None
        assert (r.detail.retryable, r.detail.maybe_executed) == (True, ran)
        assert DRIVER_STATUS[driver].reason

    def test_path_failures_are_not_retryable(self) -> None:
        """DID_NO_CONNECT, DID_TIME_OUT, DID_TRANSPORT_DISRUPTED stay path failures."""
        for host in (0x01, 0x03, 0x0E):
            r = _complete(host, 0)
            assert r.detail is not None
            assert r.detail.retryable is False


class TestSpti:
    """SPTI: ERROR_BUSY and the resource shortages are passing and did not run."""

    @pytest.mark.parametrize("code", [170, 8, 1450])
    def test_passing_codes(self, code: int) -> None:
        """ERROR_BUSY, ERROR_NOT_ENOUGH_MEMORY, ERROR_NO_SYSTEM_RESOURCES."""
        r = failure_for_error(code, 0.0)
        assert r.detail is not None
        assert (r.detail.retryable, r.detail.maybe_executed) == (True, False)

    @pytest.mark.parametrize("code", [21, 31, 121, 995, 1117, 1111, 1167, 9999])
    def test_other_codes(self, code: int) -> None:
        """Not ready, general failure, timeouts, aborts, resets, unknown: not retryable."""
        r = failure_for_error(code, 0.0)
        assert r.detail is not None
        assert r.detail.retryable is False


class TestContract:
    """FailureDetail and Response.failure keep their old calls working."""

    def test_defaults(self) -> None:
        """Without the keyword a failure is not retryable."""
        r = Response.failure(Outcome.LINK_LOST, "gone")
        assert r.detail == FailureDetail("gone")
        assert r.detail.retryable is False

    def test_keyword(self) -> None:
        """retryable= reaches the detail."""
        r = Response.failure(Outcome.ABORTED, "busy", maybe_executed=False, retryable=True)
        assert r.detail is not None
        assert (r.detail.retryable, r.detail.maybe_executed) == (True, False)

    def test_clean_completion_has_no_detail(self) -> None:
        """GOOD through the fake driver carries no failure detail."""
        r = make(FakeSg(responder=lambda s: Reply())).execute(TUR)
        assert r.ok
        assert r.detail is None
