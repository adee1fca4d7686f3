"""A hostile iSCSI target for tests: it logs in correctly, then misbehaves on purpose.

:class:`HostileTarget` listens on ``127.0.0.1`` (a free port), serves each connection
in its own thread, completes a login (AuthMethod None, or CHAP when given accounts,
plain operational negotiation) and then answers SCSI commands the way its
``scenario`` says (see :data:`SCENARIOS`). Use it to prove that the initiator drops a
connection with a typed error, within a bounded time and bounded memory, whatever the
target sends.

Example:
    >>> from tapepath.testing.hostile import HostileTarget
    >>> with HostileTarget("unknown_itt") as target:        # doctest: +SKIP
    ...     t = tapepath.open_transport(target.url())
    ...     t.execute(bytes(6), timeout=5).ok
    False

The target keeps its CHAP secrets as :class:`~tapepath.iscsi.chap.Secret` values: they
appear in no log and no repr.
"""

from __future__ import annotations

import contextlib
import secrets as _random
import socket
import struct
import threading
from types import TracebackType

import structlog

from tapepath.iscsi.chap import ChapAlgorithm, Secret, chap_response, decode_binary, encode_binary
from tapepath.iscsi.digest import digest_bytes
from tapepath.iscsi.opcodes import Opcode
from tapepath.iscsi.pdu import NO_TAG, Pdu, encode_pdu, padding
from tapepath.iscsi.text import decode_text, encode_text

__all__ = ["DEFAULT_IQN", "SCENARIOS", "HostileTarget"]

log = structlog.get_logger("tapepath.testing.hostile")

DEFAULT_IQN = "iqn.2026-11.org.tapepath:hostile"

SCENARIOS: dict[str, str] = {
    "good": "behaves: GOOD status, a tape drive's INQUIRY, zeros for other data",
    "oversized_length": "a Data-In claiming DataSegmentLength 16 MiB - 1 at buffer offset"
    " 4 GiB - 4 KiB (far above MaxRecvDataSegmentLength 8192), then a stream of junk",
    "huge_sense_length": "a CHECK CONDITION whose SenseLength claims 65535 bytes in 8",
    "bad_header_digest": "the SCSI Response carries a wrong header digest",
    "bad_data_digest": "the Data-In carries a wrong data digest",
    "statsn_outside_window": "the SCSI Response's StatSN is 2^30 past the expected one",
    "cmdsn_window_outside": "the SCSI Response carries MaxCmdSN = ExpCmdSN - 2 and"
    " ExpCmdSN 2^30 ahead of the commands sent",
    "unsolicited_data_in": "a Data-In for a command that reads nothing",
    "unknown_itt": "the SCSI Response names an ITT never issued",
    "truncated_pdu": "half a Basic Header Segment, then the connection closes",
    "truncated_data": "a header announcing 100 data bytes, 10 bytes, then a close",
    "endless_login": "the operational stage never ends: every answer has T=0",
    "stalled_login": "the first login request is never answered",
    "auth_none_only": "the security stage answers AuthMethod=None, whatever is offered",
    "wrong_mutual_chap": "CHAP works, but the target's mutual CHAP_R is wrong",
}
"""Every scenario and what the target does in it."""

_BHS = 48
_INQUIRY = (
    bytes([0x01, 0x80, 0x06, 0x02, 31, 0, 0, 0]) + b"TAPEPATH" + b"HOSTILE TARGET  " + b"0001"
)


_ECHOED = frozenset(
    {
        "MaxBurstLength",
        "FirstBurstLength",
        "DefaultTime2Wait",
        "DefaultTime2Retain",
        "MaxOutstandingR2T",
        "MaxConnections",
    }
)


class _Closed(Exception):
    pass


class _AuthFailed(Exception):
    pass


