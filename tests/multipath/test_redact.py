"""Secrets never reach a log, a repr or an error message through the multipath layer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tapepath.errors import TransportError
from tapepath.multipath import MultipathDevice
from tapepath.multipath.config import parse_config
from tapepath.multipath.redact import redact_url
from tapepath.transport import Transport
from tapepath.transport.registry import register_scheme

SECRET = "s3cr3t-Pw"


class TestRedactUrl:
    """redact_url removes passwords from the user part and from query arguments."""

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("iscsi://alice%s3cr3t-Pw@10.0.0.1/iqn.x/0", "iscsi://alice%***@10.0.0.1/iqn.x/0"),
            (
                "iscsi://10.0.0.1/iqn.x/0?target_user=t&target_password=s3cr3t-Pw&x=1",
                "iscsi://10.0.0.1/iqn.x/0?target_user=t&target_password=***&x=1",
            ),
            ("sg:///dev/sg3", "sg:///dev/sg3"),
            ("iscsi://bob@10.0.0.1/iqn.x/0", "iscsi://bob@10.0.0.1/iqn.x/0"),
        ],
    )
    def test_forms(self, url: str, shown: str) -> None:
        """Known forms are redacted exactly."""
        assert redact_url(url) == shown

    @given(st.text(alphabet=st.characters(blacklist_characters="@/?#&%"), min_size=1))
    def test_any_password(self, password: str) -> None:
        """Whatever the password, it is gone."""
        out = redact_url(f"iscsi://u%{password}@h/iqn/0?target_password={password}")
        assert out == "iscsi://u%***@h/iqn/0?target_password=***"


class TestNoLeak:
    """Deferred paths and configurations keep secrets to themselves."""

    def test_deferred_path(self) -> None:
        """A path that cannot open is logged and named without its password."""

        class Down(Transport):
            @classmethod
            def from_url(cls, url: str) -> Transport:
                raise TransportError(f"cannot reach {url}")

            def execute(self, cdb: bytes, **kw: object) -> object:  # type: ignore[override]
                raise AssertionError  # pragma: no cover

            def close(self) -> None:  # pragma: no cover
                pass

        register_scheme("down-mp", Down)
        with capture_logs() as logs:
            dev = MultipathDevice([f"down-mp://u%{SECRET}@h/x"], monitor=False, handler=None)
        assert SECRET not in repr(logs)
        assert SECRET not in dev.name
        assert SECRET not in repr(dev.paths)
        r = dev.paths[0].transport.execute(bytes(6))
        assert r.detail is not None
        assert SECRET not in r.detail.message

    def test_config_repr(self) -> None:
        """A device configuration's repr hides the passwords of its paths."""
        cfg = parse_config(f'[devices.a]\npaths = ["iscsi://u%{SECRET}@h/iqn.x/0"]\n')
        assert SECRET not in repr(cfg)
        assert cfg.device("a").paths == (f"iscsi://u%{SECRET}@h/iqn.x/0",)
