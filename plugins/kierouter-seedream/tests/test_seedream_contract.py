"""Seedream contract: the recorded createTask bodies are exactly what the translation produces,
recorded and documented status/callback bodies parse to the right normalised status, and the
cards carry the team's card table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kierouter_seedream
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kierouter_seedream import CARDS, SeedreamProvider

from kierouter import Adaptation, ImageRequest, ModelCard, ValidationError, load_registry
from kierouter._models import ASPECT_RATIOS
from kierouter.provider import MARKET_CREATE_PATH, PreparedCall
from kierouter.sim._validation import validate_market

FIXTURES = Path(__file__).parent / "fixtures"
PROVIDER = SeedreamProvider()
BY_ID = {card.id: card for card in CARDS}


def _exchanges(name: str) -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return list(data["exchanges"])


def _prepare(model: str, request: ImageRequest, seed: int | None = None) -> PreparedCall:
    return PROVIDER.prepare(BY_ID[model], request, seed=seed)


def test_text_to_image_body_matches_recording() -> None:
    """The canonical 16:9 text-to-image request becomes the recorded 5 Lite body, byte for byte."""
    create = _exchanges("seedream-5-lite-text-to-image.json")[0]
    request = ImageRequest(
        prompt="A serene mountain landscape at sunrise, photorealistic", aspect_ratio="16:9"
    )
    prepared = _prepare("seedream/5-lite-text-to-image", request)
    assert prepared.path == create["path"] == MARKET_CREATE_PATH
    assert prepared.body == create["request"]
    assert json.dumps(prepared.body) == json.dumps(create["request"])  # same key order too
    assert prepared.adaptations == ()


@pytest.mark.parametrize("aspect_ratio", ["1:1", None])
def test_image_to_image_body_matches_recording(aspect_ratio: str | None) -> None:
    """An edit with one reference image becomes the recorded 5 Lite i2i body (1:1 by default)."""
    create = _exchanges("seedream-5-lite-image-to-image.json")[0]
    recorded_input = create["request"]["input"]
    request = ImageRequest(
        prompt=recorded_input["prompt"],
        images=tuple(recorded_input["image_urls"]),
        aspect_ratio=aspect_ratio,
    )
    prepared = _prepare("seedream/5-lite-image-to-image", request)
    assert json.dumps(prepared.body) == json.dumps(create["request"])


@pytest.mark.parametrize(
    "name", ["seedream-5-lite-text-to-image.json", "seedream-5-lite-image-to-image.json"]
)
def test_recorded_answers_parse(name: str) -> None:
    """Recorded create answers give the task id; every poll is pending until the last, a success."""
    exchanges = _exchanges(name)
    task_id = PROVIDER.parse_create(exchanges[0]["response"]["data"])
    polls = exchanges[1:]
    statuses = [PROVIDER.parse_status(e["response"]["data"], task_id=task_id) for e in polls]
    assert [s.state for s in statuses[:-1]] == ["pending"] * (len(polls) - 1)
    assert {s.raw_state for s in statuses[:-1]} == {"generating"}
    final = statuses[-1]
    recorded = json.loads(polls[-1]["response"]["data"]["resultJson"])["resultUrls"]
    assert (final.state, final.task_id, final.urls) == ("success", task_id, tuple(recorded))
    assert final.urls[0].startswith("https://tempfile.aiquickdraw.com/r/")
    data = polls[-1]["response"]["data"]
    assert (final.created_ms, final.completed_ms) == (data["createTime"], data["completeTime"])
    assert (final.fail_code, final.fail_message) == (None, None)


def test_callbacks_parse_like_record_info() -> None:
    """A callback (recorded success data in KIE's documented envelope) and the documented failure
    callback normalise to the same status shapes as recordInfo."""
    success_data = _exchanges("seedream-5-lite-text-to-image.json")[-1]["response"]["data"]
    body = {
        "code": 200,
        "msg": "Playground task completed successfully.",
        "data": {
            **success_data,
            "updateTime": success_data["completeTime"],
            "creditsConsumed": 5.5,
        },
    }
    status = PROVIDER.parse_callback(body)
    assert status.state == "success" and status.task_id == success_data["taskId"]
    assert status.urls == tuple(json.loads(success_data["resultJson"])["resultUrls"])
    assert status.credits == 5.5
    failed = PROVIDER.parse_callback(
        {
            "code": 501,
            "msg": "Playground task failed.",
            "data": {
                "taskId": "f400b7ea65483c2f983d61fdaeeceea8",
                "model": "seedream/5-lite-text-to-image",
                "state": "fail",
                "param": "{}",
                "failCode": "400",
                "failMsg": "prompt flagged",
                "costTime": 89,
                "creditsConsumed": 0,
            },
        }
    )
    assert (failed.state, failed.fail_code, failed.fail_message) == (
        "failed",
        "400",
        "prompt flagged",
    )
    assert failed.urls == () and failed.credits == 0.0


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        ("1:1", "square_hd"),
        ("4:3", "landscape_4_3"),
        ("3:4", "portrait_4_3"),
        ("3:2", "landscape_3_2"),
        ("2:3", "portrait_3_2"),
        ("16:9", "landscape_16_9"),
        ("9:16", "portrait_16_9"),
        ("21:9", "landscape_21_9"),
    ],
)
def test_v4_image_size_names(ratio: str, size: str) -> None:
    """v4 turns each aspect ratio into KIE's image_size name."""
    body = _prepare(
        "bytedance/seedream-v4-text-to-image", ImageRequest(prompt="x", aspect_ratio=ratio)
    )
    assert body.body["input"]["image_size"] == size


def test_v4_full_body() -> None:
    """v4 edit sends image_urls, image_size, image_resolution, max_images from count, the seed."""
    request = ImageRequest(
        prompt="two cats",
        images=("https://e.x/a.png", "https://e.x/b.png"),
        resolution="4K",
        count=2,
    )
    prepared = _prepare("bytedance/seedream-v4-edit", request, seed=42)
    assert prepared.body == {
        "model": "bytedance/seedream-v4-edit",
        "input": {
            "prompt": "two cats",
            "image_urls": ["https://e.x/a.png", "https://e.x/b.png"],
            "image_size": "square_hd",
            "image_resolution": "4K",
            "max_images": 2,
            "seed": 42,
            "nsfw_checker": False,
        },
    }
    assert (prepared.seed, prepared.seed_ignored) == (42, False)


def test_v4_defaults_and_callback_url() -> None:
    """Bare v4 request: square_hd at 1K, no seed; callBackUrl goes at the top level."""
    prepared = PROVIDER.prepare(
        BY_ID["bytedance/seedream-v4-text-to-image"],
        ImageRequest(prompt="x"),
        callback_url="https://hooks.example/kie?job=1",
    )
    assert prepared.body == {
        "model": "bytedance/seedream-v4-text-to-image",
        "callBackUrl": "https://hooks.example/kie?job=1",
        "input": {
            "prompt": "x",
            "image_size": "square_hd",
            "image_resolution": "1K",
            "max_images": 1,
            "nsfw_checker": False,
        },
    }
    assert prepared.seed is None and not prepared.seed_ignored


@pytest.mark.parametrize(
    ("model", "resolution", "quality", "adapted"),
    [
        ("seedream/4.5-text-to-image", None, "basic", None),
        ("seedream/4.5-text-to-image", "1K", "basic", ("1K", "2K")),
        ("seedream/4.5-text-to-image", "2K", "basic", None),
        ("seedream/4.5-text-to-image", "4K", "high", None),
        ("seedream/5-lite-text-to-image", "2K", "basic", None),
        ("seedream/5-lite-text-to-image", "4K", "high", ("4K", "3K")),
    ],
)
def test_quality_from_resolution(
    model: str, resolution: str | None, quality: str, adapted: tuple[str, str] | None
) -> None:
    """4.5 and 5 Lite always send quality; 4K asks for high (3K on 5 Lite, an adaptation)."""
    prepared = _prepare(model, ImageRequest(prompt="a lake", resolution=resolution))  # type: ignore[arg-type]
    assert prepared.body["input"]["quality"] == quality
    found = [(a.requested, a.sent) for a in prepared.adaptations if a.field == "resolution"]
    assert found == ([adapted] if adapted else [])


@pytest.mark.parametrize("model", [c.id for c in CARDS if not c.capabilities.seed])
def test_seed_ignored_on_45_and_5_lite(model: str) -> None:
    """4.5 and 5 Lite have no seed: none is sent and the call says the seed was ignored."""
    images = ("https://e.x/a.png",) if "edit" in BY_ID[model].task_kinds else ()
    prepared = _prepare(model, ImageRequest(prompt="a lake", images=images, seed=9), seed=9)
    assert "seed" not in prepared.body["input"]
    assert (prepared.seed, prepared.seed_ignored) == (None, True)


@pytest.mark.parametrize("model", [c.id for c in CARDS])
def test_no_inference_steps_and_nsfw_checker_sent(model: str) -> None:
    """No Seedream body carries num_inference_steps; nsfw_checker is always sent."""
    images = ("https://e.x/a.png",) if "edit" in BY_ID[model].task_kinds else ()
    fields = _prepare(model, ImageRequest(prompt="a lake", images=images)).body["input"]
    assert "num_inference_steps" not in fields and fields["nsfw_checker"] is False


def test_unsupported_ratio_snaps_with_adaptation() -> None:
    """A ratio Seedream lacks (5:4) snaps to the nearest (4:3) and says so."""
    prepared = _prepare("seedream/4.5-text-to-image", ImageRequest(prompt="x", aspect_ratio="5:4"))
    assert prepared.body["input"]["aspect_ratio"] == "4:3"
    assert prepared.adaptations == (
        Adaptation("aspect_ratio", "5:4", "4:3", "nearest ratio the model supports"),
    )


def test_explicit_options_win_without_snapping() -> None:
    """Model options (by id or family) are sent as given: no snapping, no adaptation."""
    request = ImageRequest(
        prompt="x",
        aspect_ratio="5:4",
        options={
            "seedream": {"nsfw_checker": True, "image_size": "square"},
            "seedream/4.5-text-to-image": {"aspect_ratio": "21:9", "quality": "high"},
        },
    )
    v45 = _prepare("seedream/4.5-text-to-image", request)
    assert v45.body["input"] == {
        "prompt": "x",
        "aspect_ratio": "21:9",
        "quality": "high",
        "nsfw_checker": True,
    }
    assert v45.adaptations == ()
    # the family-wide image_size reaches v4 only; v4 has no aspect_ratio option to take
    v4 = _prepare("bytedance/seedream-v4-text-to-image", request).body["input"]
    assert (v4["image_size"], v4["nsfw_checker"]) == ("square", True)


def test_cards_match_the_team_table() -> None:
    """Ids, families, kinds, prices, latencies, quality, strengths, languages and success rates
    are exactly the card table's."""
    table = {
        "bytedance/seedream-v4-text-to-image": (
            ("generate",), 3.5, 20, 45, 7.5, "budget,fast,chinese,4k", 0.90
        ),
        "bytedance/seedream-v4-edit": (
            ("edit",), 3.5, 25, 60, 7.5, "budget,editing,chinese,4k", 0.90
        ),
        "seedream/4.5-text-to-image": (
            ("generate",), 6.5, 30, 70, 8.0, "chinese,4k,photoreal", 0.92
        ),
        "seedream/4.5-edit": (("edit",), 6.5, 35, 80, 8.0, "chinese,editing,4k", 0.92),
        "seedream/5-lite-text-to-image": (
            ("generate",), 5.5, 45, 110, 8.0, "chinese,photoreal", 0.92
        ),
        "seedream/5-lite-image-to-image": (
            ("edit",), 5.5, 60, 115, 8.0, "chinese,editing", 0.92
        ),
    }  # fmt: skip
    assert set(BY_ID) == set(table)
    for model, (kinds, credits, p50, p90, quality, strengths, success) in table.items():
        card = BY_ID[model]
        assert card.family == "seedream"
        got = (card.task_kinds, card.pricing.credits, card.latency_p50, card.latency_p90)
        assert got == (kinds, credits, p50, p90)
        assert (card.quality, ",".join(card.strengths), card.success_rate) == (
            quality,
            strengths,
            success,
        )
        assert card.languages == ("en", "zh")
        caps = card.capabilities
        assert (caps.negative_prompt, caps.mask, caps.seed) == (
            False,
            False,
            model.startswith("bytedance"),
        )
    assert (
        BY_ID["bytedance/seedream-v4-text-to-image"].credits_for(ImageRequest(prompt="x", count=4))
        == 14.0
    )


def test_registers_through_the_hook() -> None:
    """The plugin registers its six cards, each with a SeedreamProvider, and round-trips as JSON."""
    registry = load_registry([kierouter_seedream], entry_points=False)
    (record,) = registry.plugins
    assert record.ok and sorted(record.models) == sorted(BY_ID)
    for model in BY_ID:
        assert isinstance(registry.provider(model), SeedreamProvider)
        card = registry.card(model)
        assert msgspec.json.decode(msgspec.json.encode(card), type=ModelCard) == card


REQUESTS = st.builds(
    ImageRequest,
    prompt=st.sampled_from(("a red fox", "a red fox", "", "ab", "x" * 3001, "y" * 5001))
    | st.text(max_size=9),
    aspect_ratio=st.sampled_from((None, *ASPECT_RATIOS, "7:3")),
    resolution=st.sampled_from((None, "1K", "2K", "4K")),
    count=st.sampled_from((1, 1, 1, 1, 2, 6, 7)),
    seed=st.none() | st.integers(0, 2**31 - 1),
    images=st.sampled_from((0, 0, 0, 1, 1, 2, 10, 11, 14, 15)).map(
        lambda n: tuple(f"https://e.x/{i}.png" for i in range(n))
    ),
    negative_prompt=st.none() | st.just("blurry"),
)


@pytest.mark.parametrize("model", [c.id for c in CARDS])
@settings(max_examples=300, deadline=None)
@given(request=REQUESTS)
def test_every_body_sent_is_one_kie_accepts(model: str, request: ImageRequest) -> None:
    """Whatever the canonical request, the plugin either refuses it with ValidationError or builds
    a body that passes KIE's documented field rules (as the emulator enforces them)."""
    try:
        prepared = _prepare(model, request, seed=request.seed)
    except ValidationError:
        return
    validate_market(prepared.body)
    fields = prepared.body["input"]
    assert fields["prompt"] == request.prompt
    assert fields.get("image_urls", []) == list(request.images)
    assert (prepared.seed is not None) == ("seed" in fields)
