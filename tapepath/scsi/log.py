"""LOG SENSE (4Dh, SPC), log pages and parameters, and the TapeAlert page (2Eh, SSC)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from attrs import Attribute, field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, check_uint, flag_field, items_of, need, u16, uint_field
from tapepath.scsi.cdb import check_opcode, check_reserved, check_zero
from tapepath.scsi.mode import PageControl

__all__ = [
    "CHANGER_TAPE_ALERT_NAMES",
    "TAPE_ALERT_NAMES",
    "LogPage",
    "LogParameter",
    "LogSense",
    "TapeAlert",
]


def _pc(value: int) -> int:
    try:
        return PageControl(value)
    except ValueError:
        return value


def _param_tuple(value: Iterable[LogParameter]) -> tuple[LogParameter, ...]:
    return tuple(value)


def _int_set(value: Iterable[int]) -> frozenset[int]:
    return frozenset(value)


@frozen
class LogSense:
    """The LOG SENSE CDB (4Dh, 10 bytes).

    Attributes:
        page_code: 6 bits.
        subpage_code: 8 bits.
        page_control: 2 bits (0 threshold, 1 cumulative, 2 default threshold, 3 default
            cumulative).
        sp: save parameters.
        ppc: parameter pointer control (obsolete in SPC-5; kept for old devices).
        parameter_pointer: the first parameter code to return (16 bits).
        allocation_length: 16 bits.
        control: the CONTROL byte.
    """

    OPCODE: ClassVar[int] = 0x4D
    page_code: int = field(default=0, validator=uint_field(6))
    subpage_code: int = field(default=0, validator=uint_field(8))
    page_control: int = field(default=1, validator=uint_field(2))
    sp: bool = field(default=False, validator=flag_field)
    ppc: bool = field(default=False, validator=flag_field)
    parameter_pointer: int = field(default=0, validator=uint_field(16))
    allocation_length: int = field(default=0xFFFF, validator=uint_field(16))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 10-byte CDB."""
        return (
            bytes(
                (
                    self.OPCODE,
                    (self.ppc << 1) | int(self.sp),
                    (self.page_control << 6) | self.page_code,
                    self.subpage_code,
                    0,
                )
            )
            + self.parameter_pointer.to_bytes(2, "big")
            + self.allocation_length.to_bytes(2, "big")
            + bytes((self.control,))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> LogSense:
        """Parse a LOG SENSE CDB."""
        check_opcode(cdb, cls.OPCODE, 10, "LOG SENSE")
        check_reserved(cdb, "LOG SENSE", (1, 0xFC))
        check_zero(cdb, "LOG SENSE", 4, 5)
        return cls(
            page_code=cdb[2] & 0x3F,
            subpage_code=cdb[3],
            page_control=cdb[2] >> 6,
            sp=bool(cdb[1] & 1),
            ppc=bool(cdb[1] & 2),
            parameter_pointer=u16(cdb, 5),
            allocation_length=u16(cdb, 7),
            control=cdb[9],
        )

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


def _value(_inst: Any, attr: Attribute[bytes], value: bytes) -> None:
    if len(value) > 255:
        raise ValueError(f"{attr.name} is {len(value)} bytes long, at most 255 fit")


@frozen
class LogParameter:
    """One log parameter.

    Attributes:
        parameter_code: 16 bits.
        value: the parameter value bytes (at most 255).
        du: disable update.
        tsd: target save disable.
        etc: enable threshold comparison.
        tmc: threshold met criteria (2 bits).
        format_and_linking: 2 bits (0 bounded data counter, 1 ASCII list, 2 bounded
            unbounded counter, 3 binary list).
        obsolete_ds: byte 2 bit 6 (DS in SPC-3, obsolete since).
    """

    parameter_code: int = field(validator=uint_field(16))
    value: bytes = field(default=b"", converter=bytes, validator=_value)
    du: bool = field(default=False, validator=flag_field)
    tsd: bool = field(default=False, validator=flag_field)
    etc: bool = field(default=False, validator=flag_field)
    tmc: int = field(default=0, validator=uint_field(2))
    format_and_linking: int = field(default=0, validator=uint_field(2))
    obsolete_ds: bool = field(default=False, validator=flag_field)

    @property
    def control_byte(self) -> int:
        """Byte 2 of the parameter header."""
        return (
            (self.du << 7)
            | (self.obsolete_ds << 6)
            | (self.tsd << 5)
            | (self.etc << 4)
            | (self.tmc << 2)
            | self.format_and_linking
        )

    @property
    def as_int(self) -> int:
        """The value as a big-endian unsigned integer (0 for an empty value)."""
        return int.from_bytes(self.value, "big")

    def to_bytes(self) -> bytes:
        """Encode the parameter (4-byte header and value)."""
        return (
            self.parameter_code.to_bytes(2, "big")
            + bytes((self.control_byte, len(self.value)))
            + self.value
        )

    @classmethod
    def parse(cls, buf: Bytes, offset: int = 0) -> tuple[LogParameter, int]:
        """Parse the parameter at ``offset``; return it and the offset after it."""
        need(buf, offset + 4, "log parameter header")
        length = buf[offset + 3]
        end = offset + 4 + length
        if end > len(buf):
            raise DecodeError(
                f"log parameter {u16(buf, offset):04X}h: length {length} runs past the page"
            )
        c = buf[offset + 2]
        return (
            cls(
                parameter_code=u16(buf, offset),
                value=bytes(buf[offset + 4 : end]),
                du=bool(c & 0x80),
                tsd=bool(c & 0x20),
                etc=bool(c & 0x10),
                tmc=(c >> 2) & 3,
                format_and_linking=c & 3,
                obsolete_ds=bool(c & 0x40),
            ),
            end,
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> LogParameter:
        """Parse exactly one parameter."""
        param, end = cls.parse(buf)
        if end != len(buf):
            raise DecodeError(f"log parameter: {len(buf) - end} bytes after it")
        return param


@frozen
class LogPage:
    """A log page.

    Attributes:
        page_code: 6 bits.
        parameters: the :class:`LogParameter` values in page order.
        subpage_code: 8 bits (non-zero sets SPF).
        ds: disable save (byte 0 bit 7).
        spf: subpage format (byte 0 bit 6); set automatically for a non-zero subpage.
    """

    page_code: int = field(validator=uint_field(6))
    parameters: tuple[LogParameter, ...] = field(
        default=(), converter=_param_tuple, validator=items_of(LogParameter)
    )
    subpage_code: int = field(default=0, validator=uint_field(8))
    ds: bool = field(default=False, validator=flag_field)
    spf: bool = field(default=False, validator=flag_field)

    def parameter(self, code: int) -> LogParameter | None:
        """The first parameter with this code, or None."""
        for p in self.parameters:
            if p.parameter_code == code:
                return p
        return None

    def to_bytes(self) -> bytes:
        """Encode the page.

        Raises:
            ValueError: the parameters pass 65535 bytes.
        """
        body = b"".join(p.to_bytes() for p in self.parameters)
        if len(body) > 0xFFFF:
            raise ValueError(f"log page {self.page_code:02X}h: {len(body)} bytes do not fit")
        spf = self.spf or self.subpage_code != 0
        return (
            bytes(((self.ds << 7) | (spf << 6) | self.page_code, self.subpage_code))
            + len(body).to_bytes(2, "big")
            + body
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> LogPage:
        """Parse a log page; a page cut by the allocation length keeps its whole parameters."""
        need(buf, 4, "log page header")
        end = min(len(buf), 4 + u16(buf, 2))
        region = bytes(buf[:end])
        params = []
        offset = 4
        while offset + 4 <= end:
            try:
                param, offset = LogParameter.parse(region, offset)
            except DecodeError:
                if end < 4 + u16(buf, 2):
                    break  # the allocation length cut the last parameter
                raise
            params.append(param)
        if offset < end and end == 4 + u16(buf, 2):
            raise DecodeError(f"log page: {end - offset} stray bytes after the last parameter")
        return cls(
            page_code=buf[0] & 0x3F,
            parameters=tuple(params),
            subpage_code=buf[1],
            ds=bool(buf[0] & 0x80),
            spf=bool(buf[0] & 0x40),
        )


# TapeAlert flags of a tape drive (SSC-4 annex): flags 40..46 (28h..2Eh) are obsolete.
TAPE_ALERT_NAMES: dict[int, str] = {
    1: "Read warning",
    2: "Write warning",
    3: "Hard error",
    4: "Media",
    5: "Read failure",
    6: "Write failure",
    7: "Media life",
    8: "Not data grade",
    9: "Write protect",
    10: "No removal",
    11: "Cleaning media",
    12: "Unsupported format",
    13: "Recoverable mechanical cartridge failure",
    14: "Unrecoverable mechanical cartridge failure",
    15: "Memory chip in cartridge failure",
    16: "Forced eject",
    17: "Read only format",
    18: "Tape directory corrupted on load",
    19: "Nearing media life",
    20: "Cleaning required",
    21: "Cleaning requested",
    22: "Expired cleaning media",
    23: "Invalid cleaning tape",
    24: "Retension requested",
    25: "Multi-port interface error on a primary port",
    26: "Cooling fan failure",
    27: "Power supply failure",
    28: "Power consumption",
    29: "Drive preventive maintenance required",
    30: "Hardware A",
    31: "Hardware B",
    32: "Primary interface",
    33: "Eject media",
    34: "Microcode update fail",
    35: "Drive humidity",
    36: "Drive temperature",
    37: "Drive voltage",
    38: "Predictive failure",
    39: "Diagnostics required",
    40: "Obsolete (flag 40)",
    41: "Obsolete (flag 41)",
    42: "Obsolete (flag 42)",
    43: "Obsolete (flag 43)",
    44: "Obsolete (flag 44)",
    45: "Obsolete (flag 45)",
    46: "Obsolete (flag 46)",
    47: "External data encryption control - communications failure",
    48: "External data encryption control - key manager returned an error",
    49: "Diminished native capacity",
    50: "Lost statistics",
    51: "Tape directory invalid at unload",
    52: "Tape system area write failure",
    53: "Tape system area read failure",
    54: "No start of data",
    55: "Loading or threading failure",
    56: "Unrecoverable unload failure",
    57: "Automation interface failure",
    58: "Microcode failure",
    59: "WORM medium - integrity check failed",
    60: "WORM medium - overwrite attempted",
    61: "Encryption policy violation",
    62: "Reserved (62)",
    63: "Reserved (63)",
    64: "Reserved (64)",
}


# TapeAlert flags of a medium changer (SMC-3 annex): their own numbering, 33..64 reserved.
CHANGER_TAPE_ALERT_NAMES: dict[int, str] = {
    1: "Library hardware A",
    2: "Library hardware B",
    3: "Library hardware C",
    4: "Library hardware D",
    5: "Library diagnostics required",
    6: "Library interface",
    7: "Failure prediction",
    8: "Library maintenance",
    9: "Library humidity limits",
    10: "Library temperature limits",
    11: "Library voltage limits",
    12: "Library stray tape",
    13: "Library pick retry",
    14: "Library place retry",
    15: "Library load retry",
    16: "Library door",
    17: "Library mailslot",
    18: "Library magazine",
    19: "Library security",
    20: "Library security mode",
    21: "Library offline",
    22: "Library drive offline",
    23: "Library scan retry",
    24: "Library inventory",
    25: "Library illegal operation",
    26: "Dual-port interface error",
    27: "Cooling fan failure",
    28: "Power supply",
    29: "Power consumption",
    30: "Pass-through mechanism failure",
    31: "Cartridge in pass-through mechanism",
    32: "Unreadable bar code labels",
}
CHANGER_TAPE_ALERT_NAMES.update({n: f"Reserved ({n})" for n in range(33, 65)})


def _flags(_inst: Any, attr: Attribute[frozenset[int]], value: frozenset[int]) -> None:
    for flag in value:
        check_uint(f"{attr.name} member", flag, 7)
        if not 1 <= flag <= 64:
            raise ValueError(f"{attr.name}: flag {flag} is not in 1..64")


@frozen
class TapeAlert:
    """The TapeAlert log page (2Eh): 64 one-bit flags, parameter codes 0001h..0040h.

    Attributes:
        flags: the flag numbers (1..64) that are set.
        present: the flag numbers the page carries (default: all 64); a page cut by the
            allocation length or a device sending fewer parameters carries fewer.
    """

    PAGE_CODE: ClassVar[int] = 0x2E
    flags: frozenset[int] = field(default=frozenset(), converter=_int_set, validator=_flags)
    present: frozenset[int] = field(
        default=frozenset(range(1, 65)), converter=_int_set, validator=_flags
    )

    def __attrs_post_init__(self) -> None:
        if not self.flags <= self.present:
            raise ValueError(f"flags {sorted(self.flags - self.present)} are not in present")

    @property
    def names(self) -> list[str]:
        """The names of the set flags of a tape drive (SSC), in flag order."""
        return [TAPE_ALERT_NAMES[f] for f in sorted(self.flags)]

    def names_for(self, device_type: int) -> list[str]:
        """The names of the set flags for a peripheral device type.

        A medium changer (8) numbers its flags differently from a tape drive (SMC-3
        against SSC); every other type gets the tape drive's names.
        """
        table = CHANGER_TAPE_ALERT_NAMES if device_type == 8 else TAPE_ALERT_NAMES
        return [table[f] for f in sorted(self.flags)]

    def __contains__(self, flag: object) -> bool:
        """``20 in alert``: is flag 20 set?"""
        return flag in self.flags

    def to_log_page(self) -> LogPage:
        """The page as a :class:`LogPage` (one 1-byte parameter per flag)."""
        return LogPage(
            self.PAGE_CODE,
            tuple(
                LogParameter(n, bytes((int(n in self.flags),)), format_and_linking=3)
                for n in sorted(self.present)
            ),
        )

    @classmethod
    def from_log_page(cls, page: LogPage) -> TapeAlert:
        """Read the flags of a parsed log page 2Eh.

        Raises:
            DecodeError: the page is not 2Eh or a parameter is not a flag 1..64.
        """
        if page.page_code != cls.PAGE_CODE:
            raise DecodeError(f"TapeAlert: page 2Eh expected, got {page.page_code:02X}h")
        flags, present = set(), set()
        for p in page.parameters:
            if not 1 <= p.parameter_code <= 64:
                raise DecodeError(
                    f"TapeAlert: parameter code {p.parameter_code:04X}h is not a flag"
                )
            if not p.value:
                raise DecodeError(f"TapeAlert: flag {p.parameter_code} has no value byte")
            present.add(p.parameter_code)
            if p.value[0] & 1:
                flags.add(p.parameter_code)
        return cls(frozenset(flags), frozenset(present))

    def to_bytes(self) -> bytes:
        """Encode the whole log page."""
        return self.to_log_page().to_bytes()

    @classmethod
    def from_bytes(cls, buf: Bytes) -> TapeAlert:
        """Parse log page 2Eh."""
        return cls.from_log_page(LogPage.from_bytes(buf))
