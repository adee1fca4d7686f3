"""Arbitrary answers from a device give a result or a typed error, never anything else."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

import tapepath
from tapepath.errors import TapepathError
from tapepath.testing import MockTransport, Request
from tapepath.transport.base import Response

_answers = st.one_of(
    st.builds(lambda data: Response(data=data), st.binary(max_size=300)),
    st.builds(lambda sense: Response(status=2, sense=sense), st.binary(max_size=40)),
    st.sampled_from([Response(status=0x18), Response(status=0x22), Response(status=0x08)]),
)


def _device(answers: list[Response]) -> MockTransport:
    def handle(req: Request) -> Response:
        return answers.pop(0) if answers else Response(status=0x22)

    return MockTransport(handle, url="mock://fuzz")


class TestDriveAnswers:
    """TapeDrive's parsers and runner are bounded and typed."""

    @given(st.lists(_answers, min_size=1, max_size=12))
    def test_drive_calls(self, answers: list[Response]) -> None:
        """position, block_size, tape_alerts, serial and read return or raise TapepathError."""
        drive = tapepath.TapeDrive(_device(list(answers)), timeout=0.005)
        for call in (
            drive.position,
            lambda: drive.block_size,
            drive.tape_alerts,
            lambda: drive.serial,
            lambda: drive.read(64),
        ):
            with contextlib.suppress(TapepathError):
                call()

    @given(st.lists(_answers, min_size=1, max_size=12))
    def test_library_calls(self, answers: list[Response]) -> None:
        """inventory and move return or raise TapepathError."""
        lib = tapepath.Library(_device(list(answers)), timeout=0.005)
        for call in (lib.inventory, lambda: lib.move(1, 2), lambda: lib.load(1, 0)):
            with contextlib.suppress(TapepathError):
                call()
