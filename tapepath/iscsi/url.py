"""iSCSI URLs as libiscsi writes them.

``iscsi://[user[%password]@]host[:port]/target-iqn/lun[?key=value&...]``

The host may be an IPv6 address in brackets; the port defaults to 3260. Arguments
(libiscsi's names): ``target_user``, ``target_password`` (mutual CHAP),
``header_digest`` and ``data_digest`` (``none``, ``crc32c``, ``crc32c-none``,
``none-crc32c``). tapepath adds ``initiator_name``, ``nop_interval`` (seconds, 0 for
off), ``nop_misses``, ``connect_timeout`` and ``chap_algorithms`` (CHAP_A preference,
e.g. ``7,6,5``; default ``6,5``). Missing CHAP values come from the
environment variables ``LIBISCSI_CHAP_USERNAME``, ``LIBISCSI_CHAP_PASSWORD``,
``LIBISCSI_CHAP_TARGET_USERNAME`` and ``LIBISCSI_CHAP_TARGET_PASSWORD``.

Passwords are held as :class:`~tapepath.iscsi.chap.Secret`; :meth:`IscsiUrl.public`
is the URL with every secret removed, fit for logs and ``Transport.url``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

import attrs
from attrs import field, frozen

from tapepath.iscsi.chap import ChapAlgorithm, Credentials, Secret, parse_algorithms

__all__ = ["IscsiUrl", "parse_iscsi_url"]

_DIGESTS = {"none": (False, False), "crc32c": (True, True), "crc32c-none": (True, False)}
_DIGESTS["none-crc32c"] = (False, False)
_KNOWN_ARGS = frozenset(
    {
        "target_user",
        "target_password",
        "header_digest",
        "data_digest",
        "initiator_name",
        "nop_interval",
        "nop_misses",
        "connect_timeout",
        "chap_algorithms",
    }
)


@frozen
class IscsiUrl:
    """A parsed ``iscsi://`` URL.

    Attributes:
        host: portal address (IPv6 without brackets).
        port: portal TCP port.
        target: target IQN (None for a portal-only URL, as used for discovery).
        lun: LUN number (None when absent).
        user: initiator CHAP name.
        password: initiator CHAP secret.
        target_user: the target's CHAP name (mutual CHAP).
        target_password: the target's CHAP secret (mutual CHAP).
        header_digest: offer CRC32C header digests.
        data_digest: offer CRC32C data digests.
        require_header_digest: only CRC32C is acceptable (``crc32c``).
        require_data_digest: only CRC32C is acceptable (``crc32c``).
        initiator_name: our IQN, or None for the default.
        nop_interval: seconds between pings (0: no pings), or None for the default.
        nop_misses: unanswered pings before the path is declared dead, or None.
        connect_timeout: seconds for connect and login, or None for the default.
    """

    host: str
    port: int = 3260
    target: str | None = None
    lun: int | None = None
    user: str | None = None
    password: Secret | None = field(default=None, repr=False)
    target_user: str | None = None
    target_password: Secret | None = field(default=None, repr=False)
    header_digest: bool = False
    data_digest: bool = False
    require_header_digest: bool = False
    require_data_digest: bool = False
    initiator_name: str | None = None
    nop_interval: float | None = None
    nop_misses: int | None = None
    connect_timeout: float | None = None
    chap_algorithms: tuple[ChapAlgorithm, ...] | None = None

    @property
    def credentials(self) -> Credentials | None:
        """CHAP credentials, or None when no user and password are set."""
        if self.user is None or self.password is None:
            return None
        creds = Credentials(
            user=self.user,
            password=self.password,
            target_user=self.target_user,
            target_password=self.target_password,
        )
        if self.chap_algorithms is not None:
            creds = attrs.evolve(creds, algorithms=self.chap_algorithms)
        return creds

    def public(self) -> str:
        """The URL without any secret (user names stay)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        who = f"{quote(self.user, safe='')}@" if self.user else ""
        path = ""
        if self.target is not None:
            path = f"/{self.target}"
            if self.lun is not None:
                path += f"/{self.lun}"
        args = []
        if self.target_user:
            args.append(f"target_user={quote(self.target_user, safe='')}")
        if self.header_digest or self.require_header_digest:
            args.append(
                f"header_digest={_digest_name(self.header_digest, self.require_header_digest)}"
            )
        if self.data_digest or self.require_data_digest:
            args.append(f"data_digest={_digest_name(self.data_digest, self.require_data_digest)}")
        query = ("?" + "&".join(args)) if args else ""
        return f"iscsi://{who}{host}:{self.port}{path}{query}"

    def __str__(self) -> str:
        return self.public()


