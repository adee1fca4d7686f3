"""VirtualLibrary: an in-process tape library with ports, ALUA control paths and faults.

A library has a medium changer and tape drives. Each drive has ``ports_per_drive``
target ports; the changer is reached through control-path drives, each presenting a
changer logical unit on one changer port: the first is active, the others passive
(ALUA standby), in the HP StoreEver manner. Libraries register by name in a
process-wide registry, so ``sim://NAME/DEVICE?port=N`` URLs reach them through
:func:`tapepath.open_transport`.

Example:
    >>> from tapepath.testing import VirtualLibrary
    >>> import tapepath
    >>> with VirtualLibrary("doc-vtl") as lib:
    ...     t = tapepath.open_transport(lib.changer_urls()[0])
    ...     t.execute(bytes(6)).status   # the first command sees 29/00 (power on)
    2
"""

from __future__ import annotations

import threading
import weakref
import zlib
from collections.abc import Iterable, Sequence
from types import TracebackType

import structlog

from tapepath.testing._check import Check, SenseKey
from tapepath.testing.changer import ChangerModel, Element, ElementKind, ElementLayout
from tapepath.testing.clock import Clock, RealClock
from tapepath.testing.drive import DriveModel, PositionInfo
from tapepath.testing.engine import Session, apply_faults, execute
from tapepath.testing.faults import FaultPlan
from tapepath.testing.nexus import (
    ALUA_CHANGED,
    POWER_ON,
    AluaState,
    LogicalUnit,
    Nexus,
    Port,
)
from tapepath.testing.tape_image import Cartridge, TapeImage
from tapepath.transport.base import Response

__all__ = ["Session", "VirtualLibrary", "lookup", "registered_libraries"]

log = structlog.get_logger("tapepath.testing")

_registry: dict[str, weakref.ref[VirtualLibrary]] = {}
_registry_lock = threading.Lock()


def lookup(name: str) -> VirtualLibrary:
    """The registered library called ``name``.

    Raises:
        LookupError: no live library has that name.
    """
    with _registry_lock:
        ref = _registry.get(name)
        lib = ref() if ref is not None else None
    if lib is None:
        raise LookupError(f"no VirtualLibrary named {name!r} is registered")
    return lib


def registered_libraries() -> list[str]:
    """The names of the live registered libraries."""
    with _registry_lock:
        return sorted(n for n, r in _registry.items() if r() is not None)


