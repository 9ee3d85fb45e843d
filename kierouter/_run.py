"""One job's run: plan → prepare → create → wait → download → judge → finish or escalate.

Every create of the job draws on one :class:`~kierouter._budget.JobBudget` (attempts, credits,
deadline), so retries and escalations together can never exceed it. Failure classes map to
actions:

=============================================  ===============================================
what happened                                  what the run does
=============================================  ===============================================
the plugin refuses the request (ValidationError) skip the model before anything is sent
model in cooldown / step over ``max_credits``  skip the model
transient create failure (455, 5xx, no          retry the same model with backoff, at most
connection after the client's own retries)      ``PollConfig.create_retries`` times
429 after the client waited it out              move to the next rung
task failed, timed out, or judged bad          move to the next rung (with its own seed)
content policy                                 ``policy.on_content_policy``: stop or escalate
401 / 433 / 402                                stop every job of the router; the error propagates
create answer lost (ambiguous)                 never resubmitted: wait for the callback that
                                               carries the job key, else raise
=============================================  ===============================================

A model that keeps failing (``Cooldown``) is skipped by every job of the router for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from ._budget import JobBudget
from ._completion import Completion, map_provider_error, plugin_error
from ._errors import (
    AmbiguousSubmissionError,
    AuthError,
    BudgetExhaustedError,
    ContentPolicyError,
    DownloadError,
    EndpointGoneError,
    FeatureDisabledError,
    InsufficientCreditsError,
    JobFailedError,
    KieRouterError,
    MaintenanceError,
    MalformedResponseError,
    ServerError,
    TaskTimeoutError,
    TransportError,
    ValidationError,
    error_for_code,
)
from ._models import Attempt, ImageFile, ImageRequest, Outcome, Result, TaskStatus
from ._seeds import rung_seed
from .judging import JudgeContext, Verdict

if TYPE_CHECKING:
    from ._cooldown import Cooldown
    from ._downloads import Downloader
    from ._events import EventBus
    from ._models import ModelCard
    from ._plugins import Registry
    from ._transport import KieClient
    from .judging import Judge
    from .policy import Plan, PlanStep, Policy
    from .provider import PreparedCall, Provider
    from .webhooks import CallbackWaiter, WebhookReceiver

__all__ = ["Job", "Journal", "RunContext", "call_judge"]

_CONTENT_WORDS = re.compile(
    r"content polic|flagged|sensitive|nsfw|violat|prohibited|unsafe content|moderation", re.I
)


class Journal(Protocol):
    """What the router tells a journal (see :mod:`kierouter.journal`). Methods may be async.

    ``record_intent`` is called (and awaited when it returns an awaitable) BEFORE each create
    POST and must be durable; ``record_submitted`` right after KIE returned the task id (or, for
    an ambiguous create, once a callback named it).
    """

    def record_intent(self, job_key: str, attempt_no: int, model: str, body: Any) -> Any:
        """A create is about to be sent."""

    def record_submitted(self, job_key: str, attempt_no: int, model: str, task_id: str) -> Any:
        """KIE returned ``task_id`` for the create."""

    def record_ambiguous(self, job_key: str, attempt_no: int, model: str, error: str) -> Any:
        """The create was sent but its answer was lost."""

    def record_attempt(self, job_key: str, attempt: Attempt) -> Any:
        """An attempt ended."""

    def record_result(self, job_key: str, result: Result) -> Any:
        """The job was served."""

    # Optional: ``record_failed(job_key, error)`` is called, when the journal has it, once the
    # job has given up for good (every model failed, or its own budget ran out). It is not
    # called for an ambiguous create (the job is unknown, not failed) nor when the run is
    # halted from outside (auth, credits, a batch budget), which a resume may continue.


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


async def call_judge(judge: Judge, context: JudgeContext) -> Verdict:
    """Call a judge (sync or async) and check that it returned a :class:`Verdict`."""
    verdict = await _maybe_await(judge(context))
    if isinstance(verdict, bool):
        return Verdict(verdict, "" if verdict else "rejected by judge")
    if not isinstance(verdict, Verdict):
        raise TypeError(f"judge returned {type(verdict).__name__}, not a Verdict")
    return verdict


@dataclass(eq=False)
class RunContext:
    """What every job of one router shares. Strictly private."""

    registry: Registry
    client: KieClient
    completion: Completion
    downloader: Downloader
    cooldown: Cooldown
    events: EventBus
    receiver: WebhookReceiver | None = None
    public_url: str | None = None
    stats: Any = None
    latency_scale: float = 1.0
    create_retries: int = 2
    retry_backoff: float = 2.0
    #: Set when KIE refused the key or the account ran dry: every job running at that moment
    #: stops before its next create. Jobs started later try again (the user may have topped up).
    halted: KieRouterError | None = None
    halted_at: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def halt(self, exc: KieRouterError) -> None:
        """Stop every running job: KIE refused the key or the account."""
        self.halted = exc
        self.halted_at = time.monotonic()

    def observe(self, model: str, ok: bool, intent: Sequence[str] = ()) -> None:
        """Feed an outcome (per model and intent) to the policy engine's learned success rates."""
        if self.stats is None:
            return
        record = getattr(self.stats, "record", None)
        if callable(record):
            try:
                if intent:
                    record(model, ok, intent)
                else:
                    record(model, ok)
            except Exception:  # learning must never break a job
                pass


