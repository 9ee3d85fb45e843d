"""Flux Kontext contract: KIE's documented example bodies (there is no recorded Flux traffic) are
exactly what the translation produces, the documented record-info and callback bodies parse to
the right normalised status (successFlag 2 vs 3 included), every body the plugin builds passes
the documented field rules, and the cards carry the sheet's prices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kierouter_flux_kontext
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kierouter_flux_kontext import CARDS, FLUX_ASPECT_RATIOS, FluxKontextProvider

from kierouter import (
    Adaptation,
    ImageRequest,
    MalformedResponseError,
    ModelCard,
    NotFoundError,
    ValidationError,
    load_registry,
)
from kierouter._models import ASPECT_RATIOS
from kierouter.provider import PreparedCall
from kierouter.sim._validation import validate_flux

FIXTURES = Path(__file__).parent / "fixtures"
DOC: dict[str, Any] = json.loads((FIXTURES / "flux-kontext-documented.json").read_text())
PROVIDER = FluxKontextProvider()
BY_ID = {card.id: card for card in CARDS}
PRO, MAX = "flux-kontext-pro", "flux-kontext-max"
IMG = "https://static.aiquickdraw.com/tools/example/1764851484363_ScV1s2aq.webp"
#: Every create field KIE documents for Flux Kontext (KIE-API.md §11).
DOCUMENTED_FIELDS = {
    "prompt", "model", "aspectRatio", "inputImage", "outputFormat", "promptUpsampling",
    "enableTranslation", "uploadCn", "safetyTolerance", "watermark", "callBackUrl",
}  # fmt: skip
T0 = 1751364000000  # 2025-07-01T10:00:00Z in epoch ms


def _prepare(model: str, request: ImageRequest, **kwargs: Any) -> PreparedCall:
    return PROVIDER.prepare(BY_ID[model], request, **kwargs)


def _record(name: str) -> dict[str, Any]:
    data: dict[str, Any] = DOC["record_info"][name]["data"]
    return data


def test_generate_body_matches_documented_example() -> None:
    """A 16:9 English generate request with the documented options and a webhook becomes the
    documented flat body: model at the top level, enableTranslation false, no input wrapper."""
    create = DOC["create"][0]
    request = ImageRequest(
        prompt=create["request"]["prompt"],
        aspect_ratio="16:9",
        options={
            "flux-kontext": {"outputFormat": "jpeg", "promptUpsampling": False},
            PRO: {"safetyTolerance": 6},
        },
    )
    prepared = _prepare(PRO, request, callback_url=create["request"]["callBackUrl"])
    assert prepared.path == create["path"] == "/api/v1/flux/kontext/generate"
    assert json.dumps(prepared.body) == json.dumps(create["request"])
    assert prepared.adaptations == () and prepared.seed is None


def test_edit_body_matches_documented_example() -> None:
    """An edit of one image becomes the documented body: inputImage (not the sheet's imageUrl),
    no aspectRatio so the input's ratio is kept, safetyTolerance within edit's 0..2."""
    create = DOC["create"][1]
    request = ImageRequest(
        prompt=create["request"]["prompt"],
        images=(create["request"]["inputImage"],),
        options={
            MAX: {"outputFormat": "png", "safetyTolerance": 2, "watermark": "my-watermark-id"}
        },
    )
    prepared = _prepare(MAX, request)
    assert json.dumps(prepared.body) == json.dumps(create["request"])
    assert "imageUrl" not in prepared.body and "aspectRatio" not in prepared.body


@pytest.mark.parametrize("index", [0, 1])
def test_create_answers_give_the_task_id(index: int) -> None:
    """The documented create answer {code, msg, data: {taskId}} gives the task id."""
    response = DOC["create"][index]["response"]
    assert PROVIDER.parse_create(response["data"]) == response["data"]["taskId"]


def test_generating_status() -> None:
    """successFlag 0 is pending, with no URLs; an ISO createTime becomes epoch ms."""
    status = PROVIDER.parse_status(_record("generating"), task_id="fluxkontext_3a1f0c9e2b7d4e5f")
    assert (status.state, status.raw_state, status.urls) == ("pending", "GENERATING", ())
    assert (status.created_ms, status.completed_ms, status.fail_code) == (T0, None, None)


def test_success_status() -> None:
    """successFlag 1 gives the one resultImageUrl (not the 10-minute originImageUrl) and both
    ISO times in epoch ms."""
    data = _record("success")
    status = PROVIDER.parse_status(data, task_id=data["taskId"])
    assert (status.state, status.raw_state) == ("success", "SUCCESS")
    assert status.urls == (data["response"]["resultImageUrl"],)
    assert (status.created_ms, status.completed_ms) == (T0, T0 + 25_000)
    assert (status.fail_code, status.fail_message) == (None, None)


@pytest.mark.parametrize(
    ("name", "raw", "code", "message"),
    [
        ("create_task_failed", "CREATE_TASK_FAILED", "500", "create task failed"),
        (
            "generate_failed",
            "GENERATE_FAILED",
            "400",
            "Your prompt was flagged by the content moderation",
        ),
    ],
)
def test_failed_statuses_keep_2_and_3_apart(name: str, raw: str, code: str, message: str) -> None:
    """successFlag 2 (create-task failed) and 3 (generation failed) are both failed, told apart
    by raw_state, with errorCode as text and errorMessage; epoch-ms times are kept as is."""
    data = _record(name)
    status = PROVIDER.parse_status(data, task_id=data["taskId"])
    assert (status.state, status.raw_state, status.urls) == ("failed", raw, ())
    assert (status.fail_code, status.fail_message) == (code, message)
    assert (status.created_ms, status.completed_ms) == (T0, T0 + 30_000)


def test_documented_callbacks_parse() -> None:
    """The documented success callback gives data.info.resultImageUrl; the failure callback
    (code 400, empty info fields) is failed with KIE's code and message."""
    success = PROVIDER.parse_callback(DOC["callbacks"]["success"])
    assert (success.state, success.task_id, success.urls) == (
        "success",
        "fluxkontext_3a1f0c9e2b7d4e5f",
        (DOC["callbacks"]["success"]["data"]["info"]["resultImageUrl"],),
    )
    failure = PROVIDER.parse_callback(DOC["callbacks"]["failure"])
    assert (failure.state, failure.task_id, failure.urls) == (
        "failed",
        "fluxkontext_9b8c7d6e5f4a3b2c",
        (),
    )
    assert (failure.fail_code, failure.fail_message) == (
        "400",
        "Your prompt was flagged by the content moderation",
    )


def test_callback_and_status_agree() -> None:
    """A callback and a status read of the same finished task give the same URLs."""
    data = _record("success")
    assert (
        PROVIDER.parse_callback(DOC["callbacks"]["success"]).urls
        == PROVIDER.parse_status(data, task_id=data["taskId"]).urls
    )


def test_origin_url_is_the_fallback() -> None:
    """With no resultImageUrl, the originImageUrl is the result."""
    data = {**_record("success"), "response": {"originImageUrl": "https://bfl.example/o.jpeg"}}
    assert PROVIDER.parse_status(data, task_id="t").urls == ("https://bfl.example/o.jpeg",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (T0, T0),
        (str(T0), T0),
        ("2025-07-01T10:00:00Z", T0),
        ("2025-07-01 10:00:00", T0),
        ("2025-07-01T12:00:00+02:00", T0),
        ("yesterday", None),
        (float("inf"), None),
        (-5, None),
        (True, None),
    ],
)
def test_times_in_either_form(value: Any, expected: int | None) -> None:
    """createTime is read from epoch ms, digit strings and ISO strings (naive = UTC); garbage is
    unknown, never an error."""
    status = PROVIDER.parse_status({**_record("generating"), "createTime": value}, task_id="t")
    assert status.created_ms == expected


