"""A path whose transport could not be opened yet: it opens on first use.

A multipath device must not be lost because one of its paths is down when the device
is opened (a portal unreachable, a node missing). :class:`LazyTransport` stands in for
that path: each command (or checker probe) first tries to open the real transport; while
that fails the command comes back as a ``NO_CONNECT`` path failure with
``maybe_executed=False``, the way a transport reports a path it cannot use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from tapepath.errors import TransportError, TransportUnavailableError, UnknownSchemeError
from tapepath.multipath.redact import redact_url
from tapepath.transport.base import DEFAULT_TIMEOUT, Outcome, Response, Transport

__all__ = ["LazyTransport", "open_or_defer"]


class LazyTransport(Transport):
    """Opens ``url`` with ``opener`` on first use, retrying at every command until it works.

    Args:
        url: the path URL (shown as :attr:`url` with its secrets removed).
        opener: opens the real transport (``tapepath.open_transport``).
        first_error: why the first attempt failed (kept for :attr:`last_error`).
    """

    def __init__(self, url: str, opener: Callable[[str], Transport], first_error: str = "") -> None:
        self.url = redact_url(url)
        self._target = url
        self._opener = opener
        self._real: Transport | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.last_error = first_error
        """Why the last attempt to open failed."""

    def _get(self) -> Transport | None:
        with self._lock:
            if self._real is None and not self._closed:
                try:
                    self._real = self._opener(self._target)
                except (TransportError, OSError) as exc:
                    self.last_error = redact_url(f"{type(exc).__name__}: {exc}")
            return self._real

    def execute(
        self,
        cdb: bytes,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Open if needed, then pass the command on; NO_CONNECT while it cannot open."""
        if self._closed:
            raise TransportError(f"{self.url}: transport is closed")
        real = self._get()
        if real is None:
            return Response.failure(
                Outcome.NO_CONNECT, f"cannot open: {self.last_error}", maybe_executed=False
            )
        return real.execute(cdb, data_out=data_out, data_in_len=data_in_len, timeout=timeout)

    def execute_into(
        self, cdb: bytes, buf: bytearray | memoryview, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Response:
        """Open if needed, then pass the command on; NO_CONNECT while it cannot open."""
        if self._closed:
            raise TransportError(f"{self.url}: transport is closed")
        real = self._get()
        if real is None:
            return Response.failure(
                Outcome.NO_CONNECT, f"cannot open: {self.last_error}", maybe_executed=False
            )
        return real.execute_into(cdb, buf, timeout=timeout)

    def close(self) -> None:
        """Close the real transport if it was opened; idempotent."""
        with self._lock:
            self._closed = True
            real, self._real = self._real, None
        if real is not None:
            real.close()


log = structlog.get_logger("tapepath.multipath")


def open_or_defer(url: str, opener: Callable[[str], Transport]) -> tuple[Transport, bool]:
    """Open ``url``; when the path is down now, a :class:`LazyTransport` for it instead.

    Returns:
        (transport, opened): ``opened`` is False for a deferred path.

    Raises:
        UnknownSchemeError, TransportUnavailableError, ValueError: a wrong URL or a
            missing dependency, which no later attempt can cure.
    """
    try:
        return opener(url), True
    except (UnknownSchemeError, TransportUnavailableError):
        raise
    except (TransportError, OSError) as exc:
        lazy = LazyTransport(url, opener, redact_url(f"{type(exc).__name__}: {exc}"))
        log.warning("path_open_failed", path=lazy.url, error=lazy.last_error)
        return lazy, False
