"""The API reference (docs/api/) covers every public name, and every public name has a docstring.

mkdocstrings renders what griffe reads from the source, so the docstrings are checked the same
way: a module-level constant or type alias needs a string literal right after its assignment (a
``#:`` comment is not shown).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

griffe = pytest.importorskip("griffe")

ROOT = Path(__file__).resolve().parents[1]
API_PAGES = sorted((ROOT / "docs" / "api").glob("*.md"))


def _docs_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the list the docs build links names by (docs/griffe_public.py), so the two cannot disagree
PUBLIC_MODULES: tuple[str, ...] = _docs_module("griffe_public").PUBLIC_MODULES
PUBLIC_NAMES = [
    (module, name)
    for module in PUBLIC_MODULES
    for name in importlib.import_module(module).__all__
    if not name.startswith("__")
]
IDS = [f"{module}.{name}" for module, name in PUBLIC_NAMES]
_DIRECTIVE = re.compile(r"^::: (\S+)\n((?:    .*\n|\n)*)", re.M)
_MEMBER = re.compile(r"^ {8}- (\w+)$", re.M)


def documented_paths(text: str) -> set[str]:
    """Dotted paths rendered by the page: each `::: path`, plus its listed `members:`."""
    paths = set()
    for path, options in _DIRECTIVE.findall(text):
        paths.add(path)
        paths.update(f"{path}.{member}" for member in _MEMBER.findall(options))
    return paths


def rendered_paths() -> set[str]:
    """Dotted paths rendered by all the API pages."""
    return set().union(*(documented_paths(page.read_text("utf-8")) for page in API_PAGES))


@pytest.fixture(scope="module")
def package() -> Any:
    """The kierouter package as griffe (and so mkdocstrings) sees it."""
    return griffe.load("kierouter", search_paths=[str(ROOT)], resolve_aliases=True)


def test_the_page_parser_finds_directives() -> None:
    """The directive parser sees top-level names and module members (guards the regexes)."""
    paths = rendered_paths()
    assert "kierouter.Router" in paths
    assert "kierouter.hookspecs.kierouter_register_models" in paths
    assert len(paths) > 100


@pytest.mark.parametrize(("module", "name"), PUBLIC_NAMES, ids=IDS)
def test_public_name_has_a_docstring(package: Any, module: str, name: str) -> None:
    """The name's definition carries a docstring the API reference can show."""
    node = package if module == "kierouter" else package[module.removeprefix("kierouter.")]
    target = node[name]
    if target.is_alias:
        target = target.final_target
    assert target.docstring is not None, f"{module}.{name} ({target.path}) has no docstring"
    assert target.docstring.value.strip(), f"{module}.{name} has an empty docstring"


@pytest.mark.parametrize(("module", "name"), PUBLIC_NAMES, ids=IDS)
def test_public_name_is_on_the_api_page(module: str, name: str) -> None:
    """docs/api/ renders the name, under its module or as the same object from `kierouter`."""
    paths = rendered_paths()
    if f"{module}.{name}" in paths:
        return
    import kierouter

    value = getattr(importlib.import_module(module), name)
    same_on_top = name in kierouter.__all__ and getattr(kierouter, name) is value
    assert same_on_top and f"kierouter.{name}" in paths, f"{module}.{name} is not in docs/api/*.md"


def test_every_api_page_is_in_the_nav() -> None:
    """mkdocs.yml lists every page of the reference."""
    nav = (ROOT / "mkdocs.yml").read_text("utf-8")
    missing = [p.name for p in API_PAGES if f"api/{p.name}" not in nav]
    assert len(API_PAGES) >= 7
    assert not missing, f"pages of docs/api/ not in mkdocs.yml's nav: {missing}"


def test_each_name_is_rendered_once() -> None:
    """No name is rendered on two pages (its links would go to either)."""
    seen: dict[str, str] = {}
    twice = []
    for page in API_PAGES:
        for path in documented_paths(page.read_text("utf-8")):
            if path in seen:
                twice.append(f"{path} ({seen[path]}, {page.name})")
            seen[path] = page.name
    assert not twice, f"rendered twice: {twice}"
