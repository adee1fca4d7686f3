"""The 8-byte SAM LUN field that SCSI Command, Data-Out and TMF PDUs carry.

:func:`encode_lun` is shared by :mod:`tapepath.iscsi.session` (commands and Data-Out)
and :mod:`tapepath.iscsi.session_requests` (task management); it is re-exported by
:mod:`tapepath.iscsi.session`.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["encode_lun"]


@lru_cache(maxsize=1024)
def encode_lun(lun: int) -> int:
    """The 8-byte SAM LUN field for LUN number ``lun`` as an integer.

    Peripheral addressing below 256, flat space addressing up to 16383.
    """
    if not 0 <= lun < 16384:
        raise ValueError(f"LUN {lun} is outside 0..16383")
    if lun < 256:
        return lun << 48
    return (0x4000 | lun) << 48
