"""iSCSI text keys (RFC 7143 sections 6 and 13): encoding, bounded parsing, negotiation.

Text data is a sequence of ``key=value`` strings, each ended by a NUL byte. The parser
refuses malformed data with :class:`~tapepath.errors.ProtocolError` and never accepts
more than :data:`MAX_TEXT` bytes in total. :class:`Params` holds the operational
values a login settled on; :func:`negotiate` computes them from what the initiator
offered and the target answered, with the RFC's rule for each key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from attrs import Attribute, field, frozen, validators

from tapepath.errors import ProtocolError
from tapepath.scsi._wire import Bytes

__all__ = [
    "MAX_TEXT",
    "Params",
    "decode_text",
    "encode_text",
    "negotiate",
    "offer_keys",
]

MAX_TEXT = 65536
"""The most text data (all PDUs of one exchange together) the parser accepts."""
MAX_KEY = 63
"""The longest key name the RFC allows."""
MAX_VALUE = 8192
"""The longest value accepted (CHAP challenges in hex are the long ones)."""


def encode_text(pairs: Iterable[tuple[str, str]] | Mapping[str, str]) -> bytes:
    """Encode ``key=value`` pairs as NUL-terminated UTF-8 strings.

    Raises:
        ValueError: a key is empty, too long or holds ``=`` or NUL, or a value holds NUL.
    """
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    out = bytearray()
    for key, value in items:
        if not key or len(key) > MAX_KEY or "=" in key or "\0" in key:
            raise ValueError(f"invalid iSCSI key name {key!r}")
        if "\0" in value:
            raise ValueError(f"value of {key} holds a NUL byte")
        out += f"{key}={value}".encode() + b"\0"
    return bytes(out)


def decode_text(data: Bytes) -> list[tuple[str, str]]:
    """Parse text data into ``(key, value)`` pairs, in order.

    A missing NUL after the last pair is tolerated; trailing NUL padding is skipped.

    Raises:
        ProtocolError: more than MAX_TEXT bytes, a pair without ``=``, a key longer than
            63 bytes, a value longer than 8192 bytes, or bytes that are not UTF-8.
    """
    if len(data) > MAX_TEXT:
        raise ProtocolError(f"text data of {len(data)} bytes exceeds {MAX_TEXT}")
    out: list[tuple[str, str]] = []
    for raw in bytes(data).split(b"\0"):
        if not raw:
            continue
        key, sep, value = raw.partition(b"=")
        if not sep or not key:
            raise ProtocolError("malformed text key (no key=value)")
        if len(key) > MAX_KEY:
            raise ProtocolError(f"text key of {len(key)} bytes exceeds {MAX_KEY}")
        if len(value) > MAX_VALUE:
            raise ProtocolError(f"text value of {len(value)} bytes exceeds {MAX_VALUE}")
        try:
            out.append((key.decode(), value.decode()))
        except UnicodeDecodeError as exc:
            raise ProtocolError("text key or value is not UTF-8") from exc
    return out


def _yes(v: bool) -> str:
    return "Yes" if v else "No"


def _range(lo: int, hi: int) -> list[Callable[[Any, Attribute[int], int], Any]]:
    return [validators.ge(lo), validators.le(hi)]


@frozen
class Params:
    """Operational parameters of a session and connection (RFC 7143 defaults).

    Attributes:
        header_digest: CRC32C on headers.
        data_digest: CRC32C on data segments.
        max_recv_data_segment_length: the most data the target may send us per PDU.
        max_xmit_data_segment_length: the most data we may send per PDU (the target's
            MaxRecvDataSegmentLength; 8192 when it declares none).
        first_burst_length: the most unsolicited data per command.
        max_burst_length: the most data per R2T sequence or Data-In sequence.
        immediate_data: data may ride in the SCSI Command PDU.
        initial_r2t: unsolicited Data-Out is forbidden (Yes).
        max_outstanding_r2t: R2Ts a command may have open.
        default_time2wait: seconds to wait before reconnecting after a drop.
        default_time2retain: seconds the target keeps task state after a drop.
        error_recovery_level: 0 (session recovery only).
        max_connections: connections per session.
    """

    header_digest: bool = False
    data_digest: bool = False
    max_recv_data_segment_length: int = field(default=262144, validator=_range(512, 0xFFFFFF))
    max_xmit_data_segment_length: int = field(default=8192, validator=_range(512, 0xFFFFFF))
    first_burst_length: int = field(default=65536, validator=_range(512, 0xFFFFFF))
    max_burst_length: int = field(default=262144, validator=_range(512, 0xFFFFFF))
    immediate_data: bool = True
    initial_r2t: bool = True
    max_outstanding_r2t: int = field(default=1, validator=_range(1, 65535))
    default_time2wait: int = field(default=2, validator=_range(0, 3600))
    default_time2retain: int = field(default=20, validator=_range(0, 3600))
    error_recovery_level: int = field(default=0, validator=_range(0, 2))
    max_connections: int = field(default=1, validator=_range(1, 65535))


def offer_keys(want: Params, *, discovery: bool = False) -> list[tuple[str, str]]:
    """The operational keys an initiator offers for the values in ``want``."""
    digest = ("CRC32C,None", "None")
    keys = [
        ("HeaderDigest", digest[0] if want.header_digest else digest[1]),
        ("DataDigest", digest[0] if want.data_digest else digest[1]),
        ("MaxRecvDataSegmentLength", str(want.max_recv_data_segment_length)),
    ]
    if discovery:
        return keys
    keys += [
        ("DefaultTime2Wait", str(want.default_time2wait)),
        ("DefaultTime2Retain", str(want.default_time2retain)),
        ("ErrorRecoveryLevel", str(want.error_recovery_level)),
        ("MaxConnections", str(want.max_connections)),
        ("InitialR2T", _yes(want.initial_r2t)),
        ("ImmediateData", _yes(want.immediate_data)),
        ("FirstBurstLength", str(want.first_burst_length)),
        ("MaxBurstLength", str(want.max_burst_length)),
        ("MaxOutstandingR2T", str(want.max_outstanding_r2t)),
        ("IFMarker", "No"),
        ("OFMarker", "No"),
        ("DataPDUInOrder", "Yes"),
        ("DataSequenceInOrder", "Yes"),
    ]
    return keys


def _num(key: str, value: str, lo: int, hi: int) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise ProtocolError(f"{key}={value!r} is not a number")
    n = int(value)
    if not lo <= n <= hi:
        raise ProtocolError(f"{key}={n} is outside {lo}..{hi}")
    return n


def _bool(key: str, value: str) -> bool:
    if value not in ("Yes", "No"):
        raise ProtocolError(f"{key}={value!r} is neither Yes nor No")
    return value == "Yes"


def _digest(key: str, value: str, offered: bool) -> bool:
    if value == "CRC32C":
        if not offered:
            raise ProtocolError(f"target chose {key}=CRC32C, which was not offered")
        return True
    if value == "None":
        return False
    raise ProtocolError(f"target chose an unknown {key}={value!r}")


def negotiate(want: Params, answers: Iterable[tuple[str, str]]) -> Params:
    """The parameters that result from offering ``want`` and receiving ``answers``.

    Keys the target did not answer keep the RFC default for that key, except the
    target's MaxRecvDataSegmentLength, which stays 8192 (tgtd declares none).

    Raises:
        ProtocolError: an answer is malformed or out of range, or picks a value that
            was not offered (a digest we did not offer, ImmediateData=Yes after No).
    """
    result = Params(
        max_recv_data_segment_length=want.max_recv_data_segment_length,
    )
    values: dict[str, object] = {}
    for key, value in answers:
        if value in ("NotUnderstood", "Irrelevant", "Reject"):
            continue
        if key == "HeaderDigest":
            values["header_digest"] = _digest(key, value, want.header_digest)
        elif key == "DataDigest":
            values["data_digest"] = _digest(key, value, want.data_digest)
        elif key == "MaxRecvDataSegmentLength":
            values["max_xmit_data_segment_length"] = _num(key, value, 512, 0xFFFFFF)
        elif key == "FirstBurstLength":
            values["first_burst_length"] = min(
                _num(key, value, 512, 0xFFFFFF), want.first_burst_length
            )
        elif key == "MaxBurstLength":
            values["max_burst_length"] = min(_num(key, value, 512, 0xFFFFFF), want.max_burst_length)
        elif key == "ImmediateData":
            values["immediate_data"] = _bool(key, value) and want.immediate_data
        elif key == "InitialR2T":
            values["initial_r2t"] = _bool(key, value) or want.initial_r2t
        elif key == "MaxOutstandingR2T":
            values["max_outstanding_r2t"] = min(
                _num(key, value, 1, 65535), want.max_outstanding_r2t
            )
        elif key == "DefaultTime2Wait":
            values["default_time2wait"] = max(_num(key, value, 0, 3600), want.default_time2wait)
        elif key == "DefaultTime2Retain":
            values["default_time2retain"] = min(_num(key, value, 0, 3600), want.default_time2retain)
        elif key == "ErrorRecoveryLevel":
            values["error_recovery_level"] = min(_num(key, value, 0, 2), want.error_recovery_level)
        elif key == "MaxConnections":
            values["max_connections"] = min(_num(key, value, 1, 65535), want.max_connections)
    import attrs  # noqa: PLC0415  (local: keeps the module's public imports minimal)

    merged = attrs.evolve(result, **values)  # type: ignore[arg-type]
    if merged.first_burst_length > merged.max_burst_length:
        merged = attrs.evolve(merged, first_burst_length=merged.max_burst_length)
    return merged
