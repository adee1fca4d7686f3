"""Campaign scenarios on a real iSCSI target: tgtd's virtual tape library, two portals.

One private :class:`~tapepath.testing.tgtd.TgtdInstance` serves every tgtd scenario
(starting one costs about a second); the model carries over from one scenario to the
next after each check. A scenario draws one or two real faults and fires each just
before a random call, from a timer thread a few milliseconds later, so it lands while
commands are in flight:

- ``conn_delete``: tgtadm deletes every connection (a hard path cut).
- ``portal_cycle``: the second portal is removed and its connections deleted (logins
  there are refused), then restored three calls later.
- ``kill_restart``: tgtd is killed (SIGKILL) and restarted on the same backing files
  half a second later; tgtd then puts every cartridge back in its configured slot, so
  the model's locations go back there too (tape contents stay).
- ``black_hole``: tgtd is paused (SIGSTOP) and resumed (SIGCONT) 0.3 to 2 s later.

The check opens fresh handles, reads the inventory and reads back every tape the
scenario wrote (loading it into a free drive when it is in a slot).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from tapepath.errors import EndOfDataError, TapepathError
from tapepath.testing.campaign.model import Model
from tapepath.testing.campaign.report import Tally
from tapepath.testing.campaign.workload import Workload
from tapepath.testing.tgtd import TgtdError, TgtdInstance, VtlLayout

if TYPE_CHECKING:
    from tapepath.drive import TapeDrive
    from tapepath.library import Library

__all__ = ["TGTD_FAULTS", "TgtdCampaign"]

log = structlog.get_logger("tapepath.testing.campaign")

TGTD_FAULTS = ("conn_delete", "portal_cycle", "kill_restart", "black_hole")
"""The real faults a tgtd scenario draws from."""

TIMEOUT = 3.0
"""Seconds each command may take on tgtd."""


class _TgtdRig:
    def __init__(
        self,
        campaign: TgtdCampaign,
        model: Model,
        rng: random.Random,
        plan: dict[int, str],
    ) -> None:
        self.c = campaign
        self.model = model
        self.rng = rng
        self.plan = plan
        self.fired = 0
        self.timers: list[threading.Thread] = []
        self._library: Library | None = None
        self._drives: list[TapeDrive] = []
        self._restore_portal_at: int | None = None
        self.slot_addresses = campaign.layout.slot_addresses

    def open(self) -> None:
        import tapepath  # noqa: PLC0415

        urls = self.c.urls
        self._library = tapepath.open_library(
            urls(self.c.layout.changer_lun), monitor=False, timeout=TIMEOUT, move_timeout=TIMEOUT
        )
        self._drives = [
            tapepath.open_drive(urls(lun), monitor=False, timeout=TIMEOUT, long_timeout=TIMEOUT)
            for lun in self.c.layout.drive_luns
        ]

    def close(self) -> None:
        for d in self._drives:
            with contextlib.suppress(Exception):
                d.close()
        if self._library is not None:
            with contextlib.suppress(Exception):
                self._library.close()

    @property
    def library(self) -> Library:
        assert self._library is not None
        return self._library

    def drive(self, i: int) -> TapeDrive:
        return self._drives[i]

    def now(self) -> float:
        return time.monotonic()

    def bound(self, kind: str) -> float:
        # A command may wait its timeout on each portal and once more in recovery.
        return 3 * TIMEOUT + 2.0

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        def run() -> None:
            time.sleep(delay)
            try:
                action()
            except (TgtdError, OSError) as exc:
                log.warning("campaign_fault_action_failed", error=str(exc))

        t = threading.Thread(target=run, name="campaign-fault", daemon=True)
        t.start()
        self.timers.append(t)

    def before_call(self, index: int) -> None:
        if self._restore_portal_at == index:
            self._restore_portal_at = None
            self.c.restore_portal()
        fault = self.plan.get(index)
        if fault is None:
            return
        for t in self.timers:  # one fault at a time: the previous one has landed
            t.join()
        self.timers.clear()
        try:
            self._fire(fault, index)
        except TgtdError as exc:
            log.warning("campaign_fault_not_injected", fault=fault, error=str(exc))
            return
        self.fired += 1

    def _fire(self, fault: str, index: int) -> None:
        tgt = self.c.tgt
        self.c.repair()
        soon = self.rng.uniform(0.0, 0.01)
        log.info("campaign_tgtd_fault", fault=fault, call=index)
        if fault == "conn_delete":
            self._later(soon, self.c.delete_connections)
        elif fault == "portal_cycle":
            self._later(soon, self.c.remove_portal)
            self._restore_portal_at = index + 3
        elif fault == "kill_restart":
            tgt.kill()
            self.model.reset_locations(self.c.initial)
            self._later(0.5, self.c.restart)
        else:
            tgt.pause()
            self._later(self.rng.uniform(0.3, 2.0), tgt.resume)

    def settle(self) -> None:
        for t in self.timers:
            t.join()
        self.c.repair()


class TgtdCampaign:
    """The tgtd side of a campaign: one private tgtd, the model, the scenarios.

    Use as a context manager (it starts and stops the tgtd instance).
    """

    def __init__(self) -> None:
        self.tgt = TgtdInstance()
        self.layout: VtlLayout
        self.second_port = 0
        self.model: Model
        self.initial: dict[str, int] = {}

    def __enter__(self) -> TgtdCampaign:
        self.tgt.start()
        try:
            self.layout = self.tgt.configure_vtl(drives=2, slots=6, cartridge_mb=8)
            self.second_port = self.tgt.add_portal()
        except BaseException:
            self.tgt.stop()
            raise
        lay = self.layout
        self.initial = dict(zip(lay.barcodes, lay.slot_addresses, strict=False))
        self.model = Model(location=dict(self.initial), drive_addresses=lay.drive_addresses)
        return self

    def __exit__(self, *exc: object) -> None:
        self.tgt.stop()

    def urls(self, lun: int) -> list[str]:
        """The LUN's URL through the first portal and the second one."""
        return [self.tgt.url(lun), self.tgt.url(lun, port=self.second_port)]

    # -- fault actions ------------------------------------------------------------------

    def delete_connections(self) -> None:
        """Delete every connection of the library's target."""
        for c in self.tgt.connections(self.layout.tid):
            with contextlib.suppress(TgtdError):
                self.tgt.delete_connection(c.tid, c.sid, c.cid)

    def remove_portal(self) -> None:
        """Stop listening on the second portal and cut every connection."""
        if self.second_port in self.tgt.portals:
            self.tgt.delete_portal(self.second_port)
        self.delete_connections()

    def restore_portal(self) -> None:
        """Listen on the second portal again."""
        if self.tgt.running and self.second_port not in self.tgt.portals:
            self.tgt.add_portal(self.second_port)

    def restart(self) -> None:
        """Start tgtd again after a kill (same ports, channel and backing files)."""
        if not self.tgt.running:
            self.tgt.restart()

    def repair(self) -> None:
        """Undo whatever fault is left: running, resumed, both portals."""
        if not self.tgt.running:
            self.tgt.restart()
        with contextlib.suppress(TgtdError):
            self.tgt.resume()
        self.restore_portal()

    # -- scenarios ------------------------------------------------------------------------

    def run_scenario(self, seed: int, tally: Tally, *, calls: int = 12) -> None:
        """Run one seeded scenario and add its counts to ``tally``."""
        rng = random.Random(seed)
        faults = rng.sample(TGTD_FAULTS, rng.randint(1, 2))
        at = rng.sample(range(calls), len(faults))
        own = Tally(scenarios=1, tgtd_scenarios=1)
        before = {c: list(t) for c, t in self.model.tapes.items()}
        rig = _TgtdRig(self, self.model, rng, dict(zip(at, faults, strict=True)))
        work = Workload(rig, self.model, rng, own, f"tgtd{seed}")
        try:
            rig.open()
            work.run(calls)
        except TapepathError as exc:  # opening the handles met the fault
            own.note_error(exc)
            work.errors += 1
        finally:
            rig.close()
            rig.settle()
        own.faults_injected = rig.fired
        touched = {c for c, t in self.model.tapes.items() if before.get(c) != t}
        touched |= {d.barcode for d in self.model.doubts if d.kind == "write"}
        self._check(touched, own, f"tgtd{seed}")
        if rig.fired:
            own.scenarios_with_faults = 1
            if work.errors == 0:
                own.recovered_transparently = 1
        tally.add(own)

    def _check(self, touched: set[str], tally: Tally, tag: str) -> None:
        import tapepath  # noqa: PLC0415

        model = self.model
        tapes: dict[str, list[bytes]] = {}
        try:
            with tapepath.open_library(
                self.urls(self.layout.changer_lun), monitor=False, timeout=10.0
            ) as lib:
                actual = _locations(lib)
                bad = model.misplaced(actual)
                if bad:
                    tally.cartridges_misplaced += bad
                    tally.failures.append(f"{tag}: {bad} cartridge(s) misplaced: {actual}")
                for code in sorted(touched):
                    if actual.get(code) is None:
                        continue
                    tapes[code] = self._read_tape(lib, _locations(lib), code)
                    result = model.check_tape(code, tapes[code])
                    if not result.clean:
                        tally.records_lost += result.lost
                        tally.records_duplicated += result.duplicated
                        tally.records_foreign += result.foreign
                        tally.failures.append(
                            f"{tag}: tape {code}: lost {result.lost}, duplicated"
                            f" {result.duplicated}, foreign {result.foreign}"
                        )
                actual = _locations(lib)
        except TapepathError as exc:
            tally.checks_failed += 1
            tally.failures.append(f"{tag}: the check itself failed: {type(exc).__name__}: {exc}")
            self._resync()
            return
        model.settle(actual, tapes)

    def _resync(self) -> None:
        """After a failed check: take the target's word for everything (best effort)."""
        import tapepath  # noqa: PLC0415

        with (
            contextlib.suppress(TapepathError),
            tapepath.open_library(
                self.urls(self.layout.changer_lun), monitor=False, timeout=10.0
            ) as lib,
        ):
            actual = _locations(lib)
            tapes = {c: self._read_tape(lib, _locations(lib), c) for c in self.model.tapes}
            self.model.settle(actual, tapes)

    def _read_tape(self, lib: Library, actual: dict[str, int | None], code: str) -> list[bytes]:
        import tapepath  # noqa: PLC0415

        lay = self.layout
        where = actual.get(code)
        if where in lay.drive_addresses:
            i = lay.drive_addresses.index(where)
        else:
            full = {a for a in actual.values() if a is not None}
            free = [i for i, a in enumerate(lay.drive_addresses) if a not in full]
            if not free:
                slot = next(a for a in lay.slot_addresses if a not in full)
                lib.unload(0, lay.slot_addresses.index(slot) + 1)
                free = [0]
            i = free[0]
            assert where is not None
            lib.load(lay.slot_addresses.index(where) + 1, i)
        objs: list[bytes] = []
        with tapepath.open_drive(self.urls(lay.drive_luns[i]), monitor=False, timeout=10.0) as d:
            d.rewind()
            limit = len(self.model.tapes.get(code, [])) + 16
            for _ in range(limit):
                try:
                    objs.append(d.read(1 << 16))
                except EndOfDataError:
                    break
        return objs


def _locations(lib: Library) -> dict[str, int | None]:
    inv = lib.inventory()
    out: dict[str, int | None] = {}
    for group in (inv.drives, inv.slots, inv.import_export, inv.transports):
        for e in group:
            if e.full and e.barcode:
                out[e.barcode] = e.address
    return out
