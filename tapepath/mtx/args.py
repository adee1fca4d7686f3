"""mtx 1.3.12's command line, parsed the way mtx parses it.

mtx reads its arguments left to right and runs each command as soon as it has read
it, so ``status bogus`` prints the status and then the usage. :func:`parse` is a
generator with the same shape: it yields a :class:`SetDevice` or a :class:`Command`
for each step and raises :class:`UsageError` where mtx prints its usage.

A numeric argument is any word that starts with a digit, read as C's ``atoi`` reads it
(``"3x"`` is 3); a command takes up to its number of numeric words and leaves the next
non-numeric word to be read as a command.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from attrs import frozen

__all__ = [
    "COMMANDS",
    "USAGE",
    "Command",
    "CommandSpec",
    "SetDevice",
    "UsageError",
    "atoi",
    "parse",
]

#: The usage text mtx 1.3.12 prints on stderr (exit status 1).
USAGE = (
    "Usage:\n"
    "\tmtx --version\n"
    "\tmtx [ -f <loader-dev> ] noattach <more commands>\n"
    "\tmtx [ -f <loader-dev> ] inquiry | inventory \n"
    "\tmtx [ -f <loader-dev> ] [altres] [nobarcode] status\n"
    "\tmtx [ -f <loader-dev> ] [altres] first [<drive#>]\n"
    "\tmtx [ -f <loader-dev> ] [altres] last [<drive#>]\n"
    "\tmtx [ -f <loader-dev> ] [altres] previous [<drive#>]\n"
    "\tmtx [ -f <loader-dev> ] [altres] next [<drive#>]\n"
    "\tmtx [ -f <loader-dev> ] [altres] [invert] load <storage-element-number> [<drive#>]\n"
    "\tmtx [ -f <loader-dev> ] [altres] [invert] unload "
    "[<storage-element-number>][<drive#>]\n"
    "\tmtx [ -f <loader-dev> ] [altres] [eepos eepos-number] transfer "
    "<storage-element-number> <storage-element-number>\n"
    "\tmtx [ -f <loader-dev> ] [altres] [eepos eepos-number][invert][invert2] exchange "
    "<storage-element-number> <storage-element-number>\n"
    "\tmtx [ -f <loader-dev> ] [altres] position <storage-element-number>\n"
    "\tmtx [ -f <loader-dev> ] eject\n"
)


@frozen
class CommandSpec:
    """One entry of mtx's command table.

    Attributes:
        num_args: how many numeric arguments the command may take.
        need_device: it talks to the changer (opens the device).
        need_status: it needs the element status first.
    """

    num_args: int
    need_device: bool
    need_status: bool


#: mtx's command table, in mtx's order.
COMMANDS: dict[str, CommandSpec] = {
    "inquiry": CommandSpec(0, True, False),
    "status": CommandSpec(0, True, True),
    "invert": CommandSpec(0, False, False),
    "noattach": CommandSpec(0, False, False),
    "eepos": CommandSpec(1, False, False),
    "load": CommandSpec(2, True, True),
    "unload": CommandSpec(2, True, True),
    "transfer": CommandSpec(2, True, True),
    "first": CommandSpec(1, True, True),
    "last": CommandSpec(1, True, True),
    "previous": CommandSpec(1, True, True),
    "next": CommandSpec(1, True, True),
    "--version": CommandSpec(0, False, False),
    "inventory": CommandSpec(0, True, False),
    "eject": CommandSpec(0, True, False),
    "erase": CommandSpec(0, True, False),
    "nobarcode": CommandSpec(0, False, False),
    "position": CommandSpec(1, True, True),
    "invert2": CommandSpec(0, False, False),
    "exchange": CommandSpec(3, True, True),
    "altres": CommandSpec(0, False, False),
}


class UsageError(Exception):
    """mtx would print its usage here (and exit 1)."""


@frozen
class SetDevice:
    """``-f DEVICE``: the changer for the commands that follow.

    Attributes:
        device: the text as typed (a path, URLs separated by commas, or an alias).
    """

    device: str


@frozen
class Command:
    """One command with its numeric arguments (-1 where absent, as in mtx).

    Attributes:
        name: the command word.
        arg1: the first numeric argument, or -1.
        arg2: the second, or -1.
        arg3: the third, or -1.
    """

    name: str
    arg1: int = -1
    arg2: int = -1
    arg3: int = -1

    @property
    def spec(self) -> CommandSpec:
        """The command's table entry."""
        return COMMANDS[self.name]


def atoi(word: str) -> int:
    """C's ``atoi`` for a word that starts with a digit: the leading digits' value.

    Values beyond C's int wrap as a 32-bit int would on Linux (mtx's behaviour is
    undefined there; this keeps the result an int in range).
    """
    digits = ""
    for ch in word:
        if not "0" <= ch <= "9":
            break
        digits += ch
    value = int(digits or "0") & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _numeric(argv: Sequence[str], i: int) -> int:
    if i >= len(argv) or not argv[i] or not "0" <= argv[i][0] <= "9":
        return -1
    return atoi(argv[i])


def parse(argv: Sequence[str]) -> Iterator[SetDevice | Command]:
    """The steps of an mtx command line, in order, as mtx reads them.

    Args:
        argv: the arguments after the program name.

    Yields:
        A :class:`SetDevice` for each ``-f DEVICE`` and a :class:`Command` for each
        command word with its numeric arguments.

    Raises:
        UsageError: at ``-f`` without a device, or at a word that is not a command
            (after the steps before it were yielded).
    """
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "-f":
            if i + 1 >= len(argv):
                raise UsageError("-f needs a device")
            yield SetDevice(argv[i + 1])
            i += 2
            continue
        spec = COMMANDS.get(word)
        if spec is None:
            raise UsageError(f"not a command: {word!r}")
        i += 1
        args = [-1, -1, -1]
        for n in range(spec.num_args):
            value = _numeric(argv, i)
            if value == -1:
                break
            args[n] = value
            i += 1
        yield Command(word, *args)
