"""The documentation site: it builds strictly and offline, and every page is reachable."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.support.tools import in_ci

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _require_mkdocs() -> None:
    """Skip without mkdocs (the ``docs`` extra); under CI its absence is a failure."""
    if (
        importlib.util.find_spec("mkdocs") is None
        or importlib.util.find_spec("mkdocstrings") is None
    ):
        if in_ci():
            pytest.fail("mkdocs and mkdocstrings are needed (pip install tapepath[docs])")
        pytest.skip("mkdocs is not installed (pip install tapepath[docs])")


class _Loader(yaml.SafeLoader):
    """mkdocs.yml's YAML, with its ``!!python/name:`` tags read as plain strings."""


_Loader.add_multi_constructor(
    "tag:yaml.org,2002:python/name:", lambda loader, suffix, node: f"python/name:{suffix}"
)


def _config() -> dict[str, Any]:
    with (ROOT / "mkdocs.yml").open(encoding="utf-8") as f:
        data = yaml.load(f, Loader=_Loader)  # a SafeLoader subclass
    assert isinstance(data, dict)
    return data


def _nav_pages(nav: Any) -> list[str]:
    """Every page path in a mkdocs nav, in order."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def _doc_pages() -> set[str]:
    return {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built with ``mkdocs build --strict`` into a temporary directory."""
    _require_mkdocs()
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ)
    # Anything that tried to fetch over HTTP(S) would fail (and fail the strict build).
    env.update(
        NO_MKDOCS_2_WARNING="1",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        NO_PROXY="",
        no_proxy="",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


class TestBuild:
    """The site builds with --strict, offline, with the API reference rendered."""

    def test_every_page_is_rendered(self, site: Path) -> None:
        """Each Markdown page of docs/ becomes an HTML page."""
        for page in _doc_pages():
            html = site / (page[: -len(".md")] + ".html")
            assert html.is_file(), f"{page} was not rendered"

    def test_api_reference_renders_docstrings(self, site: Path) -> None:
        """mkdocstrings renders the public names with their docstrings' sections."""
        html = (site / "reference" / "application.html").read_text(encoding="utf-8")
        for name in (
            "tapepath.api.open_library",
            "tapepath.library.Library",
            "tapepath.drive.TapeDrive",
        ):
            assert f'id="{name}"' in html, f"{name} is missing from the reference"
        # A Google-style "Args:" section became a parameter table, not literal text.
        assert "Args:" not in html
        assert "paths_or_alias" in html

    def test_sphinx_roles_become_links(self, site: Path) -> None:
        """No ':class:' text is left in the reference; roles that resolve are links."""
        for page in (site / "reference").glob("*.html"):
            html = page.read_text(encoding="utf-8")
            assert not re.search(r":(class|func|meth|mod|attr|data|exc):<code>", html), page.name
        html = (site / "reference" / "application.html").read_text(encoding="utf-8")
        assert re.search(r'<a class="autorefs[^"]*"[^>]*href="#tapepath\.library\.Library"', html)

    def test_concepts_shows_the_generated_recovery_diagram(self, site: Path) -> None:
        """The concepts page carries the same Mermaid diagram as the recovery page."""
        concepts = (site / "concepts.html").read_text(encoding="utf-8")
        recovery = (site / "recovery.html").read_text(encoding="utf-8")
        pattern = re.compile(r'<pre class="mermaid"><code>(.*?)</code></pre>', re.DOTALL)
        embedded, generated = pattern.findall(concepts), pattern.findall(recovery)
        assert embedded, "no diagram on the concepts page"
        assert "stateDiagram-v2" in embedded[0]
        assert embedded[0] == generated[0]

    def test_no_font_or_cdn_fetch_at_build(self, site: Path) -> None:
        """The theme is configured to load no Google Fonts."""
        for page in site.rglob("*.html"):
            assert "fonts.googleapis.com" not in page.read_text(encoding="utf-8"), page.name

    def test_hooks_are_not_published(self, site: Path) -> None:
        """The build's own Python hook does not end up in the site."""
        assert not list(site.rglob("*.py"))


class TestNav:
    """The navigation lists every page, and only pages that exist."""

    def test_every_page_is_in_the_nav(self) -> None:
        """Each docs/**/*.md file appears in mkdocs.yml's nav."""
        listed = set(_nav_pages(_config()["nav"]))
        missing = sorted(_doc_pages() - listed)
        assert not missing, f"pages missing from the nav in mkdocs.yml: {missing}"

    def test_nav_entries_exist(self) -> None:
        """Each nav entry names a page that exists (or one still pending), once."""
        pages = _nav_pages(_config()["nav"])
        assert len(pages) == len(set(pages)), "a page appears twice in the nav"
        pending = _load_hook("pending_pages").PENDING
        absent = [p for p in pages if not (DOCS / p).is_file() and p not in pending]
        assert not absent, f"nav entries without a page: {absent}"

    def test_offline_configuration(self) -> None:
        """Only plugins that fetch nothing: search and mkdocstrings, no inventories."""
        cfg = _config()
        names = [p if isinstance(p, str) else next(iter(p)) for p in cfg["plugins"]]
        assert set(names) <= {"search", "mkdocstrings"}, names
        assert cfg["theme"].get("font") is False
        handlers = cfg["plugins"][names.index("mkdocstrings")]["mkdocstrings"]["handlers"]
        assert "inventories" not in handlers["python"]
        assert handlers["python"]["paths"] == ["."]


class TestReadme:
    """The README's links lead to files of the repository."""

    def test_relative_links_exist(self) -> None:
        """Every relative link target of README.md exists."""
        text = (ROOT / "README.md").read_text(encoding="utf-8")
        targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
        local = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
        absent = [t for t in local if not (ROOT / t).exists()]
        assert not absent, f"README links to missing files: {absent}"

    def test_starts_with_the_two_commands(self) -> None:
        """`./run demo` and `./run test` come before anything else in the README."""
        lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:12]
        head = "\n".join(lines)
        assert "./run demo" in head
        assert "./run test" in head


