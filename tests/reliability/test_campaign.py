"""The fault campaign: a short run asserts the zeros; the checker catches real damage."""

from __future__ import annotations

import json
import random

import pytest
import structlog

import tapepath
from tapepath.testing import VirtualClock, VirtualLibrary
from tapepath.testing.campaign import Model, Tally, Workload, compare_tape, run_campaign
from tapepath.testing.campaign.__main__ import main
from tapepath.testing.campaign.model import FILEMARK_TOKEN, Doubt
from tapepath.testing.campaign.sim import _check, _SimRig


class TestCompareTape:
    """The tape comparison accepts the model or its doubted write, nothing else."""

    def test_exact_and_doubted(self) -> None:
        """The model itself, and the model cut at a doubted write plus that write, pass."""
        model = [b"a", b"b", FILEMARK_TOKEN]
        assert compare_tape(model, model).clean
        doubt = Doubt("write", "X", offset=3, obj=b"c")
        assert compare_tape(model, [*model, b"c"], doubt).clean
        assert compare_tape(model, model, doubt).clean

    def test_lost_duplicated_foreign(self) -> None:
        """Each kind of damage is counted."""
        model = [b"a", b"b", b"c"]
        assert compare_tape(model, [b"a", b"c"]).lost == 1
        assert compare_tape(model, [b"a", b"b", b"b", b"c"]).duplicated == 1
        assert compare_tape(model, [b"a", b"b", b"c", b"z"]).foreign == 1
        assert not compare_tape(model, [b"b", b"a", b"c"]).clean

    def test_doubt_twice_is_a_duplicate(self) -> None:
        """A doubted write found twice is a duplicate, not an accepted state."""
        doubt = Doubt("write", "X", offset=1, obj=b"w")
        result = compare_tape([b"a"], [b"a", b"w", b"w"], doubt)
        assert result.duplicated == 1


class TestModel:
    """Doubted moves accept either end; anything else is misplaced."""

    def test_misplaced(self) -> None:
        """A cartridge at its source or doubted destination passes; elsewhere it does not."""
        m = Model(location={"A": 10, "B": 11}, drive_addresses=(100,))
        m.doubt_move("A", 100)
        assert m.misplaced({"A": 100, "B": 11}) == 0
        assert m.misplaced({"A": 10, "B": 11}) == 0
        assert m.misplaced({"A": 12, "B": 11}) == 1
        assert m.misplaced({"A": 10, "B": None}) == 1


class _DoubleWriter:
    """A drive handle whose write() writes every record twice (a broken library)."""

    def __init__(self, drive: tapepath.TapeDrive) -> None:
        self._drive = drive

    def __getattr__(self, name: str) -> object:
        return getattr(self._drive, name)

    def write(self, data: bytes) -> int:
        self._drive.write(data)
        return self._drive.write(data)


class TestCheckerCatchesDamage:
    """A library that duplicates writes fails the campaign's check."""

    def test_duplicating_drive_is_caught(self) -> None:
        """Writes through a handle that writes twice show up as duplicates."""
        tally = Tally()
        rng = random.Random(5)
        with VirtualLibrary("campaign-dup", slots=8, drives=2, clock=VirtualClock()) as vlib:
            vlib_model = Model(
                location={c: a for a, c in vlib.inventory().items() if c is not None},
                drive_addresses=(vlib.drive_address(0), vlib.drive_address(1)),
            )
            lib = tapepath.open_library(vlib.changer_urls(), monitor=False)
            drives = [tapepath.open_drive(vlib.drive_urls(i), monitor=False) for i in (0, 1)]
            rig = _SimRig(vlib, lib, [_DoubleWriter(d) for d in drives])  # type: ignore[misc]
            try:
                Workload(rig, vlib_model, rng, tally, "dup").run(40)
            finally:
                for d in drives:
                    d.close()
                lib.close()
            _check(vlib, vlib_model, tally, "dup")
        assert tally.records_duplicated > 0 or tally.reads_wrong > 0
        assert not tally.ok


class TestShortCampaign:
    """A short campaign loses, duplicates and overruns nothing."""

    def test_virtual_library(self) -> None:
        """200 seeded scenarios on the virtual library: the must-be-0 counters are 0."""
        tally = run_campaign(11, 200, tgtd=False)
        assert tally.scenarios == 200
        assert tally.faults_injected > 100
        assert tally.recovered_transparently > 50
        assert tally.failures == []
        assert tally.records_lost == tally.records_duplicated == 0
        assert tally.deadline_overruns == 0
        assert tally.ok

    @pytest.mark.needs("tgtd", "tgtadm", "tgtimg")
    def test_with_tgtd(self) -> None:
        """50 scenarios, one in five on tgtd with real faults: the zeros hold."""
        tally = run_campaign(12, 50, tgtd=True)
        assert tally.tgtd_scenarios == 10
        assert tally.faults_injected > 10
        assert tally.failures == []
        assert tally.records_lost == tally.records_duplicated == 0
        assert tally.deadline_overruns == 0
        assert tally.ok

    def test_command_line_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The documented command prints the counters as JSON and exits 0."""
        saved = structlog.get_config()
        try:
            rc = main(["--seed", "3", "--scenarios", "5", "--no-tgtd", "--json"])
        finally:
            structlog.configure(**saved)
        assert rc == 0
        data = json.loads(capsys.readouterr().out)
        assert data["scenarios"] == 5
        assert data["ok"] is True
        assert data["records_lost"] == data["records_duplicated"] == 0
