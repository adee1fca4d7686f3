"""Tests of the TOML configuration: devices by alias, policies, errors naming line and key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import ConfigError
from tapepath.multipath import FailbackMode
from tapepath.multipath.config import (
    CONFIG_ENV,
    Config,
    default_config_path,
    load_config,
    parse_config,
)

GOOD = """\
# a site configuration
[defaults]
selector = "failover"
failback = "manual"
no_path = 30
polling_interval = 2

[defaults.priorities]
"iscsi://10.0.0.9" = 5

[devices.robot]
paths = ["iscsi://10.0.0.5/iqn.2026-11.example:vtl/0",
         "iscsi://10.0.0.9/iqn.2026-11.example:vtl/0"]
handler = "alua"
device_type = "changer"
no_path = "queue"

[devices.disk]
paths = ["sg:///dev/sg1", "sg:///dev/sg2"]
selector = "round-robin"
"""


class TestParse:
    """A valid file gives devices with their merged policies."""

    def test_good(self) -> None:
        """Defaults apply to every device; a device's own keys win."""
        cfg = parse_config(GOOD, "site.toml")
        assert cfg.defaults.failback.mode is FailbackMode.MANUAL
        robot = cfg.device("robot")
        assert robot.paths == (
            "iscsi://10.0.0.5/iqn.2026-11.example:vtl/0",
            "iscsi://10.0.0.9/iqn.2026-11.example:vtl/0",
        )
        assert robot.handler == "alua"
        assert robot.device_type == 8
        assert robot.policy.no_path.queue_for == math.inf
        assert robot.policy.failback.mode is FailbackMode.MANUAL
        assert robot.policy.checker.interval == 2
        assert robot.policy.priority_for(robot.paths[1]) == 5
        assert robot.policy.priority_for(robot.paths[0]) == 10
        disk = cfg.device("disk")
        assert disk.policy.selector == "round-robin"
        assert disk.policy.no_path.queue_for == 30

    def test_empty(self) -> None:
        """An empty file is the defaults and no devices."""
        cfg = parse_config("")
        assert cfg.devices == {}
        assert cfg == Config(source="<string>")

    def test_unknown_alias(self) -> None:
        """Asking for a missing alias names the known ones."""
        with pytest.raises(ConfigError, match="known: disk, robot"):
            parse_config(GOOD).device("tape9")


class TestErrors:
    """Errors name the file, the line and the key."""

    @pytest.mark.parametrize(
        ("text", "where"),
        [
            ('[defaults]\nselector = "failover"\nno_path = -1\n', "x.toml:3: defaults.no_path"),
            ("[defaults]\npolling_interval = 0\n", "x.toml:2: defaults.polling_interval"),
            ("[defaults]\nbogus = 1\n", "x.toml:2: defaults.bogus"),
            ('[devices.a]\nhandler = "alua"\n', "x.toml:1: devices.a: needs 'paths'"),
            ("[devices.a]\npaths = []\n", "x.toml:2: devices.a.paths"),
            ('[devices.a]\npaths = ["not-a-url"]\n', "x.toml:2: devices.a.paths"),
            ('[devices.a]\npaths = ["sg://x", "sg://x"]\n', "x.toml:2: devices.a.paths"),
            (
                '[devices.a]\npaths = ["sg://x"]\ndevice_type = "robot"\n',
                "x.toml:3: devices.a.device_type",
            ),
            (
                '[devices.a]\npaths = ["sg://x"]\n\n\nfailback = "later"\n',
                "x.toml:5: devices.a.failback",
            ),
            (
                '[devices.a]\npaths = ["sg://x"]\n[devices.a.priorities]\nsg = "high"\n',
                "x.toml:3: devices.a.priorities",
            ),
            ("[other]\nx = 1\n", "x.toml:1: other"),
        ],
    )
    def test_named(self, text: str, where: str) -> None:
        """The message starts with file:line: key."""
        with pytest.raises(ConfigError) as info:
            parse_config(text, "x.toml")
        assert str(info.value).startswith(where), str(info.value)

    def test_bad_toml(self) -> None:
        """A TOML syntax error says where."""
        with pytest.raises(ConfigError, match=r"x\.toml: not valid TOML: .*line 2"):
            parse_config("[defaults]\nselector = \n", "x.toml")


class TestLoad:
    """Files are found by argument, environment or default places."""

    def test_load_file(self, tmp_path: Path) -> None:
        """load_config reads a file and names it in errors."""
        f = tmp_path / "t.toml"
        f.write_text(GOOD)
        assert set(load_config(f).devices) == {"robot", "disk"}
        f.write_text("[defaults]\nchecker = 'ping'\n")
        with pytest.raises(ConfigError, match=rf"{f}:2: defaults.checker"):
            load_config(f)

    def test_missing_file(self, tmp_path: Path) -> None:
        """An unreadable file is a ConfigError."""
        with pytest.raises(ConfigError, match="cannot read"):
            load_config(tmp_path / "none.toml")

    def test_env(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """TAPEPATH_CONFIG names the default file."""
        f = tmp_path / "env.toml"
        f.write_text(GOOD)
        monkeypatch.setenv(CONFIG_ENV, str(f))
        assert default_config_path() == f
        assert "robot" in load_config().devices


class TestArbitraryText:
    """Any text gives a Config or a ConfigError, nothing else."""

    @given(st.text(max_size=300))
    def test_text(self, text: str) -> None:
        """Random text never escapes as another exception."""
        try:
            cfg = parse_config(text, "h.toml")
        except ConfigError:
            return
        assert isinstance(cfg, Config)

    @given(
        st.dictionaries(
            st.sampled_from(["selector", "failback", "no_path", "polling_interval", "bogus"]),
            st.one_of(st.integers(-5, 100), st.text(max_size=10), st.floats(allow_nan=True)),
            max_size=4,
        )
    )
    def test_settings(self, settings: dict[str, object]) -> None:
        """Random settings tables give a Config or a ConfigError naming the key."""
        lines = ["[defaults]"]
        for k, v in settings.items():
            lines.append(f"{k} = {_toml_value(v)}")
        message = ""
        try:
            parse_config("\n".join(lines) + "\n", "h.toml")
        except ConfigError as exc:
            message = str(exc)
        assert message == "" or message.startswith("h.toml")


def _toml_value(v: object) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        if v != v:
            return "nan"
        if v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
    return repr(v)
