"""The model card of KIE's legacy Midjourney API (one model: ``midjourney``).

Midjourney renders a grid of 4 images per task and is priced per task by ``speed``. The default
speed (``fast``) costs the quick-reference sheet's Midjourney price, 25 credits; ``relaxed`` and
``turbo`` are priced at half and double (kierouter's estimate; KIE does not document MJ prices any
more). Override them from the ``[prices]`` table of the user's configuration. The legacy API has
no ``model`` field: ``midjourney`` is kierouter's name; ``version`` picks v7, niji6 and so on.
"""

from __future__ import annotations

from kierouter import Capabilities, ModelCard, Pricing

__all__ = [
    "CARDS",
    "IMAGES_PER_TASK",
    "MAX_FILES",
    "MIDJOURNEY",
    "MJ_ASPECT_RATIOS",
    "SPEED_CREDITS",
]

#: The ``aspectRatio`` values the API takes.
MJ_ASPECT_RATIOS = (
    "1:2", "9:16", "2:3", "3:4", "5:6", "6:5", "4:3", "3:2", "1:1", "16:9", "2:1",
)  # fmt: skip
#: Credits per task (4 images) by ``speed``; ``fast`` is the sheet's 25.
SPEED_CREDITS = {"relaxed": 12.5, "fast": 25.0, "turbo": 50.0}
#: Every task returns this many images.
IMAGES_PER_TASK = 4
#: Reference images kierouter sends in ``fileUrls`` (KIE documents no limit; MJ image prompts
#: beyond a handful add little).
MAX_FILES = 5

MIDJOURNEY = ModelCard(
    id="midjourney",
    family="midjourney",
    task_kinds=("generate", "edit"),
    pricing=Pricing(
        credits=SPEED_CREDITS["fast"],
        by_speed=dict(SPEED_CREDITS),
        images_per_task=IMAGES_PER_TASK,
        per_task=True,
    ),
    latency_p50=60,
    latency_p90=150,
    quality=9.0,
    capabilities=Capabilities(
        aspect_ratios=MJ_ASPECT_RATIOS,
        resolutions=("1K",),  # no resolution setting; upscaling is a separate MJ endpoint
        max_images=IMAGES_PER_TASK,
        max_reference_images=MAX_FILES,
        max_prompt_chars=2000,
        seed=False,
        negative_prompt=False,
        mask=False,
    ),
    strengths=("artistic", "anime"),
    languages=("en",),
    success_rate=0.85,
    title="Midjourney",
    description=(
        "Midjourney (v7, 6.1, …, niji6 for anime) through KIE's legacy MJ API: the most artistic "
        "model of the line-up, 4 images per task. KIE removed the MJ pages from its docs in 2026; "
        "the endpoint may be gone."
    ),
)

#: Every card this plugin registers.
CARDS: tuple[ModelCard, ...] = (MIDJOURNEY,)
