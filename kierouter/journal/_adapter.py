""":class:`RouterJournal`: what the router tells a journal, written to a backend."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import msgspec

from kierouter._models import Attempt, Result

from ._backend import JournalBackend

__all__ = ["CreateGate", "RouterJournal"]


class CreateGate:
    """Hooks around each create, for a caller that paces or caps them (a batch run).

    ``before`` is awaited before the intent is written (it may wait for a rate-limit slot, or
    raise to refuse the create: the job then stays ``planned``); ``answered`` is called once the
    create has an answer (task id, ambiguous, or refused) and ``ended`` once the attempt is over
    (its credits are then counted as spent). Both may be called more than once.
    """

    async def before(self, job_key: str, model: str) -> None:
        """Called before the intent of a create is journaled."""

    def answered(self, job_key: str) -> None:
        """Called when the create was answered."""

    def ended(self, job_key: str) -> None:
        """Called when the attempt ended."""


class RouterJournal:
    """Implements the router's ``journal=`` protocol on a :class:`JournalBackend`.

    Pass it as ``Router(journal=RouterJournal(SqliteJournal(path)))``; every job of that router
    must first exist in the backend (``backend.add_jobs``). The intent of each create is
    committed before the router sends it and the task id right after it returns. Request bodies
    are not stored (a callback URL carries a per-job token): only their sha256.

    Writes run in a worker thread (``asyncio.to_thread``): a commit waits for its fsync without
    holding up the event loop, so other jobs' creates go out meanwhile and a job stays
    ``submitting`` only between its own commit and its POST.
    """

    def __init__(self, backend: JournalBackend, *, gate: CreateGate | None = None) -> None:
        self.backend = backend
        self.gate = gate
        #: Optional hook called after every write, e.g. to refresh a progress display.
        self.on_change: Callable[[str], Any] | None = None

    def __repr__(self) -> str:
        return f"<RouterJournal {self.backend!r}>"

    def _changed(self, job_key: str) -> None:
        if self.on_change is not None:
            self.on_change(job_key)

    async def record_intent(self, job_key: str, attempt_no: int, model: str, body: Any) -> None:
        """Durable before the create POST."""
        if self.gate is not None:
            await self.gate.before(job_key, model)
        try:
            digest = hashlib.sha256(msgspec.json.encode(body)).hexdigest()
            await asyncio.to_thread(self.backend.begin_attempt, job_key, attempt_no, model, digest)
        except BaseException:
            if self.gate is not None:
                self.gate.answered(job_key)
                self.gate.ended(job_key)
            raise
        self._changed(job_key)

    async def record_submitted(
        self, job_key: str, attempt_no: int, model: str, task_id: str
    ) -> None:
        """KIE returned ``task_id``."""
        await asyncio.to_thread(self.backend.attempt_submitted, job_key, attempt_no, model, task_id)
        if self.gate is not None:
            self.gate.answered(job_key)
        self._changed(job_key)

    async def record_ambiguous(self, job_key: str, attempt_no: int, model: str, error: str) -> None:
        """The create's answer was lost."""
        await asyncio.to_thread(self.backend.attempt_ambiguous, job_key, attempt_no, model, error)
        if self.gate is not None:
            self.gate.answered(job_key)
        self._changed(job_key)

    def task_owner(self, task_id: str) -> str | None:
        """The job that created ``task_id``, from the backend (a quick indexed read)."""
        return self.backend.task_owner(task_id)

    async def record_attempt(self, job_key: str, attempt: Attempt) -> None:
        """An attempt ended without serving the job (or a watched task ended)."""
        await asyncio.to_thread(self.backend.end_attempt, job_key, attempt)
        if self.gate is not None:
            self.gate.answered(job_key)
            self.gate.ended(job_key)
        self._changed(job_key)

    async def record_result(self, job_key: str, result: Result) -> None:
        """The job was served: its serving attempt and result, in one transaction."""
        await asyncio.to_thread(self.backend.record_result, job_key, result)
        if self.gate is not None:
            self.gate.answered(job_key)
            self.gate.ended(job_key)
        self._changed(job_key)

    async def record_failed(self, job_key: str, error: str) -> None:
        """The job gave up for good: ``planned → failed`` (a job with a live task is left be)."""

        def mark() -> None:
            job = self.backend.job(job_key)
            if job is not None and job.state == "planned":
                self.backend.mark_failed(job_key, error)

        await asyncio.to_thread(mark)
        self._changed(job_key)
