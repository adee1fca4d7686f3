"""mtx's commands on a tapepath :class:`~tapepath.library.Library`, with failover.

:class:`MtxSession` keeps what mtx keeps between the commands of one call: the device
text, the flags (``nobarcode``, ``invert``, ``eepos``, ...), and the element status read
once before the first command that needs it (updated after each load and unload, as mtx
updates it). Every failure mtx reports is raised as :class:`MtxFatal` with mtx's own
message; the caller prints it and exits 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import IO

from attrs import define, field

from tapepath.api import open_library
from tapepath.errors import (
    CheckConditionError,
    ConfigError,
    NoPathError,
    TapepathError,
    TransportError,
)
from tapepath.inventory import ElementKind
from tapepath.library import Library
from tapepath.mtx.args import USAGE, Command
from tapepath.mtx.elements import read_elements
from tapepath.mtx.status import (
    MtxStatus,
    format_inquiry,
    format_request_sense,
    format_status,
    status_from_descriptors,
)
from tapepath.multipath.redact import redact_url
from tapepath.scsi.changer import ExchangeMedium, MoveMedium, PositionToElement
from tapepath.scsi.inquiry import Inquiry

__all__ = ["DEFAULT_DEVICE", "MtxFatal", "MtxSession", "device_paths"]

#: mtx's device when neither -f, $CHANGER nor $TAPE names one.
DEFAULT_DEVICE = "/dev/changer"
_VERSION = "1.3.12"
_INQUIRY_LEN = 96
_INVENTORY_TIMEOUT = 30 * 60.0


class MtxFatal(Exception):
    """mtx's FatalError: print ``message`` (and ``detail`` before it) on stderr, exit 1.

    Attributes:
        message: mtx's message, without the newline.
        detail: text printed before it (a request sense report), or "".
        status: the exit status (mtx exits 1).
    """

    def __init__(self, message: str, detail: str = "", status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.status = status


def device_paths(device: str) -> str | list[str]:
    """What :func:`tapepath.open_library` gets for an mtx device text.

    ``a://..,b://..`` is a list of URLs; a path such as ``/dev/sg3`` becomes
    ``sg:///dev/sg3``; a word without ``://`` or ``/`` is a configuration alias.
    """
    text = device.strip()
    if "://" in text:
        return [u.strip() for u in text.split(",") if u.strip()]
    if text.startswith("/") or text.startswith("."):
        return [f"sg://{os.path.abspath(text)}"]
    return text


Opener = Callable[[str | list[str]], Library]


def _default_opener(paths: str | list[str]) -> Library:
    return open_library(paths, monitor=False)


@define
class MtxSession:
    """One mtx call: the device, the flags and the element status.

    As in mtx, the status is read once per device; load and unload flip the two
    elements' full flags in it and nothing else, transfer and exchange leave it alone,
    so a later ``status`` in the same call prints what mtx would print.

    Args:
        out: where mtx's standard output goes.
        err: where mtx's standard error goes (default: sys.stderr).
        opener: opens a :class:`Library` from the device text's paths (tests inject one).
        environ: the environment ($CHANGER, $TAPE).
    """

    out: IO[str]
    err: IO[str] | None = None
    opener: Opener = _default_opener
    environ: dict[str, str] = field(factory=lambda: dict(os.environ))
    device: str | None = None
    library: Library | None = None
    status: MtxStatus | None = None
    no_barcodes: bool = False
    invert: bool = False
    invert2: bool = False
    eepos: int = 0
    no_attach: bool = False
    alt_read: bool = False

    # -- device -----------------------------------------------------------------------

    def set_device(self, device: str) -> None:
        """``-f DEVICE``: close the current changer and open this one."""
        self.close()
        self.device = device
        self._open()

    def _open(self) -> None:
        assert self.device is not None
        try:
            self.library = self.opener(device_paths(self.device))
        except (ConfigError, ValueError, TapepathError) as exc:
            shown = redact_url(self.device)
            raise MtxFatal(f"cannot open SCSI device '{shown}' - {redact_url(str(exc))}") from None

    def close(self) -> None:
        """Close the changer (idempotent)."""
        if self.library is not None:
            self.library.close()
        self.library = None
        self.status = None

    def _lib(self) -> Library:
        if self.library is None:
            raise MtxFatal("No Media Changer Device Specified")
        return self.library

    # -- running ------------------------------------------------------------------------

    def run(self, cmd: Command) -> None:
        """Run one command as mtx's execute_command does.

        Raises:
            MtxFatal: mtx's fatal errors, with its messages.
        """
        spec = cmd.spec
        if self.library is None and spec.need_device:
            # getenv semantics: a variable that is set counts, even when empty
            env = self.environ
            self.device = env["CHANGER"] if "CHANGER" in env else env.get("TAPE", DEFAULT_DEVICE)
            self._open()
        if spec.need_status and self.status is None:
            self.status = self.read_status()
        handler = getattr(self, "_cmd_" + cmd.name.lstrip("-").replace("-", "_"))
        handler(cmd)

    def read_status(self) -> MtxStatus:
        """Read the element status (READ ELEMENT STATUS per element type)."""
        lib = self._lib()
        try:
            kinds = {
                kind: read_elements(lib, kind, barcodes=not self.no_barcodes)
                for kind in ElementKind
            }
        except CheckConditionError as exc:
            raise MtxFatal(
                "READ ELEMENT STATUS Command Failed", format_request_sense(exc.sense)
            ) from None
        except TapepathError as exc:
            raise MtxFatal("READ ELEMENT STATUS Command Failed", _why(exc)) from None
        return status_from_descriptors(
            drives=kinds[ElementKind.DRIVE],
            slots=kinds[ElementKind.SLOT],
            import_export=kinds[ElementKind.IMPORT_EXPORT],
            transports=kinds[ElementKind.TRANSPORT],
            barcodes=not self.no_barcodes,
        )

    def _st(self) -> MtxStatus:
        assert self.status is not None
        return self.status

    def _print(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    # -- flags --------------------------------------------------------------------------

    def _cmd_invert(self, _cmd: Command) -> None:
        self.invert = True

    def _cmd_invert2(self, _cmd: Command) -> None:
        self.invert2 = True

    def _cmd_noattach(self, _cmd: Command) -> None:
        self.no_attach = True

    def _cmd_nobarcode(self, _cmd: Command) -> None:
        self.no_barcodes = True

    def _cmd_altres(self, _cmd: Command) -> None:
        self.alt_read = True

    def _cmd_eepos(self, cmd: Command) -> None:
        if not 0 <= cmd.arg1 <= 3:
            raise MtxFatal("eepos equires argument between 0 and 3.")
        self.eepos = cmd.arg1

    def _cmd_version(self, _cmd: Command) -> None:
        raise MtxFatal(f"mtx version {_VERSION}\n\n{USAGE.rstrip()}")

    # -- reports ------------------------------------------------------------------------

    def _cmd_status(self, _cmd: Command) -> None:
        assert self.device is not None
        # the -f text as typed, as mtx prints it, but never a password it may carry
        self._print(format_status(redact_url(self.device), self._st()))

    def _cmd_inquiry(self, _cmd: Command) -> None:
        lib = self._lib()
        cdb = Inquiry(allocation_length=_INQUIRY_LEN).to_bytes()
        try:
            r = lib.execute(cdb, what="INQUIRY", data_in_len=_INQUIRY_LEN, repeatable=True)
        except CheckConditionError as exc:
            raise MtxFatal("INQUIRY Command Failed", format_request_sense(exc.sense)) from None
        except TapepathError as exc:
            raise MtxFatal("INQUIRY Command Failed", _why(exc)) from None
        self._print(format_inquiry(r.data))

    def _cmd_inventory(self, _cmd: Command) -> None:
        try:
            self._lib().initialize(timeout=_INVENTORY_TIMEOUT)
        except CheckConditionError:
            raise MtxFatal("mtx:inventory failed") from None
        except TapepathError as exc:
            raise MtxFatal("mtx:inventory failed", _why(exc)) from None

    def _cmd_eject(self, _cmd: Command) -> None:
        # START STOP UNIT with LOEJ: eject the magazine or the medium. mtx reports a
        # refusal (sense, "Eject (0x1B) failed", "mtx:eject failed") and exits 0.
        try:
            self._lib().execute(
                bytes((0x1B, 0, 0, 0, 0x02, 0)), what="START STOP UNIT (eject)", repeatable=True
            )
        except TapepathError as exc:
            self.out.flush()
            err = self.err if self.err is not None else sys.stderr
            if isinstance(exc, CheckConditionError):
                err.write(format_request_sense(exc.sense) + "Eject (0x1B) failed\n")
            else:
                err.write(_why(exc))
            err.write("mtx:eject failed\n")
            err.flush()

    def _cmd_erase(self, _cmd: Command) -> None:
        try:
            self._lib().execute(
                bytes((0x19, 0, 0, 0, 0, 0)), what="ERASE (short)", timeout=3600.0, repeatable=True
            )
        except CheckConditionError as exc:
            raise MtxFatal("", format_request_sense(exc.sense)) from None
        except TapepathError as exc:
            raise MtxFatal("", _why(exc)) from None

    def _cmd_position(self, cmd: Command) -> None:
        st = self._st()
        index = cmd.arg1 - 1 if 0 <= cmd.arg1 <= len(st.slots) else 0
        if not st.slots:
            raise MtxFatal("Could not position transport")
        dest = st.slots[max(index, 0)].address
        cdb = PositionToElement(st.transport, dest, self.invert).to_bytes()
        try:
            self._lib().execute(cdb, what="POSITION TO ELEMENT", repeatable=True)
        except CheckConditionError:
            raise MtxFatal("Could not position transport") from None
        except TapepathError as exc:
            raise MtxFatal("Could not position transport", _why(exc)) from None

    # -- moves --------------------------------------------------------------------------

    def _move(self, src: int, dest: int) -> None:
        lib = self._lib()
        # eepos goes in the control byte's top (vendor) bits, where mtx puts it
        cdb = MoveMedium(
            self._st().transport, src, dest, self.invert, control=self.eepos << 6
        ).to_bytes()
        what = f"MOVE MEDIUM {src} -> {dest}"
        try:
            lib.execute(cdb, what=what, timeout=lib.move_timeout)
        except CheckConditionError as exc:
            raise _move_error("MOVE MEDIUM", src, dest, exc) from None
        except TapepathError as exc:
            raise MtxFatal(
                f"MOVE MEDIUM from Element Address {src} to {dest} Failed", _why(exc)
            ) from None

    def _cmd_load(self, cmd: Command) -> None:
        st = self._st()
        slot, drive = cmd.arg1, cmd.arg2
        if slot < 1:
            raise MtxFatal("No source specified")
        drive = max(drive, 0)
        if slot > len(st.slots):
            raise MtxFatal(f"Invalid <storage-element-number> argument '{slot}' to 'load' command")
        if drive >= len(st.drives):
            raise MtxFatal(f"illegal <drive-number> argument '{drive}' to 'load' command")
        d = st.drives[drive]
        if d.full:
            src_text = d.source if d.source is not None else 0
            raise MtxFatal(f"Drive {drive} Full (Storage Element {src_text} loaded)")
        s = st.slots[slot - 1]
        self._print(f"Loading media from Storage Element {slot} into drive {drive}...")
        self._move(s.address, d.address)
        self._print("done\n")
        # mtx flips the two full flags and nothing else (tags and sources go stale
        # until the next call reads the status again); so does this, for the same output
        s.full, d.full = False, True

    def _cmd_unload(self, cmd: Command) -> None:
        st = self._st()
        slot, drive = cmd.arg1, cmd.arg2
        drive = max(drive, 0)
        if drive >= len(st.drives):
            raise MtxFatal(f"illegal <drive-number> argument '{drive}' to 'unload' command")
        d = st.drives[drive]
        if slot < 0:
            if d.source is None:
                raise MtxFatal(f"No Source for tape in drive {drive}!")
            slot = d.source
        if not 1 <= slot <= len(st.slots):
            raise MtxFatal(
                f"illegal <storage-element-number> argument '{slot}' to 'unload' command"
            )
        if not d.full:
            raise MtxFatal(f"Data Transfer Element {drive} is Empty")
        s = st.slots[slot - 1]
        if s.full:
            raise MtxFatal(f"Storage Element {slot} is Already Full")
        self._print(f"Unloading drive {drive} into Storage Element {slot}...")
        self._move(d.address, s.address)
        self._print("done\n")
        s.full, d.full = True, False

    def _cmd_transfer(self, cmd: Command) -> None:
        st = self._st()
        if cmd.arg1 < 1:
            raise MtxFatal("No source specified")
        if cmd.arg2 < 1:
            raise MtxFatal("No destination specified")
        if cmd.arg1 > len(st.slots):
            raise MtxFatal("Invalid source")
        if cmd.arg2 > len(st.slots):
            raise MtxFatal("Invalid destination")
        s, d = st.slots[cmd.arg1 - 1], st.slots[cmd.arg2 - 1]
        self._move(s.address, d.address)  # mtx leaves its status as it was

    def _cmd_exchange(self, cmd: Command) -> None:
        st = self._st()
        if cmd.arg1 < 1:
            raise MtxFatal("No source specified")
        if cmd.arg2 < 1:
            raise MtxFatal("No destination specified")
        if cmd.arg1 > len(st.slots):
            raise MtxFatal("Invalid source")
        if cmd.arg2 > len(st.slots):
            raise MtxFatal("Invalid destination")
        third = cmd.arg1 if cmd.arg3 == -1 else cmd.arg3
        if not 1 <= third <= len(st.slots):
            raise MtxFatal("Invalid destination")
        src, dst = st.slots[cmd.arg1 - 1].address, st.slots[cmd.arg2 - 1].address
        dst2 = st.slots[third - 1].address
        lib = self._lib()
        cdb = ExchangeMedium(
            st.transport, src, dst, dst2, self.invert, self.invert2, control=self.eepos << 6
        ).to_bytes()
        try:
            lib.execute(
                cdb, what=f"EXCHANGE MEDIUM {src} -> {dst} -> {dst2}", timeout=lib.move_timeout
            )
        except CheckConditionError as exc:
            raise _move_error("EXCHANGE MEDIUM", src, dst, exc) from None
        except TapepathError as exc:
            raise MtxFatal(
                f"EXCHANGE MEDIUM from Element Address {src} to {dst} Failed", _why(exc)
            ) from None

    # -- first / last / next / previous -----------------------------------------------------

    def _drive_arg(self, cmd: Command) -> int:
        return cmd.arg1 if 0 <= cmd.arg1 < len(self._st().drives) else 0

    def _cmd_first(self, cmd: Command) -> None:
        self._go_to(self._drive_arg(cmd), 1)

    def _cmd_last(self, cmd: Command) -> None:
        # mtx 1.3.12 counts the last slot without the import/export elements
        st = self._st()
        self._go_to(self._drive_arg(cmd), len(st.slots) - st.import_export_count)

    def _go_to(self, drive: int, slot: int) -> None:
        d = self._st().drives[drive]
        if d.full:
            if d.source == slot:
                self._print("loading...done.\n")
                return
            self._cmd_unload(Command("unload", -1 if d.source is None else d.source, drive))
        self._cmd_load(Command("load", slot, drive))

    def _cmd_next(self, cmd: Command) -> None:
        self._step(self._drive_arg(cmd), +1)

    def _cmd_previous(self, cmd: Command) -> None:
        self._step(self._drive_arg(cmd), -1)

    def _step(self, drive: int, direction: int) -> None:
        # mtx 1.3.12: next looks upwards through the ordinary slots only; previous
        # looks downwards from the top, import/export elements included
        st = self._st()
        d = st.drives[drive]
        top = len(st.slots) - st.import_export_count if direction > 0 else len(st.slots)
        current = 0 if direction > 0 else len(st.slots) + 1
        if d.full:
            current = d.source if d.source is not None else current
            self._cmd_unload(Command("unload", -1 if d.source is None else d.source, drive))
        n = current + direction
        while 1 <= n <= top:
            if st.slots[n - 1].full:
                self._cmd_load(Command("load", n, drive))
                return
            n += direction
        raise MtxFatal("No More Media")


def _why(exc: BaseException) -> str:
    """One line saying why tapepath failed, for stderr before mtx's own message."""
    kind = "no path" if isinstance(exc, (NoPathError, TransportError)) else "error"
    return f"tapepath: {kind}: {redact_url(' '.join(str(exc).split()))}\n"


def _move_error(what: str, src: int, dest: int, exc: CheckConditionError) -> MtxFatal:
    sense = exc.sense
    pair = (getattr(sense, "asc", -1), getattr(sense, "ascq", -1))
    if pair == (0x3B, 0x0E):
        return MtxFatal(f"Source Element Address {src} is Empty")
    if pair == (0x3A, 0x00):
        return MtxFatal("Drive needs offline before move")
    if pair == (0x3B, 0x0D):
        return MtxFatal(f"Destination Element Address {dest} is Already Full")
    if pair == (0x30, 0x03):
        return MtxFatal("Cleaning Cartridge Installed and Ejected")
    return MtxFatal(
        f"{what} from Element Address {src} to {dest} Failed", format_request_sense(sense)
    )