def _digest_name(want: bool, require: bool) -> str:
    if require:
        return "crc32c"
    return "crc32c-none" if want else "none"


def _float(name: str, value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        raise ValueError(f"iSCSI URL argument {name}={value!r} is not a number") from None
    if n < 0:
        raise ValueError(f"iSCSI URL argument {name} must be >= 0")
    return n


def _opt_float(args: Mapping[str, str], name: str) -> float | None:
    return _float(name, args[name]) if name in args else None


def parse_iscsi_url(url: str, *, environ: Mapping[str, str] | None = None) -> IscsiUrl:
    """Parse an ``iscsi://`` URL (see the module docstring).

    Args:
        url: the URL.
        environ: where LIBISCSI_CHAP_* come from (``os.environ`` by default).

    Raises:
        ValueError: the URL is malformed; the message never contains a password.
    """
    env = os.environ if environ is None else environ
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "iscsi" or not sep:
        raise ValueError("not an iscsi:// URL")
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    user: str | None = None
    password: str | None = None
    if "@" in authority:
        cred, _, authority = authority.rpartition("@")
        user, has_pw, pw = cred.partition("%")
        password = pw if has_pw else None
        if not user:
            raise ValueError("iSCSI URL has an empty user name")
    if authority.startswith("["):
        host, close, tail = authority[1:].partition("]")
        if not close:
            raise ValueError("iSCSI URL has an unclosed IPv6 bracket")
        port_text = tail[1:] if tail.startswith(":") else ""
        if tail and not tail.startswith(":"):
            raise ValueError("iSCSI URL has junk after the IPv6 address")
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise ValueError("iSCSI URL has no host")
    port = 3260
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise ValueError(f"iSCSI URL has an invalid port {port_text!r}")
        port = int(port_text)
    target: str | None = None
    lun: int | None = None
    if path:
        parts = path.split("/")
        if len(parts) > 2 or not parts[0]:
            raise ValueError("iSCSI URL path must be /target-iqn/lun")
        target = parts[0]
        if len(parts) == 2 and parts[1]:
            if not (parts[1].isascii() and parts[1].isdigit()) or int(parts[1]) > 16383:
                raise ValueError(f"iSCSI URL has an invalid LUN {parts[1]!r}")
            lun = int(parts[1])
    args: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in _KNOWN_ARGS:
            raise ValueError(f"unknown iSCSI URL argument {key!r}")
        args[key] = value
    if user is None and env.get("LIBISCSI_CHAP_USERNAME"):
        user = env["LIBISCSI_CHAP_USERNAME"]
    if password is None and env.get("LIBISCSI_CHAP_PASSWORD"):
        password = env["LIBISCSI_CHAP_PASSWORD"]
    target_user = args.get("target_user") or env.get("LIBISCSI_CHAP_TARGET_USERNAME") or None
    target_password = (
        args.get("target_password") or env.get("LIBISCSI_CHAP_TARGET_PASSWORD") or None
    )
    if user is not None and password is None:
        raise ValueError("iSCSI URL names a CHAP user but no password")
    if target_password is not None and user is None:
        raise ValueError("mutual CHAP (target_password) needs the initiator's CHAP account too")
    digests: list[tuple[bool, bool]] = []
    for name in ("header_digest", "data_digest"):
        value = args.get(name, "none").lower()
        if value not in _DIGESTS:
            raise ValueError(f"iSCSI URL argument {name}={value!r} is not a digest choice")
        digests.append(_DIGESTS[value])
    misses = args.get("nop_misses")
    if misses is not None and (not (misses.isascii() and misses.isdigit()) or int(misses) < 1):
        raise ValueError("iSCSI URL argument nop_misses must be a positive integer")
    return IscsiUrl(
        host=host,
        port=port,
        target=target,
        lun=lun,
        user=user,
        password=Secret(password) if password is not None else None,
        target_user=target_user,
        target_password=Secret(target_password) if target_password is not None else None,
        header_digest=digests[0][0],
        data_digest=digests[1][0],
        require_header_digest=digests[0][1],
        require_data_digest=digests[1][1],
        initiator_name=args.get("initiator_name") or None,
        nop_interval=_opt_float(args, "nop_interval"),
        nop_misses=int(misses) if misses is not None else None,
        connect_timeout=_opt_float(args, "connect_timeout"),
        chap_algorithms=(
            parse_algorithms(args["chap_algorithms"]) if "chap_algorithms" in args else None
        ),
    )
