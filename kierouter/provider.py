"""The provider contract: how a plugin turns a canonical request into one KIE family's calls.

A plugin registers each model as a :class:`~kierouter.ModelCard` plus a :class:`Provider`. The
router owns the network (one :class:`~kierouter.KieClient` per router); a provider only builds
request bodies and parses answers, so it stays pure, synchronous and easy to test.

:class:`MarketProvider` implements KIE's unified Market API (``/api/v1/jobs/createTask`` and
``/api/v1/jobs/recordInfo``); Market plugins only write :meth:`MarketProvider.build_input`.
The legacy families (GPT-4o image, Flux Kontext, Midjourney) subclass :class:`Provider` directly.

The helpers :func:`check_choice`, :func:`check_range`, :func:`check_max_len`,
:func:`check_bool` and :func:`snap_aspect_ratio` give every plugin the same wording for
validation errors; :func:`check_task_kind`, :func:`check_reference_images`, :func:`check_mask`,
:func:`check_count`, :func:`check_resolution`, :func:`check_prompt` and :func:`check_options`
check a whole request against a card. :func:`status_data`, :func:`callback_data`,
:func:`callback_failure`, :func:`parse_json_field` and the ``*_or_none`` readers help legacy-API
families parse KIE's answers the same way.
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from ._errors import (
    KieError,
    KieRouterError,
    MalformedResponseError,
    NotFoundError,
    ValidationError,
)
from ._inputs import has_local_inputs, input_kind
from ._models import Adaptation, ImageRequest, ModelCard, TaskKind, TaskStatus, _ratio_value

__all__ = [
    "MARKET_CREATE_PATH",
    "MARKET_STATUS_PATH",
    "RESOLUTIONS",
    "MarketProvider",
    "PreparedCall",
    "Provider",
    "callback_data",
    "callback_failure",
    "check_bool",
    "check_choice",
    "check_count",
    "check_mask",
    "check_max_len",
    "check_options",
    "check_prompt",
    "check_range",
    "check_reference_images",
    "check_resolution",
    "check_task_kind",
    "clip_repr",
    "code_or_none",
    "float_or_none",
    "int_or_none",
    "model_options",
    "parse_json_field",
    "snap_aspect_ratio",
    "status_data",
    "text_or_none",
]

MARKET_CREATE_PATH = "/api/v1/jobs/createTask"
"""KIE Market's create endpoint (``POST``), used by every ``MarketProvider``."""
MARKET_STATUS_PATH = "/api/v1/jobs/recordInfo"
"""KIE Market's status endpoint (``GET ?taskId=``), used by every ``MarketProvider``."""
RESOLUTIONS = ("1K", "2K", "4K")
"""The canonical ``ImageRequest.resolution`` tiers."""


class PreparedCall(msgspec.Struct, frozen=True, kw_only=True):
    """A create call ready to send: path and JSON body, plus what was adapted to fit the model."""

    path: str
    body: dict[str, Any]
    adaptations: tuple[Adaptation, ...] = ()
    #: The seed sent to the model, or ``None`` when none was sent.
    seed: int | None = None
    #: True when the request had a seed but this model has no seed parameter.
    seed_ignored: bool = False


