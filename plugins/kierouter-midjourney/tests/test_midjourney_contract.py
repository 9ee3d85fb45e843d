"""Midjourney contract: the translation builds the bodies KIE-API.md §12 documents (lowercase
speed, niji6, style ranges, taskType by task), the documented record-info (result objects) and
callback (flat strings) bodies parse to the right status and URLs, wrong shapes raise
MalformedResponseError only, and a 404 from KIE becomes EndpointGoneError."""

from __future__ import annotations

import contextlib
from typing import Any

import kierouter_midjourney
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kierouter_midjourney import CARDS, MIDJOURNEY, MidjourneyProvider

from kierouter import (
    EndpointGoneError,
    ImageRequest,
    MalformedResponseError,
    ModelCard,
    NotFoundError,
    TaskStatus,
    ValidationError,
    load_registry,
)
from kierouter._errors import KieValidationError, ServerError, error_for_code
from kierouter._models import ASPECT_RATIOS
from kierouter.sim._validation import validate_mj

PROVIDER = MidjourneyProvider()
TASK = "mj_task_abc123"
URLS = tuple(f"https://tempfile.aiquickdraw.com/mj/{TASK}_{i}.png" for i in range(4))
IMG = "https://example.com/in.png"


def _prepare(request: ImageRequest, **kw: Any) -> Any:
    return PROVIDER.prepare(MIDJOURNEY, request, **kw)


def _mj(**options: Any) -> dict[str, dict[str, Any]]:
    return {"midjourney": options}


# -- requests -------------------------------------------------------------------------------


def test_text_to_image_body() -> None:
    """A text-to-image request becomes the flat §12 body: taskType mj_txt2img, prompt, the
    lowercase default speed, the ratio and callBackUrl; no model/input wrapper, no seed."""
    prepared = _prepare(
        ImageRequest(prompt="a lighthouse in a storm, oil painting", aspect_ratio="16:9", count=4),
        seed=3,
        callback_url="https://hooks.example/kie?job=1",
    )
    assert prepared.path == "/api/v1/mj/generate"
    assert prepared.body == {
        "taskType": "mj_txt2img",
        "prompt": "a lighthouse in a storm, oil painting",
        "speed": "fast",
        "aspectRatio": "16:9",
        "callBackUrl": "https://hooks.example/kie?job=1",
    }
    assert prepared.adaptations == ()
    assert (prepared.seed, prepared.seed_ignored) == (None, True)


def test_every_documented_field_is_spelled_as_kie_spells_it() -> None:
    """An anime image-to-image job fills fileUrls, aspectRatio, version niji6, variety,
    stylization, weirdness, waterMark and enableTranslation, with relaxed speed."""
    request = ImageRequest(
        prompt="a girl with a red umbrella, studio anime style",
        images=(IMG,),
        aspect_ratio="2:3",
        count=4,
        options=_mj(
            speed="relaxed",
            version="niji6",
            variety=15,
            stylization=250,
            weirdness=300,
            waterMark="kr",
            enableTranslation=False,
        ),
    )
    assert _prepare(request).body == {
        "taskType": "mj_img2img",
        "prompt": "a girl with a red umbrella, studio anime style",
        "speed": "relaxed",
        "fileUrls": [IMG],
        "aspectRatio": "2:3",
        "version": "niji6",
        "variety": 15,
        "stylization": 250,
        "weirdness": 300,
        "waterMark": "kr",
        "enableTranslation": False,
    }


def test_omni_reference_takes_ow() -> None:
    """mj_omni_reference is chosen by option and is the only task type that carries ow."""
    request = ImageRequest(
        prompt="this character on a beach",
        images=(IMG,),
        count=4,
        options=_mj(taskType="mj_omni_reference", ow=400, version=7),
    )
    body = _prepare(request).body
    assert (body["taskType"], body["ow"], body["version"]) == ("mj_omni_reference", 400, "7")


@pytest.mark.parametrize(
    ("version", "sent"), [(7, "7"), (6.1, "6.1"), ("5.2", "5.2"), ("niji6", "niji6")]
)
def test_versions_are_sent_as_strings(version: Any, sent: str) -> None:
    """version 7 or 6.1 written as numbers are sent as KIE's strings."""
    body = _prepare(ImageRequest(prompt="x", count=4, options=_mj(version=version))).body
    assert body["version"] == sent


