"""A task past its deadline: on_timeout = "escalate" hedges (the next model runs, the late task
is watched and its image kept as a paid extra), "wait" follows it on. Its price stays held."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import kierouter as kr
from kierouter import Router
from kierouter.journal import RouterJournal, SqliteJournal
from kierouter.policy import Budget, Constraints, Policy
from kierouter.sim import Emulator

SCALE = 500.0
SEEDREAM = "bytedance/seedream-v4-text-to-image"
NANO = "google/nano-banana"
TWO = Constraints(allow=(SEEDREAM, NANO))


def _plugins() -> list[Any]:
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana]


def _saved(path: str | Path) -> bool:
    return os.path.isfile(path) and os.path.getsize(path) > 0


def _policy(**kw: Any) -> Policy:
    return Policy(name="late", ladder=("seedream", "nano-banana"), constraints=TWO, **kw)


@pytest.fixture
async def late() -> AsyncIterator[Emulator]:
    """Seedream takes 600-650 s, well past its 135 s deadline; Nano Banana 5-8 s."""
    async with Emulator(time_scale=SCALE, create_limit=500, create_window=1.0) as emulator:
        emulator.configure("seedream", latency=(600, 650))
        emulator.configure("nano-banana", latency=(5, 8))
        yield emulator


def _router(emu: Emulator, **kw: Any) -> Router:
    client = kr.KieClient(emu.api_key, base_url=emu.base_url, read_rate=1000)
    return Router(
        _plugins(), client=client, latency_scale=1 / SCALE, allow_private_downloads=True, **kw
    )


async def test_escalate_hedges_and_keeps_the_late_image_as_a_paid_extra(
    late: Emulator, tmp_path: Path
) -> None:
    """The late Seedream task is hedged: Nano Banana serves the job, the result names the task
    still watched, and when Seedream finishes its image is saved as an extra, journaled with
    the credits KIE charged and announced by an 'extra' event. Every billed task is accounted
    for: the emulator's charges equal the result's credits plus the extra's."""
    events: list[kr.Event] = []
    backend = SqliteJournal(tmp_path / "journal.sqlite")
    backend.add_jobs([("row-1", {})])
    router = _router(
        late, out_dir=tmp_path, journal=RouterJournal(backend), event_sinks=[events.append]
    )
    async with router:
        result = await router.generate("a red fox", policy=_policy(), job_key="row-1")
        seedream_task = result.task_ids[0]
        assert [(a.model, a.outcome) for a in result.attempts] == [
            (SEEDREAM, "hedged"),
            (NANO, "success"),
        ]
        assert result.watching == (seedream_task,) and router.watching("row-1") == result.watching
        (extra,) = await router.drain()
    assert (extra.task_id, extra.outcome) == (seedream_task, "extra")
    assert extra.credits == late.charges()["tasks"][seedream_task] > 0
    assert [Path(f.path).name for f in extra.files] == ["row-1-extra1-1.png"]
    assert _saved(extra.files[0].path)
    charged = late.charges()["total"]
    assert charged == result.credits + extra.credits
    assert backend.spent() == charged and backend.job("row-1").credits == charged  # type: ignore[union-attr]
    (recorded,) = [a for a in backend.attempts("row-1") if a.task_id == seedream_task]
    assert (recorded.phase, recorded.outcome, recorded.credits) == ("ended", "extra", extra.credits)
    assert any(e.kind == "hedged" and e.task_id == seedream_task for e in events)
    assert any(e.kind == "extra" and e.task_id == seedream_task for e in events)
    backend.close()


async def test_wait_follows_the_late_task_and_creates_nothing_else(
    late: Emulator, tmp_path: Path
) -> None:
    """With on_timeout = "wait" the job follows the late task past its deadline and is served
    by it: one task."""
    async with _router(late, out_dir=tmp_path) as router:
        result = await router.generate("a red fox", policy=_policy(on_timeout="wait"))
    assert late.stats()["created_total"] == 1
    assert [(a.model, a.outcome) for a in result.attempts] == [(SEEDREAM, "success")]


