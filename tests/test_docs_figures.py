"""The committed figures (docs/assets/figures/) and performance.md's summary match their data.

The figures are drawn from the model cards, the policy engine and bench/results/*.json by
``uv run python docs/figures.py``; drawing them again must reproduce the committed files byte for
byte (the output is deterministic), so a figure cannot drift from what it shows.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FIGURES = DOCS / "assets" / "figures"
COMMAND = "run `uv run python docs/figures.py` to update"


@pytest.fixture(scope="module")
def figures() -> ModuleType:
    """docs/figures.py, imported the way the script runs (its folder on sys.path)."""
    sys.path.insert(0, str(DOCS))
    try:
        import figures as module
    finally:
        sys.path.remove(str(DOCS))
    return module


def test_committed_figures_are_current(figures: ModuleType, tmp_path: Path) -> None:
    """Drawing every figure again changes no committed file and adds none."""
    drawn: dict[str, bytes] = figures.render(tmp_path)
    committed = {p.name: p.read_bytes() for p in FIGURES.glob("*.svg")}
    stale = sorted(name for name, svg in drawn.items() if committed.get(name) != svg)
    extra = sorted(set(committed) - set(drawn))
    assert len(drawn) >= 20
    assert not stale and not extra, (
        f"stale figures: {stale}, not drawn any more: {extra}; {COMMAND}"
    )


def test_performance_summary_is_current(figures: ModuleType) -> None:
    """The summary table of performance.md is the one the benchmark results give."""
    page = (DOCS / "performance.md").read_text("utf-8")
    assert figures.summary_block() in page, f"docs/performance.md's summary is stale; {COMMAND}"


def test_every_figure_is_shown_in_both_schemes(figures: ModuleType) -> None:
    """Each figure is on a page, its light file for the light scheme and its dark one for dark."""
    pages = "\n".join(p.read_text("utf-8") for p in DOCS.rglob("*.md"))
    missing = []
    for figure in figures.FIGURES:
        for name, scheme in ((figure.name, "light"), (f"{figure.name}-dark", "dark")):
            if not re.search(rf"assets/figures/{re.escape(name)}\.svg#only-{scheme}\)", pages):
                missing.append(f"{name}.svg#only-{scheme}")
    assert not missing, f"figures no page shows: {missing}"
