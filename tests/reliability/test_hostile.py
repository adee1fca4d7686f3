"""The initiator against a hostile target: typed errors, bounded time and memory, failover."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator

import pytest

from tapepath.errors import AuthenticationError, TransportError
from tapepath.multipath import MultipathDevice, PathState
from tapepath.testing.hostile import SCENARIOS, HostileTarget
from tapepath.transport.base import Outcome
from tapepath.transport.iscsi import IscsiTransport

TUR = bytes(6)
INQUIRY = bytes([0x12, 0, 0, 0, 36, 0])

# scenario -> (the command that meets it, extra URL arguments, words the failure names)
DROPPING = {
    "oversized_length": (INQUIRY, {}, "DataSegmentLength"),
    "huge_sense_length": (TUR, {}, "SenseLength"),
    "bad_header_digest": (TUR, {"header_digest": "crc32c"}, "header digest"),
    "bad_data_digest": (INQUIRY, {"data_digest": "crc32c"}, "data digest"),
    "statsn_outside_window": (TUR, {}, "StatSN"),
    "unsolicited_data_in": (TUR, {}, "Data-In"),
    "unknown_itt": (TUR, {}, "ITT"),
    "truncated_pdu": (TUR, {}, "connection"),
    "truncated_data": (INQUIRY, {}, "Data-In"),
}

BOUND = 3.0
"""Seconds a command may take against the hostile target (its timeout)."""

SECRET = "s3cret-initiator-pw"
TARGET_SECRET = "s3cret-target-pw"


def _wait_for(cond: object, seconds: float = 3.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if callable(cond) and cond():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def chap_target(request: pytest.FixtureRequest) -> Iterator[HostileTarget]:
    """A hostile target requiring CHAP, with a target account for mutual CHAP."""
    with HostileTarget(
        request.param,
        chap_user="alice",
        chap_password=SECRET,
        target_user="vtl",
        target_password=TARGET_SECRET,
    ) as t:
        yield t


def _chap_url(t: HostileTarget, password: str = SECRET, *, mutual: bool = True) -> str:
    args = {"target_user": "vtl", "target_password": TARGET_SECRET} if mutual else {}
    return t.url(0, **args).replace("iscsi://", f"iscsi://alice%{password}@")


class TestScenarios:
    """The scenario table is complete and the good target is usable."""

    def test_every_scenario_is_tested(self) -> None:
        """Each scenario of the hostile target has a test in this file."""
        tested = {
            *DROPPING,
            "good",
            "cmdsn_window_outside",
            "endless_login",
            "stalled_login",
            "auth_none_only",
            "wrong_mutual_chap",
        }
        assert tested == set(SCENARIOS)

    def test_good_target_answers(self) -> None:
        """The well-behaved scenario completes INQUIRY with the target's identity."""
        with HostileTarget("good") as target, IscsiTransport(target.url()) as t:
            r = t.execute(INQUIRY, data_in_len=36, timeout=BOUND)
            assert r.ok
            assert r.data[8:16] == b"TAPEPATH"
            assert target.commands == 1

    def test_unknown_scenario(self) -> None:
        """A misspelt scenario is refused when the target is made."""
        with pytest.raises(ValueError, match="unknown scenario"):
            HostileTarget("polite")


class TestDropsTheConnection:
    """Every violation ends the command as a typed path failure and drops the connection."""

    @pytest.mark.parametrize("scenario", sorted(DROPPING))
    def test_drop(self, scenario: str) -> None:
        """The command fails as a path failure naming the violation, within its timeout."""
        cdb, args, words = DROPPING[scenario]
        with HostileTarget(scenario, junk_limit=4 << 20) as target:
            t = IscsiTransport(target.url(0, **args))
            try:
                start = time.monotonic()
                r = t.execute(cdb, data_in_len=36 if cdb is INQUIRY else 0, timeout=BOUND)
                took = time.monotonic() - start
            finally:
                t.close()
            assert not r.ok
            assert r.path_failed
            assert r.outcome in (Outcome.LINK_LOST, Outcome.NO_CONNECT)
            assert r.detail is not None
            assert words in r.detail.message
            assert took < BOUND
            assert _wait_for(lambda: target.dropped >= 1), "the initiator kept the connection"

    def test_window_outside_is_ignored(self) -> None:
        """MaxCmdSN < ExpCmdSN - 1 is ignored (RFC 7143 4.2.2.2); later commands still go."""
        with HostileTarget("cmdsn_window_outside") as target, IscsiTransport(target.url()) as t:
            for _ in range(3):
                start = time.monotonic()
                r = t.execute(TUR, timeout=BOUND)
                assert r.ok
                assert time.monotonic() - start < BOUND
            assert target.commands == 3


class TestLogin:
    """A login that never ends, or never starts, gives up at the connect timeout."""

    @pytest.mark.parametrize("scenario", ["endless_login", "stalled_login"])
    def test_login_gives_up(self, scenario: str) -> None:
        """The transport raises a typed error after about connect_timeout seconds."""
        with HostileTarget(scenario) as target:
            start = time.monotonic()
            with pytest.raises(TransportError, match="timed out"):
                IscsiTransport(target.url(0, connect_timeout="1"))
            took = time.monotonic() - start
        assert 0.5 < took < 3.0


