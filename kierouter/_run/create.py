"""Stage 2, create: prepare the call, hold its price, journal the intent, POST once, classify.

Nothing is sent for a model the plugin refuses (``skipped``), one in cooldown, or one whose
price does not fit the job's ``max_credits``. Before the POST the card's price is held in the
job's budget and in the router's spend limit (which may refuse with
:class:`~kierouter.BudgetReachedError`), and the intent is journaled. The answer is one of:

* a task id: journaled at once; the task is followed (:mod:`.follow`);
* lost or unreadable (the create may have reached KIE): ``ambiguous``; only a callback carrying
  the job key can name the task, and without a webhook the job stops with
  :class:`~kierouter.AmbiguousSubmissionError` (never resubmitted);
* refused (KIE made no task): the holds are released and the error decides: auth / credits /
  blocked client stop every job of the router; a request KIE refuses for this model skips it;
  content policy follows ``policy.on_content_policy``; 455, 5xx or no connection retry the same
  model (:class:`~.state.RetrySame`); anything else (a 429 already waited out, 505, a removed
  endpoint) moves to the next step (:class:`~.state.NextStep`).
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec

from kierouter._completion import map_provider_error, plugin_error
from kierouter._errors import (
    AmbiguousSubmissionError,
    AuthError,
    BlockedClientError,
    ConfigurationError,
    ContentPolicyError,
    EndpointGoneError,
    FeatureDisabledError,
    InsufficientCreditsError,
    JobFailedError,
    KieRouterError,
    MaintenanceError,
    MalformedResponseError,
    ServerError,
    TransportError,
    ValidationError,
)
from kierouter._models import ImageRequest
from kierouter._seeds import rung_seed

from .state import JobState, NextStep, RetrySame, TaskRun

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from kierouter._models import Adaptation, ModelCard
    from kierouter.policy import PlanStep
    from kierouter.provider import PreparedCall, Provider

    from .context import RunContext

__all__ = [
    "check_writable",
    "content_policy",
    "new_run",
    "open_task",
    "request_as_sent",
    "send",
]

#: errors after which no job of the router may create until the user acts
STOPPING = (AuthError, InsufficientCreditsError, BlockedClientError)


def request_as_sent(request: ImageRequest, adaptations: tuple[Adaptation, ...]) -> ImageRequest:
    """``request`` with the plugin's adaptations applied to the fields they name (the ratio it
    snapped to, the resolution it sent), so a judge checks what the model was asked for."""
    changes = {
        a.field: a.sent
        for a in adaptations
        if a.field in ImageRequest.__struct_fields__ and a.field not in ("prompt", "options")
    }
    if not changes:
        return request
    try:
        sent = msgspec.structs.replace(request, **changes)
        return msgspec.convert(msgspec.to_builtins(sent), ImageRequest)
    except (msgspec.ValidationError, TypeError):  # an adaptation that is not a request value
        return request


def new_run(
    state: JobState,
    card: ModelCard,
    provider: Provider,
    prepared: PreparedCall,
    rung: int,
    **known: Any,
) -> TaskRun:
    """A :class:`TaskRun` for ``prepared`` on ``card``: the request as sent, the card's price,
    and what is ``known`` already (a task created earlier: its id and attempt number)."""
    return TaskRun(
        card=card,
        provider=provider,
        prepared=prepared,
        sent=request_as_sent(state.request, prepared.adaptations),
        cost=card.credits_for(state.request),
        rung=rung,
        **known,
    )


async def upload_inputs(
    state: JobState, upload: Callable[[ImageRequest], Awaitable[ImageRequest]]
) -> None:
    """Swap the request's local files for their upload URLs (once per job), and say so."""
    local = state.request
    state.request, state.inputs = await upload(local), None
    before = (*local.images, local.mask)
    after = (*state.request.images, state.request.mask)
    sent = [old for old, new in zip(before, after, strict=True) if old != new and old is not None]
    if sent:
        names = ", ".join(_input_name(value) for value in sent)
        state.emit("uploaded", detail=f"uploaded {names}", data={"files": len(sent)})


def _input_name(value: str) -> str:
    # a path by its file name; bytes (a data: URI) by what they are, never their content
    return "image bytes" if value.startswith("data:") else os.path.basename(value) or value


async def open_task(state: JobState, rung: int, step: PlanStep) -> TaskRun | None:
    """Prepare the create for one step, or record why the model is skipped (``None``)."""
    ctx = state.ctx
    card = ctx.registry.card(step.model)
    provider = ctx.registry.provider(step.model)
    blocked = ctx.cooldown.blocked_for(card.id)
    if blocked > 0:
        await state.skip(card.id, f"cooling down after repeated failures ({blocked:.0f} s left)")
        return None
    callback_url = None
    if state.waiter is not None and ctx.receiver is not None and ctx.public_url:
        callback_url = ctx.receiver.callback_url(ctx.public_url, state.job_key)
    if state.inputs is not None:  # local files become KIE URLs once, before the first create
        await upload_inputs(state, state.inputs)
    seed = rung_seed(state.request.seed, rung)
    try:
        prepared = provider.prepare(card, state.request, seed=seed, callback_url=callback_url)
    except ValidationError as exc:
        await state.skip(card.id, str(exc))
        return None
    except Exception as exc:  # a plugin bug: this model cannot run it; nothing was sent
        error = plugin_error(card, "prepare", exc)
        await state.record(state.attempt(card.id, "error", str(error)))
        state.emit("failed", model=card.id, detail=str(error))
        return None
    run = new_run(state, card, provider, prepared, rung)
    price = ctx.spend.price(card.id, run.cost)
    if not state.budget.fits(price):
        state.credit_skips += 1
        reason = f"costs {price:g} credits; {state.budget.left():g} left under max_credits"
        await state.skip(card.id, reason, run)
        return None
    return run


