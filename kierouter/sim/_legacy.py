"""KIE's legacy image APIs: GPT-4o image, Flux Kontext and Midjourney (``KIE-API.md`` §10–12).

Flat camelCase bodies, ``successFlag`` integers and per-family result and callback shapes:
4o ``response.resultUrls`` / callback ``data.info.result_urls``; Flux
``response.resultImageUrl`` / callback ``data.info.resultImageUrl``; MJ
``resultInfoJson.resultUrls[].resultUrl`` / callback flat ``data.resultUrls``.

Times follow each family's docs: 4o and MJ give ``createTime``/``completeTime`` as epoch ms,
Flux as ISO 8601 strings (``"2024-03-20T10:30:00Z"``). A failed task's ``successFlag`` tells the
stage when the family distinguishes it (model setting ``fail_stage``): Flux 2 "create-task
failed" / 3 "generation failed", MJ 2 / 3, 4o 2 with status ``CREATE_TASK_FAILED`` /
``GENERATE_FAILED``. A task id the family does not know, or created less than the visibility lag
ago, answers ``data: null`` (code 200), as KIE documents for unknown records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ._catalog import CATALOG, MJ_SPEED_PRICES
from ._files import broken_reference, mint_link, resolve_result
from ._http import Request, Response, dumps, envelope
from ._images import ratio_size
from ._state import SimState
from ._tasks import ImageJob, Task
from ._validation import Rejection, validate_flux, validate_gpt4o, validate_mj

__all__ = [
    "callback_flux",
    "callback_gpt4o",
    "callback_mj",
    "create_flux",
    "create_gpt4o",
    "create_mj",
    "download_url_gpt4o",
    "record_flux",
    "record_gpt4o",
    "record_mj",
]

_ORIGIN_TTL = 600.0  # Flux originImageUrl: valid 10 minutes


def _jobs(
    model: str, body: dict[str, Any], ratio: str, count: int, sources: list[str]
) -> list[ImageJob]:
    width, height = ratio_size(ratio, None)
    prompt = body.get("prompt", "")
    return [
        ImageJob(
            "generate",
            width,
            height,
            dumps([model, prompt, None, sources] + ([n] if n else [])).encode(),
            sources[0] if sources else None,
        )
        for n in range(count)
    ]


def _start(
    state: SimState, api: str, model: str, body: dict[str, Any], price: float, jobs: list[ImageJob]
) -> Response:
    price = state.price_for(model, price)
    state.check_balance(price)
    task = state.start_task(
        api=api,
        model=model,
        body=body,
        price=price,
        images=jobs,
        callback_url=body.get("callBackUrl"),
        broken_reference=broken_reference(state, jobs),
    )
    return envelope(200, "success", {"taskId": task.id})


def _find(state: SimState, request: Request, api: str) -> Task | None:
    task_id = request.query.get("taskId")
    if not task_id:
        raise Rejection(400, "taskId is required")
    state.settle()
    task = state.tasks.get(task_id)
    if task is None or task.api != api or not task.visible(state.clock.now()):
        return None
    return task


def _times(state: SimState, task: Task) -> tuple[int | None, int]:
    done = task.state != "pending"
    return (state.clock.epoch_ms(task.completed) if done else None), state.clock.epoch_ms(
        task.created
    )


def _iso(epoch_ms: int | None) -> str | None:
    """Epoch ms as Flux's docs show times: ``"2024-03-20T10:30:00Z"``."""
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _fail_flag(task: Task) -> int:
    """Flux and MJ: 2 when the task could not be created, 3 when its generation failed."""
    return 2 if task.fail_stage == "create" else 3


def _error_code(task: Task, allowed: tuple[int, ...]) -> int:
    code = int(task.fail_code) if task.fail_code.isdigit() else 500
    return code if code in allowed else 500


# -- GPT-4o image -----------------------------------------------------------------------------