class _Step(Exception):
    """Internal signal: this step is over without an accepted image; go on to the next."""


@dataclass
class Existing:
    """A task created earlier (by a previous process): resume it instead of creating one."""

    model: str
    task_id: str | None
    attempt_no: int = 1


class Job:
    """The run of one job. Strictly private; built by :class:`~kierouter.Router`."""

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
        #: Uploads the request's local input images (Uploader.resolve), before its first create.
        self.inputs = inputs
        self.request = request
        self.policy = policy
        self.plan = plan
        self.job_key = job_key
        self.out_dir = out_dir
        self.judge = judge
        self.journal = journal
        self.attempts: list[Attempt] = list(prior)
        sent = sum(1 for a in prior if a.outcome != "skipped") if prior else 0
        spent = sum(a.credits for a in prior) if prior else 0
        self.budget = JobBudget(policy.budget, attempts_used=sent, credits_spent=spent)
        self.waiter: CallbackWaiter | None = None
        self._credit_skips = 0
        self._started = time.monotonic()

    def __repr__(self) -> str:
        return f"<Job {self.job_key} attempts={len(self.attempts)}>"

    # -- helpers -------------------------------------------------------------------------------

    def emit(self, kind: str, **kw: Any) -> None:
        self.ctx.events.emit(kind, self.job_key, **kw)

    async def _journal(self, method: str, *args: Any) -> None:
        # callers check ``self.journal is not None`` first: no coroutine per step without one
        if self.journal is not None:
            await _maybe_await(getattr(self.journal, method)(self.job_key, *args))

    async def _record(
        self,
        model: str,
        outcome: Outcome,
        reason: str = "",
        *,
        task_id: str | None = None,
        credits: float = 0.0,
        prepared: PreparedCall | None = None,
        started_at: float = 0.0,
        t0: float | None = None,
    ) -> Attempt:
        attempt = Attempt(
            model=model,
            outcome=outcome,
            reason=reason,
            task_id=task_id,
            credits=credits,
            seed=prepared.seed if prepared is not None else None,
            seed_ignored=prepared.seed_ignored if prepared is not None else False,
            adaptations=prepared.adaptations if prepared is not None else (),
            started_at=started_at or time.time(),
            elapsed=time.monotonic() - t0 if t0 is not None else 0.0,
        )
        self.attempts.append(attempt)
        if self.journal is not None:
            await self._journal("record_attempt", attempt)
        return attempt

    def _check_halt(self) -> None:
        halted = self.ctx.halted
        if halted is not None and self.ctx.halted_at >= self._started:
            raise halted

    def _check_budget(self) -> None:
        reason = self.budget.exhausted()
        if reason is not None:
            raise BudgetExhaustedError(reason, self.attempts)

    # -- the run -------------------------------------------------------------------------------

    async def run(self, *, existing: Existing | None = None, skip: Sequence[str] = ()) -> Result:
        """Run the plan (after resuming ``existing``); return the result or raise."""
        receiver = self.ctx.receiver
        if receiver is not None and self.ctx.public_url:
            self.waiter = receiver.expect(self.job_key)
        try:
            return await self._run(existing, set(skip))
        except BaseException as exc:
            detail = f"{type(exc).__name__}: {exc}" if isinstance(exc, Exception) else "cancelled"
            self.emit("finished", detail=detail, data={"ok": False})
            record_failed = getattr(self.journal, "record_failed", None)
            if record_failed is not None and isinstance(exc, JobFailedError | BudgetExhaustedError):
                await _maybe_await(record_failed(self.job_key, str(exc)))
            raise
        finally:
            if receiver is not None and self.waiter is not None:
                receiver.forget(self.job_key)

    async def _run(self, existing: Existing | None, skip: set[str]) -> Result:
        steps = self.plan.steps
        if self.ctx.events.wants("planned"):
            self.emit(
                "planned",
                detail=" → ".join(self.plan.models) or "no eligible model",
                data={"policy": self.plan.policy, "expected_credits": self.plan.expected_credits},
            )
        if existing is not None:
            skip.add(existing.model)
            rung = next((i for i, s in enumerate(steps) if s.model == existing.model), 0)
            card = self.ctx.registry.card(existing.model)
            result = await self._resume_existing(rung, card, existing)
            if result is not None:
                return result
        ended: Attempt | None = None  # the last attempt that ran and did not serve the job
        if self.attempts and self.attempts[-1].outcome != "skipped":
            ended = self.attempts[-1]
        for rung, step in enumerate(steps):
            if step.model in skip:
                continue
            if ended is not None:
                detail = f"{ended.model} {ended.outcome}" + (
                    f": {ended.reason}" if ended.reason else ""
                )
                self.emit("escalated", model=step.model, detail=detail)
                ended = None
            result = await self._step(rung, step)
            if result is not None:
                return result
            if self.attempts and self.attempts[-1].outcome != "skipped":
                ended = self.attempts[-1]
        if not steps:
            dropped = "; ".join(f"{d.model}: {d.reason}" for d in self.plan.dropped)
            raise JobFailedError(
                f"no model can run this request under policy {self.plan.policy!r}"
                + (f" ({dropped})" if dropped else ""),
                self.attempts,
            )
        if self._credit_skips and not any(a.outcome == "success" for a in self.attempts):
            limit = self.policy.budget.max_credits
            raise BudgetExhaustedError(
                f"max_credits ({limit:g}) leaves no room for the remaining models", self.attempts
            )
        raise JobFailedError("every model in the plan failed", self.attempts)

    async def _step(self, rung: int, step: PlanStep) -> Result | None:
        self._check_halt()
        self._check_budget()
        registry = self.ctx.registry
        card = registry.card(step.model)
        provider = registry.provider(step.model)
        blocked = self.ctx.cooldown.blocked_for(card.id)
        if blocked > 0:
            reason = f"cooling down after repeated failures ({blocked:.0f} s left)"
            await self._record(card.id, "skipped", reason)
            self.emit("skipped", model=card.id, detail=reason)
            return None
        seed = rung_seed(self.request.seed, rung)
        callback_url = None
        if self.waiter is not None and self.ctx.receiver is not None and self.ctx.public_url:
            callback_url = self.ctx.receiver.callback_url(self.ctx.public_url, self.job_key)
        if self.inputs is not None:  # local files -> KIE URLs, once, before the first create
            self.request, self.inputs = await self.inputs(self.request), None
        try:
            prepared = provider.prepare(card, self.request, seed=seed, callback_url=callback_url)
        except ValidationError as exc:
            await self._record(card.id, "skipped", str(exc))
            self.emit("skipped", model=card.id, detail=str(exc))
            return None
        except Exception as exc:  # a plugin bug: this model cannot run it; nothing was sent
            error = plugin_error(card, "prepare", exc)
            await self._record(card.id, "error", str(error))
            self.emit("failed", model=card.id, detail=str(error))
            return None
        cost = card.credits_for(self.request)
        if not self.budget.fits(cost):
            left = (self.policy.budget.max_credits or 0.0) - self.budget.credits_spent
            reason = f"costs {cost:g} credits; {left:g} left under max_credits"
            self._credit_skips += 1
            await self._record(card.id, "skipped", reason, prepared=prepared)
            self.emit("skipped", model=card.id, detail=reason)
            return None
        retries = 0
        while True:
            try:
                return await self._attempt(card, provider, prepared, cost)
            except _Retry as retry:
                retries += 1
                if retries > self.ctx.create_retries:
                    return None
                await self._backoff(card.id, retries, retry.reason)
            except _Step:
                return None

    async def _backoff(self, model: str, retries: int, reason: str) -> None:
        self._check_budget()
        delay = self.ctx.retry_backoff * 2 ** (retries - 1) * self.ctx.latency_scale
        delay *= 1 + self.ctx.rng.uniform(-0.2, 0.2)
        delay = min(delay, max(0.0, self.budget.remaining_time()))
        self.emit("retried", model=model, detail=reason, data={"wait": round(delay, 3)})
        await asyncio.sleep(delay)

    async def _attempt(
        self, card: ModelCard, provider: Provider, prepared: PreparedCall, cost: float
    ) -> Result | None:
        self._check_halt()
        self._check_budget()
        self.budget.take_attempt()
        attempt_no = self.budget.attempts_used
        started_at, t0 = time.time(), time.monotonic()
        if self.journal is not None:
            await self._journal("record_intent", attempt_no, card.id, prepared.body)
        task_id: str | None
        try:
            data = await self.ctx.client.create(prepared.path, prepared.body, job_key=self.job_key)
            task_id = _parse_create(card, provider, data)
        except (AmbiguousSubmissionError, MalformedResponseError) as exc:
            await self._ambiguous(card, prepared, attempt_no, exc, started_at, t0)
            task_id = None  # only the callback carrying our job key can name the task now
        except KieRouterError as exc:
            await self._create_failed(card, provider, prepared, exc, started_at, t0)
        else:
            if self.journal is not None:
                await self._journal("record_submitted", attempt_no, card.id, task_id)
            if self.ctx.events.wants("created"):
                self.emit("created", model=card.id, task_id=task_id, data={"attempt": attempt_no})
        return await self._finish_task(
            card, provider, prepared, cost, task_id, attempt_no, started_at, t0
        )

    async def _ambiguous(
        self,
        card: ModelCard,
        prepared: PreparedCall,
        attempt_no: int,
        exc: KieRouterError,
        started_at: float,
        t0: float,
    ) -> None:
        await self._journal("record_ambiguous", attempt_no, card.id, str(exc))
        self.emit("failed", model=card.id, detail=f"ambiguous create: {exc}")
        if self.waiter is None:
            lost = "unreadable" if isinstance(exc, MalformedResponseError) else "lost"
            await self._record(
                card.id,
                "ambiguous",
                f"create sent but its answer was {lost} ({exc}); not resubmitted",
                prepared=prepared,
                started_at=started_at,
                t0=t0,
            )
            raise AmbiguousSubmissionError(
                f"the create for {card.id} may have reached KIE but its answer was lost; it is "
                f"not resubmitted. Reconcile job {self.job_key!r} by its callback or a status read",
                model=card.id,
                job_key=self.job_key,
                attempts=self.attempts,
            ) from None

    async def _create_failed(
        self,
        card: ModelCard,
        provider: Provider,
        prepared: PreparedCall,
        exc: KieRouterError,
        started_at: float,
        t0: float,
    ) -> NoReturn:
        """Record a refused create and raise what the run does next."""
        exc = map_provider_error(provider, exc)
        reason = str(exc)

        async def record(outcome: Outcome = "error") -> None:
            await self._record(
                card.id, outcome, reason, prepared=prepared, started_at=started_at, t0=t0
            )

        if isinstance(exc, AuthError | InsufficientCreditsError):
            await record()
            self.ctx.halt(exc)
            self.emit("failed", model=card.id, detail=reason)
            raise exc
        if isinstance(exc, ValidationError):
            await record("skipped")
            self.emit("skipped", model=card.id, detail=reason)
            raise _Step
        await record()
        self.emit("failed", model=card.id, detail=reason)
        if isinstance(exc, ContentPolicyError):
            self._content_policy(card, exc)
            raise _Step
        transient = isinstance(exc, ServerError | MaintenanceError) or (
            isinstance(exc, TransportError) and not exc.sent
        )
        if transient:
            if self.ctx.cooldown.failure(card.id):
                self.emit("failed", model=card.id, detail="model put in cooldown")
            raise _Retry(reason)
        if isinstance(exc, FeatureDisabledError | EndpointGoneError):
            self.ctx.cooldown.failure(card.id)  # it will not come back within this run
        # A 429 reaching here was already waited out by the client (Retry-After, several
        # tries): move to the next rung rather than pile onto the same window.
        raise _Step

    def _content_policy(self, card: ModelCard, exc: KieRouterError) -> None:
        if self.policy.on_content_policy == "stop":
            raise JobFailedError(
                f"{card.id} refused the request on content policy ({exc}); the policy says stop",
                self.attempts,
            ) from None

    async def _finish_task(
        self,
        card: ModelCard,
        provider: Provider,
        prepared: PreparedCall,
        cost: float,
        task_id: str | None,
        attempt_no: int,
        started_at: float,
        t0: float,
    ) -> Result | None:
        ambiguous = task_id is None

        async def record(outcome: Outcome, reason: str, credits: float = 0.0) -> None:
            await self._record(
                card.id,
                outcome,
                reason,
                task_id=task_id,
                credits=credits,
                prepared=prepared,
                started_at=started_at,
                t0=t0,
            )

        deadline = min(
            time.monotonic() + self.ctx.completion.task_timeout(card), self.budget.deadline_at
        )
        try:
            status = await self.ctx.completion.wait(
                job_key=self.job_key,
                card=card,
                provider=provider,
                task_id=task_id,
                deadline=deadline,
                waiter=self.waiter,
                emit=self.ctx.events.emit,
                ignore={a.task_id for a in self.attempts if a.task_id},
            )
        except TaskTimeoutError as exc:
            if ambiguous:
                await record("ambiguous", "create answer lost and no callback named the task")
                raise AmbiguousSubmissionError(
                    f"the create for {card.id} may have reached KIE, but no callback for job "
                    f"{self.job_key!r} arrived in time; it is not resubmitted",
                    model=card.id,
                    job_key=self.job_key,
                    attempts=self.attempts,
                ) from None
            await record("timeout", str(exc))
            self.ctx.cooldown.failure(card.id)
            self.ctx.observe(card.id, False, self.plan.intent)
            self.emit("failed", model=card.id, task_id=task_id, detail=str(exc))
            raise _Step from None
        except (AuthError, InsufficientCreditsError) as exc:
            await record("error", str(exc))
            self.ctx.halt(exc)
            raise
        except KieRouterError as exc:
            await record("error", f"status read failed: {exc}")
            self.emit("failed", model=card.id, task_id=task_id, detail=str(exc))
            raise _Step from None
        if ambiguous:
            task_id = status.task_id
            await self._journal("record_submitted", attempt_no, card.id, task_id)
            self.emit("reconciled", model=card.id, task_id=task_id, detail="named by its callback")
        if status.state == "failed":
            error = self._failure_error(provider, status)
            reason = "task failed" + (f" ({status.fail_code})" if status.fail_code else "")
            reason += f": {status.fail_message or status.raw_state or 'no reason given'}"
            await record("failed", reason)
            self.ctx.cooldown.failure(card.id)
            self.ctx.observe(card.id, False, self.plan.intent)
            self.emit("failed", model=card.id, task_id=task_id, detail=reason)
            if isinstance(error, ContentPolicyError):
                self._content_policy(card, error)
            raise _Step
        note = "create answer lost; the task was named by its callback" if ambiguous else ""
        return await self._succeeded(card, provider, status, cost, record, note)

    @staticmethod
    def _failure_error(provider: Provider, status: TaskStatus) -> KieRouterError:
        code_text = status.fail_code or ""
        code = int(code_text) if code_text.isdigit() else 501
        message = status.fail_message or f"task ended in {status.raw_state or 'fail'}"
        error: KieRouterError = error_for_code(code, message, task_id=status.task_id)
        if not isinstance(error, ContentPolicyError) and _CONTENT_WORDS.search(message):
            error = ContentPolicyError(message, code=code, task_id=status.task_id)
        return map_provider_error(provider, error)

    async def _succeeded(
        self,
        card: ModelCard,
        provider: Provider,
        status: TaskStatus,
        cost: float,
        record: Any,
        note: str = "",
    ) -> Result | None:
        credits = float(status.credits) if status.credits else cost
        self.budget.spend(credits)
        self.ctx.cooldown.success(card.id)
        scratch: Path | None = None
        files: tuple[ImageFile, ...] = ()
        target = self.out_dir
        if target is None and self.judge is not None:
            scratch = Path(tempfile.mkdtemp(prefix="kierouter-"))
            target = scratch
        try:
            if target is not None:
                try:
                    files = await self._download(status, provider, target)
                except DownloadError as exc:
                    await record("error", f"download failed: {exc}", credits)
                    self.emit("failed", model=card.id, task_id=status.task_id, detail=str(exc))
                    raise _Step from None
            if self.judge is not None:
                verdict = await call_judge(
                    self.judge,
                    JudgeContext(request=self.request, model=card.id, status=status, files=files),
                )
                detail = "accepted" if verdict.accepted else f"rejected: {verdict.reason}"
                self.emit("judged", model=card.id, task_id=status.task_id, detail=detail)
                if not verdict.accepted:
                    await record("rejected", verdict.reason or "rejected by judge", credits)
                    self.ctx.observe(card.id, False, self.plan.intent)
                    for file in files:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(file.path)
                    raise _Step
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
                files = ()
        await record("success", note, credits)
        self.ctx.observe(card.id, True, self.plan.intent)
        result = Result(
            served_model=card.id,
            attempts=tuple(self.attempts),
            credits=sum(a.credits for a in self.attempts),
            urls=status.urls,
            files=files,
            seed=self.request.seed,
            job_key=self.job_key,
        )
        if self.journal is not None:
            await self._journal("record_result", result)
        if self.ctx.events.wants("finished"):
            self.emit(
                "finished",
                model=card.id,
                task_id=status.task_id,
                detail=f"served by {card.id} for {result.credits:g} credits",
                data={"ok": True, "credits": result.credits},
            )
        return result

    async def _download(
        self, status: TaskStatus, provider: Provider, target: Path
    ) -> tuple[ImageFile, ...]:
        files = []
        for index, url in enumerate(status.urls, start=1):
            file = await self.ctx.downloader.fetch(
                url,
                target,
                f"{self.job_key}-{index}",
                task_id=status.task_id,
                provider=provider,
            )
            files.append(file)
            self.emit("downloaded", task_id=status.task_id, detail=file.path)
        return tuple(files)

    async def _resume_existing(
        self, rung: int, card: ModelCard, existing: Existing
    ) -> Result | None:
        """Finish a task created by an earlier run (or reconcile a lost create)."""
        provider = self.ctx.registry.provider(card.id)
        seed = rung_seed(self.request.seed, rung)
        try:
            prepared = provider.prepare(card, self.request, seed=seed)
        except ValidationError:
            prepared = None
        from .provider import PreparedCall

        if prepared is None:
            prepared = PreparedCall(path="", body={})
        try:
            return await self._finish_task(
                card,
                provider,
                prepared,
                card.credits_for(self.request),
                existing.task_id,
                existing.attempt_no,
                time.time(),
                time.monotonic(),
            )
        except _Step:
            return None


def _parse_create(card: ModelCard, provider: Provider, data: Any) -> str:
    """The task id of a create; a plugin bug reading it makes the create ambiguous."""
    try:
        return provider.parse_create(data)
    except KieRouterError:
        raise
    except Exception as exc:
        error = plugin_error(card, "parse_create", exc)
        raise MalformedResponseError(str(error), sent=True) from exc


class _Retry(Exception):
    """Internal signal: retry the same model after a backoff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
