"""The recovery driver: a :class:`~tapepath.multipath.hooks.RecoveryHook` that runs the
state machine of :mod:`tapepath.recovery.machine` and does its I/O.

:class:`RecoveryDriver` carries out the steps every device shares: verify (probe the
other paths in priority order with a short timeout: an iSCSI NOP where the transport
has ``ping()``, else TEST UNIT READY), notify (the device handler of
:mod:`tapepath.recovery.handlers`) and resend (hand the command back to the device,
which sends it on the new path before the commands that queued meanwhile). The
synchronise step is the subclass's: :class:`~tapepath.recovery.tape.TapeRecovery`
compares the tape position, :class:`~tapepath.recovery.changer.ChangerRecovery` the
element status.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
from attrs import Factory, define, frozen

from tapepath.errors import NoPathError, TapepathError
from tapepath.multipath.hooks import (
    SAFE_TO_REPEAT,
    CommandInDoubtError,
    Complete,
    Decision,
    Fail,
    FailedCommand,
    Resend,
)
from tapepath.recovery.handlers import (
    DeviceHandler,
    NotifyContext,
    NotifyPathLost,
    NotifyRefusedError,
    NotifyReport,
    send_past_ua,
)
from tapepath.recovery.machine import Action, Event, RecoveryMachine, State
from tapepath.recovery.tracking import DeviceState, power_on_reset_sense
from tapepath.transport.base import Outcome, Response

if TYPE_CHECKING:
    from tapepath.multipath.device import MultipathDevice
    from tapepath.multipath.path import Path

__all__ = ["RecoveryDriver", "RecoveryStats", "command_name"]

log = structlog.get_logger("tapepath.recovery")

_TUR = bytes(6)

_NAMES = {
    0x00: "TEST UNIT READY",
    0x01: "REWIND",
    0x03: "REQUEST SENSE",
    0x05: "READ BLOCK LIMITS",
    0x08: "READ(6)",
    0x0A: "WRITE(6)",
    0x10: "WRITE FILEMARKS(6)",
    0x11: "SPACE(6)",
    0x12: "INQUIRY",
    0x15: "MODE SELECT(6)",
    0x19: "ERASE(6)",
    0x1A: "MODE SENSE(6)",
    0x1B: "LOAD UNLOAD",
    0x1E: "PREVENT ALLOW MEDIUM REMOVAL",
    0x2B: "LOCATE(10)",
    0x34: "READ POSITION",
    0x4D: "LOG SENSE",
    0x55: "MODE SELECT(10)",
    0x5A: "MODE SENSE(10)",
    0x5E: "PERSISTENT RESERVE IN",
    0x5F: "PERSISTENT RESERVE OUT",
    0x91: "SPACE(16)",
    0x92: "LOCATE(16)",
    0xA5: "MOVE MEDIUM",
    0xA6: "EXCHANGE MEDIUM",
    0xB8: "READ ELEMENT STATUS",
}

REPEATABLE: frozenset[int] = SAFE_TO_REPEAT | frozenset(
    {
        0x03,  # REQUEST SENSE
        0x15,  # MODE SELECT(6): sets the same values again
        0x1E,  # PREVENT ALLOW MEDIUM REMOVAL
        0x55,  # MODE SELECT(10)
        0xA3,  # MAINTENANCE IN
    }
)
"""Opcodes recovery resends without looking at the device state."""


def command_name(cdb: bytes) -> str:
    """``"WRITE(6) 0Ah"``: a command's name and opcode, for logs and messages."""
    if not cdb:
        return "empty CDB"
    op = cdb[0]
    return f"{_NAMES.get(op, 'command')} {op:02X}h"


@frozen
class RecoveryStats:
    """Counts since the hook was made.

    Attributes:
        recoveries: path failures handled.
        completed: commands completed without resending (their effect was there).
        resent: commands handed back to be resent (or finished from the transport).
        ambiguous: recoveries that raised an ambiguity error.
        failed: recoveries that failed otherwise (no path left, notify refused, ...).
        switches: path switches without a failed command (notify on the new path).
        resyncs: nexus restorations after a power on or reset reported on the path in
            use (notify on the same path).
    """

    recoveries: int = 0
    completed: int = 0
    resent: int = 0
    ambiguous: int = 0
    failed: int = 0
    switches: int = 0
    resyncs: int = 0


