"""The canonical request validates model-independent rules and prices requests from cards."""

from __future__ import annotations

import msgspec
import pytest

from kierouter import ImageRequest, ModelCard, Pricing, ValidationError
from kierouter.provider import check_choice, check_range, snap_aspect_ratio


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "task": "edit"}, "images"),
        ({"task": "upscale", "images": ("https://a/1.png", "https://a/2.png")}, "images"),
        ({"prompt": "x", "images": ("file:///etc/passwd",)}, "images[0]"),
        ({"prompt": "x", "aspect_ratio": "wide"}, "aspect_ratio"),
        ({"prompt": "x", "count": 0}, "count"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": "x", "mask": "ftp://host/mask.png"}, "mask"),
        ({"prompt": "x", "images": ("",)}, "images[0]"),
        ({"prompt": "x", "images": ("data:image/png,raw",)}, "images[0]"),
    ],
)
def test_invalid_requests_name_the_field(request_kwargs: dict[str, object], field: str) -> None:
    """Each bad request raises ValidationError whose field names what to fix."""
    with pytest.raises(ValidationError) as info:
        ImageRequest(**request_kwargs).validate()  # type: ignore[arg-type]
    assert info.value.field == field
    assert field in str(info.value)


def test_kind_is_inferred_from_reference_images() -> None:
    """Reference images make a request an edit unless a task is given."""
    assert ImageRequest(prompt="x").kind == "generate"
    assert ImageRequest(prompt="x", images=("https://a/1.png",)).kind == "edit"
    assert ImageRequest(task="upscale", images=("https://a/1.png",)).kind == "upscale"


def test_unknown_request_fields_are_rejected_when_decoding() -> None:
    """A misspelled field in JSON input is an error naming it, not silently dropped."""
    with pytest.raises(msgspec.ValidationError, match="aspect"):
        msgspec.json.decode(b'{"prompt": "x", "aspect": "1:1"}', type=ImageRequest)


def test_pricing_by_resolution_count_and_task() -> None:
    """Prices follow the resolution tier and count; per-task pricing rounds up to whole tasks."""
    nano = Pricing(credits=8, by_resolution={"4K": 18})
    assert nano.credits_for(ImageRequest(prompt="x", count=2)) == 16
    assert nano.credits_for(ImageRequest(prompt="x", resolution="4K")) == 18
    mj = Pricing(credits=25, by_speed={"turbo": 50}, per_task=True, images_per_task=4)
    assert mj.credits_for(ImageRequest(prompt="x", count=5)) == 50
    assert mj.credits_for(ImageRequest(prompt="x"), speed="turbo") == 50


def test_card_reads_speed_from_request_options() -> None:
    """A card prices a request with the speed option given for its family."""
    card = ModelCard(
        id="midjourney",
        family="midjourney",
        task_kinds=("generate",),
        pricing=Pricing(credits=25, by_speed={"relaxed": 12.5}, per_task=True, images_per_task=4),
        latency_p50=60,
        latency_p90=150,
        quality=9.5,
    )
    cheap = ImageRequest(prompt="x", options={"midjourney": {"speed": "relaxed"}})
    assert card.credits_for(cheap) == 12.5
    assert card.credits_for(ImageRequest(prompt="x")) == 25


def test_snap_aspect_ratio_picks_the_nearest_and_reports_it() -> None:
    """An unsupported ratio snaps to the nearest supported one, with an adaptation record."""
    sent, adaptation = snap_aspect_ratio("5:4", ("1:1", "4:3", "16:9"), default="1:1")
    assert sent == "4:3"
    assert adaptation is not None
    assert adaptation.requested == "5:4"
    assert snap_aspect_ratio("16:9", ("1:1", "16:9"), default="1:1") == ("16:9", None)
    assert snap_aspect_ratio(None, ("1:1",), default="1:1") == ("1:1", None)


def test_check_helpers_name_field_and_allowed_values() -> None:
    """check_choice lists the allowed values; check_range states the range and the step."""
    with pytest.raises(ValidationError, match=r"allowed: relaxed, fast, turbo"):
        check_choice("options.speed", "Relax", ("relaxed", "fast", "turbo"))
    with pytest.raises(ValidationError, match=r"2\.\.49"):
        check_range("options.num_inference_steps", 60, 2, 49, integer=True)
    with pytest.raises(ValidationError, match="multiple of 50"):
        check_range("options.stylization", 75, 0, 1000, step=50)
    with pytest.raises(ValidationError, match="not a number"):
        check_range("options.strength", True, 0, 1)
