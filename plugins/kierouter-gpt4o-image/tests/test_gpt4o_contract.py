"""GPT-4o image contract: the translation builds the bodies KIE-API.md §10 documents, the
documented record-info and callback bodies parse to the right normalised status and URLs (both
``resultUrls`` and ``result_urls``), and wrong shapes raise MalformedResponseError only."""

from __future__ import annotations

import contextlib
from typing import Any

import kierouter_gpt4o_image
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kierouter_gpt4o_image import CARDS, GPT4O_IMAGE, Gpt4oImageProvider

from kierouter import (
    Adaptation,
    ImageRequest,
    MalformedResponseError,
    ModelCard,
    NotFoundError,
    TaskStatus,
    ValidationError,
    load_registry,
)
from kierouter._models import ASPECT_RATIOS
from kierouter.sim._validation import validate_gpt4o

PROVIDER = Gpt4oImageProvider()
TASK = "task_4o_abc123"
URL_A = "https://tempfile.aiquickdraw.com/s/4o_a.png"
URL_B = "https://tempfile.aiquickdraw.com/s/4o_b.png"
IMG = "https://example.com/in.png"
MASK = "https://example.com/mask.png"


def _prepare(request: ImageRequest, **kw: Any) -> Any:
    return PROVIDER.prepare(GPT4O_IMAGE, request, **kw)


# -- requests -------------------------------------------------------------------------------


def test_generate_body_is_the_documented_flat_shape() -> None:
    """A text-to-image request becomes the flat camelCase body of §10: prompt, the required
    size, nVariants and callBackUrl; no model/input wrapper, no seed."""
    prepared = _prepare(
        ImageRequest(prompt="A poster that says OPEN 24/7", aspect_ratio="2:3", count=2, seed=7),
        seed=7,
        callback_url="https://hooks.example/kie?job=1",
    )
    assert prepared.path == "/api/v1/gpt4o-image/generate"
    assert prepared.body == {
        "prompt": "A poster that says OPEN 24/7",
        "size": "2:3",
        "nVariants": 2,
        "callBackUrl": "https://hooks.example/kie?job=1",
    }
    assert prepared.adaptations == ()
    assert (prepared.seed, prepared.seed_ignored) == (None, True)


def test_edit_body_with_every_documented_field() -> None:
    """An edit with one image, a mask and every option fills filesUrl, maskUrl, isEnhance,
    uploadCn, enableFallback and fallbackModel exactly as §10 names and spells them."""
    request = ImageRequest(
        prompt="Replace the sky with a sunset",
        images=(IMG,),
        mask=MASK,
        aspect_ratio="3:2",
        options={
            "gpt4o-image": {
                "isEnhance": True,
                "uploadCn": False,
                "enableFallback": True,
                "fallbackModel": "GPT_IMAGE_1",
            }
        },
    )
    assert _prepare(request).body == {
        "prompt": "Replace the sky with a sunset",
        "size": "3:2",
        "filesUrl": [IMG],
        "maskUrl": MASK,
        "nVariants": 1,
        "isEnhance": True,
        "uploadCn": False,
        "enableFallback": True,
        "fallbackModel": "GPT_IMAGE_1",
    }


def test_five_reference_images_go_to_files_url() -> None:
    """Up to five reference images are sent, in order, as filesUrl (not the deprecated fileUrl)."""
    images = tuple(f"https://example.com/{i}.png" for i in range(5))
    body = _prepare(ImageRequest(prompt="combine these", images=images)).body
    assert body["filesUrl"] == list(images) and "fileUrl" not in body


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        (None, "1:1"),
        ("1:1", "1:1"),
        ("3:2", "3:2"),
        ("2:3", "2:3"),
        ("16:9", "3:2"),
        ("4:3", "3:2"),
        ("21:9", "3:2"),
        ("9:16", "2:3"),
        ("3:4", "2:3"),
        ("4:5", "2:3"),
        ("auto", "1:1"),
    ],
)
def test_size_is_always_sent_and_snapped(ratio: str | None, size: str) -> None:
    """size is required: every ratio maps onto 1:1, 3:2 or 2:3, and a change is reported."""
    prepared = _prepare(ImageRequest(prompt="x", aspect_ratio=ratio))
    assert prepared.body["size"] == size
    changed = [a for a in prepared.adaptations if a.field == "aspect_ratio"]
    assert changed == ([] if ratio in (None, size) else [changed[0]])
    if changed:
        assert (changed[0].requested, changed[0].sent) == (ratio, size)


def test_explicit_size_option_wins_without_snapping() -> None:
    """options.size is sent as given, whatever aspect_ratio says, with no adaptation."""
    prepared = _prepare(
        ImageRequest(prompt="x", aspect_ratio="16:9", options={"gpt4o-image": {"size": "1:1"}})
    )
    assert prepared.body["size"] == "1:1" and prepared.adaptations == ()


