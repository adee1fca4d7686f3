"""Multipath: every path to a logical unit behind one transport-like device.

The names applications and the layers above use:

- :class:`MultipathDevice`: the device (same ``execute()`` contract as a transport);
- :class:`Path`, :class:`PathState`, :class:`PathStats`, :class:`PathIdentity`;
- :class:`PathGroup`: the only place path states change;
- :class:`MultipathPolicy` and its parts; :class:`PathMonitor`;
- the recovery seam: :class:`RecoveryHook`, :class:`FailedCommand`, :class:`Resend`,
  :class:`Complete`, :class:`Fail`, :class:`CommandInDoubtError`;
- activation handlers (:class:`AluaHandler`, :class:`PassivePathHandler`, ...);
- :func:`discover`, :func:`open_device` and the configuration (:func:`load_config`).
"""

from tapepath.multipath.config import Config, DeviceConfig, load_config, parse_config
from tapepath.multipath.device import MultipathDevice
from tapepath.multipath.discovery import Discovery, discover, open_device
from tapepath.multipath.group import PathGroup
from tapepath.multipath.handlers import (
    ActivationHandler,
    AluaHandler,
    NullHandler,
    PassivePathHandler,
    handler_for,
    register_handler,
)
from tapepath.multipath.hooks import (
    SAFE_TO_REPEAT,
    CommandInDoubtError,
    Complete,
    Decision,
    Fail,
    FailedCommand,
    RecoveryHook,
    Resend,
    ResendIfSafe,
)
from tapepath.multipath.monitor import PathMonitor, default_monitor
from tapepath.multipath.path import Path, PathIdentity, PathState, PathStats
from tapepath.multipath.policy import (
    SAME_PATH_RETRY,
    CheckerPolicy,
    FailbackMode,
    FailbackPolicy,
    MarginalPolicy,
    MultipathPolicy,
    NoPathPolicy,
    RetryPolicy,
)

__all__ = [
    "SAFE_TO_REPEAT",
    "SAME_PATH_RETRY",
    "ActivationHandler",
    "AluaHandler",
    "CheckerPolicy",
    "CommandInDoubtError",
    "Complete",
    "Config",
    "Decision",
    "DeviceConfig",
    "Discovery",
    "Fail",
    "FailbackMode",
    "FailbackPolicy",
    "FailedCommand",
    "MarginalPolicy",
    "MultipathDevice",
    "MultipathPolicy",
    "NoPathPolicy",
    "NullHandler",
    "PassivePathHandler",
    "Path",
    "PathGroup",
    "PathIdentity",
    "PathMonitor",
    "PathState",
    "PathStats",
    "RecoveryHook",
    "Resend",
    "ResendIfSafe",
    "RetryPolicy",
    "default_monitor",
    "discover",
    "handler_for",
    "load_config",
    "open_device",
    "parse_config",
    "register_handler",
]
