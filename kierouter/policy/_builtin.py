"""The built-in policies: the quick-reference sheet's use-case modes, plus ``auto``.

=========  ==================================================================================
budget     the cheapest model that meets the quality floor (7/10), at most 8 credits an image;
           Seedream first
speed      the fastest models (p50 ≤ 30 s): Seedream, Nano Banana
quality    the best models (quality ≥ 8.5): Flux Kontext Max, Midjourney
artistic   Midjourney first (``niji6`` for anime prompts), then Flux Kontext / GPT-4o
text       models that render text in the image: GPT-4o image, Qwen, then Nano Banana, Flux
chinese    models that understand Chinese prompts: Seedream, Qwen
utility    Recraft remove-background and upscale
auto       infers the intent and plans like the matching mode (default ladder otherwise)
=========  ==================================================================================

They are ordinary :class:`~kierouter.Policy` values: compose them with
``msgspec.structs.replace`` or ``extends = "budget"`` in TOML.
"""

from __future__ import annotations

from ._types import DEFAULT_LADDER, Budget, Constraints, Objective, Policy

__all__ = ["AUTO_MODES", "BUILTIN_POLICIES", "RUNG_PREFERENCE", "builtin_policies", "mode_for"]

_NIJI: dict[str, dict[str, dict[str, object]]] = {"anime": {"midjourney": {"version": "niji6"}}}

BUDGET = Policy(
    name="budget",
    description="The cheapest model that meets the quality floor; Seedream first.",
    constraints=Constraints(min_quality=7.0, max_credits=8.0),
    objective=Objective(by="cost"),
    ordering="objective",
    budget=Budget(max_attempts=3),
    max_steps=3,
)
SPEED = Policy(
    name="speed",
    description="The fastest models (p50 at most 30 s): Seedream, Nano Banana.",
    constraints=Constraints(max_latency=30.0),
    objective=Objective(by="speed"),
    ordering="objective",
    budget=Budget(max_attempts=3, deadline=180.0),
    max_steps=3,
)
QUALITY = Policy(
    name="quality",
    description="The best models (quality 8.5 or more): Flux Kontext Max, Midjourney.",
    constraints=Constraints(min_quality=8.5),
    objective=Objective(by="quality"),
    ordering="objective",
)
ARTISTIC = Policy(
    name="artistic",
    description="Midjourney first (niji6 for anime prompts), then Flux Kontext / GPT-4o.",
    objective=Objective(by="quality"),
    ladder=("midjourney", "flux-kontext|gpt4o-image"),
    options_by_intent=_NIJI,
    max_steps=3,
)
TEXT = Policy(
    name="text",
    description="Text rendered in the image: GPT-4o image, Qwen, then Nano Banana, Flux Kontext.",
    constraints=Constraints(require=("text",)),
    objective=Objective(by="cost"),
    ladder=("gpt4o-image", "qwen", "nano-banana", "flux-kontext"),
)
CHINESE = Policy(
    name="chinese",
    description="Prompts in Chinese: Seedream, Qwen.",
    constraints=Constraints(language="zh"),
    objective=Objective(by="cost"),
    ladder=("seedream", "qwen"),
)
UTILITY = Policy(
    name="utility",
    description="Image processing: Recraft remove-background and upscale.",
    constraints=Constraints(task_kinds=("remove-background", "upscale")),
    objective=Objective(by="cost"),
    ladder=("recraft",),
    max_steps=2,
)
AUTO = Policy(
    name="auto",
    description="Infers the intent (edit, text, Chinese, 4K, utility) and plans like that mode.",
    objective=Objective(by="cost"),
    ladder=DEFAULT_LADDER,
    options_by_intent=_NIJI,
    infer=True,
)

BUILTIN_POLICIES: dict[str, Policy] = {
    p.name: p for p in (AUTO, BUDGET, SPEED, QUALITY, ARTISTIC, TEXT, CHINESE, UTILITY)
}
"""Every built-in policy by name."""

#: What ``auto`` (any policy with ``infer=True``) plans like, by intent; first match wins.
#: ``4k`` keeps the policy's own ladder and adds ``require=("4k",)``.
AUTO_MODES: tuple[tuple[str, Policy | None], ...] = (
    ("remove-background", UTILITY),
    ("upscale", UTILITY),
    ("text", TEXT),
    ("chinese", CHINESE),
    ("4k", None),
)

#: Inside a ladder rung with alternatives (``flux-kontext|gpt4o-image``), the families tried
#: first for an intent: text in the image → GPT-4o image (or Qwen), an edit → Flux Kontext.
RUNG_PREFERENCE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("text", ("gpt4o-image", "qwen")),
    ("edit", ("flux-kontext",)),
)


def builtin_policies() -> dict[str, Policy]:
    """A copy of the built-in policies, by name."""
    return dict(BUILTIN_POLICIES)


def mode_for(intent: tuple[str, ...]) -> str | None:
    """The intent tag that decides ``auto``'s mode (``text``, ``chinese``, ...), if any."""
    for tag, _ in AUTO_MODES:
        if tag in intent:
            return tag
    return None
