"""The transport contract: one method that matters, :meth:`Transport.execute`.

A transport is one path to one logical unit. It sends a CDB, moves the data and returns
a :class:`Response`; it never raises for a command that the device failed or for a path
that broke under the command: those come back as values (``status`` and ``outcome``), so
the multipath layer can classify them. It raises only for caller mistakes (ValueError),
for a transport that is closed (:class:`~tapepath.errors.TransportError`), and while
opening.

A transport keeps its own deadline: no call waits longer than the ``timeout`` it was
given, even where the operating system would block for minutes. A command that outlives
its deadline is reported with outcome :attr:`Outcome.TIMED_OUT` and
``detail.maybe_executed=True``: it may still be in flight, and recovery decides.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from attrs import frozen

if TYPE_CHECKING:
    from typing_extensions import Self

    from tapepath.scsi.sense import Sense

__all__ = [
    "DEFAULT_TIMEOUT",
    "FailureDetail",
    "Outcome",
    "Response",
    "Status",
    "Transport",
]

DEFAULT_TIMEOUT = 60.0
"""Seconds a command may take when the caller gives no timeout."""


class Status(enum.IntEnum):
    """SCSI status codes (SAM-5)."""

    GOOD = 0x00
    CHECK_CONDITION = 0x02
    CONDITION_MET = 0x04
    BUSY = 0x08
    RESERVATION_CONFLICT = 0x18
    TASK_SET_FULL = 0x28
    ACA_ACTIVE = 0x30
    TASK_ABORTED = 0x40


class Outcome(enum.Enum):
    """How the transport delivered a command, independent of the SCSI status."""

    OK = "ok"
    """The device answered; look at the status."""
    NO_CONNECT = "no_connect"
    """The path could not be used at all; the command was not sent."""
    LINK_LOST = "link_lost"
    """The connection broke while the command was outstanding."""
    TIMED_OUT = "timed_out"
    """No answer within the caller's deadline; the command may still be in flight."""
    DEVICE_GONE = "device_gone"
    """The device node or logical unit vanished (ENODEV, EIO, ENOENT, LUN gone).

    ENXIO from an offline sg device is :attr:`NO_CONNECT`: the path, not the unit, is down.
    """
    ABORTED = "aborted"
    """The command was aborted (task management, transport reset)."""

    @property
    def is_path_failure(self) -> bool:
        """True for every outcome but OK."""
        return self is not Outcome.OK


@frozen
class FailureDetail:
    """What the layer below said when a path failed, kept for logs and decisions.

    Attributes:
        message: a short human-readable account.
        maybe_executed: False only when the transport knows the command never reached
            the device (for example, the connection was down before it was sent).
        errno: the OS error number, when there was one.
        host_status: Linux SG_IO host_status (DID_*), when known.
        driver_status: Linux SG_IO driver_status, when known.
        win_error: the Windows GetLastError() code, when known.
        retryable: the transport says the failure is passing (a busy bus, a queue to
            be retried, a soft error) and the same path may be tried again; the path
            is not to blame. Whether that is safe for a command that must not run
            twice is ``maybe_executed``'s call: a retryable failure with
            ``maybe_executed=False`` may always be sent again, one with
            ``maybe_executed=True`` only when the command is safe to repeat.
    """

    message: str
    maybe_executed: bool = True
    errno: int | None = None
    host_status: int | None = None
    driver_status: int | None = None
    win_error: int | None = None
    retryable: bool = False


