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
or ``failed``). While the job that hedged a task still runs, it *holds* the watch: before each
new create, and once no step is left, the job settles the ends of its watched tasks itself, and
the first that succeeds (and passes the judge) serves the job; no task is created while a paid
image waits. When the job ends, it releases its watches to settle themselves.
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

    def __init__(self, state: JobState, run: TaskRun, *, held: bool) -> None:
        self.state = state
        self.run = run
        #: a running job holds the watch: the job, not the watch, settles the task's end
        self._held = held
        self._ended: asyncio.Future[TaskStatus | None] = asyncio.get_running_loop().create_future()
        #: set once the task's end is recorded (by the watch or by the job)
        self.settled = False
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

    def claim(self) -> bool:
        """Let a running job settle the task's end; False when the watch settles it already."""
        if self.settled or (self._ended.done() and not self._held):
            return False
        self._held = True
        return True

    def done_by_job(self, attempt: Attempt | None) -> None:
        """The job recorded the task's end (its attempt is in the job's trail)."""
        self.settled = True
        self.attempt = attempt

    def release(self) -> None:
        """The job has ended: the watch settles the task itself (as an extra) when it ends."""
        if not self._held:
            return
        self._held = False
        if self._ended.done() and not self.settled:
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
        if not self._held:
            await self._settle(status)

    async def _settle(self, status: TaskStatus | None) -> None:
        self.settled = True
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

    def start(self, state: JobState, run: TaskRun, *, held: bool = True) -> Watch:
        """Watch ``run`` (a hedged task of ``state``'s job) until it ends; ``held`` while the
        job that hedged it still runs (it releases the watch when it ends)."""
        watch = Watch(state, run, held=held)
        self._watches.setdefault(state.job_key, []).append(watch)
        return watch

    def of(self, job_key: str) -> list[Watch]:
        """The job's watches whose end is not recorded yet."""
        return [w for w in self._watches.get(job_key, ()) if not w.settled]

    def release(self, job_key: str) -> None:
        """The job has ended: each of its watches settles its task's end itself."""
        for watch in self._watches.get(job_key, ()):
            watch.release()

    def running(self, job_key: str | None = None) -> list[Watch]:
        """The watches (of one job, or all) whose task has not ended yet."""
        keys = [job_key] if job_key is not None else list(self._watches)
        return [w for key in keys for w in self._watches.get(key, ()) if not w.ended.done()]

    def watching(self, job_key: str | None = None) -> tuple[str, ...]:
        """Task ids of the tasks (of one job, or all) still watched."""
        return tuple(w.task_id for w in self.running(job_key))

    async def wait(self, job_key: str | None = None) -> list[Attempt]:
        """Wait until every watch (of ``job_key``, or of the router) has ended and been
        recorded; return the attempts they ended with, and forget them. (A watch still held by
        a running job is left to that job.)"""
        keys = [job_key] if job_key is not None else list(self._watches)
        ended: list[Attempt] = []
        for key in keys:
            left = []
            for watch in self._watches.get(key, []):
                await asyncio.wait({watch.ended})
                while not watch.task.done():  # release() may replace the task once
                    await asyncio.wait({watch.task})
                if not watch.settled:
                    left.append(watch)
                elif watch.attempt is not None:
                    ended.append(watch.attempt)
            if left:
                self._watches[key] = left
            else:
                self._watches.pop(key, None)
        return ended