class Provider(abc.ABC):
    """Builds one family's create calls and parses its status and callback bodies.

    Subclasses must not do I/O: the router sends what :meth:`prepare` returns and hands the
    envelope's ``data`` to :meth:`parse_status`. Every parse method raises
    :class:`~kierouter.MalformedResponseError` (never ``KeyError``/``TypeError``) on a body that
    does not have the family's shape.
    """

    #: KIE API family: ``"market"``, ``"gpt4o-image"``, ``"flux-kontext"`` or ``"midjourney"``.
    api_family: str = ""
    #: Path of the status endpoint (``GET ...?taskId=``).
    status_path: str = ""
    #: Path of the endpoint that re-mints an expired result link.
    download_url_path: str = "/api/v1/common/download-url"

    @abc.abstractmethod
    def prepare(
        self,
        card: ModelCard,
        request: ImageRequest,
        *,
        seed: int | None = None,
        callback_url: str | None = None,
    ) -> PreparedCall:
        """Validate ``request`` for ``card`` and build the create call.

        Raises :class:`~kierouter.ValidationError` naming the field when the model cannot run it.
        """

    def parse_create(self, data: Any) -> str:
        """Return the task id from a successful create's ``data``."""
        if isinstance(data, Mapping):
            task_id = data.get("taskId") or data.get("task_id")
            if isinstance(task_id, str) and task_id:
                return task_id
        raise MalformedResponseError(f"create answer has no taskId: {clip_repr(data)}")

    def status_params(self, task_id: str) -> dict[str, str]:
        """Query parameters of the status read."""
        return {"taskId": task_id}

    @abc.abstractmethod
    def parse_status(self, data: Any, *, task_id: str) -> TaskStatus:
        """Normalise the ``data`` of a status read. ``data: null`` means the task is unknown."""

    @abc.abstractmethod
    def parse_callback(self, body: Any) -> TaskStatus:
        """Normalise a whole callback body (``{code, msg, data}``) POSTed by KIE."""

    def download_url_body(self, task_id: str, url: str) -> dict[str, str]:
        """Body of the call that re-mints an expired result link."""
        return {"url": url}

    def map_error(self, exc: KieError) -> KieRouterError:
        """Refine an error KIE returned for this family; the default returns ``exc`` unchanged.

        The router applies it to errors from creates, status reads and to failed tasks before it
        decides what to do next (retry, escalate, stop), so a family can say what a code means
        for it: e.g. Midjourney maps a 404 on create to :class:`~kierouter.EndpointGoneError`.
        Return ``exc`` itself when there is nothing to refine. It must not raise: an exception
        raised here is ignored and the original error is used.
        """
        return exc


def model_options(card: ModelCard, request: ImageRequest) -> dict[str, Any]:
    """The request's options for this model: family-wide ones overlaid by model-specific ones."""
    merged: dict[str, Any] = {}
    merged.update(request.options.get(card.family, {}))
    merged.update(request.options.get(card.id, {}))
    return merged


def check_choice(
    field: str, value: Any, allowed: Iterable[Any], *, model: str | None = None
) -> Any:
    """Return ``value`` if it is one of ``allowed``; else raise ValidationError listing them."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValidationError(field, f"{value!r} is not supported", allowed=allowed, model=model)
    return value


def check_range(
    field: str,
    value: Any,
    low: float,
    high: float,
    *,
    model: str | None = None,
    integer: bool = False,
    step: float | None = None,
) -> Any:
    """Return ``value`` if it is a number in ``[low, high]`` (an int, a multiple of ``step``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, f"{value!r} is not a number", model=model)
    if integer and not isinstance(value, int):
        raise ValidationError(field, f"{value!r} is not an integer", model=model)
    if not low <= value <= high:
        raise ValidationError(field, f"{value} is out of range {low:g}..{high:g}", model=model)
    if step is not None and abs(value / step - round(value / step)) > 1e-9:
        raise ValidationError(field, f"{value} is not a multiple of {step:g}", model=model)
    return value


def check_max_len(field: str, text: str, limit: int, *, model: str | None = None) -> str:
    """Return ``text`` if it has at most ``limit`` characters."""
    if len(text) > limit:
        raise ValidationError(
            field, f"is {len(text)} characters, the limit is {limit}", model=model
        )
    return text


def check_bool(field: str, value: Any, *, model: str | None = None) -> bool:
    """Return ``value`` if it is ``True`` or ``False`` (not ``1``, ``"yes"``, ...)."""
    if not isinstance(value, bool):
        raise ValidationError(
            field, f"{value!r} is not a boolean", allowed=(True, False), model=model
        )
    return value


def check_options(
    card: ModelCard,
    request: ImageRequest,
    allowed: Iterable[str],
    *,
    family_allowed: Iterable[str] | None = None,
    family_name: str | None = None,
) -> dict[str, Any]:
    """The request's options for ``card``, each key checked: family-wide ones overlaid by its own.

    A key set for the model itself (``options={card.id: {...}}``) must be in ``allowed``. A
    family-wide key (``options={card.family: {...}}``) must be in ``family_allowed`` (default:
    ``allowed``), the keys of some model of the family, and is applied only when this model has
    it. ``family_name`` (e.g. ``"Seedream"``) words the error for an unknown family-wide key.
    Raises :class:`~kierouter.ValidationError` on ``options.<key>`` listing the allowed keys.
    """
    own_keys = tuple(allowed)
    family_keys = own_keys if family_allowed is None else tuple(family_allowed)
    family = request.options.get(card.family, {})
    own = request.options.get(card.id, {})
    for key in family:
        if key not in family_keys:
            said = f"no {family_name} model has an" if family_name else f"{card.id} has no"
            raise ValidationError(
                f"options.{key}", f"{said} option {key!r}", allowed=family_keys, model=card.id
            )
    for key in own:
        if key not in own_keys:
            raise ValidationError(
                f"options.{key}",
                f"{card.id} has no option {key!r}",
                allowed=own_keys,
                model=card.id,
            )
    merged = {key: value for key, value in family.items() if key in own_keys}
    merged.update(own)
    return merged


