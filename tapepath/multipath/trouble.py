"""The slow paths of a multipath device: choosing, waiting, and handling trouble.

:class:`TroubleMixin` is the part of :class:`~tapepath.multipath.device.MultipathDevice`
that runs when a command did not come back clean from the fast path: it sends on a
chosen path with in-flight counting, applies the no-path policy, probes passive paths
when no active one is left, and drives the loop that turns path failures, 02/04/xx
answers and ALUA state changes into state changes, recovery decisions and resends.

A passing transport failure (``FailureDetail.retryable``: a busy bus, a requeue) is
first retried on the same path, which stays ACTIVE, within ``policy.retry_same_path``
and the caller's timeout, when that cannot run the command twice: the transport says it
did not run (``maybe_executed=False``), or the recovery hook would resend it anyway (its
``safe`` opcodes: :class:`~tapepath.multipath.hooks.ResendIfSafe`'s decision). Anything
else, and a failure still there once the retries are used up, is a path failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, NamedTuple, cast

import structlog

from tapepath.errors import NoPathError, TransportError
from tapepath.multipath.gate import RecoveryGate
from tapepath.multipath.group import PathGroup
from tapepath.multipath.handlers import ActivationHandler
from tapepath.multipath.hooks import Complete, Decision, Fail, FailedCommand, RecoveryHook
from tapepath.multipath.path import Path, PathState
from tapepath.multipath.policy import MultipathPolicy
from tapepath.multipath.selectors import FailoverSelector, Selector
from tapepath.multipath.verdict import PathVerdict
from tapepath.transport.base import Outcome, Response

if TYPE_CHECKING:
    from tapepath.multipath.device import MultipathDevice

__all__ = ["Req", "TroubleMixin", "is_unit_attention", "resent_freely"]

log = structlog.get_logger("tapepath.multipath")

_OK = Outcome.OK
_ACTIVE = PathState.ACTIVE
_TUR = bytes(6)


class Req(NamedTuple):
    """One caller command, as the slow paths carry it."""

    cdb: bytes
    data_out: bytes
    data_in_len: int
    timeout: float
    buf: bytearray | memoryview | None


class TroubleMixin:
    """Choosing, waiting and trouble handling of a multipath device (mixed into
    MultipathDevice)."""

    name: str
    group: PathGroup
    policy: MultipathPolicy
    clock: Callable[[], float]
    handler: ActivationHandler
    recovery: RecoveryHook
    gate: RecoveryGate
    _selector: Selector
    _failover: FailoverSelector | None
    _fast: Path | None
    _closed: bool
    _inflight_lock: threading.Lock
    _verdict: Callable[[Response], PathVerdict]
    _sleep: Callable[[float], None]
    _fail_generation: int
    _waiters_failed: tuple[int, BaseException] | None
    _last_used: Path | None
    activate: Callable[..., bool]
    execute_on: Callable[..., Response]

    @property
    def _device(self) -> MultipathDevice:
        """This object as the device it is part of (for handlers and hooks)."""
        return cast("MultipathDevice", self)

    def _send(self, path: Path, req: Req) -> Response:
        with self._inflight_lock:
            path._inflight += 1
        try:
            if req.buf is None:
                r = path.transport.execute(
                    req.cdb,
                    data_out=req.data_out,
                    data_in_len=req.data_in_len,
                    timeout=req.timeout,
                )
            else:
                r = path.transport.execute_into(req.cdb, req.buf, timeout=req.timeout)
        finally:
            with self._inflight_lock:
                path._inflight -= 1
        path.account(r, len(req.data_out))
        return r

    def _choose(self, timeout: float) -> Path:
        """An active path by the selector, activating or waiting when there is none."""
        if self._closed:
            raise TransportError(f"{self.name}: device is closed")
        active = self.group.active
        if active:
            return self._selector.select(active)
        return self._no_path(timeout)

    def _no_path(self, timeout: float) -> Path:
        start = self.clock()
        deadline = start + min(self.policy.no_path.queue_for, timeout)
        while True:
            for p in self.group.in_state(PathState.PASSIVE):
                left = max(0.001, start + timeout - self.clock())  # the command's own time
                if self.activate(p, "no active path left", timeout=left):
                    break
            if not self.group.active:
                self._probe_passive()
            active = self.group.active
            if active:
                return self._selector.select(active)
            if self._closed:
                raise TransportError(f"{self.name}: device is closed")
            remaining = deadline - self.clock()
            if remaining <= 0:
                states = ", ".join(f"{p.url}={p.state.value}" for p in self.group.paths)
                log.warning("no_path", device=self.name, waited=self.clock() - start)
                raise NoPathError(
                    f"{self.name}: no usable path after {self.clock() - start:.3g} s"
                    f" ({states or 'no paths'})"
                )
            self._sleep(min(remaining, 1.0))

    def _probe_passive(self) -> None:
        """With no active path, ask each passive path whether the device moved the
        active port there by itself (a library that reconfigures its control path)."""
        check = getattr(self.handler, "check_path", None)
        for p in self.group.in_state(PathState.PASSIVE):
            if check is not None:  # the handler knows the access states (ALUA)
                from tapepath.multipath.checkers import apply_check  # noqa: PLC0415

                apply_check(self._device, p, check(self, p, self.policy.checker.timeout))
                if p.state is _ACTIVE:
                    return
                continue
            r = self.execute_on(p, _TUR, timeout=self.policy.checker.timeout)
            for _ in range(8):  # unit attentions first (kept on the path by execute_on)
                if not (r.check_condition and is_unit_attention(r.sense)):
                    break
                r = self.execute_on(p, _TUR, timeout=self.policy.checker.timeout)
            v = self._verdict(r)
            if v is PathVerdict.PATH_FAILURE or v is PathVerdict.OFFLINE:
                self.group.path_failed(p, f"probe of passive path: {v.value}")
            elif v is PathVerdict.PASS:
                self.group.set_state(p, _ACTIVE, "probe: the device made this path active")
                return

    def _trouble(self, path: Path, r: Response, req: Req) -> Response:
        """Handle a failed or check-condition response until one is for the caller.

        From the first path failure on, the recovery gate is held until this command is
        done (resent, completed or failed), so commands submitted meanwhile go after it.
        """
        with ExitStack() as held:
            return self._trouble_loop(path, r, req, held)

    def _trouble_loop(self, path: Path, r: Response, req: Req, held: ExitStack) -> Response:
        gated = False

        def hold_gate() -> None:  # commands submitted meanwhile go after this one
            nonlocal gated
            if not gated:
                held.enter_context(self.gate.recovering())
                self._fast = None
                gated = True

        retry = self.policy.transition
        same = self.policy.retry_same_path
        same_for: Path | None = None  # the path ``same`` counts the retries of
        deadline = self.clock() + req.timeout
        attempt = 0
        hops = 0
        max_hops = 4 * max(len(self.group), 1) + 8
        while True:
            verdict = self._verdict(r)
            if verdict is PathVerdict.PASS:
                return r
            if verdict is PathVerdict.RETRY:
                if same_for is not path:  # each path gets its own budget
                    same, same_for = self.policy.retry_same_path, path
                delay = same.delay()
                if not same.exhausted and self._repeatable(path, r, req, delay, deadline):
                    hold_gate()
                    same = same.increment()
                    detail = r.detail
                    log.info(
                        "command_retried_same_path",
                        device=self.name,
                        path=path.url,
                        opcode=f"{req.cdb[0]:02X}",
                        attempt=same.history,
                        reason=detail.message if detail is not None else r.outcome.value,
                        maybe_executed=detail.maybe_executed if detail is not None else True,
                        delay=delay,
                    )
                    self._sleep(delay)
                    r = self._send(path, req)
                    continue
                verdict = PathVerdict.PATH_FAILURE  # not retried here: today's handling
            hops += 1
            if verdict is PathVerdict.PATH_FAILURE:
                hold_gate()
                attempt += 1
                detail = r.detail
                reason = f"{r.outcome.value}: {detail.message}" if detail else r.outcome.value
                self.group.path_failed(path, reason)
                decision = self._recover(
                    FailedCommand(
                        req.cdb, req.data_out, req.data_in_len, req.timeout, path, r, attempt
                    )
                )
                if isinstance(decision, Complete):
                    return decision.response
                if isinstance(decision, Fail):
                    if decision.fail_waiting:  # the queued commands fail the same way
                        self._fail_generation += 1
                        self._waiters_failed = (self._fail_generation, decision.error)
                    raise decision.error
                if decision.path is not None:
                    path = decision.path
                    if self._failover is not None:
                        self._failover.current = path  # later commands follow recovery
                        self._fast = None
                        self._last_used = path  # the hook brought this path up to date
                else:
                    path = self._choose(req.timeout)
            elif hops > max_hops:
                return r
            elif verdict is PathVerdict.TRANSITIONING:
                if retry.exhausted:
                    return r
                self._sleep(retry.delay())
                retry = retry.increment()
            elif verdict in (PathVerdict.STANDBY, PathVerdict.UNAVAILABLE):
                self.group.set_state(
                    path, PathState.PASSIVE, f"device answered {verdict.value} (02/04/xx)"
                )
                path = self._choose(req.timeout)
            elif verdict is PathVerdict.OFFLINE:
                self.group.path_failed(path, "logical unit offline through this port (02/04/12)")
                path = self._choose(req.timeout)
            else:  # STATE_CHANGED: re-read the access states, then resend
                self.handler.refresh(self._device)
                path = self._choose(req.timeout)
            r = self._send(path, req)

    def _repeatable(self, path: Path, r: Response, req: Req, delay: float, deadline: float) -> bool:
        """Whether a retryable failure may be retried on ``path`` now: the path is still
        ACTIVE, the retry fits in the caller's time, and it cannot run the command twice
        (not executed, or an opcode the recovery hook resends freely)."""
        if path.state is not _ACTIVE or self.clock() + delay >= deadline:
            return False
        detail = r.detail
        if detail is None or not detail.retryable:
            return False
        if not detail.maybe_executed:
            return True
        return bool(req.cdb) and req.cdb[0] in resent_freely(self.recovery)

    def _recover(self, failed: FailedCommand) -> Decision:
        decision = self.recovery.on_path_failure(self._device, failed)
        log.info(
            "path_failure_decision",
            device=self.name,
            path=failed.path.url,
            opcode=f"{failed.opcode:02X}",
            attempt=failed.attempt,
            decision=type(decision).__name__,
        )
        return decision


def resent_freely(hook: object) -> frozenset[int]:
    """The opcodes ``hook`` resends after a path failure whatever the device did: its
    ``safe`` set (:class:`~tapepath.multipath.hooks.ResendIfSafe`, the recovery layer's
    hooks, and any hook that declares one the same way), else none (a hook without one
    is asked through the path failure instead)."""
    safe = getattr(hook, "safe", None)
    if isinstance(safe, frozenset):
        return safe
    if isinstance(safe, (set, tuple, list)):
        return frozenset(x for x in safe if isinstance(x, int))
    return frozenset()


def is_unit_attention(sense: bytes) -> bool:
    """True when ``sense`` (fixed or descriptor format) says UNIT ATTENTION."""
    if len(sense) < 3:
        return False
    code = sense[0] & 0x7F
    if code in (0x70, 0x71):
        return sense[2] & 0x0F == 0x06
    if code in (0x72, 0x73):
        return sense[1] & 0x0F == 0x06
    return False
