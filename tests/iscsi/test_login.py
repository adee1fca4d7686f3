"""The login state machine against scripted target answers."""

from __future__ import annotations

import hashlib

import pytest

from tapepath.errors import AuthenticationError, LoginError, ProtocolError
from tapepath.iscsi.chap import ChapAlgorithm, Credentials
from tapepath.iscsi.login import (
    TRANSITIONS,
    LoginConfig,
    LoginMachine,
    LoginResult,
    LoginState,
    Redirect,
    make_isid,
)
from tapepath.iscsi.opcodes import Opcode
from tapepath.iscsi.pdu import Pdu
from tapepath.iscsi.text import Params, decode_text
from tests.iscsi.targetsim import login_response

IQN = "iqn.2026-11.test:tgt"
INI = "iqn.2026-11.test:ini"


def keys(pdu: Pdu) -> dict[str, str]:
    return dict(decode_text(pdu.data))


def stage(pdu: Pdu) -> tuple[bool, int, int]:
    return pdu.final, (pdu.flags >> 2) & 3, pdu.flags & 3


class TestNoAuth:
    """AuthMethod=None logins."""

    def test_full_login(self) -> None:
        """Security stage first (CSG=0), then operational, then the result."""
        m = LoginMachine(LoginConfig(INI, IQN, isid=make_isid(0xABCDEF)))
        first = m.start()
        assert first.opcode == Opcode.LOGIN_REQUEST
        assert first.immediate
        assert stage(first) == (True, 0, 1)
        k = keys(first)
        assert k["AuthMethod"] == "None"
        assert k["TargetName"] == IQN
        assert k["SessionType"] == "Normal"
        assert first.isid == make_isid(0xABCDEF)
        assert first.tsih == 0
        step = m.receive(
            login_response(0, csg=0, nsg=1, transit=True, keys=[("AuthMethod", "None")])
        )
        assert isinstance(step, Pdu)
        assert stage(step) == (True, 1, 3)
        assert step.exp_stat_sn == 101
        assert "MaxRecvDataSegmentLength" in keys(step)
        done = m.receive(
            login_response(
                0,
                csg=1,
                nsg=3,
                transit=True,
                stat_sn=101,
                keys=[("MaxBurstLength", "262144"), ("InitialR2T", "Yes")],
            )
        )
        assert isinstance(done, LoginResult)
        assert done.tsih == 0x1234
        assert done.exp_stat_sn == 102
        assert done.params.initial_r2t
        assert m.state is LoginState.FULL_FEATURE

    def test_discovery_session(self) -> None:
        """A discovery login names no target."""
        m = LoginMachine(LoginConfig(INI, None))
        k = keys(m.start())
        assert k["SessionType"] == "Discovery"
        assert "TargetName" not in k

    def test_operational_continue(self) -> None:
        """A response without T in the operational stage gets an empty request."""
        m = LoginMachine(LoginConfig(INI, IQN))
        m.start()
        m.receive(login_response(0, csg=0, nsg=1, transit=True, keys=[]))
        step = m.receive(login_response(0, csg=1, nsg=3, transit=False, keys=[]))
        assert isinstance(step, Pdu)
        assert step.data == b""

    def test_text_continuation(self) -> None:
        """Keys split over responses with the C bit are joined."""
        m = LoginMachine(LoginConfig(INI, IQN))
        m.start()
        m.receive(login_response(0, csg=0, nsg=1, transit=True, keys=[]))
        part = login_response(0, csg=1, nsg=3, transit=False, keys=[], cont=True)
        part = Pdu(part.opcode, part.flags, False, 0, 0, part.lun, 0, part.words, b"", b"MaxBur")
        more = m.receive(part)
        assert isinstance(more, Pdu)
        end = login_response(0, csg=1, nsg=3, transit=True, keys=[])
        end = Pdu(
            end.opcode, end.flags, False, 0, 0, end.lun, 0, end.words, b"", b"stLength=4096\0"
        )
        done = m.receive(end)
        assert isinstance(done, LoginResult)
        assert done.params.max_burst_length == 4096


class TestFailures:
    """Refusals and broken answers."""

    def test_auth_failure_status(self) -> None:
        """Status 0201 is an AuthenticationError."""
        m = LoginMachine(LoginConfig(INI, IQN))
        m.start()
        with pytest.raises(AuthenticationError, match="authentication failure"):
            m.receive(login_response(0, csg=0, nsg=0, transit=False, keys=[], status=(2, 1)))

    def test_target_not_found(self) -> None:
        """Status 0203 is a LoginError naming the reason."""
        m = LoginMachine(LoginConfig(INI, IQN))
        m.start()
        with pytest.raises(LoginError, match="target not found"):
            m.receive(login_response(0, csg=0, nsg=0, transit=False, keys=[], status=(2, 3)))

    def test_redirect(self) -> None:
        """Status class 1 yields the new portal."""
        m = LoginMachine(LoginConfig(INI, IQN))
        m.start()
        r = m.receive(
            login_response(
                0,
                csg=0,
                nsg=0,
                transit=False,
                keys=[("TargetAddress", "[::1]:3261,1")],
                status=(1, 1),
            )
        )
        assert r == Redirect("::1", 3261, False)

    def test_chap_refuses_downgrade(self) -> None:
        """With CHAP configured, a target choosing AuthMethod=None is refused."""
        m = LoginMachine(LoginConfig(INI, IQN, credentials=Credentials("u", "p")))
        assert keys(m.start())["AuthMethod"] == "CHAP"
        with pytest.raises(AuthenticationError, match="only AuthMethod=None"):
            m.receive(login_response(0, csg=0, nsg=1, transit=True, keys=[("AuthMethod", "None")]))

    def test_chap_required_without_credentials(self) -> None:
        """A target that insists on CHAP fails a login without credentials."""
        m = LoginMachine(LoginConfig(INI, IQN))
        m.start()
        with pytest.raises(AuthenticationError, match="requires CHAP"):
            m.receive(login_response(0, csg=0, nsg=1, transit=False, keys=[("AuthMethod", "CHAP")]))

    def test_foreign_opcode(self) -> None:
        """Anything but a Login Response is a protocol error."""
        m = LoginMachine(LoginConfig(INI, IQN))
        m.start()
        with pytest.raises(ProtocolError):
            m.receive(Pdu(Opcode.NOP_IN))

    def test_table_is_complete_for_states(self) -> None:
        """Every state but the final one has a way out in the table."""
        sources = {s for s, _ in TRANSITIONS}
        assert sources == set(LoginState) - {LoginState.FULL_FEATURE}


