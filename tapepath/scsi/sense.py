"""Sense data decoding (placeholder until the sense codec lands)."""

from __future__ import annotations

from attrs import frozen

__all__ = ["Sense", "decode_sense"]


@frozen
class Sense:
    """Decoded sense data."""

    sense_key: int
    asc: int
    ascq: int


def decode_sense(buf: bytes) -> Sense:
    """Decode fixed or descriptor sense data."""
    raise NotImplementedError
