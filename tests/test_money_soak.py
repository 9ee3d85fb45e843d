"""The money soak: every fault that can strike after a create was accepted, at 20 % each and all
together, over a 150-200 row batch and through the library. Nothing is paid twice, nothing paid
is lost, and the books agree to the credit.

For each run:

* billed tasks per row: at most one, except rows whose judge rejected an image or that were
  hedged at a deadline (``on_timeout = "escalate"``), each counted as such;
* credits: what the emulator charged = the journal's spend = the manifest (batch) = the sum of
  what the library reported (``Result.credits``, the attempts of the errors, the extras
  ``Router.drain`` returned);
* no billed task missing from the journal, or from the manifest;
* every paid-but-undelivered row saved once the faults clear (``batch resume``; in the library,
  the task's handle), never created again.

A create whose answer is lost is not here: it may not have made a task at all (the fault soak in
``test_reliability_faults.py`` and the crash tests cover it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import kierouter as kr
from kierouter import PollConfig, Router, Verdict, WebhookConfig
from kierouter.batch import BatchSettings, parse_rows, resume_batch, run_batch
from kierouter.journal import RouterJournal, SqliteJournal
from kierouter.judging import JudgeContext
from kierouter.sim import Emulator

SCALE = 100.0
ROWS = 150
COMBINED_ROWS = 200
RATE = 0.2
#: rows (or jobs) in flight at once: enough to overlap, few enough for httpx's pool to stay quick
CONCURRENCY = 40
FIRST = "bytedance/seedream-v4-text-to-image"  # the budget policy's first model


@dataclass(frozen=True)
class Scenario:
    """One soak: faults injected at RATE, emulator settings, per-model behaviour."""

    faults: tuple[tuple[str, str | None], ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (kind, path, count): every request of that path fails, ``count`` times, then none
    outages: tuple[tuple[str, str, int], ...] = ()


SCENARIOS = {
    "status read 5xx": Scenario(faults=(("http_500", "status"),)),
    "status read broken body": Scenario(faults=(("malformed_body", "status"),)),
    "status read slow / timed out": Scenario(faults=(("slow_response", "status"),)),
    "status read lag (422 recordInfo is null, data null) for 20 s": Scenario(
        settings={"visibility_lag": 20}
    ),
    "callback lost": Scenario(faults=(("lost_callback", None),)),
    "callback duplicated": Scenario(faults=(("duplicate_callback", None),)),
    "result file 5xx": Scenario(faults=(("http_500", "files"),)),
    "result file connection reset": Scenario(faults=(("drop_connection", "files"),)),
    "result file slow / timed out": Scenario(faults=(("slow_response", "files"),)),
    "result file truncated": Scenario(faults=(("truncated_body", "files"),)),
    "result file wrong type (HTML)": Scenario(faults=(("wrong_content_type", "files"),)),
    "result file mislabelled (text as PNG)": Scenario(faults=(("mislabeled_body", "files"),)),
    "result files down for a while (the first 900 file requests fail)": Scenario(
        outages=(("http_500", "files", 900),)
    ),
    "task past its deadline (~20 %)": Scenario(models={FIRST: {"latency": (60, 250)}}),
    "KIE reports the task failed": Scenario(models={"*": {"fail_rate": RATE}}),
    "KIE charges twice the card": Scenario(settings={"price_multiplier": 2.0}),
}
COMBINED = Scenario(
    faults=tuple(f for s in SCENARIOS.values() for f in s.faults),
    settings={"visibility_lag": 20, "price_multiplier": 2.0},
    models={FIRST: {"latency": (60, 250)}, "*": {"fail_rate": RATE}},
    outages=(("http_500", "files", 150),),  # shorter: the judge still sees most images
)
#: the emulator holds a slow answer this long (real seconds); the library's read timeout is less
SLOW = 2.0
READ_TIMEOUT = 1.0
RECORDS: list[dict[str, Any]] = []


def _plugins() -> list[Any]:
    import kierouter_flux_kontext
    import kierouter_gpt4o_image
    import kierouter_nano_banana
    import kierouter_seedream

    return [
        kierouter_seedream,
        kierouter_nano_banana,
        kierouter_flux_kontext,
        kierouter_gpt4o_image,
    ]


def _arm(emu: Emulator, scenario: Scenario) -> None:
    for kind, paths in scenario.faults:
        emu.inject(kind, rate=RATE, paths=paths, seconds=SLOW)
    for target, settings in scenario.models.items():
        emu.configure(target, **settings)
    for kind, paths, count in scenario.outages:
        emu.inject(kind, paths=paths, count=count)


def _emulator(scenario: Scenario) -> Emulator:
    return Emulator(
        time_scale=SCALE, create_limit=100_000, create_window=1.0, seed=7, **scenario.settings
    )


@dataclass
class Books:
    """What one run found."""

    rows: int
    billed: Counter[str]  # billed tasks per job key
    billed_ids: set[str]
    charged: float
    journal: float
    reported: float  # the manifest (batch) or the library's results (library)
    journal_tasks: set[str]
    reported_tasks: set[str]
    hedged: set[str]
    rejected: set[str]
    undelivered: int
    saved_later: int
    still_undelivered: int

    def check(self, name: str, path: str) -> dict[str, Any]:
        """Assert the money rules; return the row of the report."""
        over = {k for k, n in self.billed.items() if n > 1}
        unexplained = over - self.hedged - self.rejected
        assert unexplained == set(), f"rows paid twice without reason: {sorted(unexplained)}"
        assert self.charged == pytest.approx(self.journal) == pytest.approx(self.reported)
        missing_journal = self.billed_ids - self.journal_tasks
        missing_report = self.billed_ids - self.reported_tasks
        assert missing_journal == set() and missing_report == set()
        assert self.still_undelivered == 0
        return {
            "fault": name,
            "path": path,
            "rows": self.rows,
            "billed": sum(self.billed.values()),
            "hedged": len(over & self.hedged),
            "rejected": len(over & self.rejected - self.hedged),
            "other": len(unexplained),
            "charged": round(self.charged, 3),
            "journal": round(self.journal, 3),
            "reported": round(self.reported, 3),
            "missing": len(missing_journal | missing_report),
            "undelivered": self.undelivered,
            "saved_later": self.saved_later,
        }


def _billed(emu: Emulator) -> tuple[Counter[str], set[str], float]:
    charges = emu.charges()
    per_task = charges["tasks"]
    jobs = {t["taskId"]: t["job_key"] for t in emu.tasks()}
    billed = Counter(jobs[task] for task, credits in per_task.items() if credits > 0)
    return billed, {t for t, c in per_task.items() if c > 0}, float(charges["total"])


async def _batch(scenario: Scenario, rows: int, out: Path) -> Books:
    async with _emulator(scenario) as emu:
        _arm(emu, scenario)
        settings = BatchSettings(
            policy="budget", base_url=emu.base_url, loopback=True, time_scale=SCALE,
            concurrency=CONCURRENCY, create_limit=100_000, create_window=1.0, read_rate=10_000.0,
        )  # fmt: skip
        batch = parse_rows("\n".join(f"a red fox, study {i}" for i in range(rows)))
        report = await run_batch(batch, out, settings, api_key=emu.api_key, plugins=_plugins())
        undelivered = len(report.undelivered)
        emu.clear_faults()
        again = await resume_batch(out, api_key=emu.api_key, plugins=_plugins())
        assert again.created_this_run == 0  # saved, never created again
        billed, billed_ids, charged = _billed(emu)
    journal = SqliteJournal(out / "journal.sqlite")
    try:
        attempts = journal.attempts()
        spent = journal.spent()
    finally:
        journal.close()
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    hedged = {m["job_key"] for m in manifest if m["hedged"]}
    return Books(
        rows=rows,
        billed=billed,
        billed_ids=billed_ids,
        charged=charged,
        journal=spent,
        reported=sum(m["credits"] for m in manifest),
        journal_tasks={a.task_id for a in attempts if a.task_id},
        reported_tasks={t for m in manifest for t in m["task_ids"]},
        hedged=hedged,
        rejected=set(),
        undelivered=undelivered,
        saved_later=undelivered - len(again.undelivered),
        still_undelivered=len(again.undelivered),
    )


def _picky(context: JudgeContext) -> Verdict:
    """Rejects the first model's image for one row in ten (deterministic by prompt)."""
    digest = hashlib.sha256(context.request.prompt.encode()).digest()
    if context.model == FIRST and digest[0] % 10 == 0:
        return Verdict(False, "not what was asked")
    return Verdict(True)


