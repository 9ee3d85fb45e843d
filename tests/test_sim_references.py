"""Reference images reach the models that take them: uploads answer as recorded, field by field,
and serve the bytes back; every edit-capable model's result takes the average colour of the
file it was given (PNG or JPEG), so a test can tell the right file reached the right model;
an unknown or expired emulator URL fails the task; another host's URL is never fetched."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kierouter._images import decode_png, encode_png
from kierouter.sim import Emulator
from kierouter.sim._images import mean_colour
from kierouter.sim._jpeg import jpeg_preview

FIXTURES = Path(__file__).parent / "fixtures"
RECORDINGS = FIXTURES / "kie-recordings"
IMAGES = FIXTURES / "images"
# the mean colours Pillow 13 decodes from the fixture JPEGs (see fixtures/images/NOTICE)
JPEG_MEANS = {
    "photo-420.jpg": (119.96, 119.53, 100.03),
    "photo-444.jpg": (120.03, 119.5, 100.06),
    "photo-restart.jpg": (120.03, 119.51, 99.98),
    "photo-grey.jpg": (117.44, 117.44, 117.44),
}
Body = Callable[[str], dict[str, Any]]
MARKET_EDITS: dict[str, Body] = {
    "bytedance/seedream-v4-edit": lambda url: {"image_urls": [url]},
    "seedream/4.5-edit": lambda url: {"image_urls": [url], "quality": "basic"},
    "seedream/5-lite-image-to-image": lambda url: {"image_urls": [url], "quality": "basic"},
    "google/nano-banana-edit": lambda url: {"image_urls": [url]},
    "nano-banana-pro": lambda url: {"image_input": [url]},
    "nano-banana-2": lambda url: {"image_input": [url]},
    "qwen/image-edit": lambda url: {"image_url": url},
    "qwen/image-to-image": lambda url: {"image_url": url},
    "qwen2/image-edit": lambda url: {"image_url": [url]},
    "gpt-image-2-image-to-image": lambda url: {"input_urls": [url]},
    "grok-imagine/image-to-image": lambda url: {"image_urls": [url]},
    "wan/2-7-image": lambda url: {"input_urls": [url], "n": 1},
    "recraft/crisp-upscale": lambda url: {"image": url},
    "recraft/remove-background": lambda url: {"image": url},
}
# family -> create path, record path, body for a reference URL
LEGACY_EDITS: dict[str, tuple[str, str, Body]] = {
    "flux-kontext": (
        "/api/v1/flux/kontext/generate",
        "/api/v1/flux/kontext/record-info",
        lambda url: {"prompt": "make it night", "inputImage": url},
    ),
    "gpt4o-image": (
        "/api/v1/gpt4o-image/generate",
        "/api/v1/gpt4o-image/record-info",
        lambda url: {"prompt": "make it night", "size": "1:1", "filesUrl": [url]},
    ),
    "midjourney": (
        "/api/v1/mj/generate",
        "/api/v1/mj/record-info",
        lambda url: {
            "taskType": "mj_img2img",
            "prompt": "night",
            "speed": "fast",
            "fileUrls": [url],
        },
    ),
}


def reference_png(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    """A PNG of ``colour`` with a +/-12 checkerboard on it (mean exactly ``colour``)."""
    width, height = size
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            delta = 12 if (x // 4 + y // 4) % 2 else -12
            pixels += bytes(max(0, min(255, v + delta)) for v in colour)
    return encode_png(width, height, bytes(pixels), alpha=False)


def mean_of(png: bytes, *, opaque_only: bool = False) -> tuple[float, ...]:
    """The mean RGB of a PNG (of its opaque pixels only, if asked)."""
    image = decode_png(png)
    step = image.channels
    pixels = image.pixels
    keep = [i for i in range(0, len(pixels), step) if not opaque_only or pixels[i + 3] == 255]
    return tuple(sum(pixels[i + c] for i in keep) / len(keep) for c in range(3))


def close(a: tuple[float, ...], b: tuple[float, ...], within: float) -> bool:
    """Whether two colours differ by at most ``within`` on every channel."""
    return all(abs(x - y) <= within for x, y in zip(a, b, strict=True))


async def upload(http: httpx.AsyncClient, data: bytes, name: str, *, stream: bool = False) -> str:
    """Upload ``data`` (multipart or base64); its downloadUrl."""
    if stream:
        answer = await http.post(
            "/api/file-stream-upload",
            data={"uploadPath": "refs"},
            files={"file": (name, data, "application/octet-stream")},
        )
    else:
        body = {"base64Data": base64.b64encode(data).decode(), "uploadPath": "refs",
                "fileName": name}  # fmt: skip
        answer = await http.post("/api/file-base64-upload", json=body)
    url: str = answer.json()["data"]["downloadUrl"]
    return url


async def results(
    emu: Emulator, http: httpx.AsyncClient, family_or_model: str, url: str
) -> tuple[dict[str, Any], list[bytes]]:
    """Run one edit with reference ``url`` to its end: its final record and its images."""
    if family_or_model in LEGACY_EDITS:
        create, record, body = LEGACY_EDITS[family_or_model]
        payload = body(url)
    else:
        create, record = "/api/v1/jobs/createTask", "/api/v1/jobs/recordInfo"
        fields = MARKET_EDITS[family_or_model](url)
        payload = {"model": family_or_model, "input": {"prompt": "make it night", **fields}}
    answer = (await http.post(create, json=payload)).json()
    assert answer["code"] == 200, answer
    emu.advance(10_000)
    data = (await http.get(record, params={"taskId": answer["data"]["taskId"]})).json()["data"]
    if "resultJson" in data:
        urls = json.loads(data["resultJson"])["resultUrls"] if data["resultJson"] else []
    elif "resultInfoJson" in data:
        urls = [r["resultUrl"] for r in (data["resultInfoJson"] or {}).get("resultUrls", [])]
    elif "resultImageUrl" in (data["response"] or {}):
        urls = [data["response"]["resultImageUrl"]]
    else:
        urls = list((data["response"] or {}).get("resultUrls", []))
    return data, [(await http.get(u)).content for u in urls]


# -- uploads, as recorded ---------------------------------------------------------------------


def recorded(name: str) -> dict[str, Any]:
    """The one exchange of an upload recording."""
    exchange: dict[str, Any] = json.loads((RECORDINGS / name).read_text())["exchanges"][0]
    return exchange


@pytest.mark.parametrize("name", ["file-uploads__base64.json", "file-base64-upload.json"])
async def test_base64_upload_matches_the_recording_field_by_field(
    emu: Emulator, http: httpx.AsyncClient, name: str
) -> None:
    """Every field of the answer is the recorded one, in the recorded order, except what is
    the account's or the moment's: the account id in filePath, the host, the upload time."""
    exchange = recorded(name)
    answer = (await http.post(exchange["path"], json=exchange["request"])).json()
    want = exchange["response"]
    assert list(answer) == list(want) and list(answer["data"]) == list(want["data"])
    assert {k: answer[k] for k in ("success", "code", "msg")} == {
        k: want[k] for k in ("success", "code", "msg")
    }
    for field in ("success", "fileName", "fileSize", "mimeType"):
        assert answer["data"][field] == want["data"][field], field
    account = re.compile(r"^kieai/\d+/")
    assert account.sub("", answer["data"]["filePath"]) == account.sub("", want["data"]["filePath"])
    assert answer["data"]["downloadUrl"] == f"{emu.base_url}/uploads/{answer['data']['filePath']}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", answer["data"]["uploadedAt"])
    served = await http.get(answer["data"]["downloadUrl"])
    assert served.content == base64.b64decode(exchange["request"]["base64Data"])
    assert served.headers["content-type"] == want["data"]["mimeType"]


async def test_uploads_are_counted_by_endpoint(emu: Emulator, http: httpx.AsyncClient) -> None:
    """Each upload is counted in stats, with its bytes and its endpoint; none is a create."""
    png = reference_png((10, 20, 30))
    first = await upload(http, png, "a.png")
    await upload(http, png, "b.png", stream=True)
    await http.post("/api/file-url-upload", json={"fileUrl": first, "uploadPath": "copies"})
    stats = emu.stats()
    assert stats["uploads"] == 3 and stats["upload_bytes"] == 3 * len(png)
    assert stats["uploads_by_endpoint"] == {"base64": 1, "stream": 1, "url": 1}
    assert stats["created_total"] == 0


async def test_url_upload_never_fetches_another_host(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    """file-url-upload of a foreign URL stores a stand-in PNG drawn from the URL."""
    body = {"fileUrl": "https://example.com/cat.png", "uploadPath": "x"}
    first = (await http.post("/api/file-url-upload", json=body)).json()["data"]
    again = (await http.post("/api/file-url-upload", json=body)).json()["data"]
    stand_in = (await http.get(first["downloadUrl"])).content
    assert first["mimeType"] == "image/png" and decode_png(stand_in).width > 0
    assert stand_in == (await http.get(again["downloadUrl"])).content


# -- JPEG block colours -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(JPEG_MEANS))
def test_jpeg_block_colours_average_like_a_full_decoder(name: str) -> None:
    """The DC-coefficient picture of a baseline JPEG has the mean a full decoder finds."""
    blocks = jpeg_preview((IMAGES / name).read_bytes())
    assert blocks is not None
    assert close(mean_colour(blocks), JPEG_MEANS[name], 1.0)
    assert blocks.width * 16 >= 96 and blocks.height * 16 >= 64


def test_unreadable_jpegs_give_none_never_an_error() -> None:
    """Progressive JPEGs, other formats and garbage give None; a cut file never raises."""
    progressive = (IMAGES / "photo-progressive.jpg").read_bytes()
    assert jpeg_preview(progressive) is None
    assert jpeg_preview(reference_png((1, 2, 3))) is None
    assert jpeg_preview(b"\xff\xd8\xff\xdb\x00\x02garbage") is None
    whole = (IMAGES / "photo-420.jpg").read_bytes()
    for cut in range(0, len(whole), 97):
        jpeg_preview(whole[:cut])


# -- edits read their reference ---------------------------------------------------------------


@pytest.mark.parametrize("model", [*MARKET_EDITS, *LEGACY_EDITS])
async def test_every_edit_model_takes_its_references_colour(
    emu: Emulator, http: httpx.AsyncClient, model: str
) -> None:
    """Two uploads of different colours: each edit's every result has its own reference's
    average colour (remove-background: its kept pixels), so the right file reached the model."""
    teal, orange = (30, 160, 140), (230, 120, 40)
    for colour in (teal, orange):
        url = await upload(http, reference_png(colour), f"{colour[0]}.png")
        data, images = await results(emu, http, model, url)
        assert images, data
        for png in images:
            seen = mean_of(png, opaque_only=model == "recraft/remove-background")
            assert close(seen, colour, 2.0), (model, colour, seen)


@pytest.mark.parametrize(
    "model", ["seedream/4.5-edit", "qwen/image-edit", "flux-kontext", "recraft/crisp-upscale"]
)
@pytest.mark.parametrize("name", ["photo-420.jpg", "photo-grey.jpg"])
async def test_a_jpeg_reference_is_read(
    emu: Emulator, http: httpx.AsyncClient, model: str, name: str
) -> None:
    """A JPEG upload (streamed) gives results with the JPEG's average colour; upscale draws its
    block picture at the JPEG's size, doubled."""
    url = await upload(http, (IMAGES / name).read_bytes(), name, stream=True)
    _, images = await results(emu, http, model, url)
    assert images
    for png in images:
        assert close(mean_of(png), JPEG_MEANS[name], 3.0), (model, name, mean_of(png))
    if model == "recraft/crisp-upscale":
        image = decode_png(images[0])
        assert (image.width, image.height) == (192, 128)


