"""Common random numbers for ``cost_per_image.py``: every strategy meets the same outcomes.

Comparing routing orders by what the emulator charged is only fair if a job meets the same luck
on the same model whichever order tries it. The emulator draws a task's outcome from its seed and
the order of creation, which differs between strategies; so the benchmark decides each outcome
from a hash of (the job's prompt, the model) instead:

* KIE's failure: :class:`SameOdds`, an httpx transport under the router's client, sends a create
  either to an emulator where every task succeeds or to one where every task fails (and so is
  not charged), by the hash; status reads follow the task to the emulator that made it;
* the judge's rejection: :func:`judge` rejects by another hash of the same pair.

The emulators stay KIE's stand-in (real HTTP, real task lifecycles and billing); only the dice
are shared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

__all__ = ["SameOdds", "judge", "rate_for", "unit"]

_MARKET_CREATE = "/api/v1/jobs/createTask"


def unit(*parts: object) -> float:
    """A number in [0, 1), the same for the same parts."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def rate_for(rates: Mapping[str, float], model: str) -> float:
    """``rates[model]``, else ``rates["*"]``, else 0."""
    return rates.get(model, rates.get("*", 0.0))


class SameOdds(httpx.AsyncBaseTransport):
    """Sends each Market create to ``good`` (tasks succeed) or ``bad`` (tasks fail) by a hash
    of (prompt, model) against ``fail[model]``; reads follow their task. Other calls (legacy
    APIs, whose models never fail here, and downloads) go where their URL says."""

    def __init__(self, good: str, bad: str, fail: Mapping[str, float]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._good = httpx.URL(good)
        self._bad = httpx.URL(bad)
        self._fail = fail
        self._owner: dict[str, httpx.URL] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target: httpx.URL | None = None
        creating = request.method == "POST" and request.url.path == _MARKET_CREATE
        if creating:
            body = json.loads(await request.aread())
            model = str(body.get("model", ""))
            prompt = str((body.get("input") or {}).get("prompt", ""))
            failing = unit(prompt, model, "fail") < rate_for(self._fail, model)
            target = self._bad if failing else self._good
        elif "taskId" in request.url.params:
            target = self._owner.get(request.url.params["taskId"])
        if target is not None:
            request.url = request.url.copy_with(host=target.host, port=target.port)
            request.headers["Host"] = f"{target.host}:{target.port}"
        response = await self._inner.handle_async_request(request)
        if creating and target is not None and response.status_code == 200:
            data = json.loads(await response.aread()).get("data") or {}
            if data.get("taskId"):
                self._owner[str(data["taskId"])] = target
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def judge(reject: Mapping[str, float], seen: Callable[[str, bool], None]) -> Any:
    """A judge rejecting ``model``'s image with ``reject[model]`` (``"*"``: any other), by a
    hash of (prompt, model); ``seen(model, accepted)`` hears every verdict."""
    from kierouter import Verdict

    def decide(context: Any) -> Any:
        model = context.model
        rate = rate_for(reject, model)
        accepted = unit(context.request.prompt, model, "judge") >= rate
        seen(model, accepted)
        if accepted:
            return Verdict(True)
        return Verdict(False, f"rejected by the benchmark judge ({rate:.0%} for {model})")

    return decide
