"""The callback spool: callbacks one process accepted for jobs another process waits for.

Under ``uvicorn --workers N`` (or several routers on one machine behind one public URL) KIE's
callback for a job reaches whichever worker accepted the connection, not necessarily the one
whose job is waiting. A receiver configured with a spool accepts such a callback (its token is
an HMAC of the job key under the shared ``token_secret``, so any worker can check it) and writes
it here; the receiver of the process that waits for the job reads the spool every
``interval`` seconds and wakes the job (:class:`SpoolFollower`).

The spool is one SQLite file in WAL mode: many readers and one writer at a time across the
processes of one machine (not across machines: SQLite over a network file system is not safe).
A row is ``(id, job_key, task_id, received_at, body)``; ``(job_key, task_id)`` is unique, so
KIE's retries of one callback make one row. Readers never delete: a row is a hint for whoever
waits for its job, now or after a restart (a resumed batch), and rows older than ``retention``
are pruned by the writers. The lead may later back this with the router's journal; the
receiver needs only :meth:`CallbackSpool.put` and :meth:`CallbackSpool.read`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from ._errors import redact

__all__ = ["DEFAULT_RETENTION", "CallbackSpool", "SpoolFollower", "SpooledCallback"]

log = logging.getLogger("kierouter.webhooks")

DEFAULT_RETENTION = 7 * 86_400.0
"""Seconds a spooled callback is kept (a resumed batch may ask for it days later)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_key TEXT NOT NULL,
    task_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (job_key, task_id)
)
"""
_PRUNE_EVERY = 200  # inserts between two prunes


SpooledCallback = tuple[int, str, str, Any]
"""One spooled callback: ``(id, job_key, task_id, body)``."""


def _set_up(conn: sqlite3.Connection) -> None:
    """WAL mode and the table. SQLite answers "database is locked" at once, without waiting out
    the busy timeout, when two processes switch a new file to WAL at the same moment: retry."""
    for attempt in range(100):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(_SCHEMA)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.02)


class CallbackSpool:
    """A SQLite callback spool shared by the processes of one machine. Strictly private.

    Thread-safe (one connection behind a lock); every method blocks on SQLite, so async code
    calls it through ``asyncio.to_thread``.
    """

    def __init__(self, path: str | os.PathLike[str], *, retention: float = DEFAULT_RETENTION):
        self.path = Path(path)
        self.retention = retention
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._inserts = 0

    def __repr__(self) -> str:
        return f"<CallbackSpool {self.path}>"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout = 10000")
            _set_up(conn)
            self._conn = conn
        return self._conn

    def put(self, job_key: str, task_id: str, body: Any) -> bool:
        """Store one callback; False when the same (job, task) is already there."""
        text = json.dumps(body, separators=(",", ":"))
        with self._lock:
            conn = self._connection()
            cursor = conn.execute(
                "INSERT OR IGNORE INTO callbacks (job_key, task_id, received_at, body) "
                "VALUES (?, ?, ?, ?)",
                (job_key, task_id, time.time(), text),
            )
            self._inserts += 1
            if self._inserts % _PRUNE_EVERY == 1:
                conn.execute(
                    "DELETE FROM callbacks WHERE received_at < ?", (time.time() - self.retention,)
                )
            return cursor.rowcount == 1

    def last_id(self) -> int:
        """The newest row's id (0 for an empty spool)."""
        with self._lock:
            row = (
                self._connection().execute("SELECT COALESCE(MAX(id), 0) FROM callbacks").fetchone()
            )
        return int(row[0])

    def read(self, after: int, keys: Collection[str] = ()) -> list[SpooledCallback]:
        """Rows newer than id ``after``, plus every row for the job keys in ``keys``."""
        query = "SELECT id, job_key, task_id, body FROM callbacks WHERE id > ?"
        args: list[Any] = [after]
        if keys:
            query += " OR job_key IN (SELECT value FROM json_each(?))"
            args.append(json.dumps(list(keys)))
        with self._lock:
            rows = self._connection().execute(query + " ORDER BY id", args).fetchall()
        return [(int(i), str(job), str(task), json.loads(body)) for i, job, task, body in rows]

    def close(self) -> None:
        """Close the connection (the next call opens it again)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class SpoolFollower:
    """Reads the spool for the jobs this process waits for. Strictly private.

    ``watch(job_key)`` is called when a job starts waiting; it starts a reader task on the
    running loop that reads every ``interval`` seconds while any job waits, and hands each
    row for a waiting job to ``deliver(job_key, task_id, body)`` (which ignores duplicates).
    """

    def __init__(
        self,
        spool: CallbackSpool,
        waiting: Callable[[], Collection[str]],
        deliver: Callable[[str, str, Any], None],
        *,
        interval: float = 0.25,
    ) -> None:
        self.spool = spool
        self.interval = interval
        self._waiting = waiting
        self._deliver = deliver
        self._fresh: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def watch(self, job_key: str) -> None:
        """``job_key`` waits from now on: look for rows spooled for it before, then follow."""
        self._fresh.add(job_key)
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._follow(), name="kierouter-spool")

    async def _follow(self) -> None:
        after = await asyncio.to_thread(self.spool.last_id)
        while True:
            waiting = set(self._waiting())
            if not waiting:
                return
            fresh, self._fresh = self._fresh & waiting, set()
            try:
                rows = await asyncio.to_thread(self.spool.read, after, fresh)
            except sqlite3.Error as exc:
                self._fresh |= fresh  # look for them again next time
                log.warning(
                    "cannot read the callback spool %s: %s", self.spool.path, redact(str(exc))
                )
                rows = []
            for row_id, job_key, task_id, body in rows:
                after = max(after, row_id)
                if job_key in waiting:
                    self._deliver(job_key, task_id, body)
            await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        """Stop following (a later ``watch`` starts again)."""
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