class TestChapLogin:
    """One-way and mutual CHAP exchanges."""

    def _to_challenge(self, creds: Credentials, alg: int = 5) -> tuple[LoginMachine, Pdu]:
        m = LoginMachine(LoginConfig(INI, IQN, credentials=creds))
        m.start()
        a = m.receive(login_response(0, csg=0, nsg=1, transit=False, keys=[("AuthMethod", "CHAP")]))
        assert isinstance(a, Pdu)
        assert keys(a)["CHAP_A"] == ",".join(str(int(x)) for x in creds.algorithms)
        chal = [("CHAP_A", str(alg)), ("CHAP_I", "9"), ("CHAP_C", "0x00112233")]
        r = m.receive(login_response(0, csg=0, nsg=1, transit=False, keys=chal))
        assert isinstance(r, Pdu)
        return m, r

    def test_one_way(self) -> None:
        """The response is MD5(id||secret||challenge) and the login proceeds."""
        m, r = self._to_challenge(Credentials("alice", "alicesecret1"))
        k = keys(r)
        assert k["CHAP_N"] == "alice"
        expect = hashlib.md5(b"\x09alicesecret1" + bytes.fromhex("00112233")).hexdigest()
        assert k["CHAP_R"] == "0x" + expect
        assert stage(r) == (True, 0, 1)
        op = m.receive(login_response(0, csg=0, nsg=1, transit=True, keys=[]))
        assert isinstance(op, Pdu)
        assert stage(op) == (True, 1, 3)
        done = m.receive(login_response(0, csg=1, nsg=3, transit=True, keys=[]))
        assert isinstance(done, LoginResult)
        assert done.chap_algorithm is ChapAlgorithm.MD5

    def test_sha256_chosen(self) -> None:
        """When the target picks 7, SHA-256 is used."""
        algs = (ChapAlgorithm.SHA256, ChapAlgorithm.MD5)
        _, r = self._to_challenge(Credentials("alice", "alicesecret1", algorithms=algs), alg=7)
        expect = hashlib.sha256(b"\x09alicesecret1" + bytes.fromhex("00112233")).hexdigest()
        assert keys(r)["CHAP_R"] == "0x" + expect

    def test_mutual_ok_and_wrong(self) -> None:
        """The target's answer to our challenge is checked."""
        creds = Credentials("alice", "alicesecret1", "tgt", "targetsecret")
        for good in (True, False):
            m, r = self._to_challenge(creds)
            k = keys(r)
            ident = int(k["CHAP_I"])
            chal = bytes.fromhex(k["CHAP_C"][2:])
            secret = b"targetsecret" if good else b"wrong"
            answer = hashlib.md5(bytes([ident]) + secret + chal).hexdigest()
            resp = login_response(
                0,
                csg=0,
                nsg=1,
                transit=True,
                keys=[("CHAP_N", "tgt"), ("CHAP_R", "0x" + answer)],
            )
            if good:
                assert isinstance(m.receive(resp), Pdu)
            else:
                with pytest.raises(AuthenticationError, match="mutual"):
                    m.receive(resp)

    def test_mutual_missing_answer(self) -> None:
        """A target that skips the mutual answer is refused."""
        m, _ = self._to_challenge(Credentials("alice", "alicesecret1", None, "targetsecret"))
        with pytest.raises(AuthenticationError):
            m.receive(login_response(0, csg=0, nsg=1, transit=True, keys=[]))

    def test_default_offer_leaves_out_sha256(self) -> None:
        """By default SHA-1 and MD5 are offered (tgtd misreads 7 as SHA-1)."""
        m = LoginMachine(LoginConfig(INI, IQN, credentials=Credentials("a", "b")))
        m.start()
        a = m.receive(login_response(0, csg=0, nsg=1, transit=False, keys=[("AuthMethod", "CHAP")]))
        assert isinstance(a, Pdu)
        assert keys(a)["CHAP_A"] == "6,5"

    def test_unoffered_algorithm_refused(self) -> None:
        """A target choosing an algorithm we did not offer is refused."""
        m = LoginMachine(LoginConfig(INI, IQN, credentials=Credentials("a", "b")))
        m.start()
        m.receive(login_response(0, csg=0, nsg=1, transit=False, keys=[("AuthMethod", "CHAP")]))
        chal = [("CHAP_A", "7"), ("CHAP_I", "1"), ("CHAP_C", "0x00")]
        with pytest.raises(AuthenticationError, match="not offered"):
            m.receive(login_response(0, csg=0, nsg=1, transit=False, keys=chal))

    def test_params_default(self) -> None:
        """A config offers the default parameters unless told otherwise."""
        assert LoginConfig(INI, IQN).want == Params()
