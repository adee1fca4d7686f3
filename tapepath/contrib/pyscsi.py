"""A pyscsi front end: run python-scsi's commands over any tapepath transport.

``pyscsi.pyscsi.scsi.SCSI(dev)`` accepts the :class:`PyscsiDevice` made here. The device
sends each pyscsi command's CDB and data through a tapepath transport
(or anything with the same ``execute()`` contract, such as a multipath device), copies the
returned data into the command's ``datain`` buffer, and raises pyscsi-style exceptions:

- ``dev.CheckCondition`` (pyscsi's own per-device class, a ``SCSICheckCondition``) for
  CHECK CONDITION, with ``cmd.sense`` set. Its text comes from tapepath's sense decoder,
  so deferred errors, sense key 0Ch and unlisted ASC/ASCQ pairs do not raise KeyError the
  way pyscsi 2.1.0's own ``__str__`` does; the decoded value is ``exc.decoded``.
- ``dev.ReservationConflict`` for status 18h and ``dev.BusyStatus`` for BUSY or TASK SET
  FULL. pyscsi 2.1.0 has no such classes, so they are made here, following pyscsi's
  pattern of exception classes hung on the device class; when an installed pyscsi
  defines them in ``pyscsi.pyscsi.scsi_exception`` those are used as bases.
- :class:`PathFailure` when the transport reports a path failure.

pyscsi is an optional dependency (``tapepath[pyscsi]``); importing this module without it
raises :class:`~tapepath.errors.TransportUnavailableError`.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import structlog

from tapepath.errors import DecodeError, TransportUnavailableError
from tapepath.transport.base import DEFAULT_TIMEOUT, Response, Status

try:
    from pyscsi.pyscsi import scsi_enum_command, scsi_exception
    from pyscsi.pyscsi.scsi_exception import SCSIDeviceCommandExceptionMeta
except ImportError as exc:  # pragma: no cover - pyscsi is installed by the test command
    raise TransportUnavailableError(
        "tapepath.contrib.pyscsi needs pyscsi: pip install 'tapepath[pyscsi]'"
    ) from exc

__all__ = ["BusyStatus", "Executor", "PathFailure", "PyscsiDevice", "ReservationConflict"]

log = structlog.get_logger("tapepath.contrib.pyscsi")


class Executor(Protocol):
    """What the device needs below it: a transport's ``execute`` (and ``close``)."""

    def execute(
        self,
        cdb: bytes,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Response:
        """Send one command."""
        ...

    def close(self) -> None:
        """Release the path(s)."""
        ...


def _base(name: str) -> type[Exception]:
    found = getattr(scsi_exception, name, None)
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return Exception


class ReservationConflict(_base("ReservationConflict")):  # type: ignore[misc]
    """The device answered RESERVATION CONFLICT (status 18h)."""


class BusyStatus(_base("BusyStatus")):  # type: ignore[misc]
    """The device answered BUSY (08h) or TASK SET FULL (28h); try again later.

    Attributes:
        status: the SCSI status byte.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class PathFailure(Exception):
    """The transport could not deliver the command (link lost, timeout, device gone).

    Attributes:
        response: the transport's :class:`~tapepath.transport.base.Response`.
        maybe_executed: the device may have run the command.
    """

    def __init__(self, message: str, response: Response) -> None:
        super().__init__(message)
        self.response = response
        self.maybe_executed = response.detail.maybe_executed if response.detail else True


def _describe(sense: bytes) -> tuple[object | None, str]:
    """Decode sense bytes with tapepath; never raises."""
    from tapepath.scsi.sense import decode_sense  # noqa: PLC0415  (sense owns its module)

    try:
        decoded: Any = decode_sense(sense)
    except (DecodeError, NotImplementedError, ValueError) as exc:
        return None, f"Check Condition: undecodable sense data ({exc}): {sense.hex()}"
    key = getattr(decoded, "sense_key", 0)
    key_name = getattr(key, "name", f"{int(key):X}h")
    text = getattr(decoded, "description", "")
    return decoded, (
        f"Check Condition: {key_name}(0x{int(key):02X}) "
        f"ASC+Q:{text}(0x{decoded.asc:02X}{decoded.ascq:02X})"
    )


class PyscsiDevice(metaclass=SCSIDeviceCommandExceptionMeta):  # type: ignore[metaclass]
    """A device object for ``pyscsi.pyscsi.scsi.SCSI`` over a tapepath transport.

    Args:
        transport: a :class:`~tapepath.transport.base.Transport` or a multipath device.
        timeout: the deadline of each command, seconds.
        close_transport: :meth:`close` closes the transport too.

    Example:
        >>> from pyscsi.pyscsi.scsi import SCSI                       # doctest: +SKIP
        >>> s = SCSI(PyscsiDevice(tapepath.open_transport(url)))      # doctest: +SKIP
        >>> s.inquiry().result["t10_vendor_identification"]           # doctest: +SKIP
    """

    CheckCondition: Any  # made by pyscsi's metaclass
    ReservationConflict = ReservationConflict
    BusyStatus = BusyStatus
    PathFailure = PathFailure

    def __init__(
        self,
        transport: Executor,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        close_transport: bool = True,
    ) -> None:
        self._transport = transport
        self._timeout = timeout
        self._close_transport = close_transport
        self._opcodes: Any = scsi_enum_command.spc
        self._devicetype: int | None = None
        self._lock = threading.Lock()
        self._closed = False

    # -- the pyscsi device contract -----------------------------------------------------

    @property
    def opcodes(self) -> Any:
        """pyscsi's opcode table for the device type (SCSI() sets it after INQUIRY)."""
        return self._opcodes

    @opcodes.setter
    def opcodes(self, value: Any) -> None:
        self._opcodes = value

    @property
    def devicetype(self) -> int | None:
        """The peripheral device type (SCSI() sets it after INQUIRY)."""
        return self._devicetype

    @devicetype.setter
    def devicetype(self, value: int | None) -> None:
        self._devicetype = value

    def execute(self, cmd: Any, en_raw_sense: bool = False) -> None:
        """Run a pyscsi command: send ``cmd.cdb`` and ``cmd.dataout``, fill ``cmd.datain``.

        Args:
            cmd: a pyscsi SCSICommand.
            en_raw_sense: raise CheckCondition without decoding the sense (the raw bytes
                stay in ``cmd.sense`` and ``exc.sense``).

        Raises:
            CheckCondition: status 02h (``cmd.sense`` holds the sense bytes).
            ReservationConflict: status 18h.
            BusyStatus: status 08h or 28h.
            PathFailure: the transport could not deliver the command.
        """
        # pyscsi 2.1.0 keeps the CDB on the class: snapshot it at once.
        cdb = bytes(cmd.cdb)
        data_out = bytes(cmd.dataout) if cmd.dataout else b""
        data_in_len = len(cmd.datain) if cmd.datain is not None else 0
        if data_out and data_in_len:
            raise ValueError("pyscsi command has both datain and dataout buffers")
        r = self._transport.execute(
            cdb, data_out=data_out, data_in_len=data_in_len, timeout=self._timeout
        )
        if r.path_failed:
            log.info("pyscsi_path_failure", opcode=cdb[0], outcome=r.outcome.value)
            raise self.PathFailure(
                f"path failure for opcode {cdb[0]:02X}h: {r.outcome.value}"
                + (f" ({r.detail.message})" if r.detail else ""),
                r,
            )
        if data_in_len:
            buf = bytearray(data_in_len)
            buf[: len(r.data)] = r.data[:data_in_len]
            cmd.datain = buf
        if r.status in (Status.GOOD, Status.CONDITION_MET):
            return
        if r.status == Status.CHECK_CONDITION:
            cmd.sense = bytearray(r.sense)
            raise self.CheckCondition(r.sense, raw=en_raw_sense)
        if r.status == Status.RESERVATION_CONFLICT:
            raise self.ReservationConflict(f"reservation conflict for opcode {cdb[0]:02X}h")
        if r.status in (Status.BUSY, Status.TASK_SET_FULL):
            raise self.BusyStatus(f"status {r.status:02X}h for opcode {cdb[0]:02X}h", r.status)
        raise RuntimeError(f"unexpected SCSI status {r.status:02X}h for opcode {cdb[0]:02X}h")

    def close(self) -> None:
        """Close the transport (when ``close_transport``); a second call does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._close_transport:
            self._transport.close()

    def __enter__(self) -> PyscsiDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PyscsiDevice({self._transport!r})"


class _TapepathCheckCondition(PyscsiDevice.CheckCondition):  # type: ignore[misc]
    """pyscsi's CheckCondition for this device, filled in from tapepath's sense decoder.

    pyscsi 2.1.0's ``SCSICheckCondition`` decodes fixed sense only and its ``__str__``
    looks codes up in dicts, raising KeyError for deferred sense, sense key 0Ch and
    unlisted ASC/ASCQ pairs; this subclass keeps its attributes (``sense``, ``valid``,
    ``response_code``, ``data``, ``asc``, ``ascq``) and never fails to print.

    Attributes:
        decoded: tapepath's :class:`~tapepath.scsi.sense.Sense`, or None (raw mode or
            undecodable bytes).
    """

    def __init__(self, sense: bytes, print_data: bool = False, *, raw: bool = False) -> None:
        decoded, text = (None, f"Check Condition: raw sense {bytes(sense).hex()}")
        if not raw:
            decoded, text = _describe(bytes(sense))
        Exception.__init__(self, text)
        self._text = text
        self.sense = bytes(sense)
        self.valid = sense[0] & 0x80 if sense else 0
        self.response_code = sense[0] & 0x7F if sense else 0
        self.show_data = print_data
        self.decoded = decoded
        self.asc = int(getattr(decoded, "asc", 0))
        self.ascq = int(getattr(decoded, "ascq", 0))
        self.data: dict[str, int] = {}
        if decoded is not None:
            self.data = {
                "sense_key": int(getattr(decoded, "sense_key", 0)),
                "additional_sense_code": self.asc,
                "additional_sense_code_qualifier": self.ascq,
            }

    def __str__(self) -> str:
        return self._text


PyscsiDevice.CheckCondition = _TapepathCheckCondition
