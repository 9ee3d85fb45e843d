"""Nano Banana contract: the recorded Pro and 2 createTask bodies are exactly what the translation
produces for a bare prompt, every documented field is spelled as KIE documents it, and the cards
carry the team's card table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kierouter_nano_banana
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kierouter_nano_banana import CARDS, NanoBananaProvider

from kierouter import Adaptation, ImageRequest, ModelCard, ValidationError, load_registry
from kierouter._models import ASPECT_RATIOS
from kierouter.provider import MARKET_CREATE_PATH, PreparedCall
from kierouter.sim._validation import validate_market

FIXTURES = Path(__file__).parent / "fixtures"
PROVIDER = NanoBananaProvider()
BY_ID = {card.id: card for card in CARDS}
IMG = "https://static.aiquickdraw.com/tools/example/1764851484363_ScV1s2aq.webp"


def _create(name: str) -> dict[str, Any]:
    exchanges: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())["exchanges"]
    return exchanges[0]


def _prepare(model: str, request: ImageRequest, seed: int | None = None) -> PreparedCall:
    return PROVIDER.prepare(BY_ID[model], request, seed=seed)


@pytest.mark.parametrize(
    ("name", "model"),
    [("nano-banana-pro.json", "nano-banana-pro"), ("nano-banana-2.json", "nano-banana-2")],
)
def test_bare_prompt_matches_recording(name: str, model: str) -> None:
    """A prompt-only request becomes the recorded body: only the prompt, KIE defaults for the rest
    (no empty image_input, no aspect_ratio, resolution or output_format)."""
    create = _create(name)
    prepared = _prepare(model, ImageRequest(prompt=create["request"]["input"]["prompt"]))
    assert prepared.path == create["path"] == MARKET_CREATE_PATH
    assert json.dumps(prepared.body) == json.dumps(create["request"])
    assert prepared.adaptations == ()
    assert PROVIDER.parse_create(create["response"]["data"]) == create["response"]["data"]["taskId"]


def test_google_nano_banana_bare_prompt() -> None:
    """google/nano-banana sends just the prompt too, wrapped in the Market body."""
    prepared = _prepare("google/nano-banana", ImageRequest(prompt="a banana"))
    assert prepared.body == {"model": "google/nano-banana", "input": {"prompt": "a banana"}}


def test_google_nano_banana_uses_aspect_ratio_not_image_size() -> None:
    """Open question 4: the ratio goes in aspect_ratio (current docs), never the deprecated
    image_size unless that option is set explicitly."""
    request = ImageRequest(prompt="a banana", aspect_ratio="21:9")
    fields = _prepare("google/nano-banana", request).body["input"]
    assert fields == {"prompt": "a banana", "aspect_ratio": "21:9"}
    legacy = ImageRequest(prompt="a banana", options={"google/nano-banana": {"image_size": "4:3"}})
    assert _prepare("google/nano-banana", legacy).body["input"] == {
        "prompt": "a banana",
        "image_size": "4:3",
    }


def test_edit_body() -> None:
    """google/nano-banana-edit sends image_urls, the ratio and output_format spelled jpeg."""
    request = ImageRequest(
        prompt="put a hat on the cat",
        images=(IMG, IMG + "?2"),
        aspect_ratio="4:5",
        options={"nano-banana": {"output_format": "jpg"}},
    )
    assert _prepare("google/nano-banana-edit", request).body == {
        "model": "google/nano-banana-edit",
        "input": {
            "prompt": "put a hat on the cat",
            "image_urls": [IMG, IMG + "?2"],
            "aspect_ratio": "4:5",
            "output_format": "jpeg",
        },
    }


@pytest.mark.parametrize("model", ["nano-banana-pro", "nano-banana-2"])
def test_pro_and_2_full_body(model: str) -> None:
    """Pro and 2 put references in image_input and send resolution and output_format as jpg."""
    request = ImageRequest(
        prompt="a poster that says KIEROUTER",
        images=(IMG,),
        aspect_ratio="16:9",
        resolution="4K",
        options={model: {"output_format": "jpeg"}},
    )
    assert _prepare(model, request).body == {
        "model": model,
        "input": {
            "prompt": "a poster that says KIEROUTER",
            "image_input": [IMG],
            "aspect_ratio": "16:9",
            "resolution": "4K",
            "output_format": "jpg",
        },
    }


def test_pro_generates_from_references_too() -> None:
    """Pro given images for a generate task still sends them as image_input."""
    request = ImageRequest(prompt="in this style", task="generate", images=(IMG,))
    assert _prepare("nano-banana-pro", request).body["input"]["image_input"] == [IMG]


def test_extreme_ratios_only_on_nano_banana_2() -> None:
    """1:8 is sent as is to nano-banana-2 and snapped (with an adaptation) on Pro."""
    request = ImageRequest(prompt="a tall tower", aspect_ratio="1:8")
    assert _prepare("nano-banana-2", request).body["input"]["aspect_ratio"] == "1:8"
    pro = _prepare("nano-banana-pro", request)
    assert pro.body["input"]["aspect_ratio"] == "9:16"
    assert pro.adaptations == (
        Adaptation("aspect_ratio", "1:8", "9:16", "nearest ratio the model supports"),
    )


def test_auto_ratio_is_sent() -> None:
    """auto is a real value on every Nano Banana model and is sent as is."""
    request = ImageRequest(prompt="x", aspect_ratio="auto")
    for card in CARDS:
        if "generate" in card.task_kinds:
            assert _prepare(card.id, request).body["input"]["aspect_ratio"] == "auto"


def test_resolution_on_google_models_is_adapted() -> None:
    """google/nano-banana has no resolution field: a 4K request is reported, not sent."""
    prepared = _prepare("google/nano-banana", ImageRequest(prompt="x", resolution="4K"))
    assert "resolution" not in prepared.body["input"]
    assert [(a.field, a.requested, a.sent) for a in prepared.adaptations] == [
        ("resolution", "4K", "1K")
    ]


def test_explicit_options_win_without_snapping() -> None:
    """An explicit aspect_ratio/resolution option is sent as given over the canonical fields."""
    request = ImageRequest(
        prompt="x",
        aspect_ratio="5:4",
        resolution="1K",
        options={"nano-banana-2": {"aspect_ratio": "4:1", "resolution": "2K"}},
    )
    prepared = _prepare("nano-banana-2", request)
    assert prepared.body["input"] == {"prompt": "x", "aspect_ratio": "4:1", "resolution": "2K"}
    assert prepared.adaptations == ()


@pytest.mark.parametrize("model", [c.id for c in CARDS])
def test_seed_is_ignored(model: str) -> None:
    """No Nano Banana model takes a seed: none is sent and the call says so."""
    images = (IMG,) if "generate" not in BY_ID[model].task_kinds else ()
    prepared = _prepare(model, ImageRequest(prompt="x", images=images, seed=3), seed=3)
    assert "seed" not in prepared.body["input"]
    assert (prepared.seed, prepared.seed_ignored) == (None, True)


def test_recorded_style_status_and_callbacks_parse() -> None:
    """Market status and callback bodies for a Nano Banana task normalise (pending, success with
    URLs, fail with code and message); the recordings hold only the create."""
    task_id = _create("nano-banana-2.json")["response"]["data"]["taskId"]
    base = {"taskId": task_id, "model": "nano-banana-2", "param": "{}", "createTime": 1776323950000}
    waiting = PROVIDER.parse_status({**base, "state": "waiting", "resultJson": ""}, task_id=task_id)
    assert (waiting.state, waiting.raw_state, waiting.urls) == ("pending", "waiting", ())
    url = f"https://tempfile.aiquickdraw.com/na2/{task_id}.png"
    done = PROVIDER.parse_callback(
        {
            "code": 200,
            "msg": "Playground task completed successfully.",
            "data": {
                **base,
                "state": "success",
                "resultJson": json.dumps({"resultUrls": [url]}),
                "completeTime": 1776323975000,
                "creditsConsumed": 8,
            },
        }
    )
    assert (done.state, done.urls, done.credits, done.completed_ms) == (
        "success",
        (url,),
        8.0,
        1776323975000,
    )
    failed = PROVIDER.parse_callback(
        {
            "code": 501,
            "msg": "Playground task failed.",
            "data": {**base, "state": "fail", "failCode": "400", "failMsg": "flagged"},
        }
    )
    assert (failed.state, failed.fail_code, failed.fail_message) == ("failed", "400", "flagged")


def test_cards_match_the_team_table() -> None:
    """Ids, kinds, prices (Pro and 2 by resolution), latencies, quality, strengths, languages and
    success rates are exactly the card table's."""
    table = {
        "google/nano-banana": (("generate",), 4, {}, 15, 30, 7.5, "fast,budget", 0.92),
        "google/nano-banana-edit": (("edit",), 4, {}, 15, 35, 8.0, "fast,editing", 0.92),
        "nano-banana-pro": (
            ("generate", "edit"), 18, {"4K": 24}, 30, 70, 9.0, "text,photoreal,editing,4k", 0.95
        ),
        "nano-banana-2": (
            ("generate", "edit"), 8, {"2K": 12, "4K": 18}, 25, 60, 8.5,
            "fast,editing,text,4k", 0.94,
        ),
    }  # fmt: skip
    assert set(BY_ID) == set(table)
    for model, (kinds, credits, tiers, p50, p90, quality, strengths, success) in table.items():
        card = BY_ID[model]
        assert (card.family, card.task_kinds, card.languages) == ("nano-banana", kinds, ("*",))
        assert (card.pricing.credits, card.pricing.by_resolution) == (credits, tiers)
        assert (card.latency_p50, card.latency_p90, card.quality) == (p50, p90, quality)
        assert (",".join(card.strengths), card.success_rate) == (strengths, success)
        caps = card.capabilities
        assert (caps.seed, caps.negative_prompt, caps.mask, caps.max_images) == (
            False,
            False,
            False,
            1,
        )
    caps = {m: BY_ID[m].capabilities for m in table}
    assert [caps[m].max_reference_images for m in table] == [0, 10, 8, 14]
    assert [caps[m].max_prompt_chars for m in table] == [5000, 5000, 10000, 20000]
    pro, two = BY_ID["nano-banana-pro"], BY_ID["nano-banana-2"]
    assert [
        pro.credits_for(ImageRequest(prompt="x", resolution=r)) for r in ("1K", "2K", "4K")
    ] == [
        18,
        18,
        24,
    ]
    assert [
        two.credits_for(ImageRequest(prompt="x", resolution=r)) for r in ("1K", "2K", "4K")
    ] == [
        8,
        12,
        18,
    ]


