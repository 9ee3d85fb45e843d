"""The job state machine every journal backend enforces.

::

    planned ──▶ submitting ──▶ submitted ──▶ succeeded ──▶ downloaded
       ▲  │          │  │          │  │          │             ▲
       │  ▼          │  ▼          │  └──▶ undelivered ◀──────┘ │
       │ failed      │ unknown ────┘             └──────────────┘
       └─────────────┴─────────────────┘  (an attempt ended and the money rule allows another)

* ``planned`` — no live task: nothing sent yet, or the last attempt ended in a way that allows
  another create (:mod:`kierouter._money`: KIE said it failed, the judge rejected it, it was
  hedged at its deadline, or KIE refused the create) and the next create is not decided yet.
* ``submitting`` — the intent of a create is durable; the POST may be in flight.
* ``submitted`` — KIE returned the task id (or a callback named it).
* ``unknown`` — the create may have reached KIE but its answer was lost (or the process died while
  it was in flight). Reconciled by a late callback carrying the job key or a status read; never
  resubmitted automatically (only an explicit operator action moves it back to ``planned``).
* ``succeeded`` — the task succeeded and the result is recorded (a ``planned`` job gets there
  when one of its watched, hedged tasks serves it).
* ``undelivered`` — the task succeeded and was paid, but its images could not be saved: the
  result keeps the task id, its URLs and credits. Only downloading them again (``batch resume``,
  ``kierouter fetch``) moves it on, to ``downloaded``; it is never created again.
* ``downloaded`` — every image of the result is on disk with its sha256 (terminal).
* ``failed`` — the job gave up with no live task (terminal).

Nothing leaves a state that holds a paid or possibly paid task (``submitted``, ``unknown``,
``succeeded``, ``undelivered``) for ``failed``, and nothing goes back to a create
(``submitting``) without passing ``planned``.
"""

from __future__ import annotations

from typing import Literal

from kierouter._errors import KieRouterError

__all__ = ["JOB_STATES", "TERMINAL_STATES", "TRANSITIONS", "JobState", "JournalStateError"]

JobState = Literal[
    "planned",
    "submitting",
    "submitted",
    "unknown",
    "succeeded",
    "undelivered",
    "downloaded",
    "failed",
]
"""The state of a journaled job (the module docstring says what each one means)."""
JOB_STATES: tuple[JobState, ...] = (
    "planned",
    "submitting",
    "submitted",
    "unknown",
    "succeeded",
    "undelivered",
    "downloaded",
    "failed",
)
"""Every ``JobState``."""
TERMINAL_STATES: frozenset[JobState] = frozenset({"downloaded", "failed"})
"""The states a job never leaves: downloaded and failed."""

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    "planned": frozenset({"submitting", "succeeded", "undelivered", "failed"}),
    "submitting": frozenset({"submitted", "unknown", "planned"}),
    "unknown": frozenset({"submitted", "planned"}),
    "submitted": frozenset({"succeeded", "undelivered", "planned"}),
    "succeeded": frozenset({"downloaded", "undelivered"}),
    "undelivered": frozenset({"downloaded"}),
    "downloaded": frozenset(),
    "failed": frozenset(),
}
"""state -> the states it may move to. Anything else is refused with :class:`JournalStateError`."""


class JournalStateError(KieRouterError):
    """A journal was asked for a transition the job state machine does not allow."""

    def __init__(self, job_key: str, current: str, wanted: str, why: str = "") -> None:
        self.job_key = job_key
        self.current = current
        self.wanted = wanted
        allowed = ", ".join(sorted(TRANSITIONS.get(current, frozenset()))) or "none"  # type: ignore[call-overload]
        because = f": {why}" if why else f" (allowed: {allowed})"
        super().__init__(f"job {job_key!r} cannot move from {current} to {wanted}{because}")


def check_transition(job_key: str, current: str, wanted: str) -> None:
    """Raise :class:`JournalStateError` unless ``current → wanted`` is allowed."""
    if wanted not in TRANSITIONS.get(current, frozenset()):  # type: ignore[call-overload]
        raise JournalStateError(job_key, current, wanted)
