"""Text keys, negotiation rules and CHAP."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import AuthenticationError, ProtocolError
from tapepath.iscsi.chap import (
    ChapAlgorithm,
    Credentials,
    Secret,
    chap_response,
    decode_binary,
    encode_binary,
    verify_response,
)
from tapepath.iscsi.text import Params, decode_text, encode_text, negotiate, offer_keys


class TestText:
    """key=value encoding and bounded parsing."""

    def test_encode_layout(self) -> None:
        """Each pair ends with a NUL byte."""
        assert encode_text([("A", "1"), ("B", "x,y")]) == b"A=1\0B=x,y\0"

    def test_decode_tolerates_missing_final_nul(self) -> None:
        """The last pair may lack its NUL."""
        assert decode_text(b"A=1\0B=2") == [("A", "1"), ("B", "2")]

    def test_empty_value_allowed(self) -> None:
        """An empty value is a value."""
        assert decode_text(b"TargetAlias=\0") == [("TargetAlias", "")]

    @pytest.mark.parametrize(
        "raw",
        [b"novalue\0", b"=x\0", b"K" * 64 + b"=1\0", b"A=" + b"v" * 8193, b"A=\xff\0"],
    )
    def test_malformed(self, raw: bytes) -> None:
        """Malformed text gives ProtocolError."""
        with pytest.raises(ProtocolError):
            decode_text(raw)

    def test_bad_key_refused_on_encode(self) -> None:
        """A key with '=' cannot be encoded."""
        with pytest.raises(ValueError, match="key"):
            encode_text([("A=B", "1")])

    @given(st.binary(max_size=600))
    def test_arbitrary_bytes(self, raw: bytes) -> None:
        """Arbitrary bytes parse or raise ProtocolError."""
        try:
            pairs = decode_text(raw)
        except ProtocolError:
            return
        assert all(len(k) <= 63 for k, _ in pairs)


class TestNegotiate:
    """The RFC's result function per key."""

    def test_tgtd_like_answers(self) -> None:
        """Minimums, OR/AND booleans and the 8192 default for an undeclared MRDSL."""
        want = Params(immediate_data=True, initial_r2t=False, max_burst_length=1048576)
        got = negotiate(
            want,
            [
                ("InitialR2T", "Yes"),
                ("ImmediateData", "Yes"),
                ("FirstBurstLength", "65536"),
                ("MaxBurstLength", "262144"),
                ("HeaderDigest", "None"),
                ("DefaultTime2Wait", "5"),
            ],
        )
        assert got.initial_r2t is True
        assert got.immediate_data is True
        assert got.max_burst_length == 262144
        assert got.first_burst_length == 65536
        assert got.max_xmit_data_segment_length == 8192
        assert got.default_time2wait == 5

    def test_immediate_data_and(self) -> None:
        """ImmediateData is Yes only if both say Yes."""
        got = negotiate(Params(immediate_data=False), [("ImmediateData", "Yes")])
        assert got.immediate_data is False

    def test_digest_not_offered(self) -> None:
        """A target may not pick CRC32C when we offered None only."""
        with pytest.raises(ProtocolError):
            negotiate(Params(header_digest=False), [("HeaderDigest", "CRC32C")])

    def test_declared_mrdsl(self) -> None:
        """The target's MaxRecvDataSegmentLength bounds what we send."""
        got = negotiate(Params(), [("MaxRecvDataSegmentLength", "65536")])
        assert got.max_xmit_data_segment_length == 65536

    @pytest.mark.parametrize("value", ["-1", "abc", "99999999999", "100"])
    def test_bad_number(self, value: str) -> None:
        """Out-of-range or malformed numbers are protocol errors."""
        with pytest.raises(ProtocolError):
            negotiate(Params(), [("MaxBurstLength", value)])

    def test_offer_lists_digests(self) -> None:
        """Wanting digests offers CRC32C first, None as the fallback."""
        keys = dict(offer_keys(Params(header_digest=True)))
        assert keys["HeaderDigest"] == "CRC32C,None"
        assert keys["DataDigest"] == "None"


class TestChap:
    """CHAP responses, binary values and secrets."""

    def test_md5_response(self) -> None:
        """MD5(id || secret || challenge), computed independently."""
        got = chap_response(ChapAlgorithm.MD5, 7, Secret("s3cret"), b"\x01\x02")
        assert got == hashlib.md5(b"\x07s3cret\x01\x02").digest()

    @pytest.mark.parametrize(
        ("alg", "name"), [(ChapAlgorithm.SHA1, "sha1"), (ChapAlgorithm.SHA256, "sha256")]
    )
    def test_sha_responses(self, alg: ChapAlgorithm, name: str) -> None:
        """SHA-1 and SHA-256 follow the same construction."""
        got = chap_response(alg, 255, Secret(b"k"), b"chal")
        assert got == hashlib.new(name, b"\xffkchal").digest()

    def test_binary_forms(self) -> None:
        """0x hex and 0b base64 decode to the same bytes."""
        assert decode_binary("0x0A0b") == b"\x0a\x0b"
        assert decode_binary("0bCgs=") == b"\x0a\x0b"
        assert encode_binary(b"\x0a\x0b") == "0x0a0b"

    @pytest.mark.parametrize("text", ["0x", "1234", "0xzz", "0b!!", "0x" + "00" * 2000])
    def test_bad_binary(self, text: str) -> None:
        """Malformed, empty or huge binary values are refused."""
        with pytest.raises(ProtocolError):
            decode_binary(text)

    def test_verify_wrong_answer(self) -> None:
        """A wrong mutual answer raises AuthenticationError without the secret."""
        with pytest.raises(AuthenticationError) as info:
            verify_response(ChapAlgorithm.MD5, 1, Secret("topsecret"), b"c", b"\0" * 16)
        assert "topsecret" not in str(info.value)

    def test_secret_hidden(self) -> None:
        """Neither Secret nor Credentials show a password."""
        creds = Credentials("alice", "pw-hidden", "tgt", "tpw-hidden")
        assert "pw-hidden" not in repr(creds)
        assert "pw-hidden" not in str(creds.password)
        assert "pw-hidden" not in f"{creds.target_password}"
        assert creds.mutual
