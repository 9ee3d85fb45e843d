"""Translate a canonical :class:`~kierouter.ImageRequest` into KIE's legacy Midjourney API.

Create is ``POST /api/v1/mj/generate`` with a flat camelCase body (KIE-API.md §12): ``taskType``
(``mj_txt2img``, ``mj_img2img``, ``mj_style_reference``, ``mj_omni_reference``; the video types
are not image jobs and are refused), ``prompt`` (≤ 2000), lowercase ``speed``
(``relaxed|fast|turbo``, which sets the price), ``fileUrls``, ``aspectRatio``, ``version``
(``7, 6.1, 6, 5.2, 5.1, niji6``, and ``niji7`` from one source), ``variety`` (0–100, step 5),
``stylization`` (0–1000, multiples of 50), ``weirdness`` (0–3000, multiples of 100), ``ow``
(1–1000, omni reference only), ``waterMark``, ``enableTranslation`` and ``callBackUrl``.

Status is ``GET /api/v1/mj/record-info``: ``successFlag`` 0 (generating), 1 (success), 2 (failed),
3 (generation failed); results are **objects** under ``resultInfoJson.resultUrls[].resultUrl``
(4 images). Callbacks carry a **flat** string array ``data.resultUrls``; code 500 means failure.

KIE removed its MJ pages from the docs in 2026. When KIE answers that the endpoint is not there
(HTTP 404 or body code 404), :meth:`MidjourneyProvider.map_error` turns it into
:class:`~kierouter.EndpointGoneError` saying so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from kierouter import (
    Adaptation,
    EndpointGoneError,
    ImageRequest,
    KieError,
    KieRouterError,
    MalformedResponseError,
    ModelCard,
    NotFoundError,
    TaskStatus,
    ValidationError,
)
from kierouter.provider import (
    PreparedCall,
    Provider,
    callback_data,
    callback_failure,
    check_bool,
    check_choice,
    check_count,
    check_mask,
    check_options,
    check_prompt,
    check_range,
    check_reference_images,
    check_task_kind,
    code_or_none,
    int_or_none,
    parse_json_field,
    snap_aspect_ratio,
    status_data,
    text_or_none,
)

from ._cards import IMAGES_PER_TASK, MAX_FILES, MJ_ASPECT_RATIOS, SPEED_CREDITS

__all__ = [
    "CREATE_PATH",
    "IMAGE_TASK_TYPES",
    "MODEL_OPTIONS",
    "SPEEDS",
    "STATUS_PATH",
    "VERSIONS",
    "MidjourneyProvider",
]

CREATE_PATH = "/api/v1/mj/generate"
STATUS_PATH = "/api/v1/mj/record-info"

#: The image task types; ``mj_video``/``mj_video_hd`` make videos and are not offered.
IMAGE_TASK_TYPES = ("mj_txt2img", "mj_img2img", "mj_style_reference", "mj_omni_reference")
_NEEDS_FILES = IMAGE_TASK_TYPES[1:]
#: Lowercase, as the real API spells them (the sheet's ``Relax|Fast|Turbo`` are wrong).
SPEEDS = tuple(SPEED_CREDITS)
#: ``version`` values; ``niji6`` is the anime model (lowercase; not the sheet's ``Niji6``).
VERSIONS = ("7", "6.1", "6", "5.2", "5.1", "niji6", "niji7")
_DEFAULT_SPEED = "fast"

_OPTIONS = (
    "taskType", "speed", "version", "aspectRatio", "variety", "stylization", "weirdness", "ow",
    "waterMark", "enableTranslation",
)  # fmt: skip
#: Model-specific fields a request may set through ``options`` (keyed by model id or family).
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {"midjourney": _OPTIONS}

#: (low, high, step) of the integer style parameters.
_RANGES = {
    "variety": (0, 100, 5),
    "stylization": (0, 1000, 50),
    "weirdness": (0, 3000, 100),
}
_FLAGS = {0: "generating", 1: "success", 2: "failed", 3: "generation failed"}


class MidjourneyProvider(Provider):
    """KIE's legacy MJ API: flat bodies, ``successFlag`` statuses, result objects, gone-aware."""

    api_family = "midjourney"
    status_path = STATUS_PATH

    def prepare(
        self,
        card: ModelCard,
        request: ImageRequest,
        *,
        seed: int | None = None,
        callback_url: str | None = None,
    ) -> PreparedCall:
        """Validate ``request`` and build the generate body (ValidationError before any call)."""
        request.validate()
        options = check_options(card, request, _OPTIONS)
        _check_request(card, request)
        task_type = _task_type(card, request, options)
        adaptations: list[Adaptation] = []
        body: dict[str, Any] = {"taskType": task_type, "prompt": request.prompt}
        speed = options.get("speed", _DEFAULT_SPEED)
        body["speed"] = check_choice("options.speed", speed, SPEEDS, model=card.id)
        if request.images:
            body["fileUrls"] = list(request.images)
        if "aspectRatio" in options:
            body["aspectRatio"] = check_choice(
                "options.aspectRatio", options["aspectRatio"], MJ_ASPECT_RATIOS, model=card.id
            )
        elif request.aspect_ratio is not None:
            ratio, adaptation = snap_aspect_ratio(
                request.aspect_ratio, MJ_ASPECT_RATIOS, default="1:1"
            )
            body["aspectRatio"] = ratio
            if adaptation is not None:
                adaptations.append(adaptation)
        if "version" in options:
            body["version"] = _version(card, options["version"])
        _style_fields(card, options, task_type, body)
        if callback_url:
            body["callBackUrl"] = callback_url
        adaptations += _dropped(request)
        return PreparedCall(
            path=CREATE_PATH,
            body=body,
            adaptations=tuple(adaptations),
            seed=None,
            seed_ignored=seed is not None,
        )

    def parse_status(self, data: Any, *, task_id: str) -> TaskStatus:
        """Normalise record-info ``data``; ``null`` means no such task."""
        data = status_data(data, task_id=task_id, family="MJ")
        flag = data.get("successFlag")
        if isinstance(flag, bool) or not isinstance(flag, int) or flag not in _FLAGS:
            raise MalformedResponseError(f"MJ task {task_id} has an unknown successFlag {flag!r}")
        state: Literal["pending", "success", "failed"] = (
            "pending" if flag == 0 else "success" if flag == 1 else "failed"
        )
        urls: tuple[str, ...] = ()
        if state == "success":
            info = parse_json_field(
                data.get("resultInfoJson"), f"MJ task {task_id}: resultInfoJson"
            )
            if isinstance(info, Mapping):
                urls = _urls(info.get("resultUrls"))
            if not urls:
                raise MalformedResponseError(f"MJ task {task_id} succeeded without result URLs")
        found = data.get("taskId")
        failed = state == "failed"
        return TaskStatus(
            task_id=found if isinstance(found, str) and found else task_id,
            state=state,
            raw_state=_FLAGS[flag],
            urls=urls,
            fail_code=code_or_none(data.get("errorCode")) if failed else None,
            fail_message=text_or_none(data.get("errorMessage")) if failed else None,
            created_ms=int_or_none(data.get("createTime")),
            completed_ms=int_or_none(data.get("completeTime")),
        )

    def parse_callback(self, body: Any) -> TaskStatus:
        """Normalise a callback: flat ``data.resultUrls`` on code 200, else failed (the code)."""
        data, task_id = callback_data(body, family="MJ", top_level_first=True)
        failure = callback_failure(body, task_id=task_id, family="MJ")
        if failure is not None:
            return failure
        urls = _urls(data.get("resultUrls"))
        if not urls:
            raise MalformedResponseError(f"MJ callback for {task_id}: code 200, no resultUrls")
        return TaskStatus(
            task_id=task_id, state="success", raw_state="callback code 200", urls=urls
        )

    def map_error(self, exc: KieError) -> KieRouterError:
        """A 404 that is not about one task means KIE's MJ endpoint is gone: say so.

        A status read answered 404 "Task not found" (or "Record does not exist") is a task KIE
        does not show yet, not a removed API: it stays a :class:`~kierouter.NotFoundError`,
        which the router reads again.
        """
        if isinstance(exc, EndpointGoneError) or not isinstance(exc, NotFoundError):
            return exc
        if exc.task_id is not None or (exc.code != 404 and exc.http_status != 404):
            return exc  # an unknown task (record-info data null, "Record does not exist")
        said = exc.message.removeprefix(f"KIE error {exc.code}: ")
        if _MISSING_TASK.search(said):
            return exc
        return EndpointGoneError(
            "KIE's Midjourney API (/api/v1/mj/*) answered 404: the endpoint is gone. KIE removed "
            "its Midjourney pages from the docs in 2026; route artistic jobs to another model "
            f"(e.g. flux-kontext-max) or uninstall kierouter-midjourney (KIE said: {said})",
            code=exc.code,
            http_status=exc.http_status,
        )


