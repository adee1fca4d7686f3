"""Persistent reservation codes (SPC-4): the PR IN and PR OUT service actions and TYPE."""

from __future__ import annotations

from enum import IntEnum

from tapepath.scsi.inquiry import enum_or_int

__all__ = ["PrInAction", "PrOutAction", "PrType"]


class PrInAction(IntEnum):
    """PERSISTENT RESERVE IN service actions."""

    READ_KEYS = 0
    READ_RESERVATION = 1
    REPORT_CAPABILITIES = 2
    READ_FULL_STATUS = 3


class PrOutAction(IntEnum):
    """PERSISTENT RESERVE OUT service actions."""

    REGISTER = 0
    RESERVE = 1
    RELEASE = 2
    CLEAR = 3
    PREEMPT = 4
    PREEMPT_AND_ABORT = 5
    REGISTER_AND_IGNORE_EXISTING_KEY = 6
    REGISTER_AND_MOVE = 7
    REPLACE_LOST_RESERVATION = 8


class PrType(IntEnum):
    """Persistent reservation TYPE."""

    WRITE_EXCLUSIVE = 1
    EXCLUSIVE_ACCESS = 3
    WRITE_EXCLUSIVE_REGISTRANTS_ONLY = 5
    EXCLUSIVE_ACCESS_REGISTRANTS_ONLY = 6
    WRITE_EXCLUSIVE_ALL_REGISTRANTS = 7
    EXCLUSIVE_ACCESS_ALL_REGISTRANTS = 8


def _in_action(value: int) -> int:
    return enum_or_int(PrInAction, value)


def _out_action(value: int) -> int:
    return enum_or_int(PrOutAction, value)


def _pr_type(value: int) -> int:
    return enum_or_int(PrType, value)
