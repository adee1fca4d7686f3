"""What a command's outcome means for the multipath layer: one table, one lookup.

:func:`classify` maps a SCSI status and its sense data to a :class:`Classification`:
a :class:`Verdict` (what to do), the kind of unit attention (what to re-read), and the
decoded sense. :func:`classify_response` does the same for a transport
:class:`~tapepath.transport.base.Response`, turning a failed path into
:attr:`Verdict.PATH_FAILURE`.

The rules live in two tables, :data:`STATUS_RULES` (status byte -> verdict) and
:data:`SENSE_RULES` (an ordered list of :class:`Rule`; the first that matches wins).
A GOOD status costs one dict lookup and decodes nothing.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from attrs import Attribute, field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi.sense import Sense, SenseKey, decode_sense

if TYPE_CHECKING:
    from tapepath.transport.base import Response

__all__ = [
    "SENSE_RULES",
    "STATUS_RULES",
    "UA_RULES",
    "Classification",
    "Rule",
    "UnitAttention",
    "Verdict",
    "classify",
    "classify_response",
    "classify_sense",
    "rules_markdown",
]


class Verdict(enum.Enum):
    """What the multipath layer should do with a command's outcome."""

    GOOD = "good"
    """Completed (GOOD or CONDITION MET status)."""
    RECOVERED = "recovered"
    """Completed; the sense is informational (RECOVERED ERROR, NO SENSE, COMPLETED)."""
    RETRY = "retry"
    """Not executed, or harmlessly aborted: send again on the same path (BUSY, TASK SET
    FULL, ABORTED COMMAND, a unit attention, a LU becoming ready)."""
    PATH_FAILURE = "path_failure"
    """The path failed (transport failure, LU communication failure): fail over."""
    PATH_STANDBY = "path_standby"
    """ALUA standby port (02/04/0B): use another path, or activate this one."""
    PATH_UNAVAILABLE = "path_unavailable"
    """ALUA unavailable port (02/04/0C): use another path."""
    PATH_TRANSITIONING = "path_transitioning"
    """ALUA state transition in progress (02/04/0A): retry after a delay."""
    PATH_OFFLINE = "path_offline"
    """The logical unit is offline on this path (02/04/12)."""
    RESERVATION_CONFLICT = "reservation_conflict"
    """Status 18h: another I_T nexus holds the reservation."""
    MEDIUM_NOT_READY = "medium_not_ready"
    """No medium, or the medium needs a load/initialising command (02/3A, 02/04/02)."""
    NOT_READY = "not_ready"
    """Any other NOT READY: the device needs attention (manual intervention, doors open,
    offline robotics...); failing over does not help."""
    DEVICE_ERROR = "device_error"
    """MEDIUM ERROR, HARDWARE ERROR, COPY ABORTED, vendor errors, CHECK CONDITION with no
    usable sense, or an unknown status."""
    ILLEGAL_REQUEST = "illegal_request"
    """The command or its parameters were refused: a caller bug, never retried."""
    TAPE_CONDITION = "tape_condition"
    """A tape event, not a failure: filemark, EOM/early warning, ILI with a residual,
    BLANK CHECK (end of data), VOLUME OVERFLOW."""
    DATA_PROTECT = "data_protect"
    """Write protected, WORM, or access refused by security."""
    MISCOMPARE = "miscompare"
    """A verify or compare found different data."""
    DEFERRED_ERROR = "deferred_error"
    """An earlier command (a buffered write) failed; the position and data written are
    in doubt and recovery must look before anything is resent."""


class UnitAttention(enum.Enum):
    """The kind of unit attention, as recovery needs to interpret it."""

    POWER_ON_RESET = "power_on_reset"
    """29/00-29/04: power on or reset; tape position and mode settings are lost."""
    NEXUS_LOSS = "nexus_loss"
    """29/07: I_T nexus loss; reservations may need moving, position kept."""
    RESERVATIONS_PREEMPTED = "reservations_preempted"
    """2A/03."""
    RESERVATIONS_RELEASED = "reservations_released"
    """2A/04."""
    REGISTRATIONS_PREEMPTED = "registrations_preempted"
    """2A/05."""
    ALUA_STATE_CHANGED = "alua_state_changed"
    """2A/06 (and 2A/07 implicit transition failed): re-read the target port groups."""
    MEDIUM_CHANGED = "medium_changed"
    """28/xx: not ready to ready change, medium may have changed (or an import/export
    element was accessed): inventory and position are stale."""
    LUNS_CHANGED = "luns_changed"
    """3F/0E: reported LUNs data has changed."""
    MODE_CHANGED = "mode_changed"
    """2A/01: mode parameters changed (by another initiator)."""
    OTHER = "other"
    """Any other unit attention."""


_RULE_FLAGS = frozenset({None, "filemark", "eom", "ili", "deferred"})