async def create_gpt4o(state: SimState, request: Request) -> Response:
    """``POST /api/v1/gpt4o-image/generate``."""
    body = validate_gpt4o(request.json())
    sources = list(body.get("filesUrl") or ([body["fileUrl"]] if body.get("fileUrl") else []))
    count = int(str(body.get("nVariants") or 1))
    jobs = _jobs("gpt4o-image", body, body["size"], count, sources)
    return _start(state, "gpt4o", "gpt4o-image", body, CATALOG["gpt4o-image"].credits, jobs)


def record_data_gpt4o(state: SimState, task: Task) -> dict[str, Any]:
    """4o record-info ``data``."""
    complete, create = _times(state, task)
    failed = task.state == "fail"
    flag = {"pending": 0, "success": 1, "fail": 2}[task.state]
    failure = "CREATE_TASK_FAILED" if task.fail_stage == "create" else "GENERATE_FAILED"
    status = {"pending": "GENERATING", "success": "SUCCESS", "fail": failure}[task.state]
    return {
        "taskId": task.id,
        "paramJson": dumps(task.body),
        "completeTime": complete,
        "response": {"resultUrls": list(task.urls)} if task.state == "success" else None,
        "successFlag": flag,
        "status": status,
        "errorCode": _error_code(task, (400, 451, 500)) if failed else None,
        "errorMessage": task.fail_msg if failed else None,
        "createTime": create,
        "progress": f"{task.progress(state.clock.now()):.2f}",
    }


async def record_gpt4o(state: SimState, request: Request) -> Response:
    """``GET /api/v1/gpt4o-image/record-info``."""
    task = _find(state, request, "gpt4o")
    return envelope(200, "success", record_data_gpt4o(state, task) if task else None)


def callback_gpt4o(state: SimState, task: Task) -> dict[str, Any]:
    """4o callback: ``data.info.result_urls`` (snake_case); ``info`` null on failure."""
    if task.state == "success":
        return {
            "code": 200,
            "msg": "success",
            "data": {"taskId": task.id, "info": {"result_urls": list(task.urls)}},
        }
    code = _error_code(task, (400, 451, 500))
    return {"code": code, "msg": task.fail_msg, "data": {"taskId": task.id, "info": None}}


async def download_url_gpt4o(state: SimState, request: Request) -> Response:
    """``POST /api/v1/gpt4o-image/download-url`` with ``{taskId, url}``."""
    body = request.json()
    if not isinstance(body, dict):
        raise Rejection(400, "request body must be a JSON object")
    task_id, url = body.get("taskId"), body.get("url")
    if not isinstance(task_id, str) or not task_id:
        raise Rejection(422, "taskId is required")
    if not isinstance(url, str) or not url:
        raise Rejection(422, "url is required")
    state.settle()
    task = state.tasks.get(task_id)
    if task is None or task.api != "gpt4o":
        raise Rejection(422, "record is null")
    if task.state != "success":
        raise Rejection(422, "record status is not success")
    if task.completed is not None and state.clock.now() - task.completed > 14 * 86400:
        raise Rejection(422, "Temporarily supports records within 14 days")
    if not task.urls:
        raise Rejection(422, "record result data is blank")
    found = resolve_result(state, url)
    if found is None or found[0] != task.id:
        raise Rejection(422, "url is wrong")
    return envelope(200, "success", mint_link(state, *found))


# -- Flux Kontext -----------------------------------------------------------------------------


async def create_flux(state: SimState, request: Request) -> Response:
    """``POST /api/v1/flux/kontext/generate``."""
    body = validate_flux(request.json())
    model = body.get("model") or "flux-kontext-pro"
    sources = [body["inputImage"]] if body.get("inputImage") else []
    ratio = body.get("aspectRatio") or ("1:1" if sources else "16:9")
    jobs = _jobs(model, body, ratio, 1, sources)
    return _start(state, "flux", model, body, CATALOG[model].credits, jobs)


