"""CHAP secrets never reach a repr, a log event, an exception or the CLI's output."""

from __future__ import annotations

import traceback
from collections.abc import Iterator

import pytest
import structlog
from click.testing import CliRunner
from structlog.testing import capture_logs

from tapepath.errors import TapepathError
from tapepath.iscsi.chap import Credentials, Secret
from tapepath.iscsi.url import parse_iscsi_url
from tapepath.multipath import MultipathDevice
from tapepath.testing.hostile import HostileTarget
from tapepath.transport.iscsi import IscsiTransport

SECRET = "Zq8-initiator-secret"
TARGET_SECRET = "Wk3-target-secret"
SECRETS = (SECRET, TARGET_SECRET)


def _clean(text: str) -> bool:
    return not any(s in text for s in SECRETS)


def _error_text(exc: BaseException) -> str:
    """Everything an exception shows: message, repr, args, the whole chain's traceback."""
    parts = [str(exc), repr(exc), repr(exc.args)]
    parts += traceback.format_exception(type(exc), exc, exc.__traceback__)
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        parts += [str(cause), repr(cause), repr(cause.args)]
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts)


@pytest.fixture(params=["good", "wrong_mutual_chap", "auth_none_only"])
def target(request: pytest.FixtureRequest) -> Iterator[HostileTarget]:
    """A CHAP target (with a target account), well-behaved or refusing in some way."""
    with HostileTarget(
        request.param,
        chap_user="alice",
        chap_password=SECRET,
        target_user="vtl",
        target_password=TARGET_SECRET,
    ) as t:
        yield t


def _url(t: HostileTarget, password: str = SECRET) -> str:
    url = t.url(0, target_user="vtl", target_password=TARGET_SECRET)
    return url.replace("iscsi://", f"iscsi://alice%{password}@")


class TestRepr:
    """The values that hold secrets print without them."""

    def test_secret_and_credentials(self) -> None:
        """Secret and Credentials show neither secret."""
        creds = Credentials(
            user="alice", password=SECRET, target_user="vtl", target_password=TARGET_SECRET
        )
        assert _clean(repr(Secret(SECRET)))
        assert _clean(str(Secret(SECRET)))
        assert _clean(repr(creds))
        assert _clean(str(creds))

    def test_parsed_url(self) -> None:
        """A parsed URL's repr and public form drop both passwords."""
        u = parse_iscsi_url(
            f"iscsi://alice%{SECRET}@127.0.0.1:3260/iqn.2026-11.x:y/1"
            f"?target_user=vtl&target_password={TARGET_SECRET}"
        )
        assert _clean(repr(u))
        assert _clean(u.public())
        assert u.credentials is not None  # the secrets are there, just not shown

    def test_hostile_target(self) -> None:
        """The test target itself keeps its accounts out of its repr."""
        with HostileTarget("good", chap_user="alice", chap_password=SECRET) as t:
            assert _clean(repr(t))
            assert _clean(repr(vars(t)))


class TestLogsAndErrors:
    """Logins that succeed or fail log and raise without the secrets."""

    def test_transport(self, target: HostileTarget) -> None:
        """Login, a command and close (or the refusal) leave no secret anywhere."""
        with capture_logs() as logs:
            if target.scenario == "good":
                t = IscsiTransport(_url(target))
                assert _clean(repr(t))
                assert _clean(repr(t.options))
                assert t.execute(bytes(6), timeout=3).ok
                t.close()
            else:
                with pytest.raises(TapepathError) as err:
                    IscsiTransport(_url(target))
                assert _clean(_error_text(err.value))
        if target.scenario == "good":
            assert logs, "nothing was logged: the check would prove nothing"
        assert _clean(repr(logs))

    def test_wrong_password(self) -> None:
        """A refused password is not echoed by the error or the logs."""
        with HostileTarget("good", chap_user="alice", chap_password=SECRET) as t:
            wrong = "Xy7-wrong-password"
            with capture_logs() as logs, pytest.raises(TapepathError) as err:
                IscsiTransport(t.url(0).replace("iscsi://", f"iscsi://alice%{wrong}@"))
        text = _error_text(err.value) + repr(logs)
        assert wrong not in text
        assert _clean(text)

    def test_multipath_device(self) -> None:
        """A multipath device's paths, logs and repr carry the public URL only."""
        with (
            HostileTarget(
                "good",
                chap_user="alice",
                chap_password=SECRET,
                target_user="vtl",
                target_password=TARGET_SECRET,
            ) as t,
            capture_logs() as logs,
        ):
            dev = MultipathDevice([_url(t)], monitor=False)
            try:
                assert dev.execute(bytes(6), timeout=3).ok
                shown = repr(dev) + repr([p.url for p in dev.paths]) + str(dev.name)
            finally:
                dev.close()
        assert logs
        assert _clean(shown)
        assert _clean(repr(logs))


class TestCli:
    """The CLI's --json output and its errors carry no secret."""

    @pytest.fixture(autouse=True)
    def _restore_structlog(self) -> Iterator[None]:
        yield
        structlog.reset_defaults()

    def test_status_json(self) -> None:
        """``tapepath --json -d URL status`` shows the device without the passwords."""
        from tapepath.cli import cli  # noqa: PLC0415

        with HostileTarget(
            "good",
            chap_user="alice",
            chap_password=SECRET,
            target_user="vtl",
            target_password=TARGET_SECRET,
        ) as t:
            r = CliRunner().invoke(
                cli, ["--json", "-v", "-d", _url(t), "status"], catch_exceptions=False
            )
        assert r.exit_code == 0, r.output
        assert "127.0.0.1" in r.stdout
        assert _clean(r.stdout)
        assert _clean(r.stderr)

    def test_refused_login_json(self) -> None:
        """A refused login's path (JSON) and its warnings (stderr) show no secret."""
        from tapepath.cli import cli  # noqa: PLC0415

        with HostileTarget(
            "wrong_mutual_chap",
            chap_user="alice",
            chap_password=SECRET,
            target_user="vtl",
            target_password=TARGET_SECRET,
        ) as t:
            r = CliRunner().invoke(
                cli, ["--json", "-vv", "-d", _url(t), "status"], catch_exceptions=False
            )
        assert '"state": "failed"' in r.stdout  # status reports the refused path
        assert _clean(r.stdout)
        assert _clean(r.stderr)
