"""Batch runs: a file of prompts → a price before spending → a paced, journaled, resumable run.

::

    from kierouter.batch import BatchSettings, read_rows, run_batch, resume_batch

    rows = read_rows("prompts.csv")                  # bad rows: BatchInputError with line numbers
    report = await run_batch(rows, "out", BatchSettings(policy="budget", budget=500))
    report = await resume_batch("out")               # after a crash, a kill -9, a lost network
    fetched = await fetch_batch("out")               # paid images that could not be saved

The command line is ``kierouter batch plan|run|resume|status`` and ``kierouter fetch DIR``
(see ``docs/batch.md``).
"""

from __future__ import annotations

from ._fetch import FetchReport, fetch_batch
from ._input import (
    ROW_FIELDS,
    STEPS,
    BatchInputError,
    BatchRow,
    parse_rows,
    read_rows,
    with_pipeline,
)
from ._manifest import batch_status, write_manifest
from ._pacer import BudgetReachedError, CreatePacer, PacedGate
from ._plan import (
    PIPELINE_POLICIES,
    USD_PER_CREDIT,
    BatchPlan,
    JobPlan,
    plan_batch,
    step_policy,
    step_request,
)
from ._runner import plan_rows, resume_batch, run_batch
from ._settings import JOURNAL_FILE, MANIFEST_FILE, BatchBudgetError, BatchReport, BatchSettings

__all__ = [
    "JOURNAL_FILE",
    "MANIFEST_FILE",
    "PIPELINE_POLICIES",
    "ROW_FIELDS",
    "STEPS",
    "USD_PER_CREDIT",
    "BatchBudgetError",
    "BatchInputError",
    "BatchPlan",
    "BatchReport",
    "BatchRow",
    "BatchSettings",
    "BudgetReachedError",
    "CreatePacer",
    "FetchReport",
    "JobPlan",
    "PacedGate",
    "batch_status",
    "fetch_batch",
    "parse_rows",
    "plan_batch",
    "plan_rows",
    "read_rows",
    "resume_batch",
    "run_batch",
    "step_policy",
    "step_request",
    "with_pipeline",
    "write_manifest",
]