def test_bad_status_bodies() -> None:
    """data null is an unknown task; an unknown successFlag or a success without any URL is a
    malformed answer."""
    with pytest.raises(NotFoundError):
        PROVIDER.parse_status(None, task_id="t")
    with pytest.raises(MalformedResponseError):
        PROVIDER.parse_status({**_record("generating"), "successFlag": 7}, task_id="t")
    with pytest.raises(MalformedResponseError):
        PROVIDER.parse_status({**_record("success"), "response": None}, task_id="t")
    with pytest.raises(MalformedResponseError):
        PROVIDER.parse_callback({"code": 200, "msg": "ok", "data": {"taskId": "t", "info": {}}})


@pytest.mark.parametrize(
    ("prompt", "language", "translate"),
    [
        ("a red fox in snow", None, False),
        ("a café in Paris", None, False),
        ("一只在雪地里的红狐狸", None, True),
        ("лиса в снегу", None, True),
        ("un renard dans la neige", "fr", True),
        ("a red fox", "en-GB", False),
        ("a red fox", "de", True),
    ],
)
def test_translation_for_non_english_prompts(
    prompt: str, language: str | None, translate: bool
) -> None:
    """enableTranslation is always sent: true (and reported) for a non-English language or a
    prompt in a non-Latin script, false for English."""
    prepared = _prepare(PRO, ImageRequest(prompt=prompt, language=language))
    assert prepared.body["enableTranslation"] is translate
    reported = [a for a in prepared.adaptations if a.field == "language"]
    assert len(reported) == int(translate)
    if translate:
        assert reported[0].sent == "en" and "enableTranslation" in reported[0].reason


