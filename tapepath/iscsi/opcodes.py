"""iSCSI opcodes (RFC 7143 section 11) and the status codes the core interprets."""

from __future__ import annotations

import enum

__all__ = [
    "INITIATOR_OPCODES",
    "TARGET_OPCODES",
    "AsyncEvent",
    "LoginStatusClass",
    "Opcode",
    "TmfFunction",
    "TmfResponse",
]


class Opcode(enum.IntEnum):
    """The six-bit opcode in byte 0 of the Basic Header Segment."""

    NOP_OUT = 0x00
    SCSI_COMMAND = 0x01
    TASK_MGMT_REQUEST = 0x02
    LOGIN_REQUEST = 0x03
    TEXT_REQUEST = 0x04
    DATA_OUT = 0x05
    LOGOUT_REQUEST = 0x06
    SNACK_REQUEST = 0x10
    NOP_IN = 0x20
    SCSI_RESPONSE = 0x21
    TASK_MGMT_RESPONSE = 0x22
    LOGIN_RESPONSE = 0x23
    TEXT_RESPONSE = 0x24
    DATA_IN = 0x25
    LOGOUT_RESPONSE = 0x26
    R2T = 0x31
    ASYNC_MESSAGE = 0x32
    REJECT = 0x3F


INITIATOR_OPCODES = frozenset(o for o in Opcode if o < 0x20)
"""Opcodes an initiator sends."""
TARGET_OPCODES = frozenset(o for o in Opcode if o >= 0x20)
"""Opcodes a target sends."""


class TmfFunction(enum.IntEnum):
    """Task management function codes (byte 1, low seven bits)."""

    ABORT_TASK = 1
    ABORT_TASK_SET = 2
    CLEAR_ACA = 3
    CLEAR_TASK_SET = 4
    LOGICAL_UNIT_RESET = 5
    TARGET_WARM_RESET = 6
    TARGET_COLD_RESET = 7
    TASK_REASSIGN = 8


class TmfResponse(enum.IntEnum):
    """Task management response codes (byte 2 of the response)."""

    COMPLETE = 0
    TASK_DOES_NOT_EXIST = 1
    LUN_DOES_NOT_EXIST = 2
    TASK_STILL_ALLEGIANT = 3
    REASSIGNMENT_NOT_SUPPORTED = 4
    NOT_SUPPORTED = 5
    AUTHORIZATION_FAILED = 6
    REJECTED = 255


class AsyncEvent(enum.IntEnum):
    """AsyncEvent codes of the Asynchronous Message PDU."""

    SCSI_EVENT = 0
    LOGOUT_REQUESTED = 1
    CONNECTION_DROP = 2
    SESSION_DROP = 3
    NEGOTIATION_REQUEST = 4
    TASK_TERMINATION = 5
    VENDOR = 255


class LoginStatusClass(enum.IntEnum):
    """Status-Class of a Login Response."""

    SUCCESS = 0
    REDIRECTION = 1
    INITIATOR_ERROR = 2
    TARGET_ERROR = 3
