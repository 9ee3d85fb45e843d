"""The plugin turns canonical requests into wan/2-7-image's input, and refuses what it can't run."""

from __future__ import annotations

import pytest
from kierouter import ImageRequest, ValidationError, load_registry

import kierouter_example
from kierouter_example import CARD, WanProvider

provider = WanProvider()


def test_generate_body() -> None:
    """A text-to-image request becomes a Market createTask body with every field KIE expects."""
    call = provider.prepare(CARD, ImageRequest(prompt="a red fox", aspect_ratio="16:9"))
    assert call.path == "/api/v1/jobs/createTask"
    assert call.body == {
        "model": "wan/2-7-image",
        "input": {
            "prompt": "a red fox",
            "n": 1,
            "resolution": "2K",
            "aspect_ratio": "16:9",
            "enable_sequential": False,
            "thinking_mode": False,
            "watermark": False,
            "nsfw_checker": False,
        },
    }
    assert call.adaptations == ()


def test_edit_sends_input_urls_and_callback() -> None:
    """Reference images go to input_urls; the callback URL sits at the top of the body."""
    request = ImageRequest(prompt="make it night", images=("https://example.com/a.png",))
    call = provider.prepare(CARD, request, callback_url="https://example.com/kie/callback/j?t=1")
    assert call.body["callBackUrl"] == "https://example.com/kie/callback/j?t=1"
    assert call.body["input"]["input_urls"] == ["https://example.com/a.png"]


def test_unsupported_ratio_is_snapped_and_reported() -> None:
    """3:2 is not offered, so the nearest ratio (4:3) is sent and the change is reported."""
    call = provider.prepare(CARD, ImageRequest(prompt="x", aspect_ratio="3:2"))
    assert call.body["input"]["aspect_ratio"] == "4:3"
    assert [(a.field, a.requested, a.sent) for a in call.adaptations] == [
        ("aspect_ratio", "3:2", "4:3")
    ]


def test_seed_is_sent_when_given() -> None:
    """The seed goes to the model, and the prepared call says it was used."""
    call = provider.prepare(CARD, ImageRequest(prompt="x"), seed=42)
    assert call.body["input"]["seed"] == 42
    assert (call.seed, call.seed_ignored) == (42, False)


def test_options_pass_switches_through() -> None:
    """Options keyed by family or model id reach the input."""
    request = ImageRequest(prompt="x", options={"wan": {"watermark": True}})
    assert provider.prepare(CARD, request).body["input"]["watermark"] is True


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ImageRequest(prompt="x", resolution="4K"), "resolution"),
        (ImageRequest(prompt="x", count=5), "count"),
        (
            ImageRequest(prompt="x", images=tuple(f"https://e.com/{i}.png" for i in range(10))),
            "images",
        ),
        (ImageRequest(prompt="x", options={"wan": {"steps": 30}}), "options.steps"),
        (
            ImageRequest(prompt="x", options={"wan/2-7-image": {"watermark": "yes"}}),
            "options.watermark",
        ),
        (ImageRequest(prompt="x" * 5001), "prompt"),
        (ImageRequest(prompt="", task="upscale", images=("https://e.com/a.png",)), "task"),
    ],
)
def test_invalid_requests_name_the_field(request_: ImageRequest, field: str) -> None:
    """What the model cannot run raises ValidationError naming the field, before any HTTP call."""
    with pytest.raises(ValidationError) as caught:
        provider.prepare(CARD, request_)
    assert caught.value.field == field


def test_the_registry_has_the_model() -> None:
    """The hook registers the card under the plugin's name."""
    registry = load_registry([kierouter_example], entry_points=False)
    assert registry.plugins[0].ok
    assert registry.card("wan/2-7-image").plugin == "kierouter_example"
