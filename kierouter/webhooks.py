"""Receive KIE's task callbacks: a plain ASGI 3 app, mountable in any ASGI framework.

The router gives every job a callback URL ``{public_url}/kie/callback/{job_key}?token=...``. The
token is an HMAC of the job key under a per-router secret, so it differs per job, needs no
storage, and a receiver in another process that shares the secret can check it too. A callback:

- must be a ``POST`` of ``application/json`` no larger than ``max_body`` (else 405/415/413);
- must name a job this receiver knows (else 404) and carry that job's token (else 401);
- must carry KIE's ``X-Webhook-Timestamp`` and ``X-Webhook-Signature`` headers, signed with the
  configured ``hmac_key`` and at most ``max_skew`` seconds old, when a key is configured (else 401);
- is only a *hint*: the waiting job confirms it with one status read, so a forged body can never
  complete a job, and a duplicate (same job, same task) changes nothing.

Every accepted callback is answered at once with 200 ``{"code":200,"msg":"success"}``, as KIE
expects. Mount it in your own app::

    app.mount("/kie", router.webhook_app)          # Starlette / FastAPI

or run it alone with ``kierouter webhook serve``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from ._errors import redact, register_secret

__all__ = [
    "CALLBACK_PREFIX",
    "CallbackHint",
    "CallbackWaiter",
    "WebhookReceiver",
    "callback_task_id",
    "sign",
    "verify_signature",
]

log = logging.getLogger("kierouter.webhooks")

CALLBACK_PREFIX = "/kie/callback/"
"""Path under ``public_url`` that the router's callback URLs use."""

