"""The SQLite journal's tables, and its rows as records. Strictly private."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from kierouter._models import ImageFile, Result

from ._backend import AttemptRecord, JobRecord

__all__ = [
    "ADDED_COLUMNS",
    "ATTEMPT_COLUMNS",
    "JOB_COLUMNS",
    "OPEN_PHASES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "attempt_record",
    "job_record",
    "result_decoder",
]

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    model TEXT,
    attempt_no INTEGER NOT NULL DEFAULT 0,
    task_id TEXT,
    credits REAL NOT NULL DEFAULT 0,
    result TEXT,
    files TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE TABLE IF NOT EXISTS attempts (
    job_key TEXT NOT NULL REFERENCES jobs (key),
    n INTEGER NOT NULL,
    attempt_no INTEGER,
    model TEXT NOT NULL,
    phase TEXT NOT NULL,
    task_id TEXT,
    outcome TEXT,
    reason TEXT NOT NULL DEFAULT '',
    credits REAL NOT NULL DEFAULT 0,
    seed INTEGER,
    body_sha256 TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    urls TEXT,
    files TEXT,
    credits_source TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_key, n)
);
CREATE INDEX IF NOT EXISTS attempts_task ON attempts (task_id);
"""
#: columns added to ``attempts`` since schema 1, added to an older journal when it is opened
ADDED_COLUMNS = (
    ("urls", "TEXT"),
    ("files", "TEXT"),
    ("credits_source", "TEXT NOT NULL DEFAULT ''"),
)

JOB_COLUMNS = "key, seq, state, spec, model, attempt_no, task_id, credits, result, files, error, "
JOB_COLUMNS += "updated_at"
ATTEMPT_COLUMNS = (
    "job_key, n, attempt_no, model, phase, task_id, outcome, reason, credits, seed, created_at, "
    "urls, files, credits_source"
)
#: attempt phases of a create that has not ended
OPEN_PHASES = ("intent", "submitted", "ambiguous")
result_decoder = msgspec.json.Decoder(Result)
_files = msgspec.json.Decoder(tuple[ImageFile, ...])
_urls = msgspec.json.Decoder(tuple[str, ...])


def job_record(row: Sequence[Any]) -> JobRecord:
    """A ``jobs`` row (:data:`JOB_COLUMNS`) as a :class:`JobRecord`."""
    key, seq, state, spec, model, attempt_no, task_id, credits, result, files, error, at = row
    return JobRecord(
        key=key,
        seq=seq,
        state=state,
        spec=msgspec.json.decode(spec),
        model=model,
        attempt_no=attempt_no,
        task_id=task_id,
        credits=credits,
        result=result_decoder.decode(result) if result else None,
        files=_files.decode(files) if files else (),
        error=error,
        updated_at=at,
    )


def attempt_record(row: Sequence[Any]) -> AttemptRecord:
    """An ``attempts`` row (:data:`ATTEMPT_COLUMNS`) as an :class:`AttemptRecord`."""
    return AttemptRecord(
        job_key=row[0],
        n=row[1],
        attempt_no=row[2],
        model=row[3],
        phase=row[4],
        task_id=row[5],
        outcome=row[6],
        reason=row[7],
        credits=row[8],
        seed=row[9],
        created_at=row[10],
        urls=_urls.decode(row[11]) if row[11] else (),
        files=_files.decode(row[12]) if row[12] else (),
        credits_source=row[13] or "",
    )
