"""Translate a canonical :class:`~kierouter.ImageRequest` into KIE's legacy GPT-4o image API.

Create is ``POST /api/v1/gpt4o-image/generate`` with a flat camelCase body (KIE-API.md §10):
``size`` (required: ``1:1``, ``3:2`` or ``2:3``), ``prompt``, ``filesUrl`` (≤ 5 reference
images), ``maskUrl``, ``nVariants`` (1, 2 or 4), ``isEnhance``, ``uploadCn``,
``enableFallback``/``fallbackModel`` and ``callBackUrl``. There is no ``model`` field, no seed,
no negative prompt and no resolution setting.

Status is ``GET /api/v1/gpt4o-image/record-info``: ``successFlag`` 0 (generating), 1 (success),
2 (failed; 3 is treated as failed too), with a ``status`` string and a ``progress`` string. The
result URLs are under ``response.resultUrls`` in the OpenAPI schema and ``response.result_urls``
in the quickstart prose: both are accepted. Callbacks carry ``data.info.result_urls``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kierouter import (
    Adaptation,
    ImageRequest,
    MalformedResponseError,
    ModelCard,
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
    check_options,
    check_prompt,
    check_reference_images,
    check_task_kind,
    code_or_none,
    float_or_none,
    int_or_none,
    snap_aspect_ratio,
    status_data,
    text_or_none,
)

from ._cards import GPT4O_SIZES, N_VARIANTS

__all__ = [
    "CREATE_PATH",
    "DOWNLOAD_URL_PATH",
    "FALLBACK_MODELS",
    "MODEL_OPTIONS",
    "STATUS_PATH",
    "Gpt4oImageProvider",
]

CREATE_PATH = "/api/v1/gpt4o-image/generate"
STATUS_PATH = "/api/v1/gpt4o-image/record-info"
DOWNLOAD_URL_PATH = "/api/v1/gpt4o-image/download-url"

#: ``fallbackModel`` values (used only with ``enableFallback``).
FALLBACK_MODELS = ("GPT_IMAGE_1", "FLUX_MAX")
_OPTIONS = ("size", "isEnhance", "uploadCn", "enableFallback", "fallbackModel")
_BOOL_OPTIONS = ("isEnhance", "uploadCn", "enableFallback")

#: Model-specific fields a request may set through ``options`` (keyed by model id or family).
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {"gpt4o-image": _OPTIONS}

_FLAGS = {0: "pending", 1: "success", 2: "failed", 3: "failed"}
_STATUS_WORDS = {
    "GENERATING": "pending",
    "SUCCESS": "success",
    "CREATE_TASK_FAILED": "failed",
    "GENERATE_FAILED": "failed",
}


class Gpt4oImageProvider(Provider):
    """KIE's legacy GPT-4o image API: flat bodies, ``successFlag`` statuses, 4o download links."""

    api_family = "gpt4o-image"
    status_path = STATUS_PATH
    download_url_path = DOWNLOAD_URL_PATH

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
        adaptations: list[Adaptation] = []
        body: dict[str, Any] = {"prompt": request.prompt}
        if "size" in options:
            body["size"] = check_choice("options.size", options["size"], GPT4O_SIZES, model=card.id)
        else:
            size, adaptation = snap_aspect_ratio(request.aspect_ratio, GPT4O_SIZES, default="1:1")
            body["size"] = size
            if adaptation is not None:
                adaptations.append(adaptation)
        if request.images:
            body["filesUrl"] = list(request.images)
        if request.mask is not None:
            body["maskUrl"] = request.mask
        body["nVariants"] = request.count
        for name in _BOOL_OPTIONS:
            if name in options:
                body[name] = check_bool(f"options.{name}", options[name], model=card.id)
        if "fallbackModel" in options:
            body["fallbackModel"] = check_choice(
                "options.fallbackModel", options["fallbackModel"], FALLBACK_MODELS, model=card.id
            )
            if body.get("enableFallback") is not True:
                raise ValidationError(
                    "options.fallbackModel",
                    "is used only with enableFallback=true; set both",
                    allowed=(True,),
                    model=card.id,
                )
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

    def download_url_body(self, task_id: str, url: str) -> dict[str, str]:
        """The 4o download-url endpoint needs the task id as well as the URL."""
        return {"taskId": task_id, "url": url}

    def parse_status(self, data: Any, *, task_id: str) -> TaskStatus:
        """Normalise record-info ``data``; ``null`` means no such task."""
        data = status_data(data, task_id=task_id, family="4o")
        flag = data.get("successFlag")
        word = data.get("status")
        if isinstance(flag, int) and not isinstance(flag, bool) and flag in _FLAGS:
            state = _FLAGS[flag]
        elif isinstance(word, str) and word in _STATUS_WORDS:
            state = _STATUS_WORDS[word]
        else:
            raise MalformedResponseError(
                f"4o task {task_id} has neither a known successFlag nor status: "
                f"successFlag={flag!r}, status={word!r}"
            )
        raw = word if isinstance(word, str) and word else f"successFlag={flag}"
        urls: tuple[str, ...] = ()
        if state == "success":
            response = data.get("response")
            if isinstance(response, Mapping):
                urls = _urls(response.get("resultUrls")) or _urls(response.get("result_urls"))
            if not urls:
                raise MalformedResponseError(f"4o task {task_id} succeeded without result URLs")
        found = data.get("taskId")
        failed = state == "failed"
        return TaskStatus(
            task_id=found if isinstance(found, str) and found else task_id,
            state=state,  # type: ignore[arg-type]
            raw_state=raw,
            urls=urls,
            fail_code=code_or_none(data.get("errorCode")) if failed else None,
            fail_message=text_or_none(data.get("errorMessage")) if failed else None,
            progress=float_or_none(data.get("progress")),
            created_ms=int_or_none(data.get("createTime")),
            completed_ms=int_or_none(data.get("completeTime")),
        )

    def parse_callback(self, body: Any) -> TaskStatus:
        """Normalise a callback: ``data.info.result_urls`` on code 200, else failed (the code)."""
        data, task_id = callback_data(body, family="4o", top_level_first=True)
        failure = callback_failure(body, task_id=task_id, family="4o")
        if failure is not None:
            return failure
        info = data.get("info")
        urls: tuple[str, ...] = ()
        if isinstance(info, Mapping):
            urls = _urls(info.get("result_urls")) or _urls(info.get("resultUrls"))
        if not urls:
            raise MalformedResponseError(f"4o callback for {task_id}: code 200, no result_urls")
        return TaskStatus(
            task_id=task_id, state="success", raw_state="callback code 200", urls=urls
        )


def _check_request(card: ModelCard, request: ImageRequest) -> None:
    """Refuse what the 4o API cannot do, naming the field and what it allows."""
    check_task_kind(card, request)
    n_images = check_reference_images(card, request)  # filesUrl: at most MAX_FILES
    if request.mask is not None and n_images != 1:
        raise ValidationError(
            "mask",
            f"a mask edits exactly one image (got {n_images}); KIE ignores maskUrl otherwise",
            allowed=(1,),
            model=card.id,
        )
    check_count(card, request, allowed=N_VARIANTS)  # nVariants
    check_prompt(card, request)


def _dropped(request: ImageRequest) -> list[Adaptation]:
    """Canonical fields the 4o API has no place for, reported rather than silently lost."""
    out: list[Adaptation] = []
    if request.negative_prompt:
        out.append(
            Adaptation(
                "negative_prompt", request.negative_prompt, None, "GPT-4o has no negative prompt"
            )
        )
    if request.resolution not in (None, "1K"):
        out.append(
            Adaptation(
                "resolution",
                request.resolution,
                None,
                "GPT-4o has no resolution setting; served at about 1K",
            )
        )
    return out


def _urls(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list | tuple):
        return ()
    return tuple(v for v in values if isinstance(v, str) and v)
