"""Path checkers: one small command that says whether a path works.

The monitor runs a checker on idle, passive and failed paths; what it answers goes to
:func:`apply_check`, which asks the path group for the state change (so failures are
found with no command outstanding, and a path that comes back is reinstated).

- ``auto`` (the default): ``inquiry`` on ACTIVE paths (it leaves unit attentions for
  the application's next command); on the others ``rtpg`` where the device's handler
  reads ALUA access states, else ``tur``.
- ``tur``: TEST UNIT READY. GOOD or any device answer is UP, 02/04/0B or 0C is
  STANDBY, 02/04/0A is TRANSITIONING, a transport failure or 02/04/12 is DOWN, except
  a passing one (``FailureDetail.retryable``: a busy bus, a requeue), which is BUSY:
  the path stays as it is and the next poll asks again (one busy answer neither fails
  an active path nor reinstates a failed one).
- ``inquiry``: INQUIRY (36 bytes). Answered at all is ALIVE (INQUIRY works on standby
  ports too, so it cannot tell active from passive).
- ``rtpg``: REPORT TARGET PORT GROUPS through the device's ALUA handler (see
  :mod:`tapepath.multipath.handlers`); falls back to ``tur`` where the handler has no
  access states.
- ``iscsi-nop``: the transport's own liveness probe (an iSCSI NOP-Out) when it has a
  ``ping(timeout)`` method; otherwise ``tur``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from attrs import frozen

from tapepath.errors import TapepathError
from tapepath.multipath.path import Path, PathState
from tapepath.multipath.verdict import PathVerdict, path_verdict
from tapepath.transport.base import Response

if TYPE_CHECKING:
    from tapepath.multipath.device import MultipathDevice

__all__ = [
    "CHECKERS",
    "AutoChecker",
    "CheckResult",
    "Checker",
    "InquiryChecker",
    "IscsiNopChecker",
    "PathCheck",
    "RtpgChecker",
    "TurChecker",
    "apply_check",
    "make_checker",
]

_TUR = bytes(6)
_INQUIRY = bytes((0x12, 0, 0, 0, 36, 0))


class CheckResult(enum.Enum):
    """What a checker found."""

    UP = "up"
    """The path carries commands (it may be made ACTIVE)."""
    ALIVE = "alive"
    """The path answers, but whether it is active is not known."""
    STANDBY = "standby"
    """The port is standby/unavailable: the path is PASSIVE."""
    TRANSITIONING = "transitioning"
    """The access state is changing: leave the path as it is."""
    BUSY = "busy"
    """The transport reported a passing failure (busy, requeue): leave the path as it
    is; the next poll asks again."""
    DOWN = "down"
    """The path does not work."""


@frozen
class PathCheck:
    """One checker's finding.

    Attributes:
        result: the finding.
        message: a short account for the log (the reason of a state change).
    """

    result: CheckResult
    message: str


class Checker(Protocol):
    """Probes one path."""

    name: str

    def check(self, device: MultipathDevice, path: Path, timeout: float) -> PathCheck:
        """Probe ``path`` of ``device`` within ``timeout`` seconds; never raise."""
        ...


def _from_response(name: str, r: Response) -> PathCheck:
    v = path_verdict(r)
    if v is PathVerdict.RETRY:
        msg = r.detail.message if r.detail else ""
        return PathCheck(CheckResult.BUSY, f"{name}: passing failure, {msg}".rstrip(", "))
    if v is PathVerdict.PATH_FAILURE:
        msg = r.detail.message if r.detail else ""
        return PathCheck(CheckResult.DOWN, f"{name}: {r.outcome.value} {msg}".rstrip())
    if v in (PathVerdict.STANDBY, PathVerdict.UNAVAILABLE):
        return PathCheck(CheckResult.STANDBY, f"{name}: port {v.value}")
    if v is PathVerdict.TRANSITIONING:
        return PathCheck(CheckResult.TRANSITIONING, f"{name}: transitioning")
    if v is PathVerdict.OFFLINE:
        return PathCheck(CheckResult.DOWN, f"{name}: logical unit offline")
    return PathCheck(CheckResult.UP, f"{name}: up")


def _probe(device: MultipathDevice, path: Path, cdb: bytes, n: int, timeout: float) -> Response:
    return device.execute_on(path, cdb, data_in_len=n, timeout=timeout)


class TurChecker:
    """TEST UNIT READY."""

    name = "tur"

    def check(self, device: MultipathDevice, path: Path, timeout: float) -> PathCheck:
        """Send TEST UNIT READY and read the answer."""

        def run() -> PathCheck:
            return _from_response(self.name, _probe(device, path, _TUR, 0, timeout))

        return _guard(self.name, run)


class InquiryChecker:
    """INQUIRY: alive or down (it cannot see standby)."""

    name = "inquiry"

    def check(self, device: MultipathDevice, path: Path, timeout: float) -> PathCheck:
        """Send a standard INQUIRY."""

        def run() -> PathCheck:
            found = _from_response(self.name, _probe(device, path, _INQUIRY, 36, timeout))
            if found.result is CheckResult.UP:
                return PathCheck(CheckResult.ALIVE, f"{self.name}: answered")
            return found

        return _guard(self.name, run)


class RtpgChecker:
    """The port group's access state, read through the device's handler."""

    name = "rtpg"

    def check(self, device: MultipathDevice, path: Path, timeout: float) -> PathCheck:
        """Ask the handler; fall back to TEST UNIT READY when it cannot tell."""
        probe = getattr(device.handler, "check_path", None)
        if probe is None:
            return TurChecker().check(device, path, timeout)
        found: PathCheck = _guard(self.name, lambda: probe(device, path, timeout))
        return found


class IscsiNopChecker:
    """The transport's ping (an iSCSI NOP-Out round trip), or TEST UNIT READY without one.

    The ping is ``transport.ping(timeout)`` or ``transport.session.ping(timeout)``; it
    raises (or returns False) when the path is down. A FAILED path is logged in again
    first (``transport.reconnect(timeout)``) when the transport can.
    """

    name = "iscsi-nop"

    def check(self, device: MultipathDevice, path: Path, timeout: float) -> PathCheck:
        """Ping the transport."""
        t = path.transport
        ping = getattr(t, "ping", None)
        if ping is None:
            ping = getattr(getattr(t, "session", None), "ping", None)
        if ping is None:
            return TurChecker().check(device, path, timeout)
        reconnect = getattr(t, "reconnect", None)

        def run() -> PathCheck:
            if path.state is PathState.FAILED and reconnect is not None:
                reconnect(timeout)
            if ping(timeout) is False:
                return PathCheck(CheckResult.DOWN, f"{self.name}: no answer")
            return PathCheck(CheckResult.ALIVE, f"{self.name}: answered")

        return _guard(self.name, run)


def _guard(name: str, run: Callable[[], PathCheck]) -> PathCheck:
    try:
        return run()
    except (TapepathError, OSError, ValueError) as exc:
        return PathCheck(CheckResult.DOWN, f"{name}: {type(exc).__name__}: {exc}")


class AutoChecker:
    """INQUIRY on ACTIVE paths; on the others the ALUA handler's access-state check where
    the device has one, else TEST UNIT READY.

    An idle ACTIVE path is the one the application's next command takes: probing it
    with INQUIRY, which neither reports nor clears a unit attention, leaves a pending
    reset or power-on for that command (and recovery) to see.
    """

    name = "auto"

    def check(self, device: MultipathDevice, path: Path, timeout: float) -> PathCheck:
        """Pick the probe by the path's state (see the class doc)."""
        if path.state is PathState.ACTIVE:
            return InquiryChecker().check(device, path, timeout)
        if getattr(device.handler, "check_path", None) is not None:
            return RtpgChecker().check(device, path, timeout)
        return TurChecker().check(device, path, timeout)


