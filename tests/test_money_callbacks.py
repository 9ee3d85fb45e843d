"""Callbacks and task ids: a task id a callback names is journaled the moment it arrives, and a
callback naming another job's task (a leaked callback URL replayed) never serves a job."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx

import kierouter as kr
from kierouter import PollConfig, Router, WebhookConfig
from kierouter.journal import RouterJournal, SqliteJournal
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator

SCALE = 500.0
SEEDREAM = "bytedance/seedream-v4-text-to-image"
NANO = "google/nano-banana"


def _plugins() -> list[Any]:
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana]


def _only(family: str, model: str) -> Policy:
    return Policy(name=family, ladder=(family,), constraints=Constraints(allow=(model,)))


def _router(emu: Emulator, backend: SqliteJournal, **kw: Any) -> Router:
    client = kr.KieClient(emu.api_key, base_url=emu.base_url, read_rate=1000, read_attempts=1)
    return Router(
        _plugins(),
        client=client,
        latency_scale=1 / SCALE,
        allow_private_downloads=True,
        journal=RouterJournal(backend),
        webhook=WebhookConfig(listen="127.0.0.1:0", token_secret="shared-secret-for-tests"),
        **kw,
    )


async def test_a_task_named_by_a_callback_is_journaled_at_once(tmp_path: Path) -> None:
    """The create's answer is lost and every status read fails afterwards: the task id the
    callback names is in the journal anyway (the job is submitted with it, not unknown), so a
    resume can follow it; nothing is created again."""
    backend = SqliteJournal(tmp_path / "journal.sqlite")
    backend.add_jobs([("row-1", {})])
    async with Emulator(time_scale=SCALE) as emu:
        emu.inject("drop_connection", paths="create", count=1)
        emu.inject("http_500", paths="status")
        router = _router(emu, backend, poll=PollConfig(watch_limit=300))
        # the task can never be read: the job gives up on it (and never resends it)
        async with router:
            with contextlib.suppress(kr.KieRouterError):
                await router.generate(
                    "a red fox", policy=_only("seedream", SEEDREAM), job_key="row-1"
                )
        (task,) = emu.tasks()
    job = backend.job("row-1")
    assert job is not None and (job.state, job.task_id) == ("submitted", task["taskId"])
    assert [a.task_id for a in backend.attempts("row-1")] == [task["taskId"]]
    backend.close()


async def test_a_replayed_callback_naming_another_jobs_task_never_serves_a_job(
    tmp_path: Path, reliability: Any
) -> None:
    """Job B was served earlier (by another router sharing the journal). Job A's create answer
    is lost; A's callback URL leaks and a callback naming B's finished task is replayed to it.
    A ignores it and is served by its own task once KIE calls back for it."""
    backend = SqliteJournal(tmp_path / "journal.sqlite")
    backend.add_jobs([("job-b", {}), ("job-a", {})])
    async with Emulator(time_scale=SCALE) as emu:
        emu.configure("seedream", latency=(100, 120))
        async with _router(emu, backend) as first:
            served_b = await first.generate(
                "a cat", policy=_only("nano-banana", NANO), job_key="job-b"
            )
        task_b = served_b.task_ids[-1]
        emu.inject("drop_connection", paths="create", count=1)
        waiting = asyncio.Event()

        def sink(event: kr.Event) -> None:
            if event.job_key == "job-a" and "ambiguous" in event.detail:
                waiting.set()

        async with _router(emu, backend, event_sinks=[sink]) as second:
            job_a = asyncio.ensure_future(
                second.generate("a fox", policy=_only("seedream", SEEDREAM), job_key="job-a")
            )
            await asyncio.wait_for(waiting.wait(), 10)
            leaked = second.webhook_app.callback_url(second.public_url or "", "job-a")
            replay = {"code": 200, "msg": "success", "data": {"taskId": task_b, "state": "success"}}
            async with httpx.AsyncClient() as http:
                answer = await http.post(leaked, json=replay)
            assert answer.status_code == 200  # accepted as a hint, then checked
            served_a = await asyncio.wait_for(job_a, 30)
        tasks = {t["taskId"]: t for t in emu.tasks()}
    assert served_a.task_ids[-1] != task_b and tasks[served_a.task_ids[-1]]["model"] == SEEDREAM
    assert task_b not in served_a.task_ids
    assert emu.stats()["created_total"] == 2
    backend.close()
    reliability.record(
        "webhook",
        "leaked callback URL replayed with another job's finished task",
        tried=1,
        outcome="ignored; the job served by its own task",
    )
