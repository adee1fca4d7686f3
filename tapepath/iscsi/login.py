"""The iSCSI login phase as a sans-I/O state machine (RFC 7143 sections 6.3 and 11.12).

The machine always starts at the security stage (CSG=0), with AuthMethod=None or
CHAP, because tgtd (and RFC 7143 session reinstatement in general) only replaces an
old session with the same ISID when the new login starts there. :data:`TRANSITIONS`
is the whole machine: one entry per (state, event), naming the action and the next
state; anything not in it is a :class:`~tapepath.errors.ProtocolError`.

Use::

    m = LoginMachine(config)
    send(m.start())
    while True:
        step = m.receive(next_login_response())
        if isinstance(step, Pdu): send(step)
        else: break            # LoginResult or Redirect
"""

from __future__ import annotations

import enum

import structlog
from attrs import field, frozen

from tapepath.errors import AuthenticationError, LoginError, ProtocolError
from tapepath.iscsi.chap import (
    ChapAlgorithm,
    Credentials,
    chap_response,
    decode_binary,
    encode_binary,
    new_challenge,
    verify_response,
)
from tapepath.iscsi.opcodes import LoginStatusClass, Opcode
from tapepath.iscsi.pdu import Pdu
from tapepath.iscsi.text import MAX_TEXT, Params, decode_text, encode_text, negotiate, offer_keys

__all__ = [
    "TRANSITIONS",
    "LoginConfig",
    "LoginEvent",
    "LoginMachine",
    "LoginResult",
    "LoginState",
    "Redirect",
    "make_isid",
]

log = structlog.get_logger("tapepath.iscsi.login")

SECURITY, OPERATIONAL, FULL_FEATURE = 0, 1, 3


def make_isid(qualifier: int) -> int:
    """A random-format ISID (type 10b) with a 24-bit ``qualifier`` (keep it per session)."""
    return (0x80 << 40) | ((qualifier & 0xFFFFFF) << 16) | 0x0001


class LoginState(enum.Enum):
    """Where the login is."""

    INITIAL = "initial"
    SECURITY_OFFERED = "security_offered"
    CHAP_ALGORITHM_SENT = "chap_algorithm_sent"
    CHAP_RESPONSE_SENT = "chap_response_sent"
    OPERATIONAL = "operational"
    FULL_FEATURE = "full_feature"


class LoginEvent(enum.Enum):
    """What a Login Response (or the caller) means for the machine."""

    START = "start"
    CHOSE_NONE = "chose_none"
    CHOSE_CHAP = "chose_chap"
    CHALLENGE = "challenge"
    SECURITY_DONE = "security_done"
    OP_CONTINUE = "op_continue"
    OP_DONE = "op_done"


S, E = LoginState, LoginEvent
TRANSITIONS: dict[tuple[LoginState, LoginEvent], tuple[str, LoginState]] = {
    (S.INITIAL, E.START): ("offer_security", S.SECURITY_OFFERED),
    (S.SECURITY_OFFERED, E.CHOSE_NONE): ("offer_operational", S.OPERATIONAL),
    (S.SECURITY_OFFERED, E.SECURITY_DONE): ("offer_operational", S.OPERATIONAL),
    (S.SECURITY_OFFERED, E.CHOSE_CHAP): ("send_chap_algorithms", S.CHAP_ALGORITHM_SENT),
    (S.CHAP_ALGORITHM_SENT, E.CHALLENGE): ("send_chap_response", S.CHAP_RESPONSE_SENT),
    (S.CHAP_RESPONSE_SENT, E.SECURITY_DONE): ("offer_operational", S.OPERATIONAL),
    (S.OPERATIONAL, E.OP_CONTINUE): ("continue_operational", S.OPERATIONAL),
    (S.OPERATIONAL, E.OP_DONE): ("finish", S.FULL_FEATURE),
}
"""(state, event) -> (action, next state): the login machine."""
del S, E


