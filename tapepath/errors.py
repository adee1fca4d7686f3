"""The exception hierarchy of tapepath.

Every error the library raises on purpose derives from :class:`TapepathError`, so an
application can catch the whole family in one clause and the typed subclasses where it
cares. Errors about bad caller arguments (a CDB field that does not fit, an unknown
element address) are plain :class:`ValueError` subclasses as well, so they behave like
the rest of Python.
"""

from __future__ import annotations

__all__ = [
    "AmbiguityError",
    "AmbiguousMoveError",
    "AmbiguousPositionError",
    "AuthenticationError",
    "BeginningOfMediumError",
    "CheckConditionError",
    "ConfigError",
    "DecodeError",
    "DeviceError",
    "DeviceTypeError",
    "ElementAddressError",
    "ElementEmptyError",
    "ElementFullError",
    "EndOfDataError",
    "EndOfMediumError",
    "FilemarkEncountered",
    "IncorrectLengthError",
    "LoginError",
    "MediumNotPresentError",
    "MediumRemovalPreventedError",
    "NoPathError",
    "NotReadyError",
    "PathFailureError",
    "ProtocolError",
    "ReservationConflictError",
    "TapeConditionError",
    "TapepathError",
    "TransportError",
    "TransportUnavailableError",
    "UnknownElementError",
    "UnknownSchemeError",
    "WriteProtectedError",
]


class TapepathError(Exception):
    """Base class of every error tapepath raises on purpose."""


class DecodeError(TapepathError, ValueError):
    """Bytes from a device or the network do not form what they claim to be.

    Raised by every parser in :mod:`tapepath.scsi` and :mod:`tapepath.iscsi` for
    truncated, inconsistent or out-of-range input. Parsers never raise anything else
    for bad bytes and never allocate beyond the buffer they were given.
    """


class ConfigError(TapepathError, ValueError):
    """A configuration file or a policy value is invalid; the message names the key."""


class TransportError(TapepathError):
    """A transport could not be opened or used (as opposed to a failed command)."""


class UnknownSchemeError(TransportError, ValueError):
    """No transport is registered for a URL's scheme."""


class TransportUnavailableError(TransportError):
    """A transport exists but cannot work here (missing dependency, wrong platform)."""


class PathFailureError(TransportError):
    """A path to a device failed (link lost, timed out, device gone).

    The command that met the failure may or may not have reached the device: see
    :attr:`maybe_executed`.
    """

    def __init__(self, message: str, *, maybe_executed: bool = True) -> None:
        super().__init__(message)
        self.maybe_executed = maybe_executed


class ProtocolError(TransportError):
    """The peer broke the wire protocol (iSCSI); the connection is dropped."""


class LoginError(TransportError):
    """An iSCSI login was refused or failed."""


class AuthenticationError(LoginError):
    """Authentication failed: wrong secret, or the peer offered too weak a method."""


class DeviceError(TapepathError):
    """A device answered a command with an error."""


class CheckConditionError(DeviceError):
    """A command ended in CHECK CONDITION; ``sense`` holds the decoded sense data."""

    def __init__(self, message: str, sense: object | None = None) -> None:
        super().__init__(message)
        self.sense = sense


class ReservationConflictError(DeviceError):
    """The device is reserved through another I_T nexus (status 18h)."""


class NoPathError(TapepathError):
    """No usable path to a device is left (after the no-path policy's wait, if any)."""


class AmbiguityError(TapepathError):
    """Recovery could not prove whether an outstanding command took effect.

    Nothing was resent. The attributes say what was seen, so the application or an
    operator can decide.
    """


class AmbiguousPositionError(AmbiguityError):
    """After failover the tape position does not prove whether a command took effect."""


class AmbiguousMoveError(AmbiguityError):
    """After failover the robot state does not prove whether a MOVE MEDIUM took effect."""


class ElementFullError(CheckConditionError):
    """A medium changer refused a move: the destination element is full (3B/0Dh)."""


class ElementEmptyError(CheckConditionError):
    """A medium changer refused a move: the source element is empty (3B/0Eh)."""


class ElementAddressError(CheckConditionError, ValueError):
    """The device does not know an element address (21/01h): a caller mistake."""


class MediumRemovalPreventedError(CheckConditionError):
    """The cartridge cannot leave the drive: removal is prevented (53/02h)."""


class MediumNotPresentError(CheckConditionError):
    """There is no cartridge in the drive (NOT READY 3A/xxh)."""


class NotReadyError(CheckConditionError):
    """The device is not ready and waiting did not help (NOT READY)."""


class WriteProtectedError(CheckConditionError):
    """The device refused to change the medium (DATA PROTECT: write protected, WORM)."""


class DeviceTypeError(TapepathError, ValueError):
    """The paths lead to another kind of device than asked for (a drive for a library)."""


class UnknownElementError(TapepathError, LookupError):
    """No element matches a barcode, an mtx number or a serial number."""


class TapeConditionError(CheckConditionError):
    """A tape command stopped at a tape event rather than failing.

    Attributes:
        residual: the signed INFORMATION residual the drive reported (what was not
            done: blocks, filemarks or bytes, depending on the command), or None.
    """

    def __init__(
        self, message: str, sense: object | None = None, *, residual: int | None = None
    ) -> None:
        super().__init__(message, sense)
        self.residual = residual


class FilemarkEncountered(TapeConditionError):
    """A SPACE over blocks (or a fixed-block READ) stopped at a filemark.

    The tape is positioned after the filemark (before it when spacing backwards).
    """


class EndOfDataError(TapeConditionError):
    """A READ or SPACE reached the end of recorded data (BLANK CHECK)."""


class EndOfMediumError(TapeConditionError):
    """The end of the medium was reached (VOLUME OVERFLOW, or EOM on a read or space)."""


class BeginningOfMediumError(TapeConditionError):
    """A backward SPACE reached the beginning of the partition."""


class IncorrectLengthError(TapeConditionError):
    """A variable-block READ met a record longer than the buffer.

    The tape has moved past the record; the rest of it is lost to this read.

    Attributes:
        data: the bytes that fitted (the start of the record).
        record_length: the record's real length, when the drive said.
    """

    def __init__(
        self,
        message: str,
        sense: object | None = None,
        *,
        residual: int | None = None,
        data: bytes = b"",
        record_length: int | None = None,
    ) -> None:
        super().__init__(message, sense, residual=residual)
        self.data = data
        self.record_length = record_length