#: what KIE says when a status read names a task it does not (yet) know
_MISSING_TASK = re.compile(
    r"task not found|record does not exist|record is null|no such task", re.I
)


def _style_fields(
    card: ModelCard, options: Mapping[str, Any], task_type: str, body: dict[str, Any]
) -> None:
    """The optional MJ parameters, each checked against its documented range or type."""
    for name, (low, high, step) in _RANGES.items():
        if name in options:
            body[name] = check_range(
                f"options.{name}", options[name], low, high, model=card.id, integer=True,
                step=step,
            )  # fmt: skip
    if "ow" in options:
        if task_type != "mj_omni_reference":
            raise ValidationError(
                "options.ow",
                f"omni-reference weight applies to mj_omni_reference only, not {task_type}",
                allowed=("mj_omni_reference",),
                model=card.id,
            )
        body["ow"] = check_range("options.ow", options["ow"], 1, 1000, model=card.id, integer=True)
    if "waterMark" in options:
        if not isinstance(options["waterMark"], str):
            raise ValidationError(
                "options.waterMark", f"{options['waterMark']!r} is not a string", model=card.id
            )
        body["waterMark"] = options["waterMark"]
    if "enableTranslation" in options:
        body["enableTranslation"] = check_bool(
            "options.enableTranslation", options["enableTranslation"], model=card.id
        )


