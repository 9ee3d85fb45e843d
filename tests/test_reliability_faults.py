"""Fault soak: 200 jobs against an emulator that injects, at 20% each, 429s, 455s, 500/550s,
dropped connections, answers slower than the read timeout, malformed JSON, lost and duplicated
callbacks, and tasks that never finish.

Every job ends either with its images on disk or failed with a clear reason; nothing raises
anything but kierouter's errors; no job makes more creates than its budget's attempts; and the
emulator never holds more tasks for a job than the journal recorded create intents for it (a
second task for a job exists only where the journal shows the retry or escalation that made it).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

import kierouter as kr
from kierouter._router import PollConfig, Router, WebhookConfig
from kierouter._transport import KieClient
from kierouter.policy import Budget, Constraints, Policy
from kierouter.sim import Emulator, in_thread

SCALE = 200.0
HMAC_KEY = "whsec-soak-7a1c"
JOBS = 200
MODELS = ("bytedance/seedream-v4-text-to-image", "google/nano-banana", "qwen/text-to-image")
LADDER = Policy(
    name="soak",
    ladder=("seedream", "nano-banana", "qwen"),
    constraints=Constraints(allow=MODELS),
    budget=Budget(max_attempts=4),
)
API_FAULTS = (
    ("http_429", 0.2),
    ("code_455", 0.2),
    ("code_500", 0.1),
    ("code_550", 0.1),
    ("drop_connection", 0.2),
    ("slow_response", 0.2),
    ("malformed_body", 0.2),
)
CALLBACK_FAULTS = (("lost_callback", 0.2), ("duplicate_callback", 0.2))
#: The emulator holds a slow answer this long; the client's read timeout is shorter.
SLOW_SECONDS = 1.0
READ_TIMEOUT = 0.4


def _plugins() -> list[Any]:
    import kierouter_nano_banana
    import kierouter_qwen
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana, kierouter_qwen]


@pytest.fixture
def faulty() -> Iterator[Emulator]:
    """An emulator in its own thread with every fault armed at 20%."""
    with in_thread(
        time_scale=SCALE, hmac_key=HMAC_KEY, create_limit=100_000, create_window=1.0, seed=11
    ) as emu:
        for kind, rate in (*API_FAULTS, *CALLBACK_FAULTS):
            emu.inject(kind, rate=rate, seconds=SLOW_SECONDS)
        emu.configure("*", never_finish_rate=0.2)
        yield emu


def _job_of(task: dict[str, Any]) -> str | None:
    url = task.get("callBackUrl") or ""
    path = urlsplit(url).path
    marker = "/kie/callback/"
    return unquote(path.split(marker, 1)[1]) if marker in path else None


def _clear(exc: BaseException) -> bool:
    """A failure a user can act on: kierouter's error with a message, attempts with reasons."""
    if not isinstance(exc, kr.KieRouterError) or not str(exc).strip():
        return False
    attempts = getattr(exc, "attempts", ())
    return all(a.reason.strip() for a in attempts if a.outcome != "success")


def _existing(paths: list[str]) -> bool:
    return all(Path(p).is_file() and Path(p).stat().st_size > 0 for p in paths)


@pytest.mark.slow
async def test_two_hundred_jobs_under_every_fault(
    faulty: Emulator, tmp_path: Path, reliability: Any
) -> None:
    """200 jobs through one Router with a SQLite journal, every fault at 20%: each job is
    downloaded or failed with a clear reason, creates stay within the budget, and the emulator's
    tasks per job never exceed the journal's create intents for it."""
    from kierouter.journal import RouterJournal, SqliteJournal

    backend = SqliteJournal(str(tmp_path / "journal.sqlite"), synchronous="NORMAL")
    keys = [f"soak-{i:03d}" for i in range(JOBS)]
    backend.add_jobs([(k, {"prompt": f"fox {k}"}) for k in keys])
    client = KieClient(
        faulty.api_key,
        base_url=faulty.base_url,
        create_limit=1000,
        create_window=1.0,
        read_rate=10_000,
        read_timeout=READ_TIMEOUT,
        max_retry_after=2.0,
    )
    router = Router(
        _plugins(),
        client=client,
        latency_scale=1 / SCALE,
        allow_private_downloads=True,
        out_dir=tmp_path / "out",
        journal=RouterJournal(backend),
        webhook=WebhookConfig(listen="127.0.0.1:0", hmac_key=HMAC_KEY),
        poll=PollConfig(retry_backoff=0.5),
    )
    async with router:
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                *(router.generate(f"a fox, take {k}", policy=LADDER, job_key=k) for k in keys),
                return_exceptions=True,
            ),
            timeout=240,
        )
    await client.aclose()

    served = [o for o in outcomes if isinstance(o, kr.Result)]
    failed = [o for o in outcomes if not isinstance(o, kr.Result)]
    unclear = [f"{type(o).__name__}: {o}" for o in failed if not _clear(o)]
    assert unclear == [], unclear[:5]
    assert all(r.files and _existing([f.path for f in r.files]) for r in served)
    assert served, "with 20% faults some jobs must still be served"

    # Retries and escalations share one budget.
    for outcome in outcomes:
        attempts = getattr(outcome, "attempts", ())
        assert sum(1 for a in attempts if a.outcome != "skipped") <= 4

    # No job has a task the journal did not record an intent for.
    tasks = faulty.tasks()
    by_job = Counter(_job_of(t) for t in tasks)
    assert None not in by_job and set(by_job) <= set(keys)
    intents = Counter(r.job_key for r in backend.attempts() if r.attempt_no is not None)
    over = {k: (n, intents[k]) for k, n in by_job.items() if n > intents[k]}
    assert over == {}, f"tasks beyond the journal's intents: {over}"
    twice = [k for k, n in by_job.items() if n > 1]
    for key in twice:  # each extra task is a recorded retry or escalation
        creates = [
            a for a in backend.attempts(key) if a.phase == "ended" and a.outcome != "skipped"
        ]
        assert len(creates) >= by_job[key], key

    states = backend.counts()
    journal_state = {j.key: j.state for j in backend.jobs()}
    backend.close()
    for key, outcome in zip(keys, outcomes, strict=True):
        if isinstance(outcome, kr.Result):
            assert journal_state[key] in ("succeeded", "downloaded"), key
        elif isinstance(outcome, kr.AmbiguousSubmissionError):
            assert journal_state[key] == "unknown", key  # reconciled later, never resent
        else:
            assert journal_state[key] not in ("succeeded", "downloaded", "unknown"), key
    stats = faulty.stats()
    fired = stats["faults"]
    for kind, _ in (*API_FAULTS, *CALLBACK_FAULTS):
        assert fired.get(kind, 0) > 0, f"{kind} never fired"
    assert stats["created_total"] == sum(by_job.values())
    lost = JOBS - len(served) - len(failed)
    assert lost == 0
    kinds = Counter(type(o).__name__ for o in failed)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    for kind, _ in (*API_FAULTS, *CALLBACK_FAULTS):
        reliability.record(
            "faults", kind, tried=fired[kind], outcome="absorbed: retried, escalated or reported"
        )
    never = sum(1 for t in tasks if t["state"] not in ("success", "fail"))
    reliability.record(
        "faults", "tasks that never finish", tried=never, outcome="timed out; next rung tried"
    )
    reliability.record(
        "faults",
        f"{JOBS}-job soak through a Router + SQLite journal",
        tried=JOBS,
        outcome=f"{len(served)} downloaded; {summary}; {len(twice)} jobs with >1 task, each "
        f"journaled; journal states: {', '.join(f'{n} {s}' for s, n in states.items() if n)}",
        lost=lost,
    )


