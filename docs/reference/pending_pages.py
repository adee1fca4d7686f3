"""MkDocs hook: leave out of the nav the listed pages that are not written yet.

Some pages are promised by other parts of the project and may land after the nav was
last edited. They are listed in mkdocs.yml's nav already; this hook drops such an
entry while its file does not exist, so the strict build stays green before and after
the page arrives. Only the pages named in :data:`PENDING` are treated this way: any
other nav entry without a file is still an error of the strict build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PENDING = frozenset({"cli.md", "mtx.md", "failover.md", "reliability.md"})
"""Pages the nav lists before they exist (docs/ relative paths)."""


def prune(nav: Any, exists: Any) -> Any:
    """``nav`` without the entries of :data:`PENDING` pages for which ``exists`` is False.

    Args:
        nav: a mkdocs nav: a list of page paths, ``{title: path}`` items and
            ``{title: [...]}`` sections.
        exists: a function telling whether a docs/ relative page path exists.

    Returns:
        The nav with those entries, and any section they leave empty, removed.
    """
    if isinstance(nav, str):
        return None if nav in PENDING and not exists(nav) else nav
    if isinstance(nav, list):
        kept = [prune(item, exists) for item in nav]
        return [item for item in kept if item is not None]
    if isinstance(nav, dict):
        out = {}
        for title, value in nav.items():
            new = prune(value, exists)
            if new is None or new == []:
                continue
            out[title] = new
        return out or None
    return nav


def on_config(config: Any) -> Any:
    """MkDocs event: prune the nav before it is built."""
    docs = Path(config["docs_dir"])
    if config.get("nav"):
        config["nav"] = prune(config["nav"], lambda page: (docs / page).is_file())
    return config
