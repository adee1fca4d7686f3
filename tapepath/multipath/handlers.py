"""Activation handlers: how a passive path is made active (Linux scsi_dh's idea).

A handler knows one family of devices' passive-path convention:

- :class:`NullHandler`: no way to activate; a passive path comes back only when the
  device makes it active itself (the device or the monitor sees it answer);
- :class:`AluaHandler`: ALUA (SPC-4 asymmetric access). It learns each path's relative
  port and target port group from VPD 83h, reads the groups' states with REPORT TARGET
  PORT GROUPS, sets path states and priorities from them (multipath-tools' ALUA
  priorities: active/optimized 50, active/non-optimized 10, LBA-dependent 5, standby 1,
  else 0; +80 for the preferred group), and for explicit ALUA activates a group with
  SET TARGET PORT GROUPS, then waits out the transition;
- :class:`PassivePathHandler`: the passive control-path convention of tape libraries
  without ALUA: a passive path answers 02/04/0B; activation is an optional vendor
  command (START STOP UNIT in the manner of Linux's hp_sw by default).

Vendors add their own by implementing :class:`ActivationHandler` and registering a
factory with :func:`register_handler`, matched on INQUIRY vendor/product like scsi_dh's
device tables; :func:`handler_for` picks one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import attrs
import structlog

from tapepath.errors import DecodeError
from tapepath.multipath.checkers import CheckResult, PathCheck
from tapepath.multipath.identify import PathInfo, identify
from tapepath.multipath.path import PathState
from tapepath.multipath.verdict import PathVerdict, path_verdict
from tapepath.scsi.alua import (
    AccessState,
    ReportTargetPortGroups,
    SetTargetPortGroups,
    StpgDescriptor,
    StpgParameters,
    TargetPortGroup,
    TargetPortGroups,
)
from tapepath.transport.base import Response

if TYPE_CHECKING:
    from tapepath.multipath.device import MultipathDevice
    from tapepath.multipath.path import Path

__all__ = [
    "ALUA_PRIORITY",
    "ActivationHandler",
    "AluaHandler",
    "NullHandler",
    "PassivePathHandler",
    "handler_for",
    "register_handler",
]

log = structlog.get_logger("tapepath.multipath")

ALUA_PRIORITY: dict[int, int] = {
    AccessState.ACTIVE_OPTIMIZED: 50,
    AccessState.ACTIVE_NON_OPTIMIZED: 10,
    AccessState.LBA_DEPENDENT: 5,
    AccessState.STANDBY: 1,
}
"""multipath-tools' priority by access state (others 0); +80 for the preferred group."""
PREFERRED_BONUS = 80

_ACTIVE_STATES = frozenset(
    {AccessState.ACTIVE_OPTIMIZED, AccessState.ACTIVE_NON_OPTIMIZED, AccessState.LBA_DEPENDENT}
)
_PASSIVE_STATES = frozenset({AccessState.STANDBY, AccessState.UNAVAILABLE})


def _send(
    device: MultipathDevice,
    path: Path,
    cdb: bytes,
    *,
    data_out: bytes = b"",
    data_in_len: int = 0,
    timeout: float,
) -> Response:
    """execute_on, repeated past unit attentions (which execute_on keeps on the path):
    a command refused for a unit attention did not run."""
    r = device.execute_on(path, cdb, data_out=data_out, data_in_len=data_in_len, timeout=timeout)
    for _ in range(8):
        if not _is_ua(r):
            break
        r = device.execute_on(
            path, cdb, data_out=data_out, data_in_len=data_in_len, timeout=timeout
        )
    return r


def _is_ua(r: Response) -> bool:
    s = r.sense
    if r.status != 0x02 or len(s) < 3:
        return False
    key = s[2] & 0x0F if s[0] & 0x7F in (0x70, 0x71) else s[1] & 0x0F
    return key == 0x06


def _state_name(state: int) -> str:
    try:
        return AccessState(state).name.lower()
    except ValueError:
        return f"state {state:X}h"


