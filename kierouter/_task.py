"""A KIE task by id (:class:`TaskHandle`): read it, wait for it, save its images; nothing is
ever created through it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ._errors import DownloadError, GenerationFailedError
from ._run.deliver import deliver

if TYPE_CHECKING:
    from ._models import ImageFile, TaskStatus
    from ._run import RunContext

__all__ = ["TaskHandle"]


class _Owner(Protocol):
    """What a task handle needs of its router: the context its jobs share."""

    _ctx: RunContext


class TaskHandle:
    """A KIE task by id: check it, wait for it, download its images. Rebuildable any time.

    Get one from :meth:`Router.task <kierouter.Router.task>`; it needs only the task id and the
    model id.
    """

    def __init__(self, router: _Owner, task_id: str, model: str) -> None:
        self._ctx = router._ctx
        self.task_id = task_id
        self.model = model
        self.card = self._ctx.registry.card(model)
        self.provider = self._ctx.registry.provider(model)

    def __repr__(self) -> str:
        return f"<TaskHandle {self.task_id} {self.model}>"

    async def status(self) -> TaskStatus:
        """One status read."""
        return await self._ctx.completion.read_status(self.provider, self.card, self.task_id)

    async def wait(self, timeout: float | None = None) -> TaskStatus:  # noqa: ASYNC109
        """Poll until the task is final; :class:`~kierouter.TaskTimeoutError` after ``timeout``."""
        completion = self._ctx.completion
        limit = timeout if timeout is not None else completion.task_timeout(self.card)
        status = await self.status()
        if status.done:
            return status
        return await completion.wait(
            job_key=f"task-{self.task_id}",
            card=self.card,
            provider=self.provider,
            task_id=self.task_id,
            deadline=time.monotonic() + limit,
            emit=self._ctx.events.emit,
        )

    async def download(
        self,
        directory: str | os.PathLike[str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a task deadline, not a call timeout
        stem: str | None = None,
    ) -> tuple[ImageFile, ...]:
        """Wait for the task, then save its images into ``directory`` as ``{stem}-{n}``
        (``stem`` defaults to the task id). Nothing is ever created.

        A failed download is retried with backoff, and links are re-minted through KIE's
        download-url. Raises :class:`~kierouter.GenerationFailedError` when the task failed and
        :class:`~kierouter.DownloadError` when its images still could not be saved
        (``expired=True`` when KIE's links no longer answer, even re-minted).
        """
        status = await self.wait(timeout)
        if status.state != "success":
            raise GenerationFailedError(
                status.fail_message or "the task failed", task_id=self.task_id
            )
        delivered = await deliver(
            self._ctx,
            card=self.card,
            provider=self.provider,
            task_id=self.task_id,
            urls=status.urls,
            target=Path(directory),
            stem=stem or self.task_id,
            job_key=f"task-{self.task_id}",
        )
        if not delivered.complete:
            expired = "KIE's links have expired (download-url could not renew them): " * (
                delivered.expired
            )
            raise DownloadError(
                f"task {self.task_id}: {expired}{delivered.error}",
                url=status.urls[0] if status.urls else None,
                expired=delivered.expired,
            )
        return delivered.files
