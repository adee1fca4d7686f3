"""The failover example in docs/testing.md runs and passes (so the docs cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tapepath.testing import AtCommand, FaultPlan, ResponseLost, VirtualClock, VirtualLibrary

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def example_namespace(marker: str = "def backup(") -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    code = next(b for b in blocks if marker in b)
    ns: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), ns)
    return ns


class TestDocsExample:
    """Every test function of the docs' backup example passes on a fresh library."""

    @pytest.mark.parametrize(
        "name", ["test_backup_survives_a_cut_link", "test_backup_never_writes_twice"]
    )
    def test_example(self, name: str) -> None:
        """Run one example test with a library and an installed plan."""
        ns = example_namespace()
        with VirtualLibrary(f"docs-{name}", clock=VirtualClock()) as lib:
            plan = FaultPlan()
            lib.install(plan)
            ns[name](lib, plan)
            assert plan.fired, "the example's fault never fired"

    @pytest.mark.parametrize(
        "name",
        [
            "test_load_after_control_path_failure",
            "test_load_after_a_cut_activates_the_passive_path",
        ],
    )
    def test_changer_example(self, name: str) -> None:
        """Run one changer example test with a library and an installed plan."""
        ns = example_namespace("def load(")
        with VirtualLibrary(f"docs-{name}"[:60], clock=VirtualClock()) as lib:
            plan = FaultPlan()
            lib.install(plan)
            ns[name](lib, plan)
            assert plan.fired, "the example's fault never fired"

    def test_changer_example_lost_response(self) -> None:
        """The loader's READ ELEMENT STATUS check finishes a move whose answer was lost."""
        ns = example_namespace("def load(")
        with VirtualLibrary("docs-lost-move", clock=VirtualClock()) as lib:
            lib.install(FaultPlan().add(ResponseLost(device="changer", trigger=AtCommand(2))))
            ns["load"](lib.changer_urls(), lib.slot_address(0), lib.drive_address(0))
            assert lib.where("TP0001L8") == lib.drive_address(0)

    def test_blind_resend_would_duplicate(self) -> None:
        """Without the READ POSITION check the lost response duplicates a record."""
        ns = example_namespace()
        with VirtualLibrary("docs-blind", clock=VirtualClock()) as lib:
            plan = FaultPlan()
            lib.install(plan)
            ns["block_number"] = lambda t: -1  # never proves the write happened
            with pytest.raises(AssertionError):
                ns["test_backup_never_writes_twice"](lib, plan)
            assert lib.tape(0).records() == [b"mon", b"tue", b"tue", b"wed"]  # type: ignore[union-attr]