@frozen
class LoginConfig:
    """What a login asks for.

    Attributes:
        initiator_name: our IQN.
        target_name: the target's IQN (None for a discovery session).
        isid: the session's ISID (48 bits); keep it to reinstate the session.
        tsih: 0 for a new session (or reinstatement), the TSIH to add a connection.
        cid: the connection ID.
        cmd_sn: the CmdSN the login carries.
        credentials: CHAP accounts, or None for AuthMethod=None.
        want: the operational values to offer.
    """

    initiator_name: str
    target_name: str | None
    isid: int = field(default=make_isid(1))
    tsih: int = 0
    cid: int = 0
    cmd_sn: int = 1
    credentials: Credentials | None = None
    want: Params = field(factory=Params)

    @property
    def discovery(self) -> bool:
        """True for a SendTargets discovery session."""
        return self.target_name is None


@frozen
class LoginResult:
    """A finished login.

    Attributes:
        params: the negotiated operational values.
        tsih: the session handle the target assigned (two opaque bytes).
        exp_stat_sn: the next StatSN expected.
        exp_cmd_sn: the target's ExpCmdSN.
        max_cmd_sn: the target's MaxCmdSN.
        chap_algorithm: the CHAP hash used, or None without CHAP.
        target_keys: every key the target sent, in order.
    """

    params: Params
    tsih: int
    exp_stat_sn: int
    exp_cmd_sn: int
    max_cmd_sn: int
    chap_algorithm: ChapAlgorithm | None
    target_keys: tuple[tuple[str, str], ...]


@frozen
class Redirect:
    """The target sent the initiator elsewhere (status class 1).

    Attributes:
        host: the new portal's address.
        port: its TCP port.
        permanent: True for "moved permanently" (detail 2).
    """

    host: str
    port: int
    permanent: bool


