"""mtx's argument parsing: commands run as they are read, numeric words as atoi reads them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.mtx.args import COMMANDS, Command, SetDevice, UsageError, atoi, parse


class TestParse:
    """Steps come out in order, with up to num_args numeric arguments each."""

    def test_device_and_commands(self) -> None:
        """-f sets the device; load takes two numbers, status none."""
        steps = list(parse(["-f", "/dev/sg3", "load", "3", "1", "status"]))
        assert steps == [SetDevice("/dev/sg3"), Command("load", 3, 1), Command("status")]

    def test_optional_numbers(self) -> None:
        """A missing number is -1 and the next word is read as a command."""
        steps = list(parse(["unload", "status", "unload", "4", "next"]))
        assert steps == [
            Command("unload"),
            Command("status"),
            Command("unload", 4),
            Command("next"),
        ]

    def test_exchange_takes_three(self) -> None:
        """exchange reads a third number; a fourth is a usage error."""
        assert list(parse(["exchange", "1", "2", "3"])) == [Command("exchange", 1, 2, 3)]
        with pytest.raises(UsageError):
            list(parse(["exchange", "1", "2", "3", "4"]))

    def test_steps_before_an_error_are_yielded(self) -> None:
        """'status bogus' yields status before the usage error, as mtx runs status first."""
        it = parse(["status", "bogus"])
        assert next(it) == Command("status")
        with pytest.raises(UsageError):
            next(it)

    def test_dash_f_without_device(self) -> None:
        """-f at the end is a usage error."""
        with pytest.raises(UsageError):
            list(parse(["-f"]))

    def test_option_words(self) -> None:
        """Options are commands without device: eepos takes one number."""
        steps = list(parse(["nobarcode", "invert", "eepos", "2", "altres", "noattach"]))
        assert [s.name for s in steps if isinstance(s, Command)] == [
            "nobarcode",
            "invert",
            "eepos",
            "altres",
            "noattach",
        ]
        assert steps[2] == Command("eepos", 2)

    def test_every_command_in_the_table(self) -> None:
        """Every mtx 1.3.12 command word is known, with mtx's argument counts."""
        assert {n: c.num_args for n, c in COMMANDS.items()} == {
            "inquiry": 0, "status": 0, "invert": 0, "noattach": 0, "eepos": 1, "load": 2,
            "unload": 2, "transfer": 2, "first": 1, "last": 1, "previous": 1, "next": 1,
            "--version": 0, "inventory": 0, "eject": 0, "erase": 0, "nobarcode": 0,
            "position": 1, "invert2": 0, "exchange": 3, "altres": 0,
        }  # fmt: skip

    @given(st.lists(st.text(max_size=6), max_size=8))
    def test_any_words(self, words: list[str]) -> None:
        """Any argument list gives steps or a usage error, nothing else."""
        try:
            for step in parse(words):
                assert isinstance(step, (SetDevice, Command))
        except UsageError:
            pass


class TestAtoi:
    """atoi of a word that starts with a digit."""

    def test_leading_digits(self) -> None:
        """Digits up to the first non-digit."""
        assert atoi("12") == 12
        assert atoi("3x") == 3
        assert atoi("007") == 7

    def test_numbers_in_commands(self) -> None:
        """'load 2abc' loads slot 2."""
        assert list(parse(["load", "2abc"])) == [Command("load", 2)]
