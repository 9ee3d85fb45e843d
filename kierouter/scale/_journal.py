"""A batch's journal in PostgreSQL: the SQLite journal's rules, one schema per batch.

:class:`PostgresJournal` is :class:`~kierouter.journal.SqliteJournal` on a psycopg connection: the
same SQL, the same state machine, the same money rules (the intent of a create is committed before
the POST; an ambiguous create is ``unknown`` and never resent). Only the plumbing differs: ``?``
placeholders become ``%s``, and each transaction locks the job row it moves (``SELECT ... FOR
UPDATE``), so two workers can never move one job at once. Every batch lives in a schema of its own
(``kr_<batch id>``), so its tables and SQL are the SQLite journal's unchanged.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from kierouter._errors import ConfigurationError
from kierouter.journal import SqliteJournal
from kierouter.journal._schema import ADDED_COLUMNS, SCHEMA, SCHEMA_VERSION

__all__ = ["PostgresJournal", "batch_schema"]

_NAME = re.compile(r"^[a-z0-9_]{1,40}$")


def batch_schema(batch_id: str) -> str:
    """The Postgres schema that holds one batch's tables."""
    if not _NAME.match(batch_id):
        raise ConfigurationError(f"batch id {batch_id!r} must be 1-40 characters of a-z, 0-9 and _")
    return f"kr_{batch_id}"


def _pg_sql(sql: str) -> str:
    """SQLite's dialect of the journal's statements, as PostgreSQL's."""
    if sql.startswith("BEGIN"):
        return "BEGIN"
    if sql.startswith("INSERT OR IGNORE"):
        sql = "INSERT" + sql[len("INSERT OR IGNORE") :] + " ON CONFLICT DO NOTHING"
    return sql.replace("?", "%s")


_PG_SCHEMA = (
    SCHEMA.replace(" REAL", " DOUBLE PRECISION")
    .replace("seed INTEGER", "seed BIGINT")
    .replace("seq INTEGER", "seq BIGINT")
)


