"""A batch's folder and journal: created with every job planned, read back into rows."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from kierouter._errors import ConfigurationError
from kierouter._models import ImageRequest
from kierouter.journal import JobRecord, SqliteJournal

from ._input import BatchRow
from ._plan import BatchPlan
from ._settings import JOURNAL_FILE, BatchSettings

__all__ = ["new_batch", "rows_from"]


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


def rows_from(jobs: Iterable[JobRecord]) -> list[BatchRow]:
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


def new_batch(
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
    plan_into(backend, rows, settings, plan, source)
    return folder, backend


def plan_into(
    backend: Any,
    rows: list[BatchRow],
    settings: BatchSettings,
    plan: BatchPlan,
    source: str,
    **meta: Any,
) -> None:
    """Write the batch's description (and ``meta``) and every row's jobs, planned, into a new
    journal (SQLite here, PostgreSQL for ``--db``)."""
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
            **meta,
        },
    )
    backend.add_jobs(
        (row.job_key(step), _spec(row, step, expected.get(row.job_key(step), 0.0)))
        for row in rows
        for step in row.steps
    )