@frozen
class Response:
    """The result of one command on one path.

    Attributes:
        status: the SCSI status byte (meaningful when ``outcome`` is OK).
        data: the bytes the device returned (empty for :meth:`Transport.execute_into`,
            whose data lands in the caller's buffer).
        sense: the raw sense bytes (empty when there were none).
        residual: bytes requested but not transferred (data-in or data-out).
        duration: seconds from submission to completion, as the transport measured it.
        outcome: how the transport delivered the command.
        detail: the low-level account of a path failure (None when ``outcome`` is OK).
        transferred: bytes actually transferred (``len(data)`` for execute()).
            Transports fill it in.
    """

    status: int = Status.GOOD
    data: bytes = b""
    sense: bytes = b""
    residual: int = 0
    duration: float = 0.0
    outcome: Outcome = Outcome.OK
    detail: FailureDetail | None = None
    transferred: int = 0

    @property
    def ok(self) -> bool:
        """True when the path delivered the command and the status is GOOD or CONDITION MET."""
        return self.outcome is Outcome.OK and self.status in (0, 4)

    @property
    def path_failed(self) -> bool:
        """True when the transport, not the device, failed the command."""
        return self.outcome is not Outcome.OK

    @property
    def check_condition(self) -> bool:
        """True when the device answered CHECK CONDITION."""
        return self.outcome is Outcome.OK and self.status == Status.CHECK_CONDITION

    @property
    def sense_data(self) -> Sense | None:
        """The decoded sense data, or None when there is none (decoded on each call)."""
        if not self.sense:
            return None
        from tapepath.scsi.sense import decode_sense  # noqa: PLC0415  (decoded on demand)

        return decode_sense(self.sense)

    @classmethod
    def failure(
        cls,
        outcome: Outcome,
        message: str,
        *,
        maybe_executed: bool = True,
        duration: float = 0.0,
        errno: int | None = None,
        host_status: int | None = None,
        driver_status: int | None = None,
        win_error: int | None = None,
        retryable: bool = False,
    ) -> Response:
        """Build the response for a path failure.

        Args:
            outcome: the kind of failure (not OK).
            message: a short account for logs.
            maybe_executed: whether the device may have run the command.
            duration: seconds spent.
            errno: OS error number, if any.
            host_status: SG_IO host_status, if any.
            driver_status: SG_IO driver_status, if any.
            win_error: Windows error code, if any.
            retryable: the failure is passing; the same path may be tried again
                (see :class:`FailureDetail`).
        """
        if outcome is Outcome.OK:
            raise ValueError("Response.failure needs a failure outcome, not OK")
        return cls(
            status=0,
            duration=duration,
            outcome=outcome,
            detail=FailureDetail(
                message=message,
                maybe_executed=maybe_executed,
                errno=errno,
                host_status=host_status,
                driver_status=driver_status,
                win_error=win_error,
                retryable=retryable,
            ),
            transferred=0,
        )


class Transport(ABC):
    """One path to one logical unit.

    Subclasses implement :meth:`execute` and :meth:`close`, and usually
    :meth:`execute_into` and :meth:`from_url`. Instances are context managers. A transport
    may be used from several threads unless its documentation says otherwise.

    Attributes:
        url: the URL the transport was opened from (secrets removed).
    """

    scheme: ClassVar[str] = ""
    url: str

    @classmethod
    def from_url(cls, url: str) -> Transport:
        """Open a transport from a URL of this transport's scheme.

        Raises:
            ValueError: the URL is malformed.
            TransportError: the transport cannot be opened.
        """
        raise NotImplementedError(f"{cls.__name__} cannot be opened from a URL")

    @abstractmethod
    def execute(
        self,
        cdb: bytes,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Send one command and wait for its completion or its deadline.

        Args:
            cdb: the command descriptor block (6 to 16 bytes, or longer where supported).
            data_out: bytes to send to the device (mutually exclusive with data_in_len).
            data_in_len: how many bytes to accept from the device.
            timeout: seconds before the command is reported as TIMED_OUT.

        Returns:
            The response; a failed path is an outcome, not an exception.
        """

    def execute_into(
        self,
        cdb: bytes,
        buf: bytearray | memoryview,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Like :meth:`execute` for data-in, with the data landing in ``buf``.

        The response's ``data`` is empty; ``transferred`` says how many bytes of ``buf``
        were filled. The default implementation copies once; transports override it to
        read straight into the buffer.
        """
        view = memoryview(buf).cast("B")
        r = self.execute(cdb, data_in_len=len(view), timeout=timeout)
        n = len(r.data)
        view[:n] = r.data
        return Response(
            status=r.status,
            sense=r.sense,
            residual=r.residual,
            duration=r.duration,
            outcome=r.outcome,
            detail=r.detail,
            transferred=n,
        )

    @abstractmethod
    def close(self) -> None:
        """Release the path's resources; idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'url', '?')}>"


def validate_request(cdb: bytes, data_out: bytes, data_in_len: int, timeout: float) -> None:
    """Check the arguments every transport's execute() takes; raise ValueError if wrong."""
    if not 1 <= len(cdb) <= 260:
        raise ValueError(f"cdb must be 1..260 bytes, got {len(cdb)}")
    if data_out and data_in_len:
        raise ValueError("a command moves data in one direction: data_out or data_in_len")
    if data_in_len < 0:
        raise ValueError(f"data_in_len must be >= 0, got {data_in_len}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