def check_task_kind(
    card: ModelCard,
    request: ImageRequest,
    *,
    hints: Mapping[str, str] | None = None,
    fallback: str | None = None,
) -> TaskKind:
    """Return the request's task kind if ``card`` runs it; else raise on field ``task``.

    The message is ``hints[kind]`` when given (say which model to use instead, e.g.
    ``{"edit": "seedream/4.5-text-to-image cannot edit images; use seedream/4.5-edit"}``), else
    ``fallback``, else ``"<model> cannot <kind>"``; the error lists ``card.task_kinds``.
    """
    kind = request.kind
    if kind not in card.task_kinds:
        message = (hints or {}).get(kind) or fallback or f"{card.id} cannot {kind}"
        raise ValidationError("task", message, allowed=card.task_kinds, model=card.id)
    return kind


def check_reference_images(
    card: ModelCard, request: ImageRequest, *, suggestion: str | None = None
) -> int:
    """Return the number of reference images if ``card`` takes that many.

    The limit is ``card.capabilities.max_reference_images``. A model that takes none refuses any
    (``allowed=()``; ``suggestion`` names a model that does, e.g. ``"google/nano-banana-edit"``);
    otherwise more than the limit is refused, listing ``1..limit``. A local file or bytes not
    yet uploaded (a path or data URI, see :class:`~kierouter.Uploader`) is refused too.
    """
    _check_uploaded(request, card)
    count = len(request.images)
    limit = card.capabilities.max_reference_images
    if count and not limit:
        use = f"; use {suggestion}" if suggestion else ""
        raise ValidationError(
            "images", f"{card.id} takes no reference images{use}", allowed=(), model=card.id
        )
    if count > limit:
        raise ValidationError(
            "images",
            f"{count} reference images; {card.id} takes at most {limit}",
            allowed=tuple(range(1, limit + 1)),
            model=card.id,
        )
    return count


def check_mask(card: ModelCard, request: ImageRequest) -> None:
    """Refuse a mask (``allowed=()``) when ``card.capabilities.mask`` says the model has none,
    and (as :func:`check_reference_images` does) any input not uploaded yet."""
    if request.mask is not None and not card.capabilities.mask:
        raise ValidationError("mask", f"{card.id} has no mask input", allowed=(), model=card.id)
    _check_uploaded(request, card)


def _check_uploaded(request: ImageRequest, card: ModelCard) -> None:
    """A local file or bytes must be uploaded before a body is built: only URLs go to KIE."""
    if not has_local_inputs(request):
        return
    local = (f"images[{n}]" for n, v in enumerate(request.images) if input_kind(v) != "url")
    raise ValidationError(
        next(local, "mask"),
        "is a local file or bytes, not uploaded yet (a Router uploads it before the create; "
        "elsewhere use kierouter.Uploader.resolve)",
        model=card.id,
    )


def check_count(
    card: ModelCard, request: ImageRequest, *, allowed: Iterable[int] | None = None
) -> int:
    """Return ``request.count`` if one task of ``card`` returns that many images.

    ``allowed`` defaults to ``1..card.capabilities.max_images``; give it when the model takes only
    some counts (GPT-4o's ``nVariants``: ``(1, 2, 4)``).
    """
    counts = tuple(range(1, card.capabilities.max_images + 1) if allowed is None else allowed)
    if request.count not in counts:
        if counts == (1,):
            said = "one image"
        elif len(counts) > 2 and counts == tuple(range(1, len(counts) + 1)):
            said = f"1 to {len(counts)} images"
        elif len(counts) > 1:
            said = f"{', '.join(map(str, counts[:-1]))} or {counts[-1]} images"
        else:
            said = f"{counts[0]} images" if counts else "no images"
        raise ValidationError(
            "count",
            f"{request.count} images; {card.id} returns {said} a task",
            allowed=counts,
            model=card.id,
        )
    return request.count