CHECKERS: dict[str, Callable[[], Checker]] = {
    "auto": AutoChecker,
    "tur": TurChecker,
    "inquiry": InquiryChecker,
    "rtpg": RtpgChecker,
    "iscsi-nop": IscsiNopChecker,
}
"""Checker factories by policy name."""


def make_checker(name: str) -> Checker | None:
    """A checker by name; None for ``none``.

    Raises:
        ValueError: an unknown name.
    """
    if name == "none":
        return None
    try:
        return CHECKERS[name]()
    except KeyError:
        raise ValueError(f"unknown path checker {name!r}") from None


def apply_check(device: MultipathDevice, path: Path, found: PathCheck) -> None:
    """Turn a checker's finding into a state change through the device's group
    (TRANSITIONING and BUSY change nothing)."""
    group = device.group
    state = path.state
    res = found.result
    if state is PathState.OFFLINE or state is PathState.PROBING:
        return
    if res is CheckResult.DOWN:
        if state is not PathState.FAILED:
            group.path_failed(path, found.message)
    elif res is CheckResult.UP:
        if state is PathState.FAILED:
            group.reinstate(path, PathState.ACTIVE, found.message)
        elif state is PathState.PASSIVE:
            group.set_state(path, PathState.ACTIVE, f"{found.message} (device made it active)")
    elif res is CheckResult.ALIVE:
        if state is PathState.FAILED:
            group.reinstate(path, PathState.ACTIVE, found.message)
    elif res is CheckResult.STANDBY:
        if state is PathState.FAILED:
            group.reinstate(path, PathState.PASSIVE, found.message)
        elif state is PathState.ACTIVE:
            group.set_state(path, PathState.PASSIVE, found.message)