async def send(state: JobState, run: TaskRun) -> None:
    """Hold the price, journal the intent, POST the create once and classify its answer.

    Returns with ``run.task_id`` set (or ``None`` for an ambiguous create a callback may still
    name); raises :class:`RetrySame`, :class:`NextStep` or the error that stops the job.
    """
    ctx = state.ctx
    state.check_halt()
    state.check_budget()
    run.hold = await ctx.spend.hold(run.model, run.cost)
    run.held = run.hold.amount
    state.budget.hold(run.held)
    run.balance_before = ctx.probe.begin(run.model)
    run.probe_epoch = ctx.probe.expect()
    state.budget.take_attempt()
    run.attempt_no = state.budget.attempts_used
    if state.journal is not None:
        try:
            await state.journal_call("record_intent", run.attempt_no, run.model, run.prepared.body)
        except BaseException:  # the journal (or its create gate) refused: nothing was sent
            _release(state, run)
            raise
    try:
        data = await ctx.client.create(run.prepared.path, run.prepared.body, job_key=state.job_key)
    except AmbiguousSubmissionError as exc:
        await _ambiguous(state, run, exc)
        return
    except KieRouterError as exc:
        _release(state, run)
        await _refused(state, run, exc)
    try:
        run.task_id = _parse_create(run.card, run.provider, data)
    except KieRouterError as exc:
        await _ambiguous(state, run, exc)
        return
    ctx.owners.add(run.task_id, state.job_key)
    if state.journal is not None:
        await state.journal_call("record_submitted", run.attempt_no, run.model, run.task_id)
    if state.wants("created"):
        state.emit(
            "created", model=run.model, task_id=run.task_id, data={"attempt": run.attempt_no}
        )


def _release(state: JobState, run: TaskRun) -> None:
    """KIE made no task: give back what was held for it."""
    state.ctx.probe.ended()
    state.budget.settle(run.held, 0.0)
    run.held = 0.0
    if run.hold is not None:
        state.ctx.spend.release(run.hold)


async def _ambiguous(state: JobState, run: TaskRun, exc: KieRouterError) -> None:
    """The create may have reached KIE: keep its holds, wait for a callback, never resend."""
    state.ctx.spend.unblock(run.model)  # its price will not be known soon
    await state.journal_call("record_ambiguous", run.attempt_no, run.model, str(exc))
    state.emit("failed", model=run.model, detail=f"ambiguous create: {exc}")
    if state.waiter is None:
        lost = "unreadable" if isinstance(exc, MalformedResponseError) else "lost"
        await state.stop_ambiguous(
            run,
            f"create sent but its answer was {lost} ({exc}); not resubmitted",
            f"the create for {run.model} may have reached KIE but its answer was lost; it is "
            f"not resubmitted. Reconcile job {state.job_key!r} by its callback or a status read",
        )


async def _refused(state: JobState, run: TaskRun, exc: KieRouterError) -> NoReturn:
    """Record a refused create (KIE made no task) and raise what the run does next."""
    ctx = state.ctx
    exc = map_provider_error(run.provider, exc)
    reason = str(exc)
    if isinstance(exc, ValidationError):
        await state.skip(run.model, reason, run)
        raise NextStep
    await state.record(state.attempt(run.model, "error", reason, run=run))
    state.emit("failed", model=run.model, detail=reason)
    if isinstance(exc, STOPPING):
        ctx.halt(exc)
        raise exc
    if isinstance(exc, ContentPolicyError):
        content_policy(state, run.card, exc)
        raise NextStep
    transient = isinstance(exc, ServerError | MaintenanceError) or (
        isinstance(exc, TransportError) and not exc.sent
    )
    if transient:
        if ctx.cooldown.failure(run.model):
            state.emit("failed", model=run.model, detail="model put in cooldown")
        raise RetrySame(reason)
    if isinstance(exc, FeatureDisabledError | EndpointGoneError):
        ctx.cooldown.failure(run.model)  # it will not come back within this run
    # A 429 reaching here was already waited out by the client (Retry-After, several tries):
    # move to the next rung rather than pile onto the same window.
    raise NextStep


def content_policy(state: JobState, card: ModelCard, exc: KieRouterError) -> None:
    """Stop the job when the policy says a flagged request must not escalate."""
    if state.policy.on_content_policy == "stop":
        raise JobFailedError(
            f"{card.id} refused the request on content policy ({exc}); the policy says stop",
            state.attempts,
        ) from None


def _parse_create(card: ModelCard, provider: Provider, data: Any) -> str:
    """The task id of a create; a plugin bug reading it makes the create ambiguous."""
    try:
        return provider.parse_create(data)
    except KieRouterError:
        raise
    except Exception as exc:  # a plugin bug
        error = plugin_error(card, "parse_create", exc)
        raise MalformedResponseError(str(error), sent=True) from exc


def check_writable(ctx: RunContext, folder: Path | None) -> None:
    """Create ``folder`` and check that a file can be written there, before anything is paid.

    Raises :class:`~kierouter.ConfigurationError` naming the folder. Each folder is checked once
    per router; a disk that fills up later makes a job ``undelivered``, never a bare OSError.
    """
    if folder is None or str(folder) in ctx.writable:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".kierouter-write-test-", dir=folder)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise ConfigurationError(
            f"the output folder {folder} cannot be written ({exc.strerror or exc}); nothing was "
            "sent. Choose another folder (out_dir / --out) or fix its permissions"
        ) from None
    ctx.writable.add(str(folder))