def check_resolution(
    card: ModelCard, request: ImageRequest, allowed: Iterable[str] | None = None
) -> str | None:
    """Return ``request.resolution`` if it is unset or a tier the model renders.

    The tiers are ``card.capabilities.resolutions`` (all of ``1K``/``2K``/``4K`` when the card
    lists none, as the planner reads it); ``allowed`` replaces them.
    """
    if request.resolution is None:
        return None
    if allowed is None:
        allowed = card.capabilities.resolutions or RESOLUTIONS
    value: str = check_choice("resolution", request.resolution, allowed, model=card.id)
    return value


def check_prompt(card: ModelCard, request: ImageRequest) -> str:
    """Return the prompt if it has at most ``card.capabilities.max_prompt_chars`` characters."""
    return check_max_len(
        "prompt", request.prompt, card.capabilities.max_prompt_chars, model=card.id
    )


def snap_aspect_ratio(
    requested: str | None,
    supported: Iterable[str],
    *,
    default: str,
    field: str = "aspect_ratio",
) -> tuple[str, Adaptation | None]:
    """Map a requested ratio onto the nearest one a model supports.

    Returns the ratio to send and an :class:`~kierouter.Adaptation` when it differs from the
    request. ``None`` or ``auto`` on a model without ``auto`` gives ``default``.
    """
    options = tuple(supported)
    if requested is None:
        return default, None
    if requested in options:
        return requested, None
    if requested == "auto":
        return default, Adaptation(field, requested, default, "model has no 'auto'; used default")
    want = _ratio_value(requested)
    numeric = [(o, _ratio_value(o)) for o in options]
    candidates = [(o, v) for o, v in numeric if v is not None]
    if want is None or not candidates:
        raise ValidationError(field, f"{requested!r} is not supported", allowed=options)
    best = min(candidates, key=lambda ov: abs(math.log(ov[1] / want)))[0]
    return best, Adaptation(field, requested, best, "nearest ratio the model supports")


def clip_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting a bad answer in an error."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def parse_json_field(value: Any, what: str) -> Any:
    """Decode a field that KIE sends as embedded JSON text (``resultJson``, ``resultInfoJson``).

    A non-string is returned unchanged (already decoded), ``""`` gives ``None``; text that is not
    JSON raises :class:`~kierouter.MalformedResponseError` naming ``what``.
    """
    if isinstance(value, str):
        if not value:
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            raise MalformedResponseError(f"{what} is not valid JSON: {clip_repr(value)}") from exc
    return value


def int_or_none(value: Any) -> int | None:
    """An integer from an int or a finite float (a timestamp in epoch ms); else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    return None


def float_or_none(value: Any) -> float | None:
    """A finite float from a number or a numeric string (``"0.45"``); else ``None``."""
    if isinstance(value, bool):
        return None
    number: float | None = None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            return None
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    return number if number is not None and math.isfinite(number) else None


def text_or_none(value: Any) -> str | None:
    """``value`` if it is a non-empty string, else ``None`` (``msg``, ``errorMessage``)."""
    return value if isinstance(value, str) and value else None


def code_or_none(value: Any) -> str | None:
    """An error code (an int or a non-empty string, e.g. ``errorCode``) as text, else ``None``."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, int | str):
        return str(value)
    return None


def status_data(data: Any, *, task_id: str, family: str) -> Mapping[str, Any]:
    """The ``data`` of a status read, checked to be an object.

    ``None`` (KIE's answer for a task it does not know) raises
    :class:`~kierouter.NotFoundError`; anything but an object raises
    :class:`~kierouter.MalformedResponseError` naming ``family`` (``"Flux"``, ``"MJ"``, ...).
    """
    if data is None:
        raise NotFoundError("no such task", code=404, task_id=task_id)
    if not isinstance(data, Mapping):
        raise MalformedResponseError(
            f"{family} record-info data is not an object: {clip_repr(data)}"
        )
    return data