def test_unsendable_fields_are_reported() -> None:
    """A negative prompt and a 4K resolution have no 4o field: dropped and reported."""
    prepared = _prepare(ImageRequest(prompt="x", negative_prompt="blurry", resolution="4K"))
    assert "negative_prompt" not in prepared.body
    assert [a.field for a in prepared.adaptations] == ["negative_prompt", "resolution"]
    assert prepared.adaptations[1] == Adaptation(
        "resolution", "4K", None, "GPT-4o has no resolution setting; served at about 1K"
    )


def test_download_url_uses_the_4o_endpoint_with_the_task_id() -> None:
    """Expired links are re-minted at /api/v1/gpt4o-image/download-url with {taskId, url}."""
    assert PROVIDER.download_url_path == "/api/v1/gpt4o-image/download-url"
    assert PROVIDER.download_url_body(TASK, URL_A) == {"taskId": TASK, "url": URL_A}
    assert PROVIDER.status_path == "/api/v1/gpt4o-image/record-info"
    assert PROVIDER.status_params(TASK) == {"taskId": TASK}


# -- answers --------------------------------------------------------------------------------


def _record(**over: Any) -> dict[str, Any]:
    """record-info data in the shape §10 documents (pending by default)."""
    data: dict[str, Any] = {
        "taskId": TASK,
        "paramJson": '{"prompt":"x","size":"1:1"}',
        "completeTime": None,
        "createTime": 1776484279847,
        "response": None,
        "successFlag": 0,
        "status": "GENERATING",
        "errorCode": None,
        "errorMessage": None,
        "progress": "0.40",
    }
    data.update(over)
    return data


def test_create_answer_gives_the_task_id() -> None:
    """The documented create answer {code, msg, data: {taskId}} yields the task id."""
    assert PROVIDER.parse_create({"taskId": TASK}) == TASK


def test_pending_status() -> None:
    """successFlag 0 / GENERATING is pending, with progress as a number."""
    status = PROVIDER.parse_status(_record(), task_id=TASK)
    assert (status.state, status.raw_state, status.progress) == ("pending", "GENERATING", 0.4)
    assert status.urls == () and status.created_ms == 1776484279847


@pytest.mark.parametrize("key", ["resultUrls", "result_urls"])
def test_success_status_takes_either_results_key(key: str) -> None:
    """successFlag 1 gives the URLs from response.resultUrls or response.result_urls."""
    data = _record(
        successFlag=1,
        status="SUCCESS",
        progress="1.00",
        completeTime=1776484325909,
        response={key: [URL_A, URL_B]},
    )
    status = PROVIDER.parse_status(data, task_id=TASK)
    assert (status.state, status.urls, status.progress) == ("success", (URL_A, URL_B), 1.0)
    assert (status.task_id, status.completed_ms) == (TASK, 1776484325909)
    assert (status.fail_code, status.fail_message) == (None, None)


@pytest.mark.parametrize(
    ("flag", "word"), [(2, "GENERATE_FAILED"), (2, "CREATE_TASK_FAILED"), (3, "GENERATE_FAILED")]
)
def test_failed_status_carries_the_error(flag: int, word: str) -> None:
    """successFlag 2 (and 3, which clients also see) is failed with errorCode/errorMessage."""
    data = _record(successFlag=flag, status=word, errorCode=400, errorMessage="prompt flagged")
    status = PROVIDER.parse_status(data, task_id=TASK)
    assert (status.state, status.raw_state) == ("failed", word)
    assert (status.fail_code, status.fail_message, status.urls) == ("400", "prompt flagged", ())


def test_status_word_alone_is_enough() -> None:
    """A body without successFlag still parses from its status word."""
    data = _record(status="SUCCESS", response={"resultUrls": [URL_A]})
    del data["successFlag"]
    assert PROVIDER.parse_status(data, task_id=TASK).urls == (URL_A,)


def test_null_data_means_no_such_task() -> None:
    """record-info data null is NotFoundError naming the task."""
    with pytest.raises(NotFoundError) as caught:
        PROVIDER.parse_status(None, task_id=TASK)
    assert caught.value.task_id == TASK


def test_success_callback() -> None:
    """The documented callback puts snake_case result_urls under data.info."""
    body = {
        "code": 200,
        "msg": "success",
        "data": {"taskId": TASK, "info": {"result_urls": [URL_A]}},
    }
    status = PROVIDER.parse_callback(body)
    assert (status.task_id, status.state, status.urls) == (TASK, "success", (URL_A,))


@pytest.mark.parametrize("code", [400, 451, 500])
def test_failure_callback(code: int) -> None:
    """On failure the code is 400/451/500, msg holds the reason and info is null."""
    body = {
        "code": code,
        "msg": "could not download filesUrl",
        "data": {"taskId": TASK, "info": None},
    }
    status = PROVIDER.parse_callback(body)
    assert (status.state, status.fail_code) == ("failed", str(code))
    assert status.fail_message == "could not download filesUrl"


