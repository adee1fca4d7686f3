"""SimTransport: the ``sim://`` transport to a port of a registered VirtualLibrary.

URL form: ``sim://NAME/DEVICE?port=N[&initiator=NAME]``. DEVICE is ``changer``,
``driveN``, ``N`` or a drive's serial number; ``port`` defaults to 0; ``initiator``
names the initiator (default ``sim-initiator``): two transports with the same
initiator on the same port are two connections of one initiator port, each with its
own I_T nexus here.

Opening a transport makes a new I_T nexus, which starts with a 29/00 unit attention,
like a fresh login. After a path failure that lost the nexus (link down, response
lost, power cycle) the next command reconnects and sees 29/07 (or 29/00 after a power
cycle).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tapepath.errors import TransportError
from tapepath.testing.engine import Session, execute
from tapepath.testing.library import VirtualLibrary, lookup
from tapepath.transport.base import DEFAULT_TIMEOUT, Response, Transport, validate_request

__all__ = ["SimTransport", "parse_sim_url"]


def parse_sim_url(url: str) -> tuple[str, str, int, str]:
    """Split a sim:// URL into (library name, device, port, initiator).

    Raises:
        ValueError: the URL is not a well-formed sim:// URL.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "sim" or not parts.netloc:
        raise ValueError(f"not a sim://NAME/DEVICE URL: {url!r}")
    device = parts.path.strip("/")
    if not device or "/" in device:
        raise ValueError(f"sim URL needs exactly one DEVICE after the name: {url!r}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"port", "initiator"}
    if unknown:
        raise ValueError(f"unknown sim URL parameter(s) {sorted(unknown)} in {url!r}")
    port_text = query.get("port", ["0"])[-1]
    if not (port_text.isascii() and port_text.isdigit()):
        raise ValueError(f"port must be a number in {url!r}")
    initiator = query.get("initiator", ["sim-initiator"])[-1]
    if not initiator:
        raise ValueError(f"initiator must not be empty in {url!r}")
    return parts.netloc, device, int(port_text), initiator


class SimTransport(Transport):
    """One path to a port of an in-process :class:`VirtualLibrary`.

    Thread-safe (the library serialises commands with one lock).

    Args:
        library: the library.
        device: ``changer``, ``driveN`` or ``N``.
        port: the port index.
        initiator: the initiator name.
    """

    scheme = "sim"

    def __init__(
        self, library: VirtualLibrary, device: str, port: int = 0, initiator: str = "sim-initiator"
    ) -> None:
        try:
            session = library.open_session(device, port, initiator)
        except LookupError as exc:
            raise TransportError(str(exc)) from exc
        self.library = library
        self.session: Session = session
        self.url = f"sim://{library.name}/{device}?port={port}"
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> SimTransport:
        """Open ``sim://NAME/DEVICE?port=N``.

        Raises:
            ValueError: malformed URL.
            TransportError: no library of that name, or no such device or port.
        """
        name, device, port, initiator = parse_sim_url(url)
        try:
            lib = lookup(name)
        except LookupError as exc:
            raise TransportError(str(exc)) from exc
        return cls(lib, device, port, initiator)

    def execute(
        self,
        cdb: bytes,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Run one command on the library (see :class:`~tapepath.transport.base.Transport`)."""
        if self._closed:
            raise TransportError(f"{self.url}: transport is closed")
        validate_request(cdb, data_out, data_in_len, timeout)
        return execute(
            self.library, self.session, bytes(cdb), bytes(data_out), data_in_len, timeout=timeout
        )

    def reconnect(self) -> None:
        """Drop this path's nexus and make a new one (the next command sees 29/07)."""
        if self._closed:
            raise TransportError(f"{self.url}: transport is closed")
        self.library.close_session(self.session)

    def close(self) -> None:
        """Forget the nexus; idempotent."""
        if not self._closed:
            self._closed = True
            self.library.close_session(self.session)

    @property
    def nexus_id(self) -> int:
        """The id of the current I_T nexus (changes after a reconnect)."""
        return self.session.nexus.id
