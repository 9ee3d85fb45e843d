"""``kierouter batch run/resume/status --db``: a batch whose journal is in PostgreSQL.

The process that runs a batch creates it in the database (schema ``kr_<batch id>``: plan, jobs,
attempts, budget row), puts one workflow per row on the queue and is itself a worker until
every row's workflow has ended; ``kierouter worker`` processes on any machine take rows too. The
output folder (shared by every worker) holds the images, the manifest (written from the
database) and ``.kierouter-db`` with the batch id, so ``status``/``resume`` find the batch.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kierouter._errors import ConfigurationError
from kierouter.batch._input import BatchRow
from kierouter.batch._manifest import folder_of, write_manifest
from kierouter.batch._plan import BatchPlan
from kierouter.batch._settings import JOURNAL_FILE, BatchBudgetError, BatchReport, BatchSettings

from ._gate import budget_tables, ensure_global_tables
from ._handle import WorkerOptions, callback_secret
from ._journal import PostgresJournal

__all__ = ["BATCH_FILE", "batch_id_of", "db_status", "resume_batch_db", "run_batch_db"]

BATCH_FILE = ".kierouter-db"
"""In a ``--db`` batch's folder: the id of its batch in the database (no secret)."""

ProgressCallback = Callable[[dict[str, Any]], None]


def batch_id_of(folder: Path) -> str:
    """The batch id a ``--db`` batch's folder names (a clear error when it names none)."""
    path = folder / BATCH_FILE
    if not path.exists():
        raise ConfigurationError(f"{folder} holds no --db batch ({BATCH_FILE} is missing)")
    return path.read_text().strip()


def _create(
    rows: list[BatchRow],
    folder: Path,
    settings: BatchSettings,
    plan: BatchPlan,
    url: str,
    source: str,
) -> PostgresJournal:
    from kierouter.batch._setup import plan_into

    if (folder / BATCH_FILE).exists() or (folder / JOURNAL_FILE).exists():
        raise ConfigurationError(
            f"{folder} already holds a batch; continue it with 'kierouter batch resume {folder}'"
        )
    folder.mkdir(parents=True, exist_ok=True)
    batch_id = time.strftime("%Y%m%d%H%M%S") + "_" + secrets.token_hex(4)
    backend = PostgresJournal(url, batch_id)
    plan_into(backend, rows, settings, plan, source, out_dir=str(folder), batch_id=batch_id)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        ensure_global_tables(conn)
        budget_tables(conn, backend.schema, settings.budget)
        conn.execute(
            "INSERT INTO kierouter.batches (batch_id, out_dir) VALUES (%s, %s)",
            (batch_id, str(folder)),
        )
    callback_secret(folder)
    (folder / BATCH_FILE).write_text(batch_id + "\n")
    return backend


def _row_keys(backend: PostgresJournal) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for job in backend.jobs():
        rows.setdefault(job.spec["row_key"], []).append(job.key)
    return rows


async def _drive(
    backend: PostgresJournal,
    folder: Path,
    settings: BatchSettings,
    options: WorkerOptions,
    *,
    generation: int,
    progress: ProgressCallback | None,
    progress_interval: float,
) -> BatchReport:
    """Be a worker while every row of the batch runs on the queue; then the manifest."""
    from dbos import DBOS, SetWorkflowID

    from kierouter.batch._runner import _Run

    from ._worker import Worker, follow_row, row_workflow, row_workflow_id

    run = _Run(folder, backend, settings, None, None, progress, progress_interval)
    created_before = sum(1 for a in backend.attempts() if a.reached_kie)
    worker = Worker(options, create_limit=settings.create_limit, window=settings.create_window)
    await worker.start()
    try:
        handles: list[Any] = []
        for row_key, keys in _row_keys(backend).items():
            done = all(
                (j := backend.job(k)) is not None and j.state in ("downloaded", "failed")
                for k in keys
            )
            if done:
                continue
            previous = backend.row_workflow(row_key)
            if previous is not None:
                status = await DBOS.get_workflow_status_async(previous)
                if status is not None and status.status in ("PENDING", "ENQUEUED", "DELAYED"):
                    # still running (the process that started it was stopped, its workers
                    # were not): wait for it rather than run the row twice
                    handles.append(await DBOS.retrieve_workflow_async(previous))
                    continue
            workflow_id = row_workflow_id(backend.batch_id, row_key, generation)
            backend.set_row_workflow(row_key, workflow_id)
            with SetWorkflowID(workflow_id):
                handles.append(
                    await worker.queue.enqueue_async(row_workflow, backend.batch_id, keys)
                )
        waiting = asyncio.gather(*(follow_row(h) for h in handles))
        while not waiting.done():
            await asyncio.wait([waiting], timeout=progress_interval)
            if progress is not None:
                progress(run.snapshot())
        await waiting
    finally:
        await worker.aclose()
    manifest = write_manifest(backend, folder)
    if progress is not None:
        progress(run.snapshot())
    return run._report(manifest, created_before)


