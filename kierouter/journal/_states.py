"""The job state machine every journal backend enforces.

::

    planned ──▶ submitting ──▶ submitted ──▶ succeeded ──▶ downloaded
       ▲  │          │  │          │   │           │
       │  ▼          │  ▼          │   ▼           ▼
       │ failed      │ unknown ────┘  failed     failed
       └─────────────┴─────────────────┘  (attempt ended without serving: back to planned)

* ``planned`` — no live task: nothing sent yet, or the last attempt ended without serving the job
  and the next create is not decided yet.
* ``submitting`` — the intent of a create is durable; the POST may be in flight.
* ``submitted`` — KIE returned the task id (or a callback named it).
* ``unknown`` — the create may have reached KIE but its answer was lost (or the process died while
  it was in flight). Reconciled by a late callback carrying the job key or a status read; never
  resubmitted automatically (only an explicit operator action moves it back to ``planned``).
* ``succeeded`` — the task succeeded and the result is recorded.
* ``downloaded`` — every image of the result is on disk with its sha256 (terminal).
* ``failed`` — the job gave up (terminal).
"""

from __future__ import annotations

from typing import Literal

from kierouter._errors import KieRouterError

__all__ = ["JOB_STATES", "TERMINAL_STATES", "TRANSITIONS", "JobState", "JournalStateError"]

JobState = Literal[
    "planned", "submitting", "submitted", "unknown", "succeeded", "downloaded", "failed"
]
"""The state of a journaled job (the module docstring says what each one means)."""
JOB_STATES: tuple[JobState, ...] = (
    "planned",
    "submitting",
    "submitted",
    "unknown",
    "succeeded",
    "downloaded",
    "failed",
)
"""Every ``JobState``."""
TERMINAL_STATES: frozenset[JobState] = frozenset({"downloaded", "failed"})
"""The states a job never leaves: downloaded and failed."""

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    "planned": frozenset({"submitting", "failed"}),
    "submitting": frozenset({"submitted", "unknown", "planned"}),
    "unknown": frozenset({"submitted", "planned", "failed"}),
    "submitted": frozenset({"succeeded", "planned", "failed"}),
    "succeeded": frozenset({"downloaded", "failed"}),
    "downloaded": frozenset(),
    "failed": frozenset(),
}
"""state -> the states it may move to. Anything else is refused with :class:`JournalStateError`."""


class JournalStateError(KieRouterError):
    """A journal was asked for a transition the job state machine does not allow."""

    def __init__(self, job_key: str, current: str, wanted: str) -> None:
        self.job_key = job_key
        self.current = current
        self.wanted = wanted
        allowed = ", ".join(sorted(TRANSITIONS.get(current, frozenset()))) or "none"  # type: ignore[call-overload]
        super().__init__(
            f"job {job_key!r} cannot move from {current} to {wanted} (allowed: {allowed})"
        )


def check_transition(job_key: str, current: str, wanted: str) -> None:
    """Raise :class:`JournalStateError` unless ``current → wanted`` is allowed."""
    if wanted not in TRANSITIONS.get(current, frozenset()):  # type: ignore[call-overload]
        raise JournalStateError(job_key, current, wanted)
