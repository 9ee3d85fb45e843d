"""The job history behind ``kierouter logs``: one SQLite row per finished job.

Every ``kierouter generate`` and every batch job is recorded, and a library
``Router(log=True)`` records its jobs too, in ``logs.db`` under the user's data folder
(``$KIEROUTER_HOME`` overrides it). A row holds when the job ended, its prompt, policy, served
model, attempts (model, outcome, reason, credits, task id), credits, files, job key and task
ids. Never a key, a callback URL or its token, nor a result URL: the secrets that reach an
error message are scrubbed by :func:`~kierouter._errors.redact` before they are stored.
Jobs run against an emulator on loopback are marked, so spend sums can leave them out.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from ._errors import KieRouterError, redact
from ._userdirs import data_dir

if TYPE_CHECKING:
    from ._models import Attempt, Result

__all__ = ["LOG_FILE", "History", "LogEntry", "is_emulated"]

#: The history database, inside :func:`~kierouter._userdirs.data_dir`.
LOG_FILE = "logs.db"

_T = TypeVar("_T")
_log = logging.getLogger("kierouter")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    ended_at REAL NOT NULL,
    source TEXT NOT NULL,
    batch TEXT,
    job_key TEXT NOT NULL,
    prompt TEXT NOT NULL,
    task TEXT NOT NULL,
    policy TEXT,
    served_model TEXT,
    ok INTEGER NOT NULL,
    error TEXT,
    attempts TEXT NOT NULL,
    credits REAL NOT NULL,
    files TEXT NOT NULL,
    task_ids TEXT NOT NULL,
    emulated INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_in_batch ON jobs (batch, job_key) WHERE batch IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (ended_at);
"""