def _load_hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / "reference" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestSphinxRolesHook:
    """The hook that turns docstrings' Sphinx roles into links."""

    hook = _load_hook("sphinx_roles")
    ids = {
        "tapepath.library.Library",
        "tapepath.drive.TapeDrive",
        "tapepath.drive.TapeDrive.reserve",
        "tapepath.testing.changer.ElementKind",
        "tapepath.inventory.ElementKind",
    }

    def test_full_name_links(self) -> None:
        """A full name links to its own entry and shows as written."""
        out = self.hook.rewrite(":class:<code>tapepath.library.Library</code>", set(), self.ids)
        assert out == (
            '<autoref identifier="tapepath.library.Library" optional>'
            "<code>tapepath.library.Library</code></autoref>"
        )

    def test_tilde_shows_the_last_part(self) -> None:
        """``~a.b.C`` is shown as ``C``."""
        out = self.hook.rewrite(
            ":meth:<code>~tapepath.drive.TapeDrive.reserve</code>", set(), self.ids
        )
        assert ">" + "<code>reserve</code>" in out
        assert 'identifier="tapepath.drive.TapeDrive.reserve"' in out

    def test_short_name_resolves_by_suffix(self) -> None:
        """A short name that ends exactly one full name links to it."""
        out = self.hook.rewrite(":meth:<code>TapeDrive.reserve()</code>", set(), self.ids)
        assert 'identifier="tapepath.drive.TapeDrive.reserve"' in out
        assert "<code>TapeDrive.reserve()</code>" in out

    def test_ambiguous_name_prefers_the_page(self) -> None:
        """Two matches: the one on the same page wins; with none there, plain code."""
        local = {"tapepath.inventory.ElementKind"}
        out = self.hook.rewrite(":class:<code>ElementKind</code>", local, self.ids)
        assert 'identifier="tapepath.inventory.ElementKind"' in out
        assert (
            self.hook.rewrite(":class:<code>ElementKind</code>", set(), self.ids)
            == "<code>ElementKind</code>"
        )

    def test_short_name_resolves_from_its_docstring_outwards(self) -> None:
        """``reserve`` in TapeDrive's docstring is TapeDrive.reserve, as in Sphinx."""
        ids = {*self.ids, "tapepath.library.Library.reserve"}
        html = '<h2 id="tapepath.drive.TapeDrive">TapeDrive</h2><p>:meth:<code>reserve</code></p>'
        out = self.hook.rewrite(html, set(), ids)
        assert 'identifier="tapepath.drive.TapeDrive.reserve"' in out
        # Without that context the two reserve methods are ambiguous.
        assert self.hook.rewrite(":meth:<code>reserve</code>", set(), ids) == "<code>reserve</code>"

    def test_unknown_name_is_plain_code(self) -> None:
        """A name that matches nothing loses the role and stays code."""
        assert (
            self.hook.rewrite(":func:<code>nowhere</code>", set(), self.ids)
            == "<code>nowhere</code>"
        )

    def test_partial_component_does_not_match(self) -> None:
        """``Drive`` does not match ``TapeDrive``: suffixes are whole components."""
        assert (
            self.hook.rewrite(":class:<code>Drive</code>", set(), self.ids) == "<code>Drive</code>"
        )

    @given(st.text(alphabet=st.sampled_from(list(":class:meth<code>/~.()a_Z ")), max_size=80))
    def test_no_role_survives_and_plain_text_is_untouched(self, text: str) -> None:
        """Any text: every code span is kept, each role loses its role text, and text
        without a role comes back as it was."""
        out = self.hook.rewrite(text, set(), self.ids)
        assert out.count("<code>") == text.count("<code>")
        roles = len(self.hook.ROLE_RE.findall(text))
        assert out.count(":") <= text.count(":") - roles
        if not roles:
            assert out == text

    def test_rewrite_pages_uses_every_page(self) -> None:
        """A short name on one page resolves to an object rendered on another."""
        pages = {
            "a.md": '<h2 id="tapepath.library.Library">Library</h2>',
            "b.md": "<p>see :class:<code>Library</code></p>",
        }
        out = self.hook.rewrite_pages(pages)
        assert 'identifier="tapepath.library.Library"' in out["b.md"]
        assert out["a.md"] == pages["a.md"]


