"""Qwen contract: the recorded Qwen 2 createTask bodies are exactly what the translation produces,
the recorded and documented status/callback bodies parse to the right normalised status, every
body the plugin builds is one KIE's documented field rules accept, and the cards carry the
sheet's prices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kierouter_qwen
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kierouter_qwen import CARDS, MODEL_OPTIONS, STEP_RANGES, QwenProvider

from kierouter import Adaptation, ImageRequest, ModelCard, ValidationError, load_registry
from kierouter._models import ASPECT_RATIOS
from kierouter.provider import MARKET_CREATE_PATH, MARKET_STATUS_PATH, PreparedCall
from kierouter.sim._validation import MARKET_FIELDS, validate_market

FIXTURES = Path(__file__).parent / "fixtures"
PROVIDER = QwenProvider()
BY_ID = {card.id: card for card in CARDS}
IMG = "https://static.aiquickdraw.com/tools/example/1773473208660_6EO8TFjh.webp"


def _exchanges(name: str) -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return list(data["exchanges"])


def _prepare(model: str, request: ImageRequest, seed: int | None = None) -> PreparedCall:
    return PROVIDER.prepare(BY_ID[model], request, seed=seed)


def _images(model: str) -> tuple[str, ...]:
    return (IMG,) if "edit" in BY_ID[model].task_kinds else ()


def test_qwen2_text_to_image_body_matches_recording() -> None:
    """A 16:9 text-to-image request becomes the recorded qwen2 body, byte for byte: the ratio
    string in image_size and nothing else beside the prompt."""
    create = _exchanges("qwen2-text-to-image.json")[0]
    request = ImageRequest(prompt="A serene mountain landscape at sunrise", aspect_ratio="16:9")
    prepared = _prepare("qwen2/text-to-image", request)
    assert prepared.path == create["path"] == MARKET_CREATE_PATH
    assert json.dumps(prepared.body) == json.dumps(create["request"])  # same key order too
    assert prepared.adaptations == () and prepared.seed is None


def test_qwen2_image_edit_body_matches_recording() -> None:
    """An edit of one image at 1:1 asking for PNG becomes the recorded qwen2 edit body, with
    image_url as a one-element array."""
    create = _exchanges("qwen2-image-edit.json")[0]
    request = ImageRequest(
        prompt="Add sunglasses to the subject",
        images=(IMG,),
        aspect_ratio="1:1",
        options={"qwen2/image-edit": {"output_format": "png"}},
    )
    prepared = _prepare("qwen2/image-edit", request)
    assert json.dumps(prepared.body) == json.dumps(create["request"])
    assert prepared.body["input"]["image_url"] == [IMG]


@pytest.mark.parametrize("name", ["qwen2-text-to-image.json", "qwen2-image-edit.json"])
def test_recorded_answers_parse(name: str) -> None:
    """The recorded create answer gives the task id; the recorded read (state waiting) is pending
    with no URLs, its createTime kept, and KIE echoes back exactly the input we send."""
    create, read = _exchanges(name)
    task_id = PROVIDER.parse_create(create["response"]["data"])
    assert task_id == create["response"]["data"]["taskId"]
    assert read["path"] == MARKET_STATUS_PATH and read["query"] == f"taskId={task_id}"
    data = read["response"]["data"]
    status = PROVIDER.parse_status(data, task_id=task_id)
    assert (status.state, status.raw_state, status.urls) == ("pending", "waiting", ())
    assert (status.task_id, status.created_ms, status.completed_ms) == (
        task_id,
        data["createTime"],
        None,
    )
    assert (status.fail_code, status.fail_message) == (None, None)
    param = json.loads(data["param"])
    assert param["model"] == create["request"]["model"]
    assert json.loads(param["input"]) == create["request"]["input"]


def test_documented_callbacks_parse() -> None:
    """KIE's documented Market success and failure callbacks, around the recorded qwen2 task,
    normalise to success with its URL and credits, and to failed with failCode and failMsg."""
    pending = _exchanges("qwen2-text-to-image.json")[1]["response"]["data"]
    url = f"https://tempfile.aiquickdraw.com/r/{pending['taskId']}_1776324000_abc.png"
    done = {
        **pending,
        "state": "success",
        "resultJson": json.dumps({"resultUrls": [url]}),
        "costTime": 21,
        "completeTime": pending["createTime"] + 21_000,
        "creditsConsumed": 6,
    }
    status = PROVIDER.parse_callback(
        {"code": 200, "msg": "Playground task completed successfully.", "data": done}
    )
    assert (status.state, status.task_id, status.urls, status.credits) == (
        "success",
        pending["taskId"],
        (url,),
        6.0,
    )
    failed = PROVIDER.parse_callback(
        {
            "code": 501,
            "msg": "Playground task failed.",
            "data": {
                **pending,
                "state": "fail",
                "failCode": "500",
                "failMsg": "internal error",
                "creditsConsumed": 0,
            },
        }
    )
    assert (failed.state, failed.fail_code, failed.fail_message, failed.urls) == (
        "failed",
        "500",
        "internal error",
        (),
    )


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        ("1:1", "square_hd"),
        ("4:3", "landscape_4_3"),
        ("3:4", "portrait_4_3"),
        ("16:9", "landscape_16_9"),
        ("9:16", "portrait_16_9"),
    ],
)
@pytest.mark.parametrize("model", ["qwen/text-to-image", "qwen/image-edit"])
def test_qwen_image_size_names(model: str, ratio: str, size: str) -> None:
    """Qwen (v1) turns each aspect ratio into KIE's image_size name, with no adaptation."""
    request = ImageRequest(prompt="x", images=_images(model), aspect_ratio=ratio)
    prepared = _prepare(model, request)
    assert prepared.body["input"]["image_size"] == size and prepared.adaptations == ()


