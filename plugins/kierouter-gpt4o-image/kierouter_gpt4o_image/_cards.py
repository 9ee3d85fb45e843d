"""The model card of KIE's legacy GPT-4o image API (one model: ``gpt4o-image``).

The price is the quick-reference sheet's GPT-4o price (10 credits), charged here per image, so a
request for 4 variants is estimated at 40 credits (KIE does not document how ``nVariants`` is
billed; per image is the conservative estimate). Override it from the ``[prices]`` table of the
user's configuration. The legacy API has no ``model`` field: ``gpt4o-image`` is kierouter's name.
"""

from __future__ import annotations

from kierouter import Capabilities, ModelCard, Pricing

__all__ = ["CARDS", "GPT4O_IMAGE", "GPT4O_SIZES", "MAX_FILES", "N_VARIANTS"]

#: The three ``size`` values the API takes (width:height).
GPT4O_SIZES = ("1:1", "3:2", "2:3")
#: ``filesUrl`` holds at most this many reference images.
MAX_FILES = 5
#: The ``nVariants`` values the API takes.
N_VARIANTS = (1, 2, 4)

GPT4O_IMAGE = ModelCard(
    id="gpt4o-image",
    family="gpt4o-image",
    task_kinds=("generate", "edit"),
    pricing=Pricing(credits=10),
    latency_p50=40,
    latency_p90=90,
    quality=8.5,
    capabilities=Capabilities(
        aspect_ratios=GPT4O_SIZES,
        resolutions=("1K",),  # no resolution setting: about one megapixel
        max_images=max(N_VARIANTS),
        max_reference_images=MAX_FILES,
        max_prompt_chars=5000,
        seed=False,
        negative_prompt=False,
        mask=True,
        max_image_bytes=26_214_400,  # errorCode 400 for a file over 25 MB (KIE-API.md §10)
    ),
    strengths=("text", "editing"),
    languages=("*",),
    success_rate=0.90,
    title="GPT-4o image",
    description=(
        "OpenAI GPT-4o image generation through KIE's legacy 4o API: the best text rendering "
        "in images (posters, ads, labels), editing from up to 5 reference images and a mask."
    ),
)

#: Every card this plugin registers.
CARDS: tuple[ModelCard, ...] = (GPT4O_IMAGE,)
