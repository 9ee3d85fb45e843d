"""The money rule: when a job may create another task. Stated here once; used by the run of
a job (:mod:`kierouter._run`), the journal (which job may go back to ``planned``) and the batch.

**After a create was accepted (or may have been), the job creates another task only when the
earlier one is known not to have produced a usable, billed result:** KIE said it failed, the
user's judge rejected its delivered image, or it passed its deadline under a policy whose
``on_timeout`` is ``"escalate"`` (the attempt is then ``hedged``: still watched, its price still
held, its image saved as an ``extra`` if it finishes; and a hedged task that has finished by the
time of the next create is looked at first: its paid image may serve the job). Everything else
keeps following the task the job already has: a status read or a download that fails, a lost
answer, a full disk.

By outcome (:data:`~kierouter._results.Outcome`):

===============  ==========================================================  ==============
outcome          what it means for the money                                 another create
===============  ==========================================================  ==============
``skipped``      nothing was sent                                            yes
``error``        the create was refused: KIE made no task                    yes
``failed``       KIE's own final state says the task failed                  yes
``rejected``     the judge rejected a delivered (paid) image                 yes
``hedged``       past its deadline, ``on_timeout = "escalate"``; watched     yes
``success``      served                                                      no
``undelivered``  paid, not saved yet: fetched again, never regenerated       no
``ambiguous``    the create may have reached KIE: reconciled, never resent   no
``timeout``      followed to the watch limit without KIE's end               no
``extra``        a hedged task that finished later (the job already moved)   no
===============  ==========================================================  ==============
"""

from __future__ import annotations

from typing import Final

__all__ = ["ALLOWS_ANOTHER_CREATE", "allows_another_create"]

ALLOWS_ANOTHER_CREATE: Final = frozenset({"skipped", "error", "failed", "rejected", "hedged"})
"""The outcomes after which a job may create another task (see the module docstring)."""


def allows_another_create(outcome: str | None, task_id: str | None = None) -> bool:
    """Whether an attempt that ended with ``outcome`` leaves the job free to create again.

    An ``error`` that names a task is not a refused create (KIE made the task): it never allows
    one. ``None`` (an attempt not ended yet) never does.
    """
    if outcome == "error" and task_id:
        return False
    return outcome in ALLOWS_ANOTHER_CREATE
