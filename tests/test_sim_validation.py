"""Input validation as KIE documents it: a wrong request fails with KIE's code, a right one is
accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kierouter.sim import Emulator

MARKET = "/api/v1/jobs/createTask"
GPT4O = "/api/v1/gpt4o-image/generate"
FLUX = "/api/v1/flux/kontext/generate"
MJ = "/api/v1/mj/generate"
URL = "https://example.com/a.png"


def market(model: str, **fields: Any) -> dict[str, Any]:
    """A Market body."""
    return {"model": model, "input": fields}


REFUSED = [
    # (path, body, code, words in msg)
    (MARKET, market("no/such-model", prompt="x"), 422, "no/such-model"),
    (MARKET, {"input": {"prompt": "x"}}, 422, "model"),
    (MARKET, {"model": "google/nano-banana"}, 422, "input"),
    (MARKET, market("google/nano-banana"), 422, "input.prompt"),
    (MARKET, market("seedream/4.5-text-to-image", prompt="a cat"), 422, "input.quality"),
    (MARKET, market("seedream/5-lite-text-to-image", prompt="a cat", aspect_ratio="16:9"), 422,
     "input.quality"),
    (MARKET, market("seedream/5-lite-text-to-image", prompt="ab", quality="basic"), 422, "minimum"),
    (MARKET, market("seedream/4.5-text-to-image", prompt="x", quality="ultra"), 422, "basic"),
    (MARKET, market("bytedance/seedream-v4-text-to-image", prompt="x", image_size="huge"), 422,
     "square_hd"),
    (MARKET, market("bytedance/seedream-v4-text-to-image", prompt="x", max_images=7), 422,
     "max_images"),
    (MARKET, market("bytedance/seedream-v4-edit", prompt="x"), 422, "input.image_urls"),
    (MARKET, market("bytedance/seedream-v4-edit", prompt="x", image_urls=[URL] * 11), 422,
     "at most 10"),
    (MARKET, market("nano-banana-pro", prompt="x", image_input=[URL] * 9), 422, "at most 8"),
    (MARKET, market("nano-banana-pro", prompt="x", output_format="jpeg"), 422, "jpg"),
    (MARKET, market("nano-banana-2", prompt="x", resolution="8K"), 422, "resolution"),
    (MARKET, market("google/nano-banana", prompt="x" * 5001), 422, "maximum is 5000"),
    (MARKET, market("qwen/text-to-image", prompt="x", num_inference_steps=1), 422, "2..250"),
    (MARKET, market("qwen/image-edit", prompt="x", image_url=URL, num_inference_steps=50), 422,
     "2..49"),
    (MARKET, market("qwen/image-edit", prompt="x", image_url=URL, num_images=2), 422,
     "num_images"),
    (MARKET, market("qwen/text-to-image", prompt="x", acceleration="fast"), 422, "regular"),
    (MARKET, market("qwen/image-to-image", prompt="x", image_url=URL, strength=1.5), 422, "0..1"),
    (MARKET, market("qwen2/text-to-image", prompt="x" * 801), 422, "maximum is 800"),
    (MARKET, market("recraft/crisp-upscale"), 422, "input.image"),
    (MARKET, market("recraft/remove-background", image="not a url"), 422, "URL"),
    (MARKET, market("gpt-image-2-text-to-image", prompt="x", aspect_ratio="1:1", resolution="4K"),
     422, "4K"),
    (MARKET, market("gpt-image-2-text-to-image", prompt="x", resolution="2K"), 422, "auto"),
    (MARKET, market("grok-imagine/image-to-image", prompt="x", image_urls=[URL, URL]), 422,
     "at most 1"),
    (MARKET, market("wan/2-7-image", prompt="x", n=6), 422, "enable_sequential"),
    (MARKET, {"model": "google/nano-banana", "callBackUrl": "ftp://x", "input": {"prompt": "x"}},
     422, "callBackUrl"),
    (GPT4O, {"prompt": "x"}, 422, "size"),
    (GPT4O, {"prompt": "x", "size": "16:9"}, 422, "size"),
    (GPT4O, {"size": "1:1"}, 422, "prompt or filesUrl"),
    (GPT4O, {"prompt": "x", "size": "1:1", "nVariants": 3}, 422, "nVariants"),
    (GPT4O, {"prompt": "x", "size": "1:1", "filesUrl": [URL] * 6}, 422, "at most 5"),
    (GPT4O, {"prompt": "x", "size": "1:1", "fallbackModel": "DALLE"}, 422, "FLUX_MAX"),
    (FLUX, {"model": "flux-kontext-pro"}, 422, "prompt"),
    (FLUX, {"prompt": "x", "model": "flux-kontext-ultra"}, 422, "flux-kontext-max"),
    (FLUX, {"prompt": "x", "safetyTolerance": 7}, 500, "safetyTolerance"),
    (FLUX, {"prompt": "x", "inputImage": URL, "safetyTolerance": 3}, 500, "0..2"),
    (FLUX, {"prompt": "x", "aspectRatio": "5:4"}, 422, "aspectRatio"),
    (MJ, {"prompt": "x", "speed": "fast"}, 422, "taskType"),
    (MJ, {"taskType": "mj_txt2img", "prompt": "x", "speed": "Fast"}, 422, "relaxed"),
    (MJ, {"taskType": "mj_txt2img", "prompt": "x"}, 422, "speed"),
    (MJ, {"taskType": "mj_txt2img", "prompt": "x", "speed": "fast", "version": "Niji6"}, 422,
     "niji6"),
    (MJ, {"taskType": "mj_txt2img", "prompt": "x", "speed": "fast", "stylization": 75}, 422,
     "multiple of 50"),
    (MJ, {"taskType": "mj_txt2img", "prompt": "x", "speed": "fast", "weirdness": 3100}, 422,
     "0..3000"),
    (MJ, {"taskType": "mj_txt2img", "prompt": "x", "speed": "fast", "variety": 7}, 422,
     "multiple of 5"),
    (MJ, {"taskType": "mj_img2img", "prompt": "x", "speed": "fast"}, 422, "fileUrls"),
    (MJ, {"taskType": "mj_video", "prompt": "x", "fileUrls": [URL, URL], "motion": "low"}, 422,
     "exactly one"),
    (MJ, {"taskType": "mj_txt2img", "prompt": "x", "speed": "fast", "ow": 5}, 422, "ow"),
    (MJ, {"taskType": "mj_txt2img", "prompt": "x" * 2001, "speed": "fast"}, 422, "2000"),
]  # fmt: skip

ACCEPTED = [
    (MARKET, market("bytedance/seedream-v4-text-to-image", prompt="x", image_size="landscape_21_9",
                    image_resolution="4K", max_images=2, seed=3)),
    (MARKET, market("seedream/4.5-edit", prompt="x", quality="high", image_urls=[URL] * 14)),
    (MARKET, market("google/nano-banana", prompt="x", image_size="auto", output_format="jpeg")),
    (MARKET, market("google/nano-banana-edit", prompt="x", image_urls=[URL])),
    (MARKET, market("nano-banana-2", prompt="x", aspect_ratio="8:1", resolution="4K",
                    image_input=[])),
    (MARKET, market("qwen/image-edit", prompt="x", image_url=URL, num_inference_steps=49,
                    num_images="4", acceleration="high")),
    (MARKET, market("qwen2/image-edit", prompt="x", image_url=URL, image_size="21:9")),
    (MARKET, market("qwen2/image-edit", prompt="x", image_url=[URL])),
    (MARKET, market("recraft/remove-background", image=URL)),
    (MARKET, market("wan/2-7-image-pro", prompt="x", n=12, enable_sequential=True)),
    (MARKET, market("gpt-image-2-image-to-image", prompt="x", input_urls=[URL],
                    aspect_ratio="4:5")),
    (GPT4O, {"filesUrl": [URL], "size": "2:3", "nVariants": "2", "maskUrl": URL}),
    (FLUX, {"prompt": "x", "inputImage": URL, "safetyTolerance": 2, "outputFormat": "png"}),
    (FLUX, {"prompt": "x", "safetyTolerance": 6}),
    (MJ, {"taskType": "mj_img2img", "prompt": "x", "speed": "relaxed", "fileUrls": [URL],
          "stylization": 1000, "weirdness": 3000, "variety": 100, "version": "7"}),
    (MJ, {"taskType": "mj_omni_reference", "prompt": "x", "fileUrl": URL, "ow": 500}),
    (MJ, {"taskType": "mj_video", "prompt": "x", "fileUrls": [URL], "motion": "high"}),
]  # fmt: skip


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A client bound to a fresh emulator with a generous create limit."""
    async with Emulator(create_limit=1000) as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        async with httpx.AsyncClient(base_url=emu.base_url, headers=headers) as client:
            yield client


@pytest.mark.parametrize(("path", "body", "code", "words"), REFUSED)
async def test_invalid_requests_fail_like_kie(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], code: int, words: str
) -> None:
    """Each invalid request answers HTTP 200 with KIE's code and a message naming the problem."""
    answer = await http.post(path, json=body)
    assert answer.status_code == 200
    assert answer.json()["code"] == code
    assert words in answer.json()["msg"]
    assert answer.json()["data"] is None


@pytest.mark.parametrize(("path", "body"), ACCEPTED)
async def test_valid_requests_are_accepted(
    http: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    """Documented edge values are accepted."""
    answer = await http.post(path, json=body)
    assert answer.json()["code"] == 200, answer.json()


async def test_body_that_is_not_json_is_a_400(http: httpx.AsyncClient) -> None:
    """A body that does not parse as JSON answers code 400."""
    answer = await http.post(
        MARKET, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.json()["code"] == 400
