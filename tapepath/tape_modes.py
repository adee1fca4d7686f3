"""The tape drive's mode settings: block size and compression, kept across resets.

:class:`ModeKeeping` is the part of :class:`~tapepath.drive.TapeDrive` that reads and
sets the block size and the data compression page, remembers what the application
chose, and sets it again after the drive reports a reset (which returns both to the
drive's defaults).
"""

from __future__ import annotations

import attrs
import structlog

from tapepath.api import DeviceHandle
from tapepath.errors import CheckConditionError
from tapepath.scsi.mode import BlockDescriptor, ModeParameters, ModeSelect6, ModeSense6
from tapepath.scsi.tape_pages import DataCompressionPage, with_block_length

__all__ = ["ModeKeeping"]

log = structlog.get_logger("tapepath.drive")


class ModeKeeping(DeviceHandle):
    """Block size and compression of a tape drive (a base of
    :class:`~tapepath.drive.TapeDrive`; it sets the attributes)."""

    _block_size: int | None
    """The block size read or set (0: variable), None until known again."""
    _wanted_block_size: int | None
    _wanted_compression: bool | None
    _restore_modes: bool
    """A reset was reported: set the wanted settings again before the next command."""

    def _known_block_size(self) -> int:
        """The block size in use (MODE SENSE once, then remembered)."""
        with self._lock:
            if self._restore_modes:
                self._restore()
            if self._block_size is None:
                params = self._mode_sense(0x0F)
                descs = params.block_descriptors
                self._block_size = descs[0].block_length if descs else 0
            return self._block_size

    def _restore(self) -> None:
        """After a reported reset, set the block size and compression the application
        chose again (a reset returns them to the drive's defaults)."""
        self._restore_modes = False
        if self._wanted_block_size is not None:
            self._apply_block_size(self._wanted_block_size)
        if self._wanted_compression is not None:
            self._apply_compression(self._wanted_compression)
        log.info(
            "tape_modes_restored",
            device=getattr(self.device, "name", ""),
            block_size=self._wanted_block_size,
            compression=self._wanted_compression,
        )

    def _mode_sense(self, page: int) -> ModeParameters:
        r = self._run(
            ModeSense6(page_code=page, allocation_length=255).to_bytes(),
            f"MODE SENSE page {page:02X}h",
            data_in_len=255,
        )
        return ModeParameters.from_bytes(r.data)

    def _apply_block_size(self, size: int) -> None:
        params = self._mode_sense(0x0F)
        descs = params.block_descriptors
        desc = with_block_length(descs[0], size) if descs else BlockDescriptor(0, 0, size)
        new = ModeParameters(
            device_specific_parameter=params.device_specific_parameter & 0x70,
            block_descriptors=(desc,),
        )
        cmd, data = ModeSelect6.for_parameters(new)
        self._run(cmd.to_bytes(), f"MODE SELECT block size {size}", data_out=data)
        self._block_size = size
        log.info("tape_block_size_set", device=getattr(self.device, "name", ""), size=size)

    def _apply_compression(self, on: bool) -> None:
        params = self._mode_sense(0x0F)
        page = params.page(0x0F)
        if page is None:
            raise CheckConditionError("set_compression: the drive has no compression page")
        current = DataCompressionPage.from_mode_page(page)
        wanted = attrs.evolve(current, dce=on, ps=False)
        new = ModeParameters(
            device_specific_parameter=params.device_specific_parameter & 0x70,
            pages=(wanted.to_mode_page(),),
        )
        cmd, data = ModeSelect6.for_parameters(new)
        self._run(cmd.to_bytes(), f"MODE SELECT compression {'on' if on else 'off'}", data_out=data)
        log.info("tape_compression_set", device=getattr(self.device, "name", ""), on=on)
