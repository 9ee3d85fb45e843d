"""Recraft contract: the documented createTask bodies (KIE-API.md §8; no recording exists) are
exactly what the translation produces, documented callbacks parse, and the cards carry the
team's card table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kierouter_recraft
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kierouter_recraft import CARDS, RecraftProvider

from kierouter import ImageRequest, ModelCard, ValidationError, load_registry
from kierouter.provider import MARKET_CREATE_PATH
from kierouter.sim._validation import validate_market

DOCUMENTED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "recraft-documented.json").read_text()
)
PROVIDER = RecraftProvider()
BY_ID = {card.id: card for card in CARDS}
KIND = {"recraft/remove-background": "remove-background", "recraft/crisp-upscale": "upscale"}


@pytest.mark.parametrize("example", DOCUMENTED["create"], ids=lambda e: e["request"]["model"])
def test_documented_bodies(example: dict[str, Any]) -> None:
    """The canonical request (task, one image, optional callback) becomes the documented body."""
    body = example["request"]
    model = body["model"]
    request = ImageRequest(task=KIND[model], images=(body["input"]["image"],))  # type: ignore[arg-type]
    prepared = PROVIDER.prepare(BY_ID[model], request, callback_url=body.get("callBackUrl"))
    assert prepared.path == example["path"] == MARKET_CREATE_PATH
    assert json.dumps(prepared.body) == json.dumps(body)
    assert prepared.adaptations == ()
    assert (
        PROVIDER.parse_create(example["response"]["data"]) == example["response"]["data"]["taskId"]
    )


def test_no_scale_factor_or_other_fields() -> None:
    """Only image is ever sent: prompt, ratio, resolution and seed become adaptations or ignored."""
    request = ImageRequest(
        prompt="make it 4x",
        task="upscale",
        images=("https://example.com/a.png",),
        aspect_ratio="16:9",
        resolution="4K",
        seed=1,
    )
    prepared = PROVIDER.prepare(BY_ID["recraft/crisp-upscale"], request, seed=1)
    assert prepared.body["input"] == {"image": "https://example.com/a.png"}
    assert [(a.field, a.requested, a.sent) for a in prepared.adaptations] == [
        ("prompt", "make it 4x", None),
        ("aspect_ratio", "16:9", None),
        ("resolution", "4K", None),
    ]
    assert "no scale" in prepared.adaptations[2].reason
    assert (prepared.seed, prepared.seed_ignored) == (None, True)


def test_documented_callbacks_parse() -> None:
    """The documented success callback yields the result URL and credits; the failure callback
    yields failed with KIE's failCode and failMsg."""
    success, failure = (PROVIDER.parse_callback(body) for body in DOCUMENTED["callbacks"])
    assert (success.state, success.task_id) == ("success", "3a1f0c9e2b7d4e5f8a6b1c2d3e4f5a6b")
    assert success.urls == (
        "https://tempfile.aiquickdraw.com/r/3a1f0c9e2b7d4e5f8a6b1c2d3e4f5a6b_1787567409_nobg.png",
    )
    assert (success.credits, success.created_ms, success.completed_ms) == (
        1.0,
        1787567403000,
        1787567409000,
    )
    assert (failure.state, failure.fail_code, failure.fail_message, failure.urls) == (
        "failed",
        "422",
        "image: min side is 256 px",
        (),
    )


def test_status_read_shapes_parse() -> None:
    """recordInfo data (the callback's data without the envelope) parses the same way."""
    data = DOCUMENTED["callbacks"][0]["data"]
    pending = PROVIDER.parse_status({**data, "state": "queuing", "resultJson": ""}, task_id="t")
    assert (pending.state, pending.raw_state, pending.urls) == ("pending", "queuing", ())
    assert PROVIDER.parse_status(data, task_id="t") == PROVIDER.parse_callback(
        DOCUMENTED["callbacks"][0]
    )


def test_cards_match_the_team_table() -> None:
    """Ids, kinds, prices, latencies, quality, strengths, languages and success are the table's."""
    table = {
        "recraft/remove-background": (("remove-background",), 1, 5, 12),
        "recraft/crisp-upscale": (("upscale",), 2, 8, 20),
    }
    assert set(BY_ID) == set(table)
    for model, (kinds, credits, p50, p90) in table.items():
        card = BY_ID[model]
        assert (card.family, card.task_kinds, card.pricing.credits) == ("recraft", kinds, credits)
        assert (card.latency_p50, card.latency_p90, card.quality) == (p50, p90, 8.0)
        assert (card.strengths, card.languages, card.success_rate) == (("utility",), ("*",), 0.98)
        caps = card.capabilities
        assert (caps.max_images, caps.max_reference_images, caps.seed) == (1, 1, False)
        assert (caps.negative_prompt, caps.mask) == (False, False)


def test_registers_through_the_hook() -> None:
    """The plugin registers both cards with a RecraftProvider; the cards round-trip as JSON."""
    registry = load_registry([kierouter_recraft], entry_points=False)
    (record,) = registry.plugins
    assert record.ok and sorted(record.models) == sorted(BY_ID)
    for model in BY_ID:
        assert isinstance(registry.provider(model), RecraftProvider)
        card = registry.card(model)
        assert msgspec.json.decode(msgspec.json.encode(card), type=ModelCard) == card


@pytest.mark.parametrize("model", [c.id for c in CARDS])
@settings(max_examples=200, deadline=None)
@given(
    request=st.builds(
        ImageRequest,
        prompt=st.sampled_from(("", "remove it")),
        task=st.sampled_from((None, "generate", "edit", "remove-background", "upscale")),
        aspect_ratio=st.sampled_from((None, "1:1", "16:9")),
        resolution=st.sampled_from((None, "2K")),
        count=st.sampled_from((1, 1, 2)),
        images=st.sampled_from((0, 1, 1, 1, 2)).map(
            lambda n: tuple(f"https://e.x/{i}.png" for i in range(n))
        ),
    )
)
def test_every_body_sent_is_one_kie_accepts(model: str, request: ImageRequest) -> None:
    """Whatever the canonical request, the plugin either refuses it with ValidationError or sends
    exactly {"image": <the one URL>}, which KIE's documented rules accept."""
    try:
        prepared = PROVIDER.prepare(BY_ID[model], request)
    except ValidationError:
        return
    validate_market(prepared.body)
    assert prepared.body == {"model": model, "input": {"image": request.images[0]}}
    assert request.kind == KIND[model]
