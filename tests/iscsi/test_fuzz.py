"""Arbitrary input to every iSCSI parser gives a result or the typed error, nothing else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import LoginError, ProtocolError
from tapepath.iscsi.chap import Credentials, decode_binary
from tapepath.iscsi.login import LoginConfig, LoginMachine, parse_target_address
from tapepath.iscsi.opcodes import Opcode
from tapepath.iscsi.pdu import Pdu
from tapepath.iscsi.text import encode_text
from tapepath.iscsi.url import parse_iscsi_url


class TestFuzz:
    """Hypothesis against the text-level parsers and the login machine."""

    @given(st.text(max_size=300))
    def test_binary_values(self, text: str) -> None:
        """CHAP binary values decode within the limit or raise ProtocolError."""
        try:
            out = decode_binary(text)
        except ProtocolError:
            return
        assert 1 <= len(out) <= 1024

    @given(st.text(max_size=100))
    def test_target_address(self, text: str) -> None:
        """TargetAddress values parse to a host and a valid port or raise ProtocolError."""
        try:
            host, port = parse_target_address(text)
        except ProtocolError:
            return
        assert host
        assert 0 < port < 65536

    @given(st.text(max_size=200))
    def test_url(self, text: str) -> None:
        """Any string is an iscsi URL or a ValueError."""
        try:
            u = parse_iscsi_url("iscsi://" + text, environ={})
        except ValueError:
            return
        assert u.host

    @given(
        st.lists(
            st.tuples(
                st.integers(0, 255),
                st.integers(0, 2**32 - 1),
                st.integers(0, 0xFFFF),
                st.binary(max_size=200),
            ),
            min_size=1,
            max_size=6,
        ),
        st.booleans(),
    )
    def test_login_responses(self, steps: list[tuple[int, int, int, bytes]], chap: bool) -> None:
        """Random login responses end in a request, a result, a redirect or a typed error."""
        creds = Credentials("u", "secretsecret") if chap else None
        m = LoginMachine(LoginConfig("iqn.2026-11.x:i", "iqn.2026-11.x:t", credentials=creds))
        m.start()
        for flags, status, tsih, data in steps:
            pdu = Pdu(
                Opcode.LOGIN_RESPONSE,
                flags=flags,
                lun=tsih,
                itt=0,
                words=(0, 1, 1, 1, status, 0, 0),
                data=data,
            )
            try:
                step = m.receive(pdu)
            except (LoginError, ProtocolError):
                return
            if not isinstance(step, Pdu):
                return

    @given(
        st.lists(
            st.tuples(
                st.sampled_from([0x00, 0x81, 0x87, 0x83, 0x84, 0x80, 0x40]),
                st.sampled_from([0, 0x01010000, 0x02010000, 0x03000000]),
                st.lists(
                    st.tuples(
                        st.sampled_from(
                            [
                                "AuthMethod",
                                "CHAP_A",
                                "CHAP_I",
                                "CHAP_C",
                                "CHAP_N",
                                "CHAP_R",
                                "TargetAddress",
                                "MaxBurstLength",
                                "HeaderDigest",
                                "InitialR2T",
                            ]
                        ),
                        st.sampled_from(
                            ["CHAP", "None", "5", "7", "0x00ff", "0bAA==", "Yes", "x", "1:2,1", ""]
                        ),
                    ),
                    max_size=5,
                ),
            ),
            min_size=1,
            max_size=6,
        ),
        st.booleans(),
    )
    def test_login_plausible_keys(
        self, steps: list[tuple[int, int, list[tuple[str, str]]]], chap: bool
    ) -> None:
        """Plausible but wrong key sequences also end in a step or a typed error."""
        creds = Credentials("u", "secretsecret", None, "tsecret") if chap else None
        m = LoginMachine(LoginConfig("iqn.2026-11.x:i", "iqn.2026-11.x:t", credentials=creds))
        m.start()
        for flags, status, pairs in steps:
            pdu = Pdu(
                Opcode.LOGIN_RESPONSE,
                flags=flags,
                itt=0,
                words=(0, 1, 1, 1, status, 0, 0),
                data=encode_text(pairs),
            )
            try:
                step = m.receive(pdu)
            except (LoginError, ProtocolError):
                return
            if not isinstance(step, Pdu):
                return
