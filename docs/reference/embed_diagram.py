"""MkDocs hook: show the generated recovery diagram on other pages too.

``scripts/draw_recovery_diagram.py`` writes the Mermaid diagram of the recovery state
machine into docs/recovery.md, between its ``recovery-diagram:begin`` and
``recovery-diagram:end`` markers. A page that contains :data:`PLACEHOLDER` gets that
same block in its place when the site is built, so there is one generated copy and
no second one to drift. A placeholder with no diagram to take fails the build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

PLACEHOLDER = "<!-- embed: recovery-diagram -->"
"""What a page writes where the diagram goes."""

SOURCE = "recovery.md"
"""The page (docs/ relative) that holds the generated diagram."""

BLOCK_RE = re.compile(
    r"<!-- recovery-diagram:begin[^>]*-->\n(?P<body>.*?)\n?<!-- recovery-diagram:end -->",
    re.DOTALL,
)


class DiagramMissingError(Exception):
    """The source page has no generated diagram between its markers."""


def embed(markdown: str, source: str) -> str:
    """``markdown`` with each placeholder replaced by the diagram block of ``source``.

    Raises:
        DiagramMissingError: a placeholder is there but ``source`` has no diagram.
    """
    if PLACEHOLDER not in markdown:
        return markdown
    m = BLOCK_RE.search(source)
    if m is None or not m["body"].strip():
        raise DiagramMissingError(f"docs/{SOURCE} has no generated recovery diagram")
    return markdown.replace(PLACEHOLDER, m["body"].strip())


def on_page_markdown(markdown: str, /, *, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: put the diagram in the pages that ask for it."""
    if PLACEHOLDER not in markdown:
        return markdown
    from mkdocs.exceptions import PluginError  # noqa: PLC0415  (only when building)

    path = Path(config["docs_dir"]) / SOURCE
    try:
        return embed(markdown, path.read_text(encoding="utf-8"))
    except (OSError, DiagramMissingError) as exc:
        raise PluginError(f"{page.file.src_uri}: cannot embed the recovery diagram: {exc}") from exc
