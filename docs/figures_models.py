"""Figures of the model catalogue, from the shipped plugins' model cards and the policy engine.

* ``cost-quality``: price against quality of every card, families coloured, each built-in
  policy's first choice marked;
* ``latency``: each model's p50-p90 latency;
* ``ladder``: the default escalation ladder as the default policy plans it, with the credits of
  each rung, how often a job reaches it, and the expected cost.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from figures_theme import Theme
from gen_models import FAMILIES, shipped_registry
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from kierouter import Constraints, ImageRequest, Policy
from kierouter.policy import BUILTIN_POLICIES, DEFAULT_LADDER, plan

__all__ = ["FIGURES", "SAMPLE_REQUESTS", "cost_quality_data", "ladder_data", "latency_data"]

_PLAIN = ImageRequest(prompt="a red fox in snow, watercolor", aspect_ratio="16:9")
#: The request each built-in policy is shown planning: one that suits it.
SAMPLE_REQUESTS: dict[str, ImageRequest] = {
    "artistic": ImageRequest(prompt="an anime girl under cherry blossoms, dreamy"),
    "text": ImageRequest(prompt='a poster that says "GRAND OPENING" in bold letters'),
    "chinese": ImageRequest(prompt="一只在雪地里的红狐狸,水彩画"),
    "utility": ImageRequest(task="remove-background", images=("https://example.com/in.png",)),
}
_MARKERS = {"generate": "o", "edit": "s", "generate+edit": "D", "utility": "^"}
_MARKER_NAMES = {
    "generate": "generate",
    "edit": "edit",
    "generate+edit": "generate and edit",
    "utility": "upscale / remove background",
}


def _kind(task_kinds: tuple[str, ...]) -> str:
    if "generate" in task_kinds and "edit" in task_kinds:
        return "generate+edit"
    if task_kinds[0] in ("generate", "edit"):
        return task_kinds[0]
    return "utility"


# -- cost vs quality -------------------------------------------------------------------------


def cost_quality_data() -> dict[str, Any]:
    """Every card's price and quality, and the first model of each built-in policy's plan."""
    cards = shipped_registry().cards
    firsts: dict[str, list[str]] = {}
    for name, policy in BUILTIN_POLICIES.items():
        steps = plan(SAMPLE_REQUESTS.get(name, _PLAIN), cards, policy).steps
        if steps:
            firsts.setdefault(steps[0].model, []).append(name)
    models = [
        {
            "id": card.id,
            "family": card.family,
            "credits": card.pricing.credits,
            "per_task": card.pricing.images_per_task if card.pricing.per_task else 0,
            "quality": card.quality,
            "kind": _kind(card.task_kinds),
            "first_of": firsts.get(card.id, []),
        }
        for card in sorted(cards.values(), key=lambda c: (c.pricing.credits, c.quality, c.id))
    ]
    return {"models": models}


def _label(model: dict[str, Any]) -> str:
    text = model["id"]
    if model["per_task"]:
        text += f" ({model['per_task']} images per task)"
    if model["first_of"]:
        text += "  ◀ " + ", ".join(model["first_of"])
    return text


# where a label may go, relative to its marker, in points: the nearest free one is taken
_PLACES = [
    (dx, dy, "left" if dx > 0 else "right")
    for dxs in ((8, -8), (40, -40))  # beside the marker first, further off only if need be
    for dy in (0, 12, -12, 24, -24, 36, -36, 48, -48, 60, -60, 72, -72)
    for dx in dxs
]


_LEADER = {"arrowstyle": "-", "lw": 0.6, "shrinkA": 0, "shrinkB": 4}


def _overlaps(box: Any, others: list[Any]) -> bool:
    return any(box.overlaps(other) for other in others)


def _place_labels(
    ax: Any, groups: list[tuple[float, float, list[dict[str, Any]]]], theme: Theme
) -> None:
    """Label each group of markers where its text overlaps no other label, marker or edge."""
    renderer = FigureCanvasAgg(ax.figure).get_renderer()  # measures text like the SVG writer
    # labels stay inside the axes, but may run into the figure's right margin
    frame = ax.get_window_extent(renderer)
    right = ax.figure.bbox.x1
    # every marker, as a small box around its centre
    taken = []
    for collection in ax.collections:
        for px, py in ax.transData.transform(collection.get_offsets()):
            taken.append(Bbox.from_extents(px - 7, py - 7, px + 7, py + 7))
    for x, y, models in groups:
        first = any(m["first_of"] for m in models)
        text = "\n".join(_label(m) for m in models)
        for dx, dy, align in _PLACES:
            note = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=align,
                va="center",
                fontsize=9.5,
                color=theme.text,
                fontweight="bold" if first else "normal",
                linespacing=1.3,
                # a label away from its marker gets a thin line to it
                arrowprops=None if (dy, abs(dx)) == (0, 8) else _LEADER | {"color": theme.muted},
            )
            # the text alone: an annotation's own extent includes its leader line
            note.update_positions(renderer)
            box = Text.get_window_extent(note, renderer).expanded(1.02, 1.1)
            inside = frame.x0 <= box.x0 and box.x1 <= right and frame.y0 <= box.y0
            if inside and box.y1 <= frame.y1 and not _overlaps(box, taken):
                taken.append(box)
                break
            note.remove()
        else:
            raise RuntimeError(f"no room for the label {text!r}: make the figure larger")


def draw_cost_quality(data: dict[str, Any], theme: Theme) -> Any:
    """Scatter of credits (log scale) against quality, one marker per card."""
    models = data["models"]
    fig, ax = plt.subplots(figsize=(8, 7.6))
    groups: dict[tuple[float, float], list[dict[str, Any]]] = {}
    for model in models:
        groups.setdefault((model["credits"], model["quality"]), []).append(model)
    for (credits, quality), members in groups.items():
        for k, model in enumerate(members):
            # models with the same price and quality side by side, a few points apart
            x = credits * 10 ** (0.022 * (k - (len(members) - 1) / 2))
            first = bool(model["first_of"])
            ax.scatter(
                x,
                quality,
                s=80 if first else 50,
                marker=_MARKERS[model["kind"]],
                color=theme.family(model["family"]),
                edgecolors=theme.text if first else "none",
                linewidths=1.5,
                zorder=3,
            )
    credits = [m["credits"] for m in models]
    qualities = [m["quality"] for m in models]
    ax.set_xscale("log")
    ax.set_xlim(min(credits) / 1.3, max(credits) * 2.5)
    ax.set_ylim(min(qualities) - 0.35, max(qualities) + 0.3)
    ticks = sorted({1, 2, 4, 8, 16, *[round(c) for c in (min(credits), max(credits))]})
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_yticks(sorted(set(qualities)))
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("credits per task, default tier (log scale; 1 credit ≈ $0.005)")
    ax.set_ylabel("quality (model card, 0-10)")
    ax.set_title("Price and quality of every model card")
    order = sorted(groups.items(), key=lambda g: (not any(m["first_of"] for m in g[1]), g[0]))
    _place_labels(ax, [(c, q, ms) for (c, q), ms in order], theme)
    families = sorted({m["family"] for m in models}, key=lambda f: list(FAMILIES).index(f))
    handles = [
        Line2D([], [], marker="o", ls="", color=theme.family(f), label=FAMILIES.get(f, f))
        for f in families
    ]
    kinds = [k for k in _MARKERS if any(m["kind"] == k for m in models)]
    handles += [
        Line2D([], [], marker=_MARKERS[k], ls="", color=theme.muted, label=_MARKER_NAMES[k])
        for k in kinds
    ]
    handles.append(
        Line2D(
            [],
            [],
            marker="o",
            ls="",
            color=theme.muted,
            markeredgecolor=theme.text,
            markeredgewidth=1.5,
            label="◀ first choice of these built-in policies",
        )
    )
    fig.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.02), fontsize=10, ncols=3
    )
    return fig


# -- latency ---------------------------------------------------------------------------------


def latency_data() -> dict[str, Any]:
    """Every card's p50 and p90 latency."""
    cards = shipped_registry().cards.values()
    rows = sorted(cards, key=lambda c: (c.latency_p50, c.latency_p90, c.id))
    return {
        "models": [
            {"id": c.id, "family": c.family, "p50": c.latency_p50, "p90": c.latency_p90}
            for c in rows
        ]
    }