@pytest.mark.parametrize(
    ("model", "ratio", "sent"),
    [
        ("qwen/text-to-image", "3:2", "landscape_4_3"),
        ("qwen/text-to-image", "21:9", "landscape_16_9"),
        ("qwen/image-edit", "1:2", "portrait_16_9"),
        ("qwen2/text-to-image", "21:9", "16:9"),
        ("qwen2/text-to-image", "2:3", "3:4"),
        ("qwen2/image-edit", "21:9", None),
        ("qwen2/image-edit", "5:4", "4:3"),
    ],
)
def test_ratios_snap_to_the_models_own(model: str, ratio: str, sent: str | None) -> None:
    """A ratio the model lacks snaps to its nearest one and is reported; one it has (qwen2 edit's
    21:9) goes as is."""
    prepared = _prepare(model, ImageRequest(prompt="x", images=_images(model), aspect_ratio=ratio))
    found = [(a.field, a.requested) for a in prepared.adaptations]
    if sent is None:
        assert prepared.body["input"]["image_size"] == ratio and found == []
    else:
        assert prepared.body["input"]["image_size"] == sent
        assert found == [("aspect_ratio", ratio)]


@pytest.mark.parametrize("model", [c.id for c in CARDS])
def test_no_ratio_sends_no_image_size(model: str) -> None:
    """Without an aspect ratio no image_size is sent, so KIE's own default applies."""
    prepared = _prepare(model, ImageRequest(prompt="x", images=_images(model)))
    assert "image_size" not in prepared.body["input"] and prepared.adaptations == ()


def test_image_to_image_keeps_the_input_shape() -> None:
    """qwen/image-to-image has no image_size: a requested ratio is reported, not sent; the single
    input goes in image_url as a string."""
    request = ImageRequest(prompt="x", images=(IMG,), aspect_ratio="16:9")
    prepared = _prepare("qwen/image-to-image", request)
    assert prepared.body["input"] == {"prompt": "x", "image_url": IMG}
    assert prepared.adaptations == (
        Adaptation(
            "aspect_ratio",
            "16:9",
            None,
            "qwen/image-to-image has no image_size; the result keeps the input image's shape",
        ),
    )


def test_image_edit_full_body() -> None:
    """qwen/image-edit sends image_url as a string, num_images as a string from count, the
    negative prompt, the seed and every tuning option in its documented form."""
    request = ImageRequest(
        prompt="replace the sign's text with 开业大吉",
        images=(IMG,),
        aspect_ratio="9:16",
        count=3,
        negative_prompt="blurry text",
        options={
            "qwen": {"acceleration": "regular", "output_format": "jpg"},
            "qwen/image-edit": {
                "num_inference_steps": 49,
                "guidance_scale": 4,
                "enable_safety_checker": False,
                "nsfw_checker": True,
            },
        },
    )
    prepared = _prepare("qwen/image-edit", request, seed=7)
    assert prepared.body == {
        "model": "qwen/image-edit",
        "input": {
            "prompt": "replace the sign's text with 开业大吉",
            "image_url": IMG,
            "image_size": "portrait_16_9",
            "output_format": "jpeg",
            "negative_prompt": "blurry text",
            "num_images": "3",
            "seed": 7,
            "num_inference_steps": 49,
            "guidance_scale": 4,
            "acceleration": "regular",
            "enable_safety_checker": False,
            "nsfw_checker": True,
        },
    }
    assert (prepared.seed, prepared.seed_ignored) == (7, False)


