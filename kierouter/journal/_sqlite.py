"""The embedded journal: one SQLite file in WAL mode with ``synchronous=FULL``.

Every method is one ``BEGIN IMMEDIATE`` transaction committed before it returns, so the intent
of a create is on disk before the POST and the task id right after the answer. WAL lets
``kierouter batch status`` read while a batch writes. :mod:`sqlite3` is imported when a journal is
opened, never by ``import kierouter``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from kierouter._models import Attempt, ImageFile, Result

from ._backend import AttemptRecord, JobRecord, JournalBackend
from ._states import JOB_STATES, JobState, check_transition

if TYPE_CHECKING:
    import os
    import sqlite3

__all__ = ["SqliteJournal"]

SCHEMA_VERSION = 1

_SCHEMA = """
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
    PRIMARY KEY (job_key, n)
);
CREATE INDEX IF NOT EXISTS attempts_task ON attempts (task_id);
"""

_JOB_COLUMNS = "key, seq, state, spec, model, attempt_no, task_id, credits, result, files, error, "
_JOB_COLUMNS += "updated_at"
_ATTEMPT_COLUMNS = (
    "job_key, n, attempt_no, model, phase, task_id, outcome, reason, credits, seed, created_at"
)
_OPEN = ("intent", "submitted", "ambiguous")
_result_decoder = msgspec.json.Decoder(Result)
_files_decoder = msgspec.json.Decoder(tuple[ImageFile, ...])


class SqliteJournal(JournalBackend):
    """A journal in one SQLite file (created if missing). Safe to share across coroutines of one
    event loop and across threads; several processes may read it while one writes.

    Args:
        path: the database file (``DIR/journal.sqlite`` for a batch).
        synchronous: ``"FULL"`` (default: every commit is fsynced) or ``"NORMAL"`` (with WAL,
            a power loss may drop the last commits but never corrupts the file).
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL") -> None:
        import sqlite3

        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            from kierouter._errors import ConfigurationError

            raise ConfigurationError("synchronous must be FULL, NORMAL or EXTRA")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._db.executescript(_SCHEMA)
        if self.get_meta("schema_version") is None:
            self.set_meta("schema_version", SCHEMA_VERSION)

    def __repr__(self) -> str:
        return f"<SqliteJournal {self.path}>"

    # -- plumbing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (the file stays)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _state(self, db: sqlite3.Connection, key: str) -> str:
        row = db.execute("SELECT state FROM jobs WHERE key = ?", (key,)).fetchone()
        if row is None:
            from kierouter._errors import ConfigurationError

            raise ConfigurationError(f"the journal has no job {key!r}")
        state: str = row[0]
        return state

    def _move(self, db: sqlite3.Connection, key: str, wanted: JobState, **fields: Any) -> None:
        check_transition(key, self._state(db, key), wanted)
        sets = ", ".join(f"{name} = ?" for name in fields)
        sets = f"state = ?, updated_at = ?{', ' + sets if sets else ''}"
        db.execute(
            f"UPDATE jobs SET {sets} WHERE key = ?",
            (wanted, time.time(), *fields.values(), key),
        )

    @staticmethod
    def _open_attempt(
        db: sqlite3.Connection, key: str, model: str | None = None
    ) -> tuple[int, str | None] | None:
        sql = "SELECT n, task_id FROM attempts WHERE job_key = ? AND phase IN (?, ?, ?)"
        args: list[Any] = [key, *_OPEN]
        if model is not None:
            sql += " AND model = ?"
            args.append(model)
        row = db.execute(sql + " ORDER BY n DESC LIMIT 1", args).fetchone()
        return None if row is None else (int(row[0]), row[1])

    @staticmethod
    def _next_n(db: sqlite3.Connection, key: str) -> int:
        row = db.execute("SELECT COALESCE(MAX(n), 0) FROM attempts WHERE job_key = ?", (key,))
        return int(row.fetchone()[0]) + 1

    # -- metadata -------------------------------------------------------------------------------

    def get_meta(self, name: str) -> Any:
        """A JSON value stored with :meth:`set_meta` (``None`` when unset)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else msgspec.json.decode(row[0])

    def set_meta(self, name: str, value: Any) -> None:
        """Store a JSON value under ``name``."""
        text = msgspec.json.encode(value).decode()
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, text),
            )

    # -- jobs -----------------------------------------------------------------------------------

    def add_jobs(self, jobs: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Insert ``(key, spec)`` pairs as ``planned``; existing keys are left alone."""
        now = time.time()
        with self._tx() as db:
            seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()[0])
            inserted = 0
            for key, spec in jobs:
                seq += 1
                cursor = db.execute(
                    "INSERT OR IGNORE INTO jobs (key, seq, state, spec, created_at, updated_at) "
                    "VALUES (?, ?, 'planned', ?, ?, ?)",
                    (key, seq, msgspec.json.encode(dict(spec)).decode(), now, now),
                )
                inserted += cursor.rowcount
        return inserted

    @staticmethod
    def _job_record(row: Sequence[Any]) -> JobRecord:
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
            result=_result_decoder.decode(result) if result else None,
            files=_files_decoder.decode(files) if files else (),
            error=error,
            updated_at=at,
        )

    def job(self, key: str) -> JobRecord | None:
        """One job, or ``None``."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE key = ?",
                (key,),
            ).fetchone()
        return None if row is None else self._job_record(row)

    def jobs(self, states: Sequence[JobState] | None = None) -> list[JobRecord]:
        """Jobs in insertion order, optionally only those in ``states``."""
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs"
        args: tuple[Any, ...] = ()
        if states is not None:
            sql += f" WHERE state IN ({', '.join('?' * len(states))})"
            args = tuple(states)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return [self._job_record(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Number of jobs per state (every state present)."""
        out: dict[str, int] = dict.fromkeys(JOB_STATES, 0)
        with self._lock:
            for state, n in self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
                out[state] = int(n)
        return out

    def attempts(self, key: str | None = None) -> list[AttemptRecord]:
        """Attempt records of one job (or all), in the order written."""
        sql = f"SELECT {_ATTEMPT_COLUMNS} FROM attempts"
        args: tuple[Any, ...] = ()
        if key is not None:
            sql += " WHERE job_key = ?"
            args = (key,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at, job_key, n", args).fetchall()
        return [
            AttemptRecord(
                job_key=r[0],
                n=r[1],
                attempt_no=r[2],
                model=r[3],
                phase=r[4],
                task_id=r[5],
                outcome=r[6],
                reason=r[7],
                credits=r[8],
                seed=r[9],
                created_at=r[10],
            )
            for r in rows
        ]

    def spent(self) -> float:
        """Credits charged so far (ended attempts)."""
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(SUM(credits), 0) FROM attempts WHERE phase = 'ended'"
            ).fetchone()
        return float(row[0])

    # -- the router's records -------------------------------------------------------------------

    def begin_attempt(self, key: str, attempt_no: int, model: str, body_sha256: str) -> None:
        """``planned → submitting``: the create's intent, durable before the POST."""
        now = time.time()
        with self._tx() as db:
            self._move(db, key, "submitting", model=model, attempt_no=attempt_no, task_id=None)
            db.execute(
                "INSERT INTO attempts (job_key, n, attempt_no, model, phase, body_sha256, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, 'intent', ?, ?, ?)",
                (key, self._next_n(db, key), attempt_no, model, body_sha256, now, now),
            )

    def attempt_submitted(self, key: str, attempt_no: int, model: str, task_id: str) -> None:
        """``submitting|unknown → submitted`` with the task id (idempotent for the same id)."""
        with self._tx() as db:
            row = db.execute("SELECT state, task_id FROM jobs WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] == "submitted" and row[1] == task_id:
                return
            self._move(db, key, "submitted", model=model, attempt_no=attempt_no, task_id=task_id)
            found = self._open_attempt(db, key, model)
            if found is None:
                now = time.time()
                db.execute(
                    "INSERT INTO attempts (job_key, n, attempt_no, model, phase, task_id, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, 'submitted', ?, ?, ?)",
                    (key, self._next_n(db, key), attempt_no, model, task_id, now, now),
                )
            else:
                db.execute(
                    "UPDATE attempts SET phase = 'submitted', task_id = ?, updated_at = ? "
                    "WHERE job_key = ? AND n = ?",
                    (task_id, time.time(), key, found[0]),
                )

    def attempt_ambiguous(self, key: str, attempt_no: int, model: str, error: str) -> None:
        """``submitting → unknown``: the create was sent but its answer was lost."""
        with self._tx() as db:
            self._move(db, key, "unknown", error=error)
            found = self._open_attempt(db, key, model)
            if found is not None:
                db.execute(
                    "UPDATE attempts SET phase = 'ambiguous', reason = ?, updated_at = ? "
                    "WHERE job_key = ? AND n = ?",
                    (error, time.time(), key, found[0]),
                )

    def end_attempt(self, key: str, attempt: Attempt) -> None:
        """An attempt ended; one that did not serve the job (and was not ambiguous) moves the
        job back to ``planned``."""
        now = time.time()
        with self._tx() as db:
            found = None
            if attempt.outcome != "skipped":
                found = self._open_attempt(db, key, attempt.model)
            values = (
                attempt.outcome,
                attempt.reason,
                attempt.credits,
                attempt.seed,
                attempt.task_id,
            )
            if found is None:
                db.execute(
                    "INSERT INTO attempts (job_key, n, model, phase, outcome, reason, credits, "
                    "seed, task_id, created_at, updated_at) "
                    "VALUES (?, ?, ?, 'ended', ?, ?, ?, ?, ?, ?, ?)",
                    (key, self._next_n(db, key), attempt.model, *values, now, now),
                )
            else:
                db.execute(
                    "UPDATE attempts SET phase = 'ended', outcome = ?, reason = ?, credits = ?, "
                    "seed = ?, task_id = COALESCE(?, task_id), updated_at = ? "
                    "WHERE job_key = ? AND n = ?",
                    (*values, now, key, found[0]),
                )
            db.execute(
                "UPDATE jobs SET credits = credits + ?, updated_at = ? WHERE key = ?",
                (attempt.credits, now, key),
            )
            if attempt.outcome in ("skipped", "success", "ambiguous"):
                return
            state = self._state(db, key)
            if state in ("submitting", "submitted"):
                self._move(db, key, "planned", error=attempt.reason)

    def record_result(self, key: str, result: Result) -> None:
        """``submitted → succeeded`` with the result."""
        with self._tx() as db:
            self._move(
                db,
                key,
                "succeeded",
                result=msgspec.json.encode(result).decode(),
                model=result.served_model,
                error=None,
            )

    def mark_downloaded(self, key: str, files: Sequence[ImageFile]) -> None:
        """``succeeded → downloaded`` with the files on disk."""
        with self._tx() as db:
            self._move(db, key, "downloaded", files=msgspec.json.encode(tuple(files)).decode())

    def mark_failed(self, key: str, error: str) -> None:
        """``planned|unknown|submitted|succeeded → failed``."""
        with self._tx() as db:
            self._move(db, key, "failed", error=error)

    def mark_unknown(self, key: str, reason: str) -> None:
        """``submitting → unknown`` (the process that sent the create is gone)."""
        with self._tx() as db:
            self._move(db, key, "unknown", error=reason)
            found = self._open_attempt(db, key)
            if found is not None:
                db.execute(
                    "UPDATE attempts SET phase = 'ambiguous', reason = ?, updated_at = ? "
                    "WHERE job_key = ? AND n = ?",
                    (reason, time.time(), key, found[0]),
                )

    def requeue_unknown(self, key: str) -> None:
        """``unknown → planned`` (an operator's explicit decision; may pay twice)."""
        with self._tx() as db:
            self._move(db, key, "planned", error=None)
            found = self._open_attempt(db, key)
            if found is not None:
                db.execute(
                    "UPDATE attempts SET phase = 'ended', outcome = 'ambiguous', "
                    "reason = 'requeued by the operator', updated_at = ? "
                    "WHERE job_key = ? AND n = ?",
                    (time.time(), key, found[0]),
                )
