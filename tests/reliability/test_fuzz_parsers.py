"""Fuzz entry points: every parser the reliability issue names has a hypothesis test.

Most live beside their codecs; :data:`FUZZ_TARGETS` names them (``fuzz/run.py`` runs
them all with the ``long`` profile), and the tests here fill the gaps: login key
negotiation on arbitrary answers, sequences of hostile target PDUs against a live
session, and the classification of arbitrary status and sense bytes.
"""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError, ProtocolError
from tapepath.iscsi.pdu import BHS_LEN, NO_TAG, Pdu, decode_header, encode_pdu
from tapepath.iscsi.session import SessionCore
from tapepath.iscsi.text import Params, negotiate, offer_keys
from tapepath.scsi.classify import Classification, classify_response
from tapepath.transport.base import Response

FUZZ_TARGETS: dict[str, list[str]] = {
    "iSCSI PDU decoder": [
        "tests/iscsi/test_pdu.py::TestHostile::test_arbitrary_bytes_decode",
        "tests/iscsi/test_pdu.py::TestHostile::test_arbitrary_stream",
        "tests/iscsi/test_session.py::TestHostileStream::test_random_target_pdu",
        "tests/reliability/test_fuzz_parsers.py::TestSessionSequences::test_sequence",
        "tests/iscsi/test_reject.py::TestHostileRejects::test_random_reject",
    ],
    "login text negotiation": [
        "tests/iscsi/test_text_chap.py::TestText::test_arbitrary_bytes",
        "tests/iscsi/test_fuzz.py::TestFuzz::test_login_responses",
        "tests/iscsi/test_fuzz.py::TestFuzz::test_login_plausible_keys",
        "tests/iscsi/test_fuzz.py::TestFuzz::test_binary_values",
        "tests/reliability/test_fuzz_parsers.py::TestNegotiate::test_arbitrary_answers",
    ],
    "sense": [
        "tests/scsi/test_sense_encoders.py::TestArbitraryBytes::test_anything",
        "tests/scsi/test_sense_encoders.py::TestArbitraryBytes::test_valid_response_codes",
        "tests/reliability/test_fuzz_parsers.py::TestClassify::test_arbitrary_status_and_sense",
    ],
    "INQUIRY/VPD": ["tests/scsi/test_fuzz_spc.py::TestArbitraryBytes::test_arbitrary"],
    "element status": [
        "tests/scsi/test_fuzz_smc_ssc.py::TestDataParsers::test_arbitrary",
        "tests/scsi/test_fuzz_smc_ssc.py::TestElementStatusStructured::test_lying_lengths",
        "tests/scsi/test_fuzz_smc_ssc.py::TestElementStatusStructured::test_valid_answer_cut_anywhere",
    ],
    "READ POSITION": ["tests/scsi/test_fuzz_smc_ssc.py::TestDataParsers::test_arbitrary"],
    "mode pages": [
        "tests/scsi/test_fuzz_spc.py::TestArbitraryBytes::test_arbitrary",
        "tests/scsi/test_fuzz_smc_ssc.py::TestDataParsers::test_arbitrary",
    ],
    "sg completions": [
        "tests/transport/test_sg_syscalls.py::TestCompletionStruct::test_reads_the_ctypes_fields",
        "tests/transport/test_sg_outcomes.py::TestClassifyProperties::test_never_ok_on_failure",
        "tests/transport/test_sg_outcomes.py::TestClassifyProperties::"
        "test_any_completion_through_transport",
    ],
}
"""Parser family -> the pytest node ids of its hypothesis tests."""


def all_targets() -> list[str]:
    """Every node id of :data:`FUZZ_TARGETS`, once, in a stable order."""
    return sorted({n for nodes in FUZZ_TARGETS.values() for n in nodes})


