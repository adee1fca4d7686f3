"""Test doubles for the multipath tests: a scripted unit behind MockTransports, a fake clock."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from pathlib import Path

from tapepath.scsi.alua import AccessState, StpgParameters, TargetPortGroup, TargetPortGroups
from tapepath.scsi.inquiry import StandardInquiry
from tapepath.scsi.vpd import (
    Association,
    Designator,
    DesignatorType,
    DeviceIdentification,
    SupportedVpdPages,
)
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


class FakeAluaUnit:
    """A logical unit with ALUA: one target port group per port, explicit or implicit.

    Port i has relative port i+1 and port group i+1. Commands other than INQUIRY,
    REPORT/SET TARGET PORT GROUPS run only on an active group; a standby group answers
    02/04/0B. ``transition_reports`` makes that many RTPGs after an STPG report the
    group as transitioning.
    """

    def __init__(
        self,
        ports: int = 2,
        *,
        explicit: bool = True,
        active: int = 0,
        device_type: int = 8,
        naa: str = "5000e11100000001",
    ) -> None:
        self.explicit = explicit
        self.device_type = device_type
        self.naa = naa
        self.states = [
            AccessState.ACTIVE_OPTIMIZED if i == active else AccessState.STANDBY
            for i in range(ports)
        ]
        self.preferred = [False] * ports
        self.link = [True] * ports
        self.transition_reports = 0
        self._transitioning: int | None = None
        self.stpg: list[tuple[int, int]] = []  # (port used, group asked for)
        self.executed: list[tuple[int, bytes]] = []
        self.unit_attentions: list[list[tuple[int, int]]] = [[] for _ in range(ports)]
        self.transports = [
            MockTransport(self._handler(i), url=f"mock://alua/port{i}") for i in range(ports)
        ]

    def _rtpg_data(self) -> bytes:
        groups = []
        for i, st in enumerate(self.states):
            state = st
            if self._transitioning == i and self.transition_reports > 0:
                state = AccessState.TRANSITIONING
            groups.append(
                TargetPortGroup(
                    tpg_id=i + 1,
                    state=state,
                    pref=self.preferred[i],
                    relative_target_ports=(i + 1,),
                )
            )
        if self._transitioning is not None and self.transition_reports > 0:
            self.transition_reports -= 1
        return TargetPortGroups(tuple(groups)).to_bytes()

    def _inquiry(self, port: int, cdb: bytes) -> bytes:
        if not cdb[1] & 1:
            return StandardInquiry(
                peripheral_device_type=self.device_type,
                tpgs=3 if self.explicit else 1,
                vendor_raw="FAKE",
                product_raw="ALUA UNIT",
            ).to_bytes()
        if cdb[2] == 0x00:
            return SupportedVpdPages((0x00, 0x83)).to_bytes()
        if cdb[2] == 0x83:
            return DeviceIdentification(
                (
                    Designator(DesignatorType.NAA, bytes.fromhex(self.naa)),
                    Designator(
                        DesignatorType.RELATIVE_TARGET_PORT,
                        b"\0\0" + (port + 1).to_bytes(2, "big"),
                        association=Association.TARGET_PORT,
                    ),
                    Designator(
                        DesignatorType.TARGET_PORT_GROUP,
                        b"\0\0" + (port + 1).to_bytes(2, "big"),
                        association=Association.TARGET_PORT,
                    ),
                ),
                peripheral_device_type=self.device_type,
            ).to_bytes()
        return b""

    def activate_group(self, index: int) -> None:
        """Make one group active and the others standby (the device's own doing)."""
        for i in range(len(self.states)):
            self.states[i] = AccessState.ACTIVE_OPTIMIZED if i == index else AccessState.STANDBY
            if i != index:
                self.unit_attentions[i].append((0x2A, 0x06))

    def _handler(self, port: int) -> Callable[[Request], Response]:
        def handle(req: Request) -> Response:
            if not self.link[port]:
                return Response.failure(Outcome.LINK_LOST, "link down")
            op = req.cdb[0]
            if op == 0x12:
                return Response(data=self._inquiry(port, req.cdb))
            if self.unit_attentions[port] and op not in (0x03, 0xA0):
                asc, ascq = self.unit_attentions[port].pop(0)
                return Response(status=Status.CHECK_CONDITION, sense=fixed_sense(6, asc, ascq))
            if op == 0xA3:
                return Response(data=self._rtpg_data())
            if op == 0xA4:
                if not self.explicit:
                    return Response(status=Status.CHECK_CONDITION, sense=fixed_sense(5, 0x20, 0x00))
                for d in StpgParameters.from_bytes(req.data_out).descriptors:
                    self.stpg.append((port, d.tpg_id))
                    self.activate_group(d.tpg_id - 1)
                    self._transitioning = d.tpg_id - 1
                return Response()
            state = self.states[port]
            if self._transitioning == port and self.transition_reports > 0:
                return Response(status=Status.CHECK_CONDITION, sense=_SENSE[Mode.TRANSITIONING])
            if state in (AccessState.ACTIVE_OPTIMIZED, AccessState.ACTIVE_NON_OPTIMIZED):
                self.executed.append((port, req.cdb))
                return Response(data=bytes(req.data_in_len))
            mode = Mode.STANDBY if state == AccessState.STANDBY else Mode.UNAVAILABLE
            return Response(status=Status.CHECK_CONDITION, sense=_SENSE[mode])

        return handle


def fake_sg_node(sys_root: Path, n: int, hctl: str, ptype: int) -> None:
    """Lay out sgN in a fake sysfs the way the kernel does (class link, device link, type)."""
    dev = sys_root / "devices" / "platform" / f"host{hctl.split(':', maxsplit=1)[0]}" / hctl
    sgdir = dev / "scsi_generic" / f"sg{n}"
    sgdir.mkdir(parents=True)
    (sgdir / "dev").write_text(f"21:{n}\n")
    os.symlink(os.path.relpath(dev, sgdir), sgdir / "device")
    cls = sys_root / "class" / "scsi_generic"
    cls.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(sgdir, cls), cls / f"sg{n}")
    (dev / "type").write_text(f"{ptype}\n")
    (dev / "state").write_text("running\n")
