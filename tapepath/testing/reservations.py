"""Persistent reservations (SPC PERSISTENT RESERVE OUT/IN) of one logical unit.

Registrations belong to an I_T nexus, identified here by (initiator name, relative
target port); an ALL_TG_PT registration covers the initiator on every target port
(stored with port ``None``). Registrations survive I_T nexus loss (a reconnect on
the same port keeps them), as on real devices; moving to another port needs REGISTER
AND IGNORE EXISTING KEY there and a PREEMPT, the way LTFS moves its reservation.

The model is pure: operations return the unit attentions to deliver, as
``(registrant, asc, ascq)`` triples, and raise :class:`Conflict` (status
RESERVATION CONFLICT) or :class:`~tapepath.testing._check.Check`.
"""

from __future__ import annotations

import enum

from attrs import define, field, frozen

from tapepath.testing._check import Check, SenseKey

__all__ = [
    "Access",
    "Conflict",
    "PersistentReservations",
    "RegistrantId",
    "Reservation",
    "ReservationType",
]

RegistrantId = tuple[str, "int | None"]
"""(initiator name, relative target port or None for all target ports)."""


class Conflict(Exception):
    """The command ends with status RESERVATION CONFLICT (18h)."""


class ReservationType(enum.IntEnum):
    """PERSISTENT RESERVE types."""

    WRITE_EXCLUSIVE = 1
    EXCLUSIVE_ACCESS = 3
    WRITE_EXCLUSIVE_REGISTRANTS_ONLY = 5
    EXCLUSIVE_ACCESS_REGISTRANTS_ONLY = 6
    WRITE_EXCLUSIVE_ALL_REGISTRANTS = 7
    EXCLUSIVE_ACCESS_ALL_REGISTRANTS = 8

    @property
    def all_registrants(self) -> bool:
        """Every registrant is a reservation holder."""
        return self in (7, 8)

    @property
    def registrants_only(self) -> bool:
        """Registrants may access; others are limited."""
        return self in (5, 6, 7, 8)

    @property
    def exclusive_access(self) -> bool:
        """Non-holders may not even read."""
        return self in (3, 6, 8)


class Access(enum.Enum):
    """How a command stands against a reservation."""

    ALWAYS = "always"
    """Allowed whatever the reservation (INQUIRY, REPORT LUNS, PR IN/OUT ...)."""
    READ = "read"
    """Allowed under write-exclusive types (READ, READ POSITION, MODE SENSE ...)."""
    WRITE = "write"
    """Allowed to holders only (and to registrants under registrants-only types)."""


@frozen
class Reservation:
    """The persistent reservation in effect.

    Attributes:
        holder: the registrant holding it (for all-registrants types, the one that
            reserved; every registrant holds it).
        type: the reservation type.
        key: the holder's key when it reserved.
    """

    holder: RegistrantId
    type: ReservationType
    key: int


Notice = tuple[RegistrantId, int, int]