def draw_latency(data: dict[str, Any], theme: Theme) -> Any:
    """A bar from p50 to p90 per model, fastest on top."""
    models = data["models"]
    fig, ax = plt.subplots(figsize=(8, 0.34 * len(models) + 1.2))
    for row, model in enumerate(models):
        colour = theme.family(model["family"])
        ax.plot([model["p50"], model["p90"]], [row, row], color=colour, lw=6, solid_capstyle="butt")
        ax.plot(model["p50"], row, "o", color=colour, markeredgecolor=theme.text, ms=6, zorder=3)
        ax.annotate(
            f"{model['p50']:g}-{model['p90']:g} s",
            (model["p90"], row),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            fontsize=9.5,
            color=theme.muted,
        )
    ax.set_yticks(range(len(models)), [m["id"] for m in models], fontsize=10)
    ax.invert_yaxis()
    ax.set_xlim(0, max(m["p90"] for m in models) * 1.12)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("seconds from create to done (dot: p50, bar end: p90)")
    ax.set_title("Latency of every model card, p50 to p90")
    return fig


# -- the ladder ------------------------------------------------------------------------------


def ladder_data() -> dict[str, Any]:
    """The default policy's plan for a plain prompt, rung by rung, with each rung's reach."""
    cards = shipped_registry().cards
    default = plan(_PLAIN, cards, BUILTIN_POLICIES["auto"])
    rungs = []
    reach = 1.0
    for rung in DEFAULT_LADDER:
        families = rung.split("|")
        step = next(s for s in default.steps if s.family in families)
        others = []
        for family in families:
            if family == step.family:
                continue
            alone = Policy(name=f"only-{family}", constraints=Constraints(allow=(family,)))
            alternative = plan(_PLAIN, cards, alone).steps[0]
            others.append(
                {"family": family, "model": alternative.model, "credits": alternative.credits}
            )
        rungs.append(
            {
                "family": step.family,
                "model": step.model,
                "credits": step.credits,
                "p_success": step.p_success,
                "reach": reach,
                "alternatives": others,
            }
        )
        reach *= 1 - step.p_success
    return {
        "rungs": rungs,
        "expected_credits": default.expected_credits,
        "p_success": default.p_success,
        "worst_case_credits": default.worst_case_credits,
    }


