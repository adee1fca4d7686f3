"""Target ports, I_T nexuses and their unit attention queues, and ALUA states.

Each logical unit (the changer, each drive) has target ports; an I_T nexus is one
initiator talking through one port. A nexus has its own queue of unit attentions:
a new nexus starts with 29/00 (power on, reset) or 29/07 (I_T nexus loss) after a
reconnect. Each port forms its own target port group, whose asymmetric access state
(explicit ALUA) decides which commands it accepts.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Callable

from attrs import define, field

from tapepath.testing.reservations import PersistentReservations

__all__ = [
    "ALUA_CHANGED",
    "MEDIUM_CHANGED",
    "MODE_CHANGED",
    "NEXUS_LOSS",
    "POWER_ON",
    "AluaState",
    "LogicalUnit",
    "Nexus",
    "Port",
]

_ids = itertools.count(1)

POWER_ON = (0x29, 0x00)
NEXUS_LOSS = (0x29, 0x07)
MEDIUM_CHANGED = (0x28, 0x00)
MODE_CHANGED = (0x2A, 0x01)
ALUA_CHANGED = (0x2A, 0x06)


class AluaState(enum.IntEnum):
    """Asymmetric access states (SPC)."""

    ACTIVE_OPTIMIZED = 0x0
    ACTIVE_NON_OPTIMIZED = 0x1
    STANDBY = 0x2
    UNAVAILABLE = 0x3
    OFFLINE = 0xE
    TRANSITIONING = 0xF


@define(eq=False)
class Port:
    """One target port of a logical unit (its own target port group).

    Attributes:
        index: the port number in ``sim://NAME/DEVICE?port=N``.
        relative_id: the relative target port identifier (1-based).
        group: the target port group identifier.
        state: the group's asymmetric access state.
        preferred: the PREF bit of the group.
        link_up: False while a link-down fault or a test cuts the port.
        present: False when the port's logical unit vanished (a failed control path).
        status: the group's STATUS CODE in REPORT TARGET PORT GROUPS (1: changed by SET
            TARGET PORT GROUPS, 2: changed implicitly).
    """

    index: int
    relative_id: int
    group: int
    state: AluaState = AluaState.ACTIVE_OPTIMIZED
    preferred: bool = False
    link_up: bool = True
    present: bool = True
    status: int = 0


@define(eq=False)
class Nexus:
    """One I_T nexus: an initiator connected through one port.

    Attributes:
        id: unique number.
        initiator: the initiator's name (from the URL, default ``sim-initiator``).
        port: the target port.
        unit_attentions: pending unit attentions as (asc, ascq), oldest first.
        lost: the nexus was broken (link down, power cycle); the transport reconnects.
        lost_ua: the unit attention the reconnected nexus starts with (29/07, or 29/00
            after a power cycle).
    """

    initiator: str
    port: Port
    unit_attentions: deque[tuple[int, int]] = field(factory=deque)
    lost: bool = False
    lost_ua: tuple[int, int] = NEXUS_LOSS
    id: int = field(factory=lambda: next(_ids))

    def post(self, asc: int, ascq: int) -> None:
        """Queue a unit attention (a reset replaces everything queued before it)."""
        ua = (asc, ascq)
        if asc == 0x29:
            self.unit_attentions.clear()
        if ua not in self.unit_attentions:
            self.unit_attentions.append(ua)


@define(eq=False)
class LogicalUnit:
    """What every simulated logical unit shares: ports, nexuses, reservations.

    Attributes:
        name: the device name in URLs (``changer``, ``drive0`` ...).
        naa: the 64-bit NAA logical unit identifier (VPD 83h), the same on every port.
        serial: the unit serial number (VPD 80h).
        ports: the target ports.
        nexuses: live nexuses.
        pr: persistent reservations.
        on_drop: called with the id of each nexus that is lost (per-nexus state ends).
    """

    name: str
    naa: int
    serial: str
    ports: list[Port] = field(factory=list)
    nexuses: list[Nexus] = field(factory=list)
    pr: PersistentReservations = field(factory=PersistentReservations)
    on_drop: list[Callable[[int], None]] = field(factory=list)

    def connect(self, initiator: str, port: Port, ua: tuple[int, int] = POWER_ON) -> Nexus:
        """Make a new nexus with ``ua`` pending (29/00; 29/07 after a reconnect)."""
        nx = Nexus(initiator, port)
        nx.post(*ua)
        self.nexuses.append(nx)
        return nx

    def drop(self, nexus: Nexus, ua: tuple[int, int] = NEXUS_LOSS) -> None:
        """Forget a nexus (the transport closed or the link dropped it)."""
        nexus.lost = True
        nexus.lost_ua = ua
        if nexus in self.nexuses:
            self.nexuses.remove(nexus)
            for callback in self.on_drop:
                callback(nexus.id)

    def drop_port(self, port: Port) -> None:
        """Every nexus through ``port`` is lost (link down)."""
        for nx in [n for n in self.nexuses if n.port is port]:
            self.drop(nx)

    def drop_all(self, ua: tuple[int, int]) -> None:
        """Every nexus is lost (power cycle: reconnects start with ``ua``)."""
        for nx in list(self.nexuses):
            self.drop(nx, ua)

    def broadcast(self, asc: int, ascq: int, *, except_nexus: Nexus | None = None) -> None:
        """Queue a unit attention on every nexus but one."""
        for nx in self.nexuses:
            if nx is not except_nexus:
                nx.post(asc, ascq)

    def notify(self, initiator: str, port: int | None, asc: int, ascq: int) -> None:
        """Queue a unit attention on the nexuses of a registrant (port None: all ports)."""
        for nx in self.nexuses:
            if nx.initiator == initiator and (port is None or nx.port.relative_id == port):
                nx.post(asc, ascq)

    def port(self, index: int) -> Port:
        """The port with URL index ``index``.

        Raises:
            LookupError: there is no such port.
        """
        for p in self.ports:
            if p.index == index:
                return p
        raise LookupError(f"{self.name} has no port {index} (it has {len(self.ports)})")