class VirtualLibrary:
    """An in-process SMC changer and SSC drives with several ports each.

    Args:
        name: the name in ``sim://NAME/...`` URLs (unique among live libraries).
        slots: storage elements.
        drives: tape drives (data transfer elements).
        import_export: import/export elements (mail slots).
        transports: medium transport elements.
        ports_per_drive: target ports of each drive.
        control_paths: the drives presenting a changer LUN, one changer port each, in
            order; the first starts active. Default: drives 0 and 1 (or just 0).
        layout: element address assignment (start addresses); counts come from the
            arguments above.
        cartridges: barcodes to place in slots 0, 1, ... (None: all slots but the last
            quarter get ``TP0001L8``, ``TP0002L8`` ...; an int: that many).
        move_time: seconds (on ``clock``) a robot move takes; the cartridge sits in the
            medium transport element meanwhile.
        clock: the clock for moves, delays and time triggers (default: real time).
        fault_plan: faults to inject (see :meth:`install`).
        auto_unload: a MOVE MEDIUM from a drive with a loaded tape unloads it (True) or
            fails with 53/00 until LOAD UNLOAD ejected it (False).
        register: enter the process-wide registry (needed for sim:// URLs).
        capacity: bytes per tape.
    """

    def __init__(
        self,
        name: str = "vtl",
        *,
        slots: int = 24,
        drives: int = 2,
        import_export: int = 4,
        transports: int = 1,
        ports_per_drive: int = 2,
        control_paths: Sequence[int] | None = None,
        layout: ElementLayout | None = None,
        cartridges: Iterable[str] | int | None = None,
        move_time: float = 0.0,
        clock: Clock | None = None,
        fault_plan: FaultPlan | None = None,
        auto_unload: bool = True,
        register: bool = True,
        capacity: int = 1 << 30,
    ) -> None:
        if not name or "/" in name or "?" in name:
            raise ValueError(f"library name {name!r} must be non-empty, without '/' or '?'")
        if drives < 1 or ports_per_drive < 1 or slots < 0 or import_export < 0:
            raise ValueError("need drives >= 1, ports_per_drive >= 1, slots/import_export >= 0")
        if move_time < 0:
            raise ValueError("move_time must be >= 0")
        self.name = name
        self.clock: Clock = clock if clock is not None else RealClock()
        self.move_time = move_time
        self.capacity = capacity
        self._lock = threading.Lock()
        self._robot_busy = False
        self._robot_stop_pending = False
        self._power_generation = 0
        self._restore: dict[tuple[str, int], float] = {}
        self._closed = False
        base = layout or ElementLayout()
        self.layout = ElementLayout(
            transport_start=base.transport_start,
            transport_count=transports,
            storage_start=base.storage_start,
            storage_count=slots,
            import_export_start=base.import_export_start,
            import_export_count=import_export,
            drive_start=base.drive_start,
        )
        uid = zlib.crc32(name.encode()) & 0xFFFFFF  # stable serials and NAA per name
        self.drive_models = [DriveModel(serial=f"TPD{uid:06X}{i:02d}") for i in range(drives)]
        self.changer = ChangerModel(self.layout, self.drive_models, auto_unload=auto_unload)
        if control_paths is None:
            control_paths = (0, 1) if drives >= 2 else (0,)
        if not control_paths or any(not 0 <= c < drives for c in control_paths):
            raise ValueError(f"control_paths must name drives 0..{drives - 1}")
        if len(set(control_paths)) != len(control_paths):
            raise ValueError("control_paths must not repeat a drive")
        self.control_paths = tuple(control_paths)
        naa_base = 0x5_00E0_9E00_0000_000 | (uid << 12)
        self.changer_lu = LogicalUnit("changer", naa_base, f"TPL{uid:06X}")
        for i, _drive in enumerate(self.control_paths):
            self.changer_lu.ports.append(
                Port(
                    index=i,
                    relative_id=i + 1,
                    group=i + 1,
                    state=AluaState.ACTIVE_OPTIMIZED if i == 0 else AluaState.STANDBY,
                    preferred=i == 0,
                )
            )
        self.drive_lus: list[LogicalUnit] = []
        for i, model in enumerate(self.drive_models):
            lu = LogicalUnit(f"drive{i}", naa_base + 1 + i, model.serial)
            for p in range(ports_per_drive):
                lu.ports.append(Port(index=p, relative_id=p + 1, group=p + 1))
            self.drive_lus.append(lu)
        self.changer_lu.on_drop.append(self.changer.release)
        for lu, model in zip(self.drive_lus, self.drive_models, strict=True):
            lu.on_drop.append(model.release)
        self._fill(cartridges, slots)
        from tapepath.testing._changer_front import ChangerFront  # noqa: PLC0415
        from tapepath.testing._drive_front import DriveFront  # noqa: PLC0415

        self._fronts: dict[str, ChangerFront | DriveFront] = {"changer": ChangerFront(self)}
        for i in range(drives):
            self._fronts[f"drive{i}"] = DriveFront(self, i)
        self._plan: FaultPlan | None = None
        if fault_plan is not None:
            self.install(fault_plan)
        self._registered = False
        if register:
            self.register()

    def _fill(self, cartridges: Iterable[str] | int | None, slots: int) -> None:
        if cartridges is None:
            cartridges = slots - slots // 4
        if isinstance(cartridges, int):
            if not 0 <= cartridges <= slots:
                raise ValueError(f"cartridges must be 0..{slots}")
            cartridges = [f"TP{i + 1:04d}L8" for i in range(cartridges)]
        barcodes = list(cartridges)
        storage = self.changer.of_kind(ElementKind.STORAGE)
        if len(barcodes) > len(storage):
            raise ValueError(f"{len(barcodes)} cartridges do not fit in {len(storage)} slots")
        for el, code in zip(storage, barcodes, strict=False):
            self.changer.place(el.address, self._new_cartridge(code))

    def _new_cartridge(self, barcode: str | None, image: TapeImage | None = None) -> Cartridge:
        img = image if image is not None else TapeImage(capacity=self.capacity)
        return Cartridge(barcode, img)

    # ---- registry ---------------------------------------------------------------------

    def register(self) -> None:
        """Enter the registry under :attr:`name` (weakly: a dropped library leaves it).

        Raises:
            ValueError: another live library has the name.
        """
        with _registry_lock:
            ref = _registry.get(self.name)
            other = ref() if ref is not None else None
            if other is not None and other is not self:
                raise ValueError(f"a VirtualLibrary named {self.name!r} is already registered")
            _registry[self.name] = weakref.ref(self)
        self._registered = True

    def unregister(self) -> None:
        """Leave the registry (open transports keep working; new ones cannot open)."""
        with _registry_lock:
            ref = _registry.get(self.name)
            if ref is not None and ref() in (self, None):
                del _registry[self.name]
        self._registered = False

    def close(self) -> None:
        """Unregister; idempotent."""
        self._closed = True
        self.unregister()

    def __enter__(self) -> VirtualLibrary:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<VirtualLibrary {self.name!r} drives={len(self.drive_models)} "
            f"slots={self.layout.storage_count}>"
        )

    # ---- URLs and devices -------------------------------------------------------------

    def changer_urls(self) -> list[str]:
        """One URL per control path that is present, the active one first."""
        ports = [p for p in self.changer_lu.ports if p.present]
        ports.sort(key=lambda p: (p.state is not AluaState.ACTIVE_OPTIMIZED, p.index))
        return [f"sim://{self.name}/changer?port={p.index}" for p in ports]

    def drive_urls(self, i: int) -> list[str]:
        """One URL per port of drive ``i``."""
        lu = self.drive_lus[i]
        return [f"sim://{self.name}/drive{i}?port={p.index}" for p in lu.ports]

    def all_urls(self) -> list[str]:
        """Every path of the library: the changer's (active first), then each drive's."""
        urls = self.changer_urls()
        for i in range(len(self.drive_lus)):
            urls.extend(self.drive_urls(i))
        return urls

    @property
    def drive_count(self) -> int:
        """The number of drives."""
        return len(self.drive_models)

    def device(self, name: str) -> LogicalUnit:
        """The logical unit for a URL's DEVICE part: ``changer``, ``driveN`` or ``N``.

        Raises:
            LookupError: no such device.
        """
        if name == "changer":
            return self.changer_lu
        digits = name[5:] if name.startswith("drive") else name
        if (digits.isascii() and digits.isdigit()) and int(digits) < len(self.drive_lus):
            return self.drive_lus[int(digits)]
        for lu in self.drive_lus:
            if lu.serial == name:
                return lu
        raise LookupError(f"library {self.name!r} has no device {name!r}")

    def open_session(self, device: str, port: int, initiator: str) -> Session:
        """Connect an initiator to a port (a new I_T nexus with 29/00 pending)."""
        lu = self.device(device)
        p = lu.port(port)
        with self._lock:
            return Session(lu, p, initiator, lu.connect(initiator, p))

    def close_session(self, session: Session) -> None:
        """Forget a session's nexus."""
        with self._lock:
            session.lu.drop(session.nexus)

    # ---- inspection -------------------------------------------------------------------

    def drive(self, i: int) -> DriveModel:
        """The model of drive ``i``."""
        return self.drive_models[i]

    def drive_address(self, i: int) -> int:
        """The element address of drive ``i``."""
        return self.changer.of_kind(ElementKind.DATA_TRANSFER)[i].address

    def slot_address(self, i: int) -> int:
        """The element address of slot ``i`` (0-based)."""
        return self.changer.of_kind(ElementKind.STORAGE)[i].address

    def element(self, address: int) -> Element:
        """The element at ``address`` (KeyError if none)."""
        return self.changer.elements[address]

    def where(self, barcode: str) -> int | None:
        """The address of the element holding ``barcode``, or None."""
        with self._lock:
            el = self.changer.find(barcode)
            return None if el is None else el.address

    def inventory(self) -> dict[int, str | None]:
        """Address -> barcode (None: unlabelled) of every full element."""
        with self._lock:
            return {el.address: c.barcode for el, c in self.changer.cartridges()}

    def tape(self, i: int) -> TapeImage | None:
        """The tape image in drive ``i``, or None."""
        cart = self.drive_models[i].cartridge
        return None if cart is None else cart.image

    def position(self, i: int) -> PositionInfo | None:
        """Drive ``i``'s position, or None without a loaded tape."""
        with self._lock:
            try:
                return self.drive_models[i].read_position()
            except Check:
                return None

    def cartridge(self, barcode: str) -> Cartridge:
        """The cartridge with ``barcode`` (KeyError if it is not in the library)."""
        with self._lock:
            el = self.changer.find(barcode)
            if el is None or el.cartridge is None:
                raise KeyError(barcode)
            return el.cartridge

    # ---- operator controls ------------------------------------------------------------

    def insert(self, address: int, barcode: str | None, image: TapeImage | None = None) -> None:
        """Put a new cartridge into an empty element by hand."""
        with self._lock:
            self.changer.place(address, self._new_cartridge(barcode, image))
            self._operator_touched(address)

    def remove(self, address: int) -> Cartridge:
        """Take a cartridge out by hand."""
        with self._lock:
            cart = self.changer.take(address)
            self._operator_touched(address)
            return cart

    def _operator_touched(self, address: int) -> None:
        el = self.changer.elements[address]
        if el.drive is not None:
            self._drive_lu_at(address).broadcast(0x28, 0x00)
        elif el.kind is ElementKind.IMPORT_EXPORT:
            self.changer_lu.broadcast(0x28, 0x01)  # import or export element accessed

    def _drive_lu_at(self, address: int) -> LogicalUnit:
        drives = self.changer.of_kind(ElementKind.DATA_TRANSFER)
        return self.drive_lus[[e.address for e in drives].index(address)]

    def set_link(self, device: str, port: int, up: bool) -> None:
        """Cut or restore a port's link (a cut loses every nexus through it)."""
        with self._lock:
            lu = self.device(device)
            p = lu.port(port)
            self._set_link(lu, p, up)

    def _set_link(self, lu: LogicalUnit, p: Port, up: bool) -> None:
        if p.link_up and not up:
            lu.drop_port(p)
        p.link_up = up
        if up:
            self._restore.pop((lu.name, p.index), None)
        log.debug("sim_link_changed", library=self.name, device=lu.name, port=p.index, up=up)

    def control_path_states(self) -> list[AluaState]:
        """The ALUA state of each changer port, by port index."""
        return [p.state for p in self.changer_lu.ports]

    def active_control_path(self) -> int | None:
        """The index of the active changer port, or None."""
        for p in self.changer_lu.ports:
            if p.present and p.state is AluaState.ACTIVE_OPTIMIZED:
                return p.index
        return None

    def set_active_control_path(self, index: int, *, by: Nexus | None = None) -> None:
        """Make changer port ``index`` active and the others standby (2A/06 to the others).

        Raises:
            ValueError: the port is not present.
        """
        with self._lock:
            self._activate(index, by=by)

    def _activate(self, index: int, *, by: Nexus | None = None) -> None:
        target = self.changer_lu.port(index)
        if not target.present:
            raise ValueError(f"control path {index} has failed")
        changed = target.state is not AluaState.ACTIVE_OPTIMIZED
        for p in self.changer_lu.ports:
            p.state = AluaState.ACTIVE_OPTIMIZED if p is target else AluaState.STANDBY
            if not p.present:
                p.state = AluaState.UNAVAILABLE
        if changed:
            self.changer_lu.broadcast(*ALUA_CHANGED, except_nexus=by)
            log.info("sim_control_path_activated", library=self.name, port=index)

    def fail_control_path(self, index: int | None = None, *, drive_too: bool = True) -> int:
        """A control-path drive fails: its changer port vanishes and another becomes active.

        Returns:
            The index of the failed changer port.
        """
        with self._lock:
            return self._fail_control_path(index, drive_too)

    def _fail_control_path(self, index: int | None, drive_too: bool) -> int:
        if index is None:
            index = self.active_control_path()
            if index is None:
                index = 0
        port = self.changer_lu.port(index)
        was_active = port.state is AluaState.ACTIVE_OPTIMIZED
        port.present = False
        port.state = AluaState.UNAVAILABLE
        self.changer_lu.drop_port(port)
        if drive_too:
            lu = self.drive_lus[self.control_paths[index]]
            for p in lu.ports:
                p.present = False
                lu.drop_port(p)
        if was_active:
            for p in self.changer_lu.ports:
                if p.present:
                    self._activate(p.index)
                    break
            for p in self.changer_lu.ports:
                p.status = 2
        log.info("sim_control_path_failed", library=self.name, port=index)
        return index

    def repair_control_path(self, index: int) -> None:
        """Bring a failed control path back (standby) with its drive."""
        with self._lock:
            port = self.changer_lu.port(index)
            port.present = True
            port.state = AluaState.STANDBY
            for p in self.drive_lus[self.control_paths[index]].ports:
                p.present = True
            if self.active_control_path() is None:
                self._activate(index)

    def reset_drive(self, i: int) -> None:
        """Reset drive ``i``: tape rewound, 29/00 on every nexus of the drive."""
        with self._lock:
            self._reset_drive(self.drive_lus[i])

    def _reset_drive(self, lu: LogicalUnit) -> None:
        i = self.drive_lus.index(lu)
        self.drive_models[i].reset()
        lu.broadcast(*POWER_ON)
        log.info("sim_drive_reset", library=self.name, drive=i)

    def power_cycle(self) -> None:
        """Power the library off and on.

        Every nexus is lost (reconnects see 29/00); drives keep their cartridges, loaded
        at BOP, with default modes and removal allowed; persistent reservations are
        kept only where APTPL was set; the first present control path is active again;
        a move in progress stops with its cartridge in the transport element.
        """
        with self._lock:
            self._power_cycle()

    def _power_cycle(self) -> None:
        self._power_generation += 1
        self._robot_busy = False
        for lu in (self.changer_lu, *self.drive_lus):
            lu.drop_all(POWER_ON)
            lu.pr.power_loss()
        for d in self.drive_models:
            d.reset()
            d.prevent = False
            d.block_size = 0
            d.compression = True
            if d.cartridge is not None:
                d.loaded = True
        self.changer.prevent = False
        for p in self.changer_lu.ports:
            if p.present:
                self._activate(p.index)
                break
        log.info("sim_power_cycle", library=self.name)

    # ---- faults -----------------------------------------------------------------------

    @property
    def fault_plan(self) -> FaultPlan | None:
        """The installed fault plan, or None."""
        return self._plan

    def install(self, plan: FaultPlan | None) -> None:
        """Install a fault plan (None removes it); its time triggers count from now.

        A robot stop that fired but has not met a move yet is forgotten.
        """
        with self._lock:
            if plan is not None:
                plan.start(self.clock.now())
            self._plan = plan
            self._robot_stop_pending = False

    def _restore_links(self, now: float) -> None:
        for key, when in list(self._restore.items()):
            if now >= when:
                lu = self.device(key[0])
                self._set_link(lu, lu.port(key[1]), True)

    def poll_mid_command(self, s: Session) -> bool:
        """Arm time-triggered faults in the middle of a long command (robot moves).

        Called with the library lock held. Returns True when the robot must stop.
        """
        plan = self._plan
        now = self.clock.now()
        self._restore_links(now)
        if plan is None:
            return False
        faults = plan.active(s.lu.name, s.port.index, b"", b"", now)
        return apply_faults(self, s, faults).robot_stop

    # ---- execution --------------------------------------------------------------------

    def execute(
        self, s: Session, cdb: bytes, data_out: bytes, data_in_len: int, timeout: float
    ) -> Response:
        """Run one command from a session (what SimTransport.execute calls)."""
        return execute(self, s, cdb, data_out, data_in_len, timeout=timeout)

    # ---- robot time (used by the changer front end with the lock held) ---------------

    def robot_wait(self, s: Session) -> bool:
        """Let the robot move for :attr:`move_time` with the lock released.

        Returns:
            True when the move must stop half-way (robot stop fault, power cycle).
        """
        gen = self._power_generation
        stop = self._robot_stop_pending
        self._robot_stop_pending = False
        if self.move_time > 0:
            self._robot_busy = True
            self._lock.release()
            try:
                self.clock.sleep(self.move_time)
            finally:
                self._lock.acquire()
            self._robot_busy = False
            stop = self.poll_mid_command(s) or stop
        return stop or gen != self._power_generation

    @property
    def robot_busy(self) -> bool:
        """A move is in progress."""
        return self._robot_busy

    def check_robot(self) -> None:
        """Raise NOT READY 04/01 (becoming ready) while a move is in progress."""
        if self._robot_busy:
            raise Check(SenseKey.NOT_READY, 0x04, 0x01)
