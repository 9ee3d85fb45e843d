"""The emulator's pictures: deterministic, visibly patterned, sized by ratio and tier; upscale
doubles the input, remove-background makes it transparent around the subject."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kierouter._images import decode_png, sniff
from kierouter.sim import Emulator


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator whose clock moves only when advanced."""
    async with Emulator(time_scale=1e-6, create_limit=1000) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the emulator's key."""
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    async with httpx.AsyncClient(base_url=emu.base_url, headers=headers) as client:
        yield client


async def images(emu: Emulator, http: httpx.AsyncClient, model: str, **fields: Any) -> list[bytes]:
    """Run one Market task to success and download all its images."""
    body = {"model": model, "input": fields}
    answer = (await http.post("/api/v1/jobs/createTask", json=body)).json()
    assert answer["code"] == 200, answer
    emu.advance(1000)
    record = await http.get("/api/v1/jobs/recordInfo", params={"taskId": answer["data"]["taskId"]})
    urls = json.loads(record.json()["data"]["resultJson"])["resultUrls"]
    return [(await http.get(url)).content for url in urls]


async def test_same_model_prompt_seed_gives_the_same_bytes(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    """Same model+prompt+seed: identical PNG bytes; another seed, prompt or model: different."""
    model = "bytedance/seedream-v4-text-to-image"
    (a,) = await images(emu, http, model, prompt="a red fox", seed=1)
    (b,) = await images(emu, http, model, prompt="a red fox", seed=1)
    (c,) = await images(emu, http, model, prompt="a red fox", seed=2)
    (d,) = await images(emu, http, model, prompt="a blue fox", seed=1)
    (e,) = await images(
        emu, http, "qwen/text-to-image", prompt="a red fox", seed=1, image_size="square"
    )
    assert a == b
    assert len({a, c, d, e}) == 4


async def test_pictures_are_not_blank(emu: Emulator, http: httpx.AsyncClient) -> None:
    """A result has a visible pattern: many distinct colours."""
    (data,) = await images(emu, http, "google/nano-banana", prompt="a garden")
    image = decode_png(data)
    colours = {image.pixels[i : i + 3] for i in range(0, len(image.pixels), 3)}
    assert len(colours) >= 20


@pytest.mark.parametrize(
    ("model", "fields", "size"),
    [
        ("google/nano-banana", {"aspect_ratio": "1:1"}, (128, 128)),
        ("nano-banana-2", {"aspect_ratio": "16:9", "resolution": "4K"}, (256, 144)),
        ("nano-banana-pro", {"aspect_ratio": "9:16", "resolution": "2K"}, (108, 192)),
        ("bytedance/seedream-v4-text-to-image", {"image_size": "portrait_4_3"}, (96, 128)),
        ("seedream/4.5-text-to-image", {"aspect_ratio": "21:9", "quality": "high"}, (256, 110)),
        ("qwen2/text-to-image", {"image_size": "4:3"}, (128, 96)),
    ],
)
async def test_size_follows_ratio_and_tier(
    emu: Emulator,
    http: httpx.AsyncClient,
    model: str,
    fields: dict[str, Any],
    size: tuple[int, int],
) -> None:
    """Long side 128/192/256 px for 1K/2K/4K; the other side follows the ratio or size name."""
    (data,) = await images(emu, http, model, prompt="x", **fields)
    info = sniff(data)
    assert (info.width, info.height) == size


async def test_counts_per_task(emu: Emulator, http: httpx.AsyncClient) -> None:
    """Models that return several images do: max_images, num_images, n, grok's fixed counts."""
    v4 = await images(emu, http, "bytedance/seedream-v4-text-to-image", prompt="x", max_images=3)
    qwen = await images(
        emu, http, "qwen/image-edit", prompt="x", image_url="https://e.x/a.png", num_images="2"
    )
    grok = await images(emu, http, "grok-imagine/text-to-image", prompt="x")
    assert (len(v4), len(qwen), len(grok)) == (3, 2, 6)
    assert len(set(v4)) == 3
    assert emu.stats()["credits_charged"] == 3 * 3.5 + 2 * 8 + 4


async def test_upscale_doubles_an_emulator_image(emu: Emulator, http: httpx.AsyncClient) -> None:
    """crisp-upscale of an emulator result returns the same picture at twice the size."""
    (source,) = await images(emu, http, "google/nano-banana", prompt="x", aspect_ratio="3:2")
    listing = emu.tasks()[-1]["urls"][0]
    (big,) = await images(emu, http, "recraft/crisp-upscale", image=listing)
    small_img, big_img = decode_png(source), decode_png(big)
    assert (big_img.width, big_img.height) == (small_img.width * 2, small_img.height * 2)

    def pixel(image: Any, x: int, y: int) -> bytes:
        start = (y * image.width + x) * image.channels
        return bytes(image.pixels[start : start + 3])

    for x, y in ((0, 0), (5, 7), (small_img.width - 1, small_img.height - 1), (40, 30)):
        assert pixel(big_img, 2 * x, 2 * y) == pixel(small_img, x, y)
        assert pixel(big_img, 2 * x + 1, 2 * y + 1) == pixel(small_img, x, y)


async def test_upscale_of_a_foreign_image_is_still_larger(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    """crisp-upscale of a URL the emulator cannot read returns a 256 px picture (2x its base)."""
    (big,) = await images(emu, http, "recraft/crisp-upscale", image="https://e.x/photo.jpg")
    assert sniff(big)[1:] == (256, 256)


async def test_remove_background_is_transparent_around_the_subject(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    """remove-background returns RGBA: corners fully transparent, the centre opaque."""
    (cut,) = await images(emu, http, "recraft/remove-background", image="https://e.x/photo.jpg")
    image = decode_png(cut)
    assert image.channels == 4
    width, height = image.width, image.height

    def alpha(x: int, y: int) -> int:
        return image.pixels[(y * width + x) * 4 + 3]

    assert alpha(0, 0) == alpha(width - 1, height - 1) == 0
    assert alpha(width // 2, height // 2) == 255
