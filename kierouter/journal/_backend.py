"""What a journal backend stores and the interface every backend implements.

The embedded default is :class:`~kierouter.journal.SqliteJournal`. Another backend (PostgreSQL
for several machines, say) implements :class:`JournalBackend` with the same transactional rules:
each method is one atomic transaction, durable when it returns, and refuses transitions the state
machine (:data:`~kierouter.journal.TRANSITIONS`) does not allow.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from kierouter._models import Attempt, ImageFile, Result

from ._states import JobState

__all__ = ["AttemptPhase", "AttemptRecord", "JobRecord", "JournalBackend"]

#: Where one create stands: ``intent`` (durable before the POST), ``submitted`` (task id known),
#: ``ambiguous`` (answer lost), ``watching`` (hedged at its deadline: followed in the background,
#: the job moved on), ``ended`` (the attempt finished; ``outcome`` says how), ``requeued`` (its
#: answer was lost and an operator chose to create again: it may still have been billed).
AttemptPhase = str


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One job (one row, or one step of a row's pipeline) as the journal holds it.

    ``spec`` is the caller's own description of the job (the batch keeps the row, the step and
    the request there); the journal stores it and never interprets it. ``model``, ``attempt_no``
    and ``task_id`` describe the latest create (or the task that served the job). ``credits``
    are the settled credits of all its attempts. ``result`` is the served
    :class:`~kierouter.Result` once the job succeeded (or is ``undelivered``: then it keeps the
    URLs, and ``error`` says why the images could not be saved); ``files`` the images on disk
    once it is ``downloaded``.
    """

    key: str
    seq: int
    state: JobState
    spec: dict[str, Any]
    model: str | None = None
    attempt_no: int = 0
    task_id: str | None = None
    credits: float = 0.0
    result: Result | None = None
    files: tuple[ImageFile, ...] = ()
    error: str | None = None
    updated_at: float = 0.0


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One create of a job (or one model the router skipped, with ``phase='ended'`` and
    ``outcome='skipped'``). ``n`` numbers the job's records in the order they were written."""

    job_key: str
    n: int
    attempt_no: int | None
    model: str
    phase: AttemptPhase
    task_id: str | None = None
    outcome: str | None = None
    reason: str = ""
    credits: float = 0.0
    seed: int | None = None
    created_at: float = 0.0
    urls: tuple[str, ...] = ()
    files: tuple[ImageFile, ...] = ()
    credits_source: str = ""

    @property
    def reached_kie(self) -> bool:
        """True when the create was (or may have been) received: anything but a skip or a
        create that KIE answered with an error."""
        if self.task_id:
            return True
        return self.phase in ("intent", "ambiguous", "requeued") or self.outcome == "ambiguous"


class JournalBackend(abc.ABC):
    """Durable storage of jobs and their attempts. Every method is one atomic transaction."""

    # -- lifecycle and metadata ---------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    @abc.abstractmethod
    def get_meta(self, name: str) -> Any:
        """A JSON value stored with :meth:`set_meta` (``None`` when unset)."""

    @abc.abstractmethod
    def set_meta(self, name: str, value: Any) -> None:
        """Store a JSON value under ``name`` (never a secret)."""

    # -- jobs -----------------------------------------------------------------------------------

    @abc.abstractmethod
    def add_jobs(self, jobs: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Insert ``(key, spec)`` pairs as ``planned``; existing keys are left alone.
        Returns how many were inserted."""

    @abc.abstractmethod
    def job(self, key: str) -> JobRecord | None:
        """One job, or ``None``."""

    @abc.abstractmethod
    def jobs(self, states: Sequence[JobState] | None = None) -> list[JobRecord]:
        """Jobs in insertion order, optionally only those in ``states``."""

    @abc.abstractmethod
    def counts(self) -> dict[str, int]:
        """Number of jobs per state (every state present, zeros included)."""

    @abc.abstractmethod
    def attempts(self, key: str | None = None) -> list[AttemptRecord]:
        """Attempt records of one job (or all), in the order written."""

    @abc.abstractmethod
    def spent(self) -> float:
        """Credits charged so far: the sum over ended attempts."""

    def task_owner(self, task_id: str) -> str | None:
        """The job that created ``task_id`` (``None`` when no attempt names it). Backends
        should answer it; the default (no lookup) only weakens the check that a callback naming
        another job's task never serves this one."""
        return None

    # -- the router's records (see kierouter._run.context.Journal) -----------------------------

    @abc.abstractmethod
    def begin_attempt(self, key: str, attempt_no: int, model: str, body_sha256: str) -> None:
        """``planned → submitting``: the create's intent, durable before the POST."""

    @abc.abstractmethod
    def attempt_submitted(self, key: str, attempt_no: int, model: str, task_id: str) -> None:
        """``submitting|unknown → submitted`` with the task id (idempotent for the same id)."""

    @abc.abstractmethod
    def attempt_ambiguous(self, key: str, attempt_no: int, model: str, error: str) -> None:
        """``submitting → unknown``: the create was sent but its answer was lost."""

    @abc.abstractmethod
    def end_attempt(self, key: str, attempt: Attempt) -> None:
        """An attempt ended without serving the job, or a watched task ended.

        The record that names the attempt's task (or its open create) is updated, never a
        second one added, and the job's credits change by the difference: recording the same
        end twice counts it once. A ``hedged`` attempt becomes ``watching``. The job goes back
        to ``planned`` only when :func:`kierouter._money.allows_another_create` says so; a
        watched task's end changes no state."""

    @abc.abstractmethod
    def record_result(self, key: str, result: Result) -> None:
        """``submitted|planned → succeeded`` (or ``undelivered`` when ``result.delivery`` says
        so) with the result, and the serving attempt (the result's last ``success`` or
        ``undelivered`` one) ended with its credits, in the same transaction."""

    @abc.abstractmethod
    def mark_downloaded(self, key: str, files: Sequence[ImageFile]) -> None:
        """``succeeded|undelivered → downloaded`` with the files on disk."""

    @abc.abstractmethod
    def mark_failed(self, key: str, error: str) -> None:
        """``planned → failed`` (a job with a live or paid task never fails)."""

    @abc.abstractmethod
    def mark_unknown(self, key: str, reason: str) -> None:
        """``submitting → unknown``: the process that sent the create is gone (resume)."""

    @abc.abstractmethod
    def requeue_unknown(self, key: str) -> None:
        """``unknown → planned``: an operator's explicit decision to create the task again
        (it may be paid twice). The job's lost creates become ``requeued``. Never called
        automatically."""