class TestPendingPagesHook:
    """The hook that leaves pages not written yet out of the nav."""

    hook = _load_hook("pending_pages")

    def test_missing_pending_page_is_dropped(self) -> None:
        """A pending page without a file leaves the nav; its empty section goes too."""
        nav = [
            {"Home": "index.md"},
            {"Using": [{"CLI": "cli.md"}, {"API": "api.md"}]},
            {"Results": [{"Failover": "failover.md"}]},
        ]
        out = self.hook.prune(nav, lambda page: page in {"index.md", "api.md"})
        assert out == [{"Home": "index.md"}, {"Using": [{"API": "api.md"}]}]

    def test_present_pending_page_stays(self) -> None:
        """Once the page exists it stays where the nav puts it."""
        nav = [{"Using": [{"CLI": "cli.md"}]}, "mtx.md"]
        assert self.hook.prune(nav, lambda page: True) == nav

    def test_other_missing_pages_are_kept_for_the_build_to_report(self) -> None:
        """A page that is not pending is never hidden, even when it is missing."""
        nav = [{"Typo": "concepst.md"}]
        assert self.hook.prune(nav, lambda page: False) == nav

    def test_pending_pages_are_in_the_nav(self) -> None:
        """Every pending page has its place in the nav already."""
        listed = set(_nav_pages(_config()["nav"]))
        assert listed >= self.hook.PENDING


class TestEmbedDiagramHook:
    """The hook that shows the generated recovery diagram on the concepts page."""

    hook = _load_hook("embed_diagram")
    source = (
        "# Recovery\n<!-- recovery-diagram:begin (generated) -->\n"
        "```mermaid\nstateDiagram-v2\n    a --> b\n```\n<!-- recovery-diagram:end -->\nmore\n"
    )

    def test_placeholder_becomes_the_block(self) -> None:
        """The placeholder is replaced by exactly the block between the markers."""
        page = f"before\n\n{self.hook.PLACEHOLDER}\n\nafter\n"
        out = self.hook.embed(page, self.source)
        assert out == "before\n\n```mermaid\nstateDiagram-v2\n    a --> b\n```\n\nafter\n"

    def test_page_without_placeholder_is_unchanged(self) -> None:
        """Pages that do not ask for the diagram are left alone."""
        assert self.hook.embed("text", "") == "text"

    def test_missing_diagram_is_an_error(self) -> None:
        """A placeholder with no generated diagram to take fails loudly."""
        with pytest.raises(self.hook.DiagramMissingError):
            self.hook.embed(self.hook.PLACEHOLDER, "# Recovery without markers\n")
        empty = "<!-- recovery-diagram:begin -->\n<!-- recovery-diagram:end -->"
        with pytest.raises(self.hook.DiagramMissingError):
            self.hook.embed(self.hook.PLACEHOLDER, empty)
