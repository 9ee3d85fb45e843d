"""One journaled job of a batch, taken as far as it goes now: from where the journal says it
stands, and only where :mod:`kierouter._money` allows a create."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from kierouter._errors import (
    AmbiguousSubmissionError,
    AuthError,
    BlockedClientError,
    BudgetReachedError,
    InsufficientCreditsError,
    KieRouterError,
    PaidUndeliveredError,
)
from kierouter._models import Attempt, ImageRequest
from kierouter.journal import AttemptRecord, JobRecord, SqliteJournal

if TYPE_CHECKING:
    from kierouter._router import Router
    from kierouter.policy import Policy

__all__ = ["move_job", "save_job"]

#: errors after which the batch creates nothing more (KIE refused the key or the account)
_HALTING = (AuthError, InsufficientCreditsError, BlockedClientError)


def _sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


def _prior(records: Sequence[AttemptRecord]) -> list[Attempt]:
    """The journal's attempts of a job, as the router counts them (skips left out)."""
    return [
        Attempt(
            model=a.model,
            outcome=a.outcome,  # type: ignore[arg-type]
            reason=a.reason,
            task_id=a.task_id,
            credits=a.credits,
            seed=a.seed,
        )
        for a in records
        if a.outcome not in (None, "skipped") and a.phase in ("ended", "watching")
    ]


async def move_job(
    router: Router,
    backend: SqliteJournal,
    out_dir: Path,
    job: JobRecord,
    request: ImageRequest,
    policy: str | Policy | None,
) -> KieRouterError | None:
    """Take ``job`` on: watch its hedged tasks again, run or follow it, wait for its watched
    tasks, save its images. Returns the error that halts the batch (auth, credits, a blocked
    client), if any; every other outcome is in the journal."""
    records = backend.attempts(job.key)
    try:
        for hedged in (a for a in records if a.phase == "watching" and a.task_id):
            await router.watch(
                request,
                job_key=job.key,
                model=hedged.model,
                task_id=hedged.task_id or "",
                attempt_no=hedged.attempt_no or 1,
                policy=policy,
                out_dir=out_dir,
            )
        await _advance(router, job, request, policy, out_dir, _prior(records))
    except BudgetReachedError:
        pass  # the job stays planned; resume with a larger budget
    except AmbiguousSubmissionError:
        pass  # stays unknown: reconciled by a later callback or status read, never resent
    except PaidUndeliveredError:
        pass  # journaled undelivered, with its URLs: saved below, by resume or by fetch
    except _HALTING as exc:
        return exc
    except KieRouterError as exc:
        current = backend.job(job.key)
        if current is not None and current.state == "planned":  # no live task left
            backend.mark_failed(job.key, str(exc))
    await router.drain(job.key)  # the row stays open until its watched tasks end
    current = backend.job(job.key)
    if current is not None and current.state in ("succeeded", "undelivered"):
        await save_job(router, backend, out_dir, current)
    return None


async def _advance(
    router: Router,
    job: JobRecord,
    request: ImageRequest,
    policy: str | Policy | None,
    out_dir: Path,
    prior: list[Attempt],
) -> None:
    """Take the job one move on from where its journal says it stands."""
    common: dict[str, Any] = {"policy": policy, "out_dir": out_dir}
    if job.state == "planned" and not prior:
        await router.generate(request, job_key=job.key, **common)
    elif job.state == "planned":
        await router.resume(request, job_key=job.key, prior_attempts=prior, **common)
    elif job.state in ("submitted", "unknown") and job.model:
        if job.state == "unknown" and router.webhook is None:
            return  # only a callback can name the task: stays unknown, reported
        await router.resume(
            request,
            job_key=job.key,
            model=job.model,
            task_id=job.task_id if job.state == "submitted" else None,
            attempt_no=max(job.attempt_no, 1),
            prior_attempts=[a for a in prior if a.task_id != job.task_id],
            **common,
        )


async def save_job(
    router: Router, backend: SqliteJournal, out_dir: Path, job: JobRecord
) -> KieRouterError | None:
    """A served job's images on disk: checked against their sha256, or saved again from its
    task (never created again). ``downloaded`` when all are there; else it stays (or becomes)
    ``undelivered`` with the reason, and the error is returned."""
    result = job.result
    if result is None or not job.task_id or not job.model:
        return None
    files = list(result.files)
    if files and all(_sha256(f.path) == f.sha256 for f in files):
        backend.mark_downloaded(job.key, files)
        return None
    try:
        handle = router.task(job.task_id, model=job.model)
        saved = await handle.download(out_dir, stem=job.key, timeout=0)
    except KieRouterError as exc:
        if job.state == "succeeded":
            reason = f"could not be saved again: {exc}"
            broken = msgspec.structs.replace(
                result, files=(), delivery="undelivered", delivery_error=reason
            )
            backend.record_result(job.key, broken)
        return exc
    backend.mark_downloaded(job.key, saved)
    return None
