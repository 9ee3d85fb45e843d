"""The built site: the API pages show links, not docstring markup or kierouter's private modules.

Builds the whole site (``mkdocs build --strict``, a few seconds) into a temporary folder once.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")

ROOT = Path(__file__).resolve().parents[1]
# a Sphinx role mkdocstrings does not understand, as it shows in HTML: :class:<code>...</code>
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|exc|data|const|mod|obj):(?:`|<code>)")
# kierouter._x, kierouter.sim._y: a private module (not kierouter.__version__)
_PRIVATE = re.compile(r"\bkierouter(?:\.\w+)*\._[a-z]\w*")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built with the project's mkdocs.yml."""
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stderr}"
    return out


def _api_pages(site: Path) -> list[Path]:
    pages = sorted((site / "api").rglob("index.html"))
    assert len(pages) >= 8, f"expected the overview and one page per area, got {pages}"
    return pages


def test_api_pages_show_no_docstring_roles(site: Path) -> None:
    """Every ``:class:`...``` of the docstrings became a link or code."""
    found = {
        str(page.relative_to(site)): sorted(set(_ROLE.findall(page.read_text("utf-8"))))
        for page in _api_pages(site)
    }
    assert not {k: v for k, v in found.items() if v}, found


def test_api_pages_name_no_private_module(site: Path) -> None:
    """Neither the text nor a tooltip or link of an API page names ``kierouter._something``."""
    found = {}
    for page in _api_pages(site):
        text = html.unescape(page.read_text("utf-8"))
        names = sorted(set(_PRIVATE.findall(text)))
        if names:
            found[str(page.relative_to(site))] = names
    assert not found, f"private names on the API pages: {found}"


def test_api_pages_link_public_names(site: Path) -> None:
    """Docstrings' cross-references and signatures' types are links to the rendered names."""
    router = (site / "api" / "router" / "index.html").read_text("utf-8")
    # a role in Router's docstring (:class:`~kierouter.Registry`) and a type in its signature
    assert re.search(r'<a class="autorefs[^"]*" href="\.\./plugins/#kierouter\.Registry"', router)
    assert re.search(r'href="\.\./requests/#kierouter\.ImageRequest"', router)


def test_guides_links_to_the_old_single_page_resolve(site: Path) -> None:
    """A guide's ``api.md#kierouter.X`` link points at the page that renders X."""
    concepts = (site / "concepts" / "index.html").read_text("utf-8")
    assert 'href="../api/requests/#kierouter.ImageRequest"' in concepts
    assert "api.md#" not in concepts


def test_code_is_highlighted(site: Path) -> None:
    """Code blocks carry Pygments' token classes, which the theme colours."""
    index = (site / "index.html").read_text("utf-8")
    blocks = re.findall(r'<div class="highlight"><pre>.*?</pre></div>', index, re.S)
    python = [b for b in blocks if "asyncio" in b]
    assert python, "no Python block on the quickstart"
    assert '<span class="kn">import</span>' in python[0]