def _any(trail: tuple[kr.Attempt, ...], *outcomes: str) -> bool:
    return any(a.outcome in outcomes for a in trail)


async def _library(scenario: Scenario, rows: int, out: Path, *, judge: Any = None) -> Books:
    backend = SqliteJournal(out / "journal.sqlite", synchronous="NORMAL")
    keys = [f"job-{i:03d}" for i in range(rows)]
    backend.add_jobs([(key, {}) for key in keys])
    async with _emulator(scenario) as emu:
        _arm(emu, scenario)
        client = kr.KieClient(
            emu.api_key, base_url=emu.base_url, create_limit=100_000, create_window=1.0,
            read_rate=10_000, read_timeout=READ_TIMEOUT, transport="aiohttp",
        )  # fmt: skip
        router = Router(
            _plugins(), client=client, latency_scale=1 / SCALE, out_dir=out / "images",
            journal=RouterJournal(backend), webhook=WebhookConfig(listen="127.0.0.1:0"),
            poll=PollConfig(retry_backoff=0.5), judge=judge, policy="budget",
        )  # fmt: skip
        gate = asyncio.Semaphore(CONCURRENCY)

        async def job(key: str) -> kr.Result:
            async with gate:
                return await router.generate(f"a red fox, study {key}", job_key=key)

        async with router:
            outcomes = await asyncio.gather(*(job(k) for k in keys), return_exceptions=True)
            late = await router.drain()
            emu.clear_faults()
            unsaved = [o.result for o in outcomes if isinstance(o, kr.PaidUndeliveredError)]
            saved = 0
            for paid in unsaved:
                handle = router.task(paid.task_id or "", model=paid.served_model or "")
                files = await handle.download(out / "images", stem=paid.job_key)
                backend.mark_downloaded(paid.job_key, files)
                saved += 1
        await client.aclose()
        billed, billed_ids, charged = _billed(emu)
    trails: list[tuple[kr.Attempt, ...]] = []
    for outcome in outcomes:
        if isinstance(outcome, kr.Result):
            trails.append(outcome.attempts)
        elif isinstance(outcome, kr.PaidUndeliveredError):
            trails.append(outcome.result.attempts)
        else:
            assert isinstance(outcome, kr.KieRouterError), repr(outcome)
            trails.append(tuple(getattr(outcome, "attempts", ())))
    # a watched task that ended after its job returned is in Result.watching, not its attempts
    results = [o.result if isinstance(o, kr.PaidUndeliveredError) else o for o in outcomes]
    watching = {t for r in results if isinstance(r, kr.Result) for t in r.watching}
    after = [a for a in late if a.task_id in watching]
    reported = sum(a.credits for t in trails for a in t) + sum(a.credits for a in after)
    reported_tasks = {a.task_id for trail in trails for a in trail if a.task_id}
    hedged = {k for k, t in zip(keys, trails, strict=True) if _any(t, "hedged", "extra")}
    rejected = {k for k, t in zip(keys, trails, strict=True) if _any(t, "rejected")}
    try:
        spent = backend.spent()
        journal_tasks = {a.task_id for a in backend.attempts() if a.task_id}
    finally:
        backend.close()
    return Books(
        rows=rows,
        billed=billed,
        billed_ids=billed_ids,
        charged=charged,
        journal=spent,
        reported=reported,
        journal_tasks=journal_tasks,
        reported_tasks=reported_tasks,
        hedged=hedged,
        rejected=rejected,
        undelivered=len(unsaved),
        saved_later=saved,
        still_undelivered=len(unsaved) - saved,
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", [*SCENARIOS, "all of them at once"])
async def test_money_soak(name: str, tmp_path: Path, reliability: Any) -> None:
    """Each post-create fault at 20 % (and all at once), over a batch and through the library:
    the money rules hold (see the module docstring)."""
    combined = name == "all of them at once"
    scenario = COMBINED if combined else SCENARIOS[name]
    rows = COMBINED_ROWS if combined else ROWS
    judge = _picky if combined else None
    batch, library = await asyncio.gather(  # two emulators: the runs overlap their waits
        _batch(scenario, rows, tmp_path / "batch"),
        _library(scenario, rows, tmp_path / "lib", judge=judge),
    )
    for entry in (batch.check(name, "batch"), library.check(name, "library")):
        RECORDS.append(entry)
        reliability.record_money(entry)
