"""ChangerRecovery: synchronise a medium changer by its element status.

For a MOVE MEDIUM that may have run, recovery reads (READ ELEMENT STATUS with volume
tags) the source, the destination and the medium transport elements on the new path:

- source empty, destination full (with the source's cartridge when that is known: the
  barcode tracked from earlier READ ELEMENT STATUS answers, or the destination's source
  element address), transport empty: it ran; complete it without resending;
- source full (with the same cartridge as before, when known), destination empty,
  transport empty: it did not run; resend it;
- source and destination empty, the cartridge in a transport element: the robot
  stopped on the way; finish the move from there (MOVE MEDIUM transport -> destination;
  a robot still busy with it, NOT READY 04/01, is waited for and looked at again);
- anything else: :class:`~tapepath.recovery.errors.MoveAmbiguousError` with what was
  seen, nothing resent.

INITIALIZE ELEMENT STATUS (with or without range) and POSITION TO ELEMENT are simply
resent. An EXCHANGE MEDIUM is complete when the first destination holds the source's cartridge
and the second destination the first destination's (barcodes or source addresses),
not started when everything is where it was; otherwise ambiguous.
"""

from __future__ import annotations

from typing import Any

from tapepath.errors import DecodeError
from tapepath.recovery.driver import REPEATABLE, RecoveryDriver, Run, command_name
from tapepath.recovery.errors import MoveAmbiguousError
from tapepath.recovery.machine import Action, Event
from tapepath.recovery.tracking import DeviceState
from tapepath.scsi.changer import MoveMedium
from tapepath.scsi.element_status import ElementDescriptor, ElementStatus, ReadElementStatus
from tapepath.transport.base import Outcome, Response

__all__ = ["ChangerRecovery", "ChangerState"]

_MOVE, _EXCHANGE, _RES = 0xA5, 0xA6, 0xB8
_ALLOC = 0xFFFF
_CHANGER_REPEATABLE = frozenset(
    {
        0x07,  # INITIALIZE ELEMENT STATUS
        0x2B,  # POSITION TO ELEMENT
        0x37,  # INITIALIZE ELEMENT STATUS WITH RANGE
    }
)
"""Changer commands whose repetition changes nothing (besides the common ones)."""
_BUSY_WAIT = 0.05


class ChangerState(DeviceState):
    """A changer's settings plus the cartridges seen in its elements (from the READ
    ELEMENT STATUS answers and the moves that completed)."""

    def __init__(self) -> None:
        super().__init__()
        self._contents: dict[int, str | None] = {}
        self._types: dict[int, int] = {}

    def barcode_at(self, address: int) -> str | None:
        """The barcode last seen at ``address`` (None: empty or not known)."""
        return self._contents.get(address)

    def element_type(self, address: int) -> int | None:
        """The element type code last reported for ``address`` (None: not seen)."""
        return self._types.get(address)

    def known(self, address: int) -> bool:
        """Whether the element's content has been seen."""
        return address in self._contents

    def observe(
        self, cdb: bytes, data_out: bytes, r: Response, data_in: bytes | memoryview
    ) -> None:
        """Update settings and element contents from one completed command."""
        super().observe(cdb, data_out, r, data_in)
        if len(cdb) < 12 or r.outcome is not Outcome.OK:  # all three are 12-byte CDBs
            return
        op = cdb[0]
        if op == _RES and r.status == 0 and cdb[1] & 0x10:
            try:
                status = ElementStatus.from_bytes(bytes(data_in))
            except DecodeError:
                return
            with self._lock:
                for page in status.pages:
                    for d in page.descriptors:
                        self._types[d.address] = page.element_type
                        if not d.partial:
                            self._contents[d.address] = d.barcode if d.full else None
        elif op in (_MOVE, _EXCHANGE):
            src, dst = _addr(cdb, 4), _addr(cdb, 6)
            with self._lock:
                if r.status != 0:  # refused or stopped half-way: look again next time
                    for addr in (src, dst, _addr(cdb, 8) if op == _EXCHANGE else dst):
                        self._contents.pop(addr, None)
                elif op == _MOVE:
                    self._contents[dst] = self._contents.pop(src, None)
                    self._contents[src] = None
                else:
                    dst2 = _addr(cdb, 8)
                    first, second = self._contents.get(src), self._contents.get(dst)
                    self._contents.pop(src, None)
                    self._contents[dst] = first
                    self._contents[dst2] = second