@pytest.mark.parametrize(
    ("ratio", "sent"),
    [
        ("1:1", "1:1"),
        ("5:6", "5:6"),
        ("2:1", "2:1"),
        ("21:9", "2:1"),
        ("4:5", "5:6"),
        ("9:21", "1:2"),
    ],
)
def test_aspect_ratio_snaps_to_the_eleven(ratio: str, sent: str) -> None:
    """Ratios MJ lacks snap to the nearest of its eleven, and the change is reported."""
    prepared = _prepare(ImageRequest(prompt="x", count=4, aspect_ratio=ratio))
    assert prepared.body["aspectRatio"] == sent
    changed = [(a.requested, a.sent) for a in prepared.adaptations if a.field == "aspect_ratio"]
    assert changed == ([] if ratio == sent else [(ratio, sent)])


def test_no_ratio_sends_none() -> None:
    """Without a ratio, aspectRatio is left to KIE's default (1:1)."""
    assert "aspectRatio" not in _prepare(ImageRequest(prompt="x", count=4)).body


def test_four_images_per_task_is_reported() -> None:
    """count 1 still gets MJ's grid of 4: the adaptation says so; negative prompt and 4K too."""
    prepared = _prepare(ImageRequest(prompt="x", negative_prompt="text", resolution="4K"))
    assert [(a.field, a.requested, a.sent) for a in prepared.adaptations] == [
        ("count", 1, 4),
        ("negative_prompt", "text", None),
        ("resolution", "4K", None),
    ]


@pytest.mark.parametrize("speed", ["relaxed", "fast", "turbo"])
def test_price_follows_speed(speed: str) -> None:
    """The card prices a task by the speed sent: relaxed 12.5, fast 25 (the sheet), turbo 50."""
    request = ImageRequest(prompt="x", count=4, options=_mj(speed=speed))
    assert _prepare(request).body["speed"] == speed
    assert MIDJOURNEY.credits_for(request) == {"relaxed": 12.5, "fast": 25, "turbo": 50}[speed]
    assert MIDJOURNEY.credits_for(ImageRequest(prompt="x")) == 25


# -- answers --------------------------------------------------------------------------------


def _record(**over: Any) -> dict[str, Any]:
    """record-info data in the shape §12 documents (generating by default)."""
    data: dict[str, Any] = {
        "taskId": TASK,
        "taskType": "mj_txt2img",
        "paramJson": '{"prompt":"x","speed":"fast","taskType":"mj_txt2img"}',
        "completeTime": None,
        "createTime": 1776484279847,
        "successFlag": 0,
        "errorCode": None,
        "errorMessage": None,
        "resultInfoJson": None,
    }
    data.update(over)
    return data


def test_create_answer_gives_the_task_id() -> None:
    """The documented create answer {code, msg, data: {taskId}} yields the task id."""
    assert PROVIDER.parse_create({"taskId": TASK}) == TASK


def test_pending_status() -> None:
    """successFlag 0 is pending."""
    status = PROVIDER.parse_status(_record(), task_id=TASK)
    assert (status.state, status.raw_state, status.urls) == ("pending", "generating", ())


def test_success_status_reads_result_objects() -> None:
    """successFlag 1: the four URLs come from resultInfoJson.resultUrls[].resultUrl."""
    data = _record(
        successFlag=1,
        completeTime=1776484380000,
        resultInfoJson={"resultUrls": [{"resultUrl": u} for u in URLS]},
    )
    status = PROVIDER.parse_status(data, task_id=TASK)
    assert (status.state, status.urls, status.completed_ms) == ("success", URLS, 1776484380000)


def test_result_info_as_a_json_string() -> None:
    """resultInfoJson given as a JSON string (its name suggests one) parses the same."""
    data = _record(
        successFlag=1,
        resultInfoJson=msgspec.json.encode({"resultUrls": [{"resultUrl": URLS[0]}]}).decode(),
    )
    assert PROVIDER.parse_status(data, task_id=TASK).urls == URLS[:1]


@pytest.mark.parametrize(("flag", "raw"), [(2, "failed"), (3, "generation failed")])
def test_failed_status(flag: int, raw: str) -> None:
    """successFlag 2 (failed) and 3 (generation failed) are failed, with errorCode/errorMessage."""
    data = _record(successFlag=flag, errorCode=500, errorMessage="Midjourney is busy")
    status = PROVIDER.parse_status(data, task_id=TASK)
    assert (status.state, status.raw_state) == ("failed", raw)
    assert (status.fail_code, status.fail_message, status.urls) == ("500", "Midjourney is busy", ())


def test_success_callback_has_flat_strings() -> None:
    """The documented callback: data.resultUrls is a flat string array, with promptJson."""
    body = {
        "code": 200,
        "msg": "success",
        "data": {"taskId": TASK, "promptJson": '{"prompt":"x"}', "resultUrls": list(URLS)},
    }
    status = PROVIDER.parse_callback(body)
    assert (status.task_id, status.state, status.urls) == (TASK, "success", URLS)


