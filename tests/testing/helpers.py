"""Small helpers for the virtual library tests: open a path with its 29/00 consumed."""

from __future__ import annotations

import tapepath
from tapepath.scsi.sense import decode_sense
from tapepath.transport import Response, Transport


def ready(url: str) -> Transport:
    """Open ``url`` and clear the power-on unit attention every new nexus starts with."""
    t = tapepath.open_transport(url)
    r = t.execute(bytes(6))
    assert r.check_condition
    s = decode_sense(r.sense)
    assert (s.sense_key, s.asc, s.ascq) == (6, 0x29, 0x00)
    return t


def sense_of(r: Response) -> tuple[int, int, int]:
    """(key, asc, ascq) of a CHECK CONDITION response."""
    assert r.check_condition, r
    s = decode_sense(r.sense)
    return (int(s.sense_key), s.asc, s.ascq)
