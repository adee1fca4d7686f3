"""CHAP for iSCSI login (RFC 7143 section 12.1.3, RFC 1994), sans-I/O.

The response to a challenge is ``H(identifier || secret || challenge)`` with the hash
the target chose from the initiator's CHAP_A list: MD5 (5), SHA-1 (6), SHA-256 (7)
or SHA3-256 (8) in the IANA PPP numbering. Binary values travel as ``0x`` hex or
``0b`` base64. :class:`Secret` keeps a password out of every repr and message.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets

from attrs import field, frozen

from tapepath.errors import AuthenticationError, ProtocolError

__all__ = [
    "ChapAlgorithm",
    "Credentials",
    "Secret",
    "chap_response",
    "decode_binary",
    "encode_binary",
    "new_challenge",
    "parse_algorithms",
    "verify_response",
]

MAX_CHALLENGE = 1024
"""The longest challenge accepted from a target, in bytes."""


class ChapAlgorithm(enum.IntEnum):
    """CHAP_A values (IANA PPP authentication algorithms)."""

    MD5 = 5
    SHA1 = 6
    SHA256 = 7
    SHA3_256 = 8

    @property
    def hashlib_name(self) -> str:
        """The name hashlib knows the algorithm by."""
        return {5: "md5", 6: "sha1", 7: "sha256", 8: "sha3_256"}[int(self)]


class Secret:
    """A password that never shows itself in a repr, str or format."""

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        self._value = (
            value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
        )

    def reveal(self) -> bytes:
        """The secret's bytes (for hashing only)."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def _secret(value: Secret | str | bytes | None) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)


@frozen
class Credentials:
    """CHAP accounts for a login.

    Attributes:
        user: the initiator's CHAP name.
        password: the initiator's secret.
        target_user: for mutual CHAP, the name the target must answer with.
        target_password: for mutual CHAP, the target's secret.
        algorithms: CHAP_A values offered, most preferred first. The default leaves
            out SHA-256 (7) because tgtd (1.0.85) accepts CHAP_A=7 but computes SHA-1
            for it, so a standard SHA-256 answer fails there; offer it explicitly for
            targets that implement RFC 7143's list correctly (LIO, for one).
    """

    user: str
    password: Secret | None = field(converter=_secret, repr=False)
    target_user: str | None = None
    target_password: Secret | None = field(default=None, converter=_secret, repr=False)
    algorithms: tuple[ChapAlgorithm, ...] = (ChapAlgorithm.SHA1, ChapAlgorithm.MD5)

    @property
    def mutual(self) -> bool:
        """True when the target must authenticate itself too."""
        return self.target_password is not None


def parse_algorithms(text: str) -> tuple[ChapAlgorithm, ...]:
    """Parse a CHAP_A preference list such as ``"7,6,5"`` or ``"sha256,md5"``.

    Raises:
        ValueError: an unknown algorithm or an empty list.
    """
    names = {"md5": 5, "sha1": 6, "sha-1": 6, "sha256": 7, "sha-256": 7, "sha3-256": 8}
    out: list[ChapAlgorithm] = []
    for item in text.split(","):
        word = item.strip().lower()
        value = int(word) if (word.isascii() and word.isdigit()) else names.get(word, -1)
        try:
            out.append(ChapAlgorithm(value))
        except ValueError:
            raise ValueError(f"unknown CHAP algorithm {item.strip()!r}") from None
    if not out:
        raise ValueError("empty CHAP algorithm list")
    return tuple(dict.fromkeys(out))


def encode_binary(value: bytes) -> str:
    """Encode bytes as an iSCSI hex constant (``0x...``)."""
    return "0x" + value.hex()


def decode_binary(text: str, *, limit: int = MAX_CHALLENGE) -> bytes:
    """Decode an iSCSI binary value (``0x`` hex or ``0b`` base64), at most ``limit`` bytes.

    Raises:
        ProtocolError: the value is malformed, empty or too long.
    """
    prefix, body = text[:2].lower(), text[2:]
    if len(body) > 2 * limit + 4:
        raise ProtocolError(f"binary value longer than {limit} bytes")
    try:
        if prefix == "0x":
            if len(body) % 2:
                body = "0" + body
            out = bytes.fromhex(body)
        elif prefix == "0b":
            out = base64.b64decode(body, validate=True)
        else:
            raise ProtocolError("binary value without 0x or 0b prefix")
    except (ValueError, binascii.Error) as exc:
        raise ProtocolError("malformed binary value") from exc
    if not out or len(out) > limit:
        raise ProtocolError(f"binary value of {len(out)} bytes (1..{limit} allowed)")
    return out


def chap_response(
    algorithm: ChapAlgorithm, identifier: int, secret: Secret, challenge: bytes
) -> bytes:
    """The CHAP response ``H(identifier || secret || challenge)``."""
    h = hashlib.new(algorithm.hashlib_name)
    h.update(bytes((identifier & 0xFF,)))
    h.update(secret.reveal())
    h.update(challenge)
    return h.digest()


def new_challenge(algorithm: ChapAlgorithm) -> tuple[int, bytes]:
    """A fresh identifier and challenge for mutual CHAP (challenge as long as the hash)."""
    size = max(16, hashlib.new(algorithm.hashlib_name).digest_size)
    return secrets.randbelow(256), secrets.token_bytes(size)


def verify_response(
    algorithm: ChapAlgorithm, identifier: int, secret: Secret, challenge: bytes, answer: bytes
) -> None:
    """Check the target's answer to our challenge.

    Raises:
        AuthenticationError: the answer is wrong (the message holds no secret).
    """
    expected = chap_response(algorithm, identifier, secret, challenge)
    if not hmac.compare_digest(expected, answer):
        raise AuthenticationError("the target's mutual CHAP response is wrong")
