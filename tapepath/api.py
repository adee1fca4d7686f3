"""The application API: open a library or a drive by its paths, with failover.

:func:`open_library` and :func:`open_drive` put every path of one device behind a
:class:`~tapepath.multipath.MultipathDevice` with the recovery hook of its kind (the
tape or changer recovery of :mod:`tapepath.recovery` when it is installed) and return a
:class:`~tapepath.library.Library` or a :class:`~tapepath.drive.TapeDrive`.
:class:`DeviceHandle` is what both share: one command runner that passes over unit
attentions, retries what the device asks to retry (BUSY, becoming ready) and turns
every other failure into a typed error of :mod:`tapepath.errors`.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import structlog

from tapepath.errors import (
    BeginningOfMediumError,
    CheckConditionError,
    DeviceError,
    DeviceTypeError,
    ElementAddressError,
    ElementEmptyError,
    ElementFullError,
    EndOfDataError,
    EndOfMediumError,
    MediumNotPresentError,
    MediumRemovalPreventedError,
    NotReadyError,
    PathFailureError,
    ReservationConflictError,
    TapepathError,
    WriteProtectedError,
)
from tapepath.multipath.config import Config, load_config
from tapepath.multipath.device import MultipathDevice
from tapepath.multipath.discovery import discover
from tapepath.multipath.hooks import RecoveryHook
from tapepath.multipath.lazy import open_or_defer
from tapepath.multipath.monitor import PathMonitor
from tapepath.multipath.path import Path
from tapepath.multipath.policy import MultipathPolicy
from tapepath.scsi.classify import Classification, UnitAttention, Verdict, classify_response
from tapepath.scsi.sense import SenseKey
from tapepath.transport.base import Response, Transport
from tapepath.transport.registry import open_transport

if TYPE_CHECKING:
    from typing_extensions import Self

    from tapepath.drive import TapeDrive
    from tapepath.library import Library

__all__ = [
    "DEFAULT_TIMEOUT",
    "DeviceHandle",
    "default_recovery",
    "discover",
    "error_for",
    "open_drive",
    "open_library",
    "open_multipath",
    "split_paths",
]

log = structlog.get_logger("tapepath.api")

#: Seconds a command may take unless the operation says otherwise.
DEFAULT_TIMEOUT = 60.0
#: Unit attentions passed over before one command is given up (a device can queue many).
_MAX_UNIT_ATTENTIONS = 16
#: Retries of BUSY, TASK SET FULL, ABORTED COMMAND and "becoming ready", within the
#: command's timeout; the wait doubles from the first value up to the last.
_RETRY_FIRST_DELAY = 0.01
_RETRY_MAX_DELAY = 0.5


def split_paths(paths_or_alias: str | Sequence[str]) -> str | list[str]:
    """Normalise what the open functions accept.

    Args:
        paths_or_alias: a list of URLs, one URL, a comma-separated string of URLs, or an
            alias of the configuration file (a string without ``://``).

    Returns:
        The list of URLs, or the alias unchanged.

    Raises:
        ValueError: an empty list or string.
    """
    if isinstance(paths_or_alias, str):
        text = paths_or_alias.strip()
        if not text:
            raise ValueError("no paths given (an empty string)")
        if "://" not in text:
            return text
        urls = [u.strip() for u in text.split(",") if u.strip()]
    else:
        urls = [str(u).strip() for u in paths_or_alias]
    if not urls or not all(urls):
        raise ValueError("no paths given (an empty list or an empty URL)")
    return urls


def default_recovery(kind: str) -> RecoveryHook | None:
    """A new recovery hook of :mod:`tapepath.recovery` for ``kind``, if it is installed.

    Args:
        kind: ``"changer"`` (:class:`~tapepath.recovery.ChangerRecovery`) or ``"tape"``
            (:class:`~tapepath.recovery.TapeRecovery`).

    Returns:
        The hook, or None when :mod:`tapepath.recovery` is not there (the multipath
        default then applies: only commands safe to repeat are resent).
    """
    try:
        recovery = importlib.import_module("tapepath.recovery")
    except ImportError:
        return None
    name = "ChangerRecovery" if kind == "changer" else "TapeRecovery"
    factory = getattr(recovery, name, None)
    return None if factory is None else cast("RecoveryHook", factory())


def open_multipath(
    paths_or_alias: str | Sequence[str],
    *,
    kind: str,
    config: Config | None = None,
    monitor: PathMonitor | bool | None = True,
    recovery: RecoveryHook | None = None,
    handler: str | None = None,
    **policy: Any,
) -> MultipathDevice:
    """Open one multipath device from URLs or a configuration alias.

    Args:
        paths_or_alias: see :func:`split_paths`.
        kind: ``"changer"`` or ``"tape"``: which recovery hook to use by default.
        config: the configuration for aliases and defaults (default: the default file,
            read only when an alias is given).
        monitor: True for the shared path monitor, a monitor of your own, or False.
        recovery: the recovery hook (default: :mod:`tapepath.recovery`'s for ``kind``,
            else the multipath layer's default, which resends only safe commands).
        handler: the activation handler name (default: the configured one, else chosen
            by INQUIRY).
        **policy: flat multipath settings (``no_path=30``, ``checker="tur"``, ...).

    Raises:
        ConfigError: an unknown alias or setting.
        ValueError: no paths.
    """
    spec = split_paths(paths_or_alias)
    device_type: int | None = None
    if isinstance(spec, str):
        cfg = config if config is not None else load_config()
        dc = cfg.device(spec)
        urls: Sequence[str] = dc.paths
        base = dc.policy
        handler = handler or dc.handler
        device_type = dc.device_type
        name = spec
    else:
        urls = spec
        base = config.defaults if config is not None else MultipathPolicy()
        name = urls[0]
    pol = base.updated(**policy) if policy else base
    hook = recovery if recovery is not None else default_recovery(kind)
    transports = [open_or_defer(u, open_transport)[0] for u in urls]
    timing = _virtual_time(transports)
    return MultipathDevice(
        transports,
        name=name,
        device_type=device_type,
        policy=pol,
        handler=handler or "auto",
        recovery=hook,
        monitor=monitor,
        **timing,
    )


def _virtual_time(transports: Sequence[Transport]) -> dict[str, Any]:
    """The clock and wait of a virtual library the paths lead to, when it runs on a
    virtual clock (so the device's waits move that clock instead of taking wall time);
    empty for real devices and for a virtual library on real time.

    A virtual clock is one a test moves: it has ``advance()`` besides ``now()`` and
    ``sleep()`` (:class:`tapepath.testing.VirtualClock`; the real one has not)."""
    for t in transports:
        clock = getattr(getattr(t, "library", None), "clock", None)
        if not callable(getattr(clock, "advance", None)):
            continue
        now, sleep = getattr(clock, "now", None), getattr(clock, "sleep", None)
        if callable(now) and callable(sleep):
            return {"clock": now, "sleep": sleep}
    return {}


def open_library(
    paths_or_alias: str | Sequence[str],
    *,
    config: Config | None = None,
    monitor: PathMonitor | bool | None = True,
    recovery: RecoveryHook | None = None,
    handler: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    move_timeout: float = 300.0,
    page_bytes: int = 0xFFFF,
    **policy: Any,
) -> Library:
    """Open a tape library's medium changer through all its control paths.

    Args:
        paths_or_alias: the changer's path URLs (a list or a comma-separated string),
            or an alias of the configuration file.
        config: the configuration (aliases and default settings).
        monitor: True for the shared path monitor, your own, or False for none.
        recovery: the recovery hook (default: :class:`tapepath.recovery.ChangerRecovery`
            when installed).
        handler: the activation handler of passive paths (``"alua"``, ``"passive"``,
            ``"none"``; default: the configured one, else chosen by INQUIRY).
        timeout: seconds for ordinary commands.
        move_timeout: seconds for MOVE MEDIUM and EXCHANGE MEDIUM (mtx: 5 minutes).
        page_bytes: the allocation length of each READ ELEMENT STATUS.
        **policy: flat multipath settings (``no_path=30``, ``failback="manual"``, ...).

    Returns:
        The :class:`~tapepath.library.Library`; close it (or use ``with``).
    """
    from tapepath.library import Library  # noqa: PLC0415  (library imports this module)

    dev = open_multipath(
        paths_or_alias,
        kind="changer",
        config=config,
        monitor=monitor,
        recovery=recovery,
        handler=handler,
        **policy,
    )
    try:
        _check_type(dev, 8, "a medium changer")
        return Library(dev, timeout=timeout, move_timeout=move_timeout, page_bytes=page_bytes)
    except BaseException:
        dev.close()
        raise


def open_drive(
    paths_or_alias: str | Sequence[str],
    *,
    config: Config | None = None,
    monitor: PathMonitor | bool | None = True,
    recovery: RecoveryHook | None = None,
    handler: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    long_timeout: float = 3600.0,
    reservation_key: int | None = None,
    **policy: Any,
) -> TapeDrive:
    """Open a tape drive through all its ports.

    Args:
        paths_or_alias: the drive's path URLs (a list or a comma-separated string), or
            an alias of the configuration file.
        config: the configuration (aliases and default settings).
        monitor: True for the shared path monitor, your own, or False for none.
        recovery: the recovery hook (default: :class:`tapepath.recovery.TapeRecovery`
            when installed).
        handler: the activation handler of passive paths (default: as configured, else
            chosen by INQUIRY).
        timeout: seconds for reads, writes and other short commands.
        long_timeout: seconds for REWIND, SPACE, LOCATE, LOAD/UNLOAD.
        reservation_key: the application's persistent reservation key for
            :meth:`~tapepath.drive.TapeDrive.reserve` (non-zero, 64 bits).
        **policy: flat multipath settings.

    Returns:
        The :class:`~tapepath.drive.TapeDrive`; close it (or use ``with``).
    """
    from tapepath.drive import TapeDrive  # noqa: PLC0415  (drive imports this module)

    dev = open_multipath(
        paths_or_alias,
        kind="tape",
        config=config,
        monitor=monitor,
        recovery=recovery,
        handler=handler,
        **policy,
    )
    try:
        _check_type(dev, 1, "a tape drive")
        return TapeDrive(
            dev, timeout=timeout, long_timeout=long_timeout, reservation_key=reservation_key
        )
    except BaseException:
        dev.close()
        raise


_TYPE_NAMES = {0: "a disk", 1: "a tape drive", 5: "a CD/DVD drive", 8: "a medium changer"}


def _check_type(dev: MultipathDevice, wanted: int, name: str) -> None:
    """Refuse a device that INQUIRY identified as another type (unknown types pass)."""
    found = dev.device_type
    if found is not None and found != wanted:
        what = _TYPE_NAMES.get(found, f"peripheral device type {found:#x}")
        raise DeviceTypeError(f"{dev.name}: the device is {what}, not {name}")


def error_for(c: Classification, what: str) -> TapepathError:
    """The typed error for a failed command.

    Args:
        c: the classification of the command's response (not GOOD).
        what: the command in words, for the message (``"MOVE MEDIUM 0x1000 -> 0x100"``).

    Returns:
        The error to raise: :class:`ReservationConflictError` for status 18h; for a
        CHECK CONDITION a :class:`CheckConditionError` subclass chosen by sense key,
        ASC and ASCQ, carrying the decoded sense; :class:`DeviceError` for any other
        status.
    """
    if c.verdict is Verdict.RESERVATION_CONFLICT:
        return ReservationConflictError(
            f"{what}: reservation conflict (the device is reserved through another path "
            "or initiator)"
        )
    sense = c.sense
    if sense is None:
        return DeviceError(f"{what}: failed with status {c.status:02X}h and no sense data")
    text = f"{what}: {sense}"
    key, pair = sense.sense_key, (sense.asc, sense.ascq)
    residual = sense.residual
    if pair == (0x3B, 0x0D):
        return ElementFullError(text, sense)
    if pair == (0x3B, 0x0E):
        return ElementEmptyError(text, sense)
    if pair == (0x21, 0x01):
        return ElementAddressError(text, sense)
    if pair == (0x53, 0x02):
        return MediumRemovalPreventedError(text, sense)
    if sense.asc == 0x3A:
        return MediumNotPresentError(text, sense)
    if key == SenseKey.BLANK_CHECK:
        return EndOfDataError(text, sense, residual=residual)
    if (
        key == SenseKey.VOLUME_OVERFLOW
        or pair == (0x00, 0x02)
        or (sense.eom and key == SenseKey.MEDIUM_ERROR)
    ):
        return EndOfMediumError(text, sense, residual=residual)
    if pair == (0x00, 0x04):
        return BeginningOfMediumError(text, sense, residual=residual)
    if key == SenseKey.DATA_PROTECT:
        return WriteProtectedError(text, sense)
    if key == SenseKey.NOT_READY:
        return NotReadyError(text, sense)
    return CheckConditionError(text, sense)


class DeviceHandle:
    """What :class:`~tapepath.library.Library` and :class:`~tapepath.drive.TapeDrive`
    share: a device, a lock, a command runner, ``paths``, ``close()`` and ``with``.

    Retry waits (BUSY, becoming ready) use the device's clock and wait when it is a
    :class:`~tapepath.multipath.MultipathDevice` (a virtual clock makes them free),
    else :func:`time.monotonic` and :func:`time.sleep`.

    Args:
        device: the device: a :class:`~tapepath.multipath.MultipathDevice`, or any
            transport (one path, a mock).
        timeout: seconds for ordinary commands.
    """

    def __init__(self, device: Transport, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.device = device
        self.timeout = timeout
        self._lock = threading.RLock()
        self._closed = False
        self.unit_attentions: list[UnitAttention] = []
        """Kinds of the unit attentions passed over, oldest first (the last 64)."""
        if isinstance(device, MultipathDevice):
            self._clock: Callable[[], float] = device.clock
            self._sleep: Callable[[float], None] = device.wait
        else:
            self._clock = time.monotonic
            self._sleep = time.sleep

    @property
    def paths(self) -> tuple[Path, ...]:
        """The device's paths with their states, best priority first (empty for a
        single transport)."""
        paths = getattr(self.device, "paths", ())
        return tuple(paths)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def close(self) -> None:
        """Close the device and all its paths; idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.device.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _on_unit_attention(self, kind: UnitAttention) -> None:
        """Called for each unit attention passed over; subclasses drop stale state."""

    def _run(
        self,
        cdb: bytes,
        what: str,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float | None = None,
        into: bytearray | memoryview | None = None,
        conditions: bool = False,
        repeatable: bool = True,
    ) -> Response:
        """Send one command until it completes; raise a typed error when it fails.

        Args:
            cdb: the command.
            what: the command in words, for error messages.
            data_out: data to send.
            data_in_len: bytes to accept.
            timeout: seconds (default: the handle's); retries stay within it.
            into: a buffer to read into (``execute_into``), instead of ``data_in_len``.
            conditions: return tape conditions (filemark, EOM, ILI, BLANK CHECK, VOLUME
                OVERFLOW) instead of raising, for the caller to interpret.
            repeatable: sending the command twice does no harm. When False, an answer
                after which the command may have run (ABORTED COMMAND) raises instead of
                being retried; BUSY, TASK SET FULL and NOT READY are still retried.

        Returns:
            The response: GOOD, recovered, or (with ``conditions``) a tape condition.

        Raises:
            TapepathError: a typed error (see :func:`error_for`), NoPathError,
                AmbiguityError from recovery, PathFailureError.
        """
        if self._closed:
            raise TapepathError(f"{what}: the device is closed")
        limit = self.timeout if timeout is None else timeout
        deadline = self._clock() + limit
        delay = _RETRY_FIRST_DELAY
        attentions = 0
        while True:
            if into is not None:
                r = self.device.execute_into(cdb, into, timeout=limit)
            else:
                r = self.device.execute(
                    cdb, data_out=data_out, data_in_len=data_in_len, timeout=limit
                )
            if r.ok:
                return r
            if r.path_failed:
                detail = r.detail
                raise PathFailureError(
                    f"{what}: {detail.message if detail else r.outcome.name}",
                    maybe_executed=detail.maybe_executed if detail else True,
                )
            c = classify_response(r)
            if c.ok:
                return r
            if c.unit_attention is not None:
                attentions += 1
                self._note_unit_attention(c.unit_attention, what)
                if attentions <= _MAX_UNIT_ATTENTIONS:
                    continue
            elif c.verdict is Verdict.TAPE_CONDITION and conditions:
                return r
            elif c.verdict is Verdict.RETRY and (repeatable or not c.maybe_executed):
                left = deadline - self._clock()
                if left > 0:
                    self._sleep(min(delay, left))
                    delay = min(delay * 2, _RETRY_MAX_DELAY)
                    continue
            raise error_for(c, what)

    def _note_unit_attention(self, kind: UnitAttention, what: str) -> None:
        log.info(
            "unit_attention", device=getattr(self.device, "name", ""), kind=kind.value, command=what
        )
        self.unit_attentions.append(kind)
        del self.unit_attentions[:-64]
        self._on_unit_attention(kind)
