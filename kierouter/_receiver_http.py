"""The HTTP side of the webhook receiver: reading a body within limits, safe log fields.

Strictly private helpers of :class:`kierouter.webhooks.WebhookReceiver`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ._logfilter import scrub

__all__ = ["lifespan", "no_constant", "printable", "read_body", "request_path"]

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def no_constant(name: str) -> Any:
    """Refuse ``NaN``/``Infinity``: not JSON, and they break number fields further on."""
    raise ValueError(f"{name} is not JSON")


def printable(text: str, limit: int = 200) -> str:
    """``text`` safe for one log line: control characters escaped, secrets scrubbed, cut short."""
    clean = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:limit])
    return scrub(clean) + ("..." if len(text) > limit else "")


def request_path(scope: Scope) -> str:
    """The request's path for a log line: never the query string (it carries the token)."""
    return printable(str(scope.get("path", "")))


async def read_body(
    receive: Receive,
    limit: int,
    timeout: float | None,  # noqa: ASYNC109 - a deadline for the whole body, not a call's
) -> bytes | tuple[int, str]:
    """The body, read chunk by chunk: at most ``limit`` bytes are ever held, and all of it must
    arrive within ``timeout`` seconds. Returns the refusal (status, reason) instead when not."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return 400, "connection closed before the body was complete"
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    return 413, "body too large"
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        return 408, "body not received in time"


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer the ASGI lifespan protocol (the receiver needs no start-up or shutdown)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
