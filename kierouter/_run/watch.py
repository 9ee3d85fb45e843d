"""Watched tasks: a hedged task is followed in the background until KIE reports its end.

When a task passes its deadline and the policy escalates, the job goes on to its next step and
the task is *watched*: followed (callback or polling) until KIE reports it final or
``PollConfig.watch_limit`` passes, its price still held in the job's budget and the router's
spend limit. Then:

* it succeeded: its images are saved (into the job's output folder, named
  ``{job_key}-extra{attempt}-{n}``) and it is recorded as an ``extra`` attempt with its settled
  credits: paid, never thrown away, not the image that served the job;
* it failed: a ``failed`` attempt, whatever KIE charged (usually nothing);
* the watch limit passed: a ``timeout`` attempt; the hold is released.

Each end is journaled (the journal updates the hedged attempt) and sent as an event (``extra``,
or ``failed``). A job whose own steps all fail first *claims* its watched tasks and waits for
them: the first that succeeds (and passes the judge) serves the job.
:meth:`Router.drain <kierouter.Router.drain>` and ``Router.aclose()`` wait for every watch.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from kierouter._errors import KieRouterError

from .deliver import deliver
from .follow import follow_to_end
from .settle import charge, end, release

if TYPE_CHECKING:
    from kierouter._models import Attempt, ImageFile, TaskStatus

    from .state import JobState, TaskRun

__all__ = ["Watch", "Watcher"]

log = logging.getLogger("kierouter")


class Watch:
    """One hedged task followed in the background. Strictly private."""

    def __init__(self, state: JobState, run: TaskRun) -> None:
        self.state = state
        self.run = run
        self._claimed = False
        self._ended: asyncio.Future[TaskStatus | None] = asyncio.get_running_loop().create_future()
        #: the attempt the watch ended with, once it is recorded
        self.attempt: Attempt | None = None
        self.task: asyncio.Task[None] = asyncio.ensure_future(self._watch())

    def __repr__(self) -> str:
        return f"<Watch {self.state.job_key} task {self.run.task_id}>"

    @property
    def task_id(self) -> str:
        """The watched task's id."""
        return self.run.task_id or ""

    @property
    def ended(self) -> asyncio.Future[TaskStatus | None]:
        """Resolves with KIE's final status (``None``: given up at the watch limit)."""
        return self._ended

    def claim(self) -> None:
        """The job takes over: when the task ends, the job (not the watch) settles it."""
        self._claimed = True

    def release(self) -> None:
        """The job no longer wants it: the watch settles the task itself (as an extra)."""
        if not self._claimed:
            return
        self._claimed = False
        if self._ended.done() and self.attempt is None:
            self.task = asyncio.ensure_future(self._settle(self._ended.result()))

    async def _watch(self) -> None:
        status: TaskStatus | None = None
        try:
            status = await follow_to_end(self.state, self.run)
        except KieRouterError as exc:  # the router was halted (auth, credits): give it up
            log.warning(
                "job %s: stopped watching task %s: %s", self.state.job_key, self.task_id, exc
            )
        self._ended.set_result(status)
        if not self._claimed:
            await self._settle(status)

    async def _settle(self, status: TaskStatus | None) -> None:
        try:
            self.attempt = await self._record(status)
        except Exception as exc:  # a background task must not die silently
            log.warning(
                "job %s: could not record the end of watched task %s: %s",
                self.state.job_key,
                self.task_id,
                exc,
            )

    async def _record(self, status: TaskStatus | None) -> Attempt:
        state, run = self.state, self.run
        if status is None:
            release(state, run)
            reason = "watched to the watch limit; KIE never reported its end"
            state.emit("failed", model=run.model, task_id=run.task_id, detail=reason)
            return await end(state, run, "timeout", reason)
        charged = await charge(state, run, status)
        if status.state != "success":
            reason = "watched task failed: " + (status.fail_message or status.raw_state or "?")
            state.emit("failed", model=run.model, task_id=run.task_id, detail=reason)
            return await end(state, run, "failed", reason, charged, status=status)
        files: tuple[ImageFile, ...] = ()
        reason = "finished after the job moved on; paid, kept as an extra"
        if state.out_dir is not None:
            delivered = await deliver(
                state.ctx,
                card=run.card,
                provider=run.provider,
                task_id=run.task_id,
                urls=status.urls,
                target=state.out_dir,
                stem=f"{state.job_key}-extra{run.attempt_no}",
                job_key=state.job_key,
            )
            files = delivered.files
            if not delivered.complete:
                reason += f"; images not saved: {delivered.error}"
        attempt = await end(state, run, "extra", reason, charged, status=status, files=files)
        state.emit(
            "extra",
            model=run.model,
            task_id=run.task_id,
            detail=reason,
            data={"credits": charged.credits, "files": [f.path for f in files]},
        )
        return attempt


class Watcher:
    """Every watched task of one router. Strictly private."""

    def __init__(self) -> None:
        self._watches: dict[str, list[Watch]] = {}

    def __repr__(self) -> str:
        return f"<Watcher {sum(len(w) for w in self._watches.values())} watches>"

    def start(self, state: JobState, run: TaskRun) -> Watch:
        """Watch ``run`` (a hedged task of ``state``'s job) until it ends."""
        watch = Watch(state, run)
        self._watches.setdefault(state.job_key, []).append(watch)
        return watch

    def running(self, job_key: str | None = None) -> list[Watch]:
        """The watches (of one job, or all) whose task has not ended yet."""
        keys = [job_key] if job_key is not None else list(self._watches)
        return [w for key in keys for w in self._watches.get(key, ()) if not w.ended.done()]

    def watching(self, job_key: str | None = None) -> tuple[str, ...]:
        """Task ids of the tasks (of one job, or all) still watched."""
        return tuple(w.task_id for w in self.running(job_key))

    async def wait(self, job_key: str | None = None) -> list[Attempt]:
        """Wait until every watch (of ``job_key``, or of the router) has ended and been
        recorded; return the attempts they ended with, and forget them."""
        keys = [job_key] if job_key is not None else list(self._watches)
        ended: list[Attempt] = []
        for key in keys:
            for watch in self._watches.get(key, []):
                await asyncio.wait({watch.ended})
                while not watch.task.done():  # release() may replace the task once
                    await asyncio.wait({watch.task})
                if watch.attempt is not None:
                    ended.append(watch.attempt)
            self._watches.pop(key, None)
        return ended