@frozen
class Rule:
    """One row of :data:`SENSE_RULES`; ``None`` matches anything.

    Attributes:
        verdict: the verdict when the row matches.
        sense_key: the sense key to match.
        asc: the ASC to match.
        ascq: an inclusive (low, high) ASCQ range to match.
        flag: a sense attribute that must be true (``"filemark"``, ``"eom"``, ``"ili"``,
            ``"deferred"``).
    """

    verdict: Verdict
    sense_key: int | None = None
    asc: int | None = None
    ascq: tuple[int, int] | None = None
    flag: str | None = field(default=None)

    @flag.validator
    def _check_flag(self, _attr: Attribute[str | None], value: str | None) -> None:
        if value not in _RULE_FLAGS:
            raise ValueError(f"flag must be one of {sorted(f for f in _RULE_FLAGS if f)}")

    def matches(self, sense: Sense) -> bool:
        """True when every given criterion matches ``sense``."""
        return (
            (self.sense_key is None or sense.sense_key == self.sense_key)
            and (self.asc is None or sense.asc == self.asc)
            and (self.ascq is None or self.ascq[0] <= sense.ascq <= self.ascq[1])
            and (self.flag is None or bool(getattr(sense, self.flag)))
        )


_ANY = (0x00, 0xFF)
K = SenseKey
V = Verdict

STATUS_RULES: dict[int, Verdict] = {
    0x00: V.GOOD,
    0x04: V.GOOD,  # CONDITION MET
    0x08: V.RETRY,  # BUSY
    0x10: V.GOOD,  # INTERMEDIATE (obsolete)
    0x14: V.GOOD,  # INTERMEDIATE-CONDITION MET (obsolete)
    0x18: V.RESERVATION_CONFLICT,
    0x28: V.RETRY,  # TASK SET FULL
    0x30: V.RETRY,  # ACA ACTIVE
    0x40: V.RETRY,  # TASK ABORTED
}
"""Verdicts by status byte; CHECK CONDITION (02h) and COMMAND TERMINATED (22h) go to the
sense rules, any other status is a DEVICE_ERROR."""

SENSE_RULES: tuple[Rule, ...] = (
    # A deferred error reports an earlier command's failure first of all.
    Rule(V.DEFERRED_ERROR, flag="deferred"),
    # NOT READY: ALUA states, then medium, then the rest.
    Rule(V.PATH_TRANSITIONING, K.NOT_READY, 0x04, (0x0A, 0x0A)),
    Rule(V.PATH_STANDBY, K.NOT_READY, 0x04, (0x0B, 0x0B)),
    Rule(V.PATH_UNAVAILABLE, K.NOT_READY, 0x04, (0x0C, 0x0C)),
    Rule(V.PATH_OFFLINE, K.NOT_READY, 0x04, (0x12, 0x12)),
    Rule(V.RETRY, K.NOT_READY, 0x04, (0x01, 0x01)),  # becoming ready
    Rule(V.RETRY, K.NOT_READY, 0x04, (0x07, 0x07)),  # operation in progress
    Rule(V.MEDIUM_NOT_READY, K.NOT_READY, 0x04, (0x02, 0x02)),  # initializing cmd required
    Rule(V.MEDIUM_NOT_READY, K.NOT_READY, 0x3A, _ANY),  # medium not present
    Rule(V.PATH_FAILURE, K.NOT_READY, 0x08, _ANY),  # LU communication failure
    Rule(V.NOT_READY, K.NOT_READY),
    # UNIT ATTENTION: retry (the kind is read from UA_RULES).
    Rule(V.RETRY, K.UNIT_ATTENTION),
    # Path trouble reported through sense.
    Rule(V.PATH_FAILURE, K.HARDWARE_ERROR, 0x08, _ANY),
    Rule(V.PATH_FAILURE, K.ABORTED_COMMAND, 0x08, _ANY),
    Rule(V.RETRY, K.ABORTED_COMMAND),
    # Tape conditions (no error, or an informational one).
    Rule(V.TAPE_CONDITION, K.BLANK_CHECK),
    Rule(V.TAPE_CONDITION, K.VOLUME_OVERFLOW),
    Rule(V.TAPE_CONDITION, K.NO_SENSE, flag="filemark"),
    Rule(V.TAPE_CONDITION, K.NO_SENSE, flag="eom"),
    Rule(V.TAPE_CONDITION, K.NO_SENSE, flag="ili"),
    Rule(V.TAPE_CONDITION, K.NO_SENSE, 0x00, (0x01, 0x05)),  # FM, EOP/M, SM, BOP/M, EOD
    Rule(V.TAPE_CONDITION, K.NO_SENSE, 0x00, (0x07, 0x07)),  # programmable early warning
    Rule(V.TAPE_CONDITION, K.RECOVERED_ERROR, flag="eom"),
    Rule(V.TAPE_CONDITION, K.MEDIUM_ERROR, 0x00, (0x02, 0x02)),  # EOM reached while writing
    Rule(V.RECOVERED, K.NO_SENSE),
    Rule(V.RECOVERED, K.RECOVERED_ERROR),
    Rule(V.RECOVERED, K.COMPLETED),
    Rule(V.DEVICE_ERROR, K.MEDIUM_ERROR),
    Rule(V.DEVICE_ERROR, K.HARDWARE_ERROR),
    Rule(V.ILLEGAL_REQUEST, K.ILLEGAL_REQUEST),
    Rule(V.DATA_PROTECT, K.DATA_PROTECT),
    Rule(V.MISCOMPARE, K.MISCOMPARE),
    Rule(V.DEVICE_ERROR),  # COPY ABORTED, VENDOR SPECIFIC, EQUAL
)
"""The CHECK CONDITION rules, in order; the first match wins (the last matches all)."""