async def run_batch_db(
    rows: list[BatchRow],
    out_dir: str | Path,
    settings: BatchSettings,
    options: WorkerOptions,
    *,
    plan: BatchPlan,
    source: str = "<batch>",
    progress: ProgressCallback | None = None,
    progress_interval: float = 1.0,
) -> BatchReport:
    """Create the batch in the database and run it (this process is one of its workers)."""
    settings.check()
    if settings.sim:
        raise ConfigurationError(
            "--db needs an emulator every worker reaches: start 'kierouter sim' and pass "
            "--sim-url, not --sim"
        )
    if settings.budget is not None and plan.expected_credits > settings.budget + 1e-9:
        raise BatchBudgetError(plan.expected_credits, settings.budget)
    folder = folder_of(out_dir)
    backend = await asyncio.to_thread(_create, rows, folder, settings, plan, options.url, source)
    try:
        return await _drive(
            backend,
            folder,
            settings,
            options,
            generation=0,
            progress=progress,
            progress_interval=progress_interval,
        )
    finally:
        backend.close()


async def resume_batch_db(
    out_dir: str | Path,
    options: WorkerOptions,
    *,
    progress: ProgressCallback | None = None,
    progress_interval: float = 1.0,
    requeue_unknown: bool = False,
) -> BatchReport:
    """Put the rows that are not done back on the queue (new workflow ids) and run them.

    ``requeue_unknown=True`` (an operator's explicit decision, which may pay twice) creates
    again the jobs whose create answer was lost."""
    folder = folder_of(out_dir)
    backend = PostgresJournal(options.url, batch_id_of(folder))
    try:
        meta = backend.get_meta("batch") or {}
        settings = BatchSettings.stored(meta)
        generation = int(backend.get_meta("generation") or 0) + 1
        backend.set_meta("generation", generation)
        if requeue_unknown:
            for job in backend.jobs(["unknown"]):
                backend.requeue_unknown(job.key)
        return await _drive(
            backend,
            folder,
            settings,
            options,
            generation=generation,
            progress=progress,
            progress_interval=progress_interval,
        )
    finally:
        backend.close()


def db_status(out_dir: str | Path, url: str) -> dict[str, Any]:
    """Counts per state, credits and the shared budget row of a ``--db`` batch."""
    from kierouter.batch._manifest import undelivered_rows

    folder = Path(out_dir).resolve()
    backend = PostgresJournal(url, batch_id_of(folder))
    try:
        meta = backend.get_meta("batch") or {}
        jobs = backend.jobs()
        counts = backend.counts()
        row = backend._db.execute("SELECT lim, reserved, settled FROM budget WHERE id = 1")
        budget = row.fetchone()
        return {
            "out_dir": str(folder),
            "batch_id": backend.batch_id,
            "rows": meta.get("rows", 0),
            "jobs": len(jobs),
            "counts": counts,
            "spent": round(backend.spent(), 6),
            "budget": budget[0] if budget else None,
            "reserved": float(budget[1]) if budget else 0.0,
            "settled": float(budget[2]) if budget else 0.0,
            "creates": sum(1 for a in backend.attempts() if a.reached_kie),
            "unknown": [j.key for j in jobs if j.state == "unknown"],
            "undelivered": undelivered_rows(jobs),
            "complete": counts["downloaded"] == len(jobs),
        }
    finally:
        backend.close()
