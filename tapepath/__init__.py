"""tapepath: SCSI multipath for tape libraries, in pure Python.

The names most programs need are here: :func:`open_transport` for one path;
:func:`open_library`, :func:`open_drive` and :func:`discover` for devices with failover;
the values they return (:class:`Library`, :class:`Inventory`, :class:`Element`,
:class:`TapeDrive`, :class:`TapePosition`) and the typed errors.
"""

from tapepath.api import discover, open_drive, open_library
from tapepath.drive import TapeDrive, TapePosition
from tapepath.errors import (
    AmbiguityError,
    AmbiguousMoveError,
    AmbiguousPositionError,
    BeginningOfMediumError,
    CheckConditionError,
    DecodeError,
    DeviceError,
    DeviceTypeError,
    ElementAddressError,
    ElementEmptyError,
    ElementFullError,
    EndOfDataError,
    EndOfMediumError,
    FilemarkEncountered,
    IncorrectLengthError,
    MediumNotPresentError,
    MediumRemovalPreventedError,
    NoPathError,
    NotReadyError,
    PathFailureError,
    ReservationConflictError,
    TapeConditionError,
    TapepathError,
    TransportError,
    UnknownElementError,
    WriteProtectedError,
)
from tapepath.inventory import Element, ElementKind, Inventory
from tapepath.library import Library
from tapepath.transport import Outcome, Response, Status, Transport, open_transport

__version__ = "0.1.0.dev0"

__all__ = [
    "AmbiguityError",
    "AmbiguousMoveError",
    "AmbiguousPositionError",
    "BeginningOfMediumError",
    "CheckConditionError",
    "DecodeError",
    "DeviceError",
    "DeviceTypeError",
    "Element",
    "ElementAddressError",
    "ElementEmptyError",
    "ElementFullError",
    "ElementKind",
    "EndOfDataError",
    "EndOfMediumError",
    "FilemarkEncountered",
    "IncorrectLengthError",
    "Inventory",
    "Library",
    "MediumNotPresentError",
    "MediumRemovalPreventedError",
    "NoPathError",
    "NotReadyError",
    "Outcome",
    "PathFailureError",
    "ReservationConflictError",
    "Response",
    "Status",
    "TapeConditionError",
    "TapeDrive",
    "TapePosition",
    "TapepathError",
    "Transport",
    "TransportError",
    "UnknownElementError",
    "WriteProtectedError",
    "__version__",
    "discover",
    "open_drive",
    "open_library",
    "open_transport",
]
