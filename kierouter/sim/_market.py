"""KIE's Market API: ``POST /api/v1/jobs/createTask`` and ``GET /api/v1/jobs/recordInfo``.

Shapes follow the recordings (``KIE-API.md`` §4): ``param`` is a JSON string whose ``input`` is
itself a JSON string; ``resultJson`` is ``""`` until success; ``failCode`` is a string or null;
``costTime`` is seconds; ``createTime``/``completeTime`` are epoch ms; ``recordId`` == ``taskId``.

A task id recordInfo does not know (never created, another family's, or created less than the
visibility lag ago) answers ``{"code":422,"msg":"recordInfo is null","data":null}`` over HTTP 200,
as KIE's Market docs describe. Once a task is final, recordInfo also carries ``updateTime`` and
``creditsConsumed`` (what the task was charged; 0 for a failure) unless ``credits_in_status`` is
off, which gives exactly the April 2026 recorded shape.
"""

from __future__ import annotations

from typing import Any

from ._catalog import CATALOG
from ._files import broken_reference
from ._http import Request, Response, dumps, envelope
from ._images import ratio_size
from ._open_models import MarketModel
from ._state import SimState
from ._tasks import ImageJob, Task
from ._validation import Rejection, validate_market

__all__ = ["NOT_VISIBLE", "callback_body", "create", "record", "record_data"]

#: recordInfo's answer for a task it cannot find (yet).
NOT_VISIBLE = "recordInfo is null"

# models that return several images per task whatever is asked (recorded: grok 6 and 2)
_FIXED_COUNTS = {"grok-imagine/text-to-image": 6, "grok-imagine/image-to-image": 2}
_QUALITY_TIERS = {"basic": "2K", "high": "4K"}
# documented image_size defaults when none is sent (KIE-API.md §7); other models render 1:1
_DEFAULT_RATIOS = {
    "qwen/image-edit": "4:3",
    "qwen2/text-to-image": "16:9",
    "qwen2/image-edit": "16:9",
}


def _tier(model: str, fields: dict[str, Any]) -> str | None:
    for name in ("resolution", "image_resolution"):
        if isinstance(fields.get(name), str):
            return str(fields[name])
    quality = fields.get("quality")
    if isinstance(quality, str) and quality in _QUALITY_TIERS:
        return (
            "3K"
            if model.startswith("seedream/5") and quality == "high"
            else _QUALITY_TIERS[quality]
        )
    return None


def _count(model: str, fields: dict[str, Any]) -> tuple[int, bool]:
    """Images per task and whether the price is per image."""
    if model in _FIXED_COUNTS:
        return _FIXED_COUNTS[model], False
    for name in ("max_images", "num_images", "n"):
        if fields.get(name) is not None:
            return max(1, int(fields[name])), True
    if model.startswith("wan/"):
        return 4, True  # documented default n=4
    return 1, True


def _sources(fields: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name in ("image_urls", "image_input", "input_urls", "image_url", "image"):
        value = fields.get(name)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str))
    return out


def plan_images(
    model: str, fields: dict[str, Any], declared: MarketModel | None = None
) -> tuple[list[ImageJob], float]:
    """The images a Market task will produce and the task's price (before the emulator's
    price settings); ``declared`` is the scenario's entry for a model the emulator does not
    ship."""
    ratio = fields.get("aspect_ratio") or fields.get("image_size") or _DEFAULT_RATIOS.get(model)
    ratio = ratio if isinstance(ratio, str) and ratio != "auto" else "1:1"
    tier = _tier(model, fields)
    width, height = ratio_size(ratio, tier)
    if declared is not None:
        count = declared.count(fields)
    else:
        count, per_image = _count(model, fields)
    sources = _sources(fields)
    seed = fields.get("seed")
    prompt = fields.get("prompt", "")
    kind = {"recraft/crisp-upscale": "upscale", "recraft/remove-background": "remove-background"}
    jobs = []
    for n in range(count):
        key = dumps([model, prompt, seed, sources] + ([n] if n else [])).encode()
        jobs.append(
            ImageJob(
                kind.get(model, "generate"), width, height, key, sources[0] if sources else None
            )
        )
    if declared is not None:
        return jobs, declared.price_for(tier, count)
    info = CATALOG[model]
    unit = info.by_resolution.get(tier or "", info.credits)
    return jobs, unit * (count if per_image else 1)


async def create(state: SimState, request: Request) -> Response:
    """Validate and create a Market task."""
    body = request.json()
    declared = state.market_models
    model, fields = validate_market(body, {m: spec.rules for m, spec in declared.items()})
    jobs, price = plan_images(model, fields, declared.get(model))
    price = state.price_for(model, price)
    state.check_balance(price)
    task = state.start_task(
        api="market",
        model=model,
        body=body,
        price=price,
        images=jobs,
        callback_url=body.get("callBackUrl"),
        broken_reference=broken_reference(state, jobs),
    )
    return envelope(200, "success", {"taskId": task.id, "recordId": task.id})


def record_data(state: SimState, task: Task, *, credits: bool = False) -> dict[str, Any]:
    """recordInfo's ``data`` for ``task`` at the current emulated time; ``credits`` adds
    ``updateTime`` and ``creditsConsumed`` once the task is final."""
    now = state.clock.now()
    phase = task.phase(now)
    param: dict[str, Any] = {}
    if task.callback_url:
        param["callBackUrl"] = task.callback_url
    param["input"] = dumps(task.body.get("input", {}))
    param["model"] = task.model
    done = phase in ("success", "fail")
    data: dict[str, Any] = {
        "taskId": task.id,
        "model": task.model,
        "state": phase,
        "param": dumps(param),
        "resultJson": dumps({"resultUrls": task.urls}) if phase == "success" else "",
        "failCode": task.fail_code if phase == "fail" else None,
        "failMsg": task.fail_msg if phase == "fail" else None,
        "costTime": int(task.duration) if done else None,
        "completeTime": state.clock.epoch_ms(task.completed) if done else None,
        "createTime": state.clock.epoch_ms(task.created),
    }
    if credits and done:
        data["updateTime"] = data["completeTime"]
        data["creditsConsumed"] = task.charged
    return data


async def record(state: SimState, request: Request) -> Response:
    """Status of a Market task; 422 "recordInfo is null" for an id it does not know (yet)."""
    task_id = request.query.get("taskId")
    if not task_id:
        raise Rejection(400, "taskId is required")
    state.settle()
    task = state.tasks.get(task_id)
    if task is None or task.api != "market" or not task.visible(state.clock.now()):
        raise Rejection(422, NOT_VISIBLE)
    return envelope(200, "success", record_data(state, task, credits=state.credits_in_status))


def callback_body(state: SimState, task: Task) -> dict[str, Any]:
    """The Market callback: recordInfo's data plus ``updateTime`` and ``creditsConsumed``."""
    data = record_data(state, task, credits=True)
    if task.state == "success":
        return {"code": 200, "msg": "Playground task completed successfully.", "data": data}
    return {"code": 501, "msg": "Playground task failed.", "data": data}