def _task_type(card: ModelCard, request: ImageRequest, options: Mapping[str, Any]) -> str:
    default = "mj_img2img" if request.images else "mj_txt2img"
    task_type = options.get("taskType", default)
    if task_type in ("mj_video", "mj_video_hd"):
        raise ValidationError(
            "options.taskType",
            f"{task_type} makes a video; kierouter routes image jobs",
            allowed=IMAGE_TASK_TYPES,
            model=card.id,
        )
    check_choice("options.taskType", task_type, IMAGE_TASK_TYPES, model=card.id)
    if task_type in _NEEDS_FILES and not request.images:
        raise ValidationError(
            "images",
            f"{task_type} needs at least one reference image (fileUrls)",
            allowed=tuple(range(1, MAX_FILES + 1)),
            model=card.id,
        )
    if task_type == "mj_txt2img" and request.images:
        raise ValidationError(
            "options.taskType",
            "mj_txt2img takes no reference images; use one of the image task types",
            allowed=_NEEDS_FILES,
            model=card.id,
        )
    return str(task_type)


def _version(card: ModelCard, value: Any) -> str:
    # 7 and 6.1 are natural to write as numbers; send them as the strings KIE takes
    text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    return str(check_choice("options.version", text, VERSIONS, model=card.id))


def _check_request(card: ModelCard, request: ImageRequest) -> None:
    """Refuse what the MJ API cannot do, naming the field and what it allows."""
    check_task_kind(card, request)
    check_reference_images(card, request)  # fileUrls: at most MAX_FILES
    check_mask(card, request)
    check_count(card, request)  # 1..IMAGES_PER_TASK; the rest of the grid is an adaptation
    check_prompt(card, request)


def _dropped(request: ImageRequest) -> list[Adaptation]:
    """Canonical fields the MJ API has no place for, reported rather than silently lost."""
    out: list[Adaptation] = []
    if request.count != IMAGES_PER_TASK:
        out.append(
            Adaptation("count", request.count, IMAGES_PER_TASK, "Midjourney renders 4 per task")
        )
    if request.negative_prompt:
        out.append(
            Adaptation(
                "negative_prompt",
                request.negative_prompt,
                None,
                "the MJ API has no negative prompt",
            )
        )
    if request.resolution not in (None, "1K"):
        out.append(
            Adaptation(
                "resolution",
                request.resolution,
                None,
                "the MJ API has no resolution setting; served at about 1K",
            )
        )
    return out


def _urls(values: Any) -> tuple[str, ...]:
    """Result URLs from strings or ``{resultUrl}`` objects (record-info uses objects)."""
    if not isinstance(values, list | tuple):
        return ()
    out: list[str] = []
    for value in values:
        if isinstance(value, Mapping):
            value = value.get("resultUrl")
        if isinstance(value, str) and value:
            out.append(value)
    return tuple(out)