def test_failure_callback() -> None:
    """Code 500 in a callback means the task failed; msg is the reason."""
    body = {"code": 500, "msg": "generation failed", "data": {"taskId": TASK, "resultUrls": []}}
    status = PROVIDER.parse_callback(body)
    assert (status.state, status.fail_code, status.fail_message) == (
        "failed",
        "500",
        "generation failed",
    )


def test_null_data_means_no_such_task() -> None:
    """record-info data null is NotFoundError naming the task (not an endpoint gone)."""
    with pytest.raises(NotFoundError) as caught:
        PROVIDER.parse_status(None, task_id=TASK)
    assert not isinstance(caught.value, EndpointGoneError)
    assert PROVIDER.map_error(caught.value) is caught.value


@pytest.mark.parametrize(
    "data",
    [
        [],
        "done",
        _record(successFlag=None),
        _record(successFlag=True),
        _record(successFlag="1"),
        _record(successFlag=9),
        _record(successFlag=1, resultInfoJson=None),
        _record(successFlag=1, resultInfoJson="{not json"),
        _record(successFlag=1, resultInfoJson={"resultUrls": []}),
        _record(successFlag=1, resultInfoJson={"resultUrls": [{"url": 5}]}),
        _record(successFlag=1, resultInfoJson=["x"]),
    ],
)
def test_wrong_status_shapes_are_malformed(data: Any) -> None:
    """Every wrong record-info shape raises MalformedResponseError, never KeyError/TypeError."""
    with pytest.raises(MalformedResponseError):
        PROVIDER.parse_status(data, task_id=TASK)


@pytest.mark.parametrize(
    "body",
    [
        None,
        "x",
        {"code": 200},
        {"code": 200, "data": []},
        {"code": 200, "data": {"resultUrls": list(URLS)}},
        {"code": "200", "data": {"taskId": TASK, "resultUrls": list(URLS)}},
        {"code": 200, "data": {"taskId": TASK, "resultUrls": []}},
        {"code": 200, "data": {"taskId": TASK, "resultUrls": "https://x/a.png"}},
    ],
)
def test_wrong_callback_shapes_are_malformed(body: Any) -> None:
    """Every wrong callback shape raises MalformedResponseError, never KeyError/TypeError."""
    with pytest.raises(MalformedResponseError):
        PROVIDER.parse_callback(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 600) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["taskId", "successFlag", "resultInfoJson", "resultUrls", "resultUrl", "data", "code",
     "msg", "errorCode", "errorMessage", "createTime", "completeTime"]
)  # fmt: skip
SHAPED = st.recursive(
    st.none() | st.integers(0, 3) | st.sampled_from([URLS[0], TASK, '{"resultUrls":[]}']),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=16,
)


@settings(max_examples=400, deadline=None)
@given(value=JSON | SHAPED)
def test_parsers_never_raise_anything_but_malformed(value: Any) -> None:
    """Whatever JSON arrives, parsing gives a TaskStatus or MalformedResponseError (or
    NotFoundError for null status data), never KeyError, TypeError or AttributeError."""
    with contextlib.suppress(MalformedResponseError, NotFoundError):
        assert isinstance(PROVIDER.parse_status(value, task_id=TASK), TaskStatus)
    with contextlib.suppress(MalformedResponseError):
        assert isinstance(PROVIDER.parse_callback(value), TaskStatus)


# -- the endpoint is gone --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "http_status", "message"),
    [
        (404, 404, "HTTP 404"),
        (404, 200, "Not Found"),
        (404, 404, "Not Found: POST /api/v1/mj/generate"),
    ],
)
def test_a_404_from_kie_means_the_endpoint_is_gone(
    code: int, http_status: int, message: str
) -> None:
    """HTTP 404 or body code 404 (not about one task) maps to EndpointGoneError that says KIE
    removed Midjourney and what to do; KIE's own words are kept."""
    error = error_for_code(code, message, http_status=http_status)
    mapped = PROVIDER.map_error(error)
    assert isinstance(mapped, EndpointGoneError)
    text = str(mapped)
    assert "Midjourney" in text and "gone" in text and "removed" in text and message in text
    assert (mapped.code, mapped.http_status) == (code, http_status)


@pytest.mark.parametrize(
    "error",
    [
        ServerError("busy", code=500),
        KieValidationError("bad", code=422),
        NotFoundError("Record does not exist", code=422),
        NotFoundError("no such task", code=404, task_id=TASK),
    ],
)
def test_other_errors_pass_through(error: Any) -> None:
    """Other errors, and not-found about one task, are returned unchanged."""
    assert PROVIDER.map_error(error) is error


