"""Flux Kontext on KIE's legacy API (KIE-API.md §11): flat camelCase bodies, ``successFlag``.

* **Create** ``POST /api/v1/flux/kontext/generate``: ``prompt``, ``model``
  (``flux-kontext-pro|flux-kontext-max``), ``aspectRatio`` (``21:9, 16:9, 4:3, 1:1, 3:4, 9:16``),
  ``inputImage`` (the edit input, not ``imageUrl``), ``outputFormat`` (``jpeg|png``),
  ``promptUpsampling``, ``enableTranslation``, ``uploadCn``, ``safetyTolerance`` (0–6 when
  generating, 0–2 when editing; KIE answers code 500 out of range), ``watermark``,
  ``callBackUrl``. There is no seed, negative prompt, mask or image count.
* **Status** ``GET /api/v1/flux/kontext/record-info?taskId=``: ``successFlag`` 0 generating,
  1 success, 2 create-task failed, 3 generation failed; the one result in
  ``response.resultImageUrl`` (``originImageUrl`` is a 10-minute link to the upstream copy);
  ``createTime``/``completeTime`` as ISO strings in the docs, epoch ms elsewhere: both accepted.
* **Callback**: ``{"code", "msg", "data": {"taskId", "info": {"originImageUrl",
  "resultImageUrl"}}}``; on failure ``code`` is 400/500/501 and the ``info`` fields are ``""``.

Prompts are English only. KIE's ``enableTranslation`` defaults to true; the provider always sends
it: ``false`` for an English prompt, ``true`` (reported as an adaptation) when the request's
``language`` is not English or the prompt is written in a non-Latin script.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kierouter import (
    Adaptation,
    ImageRequest,
    KieError,
    KieRouterError,
    KieValidationError,
    MalformedResponseError,
    ModelCard,
    PreparedCall,
    Provider,
    TaskStatus,
    ValidationError,
)
from kierouter.provider import (
    RESOLUTIONS,
    callback_data,
    check_bool,
    check_choice,
    check_count,
    check_mask,
    check_options,
    check_prompt,
    check_reference_images,
    check_resolution,
    check_task_kind,
    clip_repr,
    snap_aspect_ratio,
    status_data,
    text_or_none,
)

from ._cards import CARDS, FLUX_ASPECT_RATIOS

__all__ = [
    "CREATE_PATH",
    "MODEL_OPTIONS",
    "SAFETY_TOLERANCE",
    "STATUS_PATH",
    "SUCCESS_FLAGS",
    "FluxKontextProvider",
]

CREATE_PATH = "/api/v1/flux/kontext/generate"
STATUS_PATH = "/api/v1/flux/kontext/record-info"

#: Highest ``safetyTolerance`` per task kind (lowest is 0).
SAFETY_TOLERANCE: dict[str, int] = {"generate": 6, "edit": 2}
#: ``successFlag`` -> (normalised state, raw state name).
SUCCESS_FLAGS: dict[int, tuple[str, str]] = {
    0: ("pending", "GENERATING"),
    1: ("success", "SUCCESS"),
    2: ("failed", "CREATE_TASK_FAILED"),
    3: ("failed", "GENERATE_FAILED"),
}
_OPTIONS = (
    "aspectRatio", "outputFormat", "promptUpsampling", "enableTranslation", "uploadCn",
    "safetyTolerance", "watermark",
)  # fmt: skip
#: Fields a request may set through ``options`` (keyed by model id or ``flux-kontext``).
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {card.id: _OPTIONS for card in CARDS}

_FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}
_KIE_DEFAULT_RATIO = "16:9"


class FluxKontextProvider(Provider):
    """Builds Flux Kontext create calls and parses its ``successFlag`` statuses and callbacks."""

    api_family = "flux-kontext"
    status_path = STATUS_PATH

    def prepare(
        self,
        card: ModelCard,
        request: ImageRequest,
        *,
        seed: int | None = None,
        callback_url: str | None = None,
    ) -> PreparedCall:
        """Validate ``request`` for ``card`` and build the flat generate body."""
        request.validate()
        options = check_options(card, request, _OPTIONS, family_name="Flux Kontext")
        _check_request(card, request)
        kind = request.kind
        adaptations: list[Adaptation] = []
        body: dict[str, Any] = {"prompt": request.prompt, "model": card.id}
        ratio = _aspect_ratio(card, request, options, adaptations)
        if ratio is not None:
            body["aspectRatio"] = ratio
        if request.images:
            body["inputImage"] = request.images[0]
        if "outputFormat" in options:
            value = check_choice(
                "options.outputFormat", options["outputFormat"], _FORMATS, model=card.id
            )
            body["outputFormat"] = _FORMATS[value]
        if "promptUpsampling" in options:
            body["promptUpsampling"] = check_bool(
                "options.promptUpsampling", options["promptUpsampling"], model=card.id
            )
        body["enableTranslation"] = _translation(card, request, options, adaptations)
        if "uploadCn" in options:
            body["uploadCn"] = check_bool("options.uploadCn", options["uploadCn"], model=card.id)
        if "safetyTolerance" in options:
            body["safetyTolerance"] = _safety_tolerance(card, kind, options["safetyTolerance"])
        if "watermark" in options:
            watermark = options["watermark"]
            if not isinstance(watermark, str) or not watermark:
                raise ValidationError(
                    "options.watermark", f"{watermark!r} is not a watermark id", model=card.id
                )
            body["watermark"] = watermark
        if callback_url:
            body["callBackUrl"] = callback_url
        _unsupported(request, adaptations)
        return PreparedCall(
            path=CREATE_PATH,
            body=body,
            adaptations=tuple(adaptations),
            seed=None,
            seed_ignored=seed is not None,
        )

    def parse_status(self, data: Any, *, task_id: str) -> TaskStatus:
        """Normalise record-info ``data``: ``successFlag`` 0/1/2/3, one ``resultImageUrl``."""
        data = status_data(data, task_id=task_id, family="Flux")
        flag = _flag(data.get("successFlag"))
        if flag is None:
            raise MalformedResponseError(
                f"unknown Flux successFlag {clip_repr(data.get('successFlag'))} for task {task_id}"
            )
        state, raw = SUCCESS_FLAGS[flag]
        urls: tuple[str, ...] = ()
        if state == "success":
            urls = _result_urls(data.get("response"))
            if not urls:
                raise MalformedResponseError(f"task {task_id} succeeded without resultImageUrl")
        fail_code = fail_message = None
        if state == "failed":
            fail_code = _code_text(data.get("errorCode"))
            fail_message = text_or_none(data.get("errorMessage"))
        found = data.get("taskId")
        return TaskStatus(
            task_id=found if isinstance(found, str) and found else task_id,
            state=state,  # type: ignore[arg-type]
            raw_state=raw,
            urls=urls,
            fail_code=fail_code,
            fail_message=fail_message,
            created_ms=_epoch_ms(data.get("createTime")),
            completed_ms=_epoch_ms(data.get("completeTime")),
        )

    def parse_callback(self, body: Any) -> TaskStatus:
        """Normalise a callback: code 200 with ``data.info.resultImageUrl``, else a failure."""
        data, task_id = callback_data(body, family="Flux")
        code = _code_text(body.get("code"))
        if code is None:
            raise MalformedResponseError(f"Flux callback for {task_id} has no code")
        message = text_or_none(body.get("msg") or body.get("message"))
        if code != "200":
            return TaskStatus(
                task_id=task_id,
                state="failed",
                raw_state=f"callback {code}",
                fail_code=code,
                fail_message=message,
            )
        urls = _result_urls(data.get("info"))
        if not urls:
            raise MalformedResponseError(f"Flux callback for {task_id} has no resultImageUrl")
        return TaskStatus(task_id=task_id, state="success", raw_state="SUCCESS", urls=urls)

    def map_error(self, exc: KieError) -> KieRouterError:
        """KIE answers an out-of-range ``safetyTolerance`` with code 500: not a server fault.

        KIE-API.md §3.3 says to retry 500s except this one, so it becomes a
        :class:`~kierouter.KieValidationError` (not retried, the next model is tried). The plugin
        validates the range first, so this only guards against KIE changing its limits.
        """
        if exc.code != 500 or exc.task_id is not None or "safety" not in str(exc).lower():
            return exc
        said = str(exc).removeprefix("KIE error 500: ")
        return KieValidationError(
            "KIE refused safetyTolerance (0-6 when generating, 0-2 when editing); repeating the "
            f"request will not help (KIE said: {said})",
            code=500,
            http_status=exc.http_status,
        )


def _aspect_ratio(
    card: ModelCard,
    request: ImageRequest,
    options: Mapping[str, Any],
    adaptations: list[Adaptation],
) -> str | None:
    if "aspectRatio" in options:
        value: str = check_choice(
            "options.aspectRatio", options["aspectRatio"], FLUX_ASPECT_RATIOS, model=card.id
        )
        return value
    requested = request.aspect_ratio
    if requested is None:
        return None  # generate: KIE's default 16:9; edit: the input image's own ratio
    if requested == "auto":
        if request.kind != "edit":
            adaptations.append(
                Adaptation(
                    "aspect_ratio",
                    "auto",
                    _KIE_DEFAULT_RATIO,
                    "Flux Kontext has no 'auto'; KIE's default applies",
                )
            )
        return None  # an edit without aspectRatio keeps the input's ratio, which is 'auto'
    ratio, adaptation = snap_aspect_ratio(requested, FLUX_ASPECT_RATIOS, default=_KIE_DEFAULT_RATIO)
    if adaptation is not None:
        adaptations.append(adaptation)
    return ratio


def _translation(
    card: ModelCard,
    request: ImageRequest,
    options: Mapping[str, Any],
    adaptations: list[Adaptation],
) -> bool:
    if "enableTranslation" in options:
        return check_bool("options.enableTranslation", options["enableTranslation"], model=card.id)
    language = request.language
    if language is not None:
        english = language.lower().split("-")[0].split("_")[0] == "en"
    else:
        english = not _non_latin_letters(request.prompt)
    if not english:
        adaptations.append(
            Adaptation(
                "language",
                language or "non-English (from the prompt's script)",
                "en",
                "Flux Kontext takes English prompts only; sent with enableTranslation=true "
                "so that KIE translates it",
            )
        )
    return not english


def _non_latin_letters(prompt: str) -> bool:
    """True when the prompt has letters of a non-Latin script (Han, Cyrillic, Arabic, ...).

    Accented Latin letters do not count: "café" is English enough, and a French prompt can set
    ``language="fr"`` to be translated.
    """
    if prompt.isascii():
        return False
    return any(
        ch.isalpha() and not ch.isascii() and not unicodedata.name(ch, "").startswith("LATIN")
        for ch in prompt
    )


def _safety_tolerance(card: ModelCard, kind: str, value: Any) -> int:
    high = SAFETY_TOLERANCE.get(kind, 2)
    allowed = tuple(range(high + 1))
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        mode = "editing" if kind == "edit" else "generating"
        raise ValidationError(
            "options.safetyTolerance",
            f"{value!r} is not allowed when {mode} (0..{high})",
            allowed=allowed,
            model=card.id,
        )
    return value


def _unsupported(request: ImageRequest, adaptations: list[Adaptation]) -> None:
    """Report what Flux Kontext has no field for, so that it is visibly not sent."""
    if request.negative_prompt:
        adaptations.append(
            Adaptation(
                "negative_prompt",
                request.negative_prompt,
                None,
                "Flux Kontext has no negative prompt; not sent",
            )
        )
    if request.resolution not in (None, "1K"):
        adaptations.append(
            Adaptation(
                "resolution",
                request.resolution,
                "1K",
                "Flux Kontext has no resolution setting; it renders about 1 megapixel",
            )
        )


def _check_request(card: ModelCard, request: ImageRequest) -> None:
    """Refuse what Flux Kontext cannot do, naming the field and what it allows."""
    kind = check_task_kind(card, request)
    if kind == "generate" and request.images:
        raise ValidationError(
            "images",
            f"a generate request takes no input image; send it as an edit to {card.id}",
            allowed=(),
            model=card.id,
        )
    check_reference_images(card, request)  # one: inputImage
    check_mask(card, request)
    check_count(card, request)
    check_resolution(card, request, RESOLUTIONS)  # any tier: what it lacks is adapted
    check_prompt(card, request)


# -- parsing helpers ---------------------------------------------------------------------------


def _flag(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value in SUCCESS_FLAGS else None


def _code_text(value: Any) -> str | None:
    """An error code as text (``errorCode`` arrives as a number or a string)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _result_urls(response: Any) -> tuple[str, ...]:
    """The one result: ``resultImageUrl``, else the short-lived ``originImageUrl``."""
    if not isinstance(response, Mapping):
        return ()
    for key in ("resultImageUrl", "originImageUrl"):
        url = response.get(key)
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            return (url,)
    return ()


_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z


def _epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds from a number, a digit string or an ISO 8601 string (naive = UTC)."""
    if isinstance(value, bool) or value is None:
        return None
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value) if not isinstance(value, int) or abs(value) <= _MAX_MS else None
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            number = float(text) if len(text) <= 15 else None
        else:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                return None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            try:
                return int(moment.timestamp() * 1000)
            except (OverflowError, OSError, ValueError):
                return None
    if number is None or not math.isfinite(number) or not 0 <= number <= _MAX_MS:
        return None
    return int(number)