@pytest.mark.parametrize(
    "data",
    [
        [],
        "success",
        _record(successFlag=7, status="WEIRD"),
        _record(successFlag=None, status=None),
        _record(successFlag=True, status=None),
        _record(successFlag=1, status="SUCCESS", response=None),
        _record(successFlag=1, status="SUCCESS", response={"resultUrls": []}),
        _record(successFlag=1, status="SUCCESS", response={"resultUrls": "https://x/a.png"}),
        _record(successFlag=1, status="SUCCESS", response=["https://x/a.png"]),
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
        [],
        {"code": 200},
        {"code": 200, "data": "x"},
        {"code": 200, "data": {"info": {"result_urls": [URL_A]}}},
        {"code": "200", "data": {"taskId": TASK, "info": {"result_urls": [URL_A]}}},
        {"code": 200, "data": {"taskId": TASK, "info": None}},
        {"code": 200, "data": {"taskId": TASK, "info": {"result_urls": []}}},
        {"code": 200, "data": {"taskId": 5, "info": {"result_urls": [URL_A]}}},
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
    ["taskId", "successFlag", "status", "response", "resultUrls", "result_urls", "info", "data",
     "code", "msg", "errorCode", "errorMessage", "progress", "createTime", "completeTime"]
)  # fmt: skip
SHAPED = st.recursive(
    st.none() | st.integers(0, 3) | st.sampled_from(["SUCCESS", "GENERATING", URL_A, TASK]),
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


# -- cards and registration ------------------------------------------------------------------


def test_card_matches_the_sheet_and_the_api() -> None:
    """10 credits an image (the sheet's GPT-4o price), the three sizes, ≤ 5 references, a mask,
    1/2/4 variants, strengths text and editing, any prompt language."""
    card = GPT4O_IMAGE
    assert (card.id, card.family, card.task_kinds) == (
        "gpt4o-image",
        "gpt4o-image",
        ("generate", "edit"),
    )
    assert (card.pricing.credits, card.latency_p50, card.latency_p90) == (10, 40, 90)
    assert (card.quality, card.success_rate, card.strengths, card.languages) == (
        8.5,
        0.90,
        ("text", "editing"),
        ("*",),
    )
    caps = card.capabilities
    assert caps.aspect_ratios == ("1:1", "3:2", "2:3")
    assert (caps.max_images, caps.max_reference_images, caps.mask, caps.seed) == (4, 5, True, False)
    assert card.credits_for(ImageRequest(prompt="x", count=4)) == 40


def test_registers_through_the_hook() -> None:
    """The plugin registers its card with a Gpt4oImageProvider; the card round-trips as JSON."""
    registry = load_registry([kierouter_gpt4o_image], entry_points=False)
    (record,) = registry.plugins
    assert record.ok and list(record.models) == ["gpt4o-image"]
    assert isinstance(registry.provider("gpt4o-image"), Gpt4oImageProvider)
    card = registry.card("gpt4o-image")
    assert msgspec.json.decode(msgspec.json.encode(card), type=ModelCard) == card
    assert len(CARDS) == 1 and card.id == CARDS[0].id and card.plugin


# -- property: every body KIE would accept ---------------------------------------------------

OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "size": st.sampled_from(("1:1", "3:2", "2:3", "16:9")),
        "isEnhance": st.booleans() | st.just("yes"),
        "uploadCn": st.booleans(),
        "enableFallback": st.booleans(),
        "fallbackModel": st.sampled_from(("GPT_IMAGE_1", "FLUX_MAX", "DALL_E")),
    },
)
REQUESTS = st.builds(
    ImageRequest,
    prompt=st.sampled_from(("a poster that says HI", "", "x" * 5001)) | st.text(max_size=9),
    task=st.sampled_from((None, None, "generate", "edit", "upscale")),
    aspect_ratio=st.sampled_from((None, *ASPECT_RATIOS, "7:3")),
    resolution=st.sampled_from((None, "1K", "2K", "4K")),
    count=st.sampled_from((1, 1, 1, 2, 3, 4, 5)),
    seed=st.none() | st.integers(0, 2**31 - 1),
    images=st.sampled_from((0, 0, 1, 1, 2, 5, 6)).map(
        lambda n: tuple(f"https://e.x/{i}.png" for i in range(n))
    ),
    mask=st.none() | st.just(MASK),
    negative_prompt=st.none() | st.just("blurry"),
    options=st.dictionaries(st.sampled_from(("gpt4o-image",)), OPTIONS, max_size=1),
)


@settings(max_examples=400, deadline=None)
@given(request=REQUESTS)
def test_every_body_sent_is_one_kie_accepts(request: ImageRequest) -> None:
    """Whatever the canonical request, the plugin either refuses it with ValidationError or
    builds a body that passes KIE's documented 4o rules (as the emulator enforces them)."""
    try:
        prepared = _prepare(request, seed=request.seed)
    except ValidationError:
        return
    validate_gpt4o(prepared.body)
    body = prepared.body
    assert body["prompt"] == request.prompt and body["nVariants"] == request.count
    assert body.get("filesUrl", []) == list(request.images)
    assert body["size"] in ("1:1", "3:2", "2:3") and prepared.seed is None
