"""Colours and matplotlib settings of the docs' figures, one theme per Material colour scheme.

Backgrounds are transparent, so a figure sits on the page's own colour; the text, grid and
series colours are chosen per scheme for contrast with Material's white (``default``) and dark
blue-grey (``slate``) backgrounds. The family colours follow the Okabe-Ito palette, which stays
distinguishable for colour-blind readers; the dark theme uses lighter tints of the same hues.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DARK", "LIGHT", "Theme"]


@dataclass(frozen=True)
class Theme:
    """What a figure needs to know about the scheme it is drawn for."""

    suffix: str
    text: str
    muted: str
    grid: str
    panel: str
    families: dict[str, str]
    good: str
    bad: str
    series: tuple[str, ...]
    rc: dict[str, Any] = field(default_factory=dict)

    def family(self, name: str) -> str:
        """The colour of a model family (a neutral one for families without their own)."""
        return self.families.get(name, self.muted)


def _rc(text: str, muted: str, grid: str) -> dict[str, Any]:
    return {
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans"],
        "font.size": 11,
        "text.color": text,
        "axes.labelcolor": text,
        "axes.edgecolor": muted,
        "axes.titlecolor": text,
        "axes.titlesize": 13,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "axes.titlepad": 10,
        "axes.facecolor": "none",
        "axes.grid": True,
        "axes.axisbelow": True,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "grid.color": grid,
        "grid.linewidth": 0.7,
        "xtick.color": muted,
        "ytick.color": muted,
        "xtick.labelcolor": text,
        "ytick.labelcolor": text,
        "legend.frameon": False,
        "legend.labelcolor": text,
        "figure.facecolor": "none",
        "savefig.facecolor": "none",
        "figure.dpi": 100,
    }


LIGHT = Theme(
    suffix="",
    text="#1f2328",
    muted="#6e7781",
    grid="#d8dee4",
    panel="#f3f4f6",
    families={
        "seedream": "#d55e00",
        "nano-banana": "#c99700",
        "qwen": "#009e73",
        "flux-kontext": "#cc79a7",
        "gpt4o-image": "#0072b2",
        "midjourney": "#7b5ea7",
        "recraft": "#56b4e9",
    },
    good="#1a7f37",
    bad="#cf222e",
    series=("#0072b2", "#d55e00", "#009e73", "#cc79a7"),
    rc=_rc("#1f2328", "#6e7781", "#d8dee4"),
)

DARK = Theme(
    suffix="-dark",
    text="#e6e8ee",
    muted="#9aa3b2",
    grid="#3a3f4e",
    panel="#2b2f3b",
    families={
        "seedream": "#ff8c42",
        "nano-banana": "#f0d264",
        "qwen": "#3ccfa0",
        "flux-kontext": "#e8a0c8",
        "gpt4o-image": "#5fb0f0",
        "midjourney": "#b69ae0",
        "recraft": "#8fd3f7",
    },
    good="#56d364",
    bad="#ff7b72",
    series=("#5fb0f0", "#ff8c42", "#3ccfa0", "#e8a0c8"),
    rc=_rc("#e6e8ee", "#9aa3b2", "#3a3f4e"),
)