async def test_a_hedged_task_keeps_its_price_held_in_the_job_budget(
    late: Emulator, tmp_path: Path
) -> None:
    """max_credits 7: with Seedream's 3.5 still held by its hedged task, Nano Banana's 4 does
    not fit, so nothing else is created; the job waits for the watched task and is served by
    it."""
    policy = _policy(budget=Budget(max_credits=7))
    async with _router(late, out_dir=tmp_path) as router:
        result = await router.generate("a red fox", policy=policy)
    assert late.stats()["created_total"] == 1
    assert result.served_model == SEEDREAM and result.delivery == "downloaded"
    assert [a.outcome for a in result.attempts] == ["success", "skipped"]
    assert "left under max_credits" in result.attempts[1].reason


async def test_a_batch_row_stays_open_until_its_watched_task_ends(
    late: Emulator, tmp_path: Path
) -> None:
    """Through the batch: rows whose first task ran late are hedged; the batch returns only
    once their watched tasks ended, reports them, and the manifest lists each extra with its
    files and credits; the emulator's charges equal the journal's and the manifest's."""
    from kierouter.batch import BatchSettings, batch_status, parse_rows, run_batch

    late.configure("seedream", latency=(5, 8))
    late.configure(SEEDREAM, latency=(300, 320))  # the budget policy's first choice runs late
    rows = parse_rows("\n".join(f"a red fox, take {i}" for i in range(6)))
    settings = BatchSettings(
        policy="budget", base_url=late.base_url, loopback=True, time_scale=SCALE,
        create_limit=500, create_window=1.0, read_rate=1000.0,
    )  # fmt: skip
    out = tmp_path / "out"
    report = await run_batch(rows, out, settings, api_key=late.api_key, plugins=_plugins())
    assert report.complete and report.hedged == 6 and report.extras == 6
    status = batch_status(out)
    assert status["watching"] == [] and status["hedged"] == 6
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert all(m["hedged"] and len(m["extras"]) == 1 for m in manifest)
    for m in manifest:
        (extra,) = m["extras"]
        assert _saved(out / extra["files"][0]["path"]) and extra["credits"] > 0
    charged = late.charges()["total"]
    assert report.spent == pytest.approx(charged) == sum(m["credits"] for m in manifest)


async def test_a_hedged_task_that_finished_serves_before_another_create(tmp_path: Path) -> None:
    """Seedream runs past its deadline and is hedged; Nano Banana's task then fails, by which
    time Seedream's has finished: the job is served by that paid image instead of creating a
    third task on Qwen."""
    import kierouter_qwen

    qwen = "qwen/text-to-image"
    policy = Policy(
        name="three",
        ladder=("seedream", "nano-banana", "qwen"),
        constraints=Constraints(allow=(SEEDREAM, NANO, qwen)),
    )
    async with Emulator(time_scale=SCALE, create_limit=500, create_window=1.0) as emu:
        emu.configure("seedream", latency=(145, 150))  # past its 135 s deadline
        emu.configure("nano-banana", latency=(30, 35), fail_rate=1.0)  # fails after it ends
        client = kr.KieClient(emu.api_key, base_url=emu.base_url, read_rate=1000)
        router = Router(
            [*_plugins(), kierouter_qwen], client=client, latency_scale=1 / SCALE,
            allow_private_downloads=True, out_dir=tmp_path,
        )  # fmt: skip
        async with router:
            result = await router.generate("a red fox", policy=policy)
        assert emu.stats()["created_total"] == 2
    assert result.served_model == SEEDREAM and result.delivery == "downloaded"
    assert [(a.model, a.outcome) for a in result.attempts] == [
        (SEEDREAM, "success"),
        (NANO, "failed"),
    ]
