"""MkDocs hook: turn the Sphinx roles of tapepath's docstrings into links.

The docstrings are Google style but name other objects the Sphinx way
(``:class:`~tapepath.library.Library```, ``:meth:`reserve```). Rendered as Markdown
that leaves ``:class:`` in front of an inline code span. This hook, run on the whole
site before mkdocs-autorefs resolves cross-references, drops the role and links the
name to the object's entry in the API reference when exactly one entry matches:

- a full name (``tapepath.library.Library``) matches that entry;
- a short name is looked up as Sphinx does, from the object whose docstring holds it
  outwards (``:meth:`load``` in ``Library``'s docstring is ``Library.load``, then a
  ``load`` of the module, ...);
- failing that, the entries whose full name ends with it: the one on the same page,
  else the one on the whole site.

``~`` shows only the last component, as in Sphinx. A name without a match stays plain
code. Nothing is fetched; the hook only rewrites HTML already built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

ROLE_RE = re.compile(
    r":(?:class|func|meth|mod|data|attr|exc|obj|const):<code>(?P<tilde>~?)"
    r"(?P<name>[A-Za-z_][\w.]*)(?P<call>\(\))?</code>"
)
"""A Sphinx role as Markdown renders it: the role text, then a code span."""

ANCHOR_RE = re.compile(r'\bid="(?P<id>tapepath(?:\.\w+)*)"')
"""The anchors mkdocstrings gives the objects it renders."""


def anchors(html: str) -> set[str]:
    """The full names of the objects rendered in a page."""
    return {m["id"] for m in ANCHOR_RE.finditer(html)}


TOKEN_RE = re.compile(f"{ANCHOR_RE.pattern}|{ROLE_RE.pattern}")
"""Anchors and roles in document order: a role belongs to the last object anchored."""


def resolve(
    name: str, local: set[str], everywhere: set[str], context: str | None = None
) -> str | None:
    """The one full name ``name`` refers to, or None when none or several match.

    Args:
        name: the name as written in the docstring (without ``~``).
        local: the objects rendered on the same page.
        everywhere: the objects rendered anywhere on the site.
        context: the full name of the object whose docstring holds the role, if known.
    """
    if name in everywhere:
        return name
    if context:
        parts = context.split(".")
        for i in range(len(parts), 0, -1):
            candidate = ".".join([*parts[:i], name])
            if candidate in everywhere:
                return candidate
    suffix = "." + name
    for pool in (local, everywhere):
        found = [full for full in pool if full.endswith(suffix)]
        if len(found) == 1:
            return found[0]
        if found:
            return None
    return None


def rewrite(html: str, local: set[str], everywhere: set[str]) -> str:
    """Replace every Sphinx role in ``html`` by a code span, linked when it resolves."""
    context: str | None = None

    def one(m: re.Match[str]) -> str:
        nonlocal context
        if m["id"] is not None:
            context = m["id"]
            return m.group(0)
        name = m["name"]
        shown = name.rsplit(".", 1)[-1] if m["tilde"] else name
        code = f"<code>{shown}{m['call'] or ''}</code>"
        target = resolve(name, local, everywhere, context)
        if target is None:
            return code
        return f'<autoref identifier="{target}" optional>{code}</autoref>'

    return TOKEN_RE.sub(one, html)


def rewrite_pages(contents: dict[str, str]) -> dict[str, str]:
    """Rewrite the roles of several pages (path -> HTML) against all their anchors."""
    per_page = {path: anchors(html) for path, html in contents.items()}
    everywhere: set[str] = set().union(*per_page.values()) if per_page else set()
    return {
        path: rewrite(html, per_page[path], everywhere) if ":" in html else html
        for path, html in contents.items()
    }


def _pages(files: Iterable[Any]) -> list[Any]:
    return [f.page for f in files if getattr(f, "page", None) is not None and f.page.content]


def on_env(env: Any, /, *, config: Any, files: Any) -> Any:
    """MkDocs event: every page is rendered; autorefs has not run yet (it runs late)."""
    pages = _pages(files)
    new = rewrite_pages({p.file.src_uri: p.content for p in pages})
    for p in pages:
        p.content = new[p.file.src_uri]
    return env
