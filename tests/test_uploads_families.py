"""A local PNG and a local JPEG edited through every edit-capable family in the emulator: the
result's colour tells that each file reached the model it was sent to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kierouter import ImageRequest, KieClient, Router
from kierouter._images import decode_png, encode_png
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator

SCALE = 1000.0
FIXTURES = Path(__file__).parent / "fixtures" / "images"
RED = (200, 30, 30)
TEAL = (20, 150, 160)  # tests/fixtures/images/teal.jpg
#: Every family that takes a reference image (and each way its models name the field), with
#: the task each model runs.
EDITORS = [
    ("bytedance/seedream-v4-edit", "edit"),
    ("seedream/5-lite-image-to-image", "edit"),
    ("google/nano-banana-edit", "edit"),  # image_urls
    ("nano-banana-pro", "edit"),  # image_input
    ("qwen/image-edit", "edit"),  # image_url, a string
    ("qwen2/image-edit", "edit"),  # image_url, a one-element list
    ("flux-kontext-pro", "edit"),
    ("gpt4o-image", "edit"),
    ("midjourney", "edit"),
    ("recraft/crisp-upscale", "upscale"),
    ("recraft/remove-background", "remove-background"),
]


def _plugins() -> list[Any]:
    import kierouter_flux_kontext
    import kierouter_gpt4o_image
    import kierouter_midjourney
    import kierouter_nano_banana
    import kierouter_qwen
    import kierouter_recraft
    import kierouter_seedream

    return [
        kierouter_seedream, kierouter_nano_banana, kierouter_qwen, kierouter_flux_kontext,
        kierouter_gpt4o_image, kierouter_midjourney, kierouter_recraft,
    ]  # fmt: skip


def mean_colour(path: str) -> tuple[float, float, float]:
    """The average RGB colour of a result PNG (its opaque pixels when it has alpha)."""
    image = decode_png(Path(path).read_bytes())
    step = image.channels
    pixels = [image.pixels[i : i + step] for i in range(0, len(image.pixels), step)]
    if step == 4:
        pixels = [p for p in pixels if p[3] > 127] or pixels
    return tuple(sum(p[c] for p in pixels) / len(pixels) for c in range(3))  # type: ignore[return-value]


def near(found: tuple[float, ...], want: tuple[int, ...], within: float = 12.0) -> bool:
    """Whether two colours are within ``within`` per channel."""
    return all(abs(f - w) <= within for f, w in zip(found, want, strict=True))


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[Router]:
    """A router of every shipped plugin on a fresh emulator, downloading into ``tmp_path``."""
    async with Emulator(time_scale=SCALE, create_limit=500, create_window=1.0) as emu:
        client = KieClient(emu.api_key, base_url=emu.base_url, create_limit=500, create_window=1)
        async with Router(
            _plugins(),
            client=client,
            latency_scale=1 / SCALE,
            allow_private_downloads=True,
            out_dir=tmp_path / "out",
        ) as built:
            yield built
        await client.aclose()


@pytest.mark.parametrize(("model", "task"), EDITORS, ids=[m for m, _ in EDITORS])
async def test_a_local_png_and_jpeg_reach_the_model(
    router: Router, tmp_path: Path, model: str, task: str
) -> None:
    """The PNG's edit comes back red, the JPEG's teal, from the model they were pinned to."""
    photo = tmp_path / "photo.png"
    photo.write_bytes(encode_png(64, 64, bytes(RED) * 64 * 64))
    family = router.registry.card(model).family
    policy = Policy(name="pin", ladder=(family,), constraints=Constraints(allow=(model,)))

    async def edit(image: Path) -> Any:
        prompt = "make it night" if task == "edit" else ""
        request = ImageRequest(prompt=prompt, task=task, images=[image])  # type: ignore[arg-type]
        return await router.generate(request, policy=policy)

    from_png, from_jpeg = await asyncio.gather(edit(photo), edit(FIXTURES / "teal.jpg"))
    for result, colour in ((from_png, RED), (from_jpeg, TEAL)):
        assert result.served_model == model
        assert result.files
        for file in result.files:
            assert near(mean_colour(file.path), colour), (model, mean_colour(file.path), colour)
    assert router.uploads.counts["uploaded"] == 2
