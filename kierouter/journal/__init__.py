"""Durable job journals: every job a row in a state machine, every create journaled.

::

    from kierouter.journal import RouterJournal, SqliteJournal

    backend = SqliteJournal("out/journal.sqlite")
    backend.add_jobs([("row-1", {"prompt": "a red fox"})])
    async with Router(journal=RouterJournal(backend)) as router:
        await router.generate("a red fox", job_key="row-1")

The state machine (:data:`TRANSITIONS`): planned → submitting → submitted → succeeded →
downloaded, or failed / unknown / undelivered. The intent of each create is committed before the
POST and the task id right after it. A create whose answer was lost is ``unknown``: it is
reconciled by a late callback carrying the job key or a status read, never resubmitted
automatically. A job KIE made and billed whose images could not be saved is ``undelivered``:
only downloading them again moves it on. A job goes back to ``planned`` (another create) only
where :mod:`kierouter._money` allows it.

:class:`JournalBackend` is the interface a backend implements (SQLite is the embedded default;
:mod:`sqlite3` is imported only when a :class:`SqliteJournal` is opened).
"""

from __future__ import annotations

from ._adapter import CreateGate, RouterJournal
from ._backend import AttemptRecord, JobRecord, JournalBackend
from ._sqlite import SqliteJournal
from ._states import (
    JOB_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    JobState,
    JournalStateError,
    check_transition,
)

__all__ = [
    "JOB_STATES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "AttemptRecord",
    "CreateGate",
    "JobRecord",
    "JobState",
    "JournalBackend",
    "JournalStateError",
    "RouterJournal",
    "SqliteJournal",
    "check_transition",
]
