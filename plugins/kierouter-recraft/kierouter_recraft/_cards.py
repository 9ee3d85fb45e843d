"""Model cards of Recraft's two utility models on KIE's Market API.

The prices are the low end of the quick-reference sheet's ranges (remove-background 1–2 credits,
upscale 2–4); override them from the ``[prices]`` table of the user's configuration.
"""

from __future__ import annotations

from kierouter import Capabilities, ModelCard, Pricing

__all__ = ["CARDS", "CRISP_UPSCALE", "REMOVE_BACKGROUND"]


# One input image, one output image of the input's shape: no ratio or resolution to choose.
# The prompt is never sent; any prompt is accepted and reported as ignored. KIE's docs limit the
# input to 5 MB for remove-background and 10 MB for crisp-upscale (KIE-API.md §8).
def _capabilities(max_mb: int) -> Capabilities:
    return Capabilities(
        aspect_ratios=(),
        resolutions=(),
        max_images=1,
        max_reference_images=1,
        max_image_bytes=max_mb * 1024 * 1024,
    )


REMOVE_BACKGROUND = ModelCard(
    id="recraft/remove-background",
    family="recraft",
    task_kinds=("remove-background",),
    pricing=Pricing(credits=1),
    latency_p50=5,
    latency_p90=12,
    quality=8.0,
    capabilities=_capabilities(5),
    strengths=("utility",),
    languages=("*",),
    success_rate=0.98,
    title="Recraft Remove Background",
    description="Cuts the subject out of one image: a PNG with a transparent background.",
)

CRISP_UPSCALE = ModelCard(
    id="recraft/crisp-upscale",
    family="recraft",
    task_kinds=("upscale",),
    pricing=Pricing(credits=2),
    latency_p50=8,
    latency_p90=20,
    quality=8.0,
    capabilities=_capabilities(10),
    strengths=("utility",),
    languages=("*",),
    success_rate=0.98,
    title="Recraft Crisp Upscale",
    description="Upscales one image, keeping edges crisp; the model picks the factor.",
)

#: Every card this plugin registers.
CARDS: tuple[ModelCard, ...] = (REMOVE_BACKGROUND, CRISP_UPSCALE)
