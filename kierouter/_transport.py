"""KieClient: the one HTTP client a router uses to talk to KIE.

KIE answers business errors as HTTP 200 with the real code in the body, and sometimes as a real
HTTP status: both are checked, and every code maps to one class in :mod:`kierouter._errors`.
Cloudflare, in front of KIE, refuses some clients with HTTP 403 ``error code: 1010``: that is a
:class:`~kierouter.BlockedClientError` (send a User-Agent, check the network), never an auth or
validation error.

Retries (stamina): reads (status, credit, download-url) retry transient failures with capped,
jittered backoff and honour ``Retry-After`` up to a cap. Creates are billed, so a create is
retried only when it provably never reached KIE (a connect error) or KIE said it was not queued
(429). A timeout or a broken answer after a create was sent raises
:class:`~kierouter.AmbiguousSubmissionError`: never a silent second POST.

The API key is sent per request, never stored in a default header, so the same connection pool
can fetch result files from other hosts without leaking it; it never appears in a repr or error.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ._errors import (
    AmbiguousSubmissionError,
    BlockedClientError,
    ConfigurationError,
    KieError,
    MalformedResponseError,
    RateLimitedError,
    TransportError,
    error_for_code,
    register_secret,
)
from ._ratelimit import RateLimiter, WindowLimiter
from ._read_scheduler import ReadScheduler
from ._requests import RequestBuilder

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_BASE_URL", "USER_AGENT", "KieClient", "clean_key", "unwrap"]

DEFAULT_BASE_URL = "https://api.kie.ai"
USER_AGENT = "kierouter/0.1.0 (+https://pypi.org/project/kierouter/)"

_json_decoder = msgspec.json.Decoder()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
            seconds = parsed.timestamp() - time.time()
        except (ValueError, TypeError, IndexError, OverflowError):
            return None  # an unreadable Retry-After is ignored, not a crash
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _skip_missing_sniffio() -> None:
    """Make httpcore's per-request ``import sniffio`` cheap when sniffio is not installed.

    httpcore looks for sniffio each time a pooled connection sets up a lock (several times per
    request); when it is missing, every look is a failed import that scans the whole
    ``sys.path`` (measured: ~13 failed imports and ~2.5 ms of CPU per job at concurrency 100,
    see ``bench/overhead.py``). Recording the absence in ``sys.modules`` once makes the import
    fail at once. Nothing changes when sniffio is installed.
    """
    if "sniffio" in sys.modules:
        return
    import importlib.util

    if importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def _client_class() -> Any:
    """``httpx.AsyncClient`` whose cookie jar is handed a response only when it sets a cookie.

    httpx gives every response to its cookie jar through a urllib request built from a copy of
    the request's URL and headers; KIE's answers set no cookies, so that copy cost some tens of
    microseconds per call for nothing (about a third of the router's own CPU per job on the
    fast transport). A response that does set one is stored exactly as before.
    """
    global _CLIENT_CLASS
    if _CLIENT_CLASS is None:
        import httpx

        class _Cookies(httpx.Cookies):
            def extract_cookies(self, response: httpx.Response) -> None:
                if "set-cookie" in response.headers:
                    super().extract_cookies(response)

        class _Client(httpx.AsyncClient):
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self._kr_cookies = _Cookies(self._cookies)

            @property
            def cookies(self) -> httpx.Cookies:
                return self._kr_cookies

            @cookies.setter
            def cookies(self, cookies: Any) -> None:
                self._kr_cookies = _Cookies(cookies)

        _CLIENT_CLASS = _Client
    return _CLIENT_CLASS


_CLIENT_CLASS: Any = None


def clean_key(key: str | None) -> str | None:
    """An API key with surrounding whitespace (a trailing newline from a file or a paste)
    removed; a key with control characters inside is refused, without ever showing it."""
    if key is None:
        return None
    register_secret(key)
    cleaned = key.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in cleaned):
        raise ConfigurationError(
            "the KIE API key contains control characters (a line break or tab inside it?); "
            "copy it again from kie.ai → API Keys. It is not shown here"
        )
    register_secret(cleaned)
    return cleaned or None


def _blocked(status: int, content: bytes) -> bool:
    """Cloudflare's refusal of a client (HTTP 403 ``error code: 1010``): not KIE speaking."""
    return status == 403 and b"error code: 1010" in content[:2000]