def is_emulated(base_url: str | None) -> bool:
    """True when ``base_url`` is on loopback: KIE never is, an emulator always."""
    host = urlsplit(base_url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    """One recorded job, as ``kierouter logs --json`` prints it."""

    ended_at: float
    source: str
    batch: str | None
    job_key: str
    prompt: str
    task: str
    policy: str | None
    served_model: str | None
    ok: bool
    error: str | None
    attempts: list[dict[str, Any]]
    credits: float
    files: list[str]
    task_ids: list[str]
    emulated: bool


def _attempts(attempts: Iterable[Attempt]) -> list[dict[str, Any]]:
    return [
        {
            "model": a.model,
            "outcome": a.outcome,
            "reason": redact(a.reason or ""),
            "credits": a.credits,
            "task_id": a.task_id,
        }
        for a in attempts
    ]


class History:
    """The history database at ``path`` (default: ``logs.db`` in the user's data folder)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else data_dir() / LOG_FILE

    def __repr__(self) -> str:
        return f"<History {str(self.path)!r}>"

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.executescript(_SCHEMA)
            with db:
                yield db
        finally:
            db.close()

    # -- writing -----------------------------------------------------------------------------------

    def add(self, entries: Sequence[LogEntry]) -> None:
        """Record ``entries``; a batch job already recorded is updated (a resume finished it)."""
        rows = [
            (
                e.ended_at, e.source, e.batch, e.job_key, e.prompt, e.task, e.policy,
                e.served_model, int(e.ok), redact(e.error) if e.error else None,
                json.dumps(e.attempts), e.credits, json.dumps(e.files), json.dumps(e.task_ids),
                int(e.emulated),
            )
            for e in entries
        ]  # fmt: skip
        if not rows:
            return
        with self._db() as db:
            db.executemany(
                "INSERT INTO jobs (ended_at, source, batch, job_key, prompt, task, policy, "
                "served_model, ok, error, attempts, credits, files, task_ids, emulated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (batch, job_key) WHERE batch IS NOT NULL DO UPDATE SET "
                "ended_at = excluded.ended_at, served_model = excluded.served_model, "
                "ok = excluded.ok, error = excluded.error, attempts = excluded.attempts, "
                "credits = excluded.credits, files = excluded.files, "
                "task_ids = excluded.task_ids",
                rows,
            )

    async def record(self, entries: Sequence[LogEntry]) -> None:
        """:meth:`add`, for a job that has ended: a history that cannot be written (a folder
        that cannot be made, a locked or broken database) is a warning, never the job's end,
        so a paid result or the job's own error still reaches the caller."""
        try:
            await asyncio.to_thread(self.add, entries)
        except (OSError, sqlite3.Error) as exc:
            jobs = ", ".join(e.job_key for e in entries[:3]) + (", ..." if len(entries) > 3 else "")
            _log.warning("could not record job %s in %s: %s", jobs, self.path, exc)

    @staticmethod
    def entry(
        *,
        request: Any,
        policy: str | None,
        job_key: str,
        result: Result | None = None,
        error: BaseException | None = None,
        source: str = "generate",
        emulated: bool = False,
    ) -> LogEntry:
        """The entry of one job that ended with ``result`` or ``error``."""
        # A PaidUndeliveredError carries its paid result (attempts, task ids, credits) instead
        # of an attempt trail of its own.
        paid = result if result is not None else getattr(error, "result", None)
        attempts = list(paid.attempts if paid is not None else getattr(error, "attempts", ()))
        return LogEntry(
            ended_at=time.time(),
            source=source,
            batch=None,
            job_key=job_key,
            prompt=request.prompt,
            task=str(request.kind),
            policy=policy,
            served_model=paid.served_model if paid is not None else None,
            ok=result is not None,
            error=str(error) if error is not None else None,
            attempts=_attempts(attempts),
            credits=sum(a.credits for a in attempts),
            files=[f.path for f in (paid.files if paid is not None else ())],
            task_ids=[a.task_id for a in attempts if a.task_id],
            emulated=emulated,
        )

    async def track(
        self, job: Any, run: Awaitable[_T], *, base_url: str | None, source: str = "generate"
    ) -> _T:
        """Await ``run`` (the job's run) and record how it ended; its result or error passes on.

        ``base_url`` is where the job was sent (loopback: an emulator). Jobs that end before
        anything is sent (a refused request) are not recorded.
        """
        policy = getattr(job.policy, "name", None)
        emulated = is_emulated(base_url)
        try:
            result = await run
        except KieRouterError as exc:
            if getattr(exc, "attempts", None) or getattr(exc, "result", None) is not None:
                entry = self.entry(
                    request=job.request, policy=policy, job_key=job.job_key, error=exc,
                    source=source, emulated=emulated,
                )  # fmt: skip
                await self.record([entry])
            raise
        served: Any = result
        entry = self.entry(
            request=job.request, policy=policy, job_key=job.job_key, result=served,
            source=source, emulated=emulated,
        )  # fmt: skip
        await self.record([entry])
        return result

    # -- reading -----------------------------------------------------------------------------------

    def entries(
        self,
        *,
        limit: int | None = 20,
        model: str | None = None,
        since: float | None = None,
    ) -> list[LogEntry]:
        """The latest entries, newest first; ``model`` matches the served model or its family
        prefix (``seedream`` matches ``seedream/...``), ``since`` is a Unix time."""
        if not self.path.exists():
            return []
        where, params = self._filters(model, since)
        sql = (
            "SELECT ended_at, source, batch, job_key, prompt, task, policy, served_model, ok, "
            "error, attempts, credits, files, task_ids, emulated FROM jobs"
            f"{where} ORDER BY ended_at DESC, id DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._db() as db:
            rows = db.execute(sql, params).fetchall()
        return [
            LogEntry(
                ended_at=r[0], source=r[1], batch=r[2], job_key=r[3], prompt=r[4], task=r[5],
                policy=r[6], served_model=r[7], ok=bool(r[8]), error=r[9],
                attempts=json.loads(r[10]), credits=r[11], files=json.loads(r[12]),
                task_ids=json.loads(r[13]), emulated=bool(r[14]),
            )
            for r in rows
        ]  # fmt: skip

    def spend(
        self, *, model: str | None = None, since: float | None = None, emulated: bool = False
    ) -> list[dict[str, Any]]:
        """Credits and jobs by local day and served model, oldest day first. Emulator jobs are
        counted only with ``emulated=True``."""
        if not self.path.exists():
            return []
        where, params = self._filters(model, since)
        if not emulated:
            where += (" AND" if where else " WHERE") + " emulated = 0"
        sql = (
            "SELECT date(ended_at, 'unixepoch', 'localtime') AS day, "
            "coalesce(served_model, '(failed)'), count(*), sum(credits) FROM jobs"
            f"{where} GROUP BY day, 2 ORDER BY day, 2"
        )
        with self._db() as db:
            rows = db.execute(sql, params).fetchall()
        return [{"day": r[0], "model": r[1], "jobs": r[2], "credits": r[3]} for r in rows]

    def count_emulated(self, *, model: str | None = None, since: float | None = None) -> int:
        """How many recorded jobs ran against an emulator."""
        if not self.path.exists():
            return 0
        where, params = self._filters(model, since)
        where += (" AND" if where else " WHERE") + " emulated = 1"
        with self._db() as db:
            (count,) = db.execute(f"SELECT count(*) FROM jobs{where}", params).fetchone()
        return int(count)

    @staticmethod
    def _filters(model: str | None, since: float | None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if model:
            clauses.append("(served_model = ? OR served_model LIKE ? ESCAPE '\\')")
            escaped = model.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params += [model, f"%{escaped}%"]
        if since is not None:
            clauses.append("ended_at >= ?")
            params.append(since)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
