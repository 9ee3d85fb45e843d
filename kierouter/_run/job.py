"""The run of one job: the stages in order, step after step of the plan. Strictly private.

For each step of the plan (the ladder): :mod:`.create` (prepare, hold the price, journal, POST)
→ :mod:`.follow` (to KIE's final state) → :mod:`.settle` (what KIE charged) →
:mod:`.deliver` (save the images) → :mod:`.judge` → :mod:`.settle` (record the attempt, or the
result). The job goes on to the next step only where :mod:`kierouter._money` allows another
create. When no step is left, the job waits for its watched (hedged) tasks: one of them may
still serve it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kierouter._budget import JobBudget
from kierouter._errors import (
    BudgetExhaustedError,
    BudgetReachedError,
    ContentPolicyError,
    JobFailedError,
    KieRouterError,
)
from kierouter._money import allows_another_create
from kierouter._seeds import rung_seed
from kierouter.provider import PreparedCall

from .create import check_writable, content_policy, new_run, open_task, send
from .deliver import Delivered, deliver
from .follow import Hedged, failure_error, follow
from .judge import judge
from .settle import charge, end, release, serve
from .state import JobState, NextStep, RetrySame, TaskRun

if TYPE_CHECKING:
    from kierouter._models import Attempt, ImageRequest, Result, TaskStatus
    from kierouter.policy import PlanStep, Policy

    from .watch import Watch, Watcher

__all__ = ["Existing", "Job"]


@dataclass
class Existing:
    """A task created earlier (by a previous process): resume it instead of creating one."""

    model: str
    task_id: str | None
    attempt_no: int = 1


class Job:
    """The run of one job. Strictly private; built by :class:`~kierouter.Router`."""

    def __init__(self, state: JobState, watcher: Watcher) -> None:
        self.state = state
        self.watcher = watcher
        self._skip: set[str] = set()

    def __repr__(self) -> str:
        return f"<Job {self.state.job_key}>"

    @property
    def request(self) -> ImageRequest:
        """The job's request (validated, the policy's options applied)."""
        return self.state.request

    @property
    def policy(self) -> Policy:
        """The job's policy."""
        return self.state.policy

    @property
    def job_key(self) -> str:
        """The job's key."""
        return self.state.job_key

    @property
    def budget(self) -> JobBudget:
        """The job's live budget (the router's ``resume`` counts the existing create on it)."""
        return self.state.budget

    # -- the run -------------------------------------------------------------------------------

    async def run(self, *, existing: Existing | None = None, skip: Sequence[str] = ()) -> Result:
        """Run the plan (after resuming ``existing``); return the result or raise."""
        state = self.state
        ctx = state.ctx
        receiver = ctx.receiver
        if receiver is not None and ctx.public_url:
            state.waiter = receiver.expect(state.job_key)
        try:
            check_writable(ctx, state.out_dir)
            self._skip = set(skip)
            return await self._run(existing)
        except BaseException as exc:
            detail = f"{type(exc).__name__}: {exc}" if isinstance(exc, Exception) else "cancelled"
            state.emit("finished", detail=detail, data={"ok": False})
            record_failed = getattr(state.journal, "record_failed", None)
            if record_failed is not None and isinstance(exc, JobFailedError | BudgetExhaustedError):
                await state.journal_call("record_failed", str(exc))
            raise
        finally:
            self.watcher.release(state.job_key)
            if receiver is not None and state.waiter is not None:
                receiver.forget(state.job_key)

    async def _run(self, existing: Existing | None) -> Result:
        state = self.state
        steps = state.plan.steps
        if state.wants("planned"):
            state.emit(
                "planned",
                detail=" → ".join(state.plan.models) or "no eligible model",
                data={"policy": state.plan.policy, "expected_credits": state.plan.expected_credits},
            )
        stopped: KieRouterError | None = None
        try:
            if existing is not None:
                self._skip.add(existing.model)
                result = await self._resume(existing)
                if result is not None:
                    return result
            result = await self._ladder()
            if result is not None:
                return result
        except (BudgetExhaustedError, BudgetReachedError, JobFailedError) as exc:
            stopped = exc  # no more creates; a watched task may still serve the job
        result = await self._serve_from_watched(wait=True)
        if result is not None:
            return result
        if isinstance(stopped, BudgetReachedError):
            raise BudgetReachedError(stopped.spent, stopped.budget, state.attempts) from None
        if stopped is not None:
            raise stopped
        if not steps:
            dropped = "; ".join(f"{d.model}: {d.reason}" for d in state.plan.dropped)
            raise JobFailedError(
                f"no model can run this request under policy {state.plan.policy!r}"
                + (f" ({dropped})" if dropped else ""),
                state.attempts,
            )
        if state.credit_skips and not any(a.outcome == "success" for a in state.attempts):
            limit = state.policy.budget.max_credits
            raise BudgetExhaustedError(
                f"max_credits ({limit:g}) leaves no room for the remaining models", state.attempts
            )
        raise JobFailedError("every model in the plan failed", state.attempts)

    async def _ladder(self) -> Result | None:
        """Each step of the plan in turn, while the money rule allows another create."""
        state = self.state
        ended = self._last_ended()
        for rung, step in enumerate(state.plan.steps):
            if step.model in self._skip:
                continue
            result = await self._serve_from_watched(wait=False)  # a paid image first
            if result is not None:
                return result
            if ended is not None:
                if not allows_another_create(ended.outcome, ended.task_id):
                    raise JobFailedError(
                        f"{ended.model} {ended.outcome}: no other task is created for this job "
                        f"(policy on_timeout={state.policy.on_timeout!r})",
                        state.attempts,
                    )
                detail = f"{ended.model} {ended.outcome}" + (
                    f": {ended.reason}" if ended.reason else ""
                )
                state.emit("escalated", model=step.model, detail=detail)
            result = await self._step(rung, step)
            if result is not None:
                return result
            ended = self._last_ended() or ended
        return None

    def _last_ended(self) -> Attempt | None:
        """The last attempt that was sent (a skip says nothing about the money)."""
        for attempt in reversed(self.state.attempts):
            if attempt.outcome != "skipped":
                return attempt
        return None

    async def _step(self, rung: int, step: PlanStep) -> Result | None:
        state = self.state
        state.check_halt()
        state.check_budget()
        run = await open_task(state, rung, step)
        retries = 0
        while run is not None:
            try:
                await send(state, run)
                return await self._through(run)
            except RetrySame as retry:
                retries += 1
                if retries > state.ctx.create_retries:
                    return None
                await self._backoff(run.model, retries, retry.reason)
                run = dataclasses.replace(run, started_at=time.time(), t0=time.monotonic())
            except NextStep:
                return None
        return None

    async def _backoff(self, model: str, retries: int, reason: str) -> None:
        state, ctx = self.state, self.state.ctx
        state.check_budget()
        delay = ctx.retry_backoff * 2 ** (retries - 1) * ctx.latency_scale
        delay *= 1 + ctx.rng.uniform(-0.2, 0.2)
        delay = min(delay, max(0.0, state.budget.remaining_time()))
        state.emit("retried", model=model, detail=reason, data={"wait": round(delay, 3)})
        await asyncio.sleep(delay)

    def _can_go_on(self, rung: int) -> bool:
        """Whether a step after ``rung`` could still create (for hedging a late task)."""
        if self.state.budget.exhausted() is not None:
            return False
        return any(s.model not in self._skip for s in self.state.plan.steps[rung + 1 :])

    # -- one task, after its create ------------------------------------------------------------

    async def _through(self, run: TaskRun) -> Result | None:
        """Follow a created task to its end, then settle, deliver, judge."""
        state, ctx = self.state, self.state.ctx
        followed = await follow(state, run, may_hedge=lambda: self._can_go_on(run.rung))
        if isinstance(followed, Hedged):
            reason = followed.reason
            ctx.spend.unblock(run.model)  # its price will not be known soon
            await end(state, run, "hedged", reason)
            self.watcher.start(state, run)
            ctx.cooldown.failure(run.model)
            # KIE goes on with the abandoned task and bills it when it produces an image
            ctx.observe(run.model, False, state.plan.intent, billed=True)
            state.emit("hedged", model=run.model, task_id=run.task_id, detail=reason)
            return None
        if followed is None:
            release(state, run)
            reason = "KIE never reported its end within the watch limit; no other task is created"
            await end(state, run, "timeout", reason)
            ctx.cooldown.failure(run.model)
            ctx.observe(run.model, False, state.plan.intent)
            state.emit("failed", model=run.model, task_id=run.task_id, detail=reason)
            return None
        return await self._finished(run, followed)

    async def _finished(self, run: TaskRun, status: TaskStatus) -> Result | None:
        """KIE reported ``run`` final: settle, and for a success deliver, judge and serve."""
        state, ctx = self.state, self.state.ctx
        charged = await charge(state, run, status)
        if status.state != "success":
            reason = "task failed" + (f" ({status.fail_code})" if status.fail_code else "")
            reason += f": {status.fail_message or status.raw_state or 'no reason given'}"
            await end(state, run, "failed", reason, charged, status=status)
            ctx.cooldown.failure(run.model)
            ctx.observe(run.model, False, state.plan.intent)
            state.emit("failed", model=run.model, task_id=run.task_id, detail=reason)
            error = failure_error(run.provider, status)
            if isinstance(error, ContentPolicyError):
                content_policy(state, run.card, error)
            return None
        ctx.cooldown.success(run.model)
        scratch: Path | None = None
        target = state.out_dir
        try:
            if target is None and state.judge is not None:
                try:
                    scratch = target = Path(tempfile.mkdtemp(prefix="kierouter-"))
                except OSError as exc:  # paid already: say so, never a bare OSError
                    why = f"no temporary folder to judge the images in: {exc.strerror or exc}"
                    return await serve(state, run, status, charged, Delivered((), why))
            delivered = None
            if target is not None:
                state.emit("delivering", model=run.model, task_id=run.task_id)
                delivered = await deliver(
                    ctx,
                    card=run.card,
                    provider=run.provider,
                    task_id=run.task_id,
                    urls=status.urls,
                    target=target,
                    stem=state.job_key,
                    job_key=state.job_key,
                )
            if delivered is not None and not delivered.complete:
                kept = Delivered((), delivered.error, delivered.expired) if scratch else delivered
                return await serve(state, run, status, charged, kept)
            files = delivered.files if delivered is not None else ()
            try:
                verdict = await judge(state, run, status, files)
            except BaseException:
                await end(state, run, "error", "the judge raised", charged, status=status)
                raise
            if not verdict.accepted:
                reason = verdict.reason or "rejected by judge"
                await end(state, run, "rejected", reason, charged, status=status)
                # KIE produced (and billed) the image; only the judge said no
                ctx.observe(run.model, False, state.plan.intent, billed=True)
                for file in files:
                    with contextlib.suppress(OSError):
                        os.unlink(file.path)
                return None
            ctx.observe(run.model, True, state.plan.intent)
            return await serve(state, run, status, charged, None if scratch else delivered)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    # -- tasks created earlier, and watched ones -----------------------------------------------

    async def _resume(self, existing: Existing) -> Result | None:
        """Follow a task created by an earlier run (or reconcile a lost create)."""
        return await self._through(self.adopt(existing))

    def adopt(self, existing: Existing) -> TaskRun:
        """A :class:`TaskRun` for a task created earlier; its price is held (it may be billed)."""
        state, ctx = self.state, self.state.ctx
        card = ctx.registry.card(existing.model)
        provider = ctx.registry.provider(existing.model)
        rung = next((i for i, s in enumerate(state.plan.steps) if s.model == existing.model), 0)
        try:
            prepared = provider.prepare(
                card, state.request, seed=rung_seed(state.request.seed, rung)
            )
        except Exception:  # only its adaptations are wanted here; nothing is sent
            prepared = PreparedCall(path="", body={})
        run = new_run(
            state, card, provider, prepared, rung,
            attempt_no=existing.attempt_no, task_id=existing.task_id, created_here=False,
        )  # fmt: skip
        run.hold = ctx.spend.hold_existing(card.id, run.cost)
        run.held = run.hold.amount
        state.budget.hold(run.held)
        ctx.probe.begin(card.id)  # running: no balance reading of its own (none before it)
        if existing.task_id:
            ctx.owners.add(existing.task_id, state.job_key)
        return run

    async def _serve_from_watched(self, *, wait: bool) -> Result | None:
        """Settle the ends of the job's watched tasks that have ended (``wait``: all of them,
        as they end); the first that succeeds and passes the judge serves the job."""
        watches: list[Watch] = [w for w in self.watcher.of(self.state.job_key) if w.claim()]
        pending = {watch.ended: watch for watch in watches}
        while pending:
            done = {future for future in pending if future.done()}
            if not done:
                if not wait:
                    return None
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                watch = pending.pop(future)
                status = future.result()
                if status is None:
                    release(self.state, watch.run)
                    reason = "watched to the watch limit; KIE never reported its end"
                    watch.done_by_job(await end(self.state, watch.run, "timeout", reason))
                    continue
                result = await self._finished(watch.run, status)
                watch.done_by_job(self.state.find(watch.task_id))
                if result is not None:
                    return result
        return None