class TestEntryPoints:
    """The fuzz entry points exist and are hypothesis tests."""

    @pytest.mark.parametrize("node", all_targets())
    def test_node_is_a_hypothesis_test(self, node: str) -> None:
        """Each named test exists and is driven by hypothesis."""
        path, *names = node.split("::")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        obj: object = module
        for name in names:
            obj = getattr(obj, name)
        assert getattr(obj, "is_hypothesis_test", False), f"{node} is not a @given test"

    def test_families_cover_the_parsers(self) -> None:
        """The SPC and SMC/SSC parser tables include the parsers the issue names."""
        spc = importlib.import_module("tests.scsi.test_fuzz_spc")
        smc = importlib.import_module("tests.scsi.test_fuzz_smc_ssc")
        for name in ("Inquiry", "StandardInquiry", "parse_vpd", "ModePage", "ModeParameters6"):
            assert name in spc.PARSERS
        names = {n for n, _ in smc.DATA_PARSERS}
        for name in ("ElementStatus", "PositionShort", "PositionLong", "PositionExtended"):
            assert name in names
        assert "DeviceConfigurationPage" in names


_KEYS = [
    "HeaderDigest",
    "DataDigest",
    "MaxRecvDataSegmentLength",
    "FirstBurstLength",
    "MaxBurstLength",
    "ImmediateData",
    "InitialR2T",
    "MaxOutstandingR2T",
    "DefaultTime2Wait",
    "DefaultTime2Retain",
    "ErrorRecoveryLevel",
    "MaxConnections",
    "DataPDUInOrder",
    "TargetAlias",
]
_VALUES = st.one_of(
    st.sampled_from(["None", "CRC32C", "Yes", "No", "Reject", "NotUnderstood", "0", "512"]),
    st.integers(-5, 2**32).map(str),
    st.text(max_size=12),
)


class TestNegotiate:
    """Operational negotiation on any answer gives Params in range or ProtocolError."""

    @given(st.lists(st.tuples(st.sampled_from(_KEYS), _VALUES), max_size=12), st.booleans())
    def test_arbitrary_answers(self, answers: list[tuple[str, str]], digests: bool) -> None:
        """The result never exceeds what was offered; anything else is ProtocolError."""
        want = Params(header_digest=digests, data_digest=digests)
        assert offer_keys(want)
        try:
            got = negotiate(want, answers)
        except ProtocolError:
            return
        assert got.first_burst_length <= got.max_burst_length <= want.max_burst_length
        assert got.header_digest <= want.header_digest
        assert got.data_digest <= want.data_digest
        assert 512 <= got.max_xmit_data_segment_length <= 0xFFFFFF


_TARGET_OPS = [0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x31, 0x32, 0x3F]
_PDUS = st.tuples(
    st.sampled_from(_TARGET_OPS),
    st.integers(0, 255),
    st.integers(0, 3),
    st.tuples(*[st.integers(0, 2**32 - 1)] * 7),
    st.binary(max_size=48),
)


class TestSessionSequences:
    """Several hostile PDUs in a row: events or ProtocolError, and state stays sane."""

    @given(st.lists(_PDUS, min_size=1, max_size=6))
    def test_sequence(self, items: list[tuple[int, int, int, tuple[int, ...], bytes]]) -> None:
        """Feeding a sequence stops at the first ProtocolError; until then events come."""
        c = SessionCore(Params(), cmd_sn=1, exp_stat_sn=0, max_cmd_sn=64)
        r, _ = c.submit(0, b"\x08" + bytes(5), buf=memoryview(bytearray(32)))
        w, _ = c.submit(0, b"\x0a" + bytes(5), data_out=bytes(32))
        for op, flags, pick, words, data in items:
            itt = [r.itt, w.itt, NO_TAG, 0x0BADBEEF][pick]
            pdu = Pdu(op, flags, False, 0, 0, 0, itt, words, b"", data)
            raw = b"".join(bytes(s) for s in encode_pdu(pdu))
            try:
                hdr = decode_header(raw[:BHS_LEN], max_data=c.max_data)
                view = c.sink(hdr)
                view[:] = data
                events = c.receive(hdr.pdu, view)
            except ProtocolError:
                return
            assert isinstance(events, list)
            assert r.transferred <= 32


class TestClassify:
    """Any status byte with any sense bytes classifies, or fails as DecodeError."""

    @given(st.integers(0, 255), st.binary(max_size=80))
    def test_arbitrary_status_and_sense(self, status: int, sense: bytes) -> None:
        """classify_response gives a Classification or a DecodeError, nothing else."""
        try:
            c = classify_response(Response(status=status, sense=sense))
        except DecodeError:
            return
        assert isinstance(c, Classification)