class TestMemory:
    """A length claim far beyond the negotiated limit allocates nothing for it."""

    def test_huge_claim_stays_small(self) -> None:
        """tracemalloc's peak stays under 2 MiB while the target claims 16 MiB at 4 GiB."""
        with HostileTarget("oversized_length", junk_limit=32 << 20) as target:
            t = IscsiTransport(target.url())
            try:
                tracemalloc.start()
                try:
                    r = t.execute(INQUIRY, data_in_len=36, timeout=BOUND)
                    _, peak = tracemalloc.get_traced_memory()
                finally:
                    tracemalloc.stop()
            finally:
                t.close()
        assert not r.ok
        assert peak < 2 << 20


class TestFailover:
    """A multipath device with one hostile path and one good path keeps working."""

    @pytest.mark.parametrize("scenario", ["unknown_itt", "bad_header_digest", "truncated_pdu"])
    def test_fails_over_to_the_good_path(self, scenario: str) -> None:
        """Commands complete on the good path; the hostile path is marked failed."""
        args = {"header_digest": "crc32c"} if "digest" in scenario else {}
        with HostileTarget(scenario) as bad, HostileTarget("good") as good:
            dev = MultipathDevice([bad.url(0, **args), good.url()], monitor=False)
            try:
                for _ in range(3):
                    start = time.monotonic()
                    r = dev.execute(INQUIRY, data_in_len=36, timeout=BOUND)
                    assert r.ok, r.detail
                    assert time.monotonic() - start < 2 * BOUND
                states = {p.url: p.state for p in dev.paths}
            finally:
                dev.close()
            assert states[bad.url(0, **args)] is PathState.FAILED
            assert good.commands >= 3

    @pytest.mark.needs("tgtd", "tgtadm", "tgtimg")
    def test_hostile_and_tgtd(self) -> None:
        """A hostile path beside a real tgtd path: TEST UNIT READY completes through tgtd."""
        from tapepath.testing.tgtd import TgtdInstance  # noqa: PLC0415

        with TgtdInstance() as tgt, HostileTarget("statsn_outside_window") as bad:
            layout = tgt.configure_vtl(drives=1, slots=2, cartridge_mb=4)
            dev = MultipathDevice(
                [bad.url(layout.changer_lun), tgt.url(layout.changer_lun)], monitor=False
            )
            try:
                ok = 0
                for _ in range(4):
                    r = dev.execute(TUR, timeout=BOUND)
                    ok += r.ok or r.check_condition  # a unit attention is an answer too
                states = [p.state for p in dev.paths]
            finally:
                dev.close()
        assert ok == 4
        assert states[0] is PathState.FAILED


class TestChap:
    """CHAP logins: weaker methods refused, the target's mutual answer checked."""

    @pytest.mark.parametrize("chap_target", ["good"], indirect=True)
    def test_mutual_chap_accepted(self, chap_target: HostileTarget) -> None:
        """With the right secrets both ways the login succeeds (the control case)."""
        with IscsiTransport(_chap_url(chap_target)) as t:
            assert t.execute(TUR, timeout=BOUND).ok

    @pytest.mark.parametrize("chap_target", ["auth_none_only"], indirect=True)
    def test_none_only_refused(self, chap_target: HostileTarget) -> None:
        """A target offering only AuthMethod=None is refused when CHAP is configured."""
        with pytest.raises(AuthenticationError, match="AuthMethod=None"):
            IscsiTransport(_chap_url(chap_target, mutual=False))

    @pytest.mark.parametrize("chap_target", ["wrong_mutual_chap"], indirect=True)
    def test_wrong_mutual_answer_refused(self, chap_target: HostileTarget) -> None:
        """A target answering the mutual challenge wrongly is refused."""
        with pytest.raises(AuthenticationError, match="mutual"):
            IscsiTransport(_chap_url(chap_target))

    @pytest.mark.parametrize("chap_target", ["good"], indirect=True)
    def test_wrong_password_refused(self, chap_target: HostileTarget) -> None:
        """The target rejects a wrong CHAP_R (status 0201h): an AuthenticationError."""
        with pytest.raises(AuthenticationError):
            IscsiTransport(_chap_url(chap_target, "not-the-password"))

    @pytest.mark.needs("tgtd", "tgtadm", "tgtimg")
    def test_tgtd_without_account_refused(self) -> None:
        """tgtd with no CHAP account answers AuthMethod=None: a CHAP login refuses it."""
        from tapepath.testing.tgtd import TgtdInstance  # noqa: PLC0415

        with TgtdInstance() as tgt:
            layout = tgt.configure_vtl(drives=1, slots=2, cartridge_mb=4)
            url = tgt.url(layout.changer_lun).replace("iscsi://", f"iscsi://alice%{SECRET}@")
            with pytest.raises((AuthenticationError, TransportError)) as err:
                IscsiTransport(url)
        assert "AuthMethod=None" in str(err.value) or isinstance(err.value, AuthenticationError)
        assert SECRET not in str(err.value)
