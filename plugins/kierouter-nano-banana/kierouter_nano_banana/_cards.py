"""Model cards of the four Nano Banana (Google Gemini image) models on KIE's Market API.

``google/nano-banana`` and ``google/nano-banana-edit`` carry the quick-reference sheet's price
(4 credits). ``nano-banana-pro`` and ``nano-banana-2`` are newer than the sheet: their prices are
our estimates of KIE's per-resolution pricing. All can be overridden from the ``[prices]`` table
of the user's configuration.
"""

from __future__ import annotations

from kierouter import Capabilities, ModelCard, Pricing

__all__ = [
    "CARDS",
    "NANO_BANANA",
    "NANO_BANANA_2",
    "NANO_BANANA_2_RATIOS",
    "NANO_BANANA_EDIT",
    "NANO_BANANA_PRO",
    "NANO_BANANA_RATIOS",
]

#: Aspect ratios of ``google/nano-banana*`` and ``nano-banana-pro`` (``auto`` lets the model pick).
NANO_BANANA_RATIOS = (
    "1:1", "9:16", "16:9", "3:4", "4:3", "3:2", "2:3", "5:4", "4:5", "21:9", "auto",
)  # fmt: skip
#: ``nano-banana-2`` adds four extreme ratios.
NANO_BANANA_2_RATIOS = (*NANO_BANANA_RATIOS, "1:4", "4:1", "1:8", "8:1")

_ANY_LANGUAGE = ("*",)

NANO_BANANA = ModelCard(
    id="google/nano-banana",
    family="nano-banana",
    task_kinds=("generate",),
    pricing=Pricing(credits=4),
    latency_p50=15,
    latency_p90=30,
    quality=7.5,
    capabilities=Capabilities(
        aspect_ratios=NANO_BANANA_RATIOS,
        resolutions=("1K",),  # no resolution setting: about 1 megapixel
        max_images=1,
        max_reference_images=0,
        max_prompt_chars=5000,
    ),
    strengths=("fast", "budget"),
    languages=_ANY_LANGUAGE,
    success_rate=0.92,
    title="Nano Banana",
    description="Google Gemini 2.5 Flash Image text-to-image: fast and cheap.",
)

NANO_BANANA_EDIT = ModelCard(
    id="google/nano-banana-edit",
    family="nano-banana",
    task_kinds=("edit",),
    pricing=Pricing(credits=4),
    latency_p50=15,
    latency_p90=35,
    quality=8.0,
    capabilities=Capabilities(
        aspect_ratios=NANO_BANANA_RATIOS,
        resolutions=("1K",),
        max_images=1,
        max_reference_images=10,
        max_prompt_chars=5000,
    ),
    strengths=("fast", "editing"),
    languages=_ANY_LANGUAGE,
    success_rate=0.92,
    title="Nano Banana Edit",
    description="Google Gemini 2.5 Flash Image editing from up to 10 reference images.",
)

NANO_BANANA_PRO = ModelCard(
    id="nano-banana-pro",
    family="nano-banana",
    task_kinds=("generate", "edit"),
    pricing=Pricing(credits=18, by_resolution={"4K": 24}),
    latency_p50=30,
    latency_p90=70,
    quality=9.0,
    capabilities=Capabilities(
        aspect_ratios=NANO_BANANA_RATIOS,
        resolutions=("1K", "2K", "4K"),
        max_images=1,
        max_reference_images=8,
        max_prompt_chars=10000,
        max_image_bytes=30 * 1024 * 1024,  # image_input: up to 30 MB each (KIE-API.md §6)
    ),
    strengths=("text", "photoreal", "editing", "4k"),
    languages=_ANY_LANGUAGE,
    success_rate=0.95,
    title="Nano Banana Pro",
    description="Google Gemini 3 Pro Image: best text rendering, up to 4K and 8 reference images.",
)

NANO_BANANA_2 = ModelCard(
    id="nano-banana-2",
    family="nano-banana",
    task_kinds=("generate", "edit"),
    pricing=Pricing(credits=8, by_resolution={"2K": 12, "4K": 18}),
    latency_p50=25,
    latency_p90=60,
    quality=8.5,
    capabilities=Capabilities(
        aspect_ratios=NANO_BANANA_2_RATIOS,
        resolutions=("1K", "2K", "4K"),
        max_images=1,
        max_reference_images=14,
        max_prompt_chars=20000,
    ),
    strengths=("fast", "editing", "text", "4k"),
    languages=_ANY_LANGUAGE,
    success_rate=0.94,
    title="Nano Banana 2",
    description="Google's second Nano Banana: fast, up to 4K, 14 reference images, extreme ratios.",
)

#: Every card this plugin registers, cheapest first.
CARDS: tuple[ModelCard, ...] = (NANO_BANANA, NANO_BANANA_EDIT, NANO_BANANA_2, NANO_BANANA_PRO)