def test_explicit_translation_option_wins() -> None:
    """An explicit enableTranslation option is sent as given, with no adaptation."""
    request = ImageRequest(prompt="红狐狸", options={PRO: {"enableTranslation": False}})
    prepared = _prepare(PRO, request)
    assert prepared.body["enableTranslation"] is False and prepared.adaptations == ()


@pytest.mark.parametrize(
    ("ratio", "kind", "sent", "adapted"),
    [
        ("1:1", "generate", "1:1", False),
        ("21:9", "edit", "21:9", False),
        ("3:2", "generate", "4:3", True),
        ("9:21", "generate", "9:16", True),
        ("auto", "generate", None, True),
        ("auto", "edit", None, False),
        (None, "generate", None, False),
        (None, "edit", None, False),
    ],
)
def test_aspect_ratio(ratio: str | None, kind: str, sent: str | None, adapted: bool) -> None:
    """Ratios Flux has go as is, others snap (reported); none is sent without a ratio, and an
    edit asked for 'auto' keeps its input's ratio silently."""
    images = (IMG,) if kind == "edit" else ()
    prepared = _prepare(MAX, ImageRequest(prompt="x", images=images, aspect_ratio=ratio))
    assert prepared.body.get("aspectRatio") == sent
    assert [a.field for a in prepared.adaptations] == (["aspect_ratio"] if adapted else [])


def test_what_flux_lacks_is_reported() -> None:
    """No seed (reported as ignored), no negative prompt and no resolution setting (both reported
    as adaptations); none of them is sent."""
    request = ImageRequest(prompt="x", negative_prompt="blurry", resolution="4K", seed=5)
    prepared = _prepare(PRO, request, seed=5)
    assert set(prepared.body) == {"prompt", "model", "enableTranslation"}
    assert (prepared.seed, prepared.seed_ignored) == (None, True)
    assert prepared.adaptations == (
        Adaptation(
            "negative_prompt", "blurry", None, "Flux Kontext has no negative prompt; not sent"
        ),
        Adaptation(
            "resolution",
            "4K",
            "1K",
            "Flux Kontext has no resolution setting; it renders about 1 megapixel",
        ),
    )


def test_provider_family_and_paths() -> None:
    """It is a legacy-family provider: its own status path, taskId query, default download-url."""
    assert (PROVIDER.api_family, PROVIDER.status_path) == (
        "flux-kontext",
        "/api/v1/flux/kontext/record-info",
    )
    assert PROVIDER.status_params("abc") == {"taskId": "abc"}
    assert PROVIDER.download_url_body("abc", "https://x.example/a.png") == {
        "url": "https://x.example/a.png"
    }


