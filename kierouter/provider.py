"""The provider contract: how a plugin turns a canonical request into one KIE family's calls.

A plugin registers each model as a :class:`~kierouter.ModelCard` plus a :class:`Provider`. The
router owns the network (one :class:`~kierouter.KieClient` per router); a provider only builds
request bodies and parses answers, so it stays pure, synchronous and easy to test.

:class:`MarketProvider` implements KIE's unified Market API (``/api/v1/jobs/createTask`` and
``/api/v1/jobs/recordInfo``); Market plugins only write :meth:`MarketProvider.build_input`.
The legacy families (GPT-4o image, Flux Kontext, Midjourney) subclass :class:`Provider` directly.

The helpers :func:`check_choice`, :func:`check_range`, :func:`check_max_len` and
:func:`snap_aspect_ratio` give every plugin the same wording for validation errors.
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
from ._models import Adaptation, ImageRequest, ModelCard, TaskStatus, _ratio_value

__all__ = [
    "MARKET_CREATE_PATH",
    "MARKET_STATUS_PATH",
    "MarketProvider",
    "PreparedCall",
    "Provider",
    "check_choice",
    "check_max_len",
    "check_range",
    "model_options",
    "snap_aspect_ratio",
]

MARKET_CREATE_PATH = "/api/v1/jobs/createTask"
MARKET_STATUS_PATH = "/api/v1/jobs/recordInfo"


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
        raise MalformedResponseError(f"create answer has no taskId: {_clip(data)}")

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


def _clip(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _loads_maybe(value: Any, what: str) -> Any:
    if isinstance(value, str):
        if not value:
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            raise MalformedResponseError(f"{what} is not valid JSON: {_clip(value)}") from exc
    return value


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    return None


def _as_float(value: Any) -> float | None:
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
        if data is None:
            raise NotFoundError("no such task", code=404, task_id=task_id)
        if not isinstance(data, Mapping):
            raise MalformedResponseError(f"recordInfo data is not an object: {_clip(data)}")
        raw = data.get("state")
        if not isinstance(raw, str) or raw not in _MARKET_STATES:
            raise MalformedResponseError(f"unknown Market state {raw!r} for task {task_id}")
        state = _MARKET_STATES[raw]
        urls: tuple[str, ...] = ()
        if state == "success":
            result = _loads_maybe(data.get("resultJson"), "resultJson")
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
        credits = _as_float(data.get("creditsConsumed"))
        return TaskStatus(
            task_id=found_id if isinstance(found_id, str) and found_id else task_id,
            state=state,  # type: ignore[arg-type]
            raw_state=raw,
            urls=urls,
            fail_code=str(fail_code) if fail_code not in (None, "") else None,
            fail_message=fail_msg if isinstance(fail_msg, str) and fail_msg else None,
            credits=credits,
            created_ms=_as_int(data.get("createTime")),
            completed_ms=_as_int(data.get("completeTime")),
        )

    def parse_callback(self, body: Any) -> TaskStatus:
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), Mapping):
            raise MalformedResponseError(f"Market callback has no data object: {_clip(body)}")
        data = body["data"]
        task_id = data.get("taskId") or data.get("task_id") or body.get("taskId")
        if not isinstance(task_id, str) or not task_id:
            raise MalformedResponseError("Market callback has no taskId")
        return self.parse_status(data, task_id=task_id)
