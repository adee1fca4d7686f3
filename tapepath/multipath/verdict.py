"""What a response means for the path it came back on.

The multipath layer needs one answer from a failed command: is this the device's
business (hand the response back to the caller) or the path's (link lost, standby port,
port in transition, path offline, access states changed, a passing transport failure
worth another try on the same path)? :func:`path_verdict` gives it
from the transport outcome and, for a CHECK CONDITION, from the SCSI classifier
(:func:`tapepath.scsi.classify.classify`). It is called only off the hot path (never for
a GOOD status).
"""

from __future__ import annotations

import enum

from tapepath.scsi.classify import UnitAttention, Verdict, classify
from tapepath.transport.base import Response, Status

__all__ = ["PathVerdict", "may_concern_path", "path_verdict"]


class PathVerdict(enum.Enum):
    """The multipath meaning of one response."""

    PASS = "pass"
    """The device's answer (good or not): return it to the caller."""
    PATH_FAILURE = "path_failure"
    """The path is lost (transport failure, LU communication failure); the command may
    have run."""
    RETRY = "retry"
    """The transport failed the command for a passing reason (``detail.retryable``: a
    busy bus, a requeue, a soft error): the path is not blamed and the same path may be
    tried again. Whether the command may have run is ``detail.maybe_executed``; a
    caller that will not retry treats it as PATH_FAILURE."""
    STANDBY = "standby"
    """02/04/0B: the target port is in standby; the command did not run."""
    UNAVAILABLE = "unavailable"
    """02/04/0C: the target port is unavailable; the command did not run."""
    TRANSITIONING = "transitioning"
    """02/04/0A: the access state is changing; retry later, the command did not run."""
    OFFLINE = "offline"
    """02/04/12: the logical unit is offline through this port; the command did not run."""
    STATE_CHANGED = "state_changed"
    """06/2A/06 or 2A/07: asymmetric access states changed; the command did not run."""


_BY_VERDICT = {
    Verdict.PATH_FAILURE: PathVerdict.PATH_FAILURE,
    Verdict.PATH_STANDBY: PathVerdict.STANDBY,
    Verdict.PATH_UNAVAILABLE: PathVerdict.UNAVAILABLE,
    Verdict.PATH_TRANSITIONING: PathVerdict.TRANSITIONING,
    Verdict.PATH_OFFLINE: PathVerdict.OFFLINE,
}


_PATH_ASC = frozenset({0x04, 0x08, 0x2A})
"""ASCs of every sense the multipath layer acts on (NOT READY 04/xx, LU communication
failure 08/xx, 2A/06-07); any other sense is the device's business."""


def may_concern_path(sense: bytes) -> bool:
    """A cheap look at the raw ASC before the full classifier (tape streams meet
    filemark and EOM CHECK CONDITIONs often; they must not pay for a full decode)."""
    if len(sense) < 4:
        return True  # let the classifier decide what short sense means
    code = sense[0] & 0x7F
    if code in (0x70, 0x71):
        return len(sense) < 13 or sense[12] in _PATH_ASC
    if code in (0x72, 0x73):
        return sense[2] in _PATH_ASC
    return True


def path_verdict(response: Response) -> PathVerdict:
    """Say what ``response`` means for its path (see :class:`PathVerdict`)."""
    if response.outcome.is_path_failure:
        detail = response.detail
        if detail is not None and detail.retryable:
            return PathVerdict.RETRY
        return PathVerdict.PATH_FAILURE
    if response.status != Status.CHECK_CONDITION:
        return PathVerdict.PASS
    if not may_concern_path(response.sense):
        return PathVerdict.PASS
    c = classify(response.status, response.sense)
    found = _BY_VERDICT.get(c.verdict)
    if found is not None:
        return found
    if c.unit_attention is UnitAttention.ALUA_STATE_CHANGED:
        return PathVerdict.STATE_CHANGED
    return PathVerdict.PASS