class HostileTarget:
    """A misbehaving iSCSI target on a free loopback port.

    Args:
        scenario: one of :data:`SCENARIOS`.
        iqn: the target name it answers to (any name is accepted).
        chap_user: with ``chap_password``, require CHAP from the initiator.
        chap_password: the initiator's secret (its CHAP_R is checked).
        target_user: the name the target answers mutual CHAP with.
        target_password: the target's own secret for mutual CHAP.
        junk_limit: how many junk bytes ``oversized_length`` sends at most.

    Attributes:
        connections: connections accepted.
        dropped: connections the initiator closed.
        commands: SCSI commands received.
    """

    def __init__(
        self,
        scenario: str = "good",
        *,
        iqn: str = DEFAULT_IQN,
        chap_user: str | None = None,
        chap_password: str | None = None,
        target_user: str | None = None,
        target_password: str | None = None,
        junk_limit: int = 64 << 20,
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        self.scenario = scenario
        self.iqn = iqn
        self.chap_user = chap_user
        self._chap_secret = Secret(chap_password) if chap_password else None
        self.target_user = target_user
        self._target_secret = Secret(target_password) if target_password else None
        self.junk_limit = junk_limit
        self.connections = 0
        self.dropped = 0
        self.commands = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._accept = threading.Thread(
            target=self._accept_loop, name="hostile-accept", daemon=True
        )
        self._accept.start()
        log.info("hostile_target_started", port=self.port, scenario=scenario)

    def __repr__(self) -> str:
        return f"HostileTarget(scenario={self.scenario!r}, port={self.port})"

    def url(self, lun: int = 0, **args: str) -> str:
        """``iscsi://127.0.0.1:PORT/IQN/LUN`` with ``args`` as the query (no secrets)."""
        query = "&".join(f"{k}={v}" for k, v in args.items())
        return f"iscsi://127.0.0.1:{self.port}/{self.iqn}/{lun}" + (f"?{query}" if query else "")

    def __enter__(self) -> HostileTarget:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening, close every connection and join the threads."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        self._accept.join(timeout=5)
        for t in list(self._threads):
            t.join(timeout=5)

    # -- plumbing ------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(30.0)
            with self._lock:
                self.connections += 1
                self._socks.append(sock)
            t = threading.Thread(target=self._serve, args=(sock,), name="hostile-conn", daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock: socket.socket) -> None:
        conn = _Conn(self, sock)
        try:
            conn.run()
        except _Closed:
            with self._lock:
                self.dropped += 1
        except OSError:
            with self._lock:
                self.dropped += 1
        finally:
            with contextlib.suppress(OSError):
                sock.close()


class _Conn:
    """One connection's state: digests, sequence numbers, the login stage."""

    def __init__(self, target: HostileTarget, sock: socket.socket) -> None:
        self.t = target
        self.sock = sock
        self.hd = False
        self.dd = False
        self.stat_sn = 0x1000
        self.exp_cmd_sn = 0
        self.chap: tuple[int, bytes] | None = None

    # -- bytes -----------------------------------------------------------------------------

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            if self.t._stop.is_set():
                raise _Closed
            try:
                chunk = self.sock.recv(n - len(buf))
            except TimeoutError:
                continue
            if not chunk:
                raise _Closed
            buf += chunk
        return bytes(buf)

    def read(self) -> Pdu:
        """One PDU from the initiator (its digests are not checked)."""
        bhs = self._recv(_BHS)
        ahs_len = bhs[4] * 4
        dlen = int.from_bytes(bhs[5:8], "big")
        if dlen > 1 << 20:
            raise _Closed
        rest = self._recv(ahs_len + (4 if self.hd else 0))
        data = b""
        if dlen:
            data = self._recv(dlen + padding(dlen) + (4 if self.dd else 0))[:dlen]
        op, flags, b2, b3 = bhs[0] & 0x3F, bhs[1], bhs[2], bhs[3]
        lun, itt = struct.unpack(">QI", bhs[8:20])
        words = struct.unpack(">7I", bhs[20:48])
        return Pdu(op, flags, bool(bhs[0] & 0x40), b2, b3, lun, itt, words, rest[:ahs_len], data)

    def send(self, pdu: Pdu, *, bad_header: bool = False, bad_data: bool = False) -> None:
        """Send a PDU with the negotiated digests (spoilt when asked)."""
        parts = [bytes(p) for p in encode_pdu(pdu, header_digest=self.hd, data_digest=self.dd)]
        if bad_header and self.hd:
            parts[0] = parts[0][:-4] + bytes(b ^ 0xFF for b in parts[0][-4:])
        if bad_data and self.dd and len(parts) > 1:
            parts[-1] = parts[-1][:-4] + bytes(b ^ 0xFF for b in parts[-1][-4:])
        self.sock.sendall(b"".join(parts))

    def next_stat_sn(self) -> int:
        sn = self.stat_sn
        self.stat_sn = (self.stat_sn + 1) & 0xFFFFFFFF
        return sn

    # -- login -----------------------------------------------------------------------------

    def run(self) -> None:
        self.login()
        while True:
            self.full_feature(self.read())

    def login(self) -> None:
        scenario = self.t.scenario
        while True:
            req = self.read()
            if req.opcode != Opcode.LOGIN_REQUEST:
                raise _Closed
            if scenario == "stalled_login":
                while True:
                    self._recv(1)
            keys = decode_text(req.data)
            csg, nsg, transit = (req.flags >> 2) & 3, req.flags & 3, bool(req.flags & 0x80)
            self.exp_cmd_sn = req.words[1]
            if csg == 0:
                try:
                    answer, transit = self._security(dict(keys), transit)
                except _AuthFailed:  # status class 2 (initiator error), detail 1
                    self._login_response(req, [], csg=0, nsg=0, transit=False, status=0x0201)
                    raise _Closed from None
                nsg = 1
            else:
                answer = self._operational(keys)
                if scenario == "endless_login":
                    transit = False
            done = transit and csg == 1 and nsg == 3
            self._login_response(req, answer, csg=csg, nsg=nsg, transit=transit)
            if done:
                self.hd = self._pending_hd
                self.dd = self._pending_dd
                return

    _pending_hd = False
    _pending_dd = False

    def _login_response(
        self,
        req: Pdu,
        keys: list[tuple[str, str]],
        *,
        csg: int,
        nsg: int,
        transit: bool,
        status: int = 0,
    ) -> None:
        flags = (0x80 if transit else 0) | (csg << 2) | (nsg if transit else 0)
        isid = req.lun >> 16
        self.send(
            Pdu(
                Opcode.LOGIN_RESPONSE,
                flags=flags,
                lun=(isid << 16) | 0x0BAD,
                itt=req.itt,
                words=(
                    0,
                    self.next_stat_sn(),
                    self.exp_cmd_sn,
                    self.exp_cmd_sn + 31,
                    status << 16,
                    0,
                    0,
                ),
                data=encode_text(keys),
            )
        )

    def _security(self, keys: dict[str, str], transit: bool) -> tuple[list[tuple[str, str]], bool]:
        t = self.t
        if "AuthMethod" in keys:
            offered = keys["AuthMethod"].split(",")
            if t._chap_secret is not None and t.scenario != "auth_none_only" and "CHAP" in offered:
                return [("AuthMethod", "CHAP")], False
            return [("AuthMethod", "None")], True
        if "CHAP_A" in keys:
            algos = [a for a in keys["CHAP_A"].split(",") if a.isdigit()]
            algorithm = int(algos[0]) if algos else 5
            ident, challenge = 7, _random.token_bytes(16)
            self.chap = (algorithm, challenge)
            return [
                ("CHAP_A", str(algorithm)),
                ("CHAP_I", str(ident)),
                ("CHAP_C", encode_binary(challenge)),
            ], False
        if "CHAP_R" in keys and self.chap is not None:
            algorithm, challenge = self.chap
            alg = ChapAlgorithm(algorithm)
            assert t._chap_secret is not None
            want = chap_response(alg, 7, t._chap_secret, challenge)
            if keys.get("CHAP_N") != t.chap_user or decode_binary(keys["CHAP_R"]) != want:
                raise _AuthFailed
            answer: list[tuple[str, str]] = []
            if "CHAP_C" in keys:
                mine = decode_binary(keys["CHAP_C"])
                ident = int(keys.get("CHAP_I", "0"))
                if t.scenario == "wrong_mutual_chap" or t._target_secret is None:
                    resp = _random.token_bytes(len(want))
                else:
                    resp = chap_response(alg, ident, t._target_secret, mine)
                answer = [("CHAP_N", t.target_user or t.iqn), ("CHAP_R", encode_binary(resp))]
            return answer, True
        return [], transit

    def _operational(self, keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for key, value in keys:
            if key in ("HeaderDigest", "DataDigest"):
                crc = "CRC32C" in value.split(",")
                if key == "HeaderDigest":
                    self._pending_hd = crc
                else:
                    self._pending_dd = crc
                out.append((key, "CRC32C" if crc else "None"))
            elif key == "MaxRecvDataSegmentLength":
                out.append((key, "8192"))
            elif key in ("InitialR2T",):
                out.append((key, "Yes"))
            elif key in ("ImmediateData",):
                out.append((key, "No"))
            elif key in ("ErrorRecoveryLevel",):
                out.append((key, "0"))
            elif key in _ECHOED:
                out.append((key, value))
            elif key in ("DataPDUInOrder", "DataSequenceInOrder"):
                out.append((key, "Yes"))
        return out

    # -- full feature phase ------------------------------------------------------------

    def full_feature(self, req: Pdu) -> None:
        op = req.opcode
        if op == Opcode.NOP_OUT:
            if req.itt != NO_TAG:
                self.send(
                    Pdu(
                        Opcode.NOP_IN,
                        flags=0x80,
                        lun=req.lun,
                        itt=req.itt,
                        words=(NO_TAG, self.next_stat_sn(), self._exp(), self._max(), 0, 0, 0),
                        data=req.data,
                    )
                )
            return
        if op == Opcode.LOGOUT_REQUEST:
            self.send(
                Pdu(
                    Opcode.LOGOUT_RESPONSE,
                    flags=0x80,
                    itt=req.itt,
                    words=(0, self.next_stat_sn(), self._exp(), self._max(), 0, 0, 0),
                )
            )
            raise _Closed
        if op == Opcode.TASK_MGMT_REQUEST:
            self.send(
                Pdu(
                    Opcode.TASK_MGMT_RESPONSE,
                    flags=0x80,
                    itt=req.itt,
                    words=(0, self.next_stat_sn(), self._exp(), self._max(), 0, 0, 0),
                )
            )
            return
        if op == Opcode.SCSI_COMMAND:
            with self.t._lock:
                self.t.commands += 1
            if not req.immediate:
                self.exp_cmd_sn = (req.words[1] + 1) & 0xFFFFFFFF
            self.command(req)

    def _exp(self) -> int:
        return self.exp_cmd_sn

    def _max(self) -> int:
        return (self.exp_cmd_sn + 31) & 0xFFFFFFFF

    def _status(self, req: Pdu, *, status: int = 0, data: bytes = b"", **bad: bool) -> Pdu:
        return Pdu(
            Opcode.SCSI_RESPONSE,
            flags=0x80,
            b3=status,
            itt=req.itt,
            words=(0, self.next_stat_sn(), self._exp(), self._max(), 0, 0, 0),
            data=data,
        )

    def _data_in(self, req: Pdu, data: bytes, *, itt: int | None = None) -> Pdu:
        want = req.words[0]
        flags = 0x81
        residual = 0
        if len(data) < want:
            flags |= 0x02  # U: underflow
            residual = want - len(data)
        return Pdu(
            Opcode.DATA_IN,
            flags=flags,
            itt=req.itt if itt is None else itt,
            words=(NO_TAG, self.next_stat_sn(), self._exp(), self._max(), 0, 0, residual),
            data=data,
        )

    def _answer_data(self, req: Pdu) -> bytes:
        cdb = req.cdb
        want = req.words[0]
        if cdb[:1] == b"\x12" and not cdb[1] & 1:
            return _INQUIRY[:want]
        return bytes(min(want, 64))

    def command(self, req: Pdu) -> None:
        s = self.t.scenario
        reads = bool(req.flags & 0x40) and req.words[0] > 0
        if s == "oversized_length":
            head = bytearray(
                bytes(
                    encode_pdu(
                        Pdu(Opcode.DATA_IN, itt=req.itt, words=(NO_TAG, 0, 0, 0, 0, 0xFFFFF000, 0))
                    )[0]
                )
            )
            head[5:8] = (0xFFFFFF).to_bytes(3, "big")
            if self.hd:
                head = bytearray(bytes(head[:_BHS]) + digest_bytes(bytes(head[:_BHS])))
            self.sock.sendall(head)
            junk = bytes(64 << 10)
            sent = 0
            while sent < self.t.junk_limit:
                self.sock.sendall(junk)
                sent += len(junk)
            return
        if s == "huge_sense_length":
            self.send(self._status(req, status=0x02, data=b"\xff\xff" + bytes(8)))
            return
        if s == "bad_header_digest":
            self.send(self._status(req), bad_header=True)
            return
        if s == "bad_data_digest":
            self.send(self._data_in(req, self._answer_data(req) or bytes(8)), bad_data=True)
            return
        if s == "statsn_outside_window":
            self.stat_sn = (self.stat_sn + (1 << 30)) & 0xFFFFFFFF
            self.send(self._status(req))
            return
        if s == "cmdsn_window_outside":
            far = (self.exp_cmd_sn + (1 << 30)) & 0xFFFFFFFF
            pdu = self._status(req)
            words = list(pdu.words)
            words[2], words[3] = far, (far - 2) & 0xFFFFFFFF
            self.send(Pdu(pdu.opcode, flags=pdu.flags, itt=pdu.itt, words=tuple(words)))
            return
        if s == "unsolicited_data_in":
            self.send(self._data_in(req, b"unasked-for data"))
            self.send(self._status(req))
            return
        if s == "unknown_itt":
            fake = Pdu(
                Opcode.SCSI_RESPONSE,
                flags=0x80,
                itt=req.itt ^ 0x5A5A5A5A,
                words=(0, self.next_stat_sn(), self._exp(), self._max(), 0, 0, 0),
            )
            self.send(fake)
            return
        if s == "truncated_pdu":
            self.sock.sendall(bytes(encode_pdu(self._status(req))[0])[:20])
            raise _Closed
        if s == "truncated_data":
            first = bytes(encode_pdu(self._data_in(req, bytes(100)))[0])
            self.sock.sendall(first + bytes(10))
            raise _Closed
        # good (and the login scenarios, should a login ever complete)
        if reads:
            self.send(self._data_in(req, self._answer_data(req)))
        else:
            self.send(self._status(req))