def test_cards_match_the_sheet() -> None:
    """Pro 8 and Max 12 credits (the sheet's 8–12), both generate and edit, strengths editing and
    photoreal, any prompt language (KIE translates), one input image, no seed."""
    table = {PRO: (8, 20, 45, 8.5, 0.92), MAX: (12, 25, 55, 9.0, 0.93)}
    assert set(BY_ID) == set(table)
    for model, (credits, p50, p90, quality, success) in table.items():
        card = BY_ID[model]
        assert (card.family, card.task_kinds, card.languages) == (
            "flux-kontext",
            ("generate", "edit"),
            ("*",),
        )
        assert (card.pricing.credits, card.latency_p50, card.latency_p90) == (credits, p50, p90)
        assert (card.quality, card.success_rate, card.strengths) == (
            quality,
            success,
            ("editing", "photoreal"),
        )
        caps = card.capabilities
        assert caps.aspect_ratios == FLUX_ASPECT_RATIOS and caps.max_reference_images == 1
        assert not (caps.seed or caps.negative_prompt or caps.mask)


def test_registers_through_the_hook() -> None:
    """The plugin registers both cards with a FluxKontextProvider; they round-trip as JSON."""
    registry = load_registry([kierouter_flux_kontext], entry_points=False)
    (record,) = registry.plugins
    assert record.ok and sorted(record.models) == sorted(BY_ID)
    for model in BY_ID:
        assert isinstance(registry.provider(model), FluxKontextProvider)
        card = registry.card(model)
        assert msgspec.json.decode(msgspec.json.encode(card), type=ModelCard) == card


_OPTION_VALUES = {
    "aspectRatio": st.sampled_from((*FLUX_ASPECT_RATIOS, "5:4", "auto")),
    "outputFormat": st.sampled_from(("jpeg", "jpg", "png", "webp")),
    "promptUpsampling": st.sampled_from((True, False, "yes")),
    "enableTranslation": st.sampled_from((True, False, 1)),
    "uploadCn": st.sampled_from((True, False)),
    "safetyTolerance": st.sampled_from((0, 1, 2, 3, 6, 7, -1, 2.0, "2")),
    "watermark": st.sampled_from(("wm-1", "", 5)),
}
OPTIONS = st.dictionaries(st.sampled_from(sorted(_OPTION_VALUES)), st.none(), max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({key: _OPTION_VALUES[key] for key in keys})
)
REQUESTS = st.builds(
    ImageRequest,
    prompt=st.sampled_from(("a red fox", "a red fox", "红狐狸", "", "x" * 5001))
    | st.text(min_size=1, max_size=9),
    task=st.sampled_from((None, None, "generate", "edit", "upscale")),
    aspect_ratio=st.sampled_from((None, *ASPECT_RATIOS, "7:3")),
    resolution=st.sampled_from((None, "1K", "4K")),
    count=st.sampled_from((1, 1, 1, 2)),
    seed=st.none() | st.integers(0, 2**31 - 1),
    images=st.sampled_from((0, 0, 1, 1, 2)).map(
        lambda n: tuple(f"https://e.x/{i}.png" for i in range(n))
    ),
    mask=st.sampled_from((None, None, None, "https://e.x/m.png")),
    negative_prompt=st.none() | st.just("blurry"),
    language=st.sampled_from((None, None, "en", "zh", "fr")),
    options=st.sampled_from(("flux-kontext", PRO, MAX)).flatmap(
        lambda where: OPTIONS.map(lambda o: {where: o} if o else {})
    ),
)


@pytest.mark.parametrize("model", [PRO, MAX])
@settings(max_examples=300, deadline=None)
@given(request=REQUESTS, callback=st.sampled_from((None, "https://hooks.example/kie?job=1")))
def test_every_body_sent_is_one_kie_accepts(
    model: str, request: ImageRequest, callback: str | None
) -> None:
    """Whatever the canonical request, the plugin either refuses it with ValidationError or builds
    a flat body that passes KIE's documented rules (the emulator's validator, safetyTolerance
    range included) and carries only documented fields."""
    try:
        prepared = _prepare(model, request, seed=request.seed, callback_url=callback)
    except ValidationError:
        return
    body = prepared.body
    validate_flux(body)
    assert set(body) <= DOCUMENTED_FIELDS
    assert (body["prompt"], body["model"]) == (request.prompt, model)
    assert isinstance(body["enableTranslation"], bool)
    assert body.get("inputImage") == (request.images[0] if request.images else None)
    assert body.get("callBackUrl") == callback and prepared.seed is None