def unwrap(status: int, content: bytes, headers: Mapping[str, str]) -> Any:
    """Return the ``data`` of a KIE envelope, or raise the error its HTTP status or code means."""
    retry_after = _retry_after(headers)
    try:
        body = _json_decoder.decode(content)
    except msgspec.DecodeError:
        if _blocked(status, content):
            raise BlockedClientError(
                "Cloudflare in front of KIE refused this client (HTTP 403, error code 1010); "
                "nothing reached KIE"
            ) from None
        if status != 200:
            raise error_for_code(
                status, f"HTTP {status}", http_status=status, retry_after=retry_after
            ) from None
        raise MalformedResponseError(f"answer is not JSON: {content[:120]!r}", sent=True) from None
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        if status != 200:
            raise error_for_code(
                status, f"HTTP {status}", http_status=status, retry_after=retry_after
            )
        raise MalformedResponseError(f"answer is not a KIE envelope: {str(body)[:120]}", sent=True)
    code: int = body["code"]
    msg = body.get("msg") or body.get("message") or ""
    if not isinstance(msg, str):
        msg = str(msg)
    if code == 200 and status != 200:
        code = status
    if code != 200:
        raise error_for_code(
            code, msg or f"HTTP {status}", http_status=status, retry_after=retry_after
        )
    return body.get("data")


