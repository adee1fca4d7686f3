"""Helpers for the recovery tests: devices over a VirtualLibrary, commands past UAs."""

from __future__ import annotations

import itertools
from typing import Any

from tapepath.multipath import MultipathDevice
from tapepath.multipath.handlers import AluaHandler
from tapepath.recovery import ChangerRecovery, TapeRecovery
from tapepath.testing.clock import VirtualClock
from tapepath.testing.library import VirtualLibrary
from tapepath.transport.base import Response

_names = itertools.count()


def library(**kw: Any) -> VirtualLibrary:
    """A fresh VirtualLibrary on a virtual clock, with a unique name."""
    kw.setdefault("clock", VirtualClock())
    return VirtualLibrary(f"rec{next(_names)}", **kw)


def tape_device(lib: VirtualLibrary, hook: TapeRecovery, drive: int = 0) -> MultipathDevice:
    """Drive ``drive`` over all its ports, with ``hook``; no monitor, no activation."""
    return MultipathDevice(
        lib.drive_urls(drive), name=f"drive{drive}", recovery=hook, handler=None, monitor=False
    )


def changer_device(lib: VirtualLibrary, hook: ChangerRecovery) -> MultipathDevice:
    """The changer over its control paths (ALUA activation), with ``hook``."""
    return MultipathDevice(
        lib.changer_urls(), name="changer", recovery=hook, handler=AluaHandler(), monitor=False
    )


def send(dev: MultipathDevice, cdb: bytes, **kw: Any) -> Response:
    """Send, passing over unit attentions (a new nexus starts with one)."""
    kw.setdefault("timeout", 10.0)
    r = dev.execute(cdb, **kw)
    for _ in range(5):
        if not (r.check_condition and r.sense and (r.sense[2] & 0x0F) == 6):
            break
        r = dev.execute(cdb, **kw)
    return r
