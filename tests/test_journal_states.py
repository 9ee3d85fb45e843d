"""The journal's state machine: legal paths, refused transitions, durability settings."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from kierouter import Attempt, ImageFile, Result
from kierouter.journal import (
    JOB_STATES,
    TRANSITIONS,
    JournalStateError,
    SqliteJournal,
    check_transition,
)


@pytest.fixture
def journal(tmp_path: Path) -> SqliteJournal:
    backend = SqliteJournal(tmp_path / "journal.sqlite")
    backend.add_jobs([("row-1", {"prompt": "a fox"}), ("row-2", {"prompt": "a cat"})])
    return backend


def _result(task_id: str, credits: float = 3.5) -> Result:
    attempt = Attempt(model="m", outcome="success", task_id=task_id, credits=credits)
    return Result(served_model="m", attempts=(attempt,), credits=credits, job_key="row-1")


#: The allowed moves, written out by hand: the table in kierouter.journal must equal this.
#: Each is a reason a job may move; every pair not here is refused (a wrongly added
#: ``succeeded → planned`` or ``submitted → submitting`` would let a job pay twice).
ALLOWED = {
    ("planned", "submitting"),  # the intent of a create is durable
    ("planned", "failed"),  # gave up with no live task
    ("planned", "succeeded"),  # a watched (hedged) task served the job
    ("planned", "undelivered"),  # ... and could not be saved
    ("submitting", "submitted"),  # KIE returned the task id
    ("submitting", "unknown"),  # the answer was lost
    ("submitting", "planned"),  # KIE refused the create: no task
    ("unknown", "submitted"),  # a callback or status read named the task
    ("unknown", "planned"),  # the operator requeued it
    ("submitted", "succeeded"),
    ("submitted", "undelivered"),  # paid, images not saved
    ("submitted", "planned"),  # failed, rejected or hedged: the money rule allows another
    ("succeeded", "downloaded"),
    ("succeeded", "undelivered"),  # the files vanished and could not be saved again
    ("undelivered", "downloaded"),  # fetched again, never created again
}
STATES = (
    "planned", "submitting", "submitted", "unknown", "succeeded", "undelivered", "downloaded",
    "failed",
)  # fmt: skip


def test_the_transition_table_is_exactly_the_written_one() -> None:
    """TRANSITIONS and JOB_STATES are exactly the hand-written table and states above."""
    assert JOB_STATES == STATES
    assert {(a, b) for a, moves in TRANSITIONS.items() for b in moves} == ALLOWED


@pytest.mark.parametrize(("current", "wanted"), sorted(ALLOWED))
def test_every_written_transition_is_allowed(current: str, wanted: str) -> None:
    """check_transition lets each written move through."""
    check_transition("row-1", current, wanted)


@pytest.mark.parametrize(
    ("current", "wanted"),
    [(a, b) for a, b in itertools.product(STATES, STATES) if (a, b) not in ALLOWED],
)
def test_every_other_transition_is_refused(current: str, wanted: str) -> None:
    """check_transition refuses every pair not written above, among them the two that would pay
    twice (succeeded → planned, submitted → submitting) and anything out of downloaded or
    failed, or from a paid state to failed."""
    with pytest.raises(JournalStateError, match=f"from {current} to {wanted}"):
        check_transition("row-1", current, wanted)


def test_the_moves_that_would_pay_twice_are_refused() -> None:
    """Named on their own, so a change to the table cannot slip them in."""
    for current, wanted in [
        ("succeeded", "planned"),
        ("submitted", "submitting"),
        ("unknown", "submitting"),
        ("undelivered", "planned"),
        ("undelivered", "submitting"),
        ("submitted", "failed"),
        ("undelivered", "failed"),
    ]:
        with pytest.raises(JournalStateError):
            check_transition("row-1", current, wanted)


def test_happy_path_and_attempt_records(journal: SqliteJournal) -> None:
    """intent → task id → success → result → files walks planned … downloaded, and the attempt
    row carries the task id and the credits."""
    journal.begin_attempt("row-1", 1, "m", "digest")
    assert journal.job("row-1").state == "submitting"  # type: ignore[union-attr]
    journal.attempt_submitted("row-1", 1, "m", "t1")
    journal.attempt_submitted("row-1", 1, "m", "t1")  # a duplicate is harmless
    journal.end_attempt("row-1", Attempt(model="m", outcome="success", task_id="t1", credits=3.5))
    journal.record_result("row-1", _result("t1"))
    file = ImageFile(path="/x/row-1-1.png", url="u", sha256="ab", size=3, content_type="image/png")
    journal.mark_downloaded("row-1", [file])
    job = journal.job("row-1")
    assert job is not None
    assert (job.state, job.task_id, job.credits, job.files) == ("downloaded", "t1", 3.5, (file,))
    assert job.result is not None and job.result.served_model == "m"
    (attempt,) = journal.attempts("row-1")
    assert (attempt.phase, attempt.task_id, attempt.outcome, attempt.credits) == (
        "ended",
        "t1",
        "success",
        3.5,
    )
    assert journal.spent() == 3.5
    assert journal.counts()["downloaded"] == 1 and journal.counts()["planned"] == 1


def test_backend_refuses_illegal_moves(journal: SqliteJournal) -> None:
    """The backend checks the machine on every write: a task id for a job never submitted, a
    result before a task, a second create while one is in flight, leaving a terminal state."""
    with pytest.raises(JournalStateError):
        journal.attempt_submitted("row-1", 1, "m", "t1")
    with pytest.raises(JournalStateError):
        journal.record_result("row-1", _result("t1"))
    journal.begin_attempt("row-1", 1, "m", "d")
    with pytest.raises(JournalStateError):
        journal.begin_attempt("row-1", 2, "m", "d")
    with pytest.raises(JournalStateError):
        journal.mark_failed("row-1", "in flight: must be reconciled first")
    journal.attempt_ambiguous("row-1", 1, "m", "answer lost")
    with pytest.raises(JournalStateError, match="unknown to submitting"):
        journal.begin_attempt("row-1", 2, "m", "d")  # never resubmitted automatically
    journal.mark_failed("row-2", "gave up")
    with pytest.raises(JournalStateError):
        journal.requeue_unknown("row-2")
    assert journal.job("row-1").state == "unknown"  # type: ignore[union-attr]
    assert journal.job("row-2").state == "failed"  # type: ignore[union-attr]


def test_failed_attempt_returns_to_planned_and_ambiguous_is_reconciled(
    journal: SqliteJournal,
) -> None:
    """A failed task puts the job back to planned (the next rung may start); an ambiguous create
    stays unknown until a task id names it; a refused create leaves no live task."""
    journal.begin_attempt("row-1", 1, "a", "d")
    journal.attempt_submitted("row-1", 1, "a", "t1")
    journal.end_attempt("row-1", Attempt(model="a", outcome="failed", task_id="t1"))
    assert journal.job("row-1").state == "planned"  # type: ignore[union-attr]
    journal.begin_attempt("row-1", 2, "b", "d")
    journal.attempt_ambiguous("row-1", 2, "b", "read timeout")
    assert journal.job("row-1").state == "unknown"  # type: ignore[union-attr]
    journal.attempt_submitted("row-1", 2, "b", "t2")  # the callback named it
    assert journal.job("row-1").task_id == "t2"  # type: ignore[union-attr]
    journal.begin_attempt("row-2", 1, "a", "d")
    journal.end_attempt("row-2", Attempt(model="a", outcome="error", reason="HTTP 500"))
    assert journal.job("row-2").state == "planned"  # type: ignore[union-attr]
    reached = [a.task_id for a in journal.attempts() if a.reached_kie]
    assert reached == ["t1", "t2"]


def test_process_death_mid_create_becomes_unknown(journal: SqliteJournal, tmp_path: Path) -> None:
    """A job left submitting by a dead process reads back (from a new connection) as
    submitting, is marked unknown on resume, and only an explicit requeue makes it planned."""
    journal.begin_attempt("row-1", 1, "a", "d")
    journal.close()
    reopened = SqliteJournal(tmp_path / "journal.sqlite")
    assert reopened.job("row-1").state == "submitting"  # type: ignore[union-attr]
    reopened.mark_unknown("row-1", "process ended while the create was in flight")
    (attempt,) = reopened.attempts("row-1")
    assert attempt.phase == "ambiguous" and attempt.reached_kie
    reopened.requeue_unknown("row-1")
    assert reopened.job("row-1").state == "planned"  # type: ignore[union-attr]


def test_wal_mode_and_lazy_sqlite(tmp_path: Path) -> None:
    """The file is in WAL mode; importing kierouter and kierouter.journal loads no sqlite3."""
    import sqlite3

    SqliteJournal(tmp_path / "j.sqlite").close()
    with sqlite3.connect(tmp_path / "j.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    code = "import sys, kierouter, kierouter.journal; print('sqlite3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
