"""The relay the tgtd proofs use: it relays, holds, releases and passes a close on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.proof.holding_proxy import HoldingProxy


@pytest.fixture
def echo() -> Iterator[tuple[int, list[socket.socket]]]:
    """A loopback echo server: its port, and the server side of each connection."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

            def pump(c: socket.socket = conn) -> None:
                try:
                    while data := c.recv(4096):
                        c.sendall(data)
                except OSError:
                    pass

            threading.Thread(target=pump, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()
    for c in accepted:
        c.close()


def _connect(proxy: HoldingProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port))


def _recv(s: socket.socket, n: int, timeout: float = 5.0) -> bytes:
    s.settimeout(timeout)
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


class TestHoldingProxy:
    """Relaying, holding one direction, and a target-side close."""

    def test_relays_both_ways(self, echo: tuple[int, list[socket.socket]]) -> None:
        """Bytes go through and come back unchanged."""
        with HoldingProxy(echo[0]) as proxy, _connect(proxy) as c:
            c.sendall(b"ping")
            assert _recv(c, 4) == b"ping"

    def test_held_answers_arrive_after_release(self, echo: tuple[int, list[socket.socket]]) -> None:
        """Held answers are counted, not delivered, and go first after release."""
        with HoldingProxy(echo[0]) as proxy, _connect(proxy) as c:
            proxy.hold(answers=True)
            c.sendall(b"first")
            assert proxy.wait_held("answers", 5.0)
            c.settimeout(0.2)
            with pytest.raises(TimeoutError):
                c.recv(16)
            proxy.release()
            c.sendall(b"second")
            assert _recv(c, 11) == b"firstsecond"

    def test_held_requests_never_reach_the_target(
        self, echo: tuple[int, list[socket.socket]]
    ) -> None:
        """With requests held, the target sees nothing (nothing echoes back)."""
        with HoldingProxy(echo[0]) as proxy, _connect(proxy) as c:
            proxy.hold(requests=True)
            c.sendall(b"lost")
            assert proxy.wait_held("requests", 5.0)
            assert not proxy.wait_held("answers", 0.2)

    def test_target_close_drops_held_bytes_and_closes(
        self, echo: tuple[int, list[socket.socket]]
    ) -> None:
        """A close by the target reaches the initiator; held answers are dropped; it is timed."""
        port, accepted = echo
        with HoldingProxy(port) as proxy, _connect(proxy) as c:
            proxy.hold(answers=True)
            c.sendall(b"doomed")
            assert proxy.wait_held("answers", 5.0)
            before = time.perf_counter()
            accepted[-1].shutdown(socket.SHUT_RDWR)
            assert _recv(c, 1) == b""
            assert proxy.target_closed_at is not None
            assert proxy.target_closed_at >= before