def parse_target_address(value: str) -> tuple[str, int]:
    """Split a TargetAddress (``host[:port][,tpgt]``, IPv6 in brackets).

    Raises:
        ProtocolError: the address is malformed.
    """
    addr = value.split(",", 1)[0]
    if addr.startswith("["):
        host, _, rest = addr[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = addr.partition(":")
    if not host:
        raise ProtocolError(f"malformed TargetAddress {value!r}")
    if not port_text:
        return host, 3260
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ProtocolError(f"malformed port in TargetAddress {value!r}")
    return host, int(port_text)


_DETAIL = {
    (2, 0): "initiator error",
    (2, 1): "authentication failure",
    (2, 2): "authorization failure",
    (2, 3): "target not found",
    (2, 4): "target removed",
    (2, 5): "unsupported version",
    (2, 6): "too many connections",
    (2, 7): "missing parameter",
    (2, 8): "cannot include in session",
    (2, 9): "session type not supported",
    (2, 10): "session does not exist",
    (2, 11): "invalid request during login",
    (3, 0): "target error",
    (3, 1): "service unavailable",
    (3, 2): "out of resources",
}


class LoginMachine:
    """Drive one connection's login; see the module docstring."""

    def __init__(self, config: LoginConfig) -> None:
        self.config = config
        self.state = LoginState.INITIAL
        self.exp_stat_sn = 0
        self._stat_known = False
        self._answers: list[tuple[str, str]] = []
        self._partial = bytearray()
        self._stage = SECURITY
        self._algorithm: ChapAlgorithm | None = None
        self._mutual: tuple[ChapAlgorithm, int, bytes] | None = None
        self._itt = 0

    # -- the public surface ---------------------------------------------------------
    def start(self) -> Pdu:
        """The first Login Request."""
        return self._dispatch(LoginEvent.START, [], None)  # type: ignore[return-value]

    def receive(self, pdu: Pdu) -> Pdu | LoginResult | Redirect:
        """Consume one Login Response; return the next request, the result or a redirect.

        Raises:
            LoginError: the target refused the login (the message says why).
            AuthenticationError: CHAP failed or was downgraded.
            ProtocolError: the response breaks the protocol.
        """
        if pdu.opcode != Opcode.LOGIN_RESPONSE:
            raise ProtocolError(f"expected a Login Response, got opcode 0x{pdu.opcode:02x}")
        if pdu.itt != self._itt:
            raise ProtocolError("Login Response with a foreign ITT")
        self.exp_stat_sn = (pdu.stat_sn + 1) & 0xFFFFFFFF
        self._stat_known = True
        status_class, detail = pdu.words[4] >> 24, (pdu.words[4] >> 16) & 0xFF
        keys = self._collect(pdu)
        if keys is None:  # more text follows in another response
            return self._request(self._stage, self._stage, transit=False, pairs=[])
        if status_class == LoginStatusClass.REDIRECTION:
            address = dict(keys).get("TargetAddress")
            if address is None:
                raise LoginError("login redirected without a TargetAddress")
            host, port = parse_target_address(address)
            log.info("iscsi_login_redirect", host=host, port=port, detail=detail)
            return Redirect(host, port, detail == 2)
        if status_class != LoginStatusClass.SUCCESS:
            what = _DETAIL.get((status_class, detail), "unknown reason")
            msg = f"login refused by the target: {what} (0x{status_class:02x}{detail:02x})"
            if (status_class, detail) in ((2, 1), (2, 2)):
                raise AuthenticationError(msg)
            raise LoginError(msg)
        transit = pdu.final
        csg, nsg = (pdu.flags >> 2) & 3, pdu.flags & 3
        event = self._classify(keys, transit=transit, csg=csg, nsg=nsg)
        return self._dispatch(event, keys, pdu)

    # -- classification and dispatch -------------------------------------------------
    def _collect(self, pdu: Pdu) -> list[tuple[str, str]] | None:
        if len(self._partial) + len(pdu.data) > MAX_TEXT:
            raise ProtocolError("login text exceeds the limit")
        self._partial += pdu.data
        if pdu.flags & 0x40:  # C bit: the text continues
            return None
        keys = decode_text(self._partial)
        self._partial.clear()
        self._answers.extend(keys)
        return keys

    def _classify(
        self, keys: list[tuple[str, str]], *, transit: bool, csg: int, nsg: int
    ) -> LoginEvent:
        d = dict(keys)
        if self.state is LoginState.SECURITY_OFFERED:
            method = d.get("AuthMethod")
            if method == "CHAP":
                return LoginEvent.CHOSE_CHAP
            if method == "None":
                return LoginEvent.CHOSE_NONE
            if method is not None:
                raise AuthenticationError(f"target chose an unusable AuthMethod={method!r}")
            if transit:
                return LoginEvent.SECURITY_DONE
        elif self.state is LoginState.CHAP_ALGORITHM_SENT:
            return LoginEvent.CHALLENGE
        elif self.state is LoginState.CHAP_RESPONSE_SENT:
            if transit and nsg == OPERATIONAL:
                return LoginEvent.SECURITY_DONE
        elif self.state is LoginState.OPERATIONAL:
            if csg != OPERATIONAL:
                raise ProtocolError(f"login response at stage {csg} during the operational stage")
            return LoginEvent.OP_DONE if transit and nsg == FULL_FEATURE else LoginEvent.OP_CONTINUE
        raise ProtocolError(f"unexpected login response in state {self.state.value}")

    def _dispatch(
        self, event: LoginEvent, keys: list[tuple[str, str]], pdu: Pdu | None
    ) -> Pdu | LoginResult:
        entry = TRANSITIONS.get((self.state, event))
        if entry is None:
            raise ProtocolError(f"login: no transition from {self.state.value} on {event.value}")
        action, nxt = entry
        result: Pdu | LoginResult = getattr(self, "_" + action)(keys, pdu)
        self.state = nxt
        return result

    # -- actions ----------------------------------------------------------------------
    def _request(self, csg: int, nsg: int, *, transit: bool, pairs: list[tuple[str, str]]) -> Pdu:
        c = self.config
        flags = (0x80 if transit else 0) | (csg << 2) | (nsg if transit else 0)
        return Pdu(
            Opcode.LOGIN_REQUEST,
            flags=flags,
            immediate=True,
            lun=(c.isid << 16) | c.tsih,
            itt=self._itt,
            words=(c.cid << 16, c.cmd_sn, self.exp_stat_sn, 0, 0, 0, 0),
            data=encode_text(pairs),
        )

    def _offer_security(self, _keys: object, _pdu: object) -> Pdu:
        c = self.config
        pairs = [("InitiatorName", c.initiator_name)]
        if c.discovery:
            pairs.append(("SessionType", "Discovery"))
        else:
            assert c.target_name is not None
            pairs += [("SessionType", "Normal"), ("TargetName", c.target_name)]
        if c.credentials is None:
            pairs.append(("AuthMethod", "None"))
            return self._request(SECURITY, OPERATIONAL, transit=True, pairs=pairs)
        pairs.append(("AuthMethod", "CHAP"))
        return self._request(SECURITY, OPERATIONAL, transit=False, pairs=pairs)

    def _offer_operational(self, keys: list[tuple[str, str]], pdu: Pdu | None) -> Pdu:
        if self.state is LoginState.CHAP_RESPONSE_SENT:
            self._verify_target(keys)
        if self.config.credentials is not None and self._algorithm is None:
            raise AuthenticationError(
                "CHAP is configured but the target offered only AuthMethod=None; refusing"
            )
        if pdu is not None and not pdu.final:
            # The target stays in the security stage: ask it to move on.
            self.state = LoginState.SECURITY_OFFERED
            return self._request(SECURITY, OPERATIONAL, transit=True, pairs=[])
        self._stage = OPERATIONAL
        pairs = offer_keys(self.config.want, discovery=self.config.discovery)
        return self._request(OPERATIONAL, FULL_FEATURE, transit=True, pairs=pairs)

    def _send_chap_algorithms(self, _keys: object, _pdu: object) -> Pdu:
        creds = self.config.credentials
        if creds is None:
            raise AuthenticationError("the target requires CHAP but no credentials are set")
        offer = ",".join(str(int(a)) for a in creds.algorithms)
        return self._request(SECURITY, OPERATIONAL, transit=False, pairs=[("CHAP_A", offer)])

    def _send_chap_response(self, keys: list[tuple[str, str]], _pdu: object) -> Pdu:
        creds = self.config.credentials
        assert creds is not None
        assert creds.password is not None
        d = dict(keys)
        try:
            algorithm = ChapAlgorithm(int(d.get("CHAP_A", "")))
        except ValueError as exc:
            raise AuthenticationError("target chose no usable CHAP algorithm") from exc
        if algorithm not in creds.algorithms:
            raise AuthenticationError(f"target chose CHAP_A={int(algorithm)}, not offered")
        ident_text = d.get("CHAP_I", "")
        if (
            not (ident_text.isascii() and ident_text.isdigit())
            or int(ident_text) > 255
            or "CHAP_C" not in d
        ):
            raise ProtocolError("CHAP challenge without a valid CHAP_I and CHAP_C")
        challenge = decode_binary(d["CHAP_C"])
        self._algorithm = algorithm
        answer = chap_response(algorithm, int(ident_text), creds.password, challenge)
        pairs = [("CHAP_N", creds.user), ("CHAP_R", encode_binary(answer))]
        if creds.mutual:
            ident, mine = new_challenge(algorithm)
            if mine == challenge:  # a reflected challenge would prove nothing
                ident, mine = new_challenge(algorithm)
            self._mutual = (algorithm, ident, mine)
            pairs += [("CHAP_I", str(ident)), ("CHAP_C", encode_binary(mine))]
        log.debug("iscsi_chap_response_sent", algorithm=algorithm.name, mutual=creds.mutual)
        return self._request(SECURITY, OPERATIONAL, transit=True, pairs=pairs)

    def _verify_target(self, keys: list[tuple[str, str]]) -> None:
        creds = self.config.credentials
        if self._mutual is None or creds is None or creds.target_password is None:
            return
        d = dict(keys)
        if "CHAP_R" not in d:
            raise AuthenticationError("the target did not answer the mutual CHAP challenge")
        if creds.target_user is not None and d.get("CHAP_N") != creds.target_user:
            raise AuthenticationError("the target answered mutual CHAP with an unexpected name")
        algorithm, ident, mine = self._mutual
        verify_response(algorithm, ident, creds.target_password, mine, decode_binary(d["CHAP_R"]))

    def _continue_operational(self, _keys: object, _pdu: object) -> Pdu:
        return self._request(OPERATIONAL, FULL_FEATURE, transit=True, pairs=[])

    def _finish(self, _keys: object, pdu: Pdu) -> LoginResult:
        params = negotiate(self.config.want, self._answers)
        log.debug("iscsi_login_complete", tsih=pdu.tsih, params=params)
        return LoginResult(
            params=params,
            tsih=pdu.tsih,
            exp_stat_sn=self.exp_stat_sn,
            exp_cmd_sn=pdu.exp_cmd_sn,
            max_cmd_sn=pdu.max_cmd_sn,
            chap_algorithm=self._algorithm,
            target_keys=tuple(self._answers),
        )
