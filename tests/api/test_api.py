"""open_library/open_drive arguments, aliases, and the typed errors of failed commands."""

from __future__ import annotations

import pytest

import tapepath
from tapepath.api import error_for, split_paths
from tapepath.errors import (
    BeginningOfMediumError,
    CheckConditionError,
    ConfigError,
    DeviceError,
    ElementAddressError,
    ElementEmptyError,
    ElementFullError,
    EndOfDataError,
    EndOfMediumError,
    MediumNotPresentError,
    MediumRemovalPreventedError,
    NotReadyError,
    ReservationConflictError,
    TapeConditionError,
    WriteProtectedError,
)
from tapepath.multipath import parse_config
from tapepath.scsi.classify import classify
from tapepath.scsi.element_status import ElementStatus
from tapepath.scsi.sense import SenseKey, fixed_sense
from tapepath.testing import MockTransport, Request, VirtualLibrary
from tapepath.transport.base import Response


class TestSplitPaths:
    """What the open functions accept as paths."""

    def test_forms(self) -> None:
        """A list, one URL, a comma-separated string, an alias."""
        assert split_paths(["sim://a/changer", "sim://a/changer?port=1"]) == [
            "sim://a/changer",
            "sim://a/changer?port=1",
        ]
        assert split_paths("sim://a/changer") == ["sim://a/changer"]
        assert split_paths(" sim://a/x , sim://a/y ") == ["sim://a/x", "sim://a/y"]
        assert split_paths("robot") == "robot"

    @pytest.mark.parametrize("bad", ["", "  ", [], ["sim://a/x", ""]])
    def test_empty(self, bad: str | list[str]) -> None:
        """Nothing to open is a ValueError."""
        with pytest.raises(ValueError, match="no paths"):
            split_paths(bad)


class TestOpen:
    """open_library/open_drive by URLs, by comma string and by alias."""

    def test_comma_string(self, virtual_library: VirtualLibrary) -> None:
        """A comma-separated string opens every path."""
        urls = virtual_library.changer_urls()
        with tapepath.open_library(",".join(urls), monitor=False) as lib:
            assert [p.url for p in lib.paths] == urls
            assert len(lib.inventory().drives) == 2

    def test_alias(self, virtual_library: VirtualLibrary) -> None:
        """An alias of the configuration names the paths and the settings."""
        urls = virtual_library.drive_urls(1)
        config = parse_config(
            "[devices.lto1]\n"
            f"paths = [{', '.join(repr(u).replace(chr(39), chr(34)) for u in urls)}]\n"
            "no_path = 5\n"
        )
        virtual_library.insert(virtual_library.drive_address(1), "AL0001L8")
        with tapepath.open_drive("lto1", config=config, monitor=False) as d:
            assert [p.url for p in d.paths] == urls
            d.write(b"via alias")
            assert d.device.policy.no_path.queue_for == 5  # type: ignore[attr-defined]
        assert virtual_library.tape(1).records() == [b"via alias"]

    def test_unknown_alias_and_setting(self, virtual_library: VirtualLibrary) -> None:
        """An unknown alias or policy key is a ConfigError."""
        with pytest.raises(ConfigError, match="nosuch"):
            tapepath.open_library("nosuch", config=parse_config(""), monitor=False)
        with pytest.raises(ConfigError, match="bogus"):
            tapepath.open_library(virtual_library.changer_urls(), monitor=False, bogus=1)

    def test_bad_timeouts(self, virtual_library: VirtualLibrary) -> None:
        """Non-positive timeouts are refused and the device is closed again."""
        with pytest.raises(ValueError, match="timeout"):
            tapepath.open_library(virtual_library.changer_urls(), monitor=False, timeout=0)
        with pytest.raises(ValueError, match="page_bytes"):
            tapepath.open_library(virtual_library.changer_urls(), monitor=False, page_bytes=10)
        with pytest.raises(ValueError, match="reservation_key"):
            tapepath.open_drive(virtual_library.drive_urls(0), monitor=False, reservation_key=0)

    def test_handler_by_name(self, virtual_library: VirtualLibrary) -> None:
        """handler= picks the activation handler instead of INQUIRY."""
        from tapepath.multipath import AluaHandler, NullHandler  # noqa: PLC0415

        urls = virtual_library.changer_urls()
        with tapepath.open_library(urls, monitor=False, handler="none") as lib:
            assert isinstance(lib.device.handler, NullHandler)  # type: ignore[attr-defined]
        with tapepath.open_library(urls, monitor=False, handler="alua") as lib:
            assert isinstance(lib.device.handler, AluaHandler)  # type: ignore[attr-defined]
            assert len(lib.inventory().drives) == 2

    def test_wrong_device_type(self, virtual_library: VirtualLibrary) -> None:
        """A drive's paths given to open_library (or the changer's to open_drive) are refused."""
        with pytest.raises(tapepath.DeviceTypeError, match="a tape drive, not a medium changer"):
            tapepath.open_library(virtual_library.drive_urls(0), monitor=False)
        with pytest.raises(tapepath.DeviceTypeError, match="a medium changer, not a tape drive"):
            tapepath.open_drive(virtual_library.changer_urls(), monitor=False)

    def test_discover_is_reexported(self, virtual_library: VirtualLibrary) -> None:
        """tapepath.discover finds the changer and both drives of the library."""
        devices = tapepath.discover([f"sim://{virtual_library.name}"], monitor=False)
        try:
            assert sorted(d.device_type or 0 for d in devices) == [1, 1, 8]
        finally:
            for d in devices:
                d.close()


def _error(key: int, asc: int = 0, ascq: int = 0, **flags: bool) -> Exception:
    return error_for(classify(2, fixed_sense(key, asc, ascq, **flags)), "CMD")