UA_RULES: tuple[tuple[int, tuple[int, int], UnitAttention], ...] = (
    (0x29, (0x00, 0x04), UnitAttention.POWER_ON_RESET),
    (0x29, (0x07, 0x07), UnitAttention.NEXUS_LOSS),
    (0x2A, (0x01, 0x01), UnitAttention.MODE_CHANGED),
    (0x2A, (0x03, 0x03), UnitAttention.RESERVATIONS_PREEMPTED),
    (0x2A, (0x04, 0x04), UnitAttention.RESERVATIONS_RELEASED),
    (0x2A, (0x05, 0x05), UnitAttention.REGISTRATIONS_PREEMPTED),
    (0x2A, (0x06, 0x07), UnitAttention.ALUA_STATE_CHANGED),
    (0x28, _ANY, UnitAttention.MEDIUM_CHANGED),
    (0x3F, (0x0E, 0x0E), UnitAttention.LUNS_CHANGED),
)
"""UNIT ATTENTION kinds by (ASC, ASCQ range); anything else is OTHER."""

_POSITION_LOST = frozenset({UnitAttention.POWER_ON_RESET, UnitAttention.MEDIUM_CHANGED})
_PATH_VERDICTS = frozenset(
    {V.PATH_FAILURE, V.PATH_STANDBY, V.PATH_UNAVAILABLE, V.PATH_TRANSITIONING, V.PATH_OFFLINE}
)
_RETRYABLE = frozenset({V.RETRY, V.PATH_TRANSITIONING})


@frozen
class Classification:
    """The meaning of one command's outcome.

    Attributes:
        verdict: what to do (see :class:`Verdict`).
        status: the SCSI status byte (0 for a path failure).
        sense: the decoded sense data, or None (GOOD, no sense, undecodable sense).
        unit_attention: the kind of unit attention, when the sense key is UNIT ATTENTION.
        maybe_executed: False only when the outcome proves the command was not
            performed: BUSY, RESERVATION CONFLICT, TASK SET FULL, ACA ACTIVE; sense key
            NOT READY (which includes the ALUA path states), UNIT ATTENTION or ILLEGAL
            REQUEST; a deferred error; a path failure the transport says never reached
            the device.
    """

    verdict: Verdict
    status: int = 0
    sense: Sense | None = None
    unit_attention: UnitAttention | None = None
    maybe_executed: bool = True

    @property
    def retryable(self) -> bool:
        """True when sending the command again on the same path is the remedy."""
        return self.verdict in _RETRYABLE

    @property
    def is_path_problem(self) -> bool:
        """True for every PATH_* verdict: another path may succeed."""
        return self.verdict in _PATH_VERDICTS

    @property
    def position_lost(self) -> bool:
        """True when a tape's position (or a changer's inventory) can no longer be trusted."""
        return self.unit_attention in _POSITION_LOST

    @property
    def residual(self) -> int | None:
        """The signed INFORMATION residual of a tape condition with ILI or EOM, else None."""
        if self.sense is None or not (self.sense.ili or self.sense.eom):
            return None
        return self.sense.residual

    @property
    def ok(self) -> bool:
        """True when the command completed (GOOD or RECOVERED)."""
        return self.verdict in (V.GOOD, V.RECOVERED)

    def __str__(self) -> str:
        parts = [self.verdict.name]
        if self.unit_attention is not None:
            parts.append(self.unit_attention.name)
        if self.sense is not None:
            parts.append(f"({self.sense})")
        elif self.verdict is not V.PATH_FAILURE:
            parts.append(f"(status {self.status:02X}h)")
        return " ".join(parts)