async def test_unknown_or_expired_reference_fails_the_task(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    """KIE cannot download an expired upload or an unknown emulator URL: the task is created,
    then fails (Market failCode "400", 4o errorCode 451), and nothing is charged."""
    url = await upload(http, reference_png((1, 2, 3)), "old.png")
    emu.advance(3 * 86400 + 1)
    expired, _ = await results(emu, http, "google/nano-banana-edit", url)
    missing, _ = await results(emu, http, "qwen/image-edit", f"{emu.base_url}/uploads/nope.png")
    gpt4o, _ = await results(emu, http, "gpt4o-image", url)
    assert (expired["state"], expired["failCode"]) == ("fail", "400")
    assert url in expired["failMsg"]
    assert (missing["state"], missing["failCode"]) == ("fail", "400")
    assert (gpt4o["successFlag"], gpt4o["errorCode"]) == (2, 451)
    assert emu.charges()["total"] == 0


async def test_a_foreign_reference_is_not_fetched(emu: Emulator, http: httpx.AsyncClient) -> None:
    """A reference on another host succeeds, drawn from the request as a text-to-image result
    would be (no network in tests): the same URL gives the same picture, another URL another."""
    first, (a,) = await results(emu, http, "qwen/image-edit", "https://example.com/a.png")
    _, (again,) = await results(emu, http, "qwen/image-edit", "https://example.com/a.png")
    _, (other,) = await results(emu, http, "qwen/image-edit", "https://example.com/b.png")
    assert first["state"] == "success"
    assert a == again != other
