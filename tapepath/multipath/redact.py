"""Secrets out of URLs before they reach a log, a repr or an error message.

Path URLs may carry credentials (``iscsi://user%secret@host/...``,
``?target_password=...``). Transports report their ``url`` with secrets removed; the
multipath layer also handles URLs it has not opened yet (deferred paths, discovery
sources), and passes every such URL through :func:`redact_url` before showing it.
"""

from __future__ import annotations

import re

__all__ = ["redact_url"]

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^@/?#%\s]*)%[^@/?#]*@")
_SECRET_ARG = re.compile(r"(?i)([?&][^=&#]*(?:password|secret)[^=&#]*=)[^&#]*")


def redact_url(url: str) -> str:
    """``url`` (or a message containing URLs) with any password in a user part and any
    ``*password*``/``*secret*`` query value replaced by ``***``."""
    out = _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}%***@", url)
    return _SECRET_ARG.sub(lambda m: f"{m.group(1)}***", out)
