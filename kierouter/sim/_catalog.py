"""The models the emulator knows: family, API, price and latency of each.

Prices are the CONTRACTS card table (the quick-reference sheet's prices where it has them, our
estimates elsewhere). Models outside the card table (gpt-image-2, grok-imagine, wan 2.7) appear in
the recorded traffic; their prices are estimates and their latencies follow the recordings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CATALOG", "MJ_SPEED_PRICES", "ModelInfo"]


@dataclass(frozen=True)
class ModelInfo:
    """One emulated model. Strictly private to :mod:`kierouter.sim`."""

    id: str
    family: str
    api: str  # "market", "gpt4o", "flux" or "mj"
    credits: float
    p50: float
    p90: float
    by_resolution: dict[str, float] = field(default_factory=dict)


def _m(
    id: str,
    family: str,
    credits: float,
    p50: float,
    p90: float,
    api: str = "market",
    **by_resolution: float,
) -> ModelInfo:
    tiers = {k.removeprefix("r"): v for k, v in by_resolution.items()}
    return ModelInfo(id, family, api, credits, p50, p90, tiers)


#: Midjourney is priced per task of 4 images, by speed.
MJ_SPEED_PRICES = {"relaxed": 12.5, "fast": 25.0, "turbo": 50.0}

CATALOG: dict[str, ModelInfo] = {
    m.id: m
    for m in (
        _m("bytedance/seedream-v4-text-to-image", "seedream", 3.5, 20, 45),
        _m("bytedance/seedream-v4-edit", "seedream", 3.5, 25, 60),
        _m("seedream/4.5-text-to-image", "seedream", 6.5, 30, 70),
        _m("seedream/4.5-edit", "seedream", 6.5, 35, 80),
        _m("seedream/5-lite-text-to-image", "seedream", 5.5, 45, 110),
        _m("seedream/5-lite-image-to-image", "seedream", 5.5, 60, 115),
        _m("google/nano-banana", "nano-banana", 4, 15, 30),
        _m("google/nano-banana-edit", "nano-banana", 4, 15, 35),
        _m("nano-banana-pro", "nano-banana", 18, 30, 70, r4K=24),
        _m("nano-banana-2", "nano-banana", 8, 25, 60, r2K=12, r4K=18),
        _m("qwen/text-to-image", "qwen", 6, 25, 50),
        _m("qwen/image-to-image", "qwen", 7, 30, 60),
        _m("qwen/image-edit", "qwen", 8, 30, 60),
        _m("qwen2/text-to-image", "qwen", 6, 20, 45),
        _m("qwen2/image-edit", "qwen", 8, 25, 55),
        _m("recraft/remove-background", "recraft", 1, 5, 12),
        _m("recraft/crisp-upscale", "recraft", 2, 8, 20),
        # recorded, not in the card table: estimated prices
        _m("gpt-image-2-text-to-image", "gpt-image", 6, 55, 90, r2K=10, r4K=16),
        _m("gpt-image-2-image-to-image", "gpt-image", 6, 48, 90, r2K=10, r4K=16),
        # not recorded; the plugin-author tutorial (docs/plugins/tutorial.md) targets it
        _m("gpt-image/1.5-text-to-image", "gpt-image", 4, 40, 90, r4K=16),
        _m("grok-imagine/text-to-image", "grok-imagine", 4, 13, 30),
        _m("grok-imagine/image-to-image", "grok-imagine", 4, 60, 90),
        _m("wan/2-7-image", "wan", 5, 13, 30),
        _m("wan/2-7-image-pro", "wan", 10, 28, 50),
        # legacy APIs: the ids are kierouter's names (those APIs have no model field)
        _m("flux-kontext-pro", "flux-kontext", 8, 20, 45, api="flux"),
        _m("flux-kontext-max", "flux-kontext", 12, 25, 55, api="flux"),
        _m("gpt4o-image", "gpt4o-image", 10, 40, 90, api="gpt4o"),
        _m("midjourney", "midjourney", 25, 60, 150, api="mj"),
    )
}
"""The models the emulator serves, by model id: family, API, credits per image, p50/p90 latency."""
