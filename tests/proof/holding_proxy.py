"""A loopback TCP relay that can hold back one direction of its traffic.

The tgtd proofs put it in front of one portal so a path cut lands *during* a command,
deterministically: hold the target's answers, send the command, wait until the answer
reached the relay (so the target ran the command), then cut the connection with
``tgtadm --mode conn --op delete``; the relay drops what it held and closes the
initiator's side. Holding the initiator's requests instead makes a cut before the
command reached the target. Nothing is parsed: bytes are relayed or held.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

from attrs import define, field

__all__ = ["HoldingProxy"]

_CHUNK = 1 << 16


@define
class _Pair:
    client: socket.socket
    upstream: socket.socket
    closed: bool = False
    lock: threading.Lock = field(factory=threading.Lock)

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


class HoldingProxy:
    """Relay ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>``, one thread per direction.

    Args:
        target_port: the port relayed to.

    Attributes:
        port: the port to connect to.
        target_closed_at: ``time.perf_counter()`` when the target last closed a
            relayed connection (the moment of a target-side cut), or None.
    """

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._cond = threading.Condition()
        self._hold_requests = False
        self._hold_answers = False
        self._held = {"requests": 0, "answers": 0}
        self._pairs: list[_Pair] = []
        self._threads: list[threading.Thread] = []
        self.target_closed_at: float | None = None
        self._start(self._accept)

    def _start(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        while True:
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            pair = _Pair(client, upstream)
            with self._cond:
                self._pairs.append(pair)
            self._start(self._pump, pair, client, upstream, "requests")
            self._start(self._pump, pair, upstream, client, "answers")

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket, kind: str) -> None:
        held: list[bytes] = []
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                with self._cond:
                    holding = self._hold_requests if kind == "requests" else self._hold_answers
                    if holding:
                        held.append(data)
                        self._held[kind] += len(data)
                        self._cond.notify_all()
                        continue
                if held:  # released: what was held goes first
                    dst.sendall(b"".join(held))
                    held.clear()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            if kind == "answers" and not pair.closed:
                self.target_closed_at = time.perf_counter()
            pair.close()  # a close on one side closes both; held bytes are dropped

    def hold(self, *, requests: bool = False, answers: bool = False) -> None:
        """Start holding the initiator's requests and/or the target's answers."""
        with self._cond:
            self._hold_requests = requests
            self._hold_answers = answers
            self._held = {"requests": 0, "answers": 0}

    def release(self) -> None:
        """Relay everything again (bytes held on a live connection go with the next ones)."""
        with self._cond:
            self._hold_requests = self._hold_answers = False

    def wait_held(self, kind: str, timeout: float = 10.0) -> bool:
        """Wait until some bytes of ``kind`` (``"requests"`` or ``"answers"``) are held."""
        with self._cond:
            return self._cond.wait_for(lambda: self._held[kind] > 0, timeout)

    def close(self) -> None:
        """Stop listening and close every relayed connection."""
        with contextlib.suppress(OSError):  # wakes the accepting thread (close alone does not)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._cond:
            pairs = list(self._pairs)
        for p in pairs:
            p.close()
        for t in self._threads:
            t.join(timeout=2)

    def __enter__(self) -> HoldingProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
