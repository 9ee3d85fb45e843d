"""Stage 3, follow: from the create to KIE's own final state for the task.

A task is followed by callback (confirmed by one status read) or by polling
(:class:`~kierouter._completion.Completion`). A status read that fails is read again until the
task's deadline; only KIE saying ``success`` or ``fail`` ends the task. A task id named by a
callback after a lost create answer is journaled the moment it arrives, and a callback naming a
task that is another job's (or an earlier attempt's) never serves this job.

At the task's deadline the policy's ``on_timeout`` decides: ``escalate`` *hedges* (the job goes
on to the next step while the task is watched in the background, :mod:`.watch`), as long as a
next step could run; otherwise (``wait``, or nothing left to escalate to) the task is followed
on until ``PollConfig.watch_limit``. A create whose answer was lost and that no callback named
ends the job with :class:`~kierouter.AmbiguousSubmissionError`: it is never resubmitted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kierouter._completion import map_provider_error
from kierouter._errors import (
    AuthError,
    BlockedClientError,
    ConfigurationError,
    ContentPolicyError,
    InsufficientCreditsError,
    KieRouterError,
    TaskTimeoutError,
    error_for_code,
)

from .state import JobState, TaskRun

if TYPE_CHECKING:
    from kierouter._models import TaskStatus
    from kierouter.provider import Provider

    from .context import RunContext

__all__ = ["Hedged", "failure_error", "follow", "follow_to_end", "reconcile", "watch_deadline"]

_CONTENT_WORDS = re.compile(
    r"content polic|flagged|sensitive|nsfw|violat|prohibited|unsafe content|moderation", re.I
)


@dataclass(frozen=True)
class Hedged:
    """The task passed its deadline and the policy escalates: it is watched from now on."""

    reason: str


class _Ignored:
    """Task ids a callback may not name for this job: its earlier attempts, others' tasks."""

    __slots__ = ("_foreign", "_tried")

    def __init__(self, state: JobState, run: TaskRun) -> None:
        self._tried = state.tried() - {run.task_id}
        self._foreign = state.ctx.owners.foreign_to(state.job_key)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tried or task_id in self._foreign


async def _wait(state: JobState, run: TaskRun, deadline: float) -> TaskStatus:
    ctx = state.ctx

    async def named(task_id: str) -> None:
        run.task_id = task_id
        run.named_by_callback = True
        ctx.owners.add(task_id, state.job_key)
        await state.journal_call("record_submitted", run.attempt_no, run.model, task_id)
        state.emit("reconciled", model=run.model, task_id=task_id, detail="named by its callback")

    try:
        return await ctx.completion.wait(
            job_key=state.job_key,
            card=run.card,
            provider=run.provider,
            task_id=run.task_id,
            deadline=deadline,
            waiter=state.waiter,
            emit=ctx.events.emit,
            on_task_id=named,
            ignore=_Ignored(state, run),
            started=run.t0,
        )
    except (AuthError, InsufficientCreditsError, BlockedClientError) as exc:
        await state.record(state.attempt(run.model, "error", str(exc), run=run))
        ctx.halt(exc)
        raise


def watch_deadline(state: JobState, run: TaskRun) -> float:
    """The instant (monotonic) after which the task is given up: its create + the watch limit."""
    return run.t0 + state.ctx.watch_limit * state.ctx.latency_scale


async def follow(
    state: JobState, run: TaskRun, *, may_hedge: Callable[[], bool]
) -> TaskStatus | Hedged | None:
    """Follow ``run`` to KIE's final state: the status, :class:`Hedged` when it passed its
    deadline and the job may go on without it, or ``None`` when it was given up at the watch
    limit."""
    ctx = state.ctx
    deadline = min(
        time.monotonic() + ctx.completion.task_timeout(run.card), state.budget.deadline_at
    )
    try:
        return await _wait(state, run, deadline)
    except TaskTimeoutError as exc:
        if run.task_id is None:
            await _lost(state, run)
        late = str(exc)
    if state.policy.on_timeout == "escalate" and may_hedge():
        return Hedged(f"{late}; the job moves on and the task stays watched")
    return await follow_to_end(state, run)


async def follow_to_end(state: JobState, run: TaskRun) -> TaskStatus | None:
    """Follow ``run`` until KIE's final state or the watch limit (then ``None``)."""
    try:
        return await _wait(state, run, watch_deadline(state, run))
    except TaskTimeoutError:
        if run.task_id is None:
            await _lost(state, run)
        return None


async def _lost(state: JobState, run: TaskRun) -> None:
    """A create whose answer was lost and that no callback named: stop, never resend."""
    await state.stop_ambiguous(
        run,
        "create answer lost and no callback named the task",
        f"the create for {run.model} may have reached KIE, but no callback for job "
        f"{state.job_key!r} arrived in time; it is not resubmitted",
    )


def failure_error(provider: Provider, status: TaskStatus) -> KieRouterError:
    code_text = status.fail_code or ""
    code = int(code_text) if code_text.isdigit() else 501
    message = status.fail_message or f"task ended in {status.raw_state or 'fail'}"
    error: KieRouterError = error_for_code(code, message, task_id=status.task_id)
    if not isinstance(error, ContentPolicyError) and _CONTENT_WORDS.search(message):
        error = ContentPolicyError(message, code=code, task_id=status.task_id)
    return map_provider_error(provider, error)


async def reconcile(
    ctx: RunContext,
    job_key: str,
    *,
    model: str,
    timeout: float,  # noqa: ASYNC109 - how long to wait for a callback
) -> TaskStatus | None:
    """The task of a create whose answer was lost, learnt from its callback (which carries
    ``job_key``) and confirmed by one status read; ``None`` when no callback came in time. A
    callback naming another job's task is ignored."""
    if ctx.receiver is None:
        raise ConfigurationError("reconcile needs a webhook (callbacks carry the job key)")
    waiter = ctx.receiver.expect(job_key)
    try:
        status = await ctx.completion.wait(
            job_key=job_key,
            card=ctx.registry.card(model),
            provider=ctx.registry.provider(model),
            task_id=None,
            deadline=time.monotonic() + timeout,
            waiter=waiter,
            emit=ctx.events.emit,
            ignore=ctx.owners.foreign_to(job_key),
        )
    except TaskTimeoutError:
        return None
    finally:
        ctx.receiver.forget(job_key)
    ctx.owners.add(status.task_id, job_key)
    ctx.events.emit("reconciled", job_key, model=model, task_id=status.task_id)
    return status