def test_text_to_image_tuning_and_callback_url() -> None:
    """qwen/text-to-image takes up to 250 steps, an explicit image_size name, and callBackUrl at
    the top level."""
    request = ImageRequest(
        prompt="a poster that says SALE",
        options={
            "qwen/text-to-image": {
                "image_size": "square",
                "num_inference_steps": 250,
                "acceleration": "high",
            }
        },
    )
    prepared = PROVIDER.prepare(
        BY_ID["qwen/text-to-image"], request, callback_url="https://hooks.example/kie?job=1"
    )
    assert prepared.body == {
        "model": "qwen/text-to-image",
        "callBackUrl": "https://hooks.example/kie?job=1",
        "input": {
            "prompt": "a poster that says SALE",
            "image_size": "square",
            "num_inference_steps": 250,
            "acceleration": "high",
        },
    }


@pytest.mark.parametrize(
    ("value", "v1", "v2"),
    [
        ("16:9", "landscape_16_9", "16:9"),
        ("landscape_4_3", "landscape_4_3", "4:3"),
        ("square_hd", "square_hd", "1:1"),
    ],
)
def test_family_image_size_in_either_spelling(value: str, v1: str, v2: str) -> None:
    """One family-wide image_size, as a ratio or a name, reaches each model in its own spelling:
    names on Qwen, ratio strings on Qwen 2; no adaptation, since it was asked for explicitly."""
    request = ImageRequest(prompt="x", options={"qwen": {"image_size": value}})
    for model, sent in (("qwen/text-to-image", v1), ("qwen2/text-to-image", v2)):
        prepared = _prepare(model, request)
        assert prepared.body["input"]["image_size"] == sent and prepared.adaptations == ()


def test_image_to_image_strength() -> None:
    """qwen/image-to-image sends strength (0–1) when asked."""
    request = ImageRequest(
        prompt="x", images=(IMG,), options={"qwen/image-to-image": {"strength": 0.35}}
    )
    assert _prepare("qwen/image-to-image", request).body["input"]["strength"] == 0.35


def test_step_ranges_are_kies() -> None:
    """Steps run 2–250 on text-to-image and image-to-image, 2–49 on image-edit (not the sheet's
    1–50)."""
    assert STEP_RANGES == {
        "qwen/text-to-image": (2, 250),
        "qwen/image-to-image": (2, 250),
        "qwen/image-edit": (2, 49),
    }


def test_qwen2_drops_what_it_lacks() -> None:
    """Qwen 2 has no negative prompt (reported, not sent); a 4K request is reported as 1K; the
    seed is sent."""
    request = ImageRequest(prompt="x", negative_prompt="blurry", resolution="4K", seed=3)
    prepared = _prepare("qwen2/text-to-image", request, seed=3)
    assert prepared.body["input"] == {"prompt": "x", "seed": 3}
    assert [(a.field, a.requested, a.sent) for a in prepared.adaptations] == [
        ("negative_prompt", "blurry", None),
        ("resolution", "4K", "1K"),
    ]