async def test_read_retries_never_block_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, reliability: Any
) -> None:
    """A status read retried after 500s waits with asyncio, never time.sleep: a blocking wait
    would stall every other job and the webhook receiver for the whole backoff."""
    import time

    blocking: list[float] = []
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda s: (blocking.append(s), real_sleep(s))[1])
    async with Emulator(time_scale=1000.0) as emu:
        emu.inject("http_500", paths="credit", count=2)
        emu.inject("http_429", paths="credit", count=1)
        async with KieClient(emu.api_key, base_url=emu.base_url, read_rate=1000) as client:
            assert await client.credits() == emu.balance  # the fourth try answers
        assert emu.stats()["faults"] == {"http_500": 2, "http_429": 1}
    assert blocking == []
    reliability.record(
        "faults",
        "read retried (500, 500, 429)",
        tried=3,
        outcome="waited with asyncio; the event loop was never blocked",
    )


@pytest.mark.slow
async def test_batch_runner_under_every_fault(
    faulty: Emulator, tmp_path: Path, reliability: Any
) -> None:
    """The same faults through the batch runner (its own client, journal, pacing and
    callbacks): every row ends downloaded, failed with a reason, unknown (a create whose
    answer was lost, never resent) or submitted (its last task never ended: followed again on
    resume, never created again); the journal's creates cover every task the emulator made,
    and every downloaded row has its image in the folder."""
    from kierouter.batch import BatchSettings, parse_rows, run_batch
    from kierouter.journal import SqliteJournal

    rows = parse_rows("\n".join(f"a red fox, take {i}" for i in range(JOBS)))
    settings = BatchSettings(
        policy="budget",
        base_url=faulty.base_url,
        loopback=True,
        time_scale=SCALE,
        concurrency=JOBS,
        create_limit=1000,
        create_window=1.0,
        read_rate=10_000,
    )
    out = tmp_path / "batch"
    report = await asyncio.wait_for(
        run_batch(rows, out, settings, api_key=faulty.api_key, plugins=_plugins()), 240
    )
    counts = report.counts
    assert report.jobs == JOBS
    settled = ("downloaded", "failed", "unknown", "submitted")
    assert sum(counts[state] for state in settled) == JOBS, counts
    assert counts["downloaded"] > 0

    backend = SqliteJournal(str(out / "journal.sqlite"))
    try:
        jobs = backend.jobs()
        attempts = backend.attempts()
    finally:
        backend.close()
    for job in jobs:
        if job.state == "downloaded":
            assert job.files and _existing([f.path for f in job.files]), job.key
        if job.state == "failed":
            assert job.error, job.key
    tasks = faulty.tasks()
    by_job = Counter(_job_of(t) for t in tasks)
    reached = Counter(a.job_key for a in attempts if a.reached_kie)
    over = {k: (n, reached[k]) for k, n in by_job.items() if n > reached[k]}
    assert over == {}, f"tasks the journal has no create for: {over}"
    named = {a.task_id for a in attempts if a.task_id}
    unnamed = [t["taskId"] for t in tasks if t["taskId"] not in named]
    assert len(unnamed) <= sum(
        1 for a in attempts if a.phase == "ambiguous" or a.outcome == "ambiguous"
    )
    reliability.record(
        "faults",
        f"{JOBS}-row batch run (kierouter.batch) under every fault",
        tried=JOBS,
        outcome=f"{counts['downloaded']} downloaded, {counts['failed']} failed with a reason, "
        f"{counts['unknown']} unknown (answer lost, not resent), {counts['submitted']} still "
        f"following a task that never ended; {len(tasks)} tasks, all journaled",
        lost=JOBS - sum(counts[state] for state in settled),
    )