class TestErrorFor:
    """Each refusal maps to its typed error, which carries the decoded sense."""

    @pytest.mark.parametrize(
        ("key", "asc", "ascq", "kind"),
        [
            (SenseKey.ILLEGAL_REQUEST, 0x3B, 0x0D, ElementFullError),
            (SenseKey.ILLEGAL_REQUEST, 0x3B, 0x0E, ElementEmptyError),
            (SenseKey.ILLEGAL_REQUEST, 0x21, 0x01, ElementAddressError),
            (SenseKey.ILLEGAL_REQUEST, 0x53, 0x02, MediumRemovalPreventedError),
            (SenseKey.NOT_READY, 0x3A, 0x00, MediumNotPresentError),
            (SenseKey.NOT_READY, 0x04, 0x03, NotReadyError),
            (SenseKey.BLANK_CHECK, 0x00, 0x05, EndOfDataError),
            (SenseKey.VOLUME_OVERFLOW, 0x00, 0x02, EndOfMediumError),
            (SenseKey.NO_SENSE, 0x00, 0x04, BeginningOfMediumError),
            (SenseKey.DATA_PROTECT, 0x27, 0x00, WriteProtectedError),
            (SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, CheckConditionError),
            (SenseKey.MEDIUM_ERROR, 0x11, 0x00, CheckConditionError),
        ],
    )
    def test_mapping(self, key: int, asc: int, ascq: int, kind: type[Exception]) -> None:
        """The error's class, its sense and its message."""
        err = _error(key, asc, ascq)
        assert type(err) is kind
        assert isinstance(err, CheckConditionError)
        assert err.sense is not None
        assert (err.sense.asc, err.sense.ascq) == (asc, ascq)
        assert str(err).startswith("CMD: ")
        assert f"({asc:02X}/{ascq:02X})" in str(err)

    def test_residual(self) -> None:
        """Tape conditions keep the signed residual."""
        err = error_for(classify(2, fixed_sense(SenseKey.BLANK_CHECK, 0, 5, information=7)), "READ")
        assert isinstance(err, TapeConditionError)
        assert err.residual == 7

    def test_statuses(self) -> None:
        """RESERVATION CONFLICT and unknown statuses."""
        assert isinstance(error_for(classify(0x18), "X"), ReservationConflictError)
        err = error_for(classify(0x22), "X")
        assert isinstance(err, DeviceError)
        assert not isinstance(err, CheckConditionError)


class TestRunner:
    """The command runner retries what the device asks to retry, and no more."""

    def test_busy_then_good(self) -> None:
        """BUSY twice, then GOOD: the caller sees GOOD."""
        answers = [Response(status=0x08), Response(status=0x08), Response(data=b"ok")]
        mock = MockTransport(lambda req: answers.pop(0))
        lib = tapepath.Library(mock, timeout=5)
        r = lib._run(b"\x00" * 6, "TEST UNIT READY")
        assert r.ok
        assert len(mock.requests) == 3

    def test_aborted_write_and_move_are_not_repeated(self) -> None:
        """ABORTED COMMAND may follow a command that ran: a WRITE or MOVE is not resent."""
        aborted = Response(status=2, sense=fixed_sense(SenseKey.ABORTED_COMMAND, 0x47, 0))

        def handle(req: Request) -> Response:
            if req.cdb[0] in (0x0A, 0xA5):
                return aborted
            if req.cdb[0] == 0x1A:  # MODE SENSE(6): variable blocks, no pages
                return Response(data=bytes((11, 0, 0, 8)) + bytes(8))
            if req.cdb[0] == 0xB8:  # READ ELEMENT STATUS: no elements
                return Response(data=ElementStatus().to_bytes())
            return Response()

        mock = MockTransport(handle)
        drive = tapepath.TapeDrive(mock, timeout=5)
        with pytest.raises(CheckConditionError, match="ABORTED COMMAND"):
            drive.write(b"once")
        assert sum(r.cdb[0] == 0x0A for r in mock.requests) == 1
        lib = tapepath.Library(mock, timeout=5)
        with pytest.raises(CheckConditionError, match="ABORTED COMMAND"):
            lib.move(0x1000, 0x100)
        assert sum(r.cdb[0] == 0xA5 for r in mock.requests) == 1

    def test_aborted_inquiry_is_repeated(self) -> None:
        """A command safe to repeat is sent again after ABORTED COMMAND."""
        answers = [
            Response(status=2, sense=fixed_sense(SenseKey.ABORTED_COMMAND, 0x47, 0)),
            Response(data=b"x"),
        ]
        mock = MockTransport(lambda req: answers.pop(0))
        r = tapepath.TapeDrive(mock, timeout=5)._run(bytes(6), "TEST UNIT READY")
        assert r.ok
        assert len(mock.requests) == 2

    def test_unit_attentions_are_bounded(self) -> None:
        """A device that only ever reports unit attentions ends in a typed error."""
        ua = fixed_sense(SenseKey.UNIT_ATTENTION, 0x29, 0x00)

        def handle(req: Request) -> Response:
            return Response(status=2, sense=ua)

        mock = MockTransport(handle)
        lib = tapepath.Library(mock, timeout=5)
        with pytest.raises(CheckConditionError, match="29/00"):
            lib.inventory()
        assert 2 <= len(mock.requests) <= 20

    def test_path_failure_outcome(self) -> None:
        """A failed path returned as a response is a PathFailureError."""
        from tapepath.transport.base import Outcome  # noqa: PLC0415

        mock = MockTransport(
            lambda req: Response.failure(Outcome.LINK_LOST, "cut", maybe_executed=False)
        )
        with pytest.raises(tapepath.PathFailureError, match="cut") as err:
            tapepath.Library(mock).inventory()
        assert err.value.maybe_executed is False
