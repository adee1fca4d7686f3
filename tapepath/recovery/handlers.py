"""Device handlers: what "notify" does on the new path, replaceable per vendor.

After recovery has found a path that answers, the device handler tells the device that
the path changed and brings the new I_T nexus to the state the old one had. The
:class:`GenericDeviceHandler` does it with standard commands:

1. read and clear the unit attentions of the new nexus (TEST UNIT READY until none is
   left, bounded), plus those internal commands already consumed there, and interpret
   them (29/xx power on or reset, 28/xx medium changed: the position may be lost;
   2A/03-05 reservations; 2A/06 ALUA: the access states are read again);
2. make a passive path active (a changer's standby control path) through the device's
   activation handler;
3. move the own persistent reservation: REGISTER AND IGNORE EXISTING KEY with the own
   key on the new nexus, then PREEMPT with the own key (nothing when the registration
   was ALL_TG_PT); RESERVE instead of PREEMPT when READ RESERVATION shows none held (a
   power loss without APTPL dropped it);
4. send PREVENT MEDIUM REMOVAL again when the application had prevented removal;
5. replay the MODE SELECTs that completed through the device (block length,
   compression, ...).

A vendor whose devices take a path-change notification of their own (IBM's "path
failover" notification, for example) writes a class with the same ``notify`` method,
registers it with :func:`register_device_handler` and passes its name (or an instance)
as ``TapeRecovery(device_handler=...)``. Subclass :class:`GenericDeviceHandler` and call
``super().notify(ctx)`` to extend the steps rather than replace them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from attrs import define, frozen

from tapepath.errors import DecodeError, TapepathError
from tapepath.scsi.classify import UnitAttention, classify
from tapepath.scsi.reservations import (
    PersistentReserveIn,
    PersistentReserveOut,
    PrInAction,
    PrOutAction,
    PrOutParameters,
    ReadReservation,
)
from tapepath.transport.base import Response

if TYPE_CHECKING:
    from tapepath.multipath.device import MultipathDevice
    from tapepath.multipath.path import Path
    from tapepath.recovery.tracking import DeviceState

__all__ = [
    "DeviceHandler",
    "GenericDeviceHandler",
    "NotifyContext",
    "NotifyPathLost",
    "NotifyRefusedError",
    "NotifyReport",
    "device_handler",
    "register_device_handler",
    "send_on",
    "send_past_ua",
]

_TUR = bytes(6)
_MAX_UNIT_ATTENTIONS = 16
_POSITION_LOST = frozenset({UnitAttention.POWER_ON_RESET, UnitAttention.MEDIUM_CHANGED})
_RES_LOST = frozenset(
    {
        UnitAttention.RESERVATIONS_PREEMPTED,
        UnitAttention.RESERVATIONS_RELEASED,
        UnitAttention.REGISTRATIONS_PREEMPTED,
    }
)


class NotifyPathLost(Exception):
    """The new path failed during notify (recovery probes the next one)."""


class NotifyRefusedError(TapepathError):
    """The device refused a notify step; the recovery fails with this error.

    Attributes:
        step: which step (``"reservation"``, ``"prevent"``, ``"mode"``, ``"activate"``).
        response: the device's answer, when there was one.
    """

    def __init__(self, message: str, *, step: str, response: Response | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.response = response


@define
class NotifyContext:
    """What a device handler gets.

    Attributes:
        device: the multipath device.
        path: the new path (it answered the probe).
        old_path: the path that failed.
        state: the settings tracked from the command stream.
        timeout: seconds for each command the handler sends.
    """

    device: MultipathDevice
    path: Path
    old_path: Path
    state: DeviceState
    timeout: float

    def send(self, cdb: bytes, *, data_out: bytes = b"", data_in_len: int = 0) -> Response:
        """Send one command on the new path; raise :class:`NotifyPathLost` if it fails."""
        return send_on(
            self.device,
            self.path,
            cdb,
            data_out=data_out,
            data_in_len=data_in_len,
            timeout=self.timeout,
        )

    def send_past_ua(self, cdb: bytes, *, data_out: bytes = b"", data_in_len: int = 0) -> Response:
        """Like :meth:`send`, again (bounded) while the answer is a unit attention."""
        return send_past_ua(
            self.device,
            self.path,
            cdb,
            data_out=data_out,
            data_in_len=data_in_len,
            timeout=self.timeout,
        )


def send_on(
    device: MultipathDevice,
    path: Path,
    cdb: bytes,
    *,
    data_out: bytes = b"",
    data_in_len: int = 0,
    timeout: float = 30.0,
) -> Response:
    """Send one command on ``path`` exactly; raise :class:`NotifyPathLost` if the path
    fails (the device's answer, whatever it is, is returned)."""
    r = device.execute_on(path, cdb, data_out=data_out, data_in_len=data_in_len, timeout=timeout)
    if r.path_failed:
        detail = r.detail.message if r.detail is not None else r.outcome.value
        raise NotifyPathLost(f"{path.url}: {detail}")
    return r


def send_past_ua(
    device: MultipathDevice,
    path: Path,
    cdb: bytes,
    *,
    data_out: bytes = b"",
    data_in_len: int = 0,
    timeout: float = 30.0,
) -> Response:
    """:func:`send_on`, again while the answer is a unit attention (16 tries at most)."""
    for _ in range(_MAX_UNIT_ATTENTIONS):
        r = send_on(device, path, cdb, data_out=data_out, data_in_len=data_in_len, timeout=timeout)
        if not _is_ua(r):
            break
    return r


@frozen
class NotifyReport:
    """What notify found and did.

    Attributes:
        unit_attentions: the kinds of unit attention the new nexus reported.
        position_lost: a power on, reset or medium change was reported (the tape
            position may be lost; synchronise checks).
        activated: a passive path was made active.
        reservation_moved: the own reservation was moved to the new nexus.
        prevent_restored: PREVENT MEDIUM REMOVAL was sent again.
        modes_restored: how many MODE SELECTs were replayed.
    """

    unit_attentions: tuple[UnitAttention, ...] = ()
    position_lost: bool = False
    activated: bool = False
    reservation_moved: bool = False
    prevent_restored: bool = False
    modes_restored: int = 0


class DeviceHandler(Protocol):
    """Brings a new path to the state the failed one had (the notify step)."""

    name: str

    def notify(self, ctx: NotifyContext) -> NotifyReport:
        """Notify the device of the path change on ``ctx.path``.

        Raises:
            NotifyPathLost: the new path failed (recovery probes the next one).
            NotifyRefusedError: the device refused (recovery fails with it).
        """
        ...


def _is_ua(r: Response) -> bool:
    if not r.check_condition or len(r.sense) < 3:
        return False
    code = r.sense[0] & 0x7F
    key = r.sense[2] & 0x0F if code in (0x70, 0x71) else r.sense[1] & 0x0F
    return key == 0x06


def _ua_kinds(senses: list[bytes]) -> list[UnitAttention]:
    kinds = []
    for s in senses:
        try:
            c = classify(0x02, s)
        except ValueError:
            continue
        if c.unit_attention is not None:
            kinds.append(c.unit_attention)
    return kinds


def _standby(r: Response) -> bool:
    """NOT READY 04/0B or 04/0C: the path is in a standby / unavailable ALUA state."""
    s = r.sense_data if r.check_condition else None
    return s is not None and s.sense_key == 0x02 and s.asc == 0x04 and s.ascq in (0x0B, 0x0C)


class GenericDeviceHandler:
    """The standard notify steps (see the module doc); subclass to extend."""

    name = "generic"

    def notify(self, ctx: NotifyContext) -> NotifyReport:
        """Clear and read unit attentions, activate, move the reservation, restore
        PREVENT and the mode settings."""
        kinds, last = self.clear_unit_attentions(ctx)
        if UnitAttention.ALUA_STATE_CHANGED in kinds:
            ctx.device.handler.refresh(ctx.device)
        activated = self.activate(ctx, last)
        moved = self.move_reservation(ctx, kinds)
        prevent = self.restore_prevent(ctx)
        modes = self.restore_modes(ctx)
        return NotifyReport(
            unit_attentions=tuple(kinds),
            position_lost=any(k in _POSITION_LOST for k in kinds),
            activated=activated,
            reservation_moved=moved,
            prevent_restored=prevent,
            modes_restored=modes,
        )

    def clear_unit_attentions(self, ctx: NotifyContext) -> tuple[list[UnitAttention], Response]:
        """TEST UNIT READY until no unit attention is left (bounded); return their kinds
        (with those internal commands consumed on the path before) and the last answer."""
        senses = list(ctx.path.take_unit_attentions())
        r = ctx.send(_TUR)
        for _ in range(_MAX_UNIT_ATTENTIONS):
            if not _is_ua(r):
                break
            r = ctx.send(_TUR)
        senses += ctx.path.take_unit_attentions()  # execute_on kept what it met
        return _ua_kinds(senses), r

    def activate(self, ctx: NotifyContext, last: Response) -> bool:
        """Make the new path active when it is passive; return whether it was activated."""
        from tapepath.multipath.path import PathState  # noqa: PLC0415

        group = ctx.device.group
        if _standby(last) and ctx.path.state is PathState.ACTIVE:
            group.set_state(ctx.path, PathState.PASSIVE, "recovery: device answered standby")
        if ctx.path.state is not PathState.PASSIVE:
            return False
        if not ctx.device.activate(
            ctx.path, "recovery: the active path failed", timeout=ctx.timeout
        ):
            raise NotifyRefusedError(
                f"{ctx.device.name}: could not activate {ctx.path.url}", step="activate"
            )
        return True

    def move_reservation(self, ctx: NotifyContext, kinds: list[UnitAttention]) -> bool:
        """REGISTER AND IGNORE EXISTING KEY, then PREEMPT, with the own key."""
        res = ctx.state.reservation
        if res.key is None or res.all_tg_pt:
            return False
        if any(k in _RES_LOST for k in kinds):
            return False  # another initiator acted on it: not ours to take back
        params = PrOutParameters(service_action_reservation_key=res.key)
        cdb, data = PersistentReserveOut.for_parameters(
            PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY, params
        )
        r = ctx.send_past_ua(cdb.to_bytes(), data_out=data)
        if not r.ok:
            raise NotifyRefusedError(
                f"{ctx.device.name}: REGISTER AND IGNORE EXISTING KEY refused on "
                f"{ctx.path.url} (status {r.status:02X}h)",
                step="reservation",
                response=r,
            )
        if res.pr_type is None:
            return True
        if self.reservation_gone(ctx):  # a power loss dropped it: take it again
            action, params = PrOutAction.RESERVE, PrOutParameters(reservation_key=res.key)
        else:  # held through the old nexus: move it here
            action = PrOutAction.PREEMPT
            params = PrOutParameters(
                reservation_key=res.key, service_action_reservation_key=res.key
            )
        cdb, data = PersistentReserveOut.for_parameters(action, params, pr_type=res.pr_type)
        r = ctx.send_past_ua(cdb.to_bytes(), data_out=data)
        if not r.ok:
            raise NotifyRefusedError(
                f"{ctx.device.name}: {action.name} with the own key refused on {ctx.path.url} "
                f"(status {r.status:02X}h)",
                step="reservation",
                response=r,
            )
        return True

    def reservation_gone(self, ctx: NotifyContext) -> bool:
        """READ RESERVATION: True when the device holds no reservation at all (a power
        loss without APTPL dropped it; PREEMPT would not bring it back). False when one
        is held or the device does not say."""
        cdb = PersistentReserveIn(PrInAction.READ_RESERVATION, 24)
        r = ctx.send_past_ua(cdb.to_bytes(), data_in_len=24)
        if not r.ok:
            return False
        try:
            return ReadReservation.from_bytes(r.data).reservation_key is None
        except (DecodeError, ValueError):
            return False

    def restore_prevent(self, ctx: NotifyContext) -> bool:
        """Send PREVENT MEDIUM REMOVAL again if the application had sent it."""
        if not ctx.state.prevent:
            return False
        r = ctx.send_past_ua(bytes((0x1E, 0, 0, 0, 1, 0)))
        if not r.ok:
            raise NotifyRefusedError(
                f"{ctx.device.name}: PREVENT MEDIUM REMOVAL refused on {ctx.path.url}",
                step="prevent",
                response=r,
            )
        return True

    def restore_modes(self, ctx: NotifyContext) -> int:
        """Replay the MODE SELECTs that completed through the device; return how many."""
        n = 0
        for cdb, data in ctx.state.mode_selects:
            r = ctx.send_past_ua(cdb, data_out=data)
            if not r.ok:
                raise NotifyRefusedError(
                    f"{ctx.device.name}: MODE SELECT refused on {ctx.path.url}",
                    step="mode",
                    response=r,
                )
            n += 1
        return n


_REGISTRY: dict[str, Callable[[], DeviceHandler]] = {"generic": GenericDeviceHandler}


def register_device_handler(name: str, factory: Callable[[], DeviceHandler]) -> None:
    """Make ``factory`` available as ``device_handler=name``.

    Raises:
        ValueError: the name is taken.
    """
    if name in _REGISTRY:
        raise ValueError(f"device handler {name!r} is already registered")
    _REGISTRY[name] = factory


def device_handler(spec: DeviceHandler | str | None) -> DeviceHandler:
    """The handler for ``spec``: an instance as is, a registered name, or None (generic).

    Raises:
        KeyError: no handler has that name.
    """
    if spec is None:
        return GenericDeviceHandler()
    if isinstance(spec, str):
        try:
            return _REGISTRY[spec]()
        except KeyError:
            raise KeyError(
                f"no device handler {spec!r} (known: {', '.join(sorted(_REGISTRY))})"
            ) from None
    return spec
