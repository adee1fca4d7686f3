"""The recovery seam: what a device does with a command that met a path failure.

When a command's path fails under it, :class:`~tapepath.multipath.device.MultipathDevice`
marks the path FAILED and asks its :class:`RecoveryHook` for a :data:`Decision`:

- :class:`Resend`: send the command again, on the path the hook names or on the next
  one the selector picks;
- :class:`Complete`: the command is done; return this response to the caller (for
  example, recovery read the tape position and found the WRITE already there);
- :class:`Fail`: raise this error to the caller.

From the path failure until the failed command is done (the hook's decision carried
out), the device holds every other command submitted to it (they wait, within their
own deadlines, and go afterwards one at a time in the order they arrived), so a hook
may send commands of its own through :meth:`MultipathDevice.execute_on` without being
overtaken. The default hook, :class:`ResendIfSafe`, resends commands that are safe
to repeat and commands that never reached the device; for anything else it fails with
:class:`CommandInDoubtError`, which carries the response and ``maybe_executed``. The
recovery layer (verify, notify, synchronise, resend, never twice) plugs its own hook in.

A hook that also has an ``attach(device)`` method is attached by the device when the
device is built; it may then call :meth:`ObserverMixin.add_observer` to see the final
response of every command (how :mod:`tapepath.recovery` tracks the tape position).

A hook with an ``on_path_switch(device, old, new) -> Path`` method is called (with the
other commands held) when the failover selector moves to another path without a failed
command (the monitor failed the old path, a failback): before the next caller command is
sent on ``new``, so the hook can bring the new I_T nexus up to date (reservations,
PREVENT, position). It returns the path to use (``new``, or another one if ``new``
failed meanwhile) and may raise to fail the command, which is then not sent.

Both this method and ``before_command`` below get the waiting caller command's timeout
as a keyword argument ``timeout`` when they accept one (a parameter named ``timeout``
or ``**kwargs``), so the commands the hook sends can stay within the caller's time.

A hook with a ``before_command(device, path, cdb) -> (Path, bool)`` method may ask, by
calling :meth:`ObserverMixin.request_resync` (from an observer that saw a power on or
reset, for example), to see the next command before it is sent: it is called with the
other commands held and may send commands of its own on ``path`` (restore the nexus
settings, LOCATE back), return another path, or raise to fail the command unsent; the
bool asks to see the command after it too. A unit attention that ``execute_on`` keeps
on a path also asks for it. Until then the device's fast path stays off.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from attrs import frozen

from tapepath.errors import PathFailureError
from tapepath.transport.base import Response

_T = TypeVar("_T")

if TYPE_CHECKING:
    from tapepath.multipath.device import MultipathDevice
    from tapepath.multipath.gate import RecoveryGate
    from tapepath.multipath.group import PathGroup
    from tapepath.multipath.path import Path
    from tapepath.multipath.selectors import FailoverSelector

__all__ = [
    "SAFE_TO_REPEAT",
    "BeforeCommand",
    "CommandInDoubtError",
    "Complete",
    "Decision",
    "Fail",
    "FailedCommand",
    "Observer",
    "ObserverMixin",
    "RecoveryHook",
    "Resend",
    "ResendIfSafe",
]

SAFE_TO_REPEAT: frozenset[int] = frozenset(
    {
        0x00,  # TEST UNIT READY
        0x05,  # READ BLOCK LIMITS
        0x12,  # INQUIRY
        0x1A,  # MODE SENSE(6)
        0x34,  # READ POSITION
        0x44,  # REPORT DENSITY SUPPORT
        0x4D,  # LOG SENSE
        0x5A,  # MODE SENSE(10)
        0x5E,  # PERSISTENT RESERVE IN
        0x8C,  # READ ATTRIBUTE
        0xA0,  # REPORT LUNS
        0xA3,  # MAINTENANCE IN (REPORT TARGET PORT GROUPS, ...)
        0xB8,  # READ ELEMENT STATUS
    }
)
"""Opcodes whose repetition changes nothing on the device (the resend-freely set)."""


@frozen
class FailedCommand:
    """One command whose path failed under it.

    Attributes:
        cdb: the CDB as the caller gave it.
        data_out: the caller's data-out bytes (the same object, not a copy).
        data_in_len: the caller's allocation.
        timeout: the caller's deadline in seconds.
        path: the path that failed (already marked FAILED).
        response: what that path's transport returned.
        attempt: 1 for the first failure of this command, then 2, ...
    """

    cdb: bytes
    data_out: bytes
    data_in_len: int
    timeout: float
    path: Path
    response: Response
    attempt: int

    @property
    def maybe_executed(self) -> bool:
        """False only when the transport knows the command never reached the device."""
        detail = self.response.detail
        return detail.maybe_executed if detail is not None else True

    @property
    def opcode(self) -> int:
        """The command's operation code."""
        return self.cdb[0]


