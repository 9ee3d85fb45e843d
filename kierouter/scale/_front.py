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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kierouter._errors import ConfigurationError
from kierouter._receiver_http import lifespan

if TYPE_CHECKING:
    from ._worker import Worker

__all__ = ["CallbackFront", "ClientFront", "batch_callback_url"]

_PATH = re.compile(r"^/b/([a-z0-9_]{1,40})(/.*)$")


def batch_callback_url(callback_url: str, batch_id: str) -> str:
    """The public URL a batch's receiver is reached at through the front."""
    return f"{callback_url.rstrip('/')}/b/{batch_id}"


class CallbackFront:
    """ASGI app routing ``/b/<batch>/...`` to that batch's receiver in this worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await _route(scope, receive, send, self._app)

    async def _app(self, batch_id: str) -> Any:
        """The batch's receiver in this worker (``None``: the batch takes no callbacks)."""
        handle = await self.worker.batch(batch_id)
        return handle.router.webhook_app if handle.router.webhook is not None else None


class ClientFront:
    """``kierouter webhook serve --db URL``: the callback front as a process of its own.

    It runs no rows and does not launch DBOS: for each batch it checks callback tokens with the
    batch's key (from the batch's shared folder) and KIE's signature, then hands each callback
    to the worker whose workflow runs the job with ``DBOSClient.send``.
    """

    def __init__(
        self,
        url: str,
        *,
        hmac_key: str | None = None,
        max_skew: float = 300.0,
        max_body: int = 256 * 1024,
        read_timeout: float | None = 10.0,
    ) -> None:
        from dbos import DBOSClient

        self.url = url
        self.hmac_key = hmac_key
        #: what each batch's receiver checks (``webhook serve``'s options)
        self.limits: dict[str, Any] = {
            "max_skew": max_skew,
            "max_body": max_body,
            "read_timeout": read_timeout,
        }
        self.client = DBOSClient(system_database_url=url)
        self._receivers: dict[str, Any] = {}
        self._pending: set[Any] = set()
        #: callbacks handed to a worker
        self.sent = 0

    def _receiver(self, batch_id: str) -> Any:
        receiver = self._receivers.get(batch_id)
        if receiver is not None:
            return receiver
        from pathlib import Path

        from kierouter.webhooks import WebhookReceiver

        from ._handle import callback_secret
        from ._journal import PostgresJournal

        backend = PostgresJournal(self.url, batch_id)
        meta = backend.get_meta("batch")
        if not meta:
            backend.close()
            raise ConfigurationError(f"no batch {batch_id!r}")

        def on_callback(job_key: str, task_id: str, body: Any) -> None:
            import asyncio

            task = asyncio.ensure_future(self._send(backend, job_key, task_id, body))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        receiver = WebhookReceiver(
            token_secret=callback_secret(Path(meta["out_dir"])),
            hmac_key=self.hmac_key,
            accept_any_job=True,
            on_callback=on_callback,
            **self.limits,
        )
        self._receivers[batch_id] = receiver
        return receiver

    async def _send(self, backend: Any, job_key: str, task_id: str, body: Any) -> None:
        import asyncio
        import logging

        from ._worker import INBOX_TOPIC

        job = await asyncio.to_thread(backend.job, job_key)
        if job is None:
            return
        await asyncio.to_thread(backend.put_callback, job_key, task_id, body)
        workflow = await asyncio.to_thread(backend.row_workflow, job.spec["row_key"])
        if workflow is None:
            return
        handle: Any = await self.client.retrieve_workflow_async(workflow)
        status = await handle.get_status()
        if not status.executor_id:
            return
        message = {"batch": backend.batch_id, "job": job_key, "task": task_id, "body": body}
        await self.client.send_async(f"kierouter-inbox:{status.executor_id}", message, INBOX_TOPIC)
        self.sent += 1
        logging.getLogger("kierouter.scale").info(
            "callback for %s sent to worker %s", job_key, status.executor_id
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def receiver(batch_id: str) -> Any:
            return self._receiver(batch_id)

        await _route(scope, receive, send, receiver)


async def _route(
    scope: Any, receive: Any, send: Any, app_for: Callable[[str], Awaitable[Any]]
) -> None:
    """One ASGI call of a front: ``/b/<batch>/<rest>`` goes to ``await app_for(batch)`` with
    ``<rest>`` as its path; a batch that is unknown (``ConfigurationError``) or takes no
    callbacks (``None``) is answered 404."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    match = _PATH.match(scope.get("path", ""))
    app = None
    if match is not None:
        try:
            app = await app_for(match[1])
        except ConfigurationError:
            app = None
    if app is None or match is None:
        await _not_found(send)
        return
    await app(dict(scope, path=match[2], raw_path=match[2].encode()), receive, send)


async def _not_found(send: Any) -> None:
    body = json.dumps({"code": 404, "msg": "unknown batch"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})
