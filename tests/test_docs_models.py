"""The model pages (docs/models/) are exactly what the plugins' model cards generate."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "docs" / "models"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_models", ROOT / "docs" / "gen_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_model_pages_are_current(tmp_path: Path) -> None:
    """Regenerating the pages changes nothing; else run `uv run python docs/gen_models.py`."""
    pages: dict[str, str] = _generator().generate(tmp_path)
    committed = {p.name: p.read_text("utf-8") for p in MODELS.glob("*.md")}
    stale = sorted(name for name, text in pages.items() if committed.get(name) != text)
    extra = sorted(set(committed) - set(pages))
    assert not stale and not extra, (
        f"docs/models is out of date (differs: {stale}, not generated: {extra}); "
        "run `uv run python docs/gen_models.py` to update"
    )


def test_every_shipped_card_has_its_section() -> None:
    """Each model the shipped plugins register has a section, with its price, on its page."""
    generator = _generator()
    registry = generator.shipped_registry()
    for card in registry.cards.values():
        page = (MODELS / f"{card.plugin}.md").read_text("utf-8")
        assert f"| model id | `{card.id}` |" in page
        assert f"| price | {card.pricing.credits:g} credit" in page


def test_every_family_page_is_in_the_nav() -> None:
    """mkdocs.yml lists the index and one page per shipped family."""
    nav = (ROOT / "mkdocs.yml").read_text("utf-8")
    for family in _generator().FAMILIES:
        assert f"models/{family}.md" in nav
