"""The run of one job, as the stages it goes through. Strictly private.

::

    plan (policy engine, no network; :mod:`kierouter.policy`)
      └─ for each step, while kierouter._money allows another create:
           create ─► follow ─► settle (what KIE charged) ─► deliver ─► judge ─► settle (record)

=================  ==========================================================================
module             what it does
=================  ==========================================================================
:mod:`.context`    what every job of a router shares; the :class:`~.context.Journal` protocol
:mod:`.state`      one job's state (request, plan, budget, attempts) and one task's
:mod:`.create`     prepare the call, hold its price, journal the intent, POST once, classify
:mod:`.follow`     wait (callback or polling) for KIE's own final state; hedge at the deadline
:mod:`.deliver`    save the images: retries, re-minted links; ``undelivered``, never regenerated
:mod:`.judge`      the user's judge, shown the request as it was sent
:mod:`.settle`     what KIE charged → budgets, journal, result
:mod:`.watch`      hedged tasks followed in the background; their images kept as extras
:mod:`.job`        sequences the stages, step after step of the plan
=================  ==========================================================================

Each module imports only the ones above it in this table. What the run does after each kind of
failure:

=============================================  ===============================================
what happened                                  what the run does
=============================================  ===============================================
the plugin refuses the request                 skip the model before anything is sent
model in cooldown / price over ``max_credits``  skip the model
transient create failure (455, 5xx, no          retry the same model with backoff, at most
connection after the client's own retries)      ``PollConfig.create_retries`` times
429 after the client waited it out              move to the next step
the router's spend limit has no room            stop: ``BudgetReachedError``
create answer lost (ambiguous)                  never resubmitted: a callback carrying the job
                                                key names the task, else
                                                ``AmbiguousSubmissionError``
status read fails (404/422 "no such task",      read again, backing off, until the task's
5xx, timeout, malformed body)                   deadline: only KIE's own final state ends it
task failed (KIE's final state) / judged bad   next step, with its own seed
task passed its deadline                        ``policy.on_timeout``: ``escalate`` hedges (next
                                                step; the task stays watched, its image kept
                                                as an extra); ``wait`` follows it on
download fails / disk full / link expired       retry, re-mint; then ``undelivered``
                                                (``PaidUndeliveredError``), never regenerated
content policy                                  ``policy.on_content_policy``: stop or escalate
401 / 433 / 402 / Cloudflare 1010               stop every job of the router; raised
=============================================  ===============================================
"""

from __future__ import annotations

from .context import Journal, RunContext
from .job import Existing, Job
from .state import JobState
from .watch import Watcher

__all__ = ["Existing", "Job", "JobState", "Journal", "RunContext", "Watcher"]
