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
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kierouter._errors import (
    BlockedClientError,
    ConfigurationError,
    InsufficientCreditsError,
    KieRouterError,
)
from kierouter.journal import SqliteJournal

from ._connect import open_router, save_settings
from ._input import BatchRow
from ._job import move_job
from ._manifest import folder_of, open_journal, undelivered_rows, write_manifest
from ._plan import USD_PER_CREDIT, BatchPlan, plan_batch, step_policy, step_request
from ._settings import BatchBudgetError, BatchReport, BatchSettings
from ._setup import new_batch, rows_from

if TYPE_CHECKING:
    from kierouter._router import Router

__all__ = ["plan_rows", "resume_batch", "run_batch"]

log = logging.getLogger("kierouter.batch")

ProgressCallback = Callable[[dict[str, Any]], None]


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
        rows = rows_from(self.backend.jobs())
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
            halted=_halted(self.halted),
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
                assert self.router is not None
                policy = step_policy(row, step, self.settings.policy)
                request = step_request(row, step, previous)
                halted = await move_job(
                    self.router, self.backend, self.out_dir, job, request, policy
                )
                self.halted = halted or self.halted
                job = self.backend.job(job.key) or job
            if job.state != "downloaded" or job.result is None or not job.result.urls:
                return
            previous = job.result.urls[0]


def _halted(error: KieRouterError | None) -> str | None:
    """What stopped the batch, for the report: KIE refusing the key or the account, or
    Cloudflare refusing the client."""
    if error is None:
        return None
    if isinstance(error, InsufficientCreditsError):
        return "credits"
    return "blocked" if isinstance(error, BlockedClientError) else "auth"


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
    folder, backend = new_batch(rows, out_dir, settings, plan, source)
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