def draw_ladder(data: dict[str, Any], theme: Theme) -> Any:
    """The rungs from the bottom up, each with its model, credits and how often it runs."""
    rungs = data["rungs"]
    height, gap, width = 1.05, 0.42, 10.0
    fig, ax = plt.subplots(figsize=(8, 0.62 * len(rungs) * (height + gap) + 1.6))
    ax.set_axis_off()
    for i, rung in enumerate(rungs):
        y = i * (height + gap)
        colour = theme.family(rung["family"])
        ax.add_patch(
            FancyBboxPatch(
                (0.9, y),
                width - 0.9,
                height,
                boxstyle="round,pad=0,rounding_size=0.1",
                facecolor=theme.panel,
                edgecolor=colour,
                linewidth=2,
            )
        )
        names = [FAMILIES.get(rung["family"], rung["family"])]
        names += [FAMILIES.get(a["family"], a["family"]) for a in rung["alternatives"]]
        ax.text(
            1.1,
            y + height - 0.2,
            " or ".join(names),
            fontsize=10.5,
            fontweight="bold",
            color=colour,
            va="center",
        )
        models = [f"{rung['model']}, {rung['credits']:g} credits"]
        models += [f"or {a['model']}, {a['credits']:g} credits" for a in rung["alternatives"]]
        ax.text(
            1.1,
            y + height - 0.42,
            "\n".join(models),
            fontsize=10,
            color=theme.text,
            va="top",
            linespacing=1.4,
        )
        ax.text(
            width - 0.15,
            y + height - 0.2,
            f"p(success) {rung['p_success']:.2f}",
            fontsize=10,
            color=theme.text,
            ha="right",
            va="center",
        )
        ax.text(
            width - 0.15,
            y + 0.2,
            f"runs for {rung['reach'] * 100:.3g} % of jobs",
            fontsize=10,
            color=theme.muted,
            ha="right",
            va="center",
            style="italic",
        )
        ax.text(
            0.45,
            y + height / 2,
            str(i + 1),
            fontsize=16,
            fontweight="bold",
            color=colour,
            ha="center",
            va="center",
        )
        if i:
            ax.add_patch(
                FancyArrowPatch(
                    (1.5, y - gap + 0.02),
                    (1.5, y - 0.02),
                    arrowstyle="-|>",
                    mutation_scale=12,
                    color=theme.muted,
                    linewidth=1.3,
                )
            )
            ax.text(
                1.62,
                y - gap / 2,
                "failed or rejected: the next rung",
                fontsize=9.5,
                color=theme.muted,
                va="center",
            )
    top = (len(rungs) - 1) * (height + gap) + height
    summary = (
        f"Expected {data['expected_credits']:.2f} credits per image · served "
        f"{data['p_success'] * 100:.2f} % of the time · worst case "
        f"{data['worst_case_credits']:g} credits"
    )
    ax.text(0.05, top + 0.3, summary, fontsize=9.5, color=theme.text, va="center")
    ax.set_xlim(0, width + 0.05)
    ax.set_ylim(-0.05, top + 0.5)
    ax.set_title("The default ladder: policy auto, a plain prompt")
    return fig


FIGURES = (
    ("cost-quality", cost_quality_data, draw_cost_quality),
    ("latency", latency_data, draw_latency),
    ("ladder", ladder_data, draw_ladder),
)
