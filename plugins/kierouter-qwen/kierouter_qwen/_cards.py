"""Model cards of the five Qwen models KIE serves through its Market API.

Prices follow the quick-reference sheet's Qwen range (6–8 credits): 6 for text-to-image, 7 for
image-to-image, 8 for the edit models, per image; every price can be overridden from the
``[prices]`` table of the user's configuration. Qwen's strengths are the sheet's: text in images
and Chinese prompts. Latencies are our estimates (no Qwen task was recorded to completion).
"""

from __future__ import annotations

from kierouter import Capabilities, ModelCard, Pricing

__all__ = [
    "CARDS",
    "QWEN2_EDIT",
    "QWEN2_EDIT_RATIOS",
    "QWEN2_T2I",
    "QWEN2_T2I_RATIOS",
    "QWEN_EDIT",
    "QWEN_I2I",
    "QWEN_SIZE_FOR_RATIO",
    "QWEN_T2I",
]

#: ``image_size`` names of ``qwen/text-to-image`` and ``qwen/image-edit`` for each aspect ratio
#: (``square``, the low-resolution square, is reachable only as an explicit option).
QWEN_SIZE_FOR_RATIO: dict[str, str] = {
    "1:1": "square_hd",
    "4:3": "landscape_4_3",
    "3:4": "portrait_4_3",
    "16:9": "landscape_16_9",
    "9:16": "portrait_16_9",
}
#: ``qwen2/text-to-image`` takes ``image_size`` as these ratio strings.
QWEN2_T2I_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
#: ``qwen2/image-edit`` takes ``image_size`` as these ratio strings.
QWEN2_EDIT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9")

_LANGUAGES = ("en", "zh")

QWEN_T2I = ModelCard(
    id="qwen/text-to-image",
    family="qwen",
    task_kinds=("generate",),
    pricing=Pricing(credits=6),
    latency_p50=25,
    latency_p90=50,
    quality=7.5,
    capabilities=Capabilities(
        aspect_ratios=tuple(QWEN_SIZE_FOR_RATIO),
        resolutions=("1K",),  # image_size names only; square_hd is 1024x1024
        max_images=1,
        max_reference_images=0,
        max_prompt_chars=5000,
        seed=True,
        negative_prompt=True,
    ),
    strengths=("text", "chinese"),
    languages=_LANGUAGES,
    success_rate=0.92,
    title="Qwen Image",
    description="Alibaba Qwen-Image text-to-image: strong at text in images and Chinese prompts; "
    "steps, guidance and acceleration are tunable.",
)

QWEN_I2I = ModelCard(
    id="qwen/image-to-image",
    family="qwen",
    task_kinds=("edit",),
    pricing=Pricing(credits=7),
    latency_p50=30,
    latency_p90=60,
    quality=7.5,
    capabilities=Capabilities(
        # no image_size: the result keeps the input image's shape
        aspect_ratios=("auto",),
        resolutions=("1K",),
        max_images=1,
        max_reference_images=1,
        max_prompt_chars=5000,
        seed=True,
        negative_prompt=True,
    ),
    strengths=("text", "chinese", "editing"),
    languages=_LANGUAGES,
    success_rate=0.92,
    title="Qwen Image image-to-image",
    description="Qwen-Image redraws one input image under a prompt; strength (0–1) sets how far "
    "it may move from the input, whose shape it keeps.",
)

QWEN_EDIT = ModelCard(
    id="qwen/image-edit",
    family="qwen",
    task_kinds=("edit",),
    pricing=Pricing(credits=8),
    latency_p50=30,
    latency_p90=60,
    quality=8.0,
    capabilities=Capabilities(
        aspect_ratios=tuple(QWEN_SIZE_FOR_RATIO),
        resolutions=("1K",),
        max_images=4,
        max_reference_images=1,
        max_prompt_chars=2000,
        seed=True,
        negative_prompt=True,
    ),
    strengths=("text", "chinese", "editing"),
    languages=_LANGUAGES,
    success_rate=0.92,
    title="Qwen Image Edit",
    description="Qwen-Image-Edit: instruction edits of one image, including text in it; "
    "1–4 images a task.",
)

QWEN2_T2I = ModelCard(
    id="qwen2/text-to-image",
    family="qwen",
    task_kinds=("generate",),
    pricing=Pricing(credits=6),
    latency_p50=20,
    latency_p90=45,
    quality=8.0,
    capabilities=Capabilities(
        aspect_ratios=QWEN2_T2I_RATIOS,
        resolutions=("1K",),
        max_images=1,
        max_reference_images=0,
        max_prompt_chars=800,
        seed=True,
    ),
    strengths=("text", "chinese"),
    languages=_LANGUAGES,
    success_rate=0.92,
    title="Qwen Image 2",
    description="Qwen Image 2 text-to-image: text and Chinese prompts, short prompts (≤800).",
)

QWEN2_EDIT = ModelCard(
    id="qwen2/image-edit",
    family="qwen",
    task_kinds=("edit",),
    pricing=Pricing(credits=8),
    latency_p50=25,
    latency_p90=55,
    quality=8.0,
    capabilities=Capabilities(
        aspect_ratios=QWEN2_EDIT_RATIOS,
        resolutions=("1K",),
        max_images=1,
        max_reference_images=1,
        max_prompt_chars=800,
        seed=True,
    ),
    strengths=("text", "chinese", "editing"),
    languages=_LANGUAGES,
    # lower prior: the image_url type is unsettled (KIE-API.md §14 q5); the recorded array form
    # was accepted at create, but no task was recorded to completion
    success_rate=0.88,
    title="Qwen Image 2 Edit",
    description="Qwen Image 2 instruction edits of one image, eight output ratios.",
)

#: Every card this plugin registers (cheapest first within each task kind).
CARDS: tuple[ModelCard, ...] = (QWEN2_T2I, QWEN_T2I, QWEN_I2I, QWEN2_EDIT, QWEN_EDIT)
