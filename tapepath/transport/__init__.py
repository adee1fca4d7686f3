"""Transports: one path to one logical unit each (SG_IO, SPTI, iSCSI, sim)."""

from tapepath.transport.base import (
    DEFAULT_TIMEOUT,
    FailureDetail,
    Outcome,
    Response,
    Status,
    Transport,
)
from tapepath.transport.registry import open_transport, register_scheme, registered_schemes

__all__ = [
    "DEFAULT_TIMEOUT",
    "FailureDetail",
    "Outcome",
    "Response",
    "Status",
    "Transport",
    "open_transport",
    "register_scheme",
    "registered_schemes",
]