# Sense keys with which the command was not performed (SPC-5: NOT READY, UNIT ATTENTION
# and ILLEGAL REQUEST are reported instead of executing it), and deferred errors (the
# CHECK CONDITION reports an earlier command; the current one was not performed).
_NOT_RUN_KEYS = frozenset({K.NOT_READY, K.UNIT_ATTENTION, K.ILLEGAL_REQUEST})
_NOT_RUN_STATUS = frozenset({0x08, 0x18, 0x28, 0x30})
# One prebuilt value per status of STATUS_RULES: GOOD costs a dict lookup.
_BY_STATUS = {
    s: Classification(v, s, maybe_executed=s not in _NOT_RUN_STATUS)
    for s, v in STATUS_RULES.items()
}


# SENSE_RULES narrowed to the rules that can match each sense key (same order).
_RULES_BY_KEY = {
    key: tuple(r for r in SENSE_RULES if r.sense_key is None or r.sense_key == key)
    for key in range(16)
}


def _unit_attention(sense: Sense) -> UnitAttention:
    for asc, (low, high), kind in UA_RULES:
        if sense.asc == asc and low <= sense.ascq <= high:
            return kind
    return UnitAttention.OTHER


def classify_sense(status: int, sense: Sense) -> Classification:
    """Apply :data:`SENSE_RULES` to decoded sense data."""
    for rule in _RULES_BY_KEY[sense.sense_key]:
        if rule.matches(sense):
            verdict = rule.verdict
            break
    else:  # pragma: no cover - the last rule matches everything
        verdict = V.DEVICE_ERROR
    ua = _unit_attention(sense) if sense.sense_key == K.UNIT_ATTENTION else None
    not_run = sense.deferred or sense.sense_key in _NOT_RUN_KEYS
    return Classification(verdict, status, sense, ua, maybe_executed=not not_run)


def classify(status: int, sense: Sense | bytes | None = None) -> Classification:
    """Classify a SCSI status and its sense data.

    Args:
        status: the SCSI status byte.
        sense: the raw sense bytes, a decoded :class:`Sense`, or None. It is only
            looked at (and only decoded) for CHECK CONDITION and COMMAND TERMINATED.

    Returns:
        The :class:`Classification`. CHECK CONDITION without usable sense data is a
        DEVICE_ERROR (whether the command ran is unknown).
    """
    fixed = _BY_STATUS.get(status)
    if fixed is not None:
        return fixed
    if status not in (0x02, 0x22):
        return Classification(V.DEVICE_ERROR, status)
    if isinstance(sense, Sense):
        return classify_sense(status, sense)
    if not sense:
        return Classification(V.DEVICE_ERROR, status)
    try:
        decoded = decode_sense(sense)
    except DecodeError:
        return Classification(V.DEVICE_ERROR, status)
    return classify_sense(status, decoded)


def classify_response(response: Response) -> Classification:
    """Classify a transport response: a failed path is PATH_FAILURE, else :func:`classify`.

    For a path failure ``maybe_executed`` comes from the transport's failure detail.
    """
    if response.outcome.is_path_failure:
        detail = response.detail
        maybe = True if detail is None else detail.maybe_executed
        return Classification(V.PATH_FAILURE, 0, maybe_executed=maybe)
    return classify(response.status, response.sense)


def _fmt_rule(rule: Rule) -> tuple[str, str, str]:
    key = SenseKey(rule.sense_key).label if rule.sense_key is not None else "any"
    if rule.asc is None:
        code = "any"
    elif rule.ascq is None or rule.ascq == _ANY:
        code = f"{rule.asc:02X}/xx"
    elif rule.ascq[0] == rule.ascq[1]:
        code = f"{rule.asc:02X}/{rule.ascq[0]:02X}"
    else:
        code = f"{rule.asc:02X}/{rule.ascq[0]:02X}-{rule.ascq[1]:02X}"
    return key, code, rule.flag or ""


def rules_markdown() -> str:
    """The classifier's tables as Markdown (docs/sense.md embeds this text verbatim)."""
    out = ["| status | verdict |", "| --- | --- |"]
    out += [f"| {s:02X}h | {v.name} |" for s, v in STATUS_RULES.items()]
    out += ["", "| # | sense key | ASC/ASCQ | flag | verdict |", "| --- | --- | --- | --- | --- |"]
    for n, rule in enumerate(SENSE_RULES, 1):
        key, code, flag = _fmt_rule(rule)
        out.append(f"| {n} | {key} | {code} | {flag} | {rule.verdict.name} |")
    out += ["", "| ASC/ASCQ | unit attention |", "| --- | --- |"]
    for asc, (low, high), kind in UA_RULES:
        code = (
            f"{asc:02X}/xx"
            if (low, high) == _ANY
            else f"{asc:02X}/{low:02X}" + (f"-{high:02X}" if high != low else "")
        )
        out.append(f"| {code} | {kind.name} |")
    out.append("| anything else | OTHER |")
    return "\n".join(out) + "\n"