def callback_data(
    body: Any, *, family: str, top_level_first: bool = False
) -> tuple[Mapping[str, Any], str]:
    """The ``data`` object of a callback body ``{code, msg, data}`` and the task id it names.

    The task id is ``data.taskId``, ``data.task_id`` or the body's own ``taskId``, in that order
    (with ``top_level_first``, the body's own first, as the webhook receiver reads it). A body
    without a ``data`` object or a task id raises :class:`~kierouter.MalformedResponseError`.
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), Mapping):
        raise MalformedResponseError(f"{family} callback has no data object: {clip_repr(body)}")
    data = body["data"]
    if top_level_first:
        task_id = body.get("taskId") or data.get("taskId") or data.get("task_id")
    else:
        task_id = data.get("taskId") or data.get("task_id") or body.get("taskId")
    if not isinstance(task_id, str) or not task_id:
        raise MalformedResponseError(f"{family} callback has no taskId")
    return data, task_id


def callback_failure(body: Mapping[str, Any], *, task_id: str, family: str) -> TaskStatus | None:
    """A failed status for a callback whose integer ``code`` is not 200; ``None`` on 200.

    For the legacy APIs that signal failure by the callback's code (GPT-4o image, Midjourney):
    the status is ``failed`` with ``fail_code`` the code and ``fail_message`` the ``msg``. A
    missing or non-integer code raises :class:`~kierouter.MalformedResponseError`.
    """
    code = body.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise MalformedResponseError(f"{family} callback for {task_id} has no integer code")
    if code == 200:
        return None
    return TaskStatus(
        task_id=task_id,
        state="failed",
        raw_state=f"callback code {code}",
        fail_code=str(code),
        fail_message=text_or_none(body.get("msg")) or text_or_none(body.get("message")),
    )


def _string_urls(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list | tuple):
        return ()
    out: list[str] = []
    for value in values:
        if isinstance(value, str) and value:
            out.append(value)
        elif isinstance(value, Mapping):
            inner = value.get("resultUrl") or value.get("url")
            if isinstance(inner, str) and inner:
                out.append(inner)
    return tuple(out)


_MARKET_STATES = {
    "waiting": "pending",
    "queuing": "pending",
    "generating": "pending",
    "success": "success",
    "fail": "failed",
}


class MarketProvider(Provider):
    """KIE's unified Market API: ``{"model", "callBackUrl", "input"}`` bodies, ``state`` strings.

    Subclasses implement :meth:`build_input`.
    """

    api_family = "market"
    status_path = MARKET_STATUS_PATH

    @abc.abstractmethod
    def build_input(
        self, card: ModelCard, request: ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[Adaptation], bool]:
        """Return ``(input, adaptations, seed_sent)`` for this model, validating as it goes."""

    def prepare(
        self,
        card: ModelCard,
        request: ImageRequest,
        *,
        seed: int | None = None,
        callback_url: str | None = None,
    ) -> PreparedCall:
        request.validate()
        fields, adaptations, seed_sent = self.build_input(card, request, seed=seed)
        body: dict[str, Any] = {"model": card.id}
        if callback_url:
            body["callBackUrl"] = callback_url
        body["input"] = fields
        return PreparedCall(
            path=MARKET_CREATE_PATH,
            body=body,
            adaptations=tuple(adaptations),
            seed=seed if seed_sent else None,
            seed_ignored=seed is not None and not seed_sent,
        )

    def parse_status(self, data: Any, *, task_id: str) -> TaskStatus:
        data = status_data(data, task_id=task_id, family="Market")
        raw = data.get("state")
        if not isinstance(raw, str) or raw not in _MARKET_STATES:
            raise MalformedResponseError(f"unknown Market state {raw!r} for task {task_id}")
        state = _MARKET_STATES[raw]
        urls: tuple[str, ...] = ()
        if state == "success":
            result = parse_json_field(data.get("resultJson"), "resultJson")
            if isinstance(result, Mapping):
                urls = _string_urls(result.get("resultUrls"))
                inner = result.get("data")
                if not urls and isinstance(inner, Mapping):
                    urls = _string_urls(inner.get("result_urls"))
            if not urls:
                raise MalformedResponseError(f"task {task_id} succeeded without result URLs")
        fail_code = data.get("failCode")
        fail_msg = data.get("failMsg")
        found_id = data.get("taskId")
        credits = float_or_none(data.get("creditsConsumed"))
        return TaskStatus(
            task_id=found_id if isinstance(found_id, str) and found_id else task_id,
            state=state,  # type: ignore[arg-type]
            raw_state=raw,
            urls=urls,
            fail_code=str(fail_code) if fail_code not in (None, "") else None,
            fail_message=fail_msg if isinstance(fail_msg, str) and fail_msg else None,
            credits=credits,
            created_ms=int_or_none(data.get("createTime")),
            completed_ms=int_or_none(data.get("completeTime")),
        )

    def parse_callback(self, body: Any) -> TaskStatus:
        data, task_id = callback_data(body, family="Market")
        return self.parse_status(data, task_id=task_id)
