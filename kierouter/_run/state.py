"""One job's state while it runs, shared by its stages. Strictly private.

:class:`JobState` holds what the stages read and write (the request, the plan, the job's budget,
its attempt trail, its journal) and the small helpers they share: events, journal calls,
recording an attempt. :class:`TaskRun` is one task of the job, from its create to its
settlement. The signals :class:`RetrySame` and :class:`NextStep` tell the job module what to do
after a step ended without serving the job.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from kierouter._budget import Hold, JobBudget
from kierouter._errors import AmbiguousSubmissionError, BudgetExhaustedError
from kierouter._models import Attempt, ImageRequest, Outcome

from .context import Journal, RunContext, maybe_await

if TYPE_CHECKING:
    from kierouter._models import ImageFile, ModelCard
    from kierouter.judging import Judge
    from kierouter.policy import Plan, Policy
    from kierouter.provider import PreparedCall, Provider
    from kierouter.webhooks import CallbackWaiter

__all__ = ["JobState", "NextStep", "RetrySame", "TaskRun"]


class NextStep(Exception):
    """This step is over without an accepted image; the job goes on to the next one."""


class RetrySame(Exception):
    """A create failed transiently (KIE made no task): retry the same model after a backoff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class TaskRun:
    """One task of a job: what was prepared and held for it, and what KIE said so far."""

    card: ModelCard
    provider: Provider
    prepared: PreparedCall
    #: the request as the plugin sent it (its adaptations applied: snapped ratio, resolution)
    sent: ImageRequest
    #: the card's price for the request
    cost: float
    rung: int = 0
    attempt_no: int = 0
    task_id: str | None = None
    #: credits held for the task in the job's budget and in the router's spend limit
    held: float = 0.0
    hold: Hold | None = None
    #: the account balance before the create and the probe epoch its end must find
    balance_before: float | None = None
    probe_epoch: int | None = None
    #: this router's process made the create (False: resumed from a journal)
    created_here: bool = True
    started_at: float = field(default_factory=time.time)
    t0: float = field(default_factory=time.monotonic)
    #: the create's answer was lost and a callback named the task
    named_by_callback: bool = False

    @property
    def model(self) -> str:
        """The model id."""
        return self.card.id


class JobState:
    """Everything one job's stages share. Strictly private; built by :class:`~._run.job.Job`."""

    def __init__(
        self,
        ctx: RunContext,
        *,
        request: ImageRequest,
        policy: Policy,
        plan: Plan,
        job_key: str,
        out_dir: Path | None,
        judge: Judge | None,
        journal: Journal | None,
        prior: Sequence[Attempt] = (),
        inputs: Callable[[ImageRequest], Awaitable[ImageRequest]] | None = None,
    ) -> None:
        self.ctx = ctx
        #: Uploads the request's local input images (``Uploader.resolve``) before its first
        #: create; ``None`` once done, or when every input is a URL already.
        self.inputs = inputs
        self.request = request
        self.policy = policy
        self.plan = plan
        self.job_key = job_key
        self.out_dir = out_dir
        self.judge = judge
        self.journal = journal
        self.attempts: list[Attempt] = list(prior)
        sent = sum(1 for a in prior if a.outcome != "skipped")
        spent = sum(a.credits for a in prior)
        self.budget = JobBudget(policy.budget, attempts_used=sent, credits_spent=spent)
        self.waiter: CallbackWaiter | None = None
        self.credit_skips = 0
        self.started = time.monotonic()

    def __repr__(self) -> str:
        return f"<JobState {self.job_key} attempts={len(self.attempts)}>"

    # -- events and journal --------------------------------------------------------------------

    def emit(self, kind: str, **kw: Any) -> None:
        """Send an event about this job to every sink."""
        self.ctx.events.emit(kind, self.job_key, **kw)

    def wants(self, kind: str) -> bool:
        """Whether an event of ``kind`` would reach a sink (build costly details only then)."""
        return self.ctx.events.wants(kind)

    async def journal_call(self, method: str, *args: Any) -> None:
        """Call a journal method for this job (awaited when it is async), if there is one."""
        if self.journal is not None:
            await maybe_await(getattr(self.journal, method)(self.job_key, *args))

    # -- attempts ------------------------------------------------------------------------------

    def attempt(
        self,
        model: str,
        outcome: Outcome,
        reason: str = "",
        *,
        run: TaskRun | None = None,
        credits: float = 0.0,
        credits_source: Any = "",
        urls: tuple[str, ...] = (),
        files: tuple[ImageFile, ...] = (),
    ) -> Attempt:
        """Build (not record) the attempt for ``run`` (or a model skipped before a run)."""
        prepared = run.prepared if run is not None else None
        return Attempt(
            model=model,
            outcome=outcome,
            reason=reason,
            task_id=run.task_id if run is not None else None,
            credits=credits,
            seed=prepared.seed if prepared is not None else None,
            seed_ignored=prepared.seed_ignored if prepared is not None else False,
            adaptations=prepared.adaptations if prepared is not None else (),
            started_at=run.started_at if run is not None else time.time(),
            elapsed=time.monotonic() - run.t0 if run is not None else 0.0,
            urls=urls,
            files=files,
            credits_source=credits_source,
        )

    async def record(self, attempt: Attempt) -> Attempt:
        """Add an attempt that did not serve the job to the trail and the journal."""
        self.replace(attempt)
        if self.journal is not None:
            await self.journal_call("record_attempt", attempt)
        return attempt

    def replace(self, attempt: Attempt) -> None:
        """Put ``attempt`` in the trail, in place of an earlier one naming the same task."""
        if attempt.task_id:
            for n, earlier in enumerate(self.attempts):
                if earlier.task_id == attempt.task_id:
                    self.attempts[n] = attempt
                    return
        self.attempts.append(attempt)

    def find(self, task_id: str) -> Attempt | None:
        """The attempt that names ``task_id``."""
        return next((a for a in self.attempts if a.task_id == task_id), None)

    async def stop_ambiguous(self, run: TaskRun, reason: str, message: str) -> NoReturn:
        """Record a create that may have reached KIE and that nothing named, and stop the job:
        it is never resent (a callback or a status read may still name it later)."""
        await self.record(self.attempt(run.model, "ambiguous", reason, run=run))
        raise AmbiguousSubmissionError(
            message, model=run.model, job_key=self.job_key, attempts=self.attempts
        ) from None

    async def skip(self, model: str, reason: str, run: TaskRun | None = None) -> None:
        """Record a model that was not sent, and say why."""
        await self.record(self.attempt(model, "skipped", reason, run=run))
        self.emit("skipped", model=model, detail=reason)

    # -- limits --------------------------------------------------------------------------------

    def check_halt(self) -> None:
        """Raise the error that halted the router (auth, credits) since this job started."""
        halted = self.ctx.halted
        if halted is not None and self.ctx.halted_at >= self.started:
            raise halted

    def check_budget(self) -> None:
        """Raise :class:`BudgetExhaustedError` when the job may not create again."""
        reason = self.budget.exhausted()
        if reason is not None:
            raise BudgetExhaustedError(reason, self.attempts)

    def tried(self) -> set[str]:
        """Task ids of this job's attempts so far (a late callback for one is not the task a
        newer step waits for)."""
        return {a.task_id for a in self.attempts if a.task_id}
