"""Exit codes of the ``tapepath`` command and the error families behind them.

Every error ends the command with one line on stderr (``tapepath: <family>: <message>``,
secrets removed) and the family's exit code; with ``--json`` an object
``{"error": {"family", "message", "exit_code"}}`` is also written to stdout.
"""

from __future__ import annotations

import enum

from tapepath.errors import (
    AmbiguityError,
    ConfigError,
    DeviceError,
    NoPathError,
    TapepathError,
    TransportError,
    UnknownElementError,
)
from tapepath.multipath.redact import redact_url

__all__ = ["CliFailure", "ExitCode", "classify"]


class ExitCode(enum.IntEnum):
    """The exit status of each outcome (stable: scripts rely on them)."""

    OK = 0
    """The command did what it was asked."""
    INTERNAL = 1
    """An unexpected error (a bug): the message says what."""
    USAGE = 2
    """Bad command-line usage (click's own code)."""
    CONFIG = 3
    """The configuration file is invalid, or an alias or setting is unknown."""
    NO_PATH = 4
    """No path to the device works (cannot connect, every path failed)."""
    AMBIGUITY = 5
    """Recovery could not prove whether a command took effect; nothing was resent."""
    DEVICE = 6
    """The device refused the command (CHECK CONDITION, reservation conflict, ...)."""
    NOT_FOUND = 7
    """No such element, barcode, slot or drive."""
    VERIFY = 8
    """A check failed (the demo's verification)."""
    INTERRUPTED = 130
    """Ctrl-C."""


class CliFailure(Exception):
    """A failure the command reports itself (family name, message, exit code)."""

    def __init__(self, family: str, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.family = family
        self.message = message
        self.code = code


def classify(exc: BaseException) -> CliFailure:
    """The family, one-line message and exit code of an exception."""
    if isinstance(exc, CliFailure):
        return exc
    text = redact_url(" ".join(str(exc).split())) or type(exc).__name__
    if isinstance(exc, ConfigError):
        return CliFailure("configuration", text, ExitCode.CONFIG)
    if isinstance(exc, AmbiguityError):
        return CliFailure("ambiguity", text, ExitCode.AMBIGUITY)
    if isinstance(exc, (NoPathError, TransportError)):
        return CliFailure("no path", text, ExitCode.NO_PATH)
    if isinstance(exc, UnknownElementError):
        return CliFailure("not found", text, ExitCode.NOT_FOUND)
    if isinstance(exc, DeviceError):
        return CliFailure("device error", text, ExitCode.DEVICE)
    if isinstance(exc, TapepathError):
        return CliFailure("error", text, ExitCode.INTERNAL)
    if isinstance(exc, ValueError):
        return CliFailure("usage", text, ExitCode.USAGE)
    return CliFailure("internal error", f"{type(exc).__name__}: {text}", ExitCode.INTERNAL)
