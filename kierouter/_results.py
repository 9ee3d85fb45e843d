"""What a job leaves behind: its attempts (one per model tried), the files saved, the Result.

These are frozen :class:`msgspec.Struct`\\ s with no dependency on the rest of kierouter, so the
error classes (which carry attempts and results) can name them without an import circle.
:mod:`kierouter._models` re-exports every name here.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = ["Adaptation", "Attempt", "CreditsSource", "Delivery", "ImageFile", "Outcome", "Result"]

Outcome = Literal[
    "success",  # finished, delivered and accepted: it serves the job
    "failed",  # KIE reported the task failed
    "rejected",  # finished, but a judge rejected the image (paid)
    "skipped",  # not sent: invalid for this model, in cooldown, or over budget
    "timeout",  # followed until the watch limit without KIE reporting an end
    "error",  # the create was refused (KIE made no task) or the plugin failed before sending
    "ambiguous",  # the create may have reached KIE; reconciled later, never resubmitted
    "hedged",  # passed its deadline; the job moved on while the task is still watched
    "extra",  # a hedged task that finished later: paid and downloaded, not the served image
    "undelivered",  # finished and paid, but its images could not be saved; URLs kept
]
"""How one attempt ended (see ``docs/concepts.md``, "Attempts and the shared budget")."""

Delivery = Literal["downloaded", "urls", "undelivered"]
"""Where a served result's images are: ``downloaded`` (in ``Result.files``), ``urls`` (no
output folder was asked for: only the links) or ``undelivered`` (paid, but they could not be
saved; ``kierouter fetch`` gets them while KIE's links last)."""

CreditsSource = Literal["", "task", "balance", "card"]
"""Where an attempt's settled credits come from: KIE's own report for the task (``task``), the
account balance before and after it (``balance``), the model card's price (``card``), or nothing
charged (``""``)."""


class Adaptation(msgspec.Struct, frozen=True):
    """One change a plugin made to fit a request to its model (e.g. ratio snapped 5:4 → 4:3)."""

    field: str
    requested: Any
    sent: Any
    reason: str


class ImageFile(msgspec.Struct, frozen=True, kw_only=True):
    """A downloaded image."""

    path: str
    url: str
    sha256: str
    size: int
    content_type: str


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One try on one model: what was sent, what came back, what it cost, and why it ended.

    ``credits`` are what KIE charged for the task, settled when it ended (``credits_source``
    says how they were learnt); ``urls`` are its result links once it finished, and ``files``
    the images saved for an ``extra`` (a hedged task that finished after the job moved on).
    """

    model: str
    outcome: Outcome
    reason: str = ""
    task_id: str | None = None
    credits: float = 0.0
    seed: int | None = None
    seed_ignored: bool = False
    adaptations: tuple[Adaptation, ...] = ()
    started_at: float = 0.0
    elapsed: float = 0.0
    urls: tuple[str, ...] = ()
    files: tuple[ImageFile, ...] = ()
    credits_source: CreditsSource = ""


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of a job: the model that served it and the whole attempt trail.

    ``attempts`` lists every task the job paid for or may pay for (``Result.task_ids``), with
    its settled credits; ``credits`` is their sum. ``delivery`` says whether the images are in
    ``files`` (``downloaded``), only linked (``urls``) or could not be saved (``undelivered``,
    with ``delivery_error`` saying why). ``watching`` lists the task ids of hedged attempts the
    router still follows in the background: each ends as an ``extra`` attempt (paid, saved),
    reported by the ``extra`` event, in the journal and by :meth:`Router.drain
    <kierouter.Router.drain>`.
    """

    served_model: str | None
    attempts: tuple[Attempt, ...]
    credits: float
    urls: tuple[str, ...] = ()
    files: tuple[ImageFile, ...] = ()
    seed: int | None = None
    job_key: str = ""
    delivery: Delivery = "urls"
    delivery_error: str = ""
    watching: tuple[str, ...] = ()

    @property
    def task_ids(self) -> tuple[str, ...]:
        """Task ids of every attempt that reached KIE."""
        return tuple(a.task_id for a in self.attempts if a.task_id)

    @property
    def task_id(self) -> str | None:
        """The id of the task that served the job (``None`` when none did)."""
        for attempt in reversed(self.attempts):
            if attempt.outcome in ("success", "undelivered") and attempt.task_id:
                return attempt.task_id
        return None

    @property
    def extras(self) -> tuple[Attempt, ...]:
        """Hedged tasks that finished while the job was still running: paid, saved, not served."""
        return tuple(a for a in self.attempts if a.outcome == "extra")

    @property
    def ok(self) -> bool:
        """True when a model served the job (its images may still be ``undelivered``)."""
        return self.served_model is not None
