"""Test doubles for the multipath tests: a scripted unit behind MockTransports, a fake clock."""

from __future__ import annotations

import enum
from collections.abc import Callable

from tapepath.testing.mock import MockTransport, Request
from tapepath.transport import Outcome, Response, Status


def fixed_sense(key: int, asc: int, ascq: int) -> bytes:
    """Fixed-format sense data (70h) with the given key, ASC and ASCQ."""
    b = bytearray(18)
    b[0] = 0x70
    b[2] = key
    b[7] = 10
    b[12] = asc
    b[13] = ascq
    return bytes(b)


class Mode(enum.Enum):
    """How one port of a FakeUnit answers."""

    UP = "up"
    DOWN = "down"  # link lost, maybe executed
    NO_CONNECT = "no_connect"  # not sent at all
    STANDBY = "standby"
    UNAVAILABLE = "unavailable"
    TRANSITIONING = "transitioning"
    OFFLINE = "offline"


_SENSE = {
    Mode.STANDBY: fixed_sense(2, 0x04, 0x0B),
    Mode.UNAVAILABLE: fixed_sense(2, 0x04, 0x0C),
    Mode.TRANSITIONING: fixed_sense(2, 0x04, 0x0A),
    Mode.OFFLINE: fixed_sense(2, 0x04, 0x12),
}


class FakeUnit:
    """One logical unit seen through several ports, each a MockTransport.

    Every command that reaches the unit through an UP port is logged in ``executed``
    as (port, cdb); data-in commands return ``payload``.
    """

    def __init__(self, ports: int = 2, payload: bytes = bytes(range(64))) -> None:
        self.modes = [Mode.UP] * ports
        self.payload = payload
        self.executed: list[tuple[int, bytes]] = []
        self.on_command: Callable[[int, Request], None] | None = None
        self.transports = [
            MockTransport(self._handler(i), url=f"mock://unit/port{i}") for i in range(ports)
        ]

    def _handler(self, port: int) -> Callable[[Request], Response]:
        def handle(req: Request) -> Response:
            if self.on_command is not None:
                self.on_command(port, req)
            mode = self.modes[port]
            if mode is Mode.DOWN:
                self.executed.append((port, req.cdb))  # it may have run: say it did
                return Response.failure(Outcome.LINK_LOST, "connection reset")
            if mode is Mode.NO_CONNECT:
                return Response.failure(Outcome.NO_CONNECT, "no route", maybe_executed=False)
            if mode is not Mode.UP:
                return Response(status=Status.CHECK_CONDITION, sense=_SENSE[mode])
            self.executed.append((port, req.cdb))
            return Response(data=self.payload, duration=0.001)

        return handle


class FakeClock:
    """A monotonic clock that only moves when told; ``sleep`` advances it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []
        self.during_sleep: Callable[[], None] | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.during_sleep is not None:
            self.during_sleep()

    def advance(self, seconds: float) -> None:
        self.now += seconds
