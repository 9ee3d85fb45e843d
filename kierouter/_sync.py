"""The blocking facade: :class:`SyncRouter` runs a :class:`~kierouter.Router` on its own event
loop in a daemon thread and submits every call to it, for scripts and notebooks."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import KieRouterError
from ._models import Attempt, ImageFile, ImageRequest, Result, TaskStatus

if TYPE_CHECKING:
    import httpx

    from ._completion import PollConfig, WebhookConfig
    from ._cooldown import Cooldown
    from ._events import EventSink
    from ._inputs import ImageInput
    from ._plugins import Registry
    from ._router import Router, TaskHandle
    from ._run import Journal
    from ._transport import KieClient
    from ._upload_cache import UploadCache, UploadedFile
    from .judging import Judge
    from .policy import Plan, Policy
    from .webhooks import WebhookReceiver

__all__ = ["SyncRouter", "SyncTaskHandle"]

_T = TypeVar("_T")


class SyncTaskHandle:
    """The blocking twin of :class:`TaskHandle`."""

    def __init__(self, owner: SyncRouter, handle: TaskHandle) -> None:
        self._owner = owner
        self._handle = handle
        self.task_id = handle.task_id
        self.model = handle.model

    def __repr__(self) -> str:
        return f"<SyncTaskHandle {self.task_id} {self.model}>"

    def status(self) -> TaskStatus:
        """One status read."""
        return self._owner._call(self._handle.status())

    def wait(self, timeout: float | None = None) -> TaskStatus:
        """Poll until the task is final."""
        return self._owner._call(self._handle.wait(timeout))

    def download(
        self,
        directory: str | os.PathLike[str],
        *,
        timeout: float | None = None,
        stem: str | None = None,
    ) -> tuple[ImageFile, ...]:
        """Wait for the task and download its images."""
        return self._owner._call(self._handle.download(directory, timeout=timeout, stem=stem))


class SyncRouter:
    """:class:`Router` for scripts: the same methods, blocking. Use ``with SyncRouter() as r``.

    It takes the same arguments as :class:`Router`, runs its own event loop in a daemon thread
    and submits every call to it.
    """

    def __init__(
        self,
        plugins: Iterable[object] | None = None,
        *,
        registry: Registry | None = None,
        client: KieClient | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | str | None = None,
        policy: str | Policy = "auto",
        judge: Judge | str | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        webhook: WebhookConfig | None = None,
        poll: PollConfig | None = None,
        latency_scale: float = 1.0,
        allow_private_downloads: bool = False,
        event_sinks: Iterable[EventSink] | Mapping[str, EventSink] = (),
        config: Any = None,
        journal: Journal | None = None,
        cooldown: Cooldown | None = None,
        budget: float | None = None,
        log: bool = False,
        upload_cache: UploadCache | None = None,
        upload_url: str | None = None,
    ) -> None:
        options: dict[str, Any] = {
            "registry": registry,
            "client": client,
            "api_key": api_key,
            "base_url": base_url,
            "transport": transport,
            "policy": policy,
            "judge": judge,
            "out_dir": out_dir,
            "webhook": webhook,
            "poll": poll,
            "latency_scale": latency_scale,
            "allow_private_downloads": allow_private_downloads,
            "event_sinks": event_sinks,
            "config": config,
            "journal": journal,
            "cooldown": cooldown,
            "budget": budget,
            "log": log,
            "upload_cache": upload_cache,
            "upload_url": upload_url,
        }
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="kierouter-sync", daemon=True
        )
        self._thread.start()
        self._closed = False

        async def build() -> Router:
            from ._router import Router

            router = Router(plugins, **options)
            await router.start()
            return router

        try:
            self._router = self._call(build())
        except BaseException:
            self._stop_loop()
            raise

    def __repr__(self) -> str:
        return f"<SyncRouter {self._router!r}>"

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._closed:
            coro.close()
            raise KieRouterError("this SyncRouter is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __enter__(self) -> SyncRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def router(self) -> Router:
        """The async router underneath."""
        return self._router

    @property
    def webhook_app(self) -> WebhookReceiver:
        """The ASGI callback receiver (safe to serve from another thread's event loop)."""
        return self._router.webhook_app

    def generate(
        self,
        request: ImageRequest | str,
        *,
        policy: str | Policy | None = None,
        job_key: str | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        judge: Judge | str | None = None,
    ) -> Result:
        """See :meth:`Router.generate`."""
        return self._call(
            self._router.generate(
                request, policy=policy, job_key=job_key, out_dir=out_dir, judge=judge
            )
        )

    def resume(
        self,
        request: ImageRequest | str,
        *,
        job_key: str,
        model: str | None = None,
        task_id: str | None = None,
        attempt_no: int = 1,
        prior_attempts: Sequence[Attempt] = (),
        policy: str | Policy | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        judge: Judge | str | None = None,
    ) -> Result:
        """See :meth:`Router.resume`."""
        return self._call(
            self._router.resume(
                request,
                job_key=job_key,
                model=model,
                task_id=task_id,
                attempt_no=attempt_no,
                prior_attempts=prior_attempts,
                policy=policy,
                out_dir=out_dir,
                judge=judge,
            )
        )

    def drain(self, job_key: str | None = None) -> list[Attempt]:
        """See :meth:`Router.drain`."""
        return self._call(self._router.drain(job_key))

    def reconcile(self, job_key: str, *, model: str, timeout: float) -> TaskStatus | None:
        """See :meth:`Router.reconcile`."""
        return self._call(self._router.reconcile(job_key, model=model, timeout=timeout))

    def explain(self, request: ImageRequest | str, policy: str | Policy | None = None) -> Plan:
        """See :meth:`Router.explain` (no network)."""
        return self._router.explain(request, policy)

    def task(self, task_id: str, *, model: str) -> SyncTaskHandle:
        """See :meth:`Router.task`."""
        return SyncTaskHandle(self, self._router.task(task_id, model=model))

    def upload(self, source: ImageInput) -> UploadedFile:
        """Upload one local image (a path or bytes), or reuse its remembered upload; see
        :meth:`Uploader.upload <kierouter.Uploader.upload>`."""
        return self._call(self._router.uploads.upload(source))

    def credits(self) -> float:
        """See :meth:`Router.credits`."""
        return self._call(self._router.credits())

    def close(self) -> None:
        """Close the router and stop the background loop."""
        if self._closed:
            return
        try:
            self._call(self._router.aclose())
        finally:
            self._closed = True
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
