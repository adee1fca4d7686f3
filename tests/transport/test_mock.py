"""Tests of MockTransport, the unit-test seam."""

from __future__ import annotations

import pytest

from tapepath.errors import TransportError
from tapepath.testing.mock import MockTransport, Request
from tapepath.transport import Outcome, Response, Status


def _echo(req: Request) -> Response:
    return Response(data=bytes(range(64)))


class TestMockTransport:
    """MockTransport passes commands to its handler and fills in the bookkeeping."""

    def test_data_cut_to_allocation(self) -> None:
        """Data beyond data_in_len is cut, and the transfer count says so."""
        with MockTransport(_echo) as t:
            r = t.execute(bytes(6), data_in_len=10)
        assert r.data == bytes(range(10))
        assert r.transferred == 10
        assert r.residual == 0

    def test_residual_on_short_data(self) -> None:
        """A short answer leaves a residual."""
        r = MockTransport(_echo).execute(bytes(6), data_in_len=100)
        assert len(r.data) == 64
        assert r.residual == 36

    def test_records_requests(self) -> None:
        """Every request is recorded."""
        t = MockTransport(_echo)
        t.execute(b"\x12\x00\x00\x00\x24\x00", data_in_len=36, timeout=5)
        assert t.requests == [Request(b"\x12\x00\x00\x00\x24\x00", b"", 36, 5)]

    def test_failure_passes_through(self) -> None:
        """A path failure from the handler comes back untouched."""
        t = MockTransport(lambda req: Response.failure(Outcome.LINK_LOST, "cut"))
        r = t.execute(bytes(6))
        assert r.path_failed
        assert not r.ok
        assert r.detail is not None
        assert r.detail.message == "cut"

    def test_check_condition_not_ok(self) -> None:
        """CHECK CONDITION is not ok and is flagged."""
        t = MockTransport(lambda req: Response(status=Status.CHECK_CONDITION, sense=b"\x70"))
        r = t.execute(bytes(6))
        assert r.check_condition
        assert not r.ok

    def test_closed(self) -> None:
        """A closed transport refuses commands."""
        t = MockTransport(_echo)
        t.close()
        with pytest.raises(TransportError, match="closed"):
            t.execute(bytes(6))

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"data_out": b"x", "data_in_len": 1}, "one direction"),
            ({"data_in_len": -1}, "data_in_len"),
            ({"timeout": 0}, "timeout"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, object], match: str) -> None:
        """Bad arguments raise ValueError naming them."""
        with pytest.raises(ValueError, match=match):
            MockTransport(_echo).execute(bytes(6), **kwargs)  # type: ignore[arg-type]
