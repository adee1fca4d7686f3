"""iscsi:// URL parsing, environment credentials and secret hygiene."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.iscsi.chap import ChapAlgorithm
from tapepath.iscsi.text import Params
from tapepath.iscsi.url import parse_iscsi_url
from tapepath.transport.iscsi import options_from_url

IQN = "iqn.2026-11.org.example:vtl"


class TestParse:
    """The libiscsi URL form."""

    def test_minimal(self) -> None:
        """Host, default port, target and LUN."""
        u = parse_iscsi_url(f"iscsi://10.0.0.5/{IQN}/3", environ={})
        assert (u.host, u.port, u.target, u.lun) == ("10.0.0.5", 3260, IQN, 3)
        assert u.credentials is None

    def test_full(self) -> None:
        """User, password, port, mutual CHAP and digests."""
        u = parse_iscsi_url(
            f"iscsi://bob%pa55word@host.example:3261/{IQN}/0"
            "?target_user=tgt&target_password=tpass&header_digest=crc32c&data_digest=crc32c-none",
            environ={},
        )
        assert (u.host, u.port, u.user, u.target_user) == ("host.example", 3261, "bob", "tgt")
        assert u.password is not None
        assert u.password.reveal() == b"pa55word"
        assert u.require_header_digest
        assert u.header_digest
        assert u.data_digest
        assert not u.require_data_digest
        creds = u.credentials
        assert creds is not None
        assert creds.mutual

    def test_ipv6(self) -> None:
        """A bracketed IPv6 host with a port."""
        u = parse_iscsi_url(f"iscsi://[fe80::1]:3262/{IQN}/1", environ={})
        assert (u.host, u.port) == ("fe80::1", 3262)
        assert u.public().startswith("iscsi://[fe80::1]:3262/")

    def test_portal_only(self) -> None:
        """A URL with no path names a portal (for discovery)."""
        u = parse_iscsi_url("iscsi://127.0.0.1:3260/", environ={})
        assert u.target is None
        assert u.lun is None

    def test_environment(self) -> None:
        """LIBISCSI_CHAP_* fill in what the URL does not say."""
        env = {
            "LIBISCSI_CHAP_USERNAME": "envuser",
            "LIBISCSI_CHAP_PASSWORD": "envpass",
            "LIBISCSI_CHAP_TARGET_USERNAME": "envtgt",
            "LIBISCSI_CHAP_TARGET_PASSWORD": "envtpass",
        }
        u = parse_iscsi_url(f"iscsi://h/{IQN}/0", environ=env)
        assert (u.user, u.target_user) == ("envuser", "envtgt")
        assert u.target_password is not None
        assert u.target_password.reveal() == b"envtpass"

    def test_url_wins_over_environment(self) -> None:
        """Credentials in the URL take precedence."""
        env = {"LIBISCSI_CHAP_USERNAME": "envuser", "LIBISCSI_CHAP_PASSWORD": "envpass"}
        u = parse_iscsi_url(f"iscsi://me%mine@h/{IQN}/0", environ=env)
        assert u.user == "me"

    def test_tapepath_options(self) -> None:
        """nop_interval, nop_misses, connect_timeout and chap_algorithms reach the options."""
        u = parse_iscsi_url(
            f"iscsi://u%p@h/{IQN}/0?nop_interval=0.5&nop_misses=3&connect_timeout=2"
            "&chap_algorithms=sha256,md5&initiator_name=iqn.2026-11.me:x",
            environ={},
        )
        opts = options_from_url(u)
        assert opts.nop_interval == 0.5
        assert opts.nop_misses == 3
        assert opts.connect_timeout == 2
        assert opts.initiator_name == "iqn.2026-11.me:x"
        assert opts.credentials is not None
        assert opts.credentials.algorithms == (ChapAlgorithm.SHA256, ChapAlgorithm.MD5)
        assert (
            options_from_url(parse_iscsi_url(f"iscsi://h/{IQN}/0?nop_interval=0")).nop_interval
            is None
        )

    def test_bigger_bursts_offered(self) -> None:
        """The transport offers bursts above the RFC defaults (the target lowers them)."""
        opts = options_from_url(parse_iscsi_url(f"iscsi://h/{IQN}/0", environ={}))
        assert opts.want.max_burst_length > Params().max_burst_length

    @pytest.mark.parametrize(
        "url",
        [
            "http://h/x/0",
            "iscsi://",
            f"iscsi://h:0/{IQN}/0",
            f"iscsi://h:99999/{IQN}/0",
            f"iscsi://h/{IQN}/lun",
            f"iscsi://h/{IQN}/0/extra",
            f"iscsi://h/{IQN}/0?bogus=1",
            f"iscsi://h/{IQN}/0?header_digest=md5",
            f"iscsi://h/{IQN}/0?nop_misses=0",
            f"iscsi://user@h/{IQN}/0",
            f"iscsi://[::1/{IQN}/0",
            f"iscsi://h/{IQN}/0?target_password=x",
        ],
    )
    def test_malformed(self, url: str) -> None:
        """Malformed URLs raise ValueError."""
        with pytest.raises(ValueError):  # noqa: PT011  (messages vary by case)
            parse_iscsi_url(url, environ={})


class TestSecrets:
    """Passwords never show."""

    def test_public_url_and_repr(self) -> None:
        """public(), str() and repr() drop both passwords."""
        u = parse_iscsi_url(
            f"iscsi://bob%Sekr1t-A@h/{IQN}/0?target_user=t&target_password=Sekr1t-B",
            environ={},
        )
        for text in (u.public(), str(u), repr(u), repr(u.credentials)):
            assert "Sekr1t" not in text
        assert u.public() == f"iscsi://bob@h:3260/{IQN}/0?target_user=t"

    def test_error_without_password(self) -> None:
        """A malformed URL's error message does not quote the password."""
        with pytest.raises(ValueError) as info:  # noqa: PT011
            parse_iscsi_url(f"iscsi://bob%Sekr1t-C@h:bad/{IQN}/0", environ={})
        assert "Sekr1t" not in str(info.value)

    @given(
        st.text(
            alphabet=st.characters(blacklist_characters="@/?%#[]", blacklist_categories=("Cs",)),
            min_size=1,
            max_size=20,
        )
    )
    def test_any_password_hidden(self, pw: str) -> None:
        """Whatever the password, the public URL does not contain it."""
        u = parse_iscsi_url(f"iscsi://bob%{pw}@h/{IQN}/0", environ={})
        assert u.password is not None
        assert u.password.reveal() == pw.encode()
        if pw not in f"iscsi://bob@h:3260/{IQN}/0":
            assert pw not in u.public()
