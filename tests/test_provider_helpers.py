"""The request-check and parsing helpers of ``kierouter.provider`` that plugins share: each names
the field, lists the allowed values, and reads its limits from the card."""

from __future__ import annotations

import math
from typing import Any

import pytest

from kierouter import (
    Capabilities,
    ImageRequest,
    MalformedResponseError,
    ModelCard,
    NotFoundError,
    Pricing,
    ValidationError,
)
from kierouter.provider import (
    callback_data,
    callback_failure,
    check_bool,
    check_count,
    check_mask,
    check_options,
    check_prompt,
    check_reference_images,
    check_resolution,
    check_task_kind,
    float_or_none,
    int_or_none,
    parse_json_field,
    status_data,
)

IMG = "https://example.com/in.png"


def _card(**caps: Any) -> ModelCard:
    return ModelCard(
        id="acme/t2i",
        family="acme",
        task_kinds=("generate",),
        pricing=Pricing(credits=1),
        latency_p50=1,
        latency_p90=2,
        quality=5,
        capabilities=Capabilities(**caps),
    )


def _refused(call: Any, *args: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_task_kind_hint_fallback_and_default() -> None:
    """A refused kind uses its hint, else the fallback, else '<model> cannot <kind>'; the error
    is on 'task' and lists the card's kinds; an accepted kind is returned."""
    card = _card()
    edit = ImageRequest(prompt="x", images=(IMG,))
    upscale = ImageRequest(task="upscale", images=(IMG,))
    hints = {"edit": "use acme/edit"}
    assert check_task_kind(card, ImageRequest(prompt="x")) == "generate"
    error = _refused(check_task_kind, card, edit, hints=hints, fallback="no")
    assert (error.field, error.allowed, "use acme/edit" in str(error)) == (
        "task",
        ("generate",),
        True,
    )
    assert "acme models cannot" in str(
        _refused(check_task_kind, card, upscale, hints=hints, fallback="acme models cannot")
    )
    assert "acme/t2i cannot upscale" in str(_refused(check_task_kind, card, upscale))


def test_reference_images_none_or_at_most_the_cards_limit() -> None:
    """A card without reference images refuses any (allowed=(), naming the suggestion); one with a
    limit refuses more than it, listing 1..limit."""
    two = ImageRequest(prompt="x", task="generate", images=(IMG, IMG))
    error = _refused(check_reference_images, _card(), two, suggestion="acme/edit")
    assert (error.field, error.allowed) == ("images", ())
    assert "use acme/edit" in str(error)
    error = _refused(check_reference_images, _card(max_reference_images=1), two)
    assert (error.field, error.allowed) == ("images", (1,))
    assert check_reference_images(_card(max_reference_images=2), two) == 2


def test_mask_count_resolution_prompt() -> None:
    """Mask, count, resolution and prompt length are refused from the card's capabilities."""
    card = _card(max_images=4, max_prompt_chars=5)
    masked = ImageRequest(prompt="x", images=(IMG,), mask=IMG)
    assert _refused(check_mask, card, masked).allowed == ()
    check_mask(_card(mask=True), masked)
    assert _refused(check_count, card, ImageRequest(prompt="x", count=5)).allowed == (1, 2, 3, 4)
    error = _refused(check_count, card, ImageRequest(prompt="x", count=3), allowed=(1, 2, 4))
    assert "returns 1, 2 or 4 images a task" in str(error)
    assert check_count(card, ImageRequest(prompt="x", count=4)) == 4
    error = _refused(check_resolution, card, ImageRequest(prompt="x", resolution="8K"))
    assert (error.field, error.allowed) == ("resolution", ("1K", "2K", "4K"))
    assert check_resolution(card, ImageRequest(prompt="x")) is None
    assert _refused(check_prompt, card, ImageRequest(prompt="x" * 6)).field == "prompt"


def test_resolution_tiers_come_from_the_card_unless_overridden() -> None:
    """check_resolution refuses a tier the card does not list (an unsupported 4K never reaches
    KIE), accepts every tier when the card lists none, and ``allowed`` replaces the card's."""
    four_k = ImageRequest(prompt="x", resolution="4K")
    card = _card(resolutions=("1K", "2K"))
    error = _refused(check_resolution, card, four_k)
    assert (error.field, error.allowed, error.model) == ("resolution", ("1K", "2K"), "acme/t2i")
    assert check_resolution(card, ImageRequest(prompt="x", resolution="2K")) == "2K"
    assert check_resolution(_card(), four_k) == "4K"
    assert check_resolution(card, four_k, allowed=("1K", "2K", "4K")) == "4K"
    assert _refused(check_resolution, _card(), four_k, allowed=("1K",)).allowed == ("1K",)


def test_options_family_wide_and_own_keys() -> None:
    """Family-wide keys must belong to some model of the family and apply only where the model
    has them; the model's own keys must be its own; its own values win."""
    card = _card()
    request = ImageRequest(
        prompt="x", options={"acme": {"steps": 4, "style": "a"}, "acme/t2i": {"style": "b"}}
    )
    merged = check_options(card, request, ("style",), family_allowed=("steps", "style"))
    assert merged == {"style": "b"}
    bad_family = ImageRequest(prompt="x", options={"acme": {"seed": 1}})
    error = _refused(
        check_options, card, bad_family, ("style",), family_allowed=("steps", "style"),
        family_name="Acme",
    )  # fmt: skip
    assert (error.field, error.allowed) == ("options.seed", ("steps", "style"))
    assert "no Acme model has an option 'seed'" in str(error)
    bad_own = ImageRequest(prompt="x", options={"acme/t2i": {"steps": 1}})
    error = _refused(check_options, card, bad_own, ("style",), family_allowed=("steps", "style"))
    assert (error.field, error.allowed) == ("options.steps", ("style",))
    assert _refused(check_bool, "options.x", "yes").allowed == (True, False)


def test_status_and_callback_envelopes() -> None:
    """status_data: null is an unknown task, a non-object is malformed. callback_data reads the
    task id from data first, or from the body first when asked; callback_failure turns a non-200
    integer code into a failed status and refuses a code that is not an integer."""
    with pytest.raises(NotFoundError):
        status_data(None, task_id="t", family="X")
    with pytest.raises(MalformedResponseError):
        status_data([1], task_id="t", family="X")
    body = {"code": 500, "msg": "boom", "taskId": "top", "data": {"taskId": "inner"}}
    assert callback_data(body, family="X")[1] == "inner"
    assert callback_data(body, family="X", top_level_first=True)[1] == "top"
    with pytest.raises(MalformedResponseError):
        callback_data({"data": {}}, family="X")
    failed = callback_failure(body, task_id="t", family="X")
    assert failed is not None and (failed.state, failed.fail_code, failed.fail_message) == (
        "failed",
        "500",
        "boom",
    )
    assert callback_failure({"code": 200}, task_id="t", family="X") is None
    with pytest.raises(MalformedResponseError):
        callback_failure({"code": "200"}, task_id="t", family="X")


def test_number_and_json_readers() -> None:
    """Non-finite numbers read as None (never an exception); embedded JSON text is decoded and
    bad JSON is a MalformedResponseError."""
    assert int_or_none(math.inf) is None and int_or_none(math.nan) is None
    assert int_or_none(1.5) == 1 and int_or_none(True) is None
    assert float_or_none("0.5") == 0.5 and float_or_none("inf") is None
    assert float_or_none(10**400) is None
    assert parse_json_field('{"a": 1}', "x") == {"a": 1} and parse_json_field("", "x") is None
    with pytest.raises(MalformedResponseError):
        parse_json_field("{", "resultJson")
