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
    NotFoundError,
    TaskStatus,
    ValidationError,
)
from kierouter.provider import (
    PreparedCall,
    Provider,
    check_choice,
    check_max_len,
    snap_aspect_ratio,
)

from ._cards import GPT4O_SIZES, MAX_FILES, N_VARIANTS

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
        options = _options(card, request)
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
                body[name] = _bool(card, name, options[name])
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
        if data is None:
            raise NotFoundError("no such task", code=404, task_id=task_id)
        if not isinstance(data, Mapping):
            raise MalformedResponseError(f"4o record-info data is not an object: {_clip(data)}")
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
            fail_code=_code(data.get("errorCode")) if failed else None,
            fail_message=_text(data.get("errorMessage")) if failed else None,
            progress=_float(data.get("progress")),
            created_ms=_int(data.get("createTime")),
            completed_ms=_int(data.get("completeTime")),
        )

    def parse_callback(self, body: Any) -> TaskStatus:
        """Normalise a callback: ``data.info.result_urls`` on code 200, else failed (the code)."""
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), Mapping):
            raise MalformedResponseError(f"4o callback has no data object: {_clip(body)}")
        data = body["data"]
        task_id = body.get("taskId") or data.get("taskId") or data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise MalformedResponseError("4o callback has no taskId")
        code = body.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            raise MalformedResponseError(f"4o callback for {task_id} has no integer code")
        msg = _text(body.get("msg")) or _text(body.get("message"))
        if code != 200:
            return TaskStatus(
                task_id=task_id,
                state="failed",
                raw_state=f"callback code {code}",
                fail_code=str(code),
                fail_message=msg,
            )
        info = data.get("info")
        urls: tuple[str, ...] = ()
        if isinstance(info, Mapping):
            urls = _urls(info.get("result_urls")) or _urls(info.get("resultUrls"))
        if not urls:
            raise MalformedResponseError(f"4o callback for {task_id}: code 200, no result_urls")
        return TaskStatus(
            task_id=task_id, state="success", raw_state="callback code 200", urls=urls
        )


def _options(card: ModelCard, request: ImageRequest) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key in (card.family, card.id):
        for name, value in request.options.get(key, {}).items():
            if name not in _OPTIONS:
                raise ValidationError(
                    f"options.{name}",
                    f"{card.id} has no option {name!r}",
                    allowed=_OPTIONS,
                    model=card.id,
                )
            merged[name] = value
    return merged


def _bool(card: ModelCard, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(
            f"options.{name}", f"{value!r} is not a boolean", allowed=(True, False), model=card.id
        )
    return value


def _check_request(card: ModelCard, request: ImageRequest) -> None:
    """Refuse what the 4o API cannot do, naming the field and what it allows."""
    if request.kind not in card.task_kinds:
        raise ValidationError(
            "task",
            f"{card.id} generates and edits; it cannot {request.kind}",
            allowed=card.task_kinds,
            model=card.id,
        )
    n_images = len(request.images)
    if n_images > MAX_FILES:
        raise ValidationError(
            "images",
            f"{n_images} reference images; filesUrl takes at most {MAX_FILES}",
            allowed=tuple(range(1, MAX_FILES + 1)),
            model=card.id,
        )
    if request.mask is not None and n_images != 1:
        raise ValidationError(
            "mask",
            f"a mask edits exactly one image (got {n_images}); KIE ignores maskUrl otherwise",
            allowed=(1,),
            model=card.id,
        )
    if request.count not in N_VARIANTS:
        raise ValidationError(
            "count",
            f"{request.count} images; nVariants takes 1, 2 or 4",
            allowed=N_VARIANTS,
            model=card.id,
        )
    check_max_len("prompt", request.prompt, card.capabilities.max_prompt_chars, model=card.id)


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


def _code(value: Any) -> str | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, int | str):
        return str(value)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _clip(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