class _Cursor:
    """What the SQLite journal reads from a cursor: rows and ``rowcount``."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self.rowcount: int = cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall()) if self._cursor.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class _Connection:
    """A psycopg connection that takes the SQLite journal's statements."""

    def __init__(self, url: str, schema: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self._conn.execute(f'SET search_path TO "{schema}"')

    def execute(self, sql: str, args: Sequence[Any] = ()) -> _Cursor:
        return _Cursor(self._conn.execute(_pg_sql(sql), tuple(args)))

    def close(self) -> None:
        self._conn.close()


class PostgresJournal(SqliteJournal):
    """A batch journal in PostgreSQL, shared by every worker of the batch.

    Args:
        url: ``postgresql://user@host:port/database``.
        batch_id: the batch (its tables live in schema ``kr_<batch_id>``).

    Use it like the SQLite journal, from the library too:
    ``Router(journal=RouterJournal(PostgresJournal(url, "b1")))``. psycopg is imported when a
    journal is opened (``pip install 'kierouter[scale]'``).
    """

    def __init__(self, url: str, batch_id: str) -> None:
        self.url = url
        self.batch_id = batch_id
        self.schema = batch_schema(batch_id)
        self._lock = threading.RLock()
        self._db = _Connection(url, self.schema)  # type: ignore[assignment]
        with self._lock:
            # one statement at a time: psycopg sends each as its own command
            self._db.execute("SELECT pg_advisory_lock(hashtext(?))", (self.schema,))
            try:
                for statement in _PG_SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                # which workflow runs each row now (a resume starts new ones)
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS row_workflows "
                    "(row_key TEXT PRIMARY KEY, workflow_id TEXT NOT NULL)"
                )
                # verified callbacks that reached a worker not running the job: the job's
                # worker picks them up even when the message to it was lost (it had died)
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS callbacks (job_key TEXT NOT NULL, "
                    "task_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (job_key, task_id))"
                )
                # with a pool of KIE accounts: the account of each job's last create (journaled
                # before it is sent) and of each task, so reads and re-mints after a crash use
                # the key that created it
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS job_accounts "
                    "(job_key TEXT PRIMARY KEY, account TEXT NOT NULL)"
                )
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS task_accounts "
                    "(task_id TEXT PRIMARY KEY, account TEXT NOT NULL)"
                )
                for name, kind in ADDED_COLUMNS:
                    self._db.execute(f"ALTER TABLE attempts ADD COLUMN IF NOT EXISTS {name} {kind}")
            finally:
                self._db.execute("SELECT pg_advisory_unlock(hashtext(?))", (self.schema,))
        if self.get_meta("schema_version") != SCHEMA_VERSION:
            self.set_meta("schema_version", SCHEMA_VERSION)

    def __repr__(self) -> str:
        return f"<PostgresJournal {self.schema}>"

    def row_workflow(self, row_key: str) -> str | None:
        """The id of the workflow that runs (or ran) the row last, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT workflow_id FROM row_workflows WHERE row_key = ?", (row_key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def set_row_workflow(self, row_key: str, workflow_id: str) -> None:
        """Record the workflow that runs the row from now on."""
        with self._lock:
            self._db.execute(
                "INSERT INTO row_workflows (row_key, workflow_id) VALUES (?, ?) "
                "ON CONFLICT (row_key) DO UPDATE SET workflow_id = excluded.workflow_id",
                (row_key, workflow_id),
            )

    def set_job_account(self, job_key: str, account: str) -> None:
        """The pool account ``job_key``'s next create is sent with (before it is sent)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO job_accounts (job_key, account) VALUES (?, ?) "
                "ON CONFLICT (job_key) DO UPDATE SET account = excluded.account",
                (job_key, account),
            )

    def set_task_account(self, task_id: str, account: str) -> None:
        """The pool account that created ``task_id``."""
        with self._lock:
            self._db.execute(
                "INSERT INTO task_accounts (task_id, account) VALUES (?, ?) "
                "ON CONFLICT (task_id) DO NOTHING",
                (task_id, account),
            )

    def account_of_task(self, task_id: str) -> str | None:
        """The account that created ``task_id``: as recorded, else its job's last create's
        (a worker that died between the create and its record)."""
        with self._lock:
            row = self._db.execute(
                "SELECT account FROM task_accounts WHERE task_id = ?", (task_id,)
            ).fetchone()
            if row is None:
                row = self._db.execute(
                    "SELECT a.account FROM job_accounts a JOIN jobs j ON j.key = a.job_key "
                    "WHERE j.task_id = ? OR a.job_key IN "
                    "(SELECT job_key FROM attempts WHERE task_id = ?) LIMIT 1",
                    (task_id, task_id),
                ).fetchone()
        return None if row is None else str(row[0])

    def job_accounts(self) -> dict[str, str]:
        """``{job_key: account}`` of every job created through a pool."""
        with self._lock:
            rows = self._db.execute("SELECT job_key, account FROM job_accounts").fetchall()
        return {str(k): str(a) for k, a in rows}

    def withdraw_create(self, key: str, reason: str) -> bool:
        """``submitting → planned`` for a create KIE refused with a 429 (no task was made, so
        another create is allowed): its intent is ended as ``skipped`` — not an attempt that
        counts — with ``reason``. False (nothing changed) unless the job is ``submitting`` on an
        intent that names no task."""
        with self._tx() as db:
            if self._state(db, key) != "submitting":
                return False
            found = self._open_attempt(db, key)
            if found is None or found[1] is not None:
                return False
            db.execute(
                "UPDATE attempts SET phase = 'ended', outcome = 'skipped', reason = ?, "
                "updated_at = ? WHERE job_key = ? AND n = ? AND phase = 'intent'",
                (reason, time.time(), key, found[0]),
            )
            self._move(db, key, "planned", error=reason)
            return True

    def put_callback(self, job_key: str, task_id: str, body: Any) -> None:
        """Keep a verified callback for ``job_key`` (once per task)."""
        import msgspec

        with self._lock:
            self._db.execute(
                "INSERT INTO callbacks (job_key, task_id, body) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (job_key, task_id, msgspec.json.encode(body).decode()),
            )

    def callbacks_for(self, job_keys: Sequence[str]) -> list[tuple[str, str, Any]]:
        """``(job_key, task_id, body)`` of the kept callbacks of these jobs."""
        import msgspec

        if not job_keys:
            return []
        with self._lock:
            rows = self._db.execute(
                f"SELECT job_key, task_id, body FROM callbacks WHERE job_key IN "
                f"({', '.join('?' * len(job_keys))})",
                tuple(job_keys),
            ).fetchall()
        return [(str(k), str(t), msgspec.json.decode(b)) for k, t, b in rows]

    def _state(self, db: Any, key: str) -> str:
        # FOR UPDATE: the job's row stays locked until this transaction ends, so a second
        # worker's move of the same job waits and then sees this one's result.
        row = db.execute("SELECT state FROM jobs WHERE key = ? FOR UPDATE", (key,)).fetchone()
        if row is None:
            raise ConfigurationError(f"the journal has no job {key!r}")
        state: str = row[0]
        return state
