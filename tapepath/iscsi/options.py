"""Where and how to log in: :class:`ConnectOptions` for one iSCSI portal and target."""

from __future__ import annotations

from attrs import field, frozen

from tapepath.iscsi.chap import Credentials
from tapepath.iscsi.text import Params

__all__ = ["ConnectOptions"]


@frozen
class ConnectOptions:
    """How to reach and log in to one iSCSI target portal.

    Attributes:
        host: the portal's address.
        port: the portal's TCP port.
        target: the target IQN (None for a discovery session).
        initiator_name: our IQN.
        credentials: CHAP accounts (None: AuthMethod=None).
        want: operational parameters to offer.
        require_header_digest: fail the login unless HeaderDigest=CRC32C results.
        require_data_digest: fail the login unless DataDigest=CRC32C results.
        connect_timeout: seconds for TCP connect plus login.
        nop_interval: seconds between NOP-Out pings (None: no pings).
        nop_misses: unanswered pings in a row that declare the connection dead.
        max_redirects: login redirects followed before giving up.
    """

    host: str
    port: int = 3260
    target: str | None = None
    initiator_name: str = "iqn.2026-11.org.tapepath:initiator"
    credentials: Credentials | None = field(default=None, repr=False)
    want: Params = field(factory=Params)
    require_header_digest: bool = False
    require_data_digest: bool = False
    connect_timeout: float = 10.0
    nop_interval: float | None = 1.0
    nop_misses: int = 1
    max_redirects: int = 3