class ActivationHandler(Protocol):
    """What a device-family handler does for a :class:`MultipathDevice`.

    Attributes:
        name: the handler's name, for logs and configuration.
    """

    name: str

    def attach(self, device: MultipathDevice) -> None:
        """Learn the initial path states (may send commands through ``device.execute_on``)."""
        ...

    def activate(self, device: MultipathDevice, path: Path) -> bool:
        """Make ``path`` (PASSIVE) active; True on success. Called with no active path
        left, or when asked for.

        A handler may also take a keyword argument ``timeout`` (seconds, or None for no
        bound): the time the waiting command has left, which its commands and waits
        should keep within. The device passes it to handlers that accept it.
        """
        ...

    def refresh(self, device: MultipathDevice) -> None:
        """Re-read the access states after the device said they changed (06/2A/06)."""
        ...


class NullHandler:
    """No activation method: passive paths wait for the device to activate them."""

    name = "none"

    def attach(self, device: MultipathDevice) -> None:
        """Nothing to learn."""

    def activate(
        self, device: MultipathDevice, path: Path, *, timeout: float | None = None
    ) -> bool:
        """Cannot activate: always False."""
        return False

    def refresh(self, device: MultipathDevice) -> None:
        """Nothing to re-read."""


class AluaHandler:
    """Asymmetric logical unit access, implicit and explicit.

    Args:
        timeout: the deadline of each REPORT/SET TARGET PORT GROUPS command.
        explicit: use SET TARGET PORT GROUPS (None: when INQUIRY's TPGS says explicit).
        activate_state: the state asked for by SET TARGET PORT GROUPS.
    """

    name = "alua"

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        explicit: bool | None = None,
        activate_state: AccessState = AccessState.ACTIVE_OPTIMIZED,
    ) -> None:
        self.timeout = timeout
        self.explicit = explicit
        self.activate_state = activate_state
        self.tpgs = 0
        self._base: dict[int, int] = {}
        self._lock = threading.Lock()

    # -- attach ----------------------------------------------------------------------

    def attach(self, device: MultipathDevice) -> None:
        """Read each path's port identity, then the groups' states."""
        for path in device.group.paths:
            self._learn_port(device, path)
        self.refresh(device)

    def _learn_port(self, device: MultipathDevice, path: Path) -> PathInfo | None:
        def send(cdb: bytes, n: int) -> Response:
            return device.execute_on(path, cdb, data_in_len=n, timeout=self.timeout)

        try:
            info = identify(send, serial_fallback=False)
        except DecodeError as exc:
            log.info("alua_identify_failed", device=device.name, path=path.url, error=str(exc))
            return None
        self.tpgs = self.tpgs or info.tpgs
        with self._lock:
            self._base.setdefault(path.index, path.identity.priority)

        device.group.set_identity(
            path,
            attrs.evolve(
                path.identity,
                designator=path.identity.designator or info.key,
                relative_port=info.relative_port,
                port_group=info.port_group,
            ),
        )
        return info

    # -- states ----------------------------------------------------------------------

    def report(self, device: MultipathDevice, path: Path) -> TargetPortGroups | None:
        """REPORT TARGET PORT GROUPS through ``path``; None when it failed."""
        cmd = ReportTargetPortGroups(allocation_length=4096).to_bytes()
        r = _send(device, path, cmd, data_in_len=4096, timeout=self.timeout)
        if not r.ok:
            return None
        try:
            return TargetPortGroups.from_bytes(r.data)
        except DecodeError as exc:
            log.warning("alua_rtpg_bad_data", device=device.name, path=path.url, error=str(exc))
            return None

    def refresh(self, device: MultipathDevice) -> None:
        """Read the groups through the first path that answers and apply the states."""
        for path in device.group.paths:
            if path.state in (PathState.FAILED, PathState.OFFLINE):
                continue
            tpgs = self.report(device, path)
            if tpgs is not None:
                self.apply(device, tpgs)
                return

    def apply(self, device: MultipathDevice, tpgs: TargetPortGroups) -> None:
        """Set each path's state and priority from its group's access state."""
        group = device.group
        for path in group.paths:
            g = self._group_of(path, tpgs)
            if g is None:
                continue
            state = g.state
            base = self._base.get(path.index, path.identity.priority)
            prio = base + ALUA_PRIORITY.get(state, 0) + (PREFERRED_BONUS if g.pref else 0)
            if prio != path.identity.priority:
                group.set_identity(path, attrs.evolve(path.identity, priority=prio))
            why = f"alua: port group {g.tpg_id} is {_state_name(state)}"
            if path.state in (PathState.FAILED, PathState.OFFLINE, PathState.PROBING):
                continue
            if state in _ACTIVE_STATES:
                group.set_state(path, PathState.ACTIVE, why)
            elif state in _PASSIVE_STATES:
                group.set_state(path, PathState.PASSIVE, why)
            elif state is AccessState.OFFLINE:
                group.path_failed(path, why)

    @staticmethod
    def _group_of(path: Path, tpgs: TargetPortGroups) -> TargetPortGroup | None:
        ident = path.identity
        if ident.relative_port is not None:
            g = tpgs.group_of_port(ident.relative_port)
            if g is not None:
                return g
        if ident.port_group is not None:
            for g in tpgs.groups:
                if g.tpg_id == ident.port_group:
                    return g
        return None

    # -- activation ------------------------------------------------------------------

    def activate(
        self, device: MultipathDevice, path: Path, *, timeout: float | None = None
    ) -> bool:
        """SET TARGET PORT GROUPS for the path's group (explicit ALUA), then wait out the
        transition (by the device's transition policy, and no longer than ``timeout``
        seconds when given); with implicit ALUA only, re-read the states."""
        deadline = None if timeout is None else device.clock() + timeout
        each = self.timeout if timeout is None else max(0.001, min(self.timeout, timeout))
        explicit = self.explicit if self.explicit is not None else bool(self.tpgs & 2)
        if explicit and path.identity.port_group is not None:
            params = StpgParameters(
                (StpgDescriptor(path.identity.port_group, self.activate_state),)
            )
            cdb, data = SetTargetPortGroups.for_parameters(params)
            r = _send(device, path, cdb.to_bytes(), data_out=data, timeout=each)
            log.info(
                "alua_activate",
                device=device.name,
                path=path.url,
                port_group=path.identity.port_group,
                ok=r.ok,
                status=r.status,
            )
            if r.path_failed:
                return False
        return self._wait_active(device, path, deadline)

    def _wait_active(self, device: MultipathDevice, path: Path, deadline: float | None) -> bool:
        retry = device.policy.transition
        while True:
            tpgs = self.report(device, path)
            if tpgs is None:
                return False
            g = self._group_of(path, tpgs)
            state = getattr(g, "state", None)
            if state in _ACTIVE_STATES:
                self.apply(device, tpgs)
                return True
            if state != AccessState.TRANSITIONING or retry.exhausted:
                self.apply(device, tpgs)
                return False
            delay = retry.delay()
            if deadline is not None and device.clock() + delay > deadline:
                self.apply(device, tpgs)
                log.info(
                    "alua_transition_wait_cut",
                    device=device.name,
                    path=path.url,
                    attempts=retry.history,
                )
                return False
            device.wait(delay)
            retry = retry.increment()

    def check_path(self, device: MultipathDevice, path: Path, timeout: float) -> PathCheck:
        """The ``rtpg`` checker: the access state of the path's group, read through it."""
        cmd = ReportTargetPortGroups(allocation_length=4096).to_bytes()
        r = _send(device, path, cmd, data_in_len=4096, timeout=timeout)
        if r.path_failed:
            if path_verdict(r) is PathVerdict.RETRY:  # busy, requeue: ask at the next poll
                return PathCheck(CheckResult.BUSY, f"rtpg: {r.outcome.value} (passing)")
            return PathCheck(CheckResult.DOWN, f"rtpg: {r.outcome.value}")
        if not r.ok:
            v = path_verdict(r)
            if v is PathVerdict.TRANSITIONING:
                return PathCheck(CheckResult.TRANSITIONING, "rtpg: transitioning")
            return PathCheck(CheckResult.ALIVE, f"rtpg: refused (status {r.status:02X}h)")
        try:
            g = self._group_of(path, TargetPortGroups.from_bytes(r.data))
        except DecodeError:
            return PathCheck(CheckResult.ALIVE, "rtpg: unreadable data")
        state = getattr(g, "state", None)
        if state in _ACTIVE_STATES:
            return PathCheck(CheckResult.UP, "rtpg: active")
        if state in _PASSIVE_STATES:
            return PathCheck(CheckResult.STANDBY, "rtpg: standby/unavailable")
        if state == AccessState.TRANSITIONING:
            return PathCheck(CheckResult.TRANSITIONING, "rtpg: transitioning")
        if state == AccessState.OFFLINE:
            return PathCheck(CheckResult.DOWN, "rtpg: offline")
        return PathCheck(CheckResult.ALIVE, "rtpg: port not in any group")