# -- cards and registration ------------------------------------------------------------------


def test_card_matches_the_sheet_and_the_api() -> None:
    """25 credits a task of 4 (the sheet's Midjourney price, fast), priced by speed; artistic and
    anime; English prompts; MJ's eleven ratios; no mask, seed or negative prompt."""
    card = MIDJOURNEY
    assert (card.id, card.family, card.task_kinds) == (
        "midjourney",
        "midjourney",
        ("generate", "edit"),
    )
    pricing = card.pricing
    assert (pricing.credits, pricing.per_task, pricing.images_per_task) == (25, True, 4)
    assert pricing.by_speed == {"relaxed": 12.5, "fast": 25, "turbo": 50}
    assert (card.latency_p50, card.latency_p90, card.quality, card.success_rate) == (
        60,
        150,
        9.0,
        0.85,
    )
    assert (card.strengths, card.languages) == (("artistic", "anime"), ("en",))
    caps = card.capabilities
    assert len(caps.aspect_ratios) == 11 and "niji6" not in caps.aspect_ratios
    assert (caps.max_images, caps.max_prompt_chars, caps.mask, caps.seed) == (4, 2000, False, False)


def test_registers_through_the_hook() -> None:
    """The plugin registers its card with a MidjourneyProvider; the card round-trips as JSON."""
    registry = load_registry([kierouter_midjourney], entry_points=False)
    (record,) = registry.plugins
    assert record.ok and list(record.models) == ["midjourney"]
    assert isinstance(registry.provider("midjourney"), MidjourneyProvider)
    card = registry.card("midjourney")
    assert msgspec.json.decode(msgspec.json.encode(card), type=ModelCard) == card
    assert len(CARDS) == 1 and card.id == CARDS[0].id


# -- property: every body KIE would accept ---------------------------------------------------

OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "taskType": st.sampled_from(
            ("mj_txt2img", "mj_img2img", "mj_style_reference", "mj_omni_reference", "mj_video")
        ),
        "speed": st.sampled_from(("relaxed", "fast", "turbo", "Fast", "Relax")),
        "version": st.sampled_from(
            ("7", "6.1", "6", "5.2", "5.1", "niji6", "niji7", "Niji6", 7, 6.1, 8)
        ),
        "aspectRatio": st.sampled_from(("1:1", "2:1", "16:9", "21:9")),
        "variety": st.sampled_from((0, 5, 50, 100, 7, 105, -5, 2.5)),
        "stylization": st.sampled_from((0, 50, 1000, 25, 1050)),
        "weirdness": st.sampled_from((0, 100, 3000, 150, 3100)),
        "ow": st.sampled_from((1, 500, 1000, 0, 1001)),
        "waterMark": st.sampled_from(("", "kr", 5)),
        "enableTranslation": st.booleans() | st.just("no"),
    },
)
REQUESTS = st.builds(
    ImageRequest,
    prompt=st.sampled_from(("a castle in the clouds", "", "x" * 2001)) | st.text(max_size=9),
    task=st.sampled_from((None, None, "generate", "edit", "upscale")),
    aspect_ratio=st.sampled_from((None, *ASPECT_RATIOS, "7:3")),
    resolution=st.sampled_from((None, "1K", "4K")),
    count=st.sampled_from((1, 4, 4, 2, 5)),
    seed=st.none() | st.integers(0, 2**31 - 1),
    images=st.sampled_from((0, 0, 1, 1, 2, 5, 6)).map(
        lambda n: tuple(f"https://e.x/{i}.png" for i in range(n))
    ),
    mask=st.none() | st.just(IMG),
    negative_prompt=st.none() | st.just("blurry"),
    options=st.dictionaries(st.just("midjourney"), OPTIONS, max_size=1),
)


@settings(max_examples=500, deadline=None)
@given(request=REQUESTS)
def test_every_body_sent_is_one_kie_accepts(request: ImageRequest) -> None:
    """Whatever the canonical request, the plugin either refuses it with ValidationError or
    builds a body that passes KIE's documented MJ rules (as the emulator enforces them)."""
    try:
        prepared = _prepare(request, seed=request.seed)
    except ValidationError:
        return
    validate_mj(prepared.body)
    body = prepared.body
    assert body["prompt"] == request.prompt and body["speed"] in ("relaxed", "fast", "turbo")
    assert body.get("fileUrls", []) == list(request.images)
    assert (body["taskType"] == "mj_txt2img") == (not request.images)
    assert prepared.seed is None
