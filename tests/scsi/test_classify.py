"""The classifier: every verdict, every unit attention kind, responses and the GOOD path."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.scsi.classify import (
    SENSE_RULES,
    STATUS_RULES,
    UA_RULES,
    Classification,
    Rule,
    UnitAttention,
    Verdict,
    classify,
    classify_response,
    rules_markdown,
)
from tapepath.scsi.sense import SenseKey, decode_sense, descriptor_sense, fixed_sense
from tapepath.transport.base import Outcome, Response

CC = 0x02
K = SenseKey
V = Verdict


class TestStatus:
    """Statuses other than CHECK CONDITION."""

    @pytest.mark.parametrize(
        ("status", "verdict", "maybe_executed"),
        [
            (0x00, V.GOOD, True),
            (0x04, V.GOOD, True),
            (0x08, V.RETRY, False),
            (0x18, V.RESERVATION_CONFLICT, False),
            (0x28, V.RETRY, False),
            (0x30, V.RETRY, False),
            (0x40, V.RETRY, True),
        ],
    )
    def test_status_verdicts(self, status: int, verdict: Verdict, maybe_executed: bool) -> None:
        """BUSY, TASK SET FULL, RESERVATION CONFLICT..."""
        c = classify(status)
        assert c.verdict is verdict
        assert c.status == status
        assert c.maybe_executed is maybe_executed
        assert c.sense is None

    def test_unknown_status_is_device_error(self) -> None:
        """A status the standard does not define."""
        assert classify(0x7E).verdict is V.DEVICE_ERROR

    def test_good_does_not_decode(self) -> None:
        """GOOD ignores whatever sense bytes come with it (no decoding at all)."""
        c = classify(0x00, b"\x00garbage")
        assert c.verdict is V.GOOD
        assert c.sense is None
        assert classify(0x00) is classify(0x00, b"\x70\x00\x02")

    def test_check_condition_without_sense(self) -> None:
        """CHECK CONDITION with no or unusable sense: device error, may have run."""
        for sense in (None, b"", b"\x00\x01\x02"):
            c = classify(CC, sense)
            assert c.verdict is V.DEVICE_ERROR
            assert c.maybe_executed
            assert c.sense is None

    @given(st.integers(0, 255), st.binary(max_size=40))
    def test_any_status(self, status: int, raw: bytes) -> None:
        """Every status byte with any sense bytes classifies without an exception."""
        c = classify(status, raw)
        assert c.status == status
        assert (c.verdict is V.GOOD) == (status in (0x00, 0x04, 0x10, 0x14))

    def test_command_terminated_uses_sense(self) -> None:
        """COMMAND TERMINATED (22h, obsolete) is read like CHECK CONDITION."""
        assert classify(0x22, fixed_sense(K.MEDIUM_ERROR, 0x11, 0)).verdict is V.DEVICE_ERROR


SENSE_CASES = [
    # (sense key, asc, ascq, flags, verdict)
    (K.NOT_READY, 0x04, 0x0A, {}, V.PATH_TRANSITIONING),
    (K.NOT_READY, 0x04, 0x0B, {}, V.PATH_STANDBY),
    (K.NOT_READY, 0x04, 0x0C, {}, V.PATH_UNAVAILABLE),
    (K.NOT_READY, 0x04, 0x12, {}, V.PATH_OFFLINE),
    (K.NOT_READY, 0x04, 0x01, {}, V.RETRY),
    (K.NOT_READY, 0x04, 0x07, {}, V.RETRY),
    (K.NOT_READY, 0x04, 0x02, {}, V.MEDIUM_NOT_READY),
    (K.NOT_READY, 0x3A, 0x00, {}, V.MEDIUM_NOT_READY),
    (K.NOT_READY, 0x3A, 0x02, {}, V.MEDIUM_NOT_READY),
    (K.NOT_READY, 0x04, 0x00, {}, V.NOT_READY),
    (K.NOT_READY, 0x04, 0x03, {}, V.NOT_READY),
    (K.NOT_READY, 0x04, 0x18, {}, V.NOT_READY),
    (K.NOT_READY, 0x08, 0x00, {}, V.PATH_FAILURE),
    (K.HARDWARE_ERROR, 0x08, 0x01, {}, V.PATH_FAILURE),
    (K.ABORTED_COMMAND, 0x08, 0x03, {}, V.PATH_FAILURE),
    (K.ABORTED_COMMAND, 0x47, 0x00, {}, V.RETRY),
    (K.ABORTED_COMMAND, 0x00, 0x00, {}, V.RETRY),
    (K.UNIT_ATTENTION, 0x29, 0x00, {}, V.RETRY),
    (K.MEDIUM_ERROR, 0x11, 0x00, {}, V.DEVICE_ERROR),
    (K.MEDIUM_ERROR, 0x0C, 0x00, {"ili": True}, V.DEVICE_ERROR),
    (K.MEDIUM_ERROR, 0x00, 0x02, {"eom": True}, V.TAPE_CONDITION),
    (K.HARDWARE_ERROR, 0x44, 0x00, {}, V.DEVICE_ERROR),
    (K.ILLEGAL_REQUEST, 0x24, 0x00, {}, V.ILLEGAL_REQUEST),
    (K.ILLEGAL_REQUEST, 0x21, 0x01, {}, V.ILLEGAL_REQUEST),
    (K.DATA_PROTECT, 0x27, 0x00, {}, V.DATA_PROTECT),
    (K.BLANK_CHECK, 0x00, 0x05, {}, V.TAPE_CONDITION),
    (K.VOLUME_OVERFLOW, 0x00, 0x02, {"eom": True}, V.TAPE_CONDITION),
    (K.NO_SENSE, 0x00, 0x01, {"filemark": True}, V.TAPE_CONDITION),
    (K.NO_SENSE, 0x00, 0x00, {"ili": True}, V.TAPE_CONDITION),
    (K.NO_SENSE, 0x00, 0x02, {"eom": True}, V.TAPE_CONDITION),
    (K.NO_SENSE, 0x00, 0x04, {}, V.TAPE_CONDITION),
    (K.NO_SENSE, 0x00, 0x07, {}, V.TAPE_CONDITION),
    (K.RECOVERED_ERROR, 0x00, 0x02, {"eom": True}, V.TAPE_CONDITION),
    (K.NO_SENSE, 0x00, 0x00, {}, V.RECOVERED),
    (K.RECOVERED_ERROR, 0x17, 0x01, {}, V.RECOVERED),
    (K.COMPLETED, 0x00, 0x00, {}, V.RECOVERED),
    (K.MISCOMPARE, 0x1D, 0x00, {}, V.MISCOMPARE),
    (K.COPY_ABORTED, 0x0D, 0x00, {}, V.DEVICE_ERROR),
    (K.VENDOR_SPECIFIC, 0x80, 0x00, {}, V.DEVICE_ERROR),
    (K.EQUAL, 0x00, 0x00, {}, V.DEVICE_ERROR),
    (K.MEDIUM_ERROR, 0x0C, 0x00, {"deferred": True}, V.DEFERRED_ERROR),
    (K.UNIT_ATTENTION, 0x29, 0x00, {"deferred": True}, V.DEFERRED_ERROR),
]


class TestSenseVerdicts:
    """CHECK CONDITION: one case per rule family, in both sense formats."""

    @pytest.mark.parametrize(("key", "asc", "ascq", "flags", "verdict"), SENSE_CASES)
    @pytest.mark.parametrize("encoder", [fixed_sense, descriptor_sense])
    def test_verdict(
        self,
        encoder: object,
        key: SenseKey,
        asc: int,
        ascq: int,
        flags: dict[str, bool],
        verdict: Verdict,
    ) -> None:
        """The verdict for a sense key / code / flag combination."""
        raw = encoder(key, asc, ascq, **flags)  # type: ignore[operator]
        c = classify(CC, raw)
        assert c.verdict is verdict
        assert c.sense == decode_sense(raw)

    def test_every_verdict_is_reachable(self) -> None:
        """The cases above (plus statuses and path failures) cover every verdict."""
        seen = {case[-1] for case in SENSE_CASES} | set(STATUS_RULES.values())
        seen.add(V.PATH_FAILURE)
        assert seen == set(Verdict)

    def test_decoded_sense_accepted(self) -> None:
        """A Sense value is used as is."""
        s = decode_sense(fixed_sense(K.NOT_READY, 0x04, 0x0B))
        c = classify(CC, s)
        assert c.sense is s
        assert c.verdict is V.PATH_STANDBY

    def test_rule_flag_checked(self) -> None:
        """A rule can only test the sense flags that exist."""
        with pytest.raises(ValueError, match="flag"):
            Rule(V.RETRY, flag="short_read")

    def test_last_rule_matches_everything(self) -> None:
        """The table ends with a catch-all, so no sense falls through."""
        assert SENSE_RULES[-1] == Rule(V.DEVICE_ERROR)

    @given(st.binary(min_size=1, max_size=64), st.sampled_from([0x02, 0x22]))
    def test_arbitrary_sense_bytes(self, raw: bytes, status: int) -> None:
        """Any bytes give a classification, never an exception."""
        c = classify(status, raw)
        assert isinstance(c, Classification)
        assert isinstance(c.verdict, Verdict)


UA_CASES = [
    (0x29, 0x00, UnitAttention.POWER_ON_RESET, True),
    (0x29, 0x01, UnitAttention.POWER_ON_RESET, True),
    (0x29, 0x02, UnitAttention.POWER_ON_RESET, True),
    (0x29, 0x03, UnitAttention.POWER_ON_RESET, True),
    (0x29, 0x04, UnitAttention.POWER_ON_RESET, True),
    (0x29, 0x07, UnitAttention.NEXUS_LOSS, False),
    (0x2A, 0x03, UnitAttention.RESERVATIONS_PREEMPTED, False),
    (0x2A, 0x04, UnitAttention.RESERVATIONS_RELEASED, False),
    (0x2A, 0x05, UnitAttention.REGISTRATIONS_PREEMPTED, False),
    (0x2A, 0x06, UnitAttention.ALUA_STATE_CHANGED, False),
    (0x2A, 0x07, UnitAttention.ALUA_STATE_CHANGED, False),
    (0x28, 0x00, UnitAttention.MEDIUM_CHANGED, True),
    (0x28, 0x01, UnitAttention.MEDIUM_CHANGED, True),
    (0x3F, 0x0E, UnitAttention.LUNS_CHANGED, False),
    (0x2A, 0x01, UnitAttention.MODE_CHANGED, False),
    (0x29, 0x05, UnitAttention.OTHER, False),
    (0x3F, 0x01, UnitAttention.OTHER, False),
    (0x2A, 0x09, UnitAttention.OTHER, False),
]


class TestUnitAttention:
    """Unit attentions are retried and carry their kind."""

    @pytest.mark.parametrize(("asc", "ascq", "kind", "position_lost"), UA_CASES)
    def test_kind(self, asc: int, ascq: int, kind: UnitAttention, position_lost: bool) -> None:
        """The kind and whether the tape position is lost."""
        c = classify(CC, fixed_sense(K.UNIT_ATTENTION, asc, ascq))
        assert c.verdict is V.RETRY
        assert c.unit_attention is kind
        assert c.position_lost is position_lost
        assert c.retryable
        assert not c.maybe_executed

    def test_every_kind_covered(self) -> None:
        """Every UnitAttention member appears in the cases and in the table (or is OTHER)."""
        assert {case[2] for case in UA_CASES} == set(UnitAttention)
        assert {row[2] for row in UA_RULES} == set(UnitAttention) - {UnitAttention.OTHER}

    def test_not_a_unit_attention(self) -> None:
        """Other sense keys carry no unit attention kind even with the same codes."""
        c = classify(CC, fixed_sense(K.NOT_READY, 0x29, 0x00))
        assert c.unit_attention is None
        assert not c.position_lost


class TestProperties:
    """Convenience properties of Classification."""

    def test_path_problem(self) -> None:
        """Every PATH_* verdict is a path problem; nothing else is."""
        for verdict in Verdict:
            c = Classification(verdict)
            assert c.is_path_problem is verdict.name.startswith("PATH_")

    def test_retryable(self) -> None:
        """RETRY and PATH_TRANSITIONING may be resent on the same path."""
        assert {v for v in Verdict if Classification(v).retryable} == {
            V.RETRY,
            V.PATH_TRANSITIONING,
        }

    def test_ok(self) -> None:
        """GOOD and RECOVERED completed the command."""
        assert {v for v in Verdict if Classification(v).ok} == {V.GOOD, V.RECOVERED}

    def test_str(self) -> None:
        """A one-line account for logs."""
        c = classify(CC, fixed_sense(K.UNIT_ATTENTION, 0x29, 0x07))
        assert str(c) == ("RETRY NEXUS_LOSS (UNIT ATTENTION: I_T nexus loss occurred (29/07))")
        assert str(classify(0x08)) == "RETRY (status 08h)"

    def test_residual_for_ili(self) -> None:
        """A short read: ILI with the signed INFORMATION residual."""
        c = classify(CC, fixed_sense(K.NO_SENSE, information=-100, ili=True))
        assert c.verdict is V.TAPE_CONDITION
        assert c.residual == -100

    def test_residual_for_eom(self) -> None:
        """A write at EOM reports the blocks not written."""
        c = classify(CC, descriptor_sense(K.VOLUME_OVERFLOW, 0, 2, information=3, eom=True))
        assert c.residual == 3

    def test_no_residual_without_flags(self) -> None:
        """INFORMATION without ILI/EOM (a failing LBA, say) is not a residual."""
        c = classify(CC, fixed_sense(K.MEDIUM_ERROR, 0x11, 0, information=1234))
        assert c.residual is None
        assert classify(0).residual is None

    def test_not_run_verdicts(self) -> None:
        """Refused commands did not run; device errors may have."""
        assert not classify(CC, fixed_sense(K.ILLEGAL_REQUEST, 0x24, 0)).maybe_executed
        assert not classify(CC, fixed_sense(K.NOT_READY, 0x04, 0x0B)).maybe_executed
        assert classify(CC, fixed_sense(K.MEDIUM_ERROR, 0x11, 0)).maybe_executed
        assert classify(CC, fixed_sense(K.ABORTED_COMMAND, 0, 0)).maybe_executed
        assert not classify(CC, fixed_sense(K.NOT_READY, 0x04, 0x01)).maybe_executed
        assert not classify(CC, fixed_sense(K.MEDIUM_ERROR, 0x0C, 0, deferred=True)).maybe_executed


class TestClassifyResponse:
    """classify_response maps transport failures and delegates the rest."""

    @pytest.mark.parametrize(
        "outcome", [o for o in Outcome if o is not Outcome.OK], ids=lambda o: o.value
    )
    def test_path_failures(self, outcome: Outcome) -> None:
        """Every failed outcome is PATH_FAILURE, keeping maybe_executed."""
        r = Response.failure(outcome, "cut", maybe_executed=False)
        c = classify_response(r)
        assert c.verdict is V.PATH_FAILURE
        assert c.is_path_problem
        assert not c.maybe_executed
        assert classify_response(Response.failure(outcome, "cut")).maybe_executed

    def test_good_response(self) -> None:
        """A delivered GOOD response."""
        assert classify_response(Response(status=0, data=b"x")).verdict is V.GOOD

    def test_check_condition_response(self) -> None:
        """A delivered CHECK CONDITION uses its sense bytes."""
        r = Response(status=CC, sense=fixed_sense(K.UNIT_ATTENTION, 0x2A, 0x06))
        c = classify_response(r)
        assert c.verdict is V.RETRY
        assert c.unit_attention is UnitAttention.ALUA_STATE_CHANGED


class TestDocs:
    """docs/sense.md shows the classifier's real tables and every verdict and UA kind."""

    doc = Path(__file__).resolve().parents[2] / "docs" / "sense.md"

    def test_tables_embedded(self) -> None:
        """The Markdown tables in the doc are exactly what the code generates."""
        assert rules_markdown() in self.doc.read_text()

    def test_every_verdict_and_kind_documented(self) -> None:
        """Each Verdict and UnitAttention name appears in the doc."""
        text = self.doc.read_text()
        missing = [m.name for m in [*Verdict, *UnitAttention] if f"`{m.name}`" not in text]
        assert not missing