class PassivePathHandler:
    """Passive control paths without ALUA: 02/04/0B marks them; an optional command
    activates one.

    Args:
        activation_cdb: the CDB that makes a passive path active (default: START STOP
            UNIT with START=1, as Linux's hp_sw does); None for no activation command
            (wait for the device to switch by itself).
        timeout: the deadline of the activation command.
    """

    name = "passive"

    def __init__(
        self,
        activation_cdb: bytes | None = bytes((0x1B, 0, 0, 0, 1, 0)),
        *,
        timeout: float = 30.0,
    ) -> None:
        self.activation_cdb = activation_cdb
        self.timeout = timeout

    def attach(self, device: MultipathDevice) -> None:
        """Nothing is sent at attach: a passive path shows itself with 02/04/0B."""

    def activate(
        self, device: MultipathDevice, path: Path, *, timeout: float | None = None
    ) -> bool:
        """Send the activation command, then TEST UNIT READY: active when not 04/0B.
        Each command waits at most ``timeout`` seconds when given."""
        each = self.timeout if timeout is None else max(0.001, min(self.timeout, timeout))
        if self.activation_cdb is not None:
            r = _send(device, path, self.activation_cdb, timeout=each)
            if r.path_failed:
                return False
        r = _send(device, path, bytes(6), timeout=each)
        return path_verdict(r) is PathVerdict.PASS

    def refresh(self, device: MultipathDevice) -> None:
        """Nothing to re-read."""


