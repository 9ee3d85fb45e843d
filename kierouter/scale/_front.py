"""A worker's callback front: one port for the callbacks of every batch of the database.

KIE posts a job's callback to the URL its create carried. With ``--callback-url URL`` every
worker puts ``URL/b/<batch id>/kie/callback/<job>?token=...`` in its creates, so all callbacks
reach whatever answers at ``URL`` (one worker's ``--listen`` port, or a load balancer in front
of several). The front hands each to the batch's receiver in this worker, which checks its
token (and KIE's signature) and gives it to the job if it waits here, or sends it to the worker
whose workflow runs the job.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from kierouter._errors import ConfigurationError
from kierouter._receiver_http import lifespan

if TYPE_CHECKING:
    from ._worker import Worker

__all__ = ["CallbackFront", "batch_callback_url"]

_PATH = re.compile(r"^/b/([a-z0-9_]{1,40})(/.*)$")


def batch_callback_url(callback_url: str, batch_id: str) -> str:
    """The public URL a batch's receiver is reached at through the front."""
    return f"{callback_url.rstrip('/')}/b/{batch_id}"


class CallbackFront:
    """ASGI app routing ``/b/<batch>/...`` to that batch's receiver in this worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        match = _PATH.match(scope.get("path", ""))
        handle = None
        if match is not None:
            try:
                handle = await self.worker.batch(match[1])
            except ConfigurationError:
                handle = None
        if handle is None or handle.router.webhook is None:
            body = json.dumps({"code": 404, "msg": "unknown batch"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        assert match is not None
        inner = dict(scope, path=match[2], raw_path=match[2].encode())
        await handle.router.webhook_app(inner, receive, send)
