"""MultipathDevice: one logical unit over all its paths, with a transport's contract.

A :class:`MultipathDevice` is a :class:`~tapepath.transport.base.Transport`: it stands
wherever a transport does. In normal operation ``execute()`` sends the caller's command
as it is on the chosen path and returns that path's :class:`Response` (no extra
command, no data copy). Off the hot path it:

- marks a path FAILED when its transport reports a failure, and asks the recovery hook
  (:mod:`tapepath.multipath.hooks`) what to do with the command;
- marks a path PASSIVE when the device answers 02/04/0B or 02/04/0C there, and resends
  the command (which did not run) on another active path, activating a passive path
  through the activation handler when no active path is left;
- retries on the same path while the device reports 02/04/0A (transitioning), by the
  transition :class:`~tapepath.multipath.policy.RetryPolicy`;
- applies the no-path policy when no path is usable: fail at once, or wait for the
  monitor to reinstate one, then :class:`~tapepath.errors.NoPathError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import structlog

from tapepath.errors import DecodeError
from tapepath.multipath.failback import FailbackMixin
from tapepath.multipath.gate import RecoveryGate
from tapepath.multipath.group import PathGroup
from tapepath.multipath.handlers import ActivationHandler, NullHandler, handler_for
from tapepath.multipath.hooks import (
    ObserverMixin,
    RecoveryHook,
    ResendIfSafe,
    with_timeout,
)
from tapepath.multipath.identify import identify
from tapepath.multipath.lazy import LazyTransport, open_or_defer
from tapepath.multipath.path import Path, PathIdentity, PathState
from tapepath.multipath.policy import MultipathPolicy
from tapepath.multipath.selectors import FailoverSelector, Selector, make_selector
from tapepath.multipath.trouble import Req, TroubleMixin, is_unit_attention
from tapepath.multipath.verdict import PathVerdict, may_concern_path, path_verdict
from tapepath.transport.base import DEFAULT_TIMEOUT, Outcome, Response, Transport

if TYPE_CHECKING:
    from tapepath.multipath.monitor import PathMonitor

__all__ = ["MultipathDevice"]


log = structlog.get_logger("tapepath.multipath")

_OK = Outcome.OK
_ACTIVE = PathState.ACTIVE
_CHECK_CONDITION = 0x02
_TUR = bytes(6)


class MultipathDevice(TroubleMixin, FailbackMixin, ObserverMixin, Transport):
    """All paths to one logical unit, behind the transport contract.

    Args:
        paths: transports, :class:`Path` values or URLs (opened with
            :func:`tapepath.open_transport`), in order of preference for equal priorities.
        name: the device's name in logs (default: the first path's URL).
        device_type: the SCSI peripheral device type, when known (1 tape, 8 changer).
        designator: the logical-unit designator the paths share, when known.
        policy: the policy; keyword settings (see
            :meth:`MultipathPolicy.from_settings`) are applied over it.
        selector: a selector instance or name (default: from ``policy.selector``).
        handler: the activation handler for passive paths: an instance, a registered
            name (``"alua"``, ``"passive"``, ``"none"``), ``"auto"`` (the default: chosen
            by INQUIRY through the first path that answers, ALUA when TPGS says so) or
            None (no activation: a passive path returns only when the device makes it
            active itself).
        recovery: the recovery hook (default: :class:`ResendIfSafe`).
        monitor: True for the shared background monitor, a
            :class:`~tapepath.multipath.monitor.PathMonitor` to use that one, or
            False/None for none.
        clock: monotonic time source (injectable for tests).
        sleep: how the device waits (default: wait for a path state change, at most the
            given seconds); injectable for tests.
        **settings: flat policy settings (``selector="round-robin"``, ``no_path=30``, ...).
    """

    scheme = "multipath"

    def __init__(
        self,
        paths: Iterable[Transport | Path | str],
        *,
        name: str | None = None,
        device_type: int | None = None,
        designator: str | None = None,
        policy: MultipathPolicy | None = None,
        selector: Selector | str | None = None,
        handler: ActivationHandler | str | None = "auto",
        recovery: RecoveryHook | None = None,
        monitor: PathMonitor | bool | None = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        **settings: Any,
    ) -> None:
        pol = policy if policy is not None else MultipathPolicy()
        if isinstance(selector, str):
            settings["selector"] = selector
            selector = None
        if settings:
            pol = pol.updated(**settings)
        self.policy = pol
        self.clock = clock
        self.device_type = device_type
        self.designator = designator
        built = [self._as_path(p) for p in paths]
        self.name = name or (built[0].url if built else "multipath")
        self.url = f"multipath://{self.name}"
        self.group = PathGroup(self.name, built, marginal=pol.marginal, clock=clock)
        self._selector: Selector = selector if selector is not None else make_selector(pol.selector)
        self._failover = self._selector if isinstance(self._selector, FailoverSelector) else None
        self.handler: ActivationHandler = self._pick_handler(handler)
        self.recovery: RecoveryHook = recovery if recovery is not None else ResendIfSafe()
        self._observer = None
        self._waiters_failed: tuple[int, BaseException] | None = None
        """(generation, error): commands queued behind a recovery that failed this way
        fail with the same error (see :class:`~tapepath.multipath.hooks.Fail`)."""
        self._fail_generation = 0
        self._last_used: Path | None = None
        """The path the failover selector last sent a caller's command on."""
        self._on_switch = with_timeout(getattr(self.recovery, "on_path_switch", None))
        if self._failover is None:  # spreading selectors change paths all the time
            self._on_switch = None
        self._before_command = with_timeout(getattr(self.recovery, "before_command", None))
        self._sleep = sleep if sleep is not None else self.group.wait_for_change
        self._verdict: Callable[[Response], PathVerdict] = path_verdict
        self._closed = False
        self._fast_path: Path | None = None
        self._fast_retire: Callable[[], None] | None = None
        self.gate = RecoveryGate(self.name)
        """Queues commands while a recovery runs (see :mod:`tapepath.multipath.gate`)."""
        self._activation_lock = threading.Lock()
        self._inflight_lock = threading.Lock()
        self._failback_since: dict[int, float] = {}
        self.group.add_listener(self._on_state_change)
        self.handler.attach(self)
        attach = getattr(self.recovery, "attach", None)
        if callable(attach):  # a hook that tracks the device's state from its commands
            attach(self)
        self._monitor: PathMonitor | None = None
        if monitor is True:
            from tapepath.multipath.monitor import default_monitor  # noqa: PLC0415

            monitor = default_monitor()
        if monitor:
            self._monitor = monitor
            monitor.register(self)

    # -- construction helpers ----------------------------------------------------------

    def _as_path(self, p: Transport | Path | str) -> Path:
        if isinstance(p, Path):
            return p
        state = PathState.FAILED if isinstance(p, LazyTransport) else PathState.ACTIVE
        if isinstance(p, str):
            from tapepath.transport.registry import open_transport  # noqa: PLC0415

            # a path that is down now is kept, FAILED, for the monitor to bring back
            p, opened = open_or_defer(p, open_transport)
            if not opened:
                state = PathState.FAILED
        prio = self.policy.priority_for(getattr(p, "url", ""))
        ident = PathIdentity(designator=self.designator, priority=prio)
        return Path(p, ident, state=state, clock=self.clock())

    def _pick_handler(self, handler: ActivationHandler | str | None) -> ActivationHandler:
        if handler is None:
            return NullHandler()
        if not isinstance(handler, str):
            return handler
        if handler != "auto":
            return handler_for(handler)
        for path in self.group.paths:  # INQUIRY only: takes no unit attention
            if path.state is not _ACTIVE:
                continue

            def send(cdb: bytes, n: int, p: Path = path) -> Response:
                return self.execute_on(p, cdb, data_in_len=n, timeout=10.0)

            try:
                info = identify(send, serial_fallback=False)
            except DecodeError:
                continue
            if self.device_type is None:
                self.device_type = info.device_type
            if self.designator is None and info.key is not None:
                self.designator = info.key
            return handler_for(vendor=info.vendor, product=info.product, tpgs=info.tpgs)
        return NullHandler()

    # -- reading -----------------------------------------------------------------------

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every path, best priority first."""
        return self.group.paths

    @property
    def current_path(self) -> Path | None:
        """The path the failover selector is on (None before the first command or when
        a load-spreading selector is used)."""
        return self._failover.current if self._failover is not None else None

    # -- the transport contract --------------------------------------------------------

    @property
    def _fast(self) -> Path | None:
        """The failover path while nothing special is going on: execute()'s fast path.

        Set only when the path is ACTIVE and current, no recovery runs and no resync is
        wanted; cleared by every state change, failback, recovery, observer change and
        close. While it is set, the instance's ``execute`` is a closure over the path
        (:meth:`_fast_execute`), which skips the method's lookups.
        """
        return self._fast_path

    @_fast.setter
    def _fast(self, path: Path | None) -> None:
        self._fast_path = path
        retire, self._fast_retire = self._fast_retire, None
        if retire is not None:
            retire()
        self.__dict__.pop("execute", None)
        if path is None:
            return
        execute, retire = self._fast_execute(path)
        self.__dict__["execute"] = execute
        self._fast_retire = retire
        if self._fast_path is not path:  # cleared meanwhile by another thread
            retire()
            self.__dict__.pop("execute", None)

    def _fast_execute(self, path: Path) -> tuple[Callable[..., Response], Callable[[], None]]:
        """execute() specialised for ``path`` while it is the fast path, and the function
        that retires it.

        The same steps as :meth:`execute` with ``_fast`` set, its lookups done once:
        send on the path, count the command on it, and hand anything but a clean
        answer to the slow path. Once retired (the fast path changed), a caller that
        kept the function gets :meth:`execute`'s full course instead.
        """
        send = path.send
        observer = self._observer
        after = self._after_fast
        device = self
        alive = True

        def execute(
            cdb: bytes,
            *,
            data_out: bytes = b"",
            data_in_len: int = 0,
            timeout: float = DEFAULT_TIMEOUT,
        ) -> Response:
            if not alive:
                return MultipathDevice.execute(
                    device, cdb, data_out=data_out, data_in_len=data_in_len, timeout=timeout
                )
            r = send(cdb, data_out=data_out, data_in_len=data_in_len, timeout=timeout)
            if r.outcome is _OK:  # Path.account, inlined
                path._commands += 1
                path._busy_time += r.duration
                if data_out:
                    path._bytes_out += r.transferred
                elif data_in_len:
                    path._bytes_in += r.transferred
                if r.status != _CHECK_CONDITION or not may_concern_path(r.sense):
                    if observer is not None:
                        observer(cdb, data_out, r, r.data)
                    return r
            else:
                path.account(r, len(data_out))
            return after(path, r, Req(cdb, data_out, data_in_len, timeout, None))

        def retire() -> None:
            nonlocal alive
            alive = False

        execute.__doc__ = MultipathDevice.execute.__doc__
        execute.__qualname__ = "MultipathDevice.execute"
        return execute, retire

    def _after_fast(self, path: Path, r: Response, req: Req) -> Response:
        """The fast path met a path failure or a sense that may concern the path."""
        r = self._trouble(path, r, req)
        if self._observer is not None:
            self._observer(req.cdb, req.data_out, r, r.data)
        return r

    def execute(
        self,
        cdb: bytes,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Send one command on the selected path (see the module doc for failures).

        Returns:
            The response of the path that answered.

        Raises:
            NoPathError: no path was usable within the no-path policy and ``timeout``.
            CommandInDoubtError: (default hook) a command not safe to repeat met a path
                failure and may have run.
            TransportError: the device is closed.
        """
        path = self._fast
        if path is None:
            r = self._execute_slow(Req(cdb, data_out, data_in_len, timeout, None))
            if self._observer is not None:
                self._observer(cdb, data_out, r, r.data)
            return r
        r = path.send(cdb, data_out=data_out, data_in_len=data_in_len, timeout=timeout)
        if r.outcome is _OK:  # the accounting of Path.account, inlined for the hot path
            path._commands += 1
            path._busy_time += r.duration
            if data_out:
                path._bytes_out += r.transferred
            else:
                path._bytes_in += r.transferred
            if r.status != _CHECK_CONDITION or not may_concern_path(r.sense):
                if self._observer is not None:
                    self._observer(cdb, data_out, r, r.data)
                return r
        else:
            path.account(r, len(data_out))
        return self._after_fast(path, r, Req(cdb, data_out, data_in_len, timeout, None))

    def _execute_slow(self, req: Req) -> Response:
        """execute() when the fast path is off: queueing, spreading, choosing."""
        gate = self.gate
        ticket = None
        if gate.busy:
            generation = self._fail_generation
            ticket = gate.wait(req.timeout)
            failed = self._waiters_failed
            if ticket is not None and failed is not None and failed[0] > generation:
                gate.release(ticket)  # queued behind a recovery that failed: not sent
                raise failed[1]
        try:
            return self._execute_chosen(req)
        finally:
            if ticket is not None:
                gate.release(ticket)

    def _execute_chosen(self, req: Req) -> Response:
        fo = self._failover
        if fo is None:
            return self._execute_spread(req)
        path = fo.current
        if path is None or path._state is not _ACTIVE:
            path = self._choose(req.timeout)
        if self._on_switch is not None:
            last = self._last_used
            if last is not None and path is not last:
                path = self._switched(last, path, req.timeout)
            self._last_used = path
        if self._resync_wanted:
            path = self._resync(path, req.cdb, req.timeout)
        with self.group._lock:  # no state change between this check and the listener
            if (
                not self.gate.busy
                and path._state is _ACTIVE
                and fo.current is path
                and not self._resync_wanted
            ):
                self._fast = path
        r = self._send(path, req)
        if r.outcome is _OK and (r.status != _CHECK_CONDITION or not may_concern_path(r.sense)):
            return r
        return self._trouble(path, r, req)

    def execute_into(
        self,
        cdb: bytes,
        buf: bytearray | memoryview,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Like :meth:`execute` for data-in, straight into ``buf`` (no copy here)."""
        req = Req(cdb, b"", memoryview(buf).nbytes, timeout, buf)
        path = self._fast
        if path is None:
            r = self._execute_slow(req)
        else:
            r = path.transport.execute_into(cdb, buf, timeout=timeout)
            path.account(r, 0)
            if r.outcome is not _OK or (r.status == _CHECK_CONDITION and may_concern_path(r.sense)):
                r = self._trouble(path, r, req)
        if self._observer is not None:
            self._observer(cdb, b"", r, memoryview(buf)[: r.transferred])
        return r

    def execute_on(
        self,
        path: Path,
        cdb: bytes,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Send one command on ``path`` exactly: no selection, no retry, no state change.

        For checkers, activation handlers and recovery hooks. It is not held back while
        a recovery runs. A unit attention it meets is kept in ``path.unit_attentions``
        (internal commands must not make recovery miss a reset).
        """
        r = path.transport.execute(cdb, data_out=data_out, data_in_len=data_in_len, timeout=timeout)
        path.account(r, len(data_out))
        if r.status == _CHECK_CONDITION and r.outcome is _OK and is_unit_attention(r.sense):
            path.unit_attentions.append(r.sense)
            self.request_resync()  # the hook reads it before the next command goes there
        return r

    def close(self) -> None:
        """Stop monitoring and close every path's transport; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._fast = None
        if self._monitor is not None:
            self._monitor.unregister(self)
        self.gate.close()
        for p in self.group.paths:
            try:
                p.transport.close()
            except Exception as exc:  # a broken path must not stop the others closing
                log.warning("path_close_failed", device=self.name, path=p.url, error=str(exc))

    # -- administration ----------------------------------------------------------------

    def add_path(self, path: Transport | Path | str, reason: str = "hot add") -> Path:
        """Add a path found later (hot add); it starts ACTIVE unless given otherwise."""
        p = self._as_path(path)
        self.group.add(p, reason)
        return p

    def set_offline(self, url: str, reason: str = "administrator") -> None:
        """Take a path out of use (never used nor probed until :meth:`set_online`)."""
        self.group.set_state(self._path(url), PathState.OFFLINE, reason)

    def set_online(self, url: str, reason: str = "administrator") -> None:
        """Give an offline path back to the monitor (it is probed before use)."""
        p = self._path(url)
        if p.state is PathState.OFFLINE:
            self.group.set_state(p, PathState.FAILED, f"{reason}: online, to be probed")

    def activate(
        self, path: Path, reason: str = "requested", *, timeout: float | None = None
    ) -> bool:
        """Ask the activation handler to make a PASSIVE path ACTIVE.

        Args:
            path: the passive path.
            reason: why, for the state-change event.
            timeout: seconds the handler may take (its commands and its wait for an
                ALUA transition); None: the handler's own limits.

        Returns:
            True when the path is ACTIVE afterwards.
        """
        with self._activation_lock:
            if path.state is _ACTIVE:
                return True
            if path.state is not PathState.PASSIVE or isinstance(self.handler, NullHandler):
                return False
            self.group.set_state(path, PathState.PROBING, f"activating ({self.handler.name})")
            try:
                activate = with_timeout(self.handler.activate)
                assert activate is not None
                ok = activate(self, path, timeout=timeout)
            except Exception:
                self.group.set_state(path, PathState.PASSIVE, "activation raised")
                raise
            if ok:
                self.group.set_state(path, _ACTIVE, f"activated by {self.handler.name}: {reason}")
            else:
                self.group.set_state(path, PathState.PASSIVE, f"{self.handler.name}: not activated")
            return ok

    def wait(self, seconds: float) -> None:
        """Wait as the device waits (returns early when a path changes state); for
        handlers and hooks, so tests with a fake clock control every wait."""
        self._sleep(seconds)

    def _path(self, url: str) -> Path:
        p = self.group.find(url)
        if p is None:
            raise KeyError(f"{self.name}: no path {url}")
        return p

    # -- the slow paths ----------------------------------------------------------------

    def _execute_spread(self, req: Req) -> Response:
        path = self._choose(req.timeout)
        if self._resync_wanted:
            path = self._resync(path, req.cdb, req.timeout)
        r = self._send(path, req)
        if r.outcome is _OK and r.status != _CHECK_CONDITION:
            return r
        return self._trouble(path, r, req)

    def __repr__(self) -> str:
        return f"<MultipathDevice {self.name} paths={len(self.group)}>"
