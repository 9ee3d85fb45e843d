"""The router writes its journal into SQLite: intents, task ids, escalations, ambiguous creates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kierouter._router import Router, WebhookConfig
from kierouter._transport import KieClient
from kierouter.journal import RouterJournal, SqliteJournal
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator

SEEDREAM = "bytedance/seedream-v4-text-to-image"
NANO = "google/nano-banana"
LADDER = Policy(
    name="two-rungs",
    ladder=("seedream", "nano-banana"),
    constraints=Constraints(allow=(SEEDREAM, NANO)),
)


def _plugins() -> list[Any]:
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=200, create_limit=500, create_window=1.0) as emulator:
        yield emulator


def _router(emu: Emulator, backend: SqliteJournal, **kw: Any) -> tuple[Router, KieClient]:
    client = KieClient(emu.api_key, base_url=emu.base_url, read_rate=500)
    router = Router(
        _plugins(),
        client=client,
        latency_scale=1 / 200,
        allow_private_downloads=True,
        journal=RouterJournal(backend),
        **kw,
    )
    return router, client


async def test_escalation_is_journaled(emu: Emulator, tmp_path: Path) -> None:
    """A failed first rung and a served second rung leave two attempt rows with the emulator's
    task ids, the job succeeded with its result, and as many creates as rows reaching KIE."""
    emu.configure("seedream", fail_rate=1.0)
    backend = SqliteJournal(tmp_path / "journal.sqlite")
    backend.add_jobs([("row-1", {"prompt": "a red fox"})])
    router, client = _router(emu, backend)
    async with router:
        result = await router.generate("a red fox", policy=LADDER, job_key="row-1")
    await client.aclose()
    job = backend.job("row-1")
    assert job is not None and job.state == "succeeded"
    assert job.result is not None and job.result.served_model == NANO
    attempts = backend.attempts("row-1")
    assert [(a.model, a.outcome, a.task_id) for a in attempts] == [
        (SEEDREAM, "failed", result.task_ids[0]),
        (NANO, "success", result.task_ids[1]),
    ]
    assert emu.stats()["created_total"] == sum(a.reached_kie for a in backend.attempts()) == 2
    assert backend.spent() == result.credits


async def test_a_job_that_gives_up_is_failed_in_the_journal(emu: Emulator, tmp_path: Path) -> None:
    """When every rung fails, the router tells the journal and the job ends ``failed`` with the
    reason (not left ``planned``, where a resume would pay for it again)."""
    from kierouter import JobFailedError

    emu.configure("seedream", fail_rate=1.0)
    emu.configure("nano-banana", fail_rate=1.0)
    backend = SqliteJournal(tmp_path / "journal.sqlite")
    backend.add_jobs([("row-9", {"prompt": "a red fox"})])
    router, client = _router(emu, backend)
    async with router:
        with pytest.raises(JobFailedError):
            await router.generate("a red fox", policy=LADDER, job_key="row-9")
    await client.aclose()
    job = backend.job("row-9")
    assert job is not None and job.state == "failed"
    assert job.error is not None and "every model in the plan failed" in job.error
    assert [a.outcome for a in backend.attempts("row-9")] == ["failed", "failed"]


async def test_lost_create_answer_is_unknown_then_reconciled(emu: Emulator, tmp_path: Path) -> None:
    """A dropped create answer is journaled as unknown (durably: a second connection sees it)
    and the callback carrying the job key names the task, without a second create."""
    emu.inject("drop_connection", paths="create", count=1)
    path = tmp_path / "journal.sqlite"
    backend = SqliteJournal(path)
    backend.add_jobs([("row-2", {"prompt": "a red fox"})])
    seen: list[str] = []

    def watch(event: Any) -> None:
        if event.kind == "failed" and "ambiguous" in event.detail:
            other = SqliteJournal(path)
            seen.append(other.job("row-2").state)  # type: ignore[union-attr]
            other.close()

    router, client = _router(
        emu, backend, webhook=WebhookConfig(listen="127.0.0.1:0"), event_sinks=[watch]
    )
    async with router:
        result = await router.generate("a red fox", policy=LADDER, job_key="row-2")
    await client.aclose()
    assert seen == ["unknown"]
    job = backend.job("row-2")
    assert job is not None and job.state == "succeeded" and job.task_id == result.task_ids[0]
    assert emu.stats()["created_total"] == 1
