"""Completion callbacks: POST the family's body to ``callBackUrl``, signed and retried.

* The URL is used exactly as given, query string included (a router puts its job key there).
* With an HMAC key: ``X-Webhook-Timestamp`` (real unix seconds, so receivers can check skew)
  and ``X-Webhook-Signature`` = base64(HMAC-SHA256(key, f"{taskId}.{timestamp}")).
* 15 s timeout per POST (real seconds); a non-2xx answer or an error is retried 1, 5 and
  15 emulated minutes later, then given up (``callbacks_failed``).
* Faults: ``lost_callback`` sends nothing; ``duplicate_callback`` delivers it twice.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._http import dumps
from ._state import SimState
from ._tasks import Task

if TYPE_CHECKING:
    import httpx

__all__ = ["RETRY_DELAYS", "CallbackSender", "sign"]

RETRY_DELAYS = (60.0, 300.0, 900.0)


def sign(key: str, task_id: str, timestamp: str) -> str:
    """KIE's webhook signature: base64(HMAC-SHA256(key, taskId + "." + timestamp))."""
    mac = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


class CallbackSender:
    """Delivers callbacks in the background. Strictly private."""

    def __init__(
        self,
        state: SimState,
        body_for: Callable[[SimState, Task], dict[str, Any]],
        *,
        timeout: float = 15.0,
    ) -> None:
        self.state = state
        self.body_for = body_for
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on ``loop`` (the server's loop)."""
        self._loop = loop

    def schedule(self, task: Task) -> None:
        """Queue delivery of ``task``'s callback (called when the task finishes)."""
        body = self.body_for(self.state, task)  # built now: the state at completion
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._spawn(task, body)
        else:
            loop.call_soon_threadsafe(self._spawn, task, body)

    def _spawn(self, task: Task, body: dict[str, Any]) -> None:
        job = asyncio.ensure_future(self._deliver(task, body))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _deliver(self, task: Task, body: dict[str, Any]) -> None:
        fault = self.state.faults.pick("callback")
        if fault is not None and fault.kind == "lost_callback":
            self.state.counters["callbacks_lost"] += 1
            return
        copies = 2 if fault is not None and fault.kind == "duplicate_callback" else 1
        for _ in range(copies):
            await self._send_with_retries(task, body)

    async def _send_with_retries(self, task: Task, body: dict[str, Any]) -> None:
        clock = self.state.clock
        start = clock.now()
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            if delay:
                await clock.sleep_until(start + delay)
            if await self._post(task, body, attempt):
                self.state.counters["callbacks_sent"] += 1
                return
        self.state.counters["callbacks_failed"] += 1

    async def _post(self, task: Task, body: dict[str, Any], attempt: int) -> bool:
        import httpx

        assert task.callback_url is not None
        headers = {"Content-Type": "application/json", "User-Agent": "kierouter-sim/0.1"}
        if self.state.hmac_key:
            stamp = str(int(time.time()))
            headers["X-Webhook-Timestamp"] = stamp
            headers["X-Webhook-Signature"] = sign(self.state.hmac_key, task.id, stamp)
        if self._client is None:
            # many tasks can finish at once in a benchmark: allow a wide pool
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
            )
        self.state.counters["callback_attempts"] += 1
        entry: dict[str, Any] = {
            "taskId": task.id,
            "url": task.callback_url,
            "attempt": attempt,
            "body": body,
            "status": None,
            "error": None,
        }
        self.state.callback_log.append(entry)
        try:
            response = await self._client.post(
                httpx.URL(task.callback_url), content=dumps(body).encode(), headers=headers
            )
        except httpx.HTTPError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            return False
        entry["status"] = response.status_code
        return 200 <= response.status_code < 300

    async def aclose(self) -> None:
        """Stop pending deliveries and close the HTTP client."""
        for job in list(self._jobs):
            job.cancel()
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