@define
class PersistentReservations:
    """Registrations and the reservation of one logical unit.

    Attributes:
        generation: PRGENERATION, bumped by every REGISTER, CLEAR, PREEMPT.
        registrations: key per registrant.
        reservation: the reservation, or None.
        aptpl: registrations persist through power loss.
    """

    generation: int = 0
    registrations: dict[RegistrantId, int] = field(factory=dict)
    reservation: Reservation | None = None
    aptpl: bool = False

    # ---- lookup -----------------------------------------------------------------------

    def registrant(self, initiator: str, port: int) -> RegistrantId | None:
        """The registration entry covering this I_T nexus, or None."""
        if (initiator, port) in self.registrations:
            return (initiator, port)
        if (initiator, None) in self.registrations:
            return (initiator, None)
        return None

    def key_of(self, initiator: str, port: int) -> int | None:
        """The nexus's registered key, or None."""
        rid = self.registrant(initiator, port)
        return None if rid is None else self.registrations[rid]

    def is_holder(self, initiator: str, port: int) -> bool:
        """The nexus holds the reservation."""
        res = self.reservation
        if res is None:
            return False
        rid = self.registrant(initiator, port)
        if rid is None:
            return False
        return res.type.all_registrants or rid == res.holder

    def check_access(self, initiator: str, port: int, access: Access) -> None:
        """Raise :class:`Conflict` if the reservation forbids this access."""
        res = self.reservation
        if res is None or access is Access.ALWAYS:
            return
        if self.is_holder(initiator, port):
            return
        registered = self.registrant(initiator, port) is not None
        if res.type.registrants_only and registered:
            return
        if access is Access.READ and not res.type.exclusive_access:
            return
        raise Conflict

    def _others(self, me: RegistrantId | None, asc: int, ascq: int) -> list[Notice]:
        return [(r, asc, ascq) for r in self.registrations if r != me]

    # ---- PERSISTENT RESERVE OUT -------------------------------------------------------

    def register(
        self,
        initiator: str,
        port: int,
        reservation_key: int,
        service_action_key: int,
        *,
        ignore_existing: bool = False,
        all_tg_pt: bool = False,
        aptpl: bool = False,
    ) -> list[Notice]:
        """REGISTER / REGISTER AND IGNORE EXISTING KEY."""
        rid = self.registrant(initiator, port)
        notices: list[Notice] = []
        if rid is None:
            if reservation_key != 0 and not ignore_existing:
                raise Conflict
            if service_action_key == 0:
                return notices
            self.registrations[(initiator, None if all_tg_pt else port)] = service_action_key
        else:
            if not ignore_existing and reservation_key != self.registrations[rid]:
                raise Conflict
            if service_action_key == 0:
                notices = self._unregister(rid)
            else:
                self.registrations[rid] = service_action_key
        self.aptpl = aptpl
        self.generation += 1
        return notices

    def _unregister(self, rid: RegistrantId) -> list[Notice]:
        del self.registrations[rid]
        res = self.reservation
        if res is None:
            return []
        if res.type.all_registrants:
            if not self.registrations:
                self.reservation = None
            elif res.holder == rid:
                other = next(iter(self.registrations))
                self.reservation = Reservation(other, res.type, self.registrations[other])
            return []
        if res.holder == rid:
            self.reservation = None
            if res.type.registrants_only:
                return self._others(rid, 0x2A, 0x04)
        return []

    def _own(self, initiator: str, port: int, key: int) -> RegistrantId:
        rid = self.registrant(initiator, port)
        if rid is None or self.registrations[rid] != key:
            raise Conflict
        return rid

    def reserve(self, initiator: str, port: int, key: int, rtype: int) -> None:
        """RESERVE."""
        rid = self._own(initiator, port, key)
        try:
            t = ReservationType(rtype)
        except ValueError:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, field_pointer=2) from None
        res = self.reservation
        if res is not None:
            if res.type == t and self.is_holder(initiator, port):
                return
            raise Conflict
        self.reservation = Reservation(rid, t, key)

    def release(self, initiator: str, port: int, key: int, rtype: int) -> list[Notice]:
        """RELEASE."""
        rid = self._own(initiator, port, key)
        res = self.reservation
        if res is None or not self.is_holder(initiator, port):
            return []
        if res.type != rtype:
            raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x04)
        self.reservation = None
        if res.type.registrants_only:
            return self._others(rid, 0x2A, 0x04)
        return []

    def clear(self, initiator: str, port: int, key: int) -> list[Notice]:
        """CLEAR: drop every registration and the reservation."""
        rid = self._own(initiator, port, key)
        notices = self._others(rid, 0x2A, 0x03)
        self.registrations.clear()
        self.reservation = None
        self.generation += 1
        return notices

    def preempt(
        self, initiator: str, port: int, key: int, victim_key: int, rtype: int
    ) -> list[Notice]:
        """PREEMPT (and PREEMPT AND ABORT: the simulator has no queued tasks to abort)."""
        me = self._own(initiator, port, key)
        res = self.reservation
        notices: list[Notice] = []

        def drop(k: int) -> None:
            for r in [r for r, v in self.registrations.items() if v == k and r != me]:
                del self.registrations[r]
                notices.append((r, 0x2A, 0x05))

        if res is None or (not res.type.all_registrants and res.key != victim_key):
            if victim_key == 0:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00)
            drop(victim_key)
        elif res.type.all_registrants and victim_key != 0:
            drop(victim_key)
        else:
            try:
                t = ReservationType(rtype)
            except ValueError:
                raise Check(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, field_pointer=2) from None
            if res.type.all_registrants:
                for r in [r for r in self.registrations if r != me]:
                    del self.registrations[r]
                    notices.append((r, 0x2A, 0x05))
            else:
                drop(victim_key)
            if res.type != t:
                notices += self._others(me, 0x2A, 0x03)
            self.reservation = Reservation(me, t, key)
        self.generation += 1
        return notices

    # ---- power ------------------------------------------------------------------------

    def power_loss(self) -> None:
        """Forget everything unless APTPL was set."""
        if not self.aptpl:
            self.registrations.clear()
            self.reservation = None