HandlerFactory = Callable[[], ActivationHandler]

_registry: list[tuple[str, str, HandlerFactory]] = []
_by_name: dict[str, HandlerFactory] = {
    "none": NullHandler,
    "alua": AluaHandler,
    "passive": PassivePathHandler,
}


def register_handler(
    name: str, factory: HandlerFactory, *, vendor: str = "", product: str = ""
) -> None:
    """Register a handler factory by name, and optionally for a vendor/product prefix.

    Args:
        name: the name configurations use (``handler = "name"``).
        factory: makes a new handler per device.
        vendor: INQUIRY vendor the handler claims ("" claims none by vendor).
        product: INQUIRY product prefix within that vendor ("" for every product).
    """
    _by_name[name] = factory
    if vendor:
        _registry.append((vendor.strip(), product.strip(), factory))


def handler_for(
    name: str | None = None, *, vendor: str = "", product: str = "", tpgs: int = 0
) -> ActivationHandler:
    """A new handler: by ``name`` when given, else the first registered for the
    vendor/product, else ALUA when TPGS says the device supports it, else none.

    Raises:
        ValueError: an unknown name.
    """
    if name is not None:
        try:
            return _by_name[name]()
        except KeyError:
            known = ", ".join(sorted(_by_name))
            raise ValueError(f"unknown activation handler {name!r} (known: {known})") from None
    for v, p, factory in _registry:
        if vendor.strip() == v and product.strip().startswith(p):
            return factory()
    if tpgs:
        return AluaHandler()
    return NullHandler()
