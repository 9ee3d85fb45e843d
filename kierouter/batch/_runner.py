"""Running a batch: journal every job, pace creates, download at once, resume after anything.

A batch lives in its output folder: ``journal.sqlite`` (every job and attempt), the images,
``manifest.jsonl`` and ``.callback-secret`` (the key of the per-job callback tokens, so a resumed
batch accepts callbacks for tasks an earlier process created; it is not written to the journal).

Each journaled job is taken where it stands, and only :mod:`kierouter._money` decides whether a
task may be created for it: ``planned`` jobs run the rest of their plan (the models tried before
skipped, their attempts counted in the job's budget); ``submitted`` and ``unknown`` ones follow
the task they have; ``succeeded`` ones have their files checked; ``undelivered`` ones are
downloaded again, never created again; hedged tasks an earlier process was watching are watched
again. A row stays open until its watched tasks end. Whatever happens to one row, the others go
on and the manifest is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from kierouter._errors import (
    AmbiguousSubmissionError,
    AuthError,
    BlockedClientError,
    BudgetReachedError,
    ConfigurationError,
    DownloadError,
    InsufficientCreditsError,
    KieRouterError,
    PaidUndeliveredError,
)
from kierouter._models import Attempt, ImageRequest
from kierouter.journal import AttemptRecord, JobRecord, SqliteJournal

from ._connect import open_router, save_settings
from ._input import BatchRow
from ._manifest import folder_of, open_journal, undelivered_rows, write_manifest
from ._plan import USD_PER_CREDIT, BatchPlan, plan_batch, step_policy, step_request
from ._settings import JOURNAL_FILE, BatchBudgetError, BatchReport, BatchSettings

if TYPE_CHECKING:
    from kierouter._router import Router
    from kierouter.policy import Policy

__all__ = ["plan_rows", "resume_batch", "run_batch"]

log = logging.getLogger("kierouter.batch")

ProgressCallback = Callable[[dict[str, Any]], None]


def _spec(row: BatchRow, step: str, expected: float) -> dict[str, Any]:
    return {
        "row": row.index,
        "line": row.line,
        "row_key": row.key,
        "step": step,
        "steps": list(row.steps),
        "policy": row.policy,
        "request": msgspec.to_builtins(row.request),
        "expected_credits": expected,
    }


def _rows_from(jobs: Iterable[JobRecord]) -> list[BatchRow]:
    rows: dict[str, BatchRow] = {}
    for job in jobs:
        spec = job.spec
        if spec["row_key"] in rows:
            continue
        rows[spec["row_key"]] = BatchRow(
            index=spec["row"],
            line=spec["line"],
            key=spec["row_key"],
            request=msgspec.convert(spec["request"], ImageRequest),
            policy=spec["policy"],
            steps=tuple(spec["steps"]),
        )
    return list(rows.values())


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


def plan_rows(
    rows: list[BatchRow],
    settings: BatchSettings,
    *,
    plugins: Sequence[object] | None = None,
    source: str = "<batch>",
    config: Any = None,
) -> BatchPlan:
    """Price a batch with no network call (see :func:`kierouter.batch.plan_batch`).

    ``config`` is a loaded kierouter configuration (its ``[policies]`` and ``[prices]``)."""
    from kierouter._router import Router

    router = Router(plugins, policy=settings.policy or "auto", config=config)
    return plan_batch(
        router,
        rows,
        policy=settings.policy,
        create_limit=settings.create_limit,
        create_window=settings.create_window,
        source=source,
    )


@dataclass(eq=False)
class _Run:
    out_dir: Path
    backend: SqliteJournal
    settings: BatchSettings
    api_key: str | None
    plugins: Sequence[object] | None
    progress: ProgressCallback | None
    progress_interval: float
    config: Any = None
    halted: KieRouterError | None = None
    router: Router | None = None
    started: float = field(default_factory=time.monotonic)
    done_at_start: int = 0

    # -- progress --------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        counts = self.backend.counts()
        total = sum(counts.values())
        done = counts["downloaded"] + counts["failed"] + counts["undelivered"]
        elapsed = time.monotonic() - self.started
        finished_here = done - self.done_at_start
        eta = None
        if finished_here > 0 and done < total:
            eta = (total - done) * elapsed / finished_here
        spent = self.backend.spent()
        return {
            "counts": counts,
            "jobs": total,
            "done": done,
            "spent": round(spent, 4),
            "usd": round(spent * USD_PER_CREDIT, 4),
            "elapsed": round(elapsed, 2),
            "eta": None if eta is None else round(eta, 1),
            "budget": self.settings.budget,
        }

    async def _report_progress(self) -> None:
        assert self.progress is not None
        while True:
            await asyncio.sleep(self.progress_interval)
            with contextlib.suppress(Exception):
                self.progress(self.snapshot())

    # -- executing -------------------------------------------------------------------------------

    def _prepare_journal(self, requeue_unknown: bool) -> None:
        for stale in self.out_dir.glob(".*.part"):
            with contextlib.suppress(OSError):
                stale.unlink()  # a download cut short by a kill
        for job in self.backend.jobs(["submitting"]):
            self.backend.mark_unknown(
                job.key, "the batch stopped while this create was in flight; not resubmitted"
            )
        if requeue_unknown:
            for job in self.backend.jobs(["unknown"]):
                self.backend.requeue_unknown(job.key)

    async def execute(self, *, requeue_unknown: bool = False) -> BatchReport:
        self._prepare_journal(requeue_unknown)
        counts = self.backend.counts()
        self.done_at_start = counts["downloaded"] + counts["failed"] + counts["undelivered"]
        created_before = sum(1 for a in self.backend.attempts() if a.reached_kie)
        try:
            async with contextlib.AsyncExitStack() as stack:
                self.router = await open_router(
                    stack,
                    self.out_dir,
                    self.backend,
                    self.settings,
                    api_key=self.api_key,
                    plugins=self.plugins,
                    config=self.config,
                )
                await self._rows()
        finally:
            manifest = write_manifest(self.backend, self.out_dir)  # whatever happened
        if self.progress is not None:
            self.progress(self.snapshot())
        return self._report(manifest, created_before)

    async def _rows(self) -> None:
        router = self.router
        assert router is not None
        if router.webhook is not None:
            for job in self.backend.jobs(["unknown", "submitted"]):
                router.webhook_app.expect(job.key)  # queue callbacks that come early
        reporter = None
        if self.progress is not None:
            reporter = asyncio.ensure_future(self._report_progress())
        rows = _rows_from(self.backend.jobs())
        try:
            # ``concurrency`` workers take rows in order from one iterator: memory stays flat
            # however long the batch. A row never raises (see _row), so one row's trouble never
            # cancels the others.
            pending = iter(rows)
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.settings.concurrency, len(rows))):
                    group.create_task(self._worker(pending))
        finally:
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter

    def _report(self, manifest: Path, created_before: int) -> BatchReport:
        jobs = self.backend.jobs()
        counts = self.backend.counts()
        spent = self.backend.spent()
        attempts = self.backend.attempts()
        reached = self.router is not None and self.router.budget_reached
        stopped = None
        if self.halted is not None:
            stopped = str(self.halted)
        elif reached:
            stopped = f"budget reached: {spent:g} of {self.settings.budget:g} credits spent"
        hedged = {a.job_key for a in attempts if a.outcome in ("hedged", "extra")}
        hedged |= {a.job_key for a in attempts if a.phase == "watching"}
        return BatchReport(
            out_dir=str(self.out_dir),
            counts=counts,
            jobs=len(jobs),
            spent=round(spent, 6),
            usd=round(spent * USD_PER_CREDIT, 6),
            budget=self.settings.budget,
            budget_reached=reached,
            stopped=stopped,
            unknown=[j.key for j in jobs if j.state == "unknown"],
            failed=[j.key for j in jobs if j.state == "failed"],
            manifest=str(manifest),
            elapsed=round(time.monotonic() - self.started, 3),
            created_this_run=sum(1 for a in attempts if a.reached_kie) - created_before,
            halted=(
                None
                if self.halted is None
                else "credits"
                if isinstance(self.halted, InsufficientCreditsError)
                else "auth"
            ),
            undelivered=undelivered_rows(jobs),
            hedged=len(hedged),
            extras=sum(1 for a in attempts if a.outcome == "extra"),
        )

    def _stopped(self) -> bool:
        reached = self.router is not None and self.router.budget_reached
        return self.halted is not None or reached

    async def _worker(self, rows: Iterator[BatchRow]) -> None:
        for row in rows:
            try:
                await self._row(row)
            except Exception:  # a bug must not take the other rows (or the manifest) with it
                log.exception("batch row %s stopped on an unexpected error", row.key)

    async def _row(self, row: BatchRow) -> None:
        previous: str | None = None
        for step in row.steps:
            job = self.backend.job(row.job_key(step))
            if job is None or job.state == "failed":
                return
            if job.state != "downloaded":
                if self._stopped() and job.state == "planned":
                    return
                job = await self._job(job, row, step, step_request(row, step, previous))
            if job.state != "downloaded" or job.result is None or not job.result.urls:
                return
            previous = job.result.urls[0]

    async def _job(
        self, job: JobRecord, row: BatchRow, step: str, request: ImageRequest
    ) -> JobRecord:
        router = self.router
        assert router is not None
        key = job.key
        policy = step_policy(row, step, self.settings.policy)
        records = self.backend.attempts(key)
        try:
            for hedged in (a for a in records if a.phase == "watching" and a.task_id):
                await router.watch(
                    request,
                    job_key=key,
                    model=hedged.model,
                    task_id=hedged.task_id or "",
                    attempt_no=hedged.attempt_no or 1,
                    policy=policy,
                    out_dir=self.out_dir,
                )
            await self._advance(router, job, request, policy, _prior(records))
        except BudgetReachedError:
            pass  # the job stays planned; resume with a larger budget
        except AmbiguousSubmissionError:
            pass  # stays unknown: reconciled by a later callback or status read, never resent
        except PaidUndeliveredError:
            pass  # journaled undelivered, with its URLs: resume or kierouter fetch saves it
        except (AuthError, InsufficientCreditsError, BlockedClientError) as exc:
            self.halted = exc
        except KieRouterError as exc:
            current = self.backend.job(key)
            if current is not None and current.state == "planned":  # no live task left
                self.backend.mark_failed(key, str(exc))
        await router.drain(key)  # the row stays open until its watched tasks end
        current = self.backend.job(key)
        assert current is not None
        if current.state in ("succeeded", "undelivered"):
            await self._save(current)
            current = self.backend.job(key)
            assert current is not None
        return current

    async def _advance(
        self,
        router: Router,
        job: JobRecord,
        request: ImageRequest,
        policy: str | Policy | None,
        prior: list[Attempt],
    ) -> None:
        """Take the job one move on from where its journal says it stands."""
        common: dict[str, Any] = {"policy": policy, "out_dir": self.out_dir}
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

    async def _save(self, job: JobRecord) -> None:
        """A served job's images on disk: checked against their sha256, or fetched again from
        its task (never created again); ``downloaded`` when all are there, else
        ``undelivered`` with the reason."""
        result = job.result
        router = self.router
        assert result is not None and router is not None
        files = list(result.files)
        if files and all(_sha256(f.path) == f.sha256 for f in files):
            self.backend.mark_downloaded(job.key, files)
            return
        if not job.task_id or not job.model:
            return
        try:
            handle = router.task(job.task_id, model=job.model)
            saved = await handle.download(self.out_dir, stem=job.key, timeout=0)
        except (DownloadError, KieRouterError) as exc:
            if job.state == "succeeded":
                reason = f"could not be saved again: {exc}"
                broken = msgspec.structs.replace(
                    result, files=(), delivery="undelivered", delivery_error=reason
                )
                self.backend.record_result(job.key, broken)
            return
        self.backend.mark_downloaded(job.key, saved)


def _new_batch(
    rows: list[BatchRow],
    out_dir: str | os.PathLike[str],
    settings: BatchSettings,
    plan: BatchPlan,
    source: str,
) -> tuple[Path, SqliteJournal]:
    """Create the folder and its journal with every job planned."""
    folder = Path(out_dir).resolve()
    if (folder / JOURNAL_FILE).exists():
        raise ConfigurationError(
            f"{folder} already holds a batch; continue it with 'kierouter batch resume {folder}'"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        backend = SqliteJournal(folder / JOURNAL_FILE)
    except OSError as exc:
        raise ConfigurationError(
            f"the output folder {folder} cannot be written ({exc.strerror or exc}); nothing "
            "was started"
        ) from None
    expected = {j.job_key: j.expected_credits for j in plan.jobs}
    backend.set_meta(
        "batch",
        {
            "source": source,
            "rows": len(rows),
            "expected_credits": plan.expected_credits,
            "worst_case_credits": plan.worst_case_credits,
            "budget": settings.budget,
            "settings": msgspec.to_builtins(settings.__dict__),
            "created_at": time.time(),
        },
    )
    backend.add_jobs(
        (row.job_key(step), _spec(row, step, expected.get(row.job_key(step), 0.0)))
        for row in rows
        for step in row.steps
    )
    return folder, backend


async def run_batch(
    rows: list[BatchRow],
    out_dir: str | os.PathLike[str],
    settings: BatchSettings,
    *,
    api_key: str | None = None,
    plugins: Sequence[object] | None = None,
    source: str = "<batch>",
    progress: ProgressCallback | None = None,
    progress_interval: float = 1.0,
    plan: BatchPlan | None = None,
    config: Any = None,
) -> BatchReport:
    """Plan, price-check, journal and run a batch into ``out_dir``.

    Raises :class:`BatchBudgetError` (nothing started) when the plan's expected credits exceed
    ``settings.budget``, and :class:`~kierouter.ConfigurationError` when ``out_dir`` already
    holds a batch (use :func:`resume_batch`) or cannot be written.
    """
    settings.check()
    if plan is None:
        plan = plan_rows(rows, settings, plugins=plugins, source=source, config=config)
    if settings.budget is not None and plan.expected_credits > settings.budget + 1e-9:
        raise BatchBudgetError(plan.expected_credits, settings.budget)
    folder, backend = _new_batch(rows, out_dir, settings, plan, source)
    try:
        run = _Run(folder, backend, settings, api_key, plugins, progress, progress_interval, config)
        return await run.execute()
    finally:
        backend.close()


async def resume_batch(
    out_dir: str | os.PathLike[str],
    *,
    api_key: str | None = None,
    plugins: Sequence[object] | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 1.0,
    requeue_unknown: bool = False,
    config: Any = None,
    **overrides: Any,
) -> BatchReport:
    """Continue a batch after any interruption; never creates a task twice.

    Jobs with a task id are awaited and downloaded; ``undelivered`` jobs are downloaded again;
    creates left in flight become ``unknown`` and wait for their callback;
    ``requeue_unknown=True`` (an explicit operator decision, which may pay twice) creates those
    again. ``overrides`` replace stored settings (``budget``, ``concurrency``, ``base_url``, ...).
    """
    folder = folder_of(out_dir)
    backend = open_journal(folder)
    try:
        meta = backend.get_meta("batch") or {}
        settings = BatchSettings.stored(meta)
        for name, value in overrides.items():
            if name not in BatchSettings.__dataclass_fields__:
                raise ConfigurationError(f"unknown batch setting {name!r}")
            if value is not None:
                setattr(settings, name, value)
        settings.check()
        if settings.budget is not None:
            spent = backend.spent()
            remaining = sum(
                float(j.spec.get("expected_credits", 0.0))
                for j in backend.jobs(["planned", "submitting", "submitted", "unknown"])
            )
            if spent + remaining > settings.budget + 1e-9:
                raise BatchBudgetError(spent + remaining, settings.budget, spent)
        meta["budget"] = settings.budget
        backend.set_meta("batch", meta)
        save_settings(backend, settings)
        run = _Run(folder, backend, settings, api_key, plugins, progress, progress_interval, config)
        return await run.execute(requeue_unknown=requeue_unknown)
    finally:
        backend.close()
