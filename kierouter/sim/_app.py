"""The emulator's ASGI app: routing, auth, limits and faults around the family handlers.

Order for a KIE API request: route (404) → key check (401) → injected fault → rate limit (429)
→ handler. Like every business error KIE answers, 401 and 404 come as HTTP 200 envelopes.
Result files under ``/files/`` and ``/uploads/`` need no key (like KIE's file hosts).
The admin API under ``/_sim/`` needs no key and answers loopback clients only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from kierouter._server import DropConnection

from . import _admin, _files, _legacy, _market
from ._callbacks import CallbackSender
from ._faults import Fault
from ._http import Request, Response, envelope
from ._spoil import spoil
from ._state import SimState
from ._tasks import Task
from ._validation import Rejection

__all__ = ["ROUTES", "SimApp"]

Handler = Callable[[SimState, Request], Awaitable[Response]]

#: (method, path) -> (fault category, handler)
ROUTES: dict[tuple[str, str], tuple[str, Handler]] = {
    ("POST", "/api/v1/jobs/createTask"): ("create", _market.create),
    ("GET", "/api/v1/jobs/recordInfo"): ("status", _market.record),
    ("POST", "/api/v1/gpt4o-image/generate"): ("create", _legacy.create_gpt4o),
    ("GET", "/api/v1/gpt4o-image/record-info"): ("status", _legacy.record_gpt4o),
    ("POST", "/api/v1/gpt4o-image/download-url"): ("download", _legacy.download_url_gpt4o),
    ("POST", "/api/v1/flux/kontext/generate"): ("create", _legacy.create_flux),
    ("GET", "/api/v1/flux/kontext/record-info"): ("status", _legacy.record_flux),
    ("POST", "/api/v1/mj/generate"): ("create", _legacy.create_mj),
    ("GET", "/api/v1/mj/record-info"): ("status", _legacy.record_mj),
    ("POST", "/api/v1/common/download-url"): ("download", _files.download_url),
    ("POST", "/api/file-stream-upload"): ("upload", _files.upload_stream),
    ("POST", "/api/file-base64-upload"): ("upload", _files.upload_base64),
    ("POST", "/api/file-url-upload"): ("upload", _files.upload_url),
}


async def _credit(state: SimState, request: Request) -> Response:
    state.settle()
    return envelope(200, "success", round(state.balance, 6))


ROUTES[("GET", "/api/v1/chat/credit")] = ("credit", _credit)

# faults that answer in place of the handler (the request is not processed)
_REFUSALS: dict[str, tuple[int, int, str]] = {
    "http_429": (429, 429, "The frequency of your requests is too high, please try again later."),
    "code_455": (200, 455, "Service unavailable: the system is under maintenance."),
    "http_500": (500, 500, "Internal Server Error"),
    "code_500": (200, 500, "Server error, please try again later."),
    "code_550": (200, 550, "The queue is full, please try again later."),
}


def _callback_body(state: SimState, task: Task) -> dict[str, Any]:
    if task.api == "market":
        return _market.callback_body(state, task)
    return _legacy.CALLBACKS[task.api](state, task)


class SimApp:
    """ASGI 3 app of one emulator. Starts its background loop on first use."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.callbacks = CallbackSender(state, _callback_body)
        state.on_complete = self.callbacks.schedule
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start finishing tasks in the background (idempotent; needs a running loop)."""
        if self._runner is None:
            self.callbacks.bind(asyncio.get_running_loop())
            self._runner = asyncio.ensure_future(self.state.run())

    async def aclose(self) -> None:
        """Stop the background loop and pending callbacks."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        await self.callbacks.aclose()

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        self.start()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request = Request(
            scope["method"], scope["path"], scope["query_string"].decode("latin-1"), headers, body
        )
        response = await self.handle(request, scope.get("client"))
        out_headers = [(b"content-type", response.content_type.encode())]
        out_headers += [(k.encode(), v.encode()) for k, v in response.headers.items()]
        await send(
            {"type": "http.response.start", "status": response.status, "headers": out_headers}
        )
        await send({"type": "http.response.body", "body": response.body})

    async def handle(self, request: Request, client: Any = None) -> Response:
        """Answer one request (raises :class:`DropConnection` for a dropped-connection fault)."""
        state = self.state
        if request.path.startswith("/_sim/"):
            host = client[0] if client else "127.0.0.1"
            if host not in ("127.0.0.1", "::1", "localhost") and not host.startswith("127."):
                return Response(403, b'{"error":"the admin API answers loopback clients only"}')
            return await _admin.handle(self, request)
        if request.method == "GET" and request.path.startswith(("/files/", "/uploads/")):
            fault = state.faults.pick("files")
            if fault is not None:
                return await self._faulted(fault, None, request)
            return _files.serve_file(state, request)
        route = ROUTES.get((request.method, request.path))
        if route is None:
            state.reject(404)
            return envelope(404, f"Not Found: {request.method} {request.path}")
        category, handler = route
        key = request.bearer
        if key is None or key != state.api_key:
            state.reject(401)
            return envelope(401, "You do not have access permissions")
        fault = state.faults.pick(category)
        if fault is not None and fault.kind in _REFUSALS:
            return self._refusal(fault.kind)
        if fault is not None and fault.kind == "drop_connection" and category != "create":
            raise DropConnection
        try:
            if category == "create":
                state.check_create_rate(key)
            elif category == "status":
                state.counters["status_reads"] += 1
                state.check_read_rate(key)
            response = await handler(state, request)
        except Rejection as exc:
            state.reject(exc.code)
            response = envelope(exc.code, exc.msg, status=exc.http_status)
            if exc.retry_after is not None:
                response.headers["Retry-After"] = str(exc.retry_after)
        if fault is not None:
            return await self._faulted(fault, response, request)
        return response

    def _refusal(self, kind: str) -> Response:
        status, code, msg = _REFUSALS[kind]
        self.state.reject(code)
        response = envelope(code, msg, status=status)
        if kind == "http_429":
            response.headers["Retry-After"] = "1"
        return response

    async def _faulted(self, fault: Fault, response: Response | None, request: Request) -> Response:
        """Spoil an answer: drop it, delay it or garble it (the request itself was processed)."""
        if fault.kind in _REFUSALS:
            return self._refusal(fault.kind)
        if fault.kind == "drop_connection":
            raise DropConnection
        if response is None:
            response = _files.serve_file(self.state, request)
        return await spoil(fault, response)
