"""What a CHECK CONDITION means for the path it came back on.

The multipath layer needs one answer from a failed command: is this the device's
business (hand the response back to the caller) or the path's (standby port, port in
transition, path offline)? :func:`path_verdict` gives it from the raw sense bytes; it is
called only off the hot path (never for a GOOD status).

Only the codes the multipath layer acts on are read here: everything else is the
device's answer and goes back to the caller untouched, for the SCSI classifier
(:mod:`tapepath.scsi.classify`) and the recovery layer to interpret.
"""

from __future__ import annotations

import enum

from tapepath.transport.base import Response, Status

__all__ = ["PathVerdict", "path_verdict", "sense_triplet"]


class PathVerdict(enum.Enum):
    """The multipath meaning of one response."""

    PASS = "pass"
    """The device's answer (good or not): return it to the caller."""
    PATH_FAILURE = "path_failure"
    """The transport failed: the path is lost; the command may have run."""
    STANDBY = "standby"
    """02/04/0B: the target port is in standby; the command did not run."""
    UNAVAILABLE = "unavailable"
    """02/04/0C: the target port is unavailable; the command did not run."""
    TRANSITIONING = "transitioning"
    """02/04/0A: the access state is changing; retry later, the command did not run."""
    OFFLINE = "offline"
    """02/04/12: the logical unit is offline through this port; the command did not run."""
    STATE_CHANGED = "state_changed"
    """06/2A/06: asymmetric access state changed; the command did not run (unit attention)."""


_NOT_READY = 0x02
_UNIT_ATTENTION = 0x06
_NOT_READY_ASCQ = {
    0x0A: PathVerdict.TRANSITIONING,
    0x0B: PathVerdict.STANDBY,
    0x0C: PathVerdict.UNAVAILABLE,
    0x12: PathVerdict.OFFLINE,
}


def sense_triplet(sense: bytes) -> tuple[int, int, int] | None:
    """Sense key, ASC and ASCQ from fixed (70h/71h) or descriptor (72h/73h) sense.

    Returns None when the bytes are too short or not sense data; never raises.
    """
    if len(sense) < 2:
        return None
    code = sense[0] & 0x7F
    if code in (0x70, 0x71):
        if len(sense) < 14:
            return (sense[2] & 0x0F, 0, 0) if len(sense) >= 3 else None
        return sense[2] & 0x0F, sense[12], sense[13]
    if code in (0x72, 0x73):
        if len(sense) < 4:
            return None
        return sense[1] & 0x0F, sense[2], sense[3]
    return None


def path_verdict(response: Response) -> PathVerdict:
    """Say what ``response`` means for its path (see :class:`PathVerdict`)."""
    if response.outcome.is_path_failure:
        return PathVerdict.PATH_FAILURE
    if response.status != Status.CHECK_CONDITION:
        return PathVerdict.PASS
    triplet = sense_triplet(response.sense)
    if triplet is None:
        return PathVerdict.PASS
    key, asc, ascq = triplet
    if key == _NOT_READY and asc == 0x04:
        return _NOT_READY_ASCQ.get(ascq, PathVerdict.PASS)
    if key == _UNIT_ATTENTION and asc == 0x2A and ascq == 0x06:
        return PathVerdict.STATE_CHANGED
    return PathVerdict.PASS
