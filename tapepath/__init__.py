"""tapepath: SCSI multipath for tape libraries, in pure Python.

The names most programs need are here: :func:`open_transport` for one path; later
:func:`open_library`, :func:`open_drive` and :func:`discover` for devices with failover.
"""

from tapepath.errors import (
    AmbiguityError,
    AmbiguousMoveError,
    AmbiguousPositionError,
    CheckConditionError,
    DecodeError,
    NoPathError,
    PathFailureError,
    ReservationConflictError,
    TapepathError,
    TransportError,
)
from tapepath.transport import Outcome, Response, Status, Transport, open_transport

__version__ = "0.1.0.dev0"

__all__ = [
    "AmbiguityError",
    "AmbiguousMoveError",
    "AmbiguousPositionError",
    "CheckConditionError",
    "DecodeError",
    "NoPathError",
    "Outcome",
    "PathFailureError",
    "ReservationConflictError",
    "Response",
    "Status",
    "TapepathError",
    "Transport",
    "TransportError",
    "__version__",
    "open_transport",
]
