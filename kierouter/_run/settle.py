"""Stage 6, settle: what KIE charged for a task, into the budgets, the journal and the result.

The card's price was held before the create (:mod:`.create`). When the task ends, the hold is
settled to what KIE charged, learnt in this order:

1. the task's own reported cost (Market's ``creditsConsumed``), when the status carries one;
2. the account balance before the task and after it, when no other task of this router was
   created, running or ended in between (the probe, see :class:`~.context.BalanceProbe`; for
   families that report no cost; the balance is read after a task, never before a create);
3. the card's price.

A failed task costs what KIE reports for it, else nothing. When KIE charged more than the
card, an ``overcharged`` event is sent (the log sink writes it as a warning), and later holds
for the model use the charged price. The job's budget, the router's spend limit, the attempt's
``credits`` (and so ``Result.credits``, the journal, ``batch status`` and the manifest) all use
the settled amount.

An attempt that did not serve the job is recorded here (:func:`end`); the serving attempt and
the result are recorded together (:func:`serve`), in one journal transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kierouter._errors import KieRouterError, PaidUndeliveredError
from kierouter._models import Result

if TYPE_CHECKING:
    from kierouter._models import Attempt, ImageFile, Outcome, TaskStatus
    from kierouter._results import CreditsSource

    from .deliver import Delivered
    from .state import JobState, TaskRun

__all__ = ["Charge", "charge", "end", "release", "serve"]


@dataclass(frozen=True)
class Charge:
    """What KIE charged for one task, and how that was learnt."""

    credits: float
    source: CreditsSource


async def charge(state: JobState, run: TaskRun, status: TaskStatus) -> Charge:
    """Settle ``run``'s holds to what KIE charged for its final ``status``; see the module."""
    ctx = state.ctx
    ctx.probe.ended()
    finished = status.state == "success"
    if status.credits is not None:
        ctx.probe.reporting.add(run.model)
        result = Charge(max(0.0, status.credits), "task")
    elif not finished:
        result = Charge(0.0, "")
    else:
        result = await _balance_delta(state, run) or Charge(run.cost, "card")
    _settle(state, run, result.credits, learn=finished)
    if state.wants("settled"):
        state.emit(
            "settled",
            model=run.model,
            task_id=run.task_id,
            detail=f"{result.credits:g} credits ({result.source or 'nothing charged'})",
            data={"credits": result.credits, "card": run.cost, "source": result.source},
        )
    if finished and result.credits > run.cost + 1e-9:
        message = (
            f"KIE charged {result.credits:g} credits for {run.model} task {run.task_id}, its "
            f"card says {run.cost:g}; later holds for it use the charged price (update [prices] "
            "in your configuration)"
        )
        state.emit(  # logged as a warning by the built-in log sink
            "overcharged", model=run.model, task_id=run.task_id, detail=message
        )
    return result


async def _balance_delta(state: JobState, run: TaskRun) -> Charge | None:
    """The balance moved by this task alone (see :class:`~.context.BalanceProbe`), or None.
    With the router idle, the balance read now is also the next task's starting point."""
    probe = state.ctx.probe
    if not probe.idle():
        return None
    epoch = probe.epoch
    try:
        after = await state.ctx.client.credits()
    except KieRouterError:
        return None
    probe.read(after, epoch)
    before = run.balance_before
    if before is None or run.probe_epoch != epoch or probe.epoch != epoch or before < after:
        return None
    return Charge(round(before - after, 6), "balance")


def _settle(state: JobState, run: TaskRun, credits: float, *, learn: bool) -> None:
    state.budget.settle(run.held, credits)
    run.held = 0.0
    if run.hold is not None:
        state.ctx.spend.settle(run.hold, credits, learn=learn)


def release(state: JobState, run: TaskRun) -> None:
    """The task was given up without KIE reporting its end: nothing is known to be charged."""
    state.ctx.probe.ended()
    _settle(state, run, 0.0, learn=False)


async def end(
    state: JobState,
    run: TaskRun,
    outcome: Outcome,
    reason: str,
    charged: Charge | None = None,
    *,
    status: TaskStatus | None = None,
    files: tuple[ImageFile, ...] = (),
) -> Attempt:
    """Record an attempt that ended without serving the job (settled already by :func:`charge`
    or :func:`release`, or still held when ``hedged``)."""
    attempt = state.attempt(
        run.model,
        outcome,
        reason,
        run=run,
        credits=charged.credits if charged is not None else 0.0,
        credits_source=charged.source if charged is not None else "",
        urls=status.urls if status is not None else (),
        files=files,
    )
    return await state.record(attempt)


async def serve(
    state: JobState,
    run: TaskRun,
    status: TaskStatus,
    charged: Charge,
    delivered: Delivered | None,
) -> Result:
    """Record the serving attempt and the result together; raise
    :class:`~kierouter.PaidUndeliveredError` when its images could not be saved.

    ``Result.watching`` names the hedged tasks whose end is not in this result: still watched,
    or ended a moment ago and about to be recorded (as an extra, or a failure) after it."""
    undelivered = delivered is not None and not delivered.complete
    note = ""
    if run.named_by_callback:
        note = "create answer lost; the task was named by its callback"
    if undelivered:
        assert delivered is not None
        note = f"images not saved: {delivered.error}"
    attempt = state.attempt(
        run.model,
        "undelivered" if undelivered else "success",
        note,
        run=run,
        credits=charged.credits,
        credits_source=charged.source,
        urls=status.urls,
    )
    state.replace(attempt)
    result = Result(
        served_model=run.model,
        attempts=tuple(state.attempts),
        credits=sum(a.credits for a in state.attempts),
        urls=status.urls,
        files=delivered.files if delivered is not None else (),
        seed=state.request.seed,
        job_key=state.job_key,
        delivery="urls" if delivered is None else "undelivered" if undelivered else "downloaded",
        delivery_error=delivered.error if delivered is not None else "",
        watching=tuple(a.task_id for a in state.attempts if a.outcome == "hedged" and a.task_id),
    )
    if state.journal is not None:
        await state.journal_call("record_result", result)
    if undelivered:
        assert delivered is not None
        _undelivered(state, run, result, delivered)
    if state.wants("finished"):
        state.emit(
            "finished",
            model=run.model,
            task_id=status.task_id,
            detail=f"served by {run.model} for {result.credits:g} credits",
            data={"ok": True, "credits": result.credits, "delivery": result.delivery},
        )
    return result


def _undelivered(state: JobState, run: TaskRun, result: Result, delivered: Delivered) -> None:
    expired = " (KIE's links have expired)" if delivered.expired else ""
    state.emit(
        "undelivered",
        model=run.model,
        task_id=run.task_id,
        detail=delivered.error,
        data={"urls": list(result.urls), "credits": result.credits, "expired": delivered.expired},
    )
    raise PaidUndeliveredError(
        f"{run.model} made the image (task {run.task_id}, {result.credits:g} credits) but it "
        f"could not be saved{expired}: {delivered.error}. Nothing was regenerated; save it with "
        f"'kierouter fetch {run.task_id} --model {run.model}' while KIE's links last",
        result=result,
    )
