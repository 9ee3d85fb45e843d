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
from kierouter._money import allows_another_create

from ._backend import AttemptRecord, JobRecord, JournalBackend
from ._schema import (
    ADDED_COLUMNS,
    ATTEMPT_COLUMNS,
    JOB_COLUMNS,
    OPEN_PHASES,
    SCHEMA,
    SCHEMA_VERSION,
    attempt_record,
    job_record,
    result_decoder,
)
from ._states import JOB_STATES, JobState, JournalStateError, check_transition

if TYPE_CHECKING:
    import os
    import sqlite3

__all__ = ["SqliteJournal"]


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
            self._db.executescript(SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(attempts)")}
            for name, kind in ADDED_COLUMNS:
                if name not in have:  # a journal written by an older kierouter
                    self._db.execute(f"ALTER TABLE attempts ADD COLUMN {name} {kind}")
        if self.get_meta("schema_version") != SCHEMA_VERSION:
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
        args: list[Any] = [key, *OPEN_PHASES]
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

    def job(self, key: str) -> JobRecord | None:
        """One job, or ``None``."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE key = ?",
                (key,),
            ).fetchone()
        return None if row is None else job_record(row)

    def jobs(self, states: Sequence[JobState] | None = None) -> list[JobRecord]:
        """Jobs in insertion order, optionally only those in ``states``."""
        sql = f"SELECT {JOB_COLUMNS} FROM jobs"
        args: tuple[Any, ...] = ()
        if states is not None:
            sql += f" WHERE state IN ({', '.join('?' * len(states))})"
            args = tuple(states)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return [job_record(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Number of jobs per state (every state present)."""
        out: dict[str, int] = dict.fromkeys(JOB_STATES, 0)
        with self._lock:
            for state, n in self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
                out[state] = int(n)
        return out

    def attempts(self, key: str | None = None) -> list[AttemptRecord]:
        """Attempt records of one job (or all), in the order written."""
        sql = f"SELECT {ATTEMPT_COLUMNS} FROM attempts"
        args: tuple[Any, ...] = ()
        if key is not None:
            sql += " WHERE job_key = ?"
            args = (key,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at, job_key, n", args).fetchall()
        return [attempt_record(row) for row in rows]

    def task_owner(self, task_id: str) -> str | None:
        """The job that created ``task_id`` (``None`` when no attempt names it)."""
        with self._lock:
            row = self._db.execute(
                "SELECT job_key FROM attempts WHERE task_id = ? LIMIT 1", (task_id,)
            ).fetchone()
        return None if row is None else str(row[0])

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
        """An attempt ended without serving the job, or a watched task ended: the record
        naming it is updated (credits counted once); the job goes back to ``planned`` only
        where the money rule allows another create."""
        with self._tx() as db:
            watched = self._end(db, key, attempt)
            if watched or attempt.outcome in ("skipped", "ambiguous"):
                return
            if not allows_another_create(attempt.outcome, attempt.task_id):
                return
            if self._state(db, key) in ("submitting", "submitted"):
                self._move(db, key, "planned", error=attempt.reason)

    def _end(self, db: sqlite3.Connection, key: str, attempt: Attempt) -> bool:
        """Write ``attempt`` onto the record naming its task (or its open create), adding one
        only when there is none, and add the change in credits to the job. Returns whether the
        record was a watched task's."""
        now = time.time()
        phase = "watching" if attempt.outcome == "hedged" else "ended"
        found = None
        if attempt.task_id:
            found = db.execute(
                "SELECT n, phase, credits FROM attempts WHERE job_key = ? AND task_id = ? "
                "ORDER BY n DESC LIMIT 1",
                (key, attempt.task_id),
            ).fetchone()
        if found is None and attempt.outcome != "skipped":
            open_ = self._open_attempt(db, key, attempt.model)
            if open_ is not None and (open_[1] is None or open_[1] == attempt.task_id):
                found = (open_[0], "open", 0.0)
        values = (
            phase,
            attempt.outcome,
            attempt.reason,
            attempt.credits,
            attempt.seed,
            attempt.task_id,
            msgspec.json.encode(attempt.urls).decode() if attempt.urls else None,
            msgspec.json.encode(attempt.files).decode() if attempt.files else None,
            attempt.credits_source,
        )
        if found is None:
            db.execute(
                "INSERT INTO attempts (job_key, n, attempt_no, model, phase, outcome, reason, "
                "credits, seed, task_id, urls, files, credits_source, created_at, updated_at) "
                "VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, self._next_n(db, key), attempt.model, *values, now, now),
            )
            delta = attempt.credits
        else:
            db.execute(
                "UPDATE attempts SET phase = ?, outcome = ?, reason = ?, credits = ?, seed = ?, "
                "task_id = COALESCE(?, task_id), urls = ?, files = ?, credits_source = ?, "
                "updated_at = ? WHERE job_key = ? AND n = ?",
                (*values, now, key, found[0]),
            )
            delta = attempt.credits - float(found[2] or 0.0)
        db.execute(
            "UPDATE jobs SET credits = credits + ?, updated_at = ? WHERE key = ?",
            (delta, now, key),
        )
        return found is not None and found[1] == "watching"

    def record_result(self, key: str, result: Result) -> None:
        """``submitted|planned → succeeded|undelivered``: the serving attempt and the result,
        in one transaction."""
        serving = next(
            (a for a in reversed(result.attempts) if a.outcome in ("success", "undelivered")),
            None,
        )
        state: JobState = "undelivered" if result.delivery == "undelivered" else "succeeded"
        with self._tx() as db:
            current = self._state(db, key)
            task_id = serving.task_id if serving is not None else None
            known = (
                task_id is not None
                and db.execute(
                    "SELECT 1 FROM attempts WHERE job_key = ? AND task_id = ?", (key, task_id)
                ).fetchone()
            )
            if not known:
                raise JournalStateError(
                    key, current, state, "no attempt of this job names the serving task"
                )
            if serving is not None:
                self._end(db, key, serving)
            self._move(
                db,
                key,
                state,
                result=msgspec.json.encode(result).decode(),
                model=result.served_model,
                task_id=result.task_id,
                error=result.delivery_error or None,
            )

    def mark_downloaded(self, key: str, files: Sequence[ImageFile]) -> None:
        """``succeeded|undelivered → downloaded`` with the files on disk."""
        with self._tx() as db:
            row = db.execute("SELECT result FROM jobs WHERE key = ?", (key,)).fetchone()
            fields: dict[str, Any] = {"files": msgspec.json.encode(tuple(files)).decode()}
            if row is not None and row[0]:
                result = result_decoder.decode(row[0])
                result = msgspec.structs.replace(
                    result, files=tuple(files), delivery="downloaded", delivery_error=""
                )
                fields["result"] = msgspec.json.encode(result).decode()
            self._move(db, key, "downloaded", error=None, **fields)

    def mark_failed(self, key: str, error: str) -> None:
        """``planned → failed`` (a job with a live or paid task never fails)."""
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
        """``unknown → planned`` (an operator's explicit decision; may pay twice). The lost
        creates become ``requeued``: still counted as reaching KIE, no longer holding the job."""
        with self._tx() as db:
            self._move(db, key, "planned", error=None)
            db.execute(
                "UPDATE attempts SET phase = 'requeued', outcome = 'ambiguous', "
                "reason = 'answer lost; requeued by the operator', updated_at = ? "
                "WHERE job_key = ? AND task_id IS NULL AND phase != 'requeued' "
                "AND (phase IN ('intent', 'ambiguous') OR outcome = 'ambiguous')",
                (time.time(), key),
            )