@frozen
class Resend:
    """Send the command again, on ``path`` or (None) on the selector's next path."""

    path: Path | None = None


@frozen
class Complete:
    """The command is done: return ``response`` to the caller."""

    response: Response


@frozen
class Fail:
    """Raise ``error`` to the caller.

    With ``fail_waiting``, the commands that queued behind this recovery fail with the
    same error instead of being sent (the recovery could not bring the device to a
    known state, so nothing may go to it until the application decides).
    """

    error: Exception
    fail_waiting: bool = False


Decision = Resend | Complete | Fail
"""What a :class:`RecoveryHook` returns."""

Observer = Callable[[bytes, bytes, Response, "bytes | memoryview"], None]
BeforeCommand = Callable[..., "tuple[Path, bool]"]
"""A hook's ``before_command(device, path, cdb) -> (path to use, call again next time)``,
called before a command after the hook asked for it with ``request_resync()`` (with the
keyword ``timeout`` when it takes one)."""
"""What :meth:`ObserverMixin.add_observer` takes: ``(cdb, data_out, response, data_in)``."""


def with_timeout(fn: Callable[..., _T] | None) -> Callable[..., _T] | None:
    """``fn`` as the device calls hook methods: with a keyword ``timeout``.

    A method written without a ``timeout`` parameter (nor ``**kwargs``) is wrapped so
    the keyword is dropped; one that takes it is returned as it is.
    """
    if fn is None:
        return None
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # no signature to read: call it the old way
        params = ()  # type: ignore[assignment]
    if any(p.name == "timeout" or p.kind is p.VAR_KEYWORD for p in params):
        return fn
    plain = fn

    def dropped(*args: Any, timeout: float | None = None) -> _T:
        return plain(*args)

    return dropped


