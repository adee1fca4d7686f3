"""Activation handlers: how a passive path is made active (Linux scsi_dh's idea).

A handler knows one family of devices' passive-path convention:

- :class:`NullHandler`: no way to activate; a passive path comes back only when the
  device makes it active itself (the monitor sees it answer);
- :class:`AluaHandler`: ALUA (SPC-4 asymmetric access): reads the port groups' states
  with REPORT TARGET PORT GROUPS and, for explicit ALUA, activates a group with SET
  TARGET PORT GROUPS;
- :class:`PassivePathHandler`: the passive control-path convention of tape libraries
  (a passive path answers 02/04/0B) with an optional activation command.

Vendors add their own by implementing :class:`ActivationHandler` and registering it with
:func:`register_handler`, keyed by INQUIRY vendor/product like scsi_dh's device tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tapepath.multipath.device import MultipathDevice
    from tapepath.multipath.path import Path

__all__ = ["ActivationHandler", "NullHandler"]


class ActivationHandler(Protocol):
    """What a device-family handler does for a :class:`MultipathDevice`.

    Attributes:
        name: the handler's name, for logs and configuration.
    """

    name: str

    def attach(self, device: MultipathDevice) -> None:
        """Learn the initial path states (may send commands through ``device.execute_on``)."""
        ...

    def activate(self, device: MultipathDevice, path: Path) -> bool:
        """Make ``path`` (PASSIVE) active; True on success. Called with no active path
        left, or when asked for."""
        ...

    def refresh(self, device: MultipathDevice) -> None:
        """Re-read the access states after the device said they changed (06/2A/06)."""
        ...


class NullHandler:
    """No activation method: passive paths wait for the device to activate them."""

    name = "none"

    def attach(self, device: MultipathDevice) -> None:
        """Nothing to learn."""

    def activate(self, device: MultipathDevice, path: Path) -> bool:
        """Cannot activate: always False."""
        return False

    def refresh(self, device: MultipathDevice) -> None:
        """Nothing to re-read."""
