"""Model cards of the six Seedream models KIE serves through its Market API.

Prices are the quick-reference sheet's for v4 (3.5 credits) and KIE's documented prices for the
newer 4.5 and 5 Lite; all of them can be overridden from the ``[prices]`` table of the user's
configuration. Latencies for 5 Lite follow the recorded traffic (46 s and 112 s create→done).
"""

from __future__ import annotations

from kierouter import Capabilities, ModelCard, Pricing

__all__ = [
    "CARDS",
    "EDIT_PARTNER",
    "SEEDREAM_5_LITE_I2I",
    "SEEDREAM_5_LITE_T2I",
    "SEEDREAM_45_EDIT",
    "SEEDREAM_45_T2I",
    "SEEDREAM_ASPECT_RATIOS",
    "SEEDREAM_V4_EDIT",
    "SEEDREAM_V4_T2I",
]

#: The aspect ratios every Seedream model can render (v4 names them, 4.5/5 Lite take them as is).
SEEDREAM_ASPECT_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "2:3", "3:2", "21:9")

_LANGUAGES = ("en", "zh")

SEEDREAM_V4_T2I = ModelCard(
    id="bytedance/seedream-v4-text-to-image",
    family="seedream",
    task_kinds=("generate",),
    pricing=Pricing(credits=3.5),
    latency_p50=20,
    latency_p90=45,
    quality=7.5,
    capabilities=Capabilities(
        aspect_ratios=SEEDREAM_ASPECT_RATIOS,
        resolutions=("1K", "2K", "4K"),
        max_images=6,
        max_reference_images=0,
        max_prompt_chars=5000,
        seed=True,
    ),
    strengths=("budget", "fast", "chinese", "4k"),
    languages=_LANGUAGES,
    success_rate=0.90,
    title="Seedream 4.0",
    description="ByteDance Seedream 4.0 text-to-image: cheap, fast, up to 4K and 6 images a task.",
)

SEEDREAM_V4_EDIT = ModelCard(
    id="bytedance/seedream-v4-edit",
    family="seedream",
    task_kinds=("edit",),
    pricing=Pricing(credits=3.5),
    latency_p50=25,
    latency_p90=60,
    quality=7.5,
    capabilities=Capabilities(
        aspect_ratios=SEEDREAM_ASPECT_RATIOS,
        resolutions=("1K", "2K", "4K"),
        max_images=6,
        max_reference_images=10,
        max_prompt_chars=5000,
        seed=True,
    ),
    strengths=("budget", "editing", "chinese", "4k"),
    languages=_LANGUAGES,
    success_rate=0.90,
    title="Seedream 4.0 Edit",
    description="ByteDance Seedream 4.0 image editing from up to 10 reference images.",
)

SEEDREAM_45_T2I = ModelCard(
    id="seedream/4.5-text-to-image",
    family="seedream",
    task_kinds=("generate",),
    pricing=Pricing(credits=6.5),
    latency_p50=30,
    latency_p90=70,
    quality=8.0,
    capabilities=Capabilities(
        aspect_ratios=SEEDREAM_ASPECT_RATIOS,
        # quality=basic renders 2K, high 4K; a 1K request is served at 2K
        resolutions=("1K", "2K", "4K"),
        max_images=1,
        max_reference_images=0,
        max_prompt_chars=3000,
    ),
    strengths=("chinese", "4k", "photoreal"),
    languages=_LANGUAGES,
    success_rate=0.92,
    title="Seedream 4.5",
    description="ByteDance Seedream 4.5 text-to-image, photoreal, 2K (basic) or 4K (high).",
)

SEEDREAM_45_EDIT = ModelCard(
    id="seedream/4.5-edit",
    family="seedream",
    task_kinds=("edit",),
    pricing=Pricing(credits=6.5),
    latency_p50=35,
    latency_p90=80,
    quality=8.0,
    capabilities=Capabilities(
        aspect_ratios=SEEDREAM_ASPECT_RATIOS,
        resolutions=("1K", "2K", "4K"),
        max_images=1,
        max_reference_images=14,
        max_prompt_chars=3000,
    ),
    strengths=("chinese", "editing", "4k"),
    languages=_LANGUAGES,
    success_rate=0.92,
    title="Seedream 4.5 Edit",
    description="ByteDance Seedream 4.5 image editing from up to 14 reference images.",
)

SEEDREAM_5_LITE_T2I = ModelCard(
    id="seedream/5-lite-text-to-image",
    family="seedream",
    task_kinds=("generate",),
    pricing=Pricing(credits=5.5),
    latency_p50=45,
    latency_p90=110,
    quality=8.0,
    capabilities=Capabilities(
        aspect_ratios=SEEDREAM_ASPECT_RATIOS,
        # quality=basic renders 2K, high 3K: no 4K tier
        resolutions=("1K", "2K"),
        max_images=1,
        max_reference_images=0,
        max_prompt_chars=3000,
    ),
    strengths=("chinese", "photoreal"),
    languages=_LANGUAGES,
    success_rate=0.92,
    title="Seedream 5 Lite",
    description="ByteDance Seedream 5 Lite text-to-image, 2K (basic) or 3K (high).",
)

SEEDREAM_5_LITE_I2I = ModelCard(
    id="seedream/5-lite-image-to-image",
    family="seedream",
    task_kinds=("edit",),
    pricing=Pricing(credits=5.5),
    latency_p50=60,
    latency_p90=115,
    quality=8.0,
    capabilities=Capabilities(
        aspect_ratios=SEEDREAM_ASPECT_RATIOS,
        resolutions=("1K", "2K"),
        max_images=1,
        max_reference_images=14,
        max_prompt_chars=3000,
    ),
    strengths=("chinese", "editing"),
    languages=_LANGUAGES,
    success_rate=0.92,
    title="Seedream 5 Lite image-to-image",
    description="ByteDance Seedream 5 Lite image editing from up to 14 reference images.",
)

#: Every card this plugin registers, in ladder order (cheapest first).
CARDS: tuple[ModelCard, ...] = (
    SEEDREAM_V4_T2I,
    SEEDREAM_V4_EDIT,
    SEEDREAM_5_LITE_T2I,
    SEEDREAM_5_LITE_I2I,
    SEEDREAM_45_T2I,
    SEEDREAM_45_EDIT,
)

#: Each model's counterpart for the other task kind, named in "cannot edit" errors.
EDIT_PARTNER: dict[str, str] = {
    SEEDREAM_V4_T2I.id: SEEDREAM_V4_EDIT.id,
    SEEDREAM_V4_EDIT.id: SEEDREAM_V4_T2I.id,
    SEEDREAM_45_T2I.id: SEEDREAM_45_EDIT.id,
    SEEDREAM_45_EDIT.id: SEEDREAM_45_T2I.id,
    SEEDREAM_5_LITE_T2I.id: SEEDREAM_5_LITE_I2I.id,
    SEEDREAM_5_LITE_I2I.id: SEEDREAM_5_LITE_T2I.id,
}