def test_cards_match_the_sheet() -> None:
    """Ids, kinds, prices (the sheet's 6–8), latencies, quality, strengths (text, Chinese) and
    languages are the card table's."""
    table = {
        "qwen/text-to-image": (("generate",), 6, 25, 50, 7.5, "text,chinese", 0.92),
        "qwen/image-to-image": (("edit",), 7, 30, 60, 7.5, "text,chinese,editing", 0.92),
        "qwen/image-edit": (("edit",), 8, 30, 60, 8.0, "text,chinese,editing", 0.92),
        "qwen2/text-to-image": (("generate",), 6, 20, 45, 8.0, "text,chinese", 0.92),
        "qwen2/image-edit": (("edit",), 8, 25, 55, 8.0, "text,chinese,editing", 0.88),
    }
    assert set(BY_ID) == set(table) == set(MODEL_OPTIONS)
    for model, (kinds, credits, p50, p90, quality, strengths, success) in table.items():
        card = BY_ID[model]
        assert card.family == "qwen" and card.languages == ("en", "zh")
        assert (card.task_kinds, card.pricing.credits, card.latency_p50, card.latency_p90) == (
            kinds,
            credits,
            p50,
            p90,
        )
        assert (card.quality, ",".join(card.strengths), card.success_rate) == (
            quality,
            strengths,
            success,
        )
        assert card.capabilities.seed and not card.capabilities.mask
        assert card.capabilities.negative_prompt == model.startswith("qwen/")
        assert 6 <= card.pricing.credits <= 8
    edit = BY_ID["qwen/image-edit"]
    assert edit.credits_for(ImageRequest(prompt="x", images=(IMG,), count=4)) == 32.0


def test_registers_through_the_hook() -> None:
    """The plugin registers its five cards, each with a QwenProvider, and they round-trip as
    JSON."""
    registry = load_registry([kierouter_qwen], entry_points=False)
    (record,) = registry.plugins
    assert record.ok and sorted(record.models) == sorted(BY_ID)
    for model in BY_ID:
        assert isinstance(registry.provider(model), QwenProvider)
        card = registry.card(model)
        assert msgspec.json.decode(msgspec.json.encode(card), type=ModelCard) == card


_OPTION_VALUES = {
    "image_size": st.sampled_from(("square", "square_hd", "landscape_16_9", "16:9", "21:9", "x")),
    "num_inference_steps": st.sampled_from((1, 2, 30, 49, 50, 250, 251, 30.5)),
    "guidance_scale": st.sampled_from((0, 2.5, 20, 20.5, -1, "4")),
    "acceleration": st.sampled_from(("none", "regular", "high", "turbo")),
    "strength": st.sampled_from((0, 0.8, 1, 1.5)),
    "output_format": st.sampled_from(("png", "jpeg", "jpg", "webp")),
    "enable_safety_checker": st.sampled_from((True, False, "yes")),
    "nsfw_checker": st.sampled_from((True, False, 0)),
}
OPTIONS = st.dictionaries(st.sampled_from(sorted(_OPTION_VALUES)), st.none(), max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({key: _OPTION_VALUES[key] for key in keys})
)
REQUESTS = st.builds(
    ImageRequest,
    prompt=st.sampled_from(
        ("a red fox", "a red fox", "写着福字的春联", "", "x" * 801, "y" * 2001, "z" * 5001)
    )
    | st.text(min_size=1, max_size=9),
    aspect_ratio=st.sampled_from((None, *ASPECT_RATIOS, "7:3")),
    resolution=st.sampled_from((None, "1K", "2K", "4K")),
    count=st.sampled_from((1, 1, 1, 1, 2, 4, 5)),
    seed=st.none() | st.integers(0, 2**31 - 1),
    images=st.sampled_from((0, 0, 1, 1, 1, 1, 2)).map(
        lambda n: tuple(f"https://e.x/{i}.png" for i in range(n))
    ),
    negative_prompt=st.sampled_from((None, None, "blurry", "n" * 501)),
    options=st.sampled_from(("qwen", "one")).flatmap(
        lambda where: OPTIONS.map(lambda o: {where: o} if o else {})
    ),
)


@pytest.mark.parametrize("model", [c.id for c in CARDS])
@settings(max_examples=300, deadline=None)
@given(request=REQUESTS)
def test_every_body_sent_is_one_kie_accepts(model: str, request: ImageRequest) -> None:
    """Whatever the canonical request, the plugin either refuses it with ValidationError or builds
    a body that passes KIE's documented field rules (as the emulator enforces them) and carries
    only fields KIE documents for that model."""
    if "one" in request.options:
        request = msgspec.structs.replace(request, options={model: request.options["one"]})
    try:
        prepared = _prepare(model, request, seed=request.seed)
    except ValidationError:
        return
    validate_market(prepared.body)
    fields = prepared.body["input"]
    assert set(fields) <= set(MARKET_FIELDS[model])
    assert fields["prompt"] == request.prompt
    image = fields.get("image_url")
    assert ([image] if isinstance(image, str) else image or []) == list(request.images)
    assert (prepared.seed is not None) == ("seed" in fields)
