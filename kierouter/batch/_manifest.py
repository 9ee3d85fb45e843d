"""What a batch folder says about itself: ``manifest.jsonl`` and ``batch status``, both read
from the journal, both with settled credits."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from kierouter._errors import ConfigurationError
from kierouter.journal import AttemptRecord, JobRecord, SqliteJournal

from ._plan import USD_PER_CREDIT
from ._settings import JOURNAL_FILE, MANIFEST_FILE

__all__ = ["batch_status", "folder_of", "open_journal", "undelivered_rows", "write_manifest"]

#: states in which a job is settled for this run: nothing more happens without an operator
_DONE = ("downloaded", "undelivered", "failed")


def folder_of(out_dir: str | os.PathLike[str]) -> Path:
    """The absolute path of a batch folder."""
    return Path(out_dir).resolve()


def open_journal(out_dir: Path) -> SqliteJournal:
    """The journal of the batch in ``out_dir``, or a clear error when there is none."""
    path = out_dir / JOURNAL_FILE
    if not path.exists():
        raise ConfigurationError(f"{out_dir} holds no batch journal ({JOURNAL_FILE})")
    return SqliteJournal(path)


def _by_job(records: Iterable[AttemptRecord]) -> dict[str, list[AttemptRecord]]:
    out: dict[str, list[AttemptRecord]] = {}
    for record in records:
        out.setdefault(record.job_key, []).append(record)
    return out


def _file(path: str, sha256: str, size: int, content_type: str, out_dir: Path) -> dict[str, Any]:
    return {
        "path": os.path.relpath(path, out_dir),
        "sha256": sha256,
        "size": size,
        "content_type": content_type,
    }


def undelivered_rows(jobs: Iterable[JobRecord]) -> list[dict[str, Any]]:
    """The jobs KIE made and billed whose images are not saved, as structured rows."""
    return [
        {
            "job_key": job.key,
            "task_id": job.task_id,
            "model": job.model,
            "urls": list(job.result.urls) if job.result else [],
            "credits": job.credits,
            "reason": job.error or "",
        }
        for job in jobs
        if job.state == "undelivered"
    ]


def _line(job: JobRecord, tried: list[AttemptRecord], out_dir: Path) -> dict[str, Any]:
    spec = job.spec
    result = job.result
    files = [_file(f.path, f.sha256, f.size, f.content_type, out_dir) for f in job.files]
    attempts = [
        {
            "model": a.model,
            "outcome": a.outcome or a.phase,
            "task_id": a.task_id,
            "credits": a.credits,
            "credits_source": a.credits_source,
            "reason": a.reason,
        }
        for a in tried
        if a.outcome != "skipped"
    ]
    extras = [
        {
            "task_id": a.task_id,
            "model": a.model,
            "credits": a.credits,
            "urls": list(a.urls),
            "files": [_file(f.path, f.sha256, f.size, f.content_type, out_dir) for f in a.files],
        }
        for a in tried
        if a.outcome == "extra"
    ]
    return {
        "job_key": job.key,
        "row": spec["row"],
        "line": spec["line"],
        "id": spec["row_key"],
        "step": spec["step"],
        "prompt": spec["request"].get("prompt", ""),
        "state": job.state,
        "served_model": result.served_model if result else None,
        "task_id": result.task_id if result else None,
        "attempts": attempts,
        "task_ids": [t["task_id"] for t in attempts if t["task_id"]],
        "credits": job.credits,
        "seed": spec["request"].get("seed"),
        "delivery": result.delivery if result else None,
        "urls": list(result.urls) if result else [],
        "reason": (job.error or "") if job.state != "downloaded" else "",
        "path": files[0]["path"] if files else None,
        "sha256": files[0]["sha256"] if files else None,
        "files": files,
        "hedged": any(a.outcome in ("hedged", "extra") or a.phase == "watching" for a in tried),
        "rejected": sum(1 for a in tried if a.outcome == "rejected"),
        "extras": extras,
    }


def write_manifest(backend: SqliteJournal, out_dir: Path) -> Path:
    """Rewrite ``manifest.jsonl`` from the journal, atomically.

    One line per job that is done (``downloaded``, ``undelivered``, ``failed``) or that has any
    task KIE may bill, in the batch's order. Each line carries the job's ``state``, every
    attempt with its task id and settled credits, the served task's ``urls`` and ``delivery``,
    the files on disk with their sha256, the ``extras`` (paid images of hedged tasks) and, for
    an ``undelivered`` or ``failed`` job, the ``reason``.
    """
    attempts = _by_job(backend.attempts())
    lines = []
    for job in backend.jobs():
        tried = attempts.get(job.key, [])
        if job.state in _DONE or any(a.reached_kie for a in tried):
            lines.append(_line(job, tried, out_dir))
    path = out_dir / MANIFEST_FILE
    temp = out_dir / f".{MANIFEST_FILE}.{secrets.token_hex(4)}"
    with temp.open("wb") as out:
        for line in lines:
            out.write(msgspec.json.encode(line) + b"\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)
    return path


def batch_status(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Counts per state, settled credits, and the jobs that need attention, from the journal.

    ``undelivered`` lists the paid jobs whose images are not saved (task id, model, URLs,
    credits, reason); ``watching`` the hedged tasks still followed; ``hedged`` how many jobs had
    a task pass its deadline and went on.
    """
    folder = Path(out_dir)
    backend = open_journal(folder)
    try:
        meta = backend.get_meta("batch") or {}
        jobs = backend.jobs()
        counts = backend.counts()
        spent = backend.spent()
        attempts = backend.attempts()
        by_job = _by_job(attempts)
        return {
            "out_dir": str(folder),
            "source": meta.get("source"),
            "jobs": len(jobs),
            "rows": len({j.spec["row_key"] for j in jobs}),
            "counts": counts,
            "spent": round(spent, 6),
            "usd": round(spent * USD_PER_CREDIT, 6),
            "expected_credits": meta.get("expected_credits"),
            "budget": meta.get("budget"),
            "creates": sum(1 for a in attempts if a.reached_kie),
            "unknown": [j.key for j in jobs if j.state in ("unknown", "submitting")],
            "failed": [{"job_key": j.key, "error": j.error} for j in jobs if j.state == "failed"],
            "undelivered": undelivered_rows(jobs),
            "watching": [
                {"job_key": a.job_key, "task_id": a.task_id, "model": a.model}
                for a in attempts
                if a.phase == "watching"
            ],
            "hedged": sum(
                1
                for recs in by_job.values()
                if any(a.outcome in ("hedged", "extra") or a.phase == "watching" for a in recs)
            ),
            "complete": counts["downloaded"] == len(jobs),
        }
    finally:
        backend.close()