def _addr(cdb: bytes, offset: int) -> int:
    return int.from_bytes(cdb[offset : offset + 2], "big")


def _describe(d: ElementDescriptor | None) -> str:
    if d is None:
        return "not reported"
    if not d.full:
        return "empty"
    text = "full" + (f" {d.barcode}" if d.barcode else "")
    if d.source is not None:
        text += f" from {d.source:04X}h"
    return text


class ChangerRecovery(RecoveryDriver):
    """The recovery hook for a medium changer: pass it as
    ``MultipathDevice(paths, recovery=ChangerRecovery())``.

    Args:
        **kwargs: see :class:`~tapepath.recovery.driver.RecoveryDriver`.

    Attributes:
        state: the tracked settings and element contents.
    """

    state: ChangerState
    safe: frozenset[int] = REPEATABLE | _CHANGER_REPEATABLE

    def __init__(self, **kwargs: Any) -> None:
        self.state = ChangerState()
        super().__init__(**kwargs)
        self._transport = 0

    def synchronize(self, run: Run, action: Action) -> Event:
        """Read the element status (READ_STATE) or finish a move (FINISH_MOVE)."""
        f = run.failed
        if not f.cdb:  # a path switch: the robot's state needs no check
            return Event.NOTHING_OUTSTANDING
        if f.opcode in _CHANGER_REPEATABLE:
            return Event.STATE_READ
        if f.opcode not in (_MOVE, _EXCHANGE) or len(f.cdb) < 12:
            return super().synchronize(run, action)
        if not f.maybe_executed:
            return Event.STATE_READ
        if action is Action.FINISH_MOVE:
            return self._finish(run)
        if f.opcode == _EXCHANGE:
            return self._exchange(run)
        src, dst = _addr(f.cdb, 4), _addr(f.cdb, 6)
        seen, transports = self.read_elements(run, (src, dst))
        s, d = seen.get(src), seen.get(dst)
        full_t = [t for t in transports if t.full]
        want = self.state.barcode_at(src) if self.state.known(src) else None
        if s is not None and d is not None:
            if not s.full and d.full and not full_t and _same(d, want, src):
                run.response = Response()
                return Event.EFFECT_PRESENT
            if s.full and not d.full and not full_t and (want is None or s.barcode == want):
                return Event.STATE_READ
            if not s.full and not d.full and len(full_t) == 1 and _same(full_t[0], want, src):
                self._transport = full_t[0].address
                return Event.MOVE_IN_TRANSPORT
        run.error = self._ambiguous(run, src, dst, seen, transports)
        return Event.STATE_AMBIGUOUS

    def _finish(self, run: Run) -> Event:
        """MOVE MEDIUM from the transport element to the destination."""
        f = run.failed
        t = self._transport
        cdb = MoveMedium(transport=t, source=t, destination=_addr(f.cdb, 6)).to_bytes()
        r = run.send(cdb, timeout=max(f.timeout, run.timeout))
        if r.ok:
            run.response = r
            return Event.RESENT
        s = r.sense_data if r.check_condition else None
        busy = s is not None and s.sense_key == 0x02 and s.asc == 0x04 and s.ascq == 0x01
        if busy and run.machine.elapsed < max(f.timeout, run.timeout):
            run.device.wait(_BUSY_WAIT)  # the robot is still on its way: look again
            return Event.ROBOT_BUSY
        run.error = MoveAmbiguousError(
            f"{run.device.name}: finishing {command_name(f.cdb)} from the transport element "
            f"{t:04X}h failed ({s if s is not None else r.outcome.value}); nothing else sent",
            seen={t: "full (the move's cartridge)"},
            command=bytes(f.cdb),
            source=_addr(f.cdb, 4),
            destination=_addr(f.cdb, 6),
        )
        return Event.RESEND_FAILED

    def _exchange(self, run: Run) -> Event:
        f = run.failed
        src, dst1, dst2 = _addr(f.cdb, 4), _addr(f.cdb, 6), _addr(f.cdb, 8)
        seen, transports = self.read_elements(run, (src, dst1, dst2))
        s, d1, d2 = seen.get(src), seen.get(dst1), seen.get(dst2)
        full_t = [t for t in transports if t.full]
        first = self.state.barcode_at(src) if self.state.known(src) else None
        second = self.state.barcode_at(dst1) if self.state.known(dst1) else None
        if s is not None and d1 is not None and d2 is not None and not full_t:
            if (
                d1.full
                and d2.full
                and _same(d1, first, src)
                and _same(d2, second, dst1)
                and (first is not None or d1.source is not None)
                and (second is not None or d2.source is not None)
            ):
                run.response = Response()
                return Event.EFFECT_PRESENT
            untouched = (
                first is not None
                and second is not None
                and s.full
                and s.barcode == first
                and d1.full
                and d1.barcode == second
            )
            if untouched and (dst2 == src or not d2.full):
                return Event.STATE_READ
        run.error = self._ambiguous(run, src, dst1, seen, transports)
        return Event.STATE_AMBIGUOUS

    def read_elements(
        self, run: Run, addresses: tuple[int, ...]
    ) -> tuple[dict[int, ElementDescriptor], list[ElementDescriptor]]:
        """READ ELEMENT STATUS (volume tags) of ``addresses`` and of every transport.

        One element type per command (tgtd returns corrupt pages for all types at once):
        the type seen for the address earlier, else storage, data transfer,
        import/export and transport in turn until the address is reported.
        """
        seen: dict[int, ElementDescriptor] = {}
        for a in addresses:
            known = self.state.element_type(a)
            for code in (known,) if known is not None else (2, 4, 3, 1):
                cdb = ReadElementStatus(
                    element_type=code,
                    voltag=True,
                    starting_address=a,
                    number_of_elements=1,
                    allocation_length=_ALLOC,
                )
                found = [d for d in self._res(run, cdb) if d.address == a]
                if found:
                    seen[a] = found[0]
                    break
        cdb = ReadElementStatus(element_type=1, voltag=True, allocation_length=_ALLOC)
        return seen, self._res(run, cdb)

    def _res(self, run: Run, cdb: ReadElementStatus) -> list[ElementDescriptor]:
        """The descriptors of one READ ELEMENT STATUS (a cut last one included: its
        address, flags, source and volume tag are there, as tgtd sends it)."""
        r = run.send(cdb.to_bytes(), data_in_len=cdb.allocation_length)
        if not r.ok:
            return []
        try:
            status = ElementStatus.from_bytes(r.data)
        except DecodeError:
            return []
        return list(status.descriptors(cdb.element_type or None))

    def _ambiguous(
        self,
        run: Run,
        src: int,
        dst: int,
        seen: dict[int, ElementDescriptor],
        transports: list[ElementDescriptor],
    ) -> MoveAmbiguousError:
        f = run.failed
        report = {a: _describe(seen.get(a)) for a in seen} | {
            t.address: _describe(t) for t in transports
        }
        for a in (src, dst):
            report.setdefault(a, "not reported")
        text = ", ".join(f"{a:04X}h {v}" for a, v in sorted(report.items()))
        return MoveAmbiguousError(
            f"{run.device.name}: cannot tell whether {command_name(f.cdb)} {src:04X}h -> "
            f"{dst:04X}h ran before {f.path.url} failed; seen on {run.path.url}: {text}; "
            f"nothing was resent",
            seen=report,
            command=bytes(f.cdb),
            source=src,
            destination=dst,
        )


def _same(d: ElementDescriptor, barcode: str | None, source: int) -> bool:
    """``d`` holds the cartridge that was at ``source`` (by barcode when known, else by
    the source element address when the device reports one)."""
    if barcode is not None:
        return d.barcode == barcode
    return d.source is None or d.source == source