def test_registers_through_the_hook() -> None:
    """The plugin registers its four cards with a NanoBananaProvider; cards round-trip as JSON."""
    registry = load_registry([kierouter_nano_banana], entry_points=False)
    (record,) = registry.plugins
    assert record.ok and sorted(record.models) == sorted(BY_ID)
    for model in BY_ID:
        assert isinstance(registry.provider(model), NanoBananaProvider)
        card = registry.card(model)
        assert msgspec.json.decode(msgspec.json.encode(card), type=ModelCard) == card


REQUESTS = st.builds(
    ImageRequest,
    prompt=st.sampled_from(("a banana", "a banana", "", "x" * 5001, "y" * 10001, "z" * 20001))
    | st.text(max_size=9),
    aspect_ratio=st.sampled_from((None, *ASPECT_RATIOS, "7:3")),
    resolution=st.sampled_from((None, "1K", "2K", "4K")),
    count=st.sampled_from((1, 1, 1, 2)),
    seed=st.none() | st.integers(0, 2**31 - 1),
    images=st.sampled_from((0, 0, 0, 1, 2, 8, 9, 10, 11, 14, 15)).map(
        lambda n: tuple(f"https://e.x/{i}.png" for i in range(n))
    ),
    options=st.sampled_from(({}, {}, {"nano-banana": {"output_format": "jpg"}})),
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
    sent = fields.get("image_urls", fields.get("image_input", []))
    assert sent == list(request.images)
    assert "seed" not in fields and prepared.seed_ignored == (request.seed is not None)