class KieClient:
    """Async client for KIE's HTTP API, shared by every job of a router.

    Args:
        api_key: KIE API key; defaults to ``$KIE_API_KEY``. Checked when the first call is made.
        base_url: defaults to ``$KIE_BASE_URL`` or ``https://api.kie.ai``.
        transport: an ``httpx.AsyncBaseTransport`` (``httpx.MockTransport`` in tests, or
            ``"aiohttp"`` for the faster transport from the ``fast`` extra).
        create_limit: at most this many creates per ``create_window`` seconds (KIE: 20 / 10 s).
        read_rate: status reads per second (KIE: 10 per key).
        status_budget: status reads per second the router's tasks share
            (:class:`~kierouter._read_scheduler.ReadScheduler`); default 90 % of ``read_rate``,
            leaving a margin for other reads and for requests that arrive bunched.
        max_retry_after: longest ``Retry-After`` that is waited out; longer ones raise.
        read_attempts: tries for a read before its error is raised.
        create_attempts: tries for a create that provably did not reach KIE or got a 429.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | str | None = None,
        user_agent: str = USER_AGENT,
        create_limit: int = 20,
        create_window: float = 10.0,
        read_rate: float = 10.0,
        status_budget: float | None = None,
        max_retry_after: float = 60.0,
        read_attempts: int = 5,
        create_attempts: int = 4,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        max_connections: int = 200,
    ) -> None:
        self._api_key = clean_key(api_key if api_key is not None else os.environ.get("KIE_API_KEY"))
        self.base_url = (base_url or os.environ.get("KIE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.user_agent = user_agent
        self._transport = transport
        self.create_limiter = WindowLimiter(create_limit, create_window)
        self.read_limiter = RateLimiter(read_rate, burst=max(1, int(read_rate)))
        budget = status_budget if status_budget is not None else 0.9 * read_rate
        number = isinstance(budget, int | float) and not isinstance(budget, bool)
        if not number or not 0 < budget < float("inf"):
            raise ConfigurationError(f"status_budget must be a positive number, got {budget!r}")
        #: The key's status-read budget, shared by every task followed through this client.
        self.read_scheduler = ReadScheduler(budget)
        self.max_retry_after = max_retry_after
        self.read_attempts = read_attempts
        self.create_attempts = create_attempts
        self._timeouts = (connect_timeout, read_timeout)
        self._max_connections = max_connections
        self._http: httpx.AsyncClient | None = None
        self._builder: RequestBuilder | None = None
        #: Counters a benchmark or test can read: calls actually sent, by kind.
        self.sent = {"create": 0, "read": 0}

    def __repr__(self) -> str:
        key = "set" if self._api_key else "missing"
        return f"<KieClient {self.base_url} key={key}>"

    @property
    def has_key(self) -> bool:
        """Whether an API key is configured."""
        return bool(self._api_key)

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared ``httpx.AsyncClient`` (created on first use). Carries no credentials."""
        if self._http is None:
            import httpx

            _skip_missing_sniffio()
            transport = self._transport
            if transport == "aiohttp":
                from httpx_aiohttp import AiohttpTransport

                transport = AiohttpTransport()
            elif isinstance(transport, str):
                raise ConfigurationError(f"unknown transport {transport!r}; use 'aiohttp' or None")
            connect, read = self._timeouts
            self._http = _client_class()(
                transport=transport,
                headers={"User-Agent": self.user_agent},
                timeout=httpx.Timeout(read, connect=connect),
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                ),
                follow_redirects=False,
            )
        return self._http

    @property
    def _requests(self) -> RequestBuilder:
        """Builds this client's requests at a fraction of ``http.build_request``'s CPU
        (:class:`~kierouter._requests.RequestBuilder`); made again with a new ``http``."""
        http = self.http
        if self._builder is None or self._builder.client is not http:
            self._builder = RequestBuilder(http)
        return self._builder

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> KieClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _auth(self) -> dict[str, str]:
        if not self._api_key:
            raise ConfigurationError(
                "no KIE API key: pass api_key= to Router or KieClient, or set KIE_API_KEY "
                "(kie.ai → API Keys); to run without one, point them at the built-in emulator, "
                "kierouter.sim.Emulator (base_url=emu.base_url, api_key=emu.api_key)"
            )
        return {"Authorization": f"Bearer {self._api_key}"}

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    # -- creates -------------------------------------------------------------------------------

    async def create(
        self, path: str, body: Mapping[str, Any], *, job_key: str | None = None
    ) -> Any:
        """POST a billed create call and return its ``data``.

        Retried only on a connect error (never sent) or a 429 (not queued), waiting out
        ``Retry-After``. Anything that may have reached KIE without a clear answer raises
        :class:`AmbiguousSubmissionError`.
        """
        import httpx

        headers = self._auth()
        content = msgspec.json.encode(body)
        model = body.get("model") if isinstance(body.get("model"), str) else None
        last: Exception | None = None
        for attempt in range(self.create_attempts):
            async with self.create_limiter.slot():
                try:
                    self.sent["create"] += 1
                    request = self._requests.build(
                        "POST",
                        self._url(path),
                        content=content,
                        headers={**headers, "Content-Type": "application/json"},
                    )
                    response = await self.http.send(request)
                except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                    last = TransportError(f"could not connect to {self.base_url}: {exc}")
                    await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
                    continue
                except httpx.HTTPError as exc:
                    raise AmbiguousSubmissionError(
                        f"create for {model or path} was sent but no answer came back "
                        f"({type(exc).__name__}); the task may exist and be billed. "
                        "It is not resubmitted; reconcile it by its job key or a status read",
                        model=model,
                        job_key=job_key,
                    ) from None
            try:
                return unwrap(response.status_code, response.content, response.headers)
            except RateLimitedError as exc:
                last = exc
                wait = exc.retry_after if exc.retry_after is not None else 2.0 * (attempt + 1)
                if wait > self.max_retry_after:
                    raise
                self.create_limiter.defer(wait)
                if attempt + 1 >= self.create_attempts:
                    raise  # the last try: the caller decides what to do with the wait
                await asyncio.sleep(wait)
            except MalformedResponseError:
                raise AmbiguousSubmissionError(
                    f"create for {model or path} got an answer that is not KIE's envelope; "
                    "the task may exist and be billed. It is not resubmitted",
                    model=model,
                    job_key=job_key,
                ) from None
        assert last is not None
        raise last

    # -- reads ---------------------------------------------------------------------------------

    def _backoff(self, exc: Exception) -> bool | float:
        """stamina backoff hook: retry transient errors; wait out a bounded Retry-After."""
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return exc.retry_after if exc.retry_after <= self.max_retry_after else False
        if isinstance(exc, BlockedClientError):
            return False  # the same client is refused the same way
        if isinstance(exc, TransportError):
            return True
        return isinstance(exc, KieError) and exc.transient

    async def read(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        method: str = "GET",
        json: Any = None,
    ) -> Any:
        """An idempotent call (status, credit, download-url): transient failures are retried."""
        import stamina
        from httpx import HTTPError as _HTTPError

        headers = self._auth()
        content = None
        if json is not None:
            content = msgspec.json.encode(json)
            headers = {**headers, "Content-Type": "application/json"}
        url = self._url(path)
        # Fast path: almost every read succeeds at once, and building stamina's retry context
        # (a tenacity object, several inspect calls) costs more CPU than the read's own request
        # handling in kierouter. So the first try runs bare; only when it fails is the retry
        # context entered, and its first attempt re-raises that same error instead of sending
        # again: stamina still decides (backoff hook, attempts, waits, retry hooks, testing or
        # inactive mode) exactly as if the first try had run inside it.
        # (The first try is written out here rather than awaiting _read_once: one coroutine
        # less per read.)
        try:
            await self.read_limiter.acquire()
            self.sent["read"] += 1
            try:
                request = self._requests.build(
                    method, url, params=params, content=content, headers=headers
                )
                response = await self.http.send(request)
            except _HTTPError as exc:
                raise TransportError(
                    f"{method} {path} failed: {type(exc).__name__}: {exc}"
                ) from None
            return unwrap(response.status_code, response.content, response.headers)
        except Exception as exc:
            failed: Exception | None = exc
        # ``async for``: a plain ``for`` makes stamina wait with time.sleep, which blocks the
        # event loop (every job, the webhook server) for each backoff.
        async for attempt in stamina.retry_context(
            on=self._backoff, attempts=self.read_attempts, timeout=None, wait_initial=0.25,
            wait_max=8.0, wait_jitter=0.5,
        ):  # fmt: skip
            with attempt:
                if failed is not None:
                    first, failed = failed, None
                    raise first
                return await self._read_once(method, path, url, params, content, headers)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _read_once(
        self,
        method: str,
        path: str,
        url: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: dict[str, str],
    ) -> Any:
        """One try of a read: the read limiter, the request, the envelope."""
        import httpx

        await self.read_limiter.acquire()
        self.sent["read"] += 1
        try:
            request = self._requests.build(
                method, url, params=params, content=content, headers=headers
            )
            response = await self.http.send(request)
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {path} failed: {type(exc).__name__}: {exc}") from None
        return unwrap(response.status_code, response.content, response.headers)

    async def credits(self) -> float:
        """The account's credit balance (``GET /api/v1/chat/credit``; fractional)."""
        data = await self.read("/api/v1/chat/credit")
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise MalformedResponseError(f"credit balance is not a number: {data!r}")
        return float(data)

    async def download_url(
        self,
        url: str,
        *,
        path: str = "/api/v1/common/download-url",
        body: Mapping[str, str] | None = None,
    ) -> str:
        """Mint a fresh 20-minute link for a KIE-generated file URL."""
        data = await self.read(path, method="POST", json=dict(body) if body else {"url": url})
        if not isinstance(data, str) or not data.startswith(("http://", "https://")):
            raise MalformedResponseError(f"download-url answer is not a URL: {data!r}")
        return data
