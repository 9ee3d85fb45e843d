"""Model cards of the two Flux Kontext models on KIE's legacy Flux Kontext API.

Prices are the quick-reference sheet's Flux range (8–12 credits): 8 for Pro, 12 for Max, per
image; both can be overridden from the ``[prices]`` table of the user's configuration. The sheet
puts Flux Kontext in its quality mode and calls it the tool for professional editing; the
design's ladder sends edit requests of the Flux / GPT-4o rung to Flux. Latencies are estimates.

KIE's Flux prompts are English only, but KIE translates others when ``enableTranslation`` is
set; the provider sets it for non-English prompts, so the cards accept any prompt language.
"""

from __future__ import annotations

from kierouter import Capabilities, ModelCard, Pricing

__all__ = ["CARDS", "FLUX_ASPECT_RATIOS", "FLUX_KONTEXT_MAX", "FLUX_KONTEXT_PRO"]

#: ``aspectRatio`` values KIE documents (default 16:9; an edit without one keeps the input's).
FLUX_ASPECT_RATIOS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")

_CAPABILITIES = Capabilities(
    aspect_ratios=FLUX_ASPECT_RATIOS,
    resolutions=("1K",),  # about one megapixel; no resolution setting
    max_images=1,
    max_reference_images=1,  # inputImage: one URL
    max_prompt_chars=5000,  # KIE documents no limit; kierouter's cap
)

FLUX_KONTEXT_PRO = ModelCard(
    id="flux-kontext-pro",
    family="flux-kontext",
    task_kinds=("generate", "edit"),
    pricing=Pricing(credits=8),
    latency_p50=20,
    latency_p90=45,
    quality=8.5,
    capabilities=_CAPABILITIES,
    strengths=("editing", "photoreal"),
    languages=("*",),
    success_rate=0.92,
    title="Flux Kontext Pro",
    description="Black Forest Labs FLUX.1 Kontext [pro]: generation and precise, "
    "context-aware edits of one input image.",
)

FLUX_KONTEXT_MAX = ModelCard(
    id="flux-kontext-max",
    family="flux-kontext",
    task_kinds=("generate", "edit"),
    pricing=Pricing(credits=12),
    latency_p50=25,
    latency_p90=55,
    quality=9.0,
    capabilities=_CAPABILITIES,
    strengths=("editing", "photoreal"),
    languages=("*",),
    success_rate=0.93,
    title="Flux Kontext Max",
    description="Black Forest Labs FLUX.1 Kontext [max]: the highest-quality Kontext model, "
    "for professional edits and images.",
)

#: Every card this plugin registers, cheapest first.
CARDS: tuple[ModelCard, ...] = (FLUX_KONTEXT_PRO, FLUX_KONTEXT_MAX)