@define
class Run:
    """One recovery in progress (what the synchronise step works with).

    Attributes:
        device: the device.
        failed: the command whose path failed.
        machine: the state machine.
        path: the path in use (the new one, once a probe answered).
        report: what notify found.
        response: the response to complete the command with (EFFECT_PRESENT, FINISH_MOVE).
        error: the error to fail with (STATE_AMBIGUOUS, RESEND_FAILED).
        relocated: LOCATE back was done.
        timeout: seconds for each command recovery sends.
        fenced: the failed path was fenced (or needed no fence) before the state read.
    """

    device: MultipathDevice
    failed: FailedCommand
    machine: RecoveryMachine
    path: Path
    report: NotifyReport = Factory(NotifyReport)
    response: Response | None = None
    error: Exception | None = None
    relocated: bool = False
    timeout: float = 30.0
    fenced: bool = False

    def send(
        self,
        cdb: bytes,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float | None = None,
    ) -> Response:
        """Send on the recovery path, past unit attentions; raise NotifyPathLost if the
        path fails."""
        return send_past_ua(
            self.device,
            self.path,
            cdb,
            data_out=data_out,
            data_in_len=data_in_len,
            timeout=timeout or self.timeout,
        )


class RecoveryDriver:
    """The hook base: verify, notify, (subclass) synchronise, resend.

    Args:
        device_handler: the notify step: a :class:`DeviceHandler`, a registered name, or
            None for the generic one.
        probe_timeout: seconds a probed path has to answer.
        command_timeout: seconds for each command recovery sends (LOCATE back takes the
            failed command's own timeout when that is longer).
        max_attempts: path failures of one command before recovery gives up.
        clock: the monotonic clock for the elapsed times in the log.
    """

    state: DeviceState
    safe: frozenset[int] = REPEATABLE
    """Opcodes that do no harm when run twice: recovery resends them without a state
    check, and the device may retry them on the same path after a passing transport
    failure (:func:`tapepath.multipath.trouble.resent_freely`)."""

    def __init__(
        self,
        *,
        device_handler: DeviceHandler | str | None = None,
        probe_timeout: float = 2.0,
        command_timeout: float = 30.0,
        max_attempts: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from tapepath.recovery.handlers import device_handler as _lookup  # noqa: PLC0415

        self.device_handler: DeviceHandler = _lookup(device_handler)
        self.probe_timeout = probe_timeout
        self.command_timeout = command_timeout
        self.max_attempts = max_attempts
        self.clock = clock
        self.device: MultipathDevice | None = None
        self._lock = threading.Lock()
        self._stats = RecoveryStats()

    # -- attachment and counts ---------------------------------------------------------

    def attach(self, device: MultipathDevice) -> None:
        """Observe ``device``'s command stream (called by MultipathDevice).

        Raises:
            ValueError: already attached to another device.
        """
        if self.device is not None and self.device is not device:
            raise ValueError(f"{type(self).__name__} is already attached to {self.device.name}")
        if self.device is None:
            self.device = device
            device.add_observer(self.state.observe)
            self.state.on_reset = device.request_resync

    @property
    def stats(self) -> RecoveryStats:
        """The counts so far."""
        return self._stats

    def _count(self, **add: int) -> None:
        with self._lock:
            s = self._stats
            self._stats = RecoveryStats(
                recoveries=s.recoveries + add.get("recoveries", 0),
                completed=s.completed + add.get("completed", 0),
                resent=s.resent + add.get("resent", 0),
                ambiguous=s.ambiguous + add.get("ambiguous", 0),
                failed=s.failed + add.get("failed", 0),
                switches=s.switches + add.get("switches", 0),
                resyncs=s.resyncs + add.get("resyncs", 0),
            )

    # -- the hook ----------------------------------------------------------------------

    def on_path_failure(self, device: MultipathDevice, failed: FailedCommand) -> Decision:
        """Run one recovery for ``failed`` (the device holds other commands meanwhile)."""
        if self.device is None:
            self.attach(device)
        self._count(recoveries=1)
        m = RecoveryMachine(
            device.name, failed.path.url, [command_name(failed.cdb)], clock=self.clock
        )
        run = Run(device, failed, m, failed.path, timeout=self._bounded(failed.timeout))
        try:
            return self._drive(run)
        except Exception as exc:
            if not m.state.final:
                m.handle(Event.ABORTED, error=repr(exc))
            self._count(failed=1)
            self.after_failure(run, exc)
            return Fail(exc, fail_waiting=True)

    def _bounded(self, caller_timeout: float | None) -> float:
        """Seconds for each command recovery sends on behalf of a caller's command: its
        own timeout, at least the probe timeout, at most ``command_timeout``."""
        if caller_timeout is None:
            return self.command_timeout
        return min(self.command_timeout, max(caller_timeout, self.probe_timeout))

    def on_path_switch(
        self, device: MultipathDevice, old: Path, new: Path, *, timeout: float | None = None
    ) -> Path:
        """The device moves from ``old`` to ``new`` with no command failed (the monitor
        failed ``old``, or a failback): notify ``new`` and check the state before the
        next command goes there. Returns the path to use. ``timeout``: the waiting
        command's timeout, which bounds each command the switch sends.

        Raises:
            NotifyRefusedError, PositionAmbiguousError, NoPathError: the path cannot be
                brought up to date; the caller's command is not sent.
        """
        if self.device is None:
            self.attach(device)
        self._count(switches=1)
        return self._switch(device, old, new, timeout)

    def before_command(
        self, device: MultipathDevice, path: Path, cdb: bytes, *, timeout: float | None = None
    ) -> tuple[Path, bool]:
        """Called by the device before ``cdb`` goes on ``path`` once the hook asked for
        it (``device.request_resync()``: a command's answer reported a power on or
        reset, or an internal command met a unit attention there).

        A reset returns the settings of the nexus to the device's defaults: when the
        application had set any (PREVENT, MODE SELECT, a persistent reservation), notify
        runs on the same path first, as after a failover. Then :meth:`check_command`
        settles what else the command depends on (the tape position). ``timeout``: the
        waiting command's timeout, which bounds each command the notify sends.

        Returns:
            The path to send on, and whether to be called again before the next command.

        Raises:
            NotifyRefusedError, PositionAmbiguousError, NoPathError: the state cannot be
                restored; ``cdb`` is not sent.
        """
        if self.device is None:
            self.attach(device)
        if path.unit_attentions:  # an internal command met them: a reset among them?
            kept = path.take_unit_attentions()
            others = [s for s in kept if not power_on_reset_sense(s)]
            path.unit_attentions.extend(others)  # left for the notify of a recovery
            if len(others) != len(kept):
                self.state.reset_seen()
        if self.state.take_nexus_reset() and self.state.has_settings:
            self._count(resyncs=1)
            path = self._switch(device, path, path, timeout)
        try:
            return path, self.check_command(device, path, cdb)
        except NotifyPathLost as exc:
            device.group.path_failed(path, f"recovery: {exc}")
            return path, True

    def check_command(self, device: MultipathDevice, path: Path, cdb: bytes) -> bool:
        """Settle what ``cdb`` depends on before it goes on ``path`` (the tape hook
        locates back after a reset); return whether to check the next command too.

        Raises:
            NotifyPathLost: ``path`` failed meanwhile (the device picks another).
        """
        return False

    def _switch(self, device: MultipathDevice, old: Path, new: Path, timeout: float | None) -> Path:
        m = RecoveryMachine(device.name, old.url, [], clock=self.clock)
        bound = self._bounded(timeout)
        nothing = FailedCommand(b"", b"", 0, bound, old, Response(), 0)
        run = Run(device, nothing, m, new, timeout=bound)
        try:
            decision = self._drive(run, Event.PATH_SWITCHED)
        except Exception as exc:
            if not m.state.final:
                m.handle(Event.ABORTED, error=repr(exc))
            self.after_failure(run, exc)
            raise
        if isinstance(decision, Fail):
            raise decision.error
        return run.path

    def _drive(self, run: Run, first: Event = Event.PATH_FAILED) -> Decision:
        m = run.machine
        failed = run.failed
        tried: set[int] = {id(run.path)}
        if first is Event.PATH_SWITCHED:
            action = m.handle(first, new_path=run.path.url)
        else:
            action = m.handle(
                first,
                opcode=f"{failed.opcode:02X}",
                attempt=failed.attempt,
                queued=run.device.gate.queued,  # commands waiting behind this one
            )
        while True:
            if action is Action.PROBE_NEXT_PATH:
                if failed.attempt > self.max_attempts:
                    return self._fail(run, Event.NO_PATH_LEFT, self._no_path(run, "too many"))
                path = self._probe_next(run, tried)
                if path is None:
                    return self._fail(run, Event.NO_PATH_LEFT, self._no_path(run, "no path"))
                run.path = path
                action = m.handle(Event.PROBE_ANSWERED, new_path=path.url)
            elif action is Action.NOTIFY:
                ctx = NotifyContext(run.device, run.path, failed.path, self.state, run.timeout)
                try:
                    run.report = self.device_handler.notify(ctx)
                except NotifyPathLost as exc:
                    run.device.group.path_failed(run.path, f"recovery notify: {exc}")
                    action = m.handle(Event.NOTIFY_PATH_LOST, error=str(exc))
                    continue
                except NotifyRefusedError as exc:
                    return self._fail(run, Event.NOTIFY_FAILED, exc)
                action = m.handle(
                    Event.NOTIFIED,
                    unit_attentions=[k.value for k in run.report.unit_attentions],
                    reservation_moved=run.report.reservation_moved,
                    prevent_restored=run.report.prevent_restored,
                    modes_restored=run.report.modes_restored,
                    activated=run.report.activated,
                )
            elif action in (Action.READ_STATE, Action.LOCATE_BACK, Action.FINISH_MOVE):
                if action is Action.READ_STATE and not run.fenced:
                    run.fenced = True
                    why = self.fence_failed_path(run)
                    if why is not None:
                        run.error = self.in_doubt(
                            run,
                            f"its path could not be fenced ({why}): the copy the kernel "
                            "holds there may still run",
                        )
                        return self._fail(run, Event.STATE_AMBIGUOUS, run.error)
                try:
                    event = self.synchronize(run, action)
                except NotifyPathLost as exc:
                    run.device.group.path_failed(run.path, f"recovery: {exc}")
                    if m.state is State.RESENDING:
                        run.error = self.in_doubt(run, f"the path failed finishing it ({exc})")
                        event = Event.RESEND_FAILED
                    else:
                        event = Event.SYNC_PATH_LOST
                if event in (Event.STATE_AMBIGUOUS, Event.RESEND_FAILED):
                    assert run.error is not None
                    return self._fail(run, event, run.error)
                action = m.handle(event)
            elif action is Action.RESEND:
                m.handle(Event.RESENT)
                self._count(resent=1)
                return Resend(run.path)
            elif action is Action.COMPLETE:
                if not failed.cdb:  # a path switch: nothing to complete
                    return Complete(Response())
                if run.response is None:  # RESENDING -> RESENT after finishing a move
                    raise TapepathError("recovery completed without a response")
                finished = m.history[-1][1] is Event.RESENT
                self._count(**({"resent": 1} if finished else {"completed": 1}))
                return Complete(run.response)
            else:  # pragma: no cover - every action is handled above
                raise TapepathError(f"recovery action {action.value} has no driver step")

    def _fail(self, run: Run, event: Event, error: Exception) -> Decision:
        run.machine.handle(event, error=str(error))
        from tapepath.errors import AmbiguityError  # noqa: PLC0415

        self._count(**({"ambiguous": 1} if isinstance(error, AmbiguityError) else {"failed": 1}))
        self.after_failure(run, error)
        return Fail(error, fail_waiting=True)

    def _no_path(self, run: Run, why: str) -> NoPathError:
        states = ", ".join(f"{p.url}={p.state.value}" for p in run.device.paths)
        return NoPathError(
            f"{run.device.name}: recovery of {command_name(run.failed.cdb)} found no path "
            f"that answers ({why}; {states}); nothing was resent"
        )

    # -- verify ------------------------------------------------------------------------

    def _candidates(self, run: Run, tried: set[int]) -> list[Path]:
        from tapepath.multipath.path import PathState  # noqa: PLC0415

        order = {PathState.ACTIVE: 0, PathState.PASSIVE: 1}
        paths = [
            p
            for p in run.device.paths
            if id(p) not in tried
            and p is not run.failed.path
            and p.state not in (PathState.OFFLINE,)
        ]
        return sorted(paths, key=lambda p: order.get(p.state, 2))  # stable: priority kept

    def _probe_next(self, run: Run, tried: set[int]) -> Path | None:
        """Probe the untried paths in order; return the first that answers."""
        from tapepath.multipath.path import PathState  # noqa: PLC0415

        group = run.device.group
        for p in self._candidates(run, tried):
            tried.add(id(p))
            ok, why = self.probe(run.device, p)
            if ok:
                if p.state not in (PathState.ACTIVE, PathState.PASSIVE):
                    group.set_state(p, PathState.ACTIVE, "recovery probe answered")
                return p
            group.path_failed(p, f"recovery probe: {why}")
            run.machine.handle(Event.PROBE_FAILED, probed=p.url, error=why)
        return None

    def probe(self, device: MultipathDevice, path: Path) -> tuple[bool, str]:
        """One quick probe: an iSCSI NOP when the transport has ``ping()``, and TEST UNIT
        READY when it has not or the NOP went unanswered (a session that dropped while
        idle logs in again on a command). Returns (answered, why not)."""
        why = ""
        ping = getattr(path.transport, "ping", None)
        if callable(ping):
            try:
                ping(self.probe_timeout)
            except Exception as exc:  # no NOP answer: the TUR below may log in again
                why = f"NOP: {exc}; "
            else:
                return True, ""
        r = device.execute_on(path, _TUR, timeout=self.probe_timeout)
        if r.path_failed:
            return False, why + (r.detail.message if r.detail is not None else r.outcome.value)
        return True, ""

    def fence_failed_path(self, run: Run) -> str | None:
        """Make sure the failed command cannot still run on its old path later.

        A transport that can leave a command held below it (sg: the kernel holds it
        while the iSCSI session recovers) has ``fence()``. When it gave up on a command
        that was not answered (TIMED_OUT, or LINK_LOST from the device state: no host
        status, no errno), the kernel may send it when the path returns: fence the path
        before the state is read. Returns None when sure, else why not.
        """
        f = run.failed
        if not f.cdb or f.opcode in REPEATABLE or not f.maybe_executed:
            return None
        r = f.response
        d = r.detail
        held = (
            r.outcome in (Outcome.TIMED_OUT, Outcome.LINK_LOST)
            and d is not None
            and d.host_status is None
            and d.errno is None
        )
        transport = f.path.transport
        fence = getattr(transport, "fence", None)
        if not held or not callable(fence) or getattr(transport, "fenced", False):
            return None
        result = fence()
        if result.done:
            log.info("recovery_path_fenced", device=run.device.name, path=f.path.url,
                     state=result.state)  # fmt: skip
            return None
        log.warning("recovery_fence_failed", device=run.device.name, path=f.path.url,
                    reason=result.reason)  # fmt: skip
        return str(result.reason) or "fence failed"

    # -- for subclasses ----------------------------------------------------------------

    def synchronize(self, run: Run, action: Action) -> Event:
        """Carry out READ_STATE / LOCATE_BACK / FINISH_MOVE; return the next event.

        The default resends what is safe to repeat or never reached the device and
        fails anything else with CommandInDoubtError (STATE_AMBIGUOUS); on a path switch
        (no command: ``run.failed.cdb`` is empty) there is nothing to do.
        """
        if not run.failed.cdb:
            return Event.NOTHING_OUTSTANDING
        if run.failed.opcode in REPEATABLE or not run.failed.maybe_executed:
            return Event.STATE_READ
        run.error = self.in_doubt(run, "no state to compare")
        return Event.STATE_AMBIGUOUS

    def in_doubt(self, run: Run, why: str) -> Exception:
        """The error for a command whose effect cannot be checked."""
        f = run.failed
        return CommandInDoubtError(
            f"{run.device.name}: {command_name(f.cdb)} may have run on {f.path.url} before "
            f"the path failed, and {why}; not resent",
            response=f.response,
            path=f.path.url,
            opcode=f.opcode,
        )

    def after_failure(self, run: Run, error: Exception) -> None:
        """Called when a recovery fails (the tape forgets its position, ...)."""