class ObserverMixin:
    """The recovery seam of a device beyond the hook itself (mixed into MultipathDevice):
    completed-command observers and the path-switch notification."""

    _observer: Observer | None = None
    _on_switch: Callable[..., Path] | None = None
    _before_command: BeforeCommand | None = None
    _resync_wanted = False
    """The hook asked (:meth:`request_resync`) to see the next command before it goes."""
    _last_used: Path | None
    _fast: Path | None
    _failover: FailoverSelector | None
    gate: RecoveryGate
    group: PathGroup
    _choose: Callable[[float], Path]

    def _switched(self, last: Path, path: Path, timeout: float) -> Path:
        """The failover path changed without a failed command (the monitor failed the
        old one, a failback): let the hook bring the new one up to date first, holding
        the other commands. Returns the path to use (the hook may have moved on)."""
        from tapepath.multipath.path import PathState  # noqa: PLC0415

        switch = self._on_switch
        assert switch is not None
        for _ in range(len(self.group) + 1):
            with self.gate.recovering():
                self._fast = None
                path = switch(self, last, path, timeout=timeout)
            if path.state is PathState.ACTIVE:
                break
            path = self._choose(timeout)
        if self._failover is not None:
            self._failover.current = path
        return path

    def request_resync(self) -> None:
        """Have the recovery hook's ``before_command(device, path, cdb)`` called before
        the next command is sent (the hook saw a reset, for example: the settings of the
        nexus and the tape position are to be restored first). Thread-safe; does
        nothing when the hook has no ``before_command``."""
        if self._before_command is not None:
            self._resync_wanted = True
            self._fast = None

    def _resync(self, path: Path, cdb: bytes, timeout: float) -> Path:
        """Let the hook bring ``path`` up to date for ``cdb`` (holding the other
        commands); it may raise, and then ``cdb`` is not sent. Returns the path to use."""
        from tapepath.multipath.path import PathState  # noqa: PLC0415

        hook = self._before_command
        assert hook is not None
        for _ in range(len(self.group) + 1):
            with self.gate.recovering():
                self._fast = None
                self._resync_wanted = False
                try:
                    path, again = hook(self, path, cdb, timeout=timeout)
                except BaseException:
                    self._resync_wanted = True  # not settled: the next command asks again
                    raise
                if again:
                    self._resync_wanted = True
            if path.state is PathState.ACTIVE:
                break
            new = self._choose(timeout)
            if self._on_switch is not None and new is not path:
                new = self._switched(path, new, timeout)
            path = new
            self._resync_wanted = True
        if self._failover is not None:
            self._failover.current = path
        self._last_used = path
        return path

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer(cdb, data_out, response, data_in)`` with the final response of
        every command sent through ``execute()`` and ``execute_into()``.

        The observer runs in the caller's thread once the command is done (after any
        recovery; a response the recovery hook completed is observed too; a command that
        raised is not). ``data_in`` is the data the command returned (``response.data``,
        or the filled part of the caller's buffer for ``execute_into``). Commands sent
        with ``execute_on`` are not observed. Observers must be quick and must not raise.
        """
        previous = self._observer
        if previous is None:
            self._observer = observer
        else:

            def both(cdb: bytes, data_out: bytes, r: Response, data_in: bytes | memoryview) -> None:
                previous(cdb, data_out, r, data_in)
                observer(cdb, data_out, r, data_in)

            self._observer = both
        self._fast = None  # the fast path is rebuilt with the new observer


class RecoveryHook(Protocol):
    """Decides what happens to a command whose path failed."""

    def on_path_failure(self, device: MultipathDevice, failed: FailedCommand) -> Decision:
        """Return the decision for ``failed`` (may send commands via ``device.execute_on``)."""
        ...


class CommandInDoubtError(PathFailureError):
    """A command that is not safe to repeat met a path failure and may have run.

    Nothing was resent.

    Attributes:
        response: what the failed path returned.
        path: the URL of the failed path.
        opcode: the command's operation code.
        maybe_executed: always True here (otherwise it would have been resent).
    """

    def __init__(self, message: str, *, response: Response, path: str, opcode: int) -> None:
        super().__init__(message, maybe_executed=True)
        self.response = response
        self.path = path
        self.opcode = opcode


class ResendIfSafe:
    """The default hook: resend what is safe, fail the rest with CommandInDoubtError.

    Args:
        safe: the opcodes that may be repeated freely.
        max_attempts: give up (CommandInDoubtError) after this many path failures of
            one command, even for safe ones.
    """

    def __init__(self, safe: frozenset[int] = SAFE_TO_REPEAT, max_attempts: int = 8) -> None:
        self.safe = safe
        self.max_attempts = max_attempts

    def on_path_failure(self, device: MultipathDevice, failed: FailedCommand) -> Decision:
        """Resend when safe or never executed; otherwise fail with CommandInDoubtError."""
        if failed.attempt <= self.max_attempts and (
            failed.opcode in self.safe or not failed.maybe_executed
        ):
            return Resend()
        detail = failed.response.detail
        why = detail.message if detail else failed.response.outcome.value
        return Fail(
            CommandInDoubtError(
                f"{device.name}: command {failed.opcode:02X}h may have run on {failed.path.url} "
                f"before the path failed ({failed.response.outcome.value}: {why}); not resent",
                response=failed.response,
                path=failed.path.url,
                opcode=failed.opcode,
            )
        )