def record_data_flux(state: SimState, task: Task) -> dict[str, Any]:
    """Flux record-info ``data``: ISO times; a failure is ``successFlag`` 3 (generation failed)
    or 2 (create-task failed)."""
    complete, create = _times(state, task)
    failed = task.state == "fail"
    response = None
    if task.state == "success":
        response = {"originImageUrl": _origin(state, task), "resultImageUrl": task.urls[0]}
    return {
        "taskId": task.id,
        "paramJson": dumps(task.body),
        "completeTime": _iso(complete),
        "response": response,
        "successFlag": {"pending": 0, "success": 1, "fail": _fail_flag(task)}[task.state],
        "errorCode": _error_code(task, (400, 500, 501)) if failed else None,
        "errorMessage": task.fail_msg if failed else None,
        "createTime": _iso(create),
    }


def _origin(state: SimState, task: Task) -> str:
    # a short-lived link, like Flux's 10-minute originImageUrl; minted once per task
    link = state.origin_links.get(task.id)
    if link is None:
        assert task.completed is not None
        ttl = max(0.0, task.completed + _ORIGIN_TTL - state.clock.now())
        link = state.origin_links[task.id] = mint_link(state, task.id, 0, ttl=ttl)
    return link


async def record_flux(state: SimState, request: Request) -> Response:
    """``GET /api/v1/flux/kontext/record-info``."""
    task = _find(state, request, "flux")
    return envelope(200, "success", record_data_flux(state, task) if task else None)


def callback_flux(state: SimState, task: Task) -> dict[str, Any]:
    """Flux callback: ``data.info.resultImageUrl``; info fields ``""`` on failure."""
    if task.state == "success":
        info = {"originImageUrl": _origin(state, task), "resultImageUrl": task.urls[0]}
        return {
            "code": 200,
            "msg": "BFL image generated successfully.",
            "data": {"taskId": task.id, "info": info},
        }
    code = _error_code(task, (400, 500, 501))
    info = {"originImageUrl": "", "resultImageUrl": ""}
    return {"code": code, "msg": task.fail_msg, "data": {"taskId": task.id, "info": info}}


# -- Midjourney -------------------------------------------------------------------------------


async def create_mj(state: SimState, request: Request) -> Response:
    """``POST /api/v1/mj/generate``: 4 images per task, priced by speed."""
    body = validate_mj(request.json())
    sources = list(body.get("fileUrls") or ([body["fileUrl"]] if body.get("fileUrl") else []))
    jobs = _jobs("midjourney", body, body.get("aspectRatio") or "1:1", 4, sources)
    price = MJ_SPEED_PRICES.get(body.get("speed") or "fast", CATALOG["midjourney"].credits)
    return _start(state, "mj", "midjourney", body, price, jobs)


def record_data_mj(state: SimState, task: Task) -> dict[str, Any]:
    """MJ record-info ``data``: results are objects ``{resultUrl}``."""
    complete, create = _times(state, task)
    failed = task.state == "fail"
    result = None
    if task.state == "success":
        result = {"resultUrls": [{"resultUrl": url} for url in task.urls]}
    return {
        "taskId": task.id,
        "taskType": task.body.get("taskType"),
        "paramJson": dumps(task.body),
        "completeTime": complete,
        "resultInfoJson": result,
        "successFlag": {"pending": 0, "success": 1, "fail": _fail_flag(task)}[task.state],
        "errorCode": _error_code(task, (400, 500)) if failed else None,
        "errorMessage": task.fail_msg if failed else None,
        "createTime": create,
    }


async def record_mj(state: SimState, request: Request) -> Response:
    """``GET /api/v1/mj/record-info``."""
    task = _find(state, request, "mj")
    return envelope(200, "success", record_data_mj(state, task) if task else None)


def callback_mj(state: SimState, task: Task) -> dict[str, Any]:
    """MJ callback: a flat ``data.resultUrls`` string array; code 500 on failure."""
    data = {"taskId": task.id, "promptJson": dumps(task.body), "resultUrls": list(task.urls)}
    if task.state == "success":
        return {"code": 200, "msg": "success", "data": data}
    return {"code": 500, "msg": task.fail_msg, "data": data}


#: api -> callback body builder
CALLBACKS: dict[str, Callable[[SimState, Task], dict[str, Any]]] = {
    "gpt4o": callback_gpt4o,
    "flux": callback_flux,
    "mj": callback_mj,
}
