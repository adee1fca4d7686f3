"""Tests of discovery: grouping by designator and type, hot add, priorities, open_device."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tapepath.errors import ConfigError
from tapepath.multipath import PathState
from tapepath.multipath.config import parse_config
from tapepath.multipath.discovery import Discovery, discover, expand_source, open_device
from tapepath.scsi.alua import AccessState
from tapepath.testing.library import VirtualLibrary
from tapepath.transport import Transport
from tests.multipath.fakes import FakeAluaUnit, FakeUnit, Mode, fake_sg_node


def _opener(table: dict[str, Transport]) -> Callable[[str], Transport]:
    def open_(url: str) -> Transport:
        return table[url]

    return open_


class TestSim:
    """A whole VirtualLibrary is found from its name."""

    def test_groups_by_unit(self, virtual_library: VirtualLibrary) -> None:
        """One device per logical unit, every port a path, types kept apart."""
        lib = virtual_library
        devs = discover([f"sim://{lib.name}"], monitor=False)
        by_type = sorted((d.device_type or 0, len(d.paths)) for d in devs)
        assert by_type == [(1, 2), (1, 2), (8, 2)]
        changer = next(d for d in devs if d.device_type == 8)
        assert {p.url for p in changer.paths} == set(lib.changer_urls())
        assert changer.handler.name == "alua"
        states = {p.url: p.state for p in changer.paths}
        assert states[lib.changer_urls()[0]] is PathState.ACTIVE
        assert states[lib.changer_urls()[1]] is PathState.PASSIVE
        for i in range(2):
            drive = next(d for d in devs if {p.url for p in d.paths} == set(lib.drive_urls(i)))
            assert drive.device_type == 1

    def test_hot_add(self, virtual_library: VirtualLibrary) -> None:
        """A path found by a later scan joins its device instead of making a new one."""
        lib = virtual_library
        disc = Discovery(monitor=False)
        first = disc.scan([lib.drive_urls(0)[0]])
        assert len(first) == 1
        dev = first[0]
        with capture_logs() as logs:
            later = disc.scan([lib.drive_urls(0)[1], lib.drive_urls(0)[0]])
        assert later == [dev]
        assert {p.url for p in dev.paths} == set(lib.drive_urls(0))
        assert [e["event"] for e in logs].count("discovery_path_joined") == 1

    def test_unknown_library_logged(self) -> None:
        """An unknown source is logged and skipped."""
        with capture_logs() as logs:
            assert discover(["sim://no-such-library"], monitor=False) == []
        assert logs[-1]["event"] == "discovery_source_failed"


class TestGrouping:
    """Grouping rules on scripted units."""

    def test_changer_and_drive_never_merge(self) -> None:
        """Same designator, different peripheral types: two devices."""
        changer = FakeAluaUnit(ports=2, device_type=8, naa="5000e11100000009")
        drive = FakeAluaUnit(ports=1, device_type=1, naa="5000e11100000009")
        table: dict[str, Transport] = {
            "mock://c0": changer.transports[0],
            "mock://c1": changer.transports[1],
            "mock://d0": drive.transports[0],
        }
        devs = Discovery(monitor=False, opener=_opener(table)).scan(list(table))
        assert sorted((d.device_type, len(d.paths)) for d in devs) == [(1, 1), (8, 2)]

    def test_priority_prefers_direct(self) -> None:
        """With configured priorities the direct path is preferred; served stays an alternate."""
        unit = FakeAluaUnit(ports=2, device_type=1)
        unit.activate_group(1)
        unit.unit_attentions[0].clear()
        unit.states[:] = [AccessState.ACTIVE_OPTIMIZED, AccessState.ACTIVE_OPTIMIZED]
        served, direct = "mock://alua/port0", "mock://alua/port1"
        table: dict[str, Transport] = {served: unit.transports[0], direct: unit.transports[1]}
        disc = Discovery(
            monitor=False,
            opener=_opener(table),
            priorities={direct: 30, served: 5},
        )
        (dev,) = disc.scan([served, direct])
        assert [p.url for p in dev.paths] == [direct, served]
        assert dev.execute(bytes(6)).ok
        assert dev.current_path is dev.group.find(direct)

    def test_dead_path_left_out(self) -> None:
        """A path that cannot answer INQUIRY is logged and left out."""
        unit = FakeUnit(ports=1)
        unit.modes[0] = Mode.DOWN
        with capture_logs() as logs:
            devs = Discovery(monitor=False, opener=_opener({"mock://x": unit.transports[0]})).scan(
                ["mock://x"]
            )
        assert devs == []
        assert logs[-1]["event"] == "discovery_identify_failed"

    def test_expand(self) -> None:
        """Plain path URLs stand for themselves; other text is refused."""
        assert expand_source("sg:///dev/sg4") == ["sg:///dev/sg4"]
        with pytest.raises(ValueError, match="discovery source"):
            expand_source("tape0")


class TestSgNodes:
    """The ``sg`` source reads sysfs; paths group by what INQUIRY says."""

    def test_fake_sysfs(self, tmp_path: Path) -> None:
        """Two sg nodes of one changer and one of a drive: two devices."""
        fake_sg_node(tmp_path / "sys", 3, "2:0:0:1", ptype=8)
        fake_sg_node(tmp_path / "sys", 4, "3:0:0:1", ptype=8)
        fake_sg_node(tmp_path / "sys", 5, "2:0:0:2", ptype=1)
        changer = FakeAluaUnit(ports=2, device_type=8, naa="5000e11100000021")
        drive = FakeAluaUnit(ports=1, device_type=1, naa="5000e11100000022")
        dev_root = str(tmp_path / "dev")
        table: dict[str, Transport] = {
            f"sg://{dev_root}/sg3": changer.transports[0],
            f"sg://{dev_root}/sg4": changer.transports[1],
            f"sg://{dev_root}/sg5": drive.transports[0],
        }
        disc = Discovery(
            monitor=False,
            opener=_opener(table),
            sysfs_root=str(tmp_path / "sys"),
            dev_root=dev_root,
        )
        devs = disc.scan(["sg"])
        assert sorted((d.device_type, len(d.paths)) for d in devs) == [(1, 1), (8, 2)]


class TestOpenDevice:
    """open_device takes URLs or a configured alias."""

    def test_alias(self, virtual_library: VirtualLibrary) -> None:
        """An alias opens its configured paths with its policy and handler."""
        lib = virtual_library
        urls = ", ".join(f'"{u}"' for u in lib.changer_urls())
        cfg = parse_config(
            f'[devices.robot]\npaths = [{urls}]\nhandler = "alua"\nno_path = 7\n', "t.toml"
        )
        dev = open_device("robot", config=cfg, monitor=False)
        assert dev.name == "robot"
        assert dev.policy.no_path.queue_for == 7
        assert dev.handler.name == "alua"
        assert [p.state for p in dev.paths] == [PathState.ACTIVE, PathState.PASSIVE]
        with pytest.raises(ConfigError, match="no device alias"):
            open_device("tape9", config=cfg, monitor=False)

    def test_urls_choose_handler(self, virtual_library: VirtualLibrary) -> None:
        """With URLs the handler comes from INQUIRY (TPGS: ALUA)."""
        dev = open_device(virtual_library.changer_urls(), monitor=False, no_path="fail")
        assert dev.handler.name == "alua"
        assert dev.device_type == 8