_OK_BODY = b'{"code":200,"msg":"success"}'

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def sign(hmac_key: str, task_id: str, timestamp: str) -> str:
    """KIE's signature: ``base64(HMAC-SHA256(key, taskId + "." + timestamp))``."""
    mac = hmac.new(hmac_key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def verify_signature(
    hmac_key: str,
    task_id: str,
    timestamp: str | None,
    signature: str | None,
    *,
    now: float,
    max_skew: float = 300.0,
) -> str | None:
    """Check KIE's HMAC headers; return why they are refused, or ``None`` when they are good."""
    if not timestamp or not signature:
        return "unsigned callback"
    try:
        ts = int(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs(now - ts) > max_skew:
        return "stale timestamp"
    expected = sign(hmac_key, task_id, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return "bad signature"
    return None


def callback_task_id(body: Any) -> str | None:
    """The task id of a callback body: top-level ``taskId``, then ``data.taskId``/``task_id``."""
    if not isinstance(body, Mapping):
        return None
    data = body.get("data")
    candidates = [body.get("taskId")]
    if isinstance(data, Mapping):
        candidates += [data.get("taskId"), data.get("task_id")]
    for value in candidates:
        if isinstance(value, str) and value:
            return value
    return None


class CallbackHint:
    """A verified callback: which task it names and its body (not trusted until confirmed)."""

    __slots__ = ("body", "received_at", "task_id")

    def __init__(self, task_id: str, body: Any) -> None:
        self.task_id = task_id
        self.body = body
        self.received_at = time.time()

    def __repr__(self) -> str:
        return f"<CallbackHint task {self.task_id}>"


class CallbackWaiter:
    """Where callbacks for one job land; the job's coroutine waits on it.

    Thread-safe: the receiver may run in another thread's event loop (e.g. a ``SyncRouter``
    whose receiver is mounted in a separate web server).
    """

    def __init__(self, job_key: str) -> None:
        self.job_key = job_key
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._hints: list[CallbackHint] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<CallbackWaiter {self.job_key} hints={len(self._hints)}>"

    def offer(self, hint: CallbackHint) -> bool:
        """Queue a hint; False when the same task already hinted (a duplicate)."""
        with self._lock:
            if hint.task_id in self._seen:
                return False
            self._seen.add(hint.task_id)
            self._hints.append(hint)
        if _running_loop() is self._loop:
            self._event.set()
        else:
            self._loop.call_soon_threadsafe(self._event.set)
        return True

    def rearm(self, task_id: str) -> None:
        """Accept a later callback for ``task_id`` again (its confirmation read said pending)."""
        with self._lock:
            self._seen.discard(task_id)

    def take(self) -> list[CallbackHint]:
        """Return and clear the queued hints."""
        with self._lock:
            hints, self._hints = self._hints, []
            self._event.clear()
        return hints

    async def wait(self, timeout: float | None) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` seconds for a hint; True when one is queued."""
        if self._hints:
            return True
        if timeout is not None and timeout <= 0:
            return False
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return bool(self._hints)
        return True


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class WebhookReceiver:
    """An ASGI 3 app that turns KIE callbacks into hints for waiting jobs.

    Args:
        token_secret: secret the per-job tokens are derived from; random per receiver by default.
            Share it (e.g. ``WebhookConfig(token_secret=...)``) to check tokens across processes.
        hmac_key: KIE's ``webhookHmacKey``; when set, unsigned, forged and stale callbacks get 401.
        max_skew: accepted clock difference for ``X-Webhook-Timestamp``, in seconds.
        max_body: largest accepted body in bytes.
        accept_any_job: accept every job key whose token is valid, not only the jobs waiting in
            this process (``kierouter webhook serve`` uses this with ``on_callback``).
        on_callback: called as ``on_callback(job_key, task_id, body)`` for each accepted,
            non-duplicate callback.
        clock: time source for the timestamp window (Unix seconds).
    """

    def __init__(
        self,
        *,
        token_secret: str | bytes | None = None,
        hmac_key: str | None = None,
        max_skew: float = 300.0,
        max_body: int = 256 * 1024,
        accept_any_job: bool = False,
        on_callback: Callable[[str, str, Any], None] | None = None,
        clock: Callable[[], float] = time.time,
        remember: int = 10_000,
    ) -> None:
        if token_secret is None:
            token_secret = secrets.token_bytes(32)
        self._token_secret = (
            token_secret.encode() if isinstance(token_secret, str) else token_secret
        )
        if isinstance(token_secret, str):
            register_secret(token_secret)
        register_secret(hmac_key)
        self._hmac_key = hmac_key
        self.max_skew = max_skew
        self.max_body = max_body
        self.accept_any_job = accept_any_job
        self.on_callback = on_callback
        self._clock = clock
        self._waiters: dict[str, CallbackWaiter] = {}
        # Jobs that finished recently: their late duplicates get 200 (so KIE stops retrying),
        # not 404. Bounded so a long-lived receiver does not grow without limit.
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._seen_any: OrderedDict[tuple[str, str], None] = OrderedDict()
        #: Counters by outcome: accepted, duplicate, and the refusal status codes.
        self.stats: dict[str, int] = {}

    def __repr__(self) -> str:
        signed = "signed" if self._hmac_key else "unsigned"
        return f"<WebhookReceiver {signed} waiting={len(self._waiters)}>"

    @property
    def verifies_signatures(self) -> bool:
        """True when an HMAC key is configured."""
        return self._hmac_key is not None

    # -- the router's side ---------------------------------------------------------------------

    def token_for(self, job_key: str) -> str:
        """The per-job token carried in the callback URL."""
        mac = hmac.new(self._token_secret, b"kierouter-job:" + job_key.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:24]).decode().rstrip("=")

    def callback_url(self, public_url: str, job_key: str) -> str:
        """``{public_url}/kie/callback/{job_key}?token=...`` for a job."""
        base = public_url.rstrip("/")
        return f"{base}{CALLBACK_PREFIX}{quote(job_key, safe='')}?token={self.token_for(job_key)}"

    def expect(self, job_key: str) -> CallbackWaiter:
        """Start accepting callbacks for ``job_key``; returns (or reuses) its waiter."""
        waiter = self._waiters.get(job_key)
        if waiter is None:
            waiter = CallbackWaiter(job_key)
            self._waiters[job_key] = waiter
        self._finished.pop(job_key, None)
        return waiter

    def forget(self, job_key: str) -> None:
        """Stop waiting for ``job_key``; later callbacks for it are acknowledged and ignored."""
        self._waiters.pop(job_key, None)
        self._finished[job_key] = None
        while len(self._finished) > self._remember:
            self._finished.popitem(last=False)

    def waiting(self) -> list[str]:
        """Job keys currently waiting for a callback."""
        return list(self._waiters)

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        status, reason = await self._handle(scope, receive)
        self.stats[reason] = self.stats.get(reason, 0) + 1
        if status == 200:
            body = _OK_BODY
        else:
            body = json.dumps({"code": status, "msg": reason}).encode()
            log.info("refused callback %s: %s %s", _path(scope), status, reason)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, str]:
        if scope.get("method") != "POST":
            return 405, "method not allowed"
        path = _path(scope)
        marker = "/callback/"
        if marker not in path:
            return 404, "not a callback path"
        job_key = unquote(path.rsplit(marker, 1)[1])
        if not job_key or "/" in job_key:
            return 404, "not a callback path"
        waiter = self._waiters.get(job_key)
        finished = job_key in self._finished
        if waiter is None and not finished and not self.accept_any_job:
            return 404, "unknown job"
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [""])[0]
        if not hmac.compare_digest(token.encode(), self.token_for(job_key).encode()):
            return 401, "bad token"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return 415, "content type must be application/json"
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return 413, "body too large"
        raw = await _read_body(receive, self.max_body)
        if raw is None:
            return 413, "body too large"
        try:
            body = json.loads(raw, parse_constant=_no_constant)
        except (ValueError, RecursionError):  # nesting deep enough to exhaust the stack
            return 400, "body is not JSON"
        task_id = callback_task_id(body)
        if task_id is None:
            return 400, "callback names no taskId"
        if self._hmac_key is not None:
            refused = verify_signature(
                self._hmac_key,
                task_id,
                headers.get("x-webhook-timestamp"),
                headers.get("x-webhook-signature"),
                now=self._clock(),
                max_skew=self.max_skew,
            )
            if refused is not None:
                return 401, refused
        if waiter is None:
            if finished:
                return 200, "duplicate"
            return self._accept_unattended(job_key, task_id, body)
        if not waiter.offer(CallbackHint(task_id, body)):
            return 200, "duplicate"
        self._notify(job_key, task_id, body)
        return 200, "accepted"

    def _accept_unattended(self, job_key: str, task_id: str, body: Any) -> tuple[int, str]:
        key = (job_key, task_id)
        if key in self._seen_any:
            return 200, "duplicate"
        self._seen_any[key] = None
        while len(self._seen_any) > self._remember:
            self._seen_any.popitem(last=False)
        self._notify(job_key, task_id, body)
        return 200, "accepted"

    def _notify(self, job_key: str, task_id: str, body: Any) -> None:
        if self.on_callback is None:
            return
        try:
            self.on_callback(job_key, task_id, body)
        except Exception as exc:
            log.warning("on_callback raised %s: %s", type(exc).__name__, redact(str(exc)))


def _no_constant(name: str) -> Any:
    """Refuse ``NaN``/``Infinity``: not JSON, and they break number fields further on."""
    raise ValueError(f"{name} is not JSON")


def _path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    return path


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
