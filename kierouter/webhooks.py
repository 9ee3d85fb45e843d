"""Receive KIE's task callbacks: a plain ASGI 3 app, mountable in any ASGI framework.

The router gives every job a callback URL ``{public_url}/kie/callback/{job_key}?token=...``. The
token is an HMAC of the job key under a per-router secret, so it differs per job, needs no
storage, and a receiver in another process that shares the secret can check it too. A callback:

- must be a ``POST`` of ``application/json`` no larger than ``max_body`` (else 405/415/413); a
  larger declared ``Content-Length`` is refused before any byte of the body is read, and a
  streamed (chunked) body is counted as it arrives and cut off at the cap;
- must arrive whole within ``read_timeout`` seconds (else 408): the receiver reads the body
  itself, chunk by chunk, so these limits hold in whatever ASGI server it is mounted in;
- must name a job this receiver waits for (else 404, unless a callback ``spool`` is set: then a
  valid callback for another process's job is accepted into the spool, where its owner finds it)
  and carry that job's token (else 401);
- must carry KIE's ``X-Webhook-Timestamp`` and ``X-Webhook-Signature`` headers, signed with the
  configured ``hmac_key`` and at most ``max_skew`` seconds old, when a key is configured (else 401);
- is only a *hint*: the waiting job confirms it with one status read, so a forged body can never
  complete a job, and a duplicate (same job, same task) changes nothing.

Every accepted callback is answered at once with 200 ``{"code":200,"msg":"success"}``, as KIE
expects; every refusal closes the connection. Each answer is logged at INFO on the
``kierouter.webhooks`` logger as method, path (never the query string, which holds the token),
status and reason. Mount it in your own app::

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
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote

from ._errors import ConfigurationError, redact, register_secret
from ._logfilter import RedactingFilter
from ._receiver_http import lifespan, no_constant, printable, read_body, request_path
from ._waiter import CallbackHint, CallbackWaiter

if TYPE_CHECKING:
    from ._spool import CallbackSpool, SpoolFollower

__all__ = [
    "CALLBACK_PREFIX",
    "CallbackHint",
    "CallbackWaiter",
    "RedactingFilter",
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


class WebhookReceiver:
    """An ASGI 3 app that turns KIE callbacks into hints for waiting jobs.

    Args:
        token_secret: secret the per-job tokens are derived from; random per receiver by default.
            Share it (e.g. ``WebhookConfig(token_secret=...)``) to check tokens across processes.
        hmac_key: KIE's ``webhookHmacKey``; when set, unsigned, forged and stale callbacks get 401.
        max_skew: accepted clock difference for ``X-Webhook-Timestamp``, in seconds.
        max_body: largest accepted body in bytes (declared or streamed).
        read_timeout: seconds the whole body may take to arrive (``None``: no limit).
        spool: path of a callback spool file (SQLite) shared with the other processes of this
            machine: a valid callback for a job another process waits for is accepted into it,
            and callbacks spooled by others for this process's jobs are picked up from it
            within a second. Needs an explicit ``token_secret``, the same in every process.
        accept_any_job: accept every job key whose token is valid, not only the jobs waiting in
            this process (with no spool, such callbacks go to ``on_callback`` only).
        on_callback: called as ``on_callback(job_key, task_id, body)`` for each accepted,
            non-duplicate callback.
        clock: time source for the timestamp window (Unix seconds).
        remember: how many finished jobs (and unattended callbacks) are remembered, so their
            late duplicates are acknowledged instead of refused.
    """

    def __init__(
        self,
        *,
        token_secret: str | bytes | None = None,
        hmac_key: str | None = None,
        max_skew: float = 300.0,
        max_body: int = 256 * 1024,
        read_timeout: float | None = 10.0,
        spool: str | os.PathLike[str] | None = None,
        accept_any_job: bool = False,
        on_callback: Callable[[str, str, Any], None] | None = None,
        clock: Callable[[], float] = time.time,
        remember: int = 10_000,
    ) -> None:
        if max_body <= 0:
            raise ConfigurationError(f"max_body must be a positive number of bytes, got {max_body}")
        if read_timeout is not None and read_timeout <= 0:
            raise ConfigurationError(
                f"read_timeout must be positive seconds (or None for no limit), got {read_timeout}"
            )
        if spool is not None and token_secret is None:
            raise ConfigurationError(
                "a callback spool needs token_secret: the processes sharing the spool check "
                "each other's callback tokens with it (set the same secret in every process)"
            )
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
        self.read_timeout = read_timeout
        self.accept_any_job = accept_any_job
        self.on_callback = on_callback
        self._clock = clock
        self._waiters: dict[str, CallbackWaiter] = {}
        # Jobs that finished recently: their late duplicates get 200 (so KIE stops retrying),
        # not 404. Bounded so a long-lived receiver does not grow without limit.
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._seen_any: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._spool: CallbackSpool | None = None
        self._follower: SpoolFollower | None = None
        if spool is not None:
            from ._spool import CallbackSpool, SpoolFollower

            self._spool = CallbackSpool(spool)
            self._follower = SpoolFollower(self._spool, self.waiting, self._from_spool)
        #: Counters by outcome: accepted, duplicate, spooled (accepted for another process),
        #: from_spool (picked up for this one), and the refusal reasons.
        self.stats: dict[str, int] = {}

    def __repr__(self) -> str:
        signed = "signed" if self._hmac_key else "unsigned"
        spool = f" spool={self._spool.path}" if self._spool is not None else ""
        return f"<WebhookReceiver {signed} waiting={len(self._waiters)}{spool}>"

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
        """Start accepting callbacks for ``job_key``; returns (or reuses) its waiter.

        With a spool, callbacks other processes spooled for the job (before or after this
        call) are picked up from it. Call it from the job's event loop.
        """
        waiter = self._waiters.get(job_key)
        if waiter is None:
            waiter = CallbackWaiter(job_key)
            self._waiters[job_key] = waiter
        self._finished.pop(job_key, None)
        if self._follower is not None:
            self._follower.watch(job_key)
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

    async def aclose(self) -> None:
        """Stop reading the spool and close its file (both resume on the next ``expect``)."""
        if self._follower is not None:
            await self._follower.aclose()
        if self._spool is not None:
            self._spool.close()

    def _from_spool(self, job_key: str, task_id: str, body: Any) -> None:
        waiter = self._waiters.get(job_key)
        if waiter is not None and waiter.offer(CallbackHint(task_id, body)):
            self._count("from_spool")
            log.info("callback for job %s (task %s) picked up from the spool", job_key, task_id)

    def _count(self, reason: str) -> None:
        self.stats[reason] = self.stats.get(reason, 0) + 1

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        status, reason = await self._handle(scope, receive)
        self._count(reason)
        log.info(
            "%s %s -> %d %s",
            printable(scope.get("method", "")),
            request_path(scope),
            status,
            reason,
        )
        headers = [(b"content-type", b"application/json")]
        if status == 200:
            body = _OK_BODY
        else:
            body = json.dumps({"code": status, "msg": reason}).encode()
            # A refused request may have body bytes still in flight: never read them.
            headers.append((b"connection", b"close"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, str]:
        if scope.get("method") != "POST":
            return 405, "method not allowed"
        path: str = scope.get("path", "")
        marker = "/callback/"
        if marker not in path:
            return 404, "not a callback path"
        job_key = unquote(path.rsplit(marker, 1)[1])
        if not job_key or "/" in job_key:
            return 404, "not a callback path"
        waiter = self._waiters.get(job_key)
        finished = job_key in self._finished
        anyone = self.accept_any_job or self._spool is not None
        if waiter is None and not finished and not anyone:
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
        raw = await read_body(receive, self.max_body, self.read_timeout)
        if isinstance(raw, tuple):
            return raw
        try:
            body = json.loads(raw, parse_constant=no_constant)
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
            if self._spool is not None:
                return await self._to_spool(job_key, task_id, body)
            return self._accept_unattended(job_key, task_id, body)
        if not waiter.offer(CallbackHint(task_id, body)):
            return 200, "duplicate"
        self._notify(job_key, task_id, body)
        return 200, "accepted"

    async def _to_spool(self, job_key: str, task_id: str, body: Any) -> tuple[int, str]:
        import sqlite3

        assert self._spool is not None
        try:
            stored = await asyncio.to_thread(self._spool.put, job_key, task_id, body)
        except sqlite3.Error as exc:
            # Not 200: KIE retries a callback it could not deliver, and one may reach the owner.
            log.warning(
                "cannot write the callback spool %s: %s", self._spool.path, redact(str(exc))
            )
            return 503, "callback spool unavailable"
        if not stored:
            return 200, "duplicate"
        self._notify(job_key, task_id, body)
        return 200, "spooled"

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
