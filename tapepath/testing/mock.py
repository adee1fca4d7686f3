"""MockTransport: a transport made from a plain function, for unit tests.

The model is httpx's ``MockTransport``: the handler sees each command as a
:class:`Request` value and returns what the device would answer.

Example:
    >>> from tapepath.testing.mock import MockTransport, Request
    >>> from tapepath.transport import Response
    >>> def handler(req: Request) -> Response:
    ...     return Response(data=bytes(req.data_in_len), transferred=req.data_in_len)
    >>> t = MockTransport(handler)
    >>> t.execute(bytes(6)).ok
    True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from attrs import frozen

from tapepath.errors import TransportError
from tapepath.transport.base import DEFAULT_TIMEOUT, Response, Transport, validate_request

__all__ = ["MockTransport", "Request"]


@frozen
class Request:
    """One command as a MockTransport handler sees it.

    Attributes:
        cdb: the CDB bytes.
        data_out: the bytes sent to the device.
        data_in_len: how many bytes the caller accepts.
        timeout: the caller's deadline in seconds.
    """

    cdb: bytes
    data_out: bytes = b""
    data_in_len: int = 0
    timeout: float = DEFAULT_TIMEOUT


Handler = Callable[[Request], Response]


class MockTransport(Transport):
    """A transport whose answers come from ``handler``.

    The response's data is cut to ``data_in_len`` and ``residual``/``transferred`` are
    filled in when the handler left them at their defaults, so handlers stay short.
    Every request is appended to :attr:`requests` for assertions.

    Args:
        handler: called once per command.
        url: the URL the transport reports (``mock://`` by default).
    """

    scheme = "mock"

    def __init__(self, handler: Handler, url: str = "mock://") -> None:
        self.url = url
        self._handler = handler
        self._closed = False
        self._lock = threading.Lock()
        self.requests: list[Request] = []

    def execute(
        self,
        cdb: bytes,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Pass the command to the handler and return its answer (see the class doc)."""
        validate_request(cdb, data_out, data_in_len, timeout)
        if self._closed:
            raise TransportError(f"{self.url}: transport is closed")
        req = Request(bytes(cdb), bytes(data_out), data_in_len, timeout)
        with self._lock:
            self.requests.append(req)
        start = time.perf_counter()
        r = self._handler(req)
        if r.path_failed:
            return r
        data = r.data[:data_in_len] if data_in_len else b""
        expected = data_in_len or len(data_out)
        moved = len(data) if data_in_len else len(data_out)
        residual = r.residual if r.residual else expected - moved
        return Response(
            status=r.status,
            data=data,
            sense=r.sense,
            residual=residual,
            duration=r.duration or time.perf_counter() - start,
            outcome=r.outcome,
            detail=r.detail,
            transferred=r.transferred or moved,
        )

    def close(self) -> None:
        """Mark the transport closed; later calls raise TransportError."""
        self._closed = True
