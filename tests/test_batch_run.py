"""Batch runs against the emulator over real HTTP: budgets, the create limiter, pipelines,
and resume idempotence."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kierouter.batch import (
    BatchBudgetError,
    BatchSettings,
    batch_status,
    parse_rows,
    plan_rows,
    resume_batch,
    run_batch,
)
from kierouter.journal import SqliteJournal
from kierouter.sim import Emulator

SCALE = 100.0


def _plugins() -> list[Any]:
    import kierouter_nano_banana
    import kierouter_recraft
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana, kierouter_recraft]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=SCALE, create_limit=20, create_window=2.0) as emulator:
        yield emulator


def _settings(emu: Emulator, **kw: Any) -> BatchSettings:
    base: dict[str, Any] = {
        "base_url": emu.base_url,
        "loopback": True,
        "time_scale": SCALE,
        "create_limit": 20,
        "create_window": 2.0,
        "read_rate": 1000.0,
    }
    return BatchSettings(**{**base, **kw})


def _rows(n: int) -> list[Any]:
    return parse_rows("\n".join(f"a red fox, study {i}" for i in range(n)))


def _manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


async def test_plan_over_budget_does_not_start(emu: Emulator, tmp_path: Path) -> None:
    """A batch whose expected cost exceeds --budget is refused before any create: no task on
    the emulator, no journal in the folder."""
    rows = _rows(10)
    plan = plan_rows(rows, _settings(emu), plugins=_plugins())
    assert plan.expected_credits > 10
    with pytest.raises(BatchBudgetError, match="over the budget of 10"):
        await run_batch(
            rows, tmp_path / "out", _settings(emu, budget=10.0), api_key=emu.api_key,
            plugins=_plugins(),
        )  # fmt: skip
    assert emu.stats()["created_total"] == 0
    assert not (tmp_path / "out" / "journal.sqlite").exists()


async def test_budget_reached_stops_creating_and_reports_spent(
    emu: Emulator, tmp_path: Path
) -> None:
    """When the first model fails every task, escalations cost more than planned: the batch
    stops creating once spent plus in-flight would pass the budget, never spends past it, and
    reports what it spent; the emulator charged exactly that."""
    rows = _rows(10)
    plan = plan_rows(rows, _settings(emu), plugins=_plugins())
    first, second = plan.jobs[0].models[:2]
    emu.configure(first, fail_rate=1.0)
    from kierouter._plugins import load_registry

    cost = load_registry(_plugins(), entry_points=False).card(second).credits_for(rows[0].request)
    # every row will be served by the second rung, which costs more in total than planned
    assert 10 * cost > plan.expected_credits
    budget = plan.expected_credits
    out = tmp_path / "out"
    report = await run_batch(
        rows, out, _settings(emu, budget=budget), api_key=emu.api_key, plugins=_plugins()
    )
    assert report.budget_reached and not report.complete
    assert "budget reached" in (report.stopped or "")
    assert 0 < report.spent <= budget
    assert report.spent == pytest.approx(emu.stats()["credits_charged"])
    assert 0 < report.counts["downloaded"] < 10 and report.counts["planned"] > 0
    journal = SqliteJournal(out / "journal.sqlite")
    assert emu.stats()["created_total"] == sum(a.reached_kie for a in journal.attempts())
    journal.close()


async def test_create_limiter_sees_no_429(emu: Emulator, tmp_path: Path) -> None:
    """With the emulator limiting creates to 20 per 2 s and the batch set to the same, 60 rows
    (three windows) are created without a single 429 answer."""
    out = tmp_path / "out"
    report = await run_batch(
        _rows(60), out, _settings(emu, concurrency=60), api_key=emu.api_key, plugins=_plugins()
    )
    stats = emu.stats()
    assert report.complete and stats["created_total"] == 60
    assert stats["rejected"].get("429", 0) == 0


async def test_pipeline_steps_and_resume_is_idempotent(emu: Emulator, tmp_path: Path) -> None:
    """A generate → upscale → remove-background row runs each step on the previous image, each
    its own journaled job and file; resuming a finished batch creates nothing and leaves the
    manifest as it was."""
    rows = parse_rows(
        '{"prompt": "a mug", "id": "mug", "seed": 5, '
        '"steps": ["generate", "upscale", "remove-background"]}\n{"prompt": "a fox"}\n',
        fmt="jsonl",
    )
    out = tmp_path / "out"
    report = await run_batch(rows, out, _settings(emu), api_key=emu.api_key, plugins=_plugins())
    assert report.complete and report.jobs == 4
    manifest = _manifest(out)
    by_key = {m["job_key"]: m for m in manifest}
    assert set(by_key) == {"mug-generate", "mug-upscale", "mug-remove-background", "row-2-generate"}
    assert by_key["mug-upscale"]["served_model"] == "recraft/crisp-upscale"
    assert by_key["mug-remove-background"]["served_model"] == "recraft/remove-background"
    for entry in manifest:
        data = (out / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert entry["task_ids"] and entry["credits"] > 0
    tasks = {t["taskId"]: t for t in emu.tasks()}
    upscale_in = tasks[by_key["mug-upscale"]["task_ids"][0]]
    generated = tasks[by_key["mug-generate"]["task_ids"][0]]
    assert upscale_in["model"] == "recraft/crisp-upscale" and generated["state"] == "success"
    before = (out / "manifest.jsonl").read_bytes()
    created = emu.stats()["created_total"]
    again = await resume_batch(out, api_key=emu.api_key, plugins=_plugins())
    assert again.complete and again.created_this_run == 0
    assert emu.stats()["created_total"] == created
    assert (out / "manifest.jsonl").read_bytes() == before
    status = batch_status(out)
    assert status["complete"] and status["creates"] == created == 4


async def test_lost_create_answers_are_reconciled_not_resent(emu: Emulator, tmp_path: Path) -> None:
    """Creates whose answers are lost become unknown and are reconciled by the callbacks that
    carry their job keys: every row served, one task per row, none resent."""
    emu.inject("drop_connection", paths="create", count=3)
    out = tmp_path / "out"
    report = await run_batch(_rows(8), out, _settings(emu), api_key=emu.api_key, plugins=_plugins())
    assert report.complete and emu.stats()["created_total"] == 8
    journal = SqliteJournal(out / "journal.sqlite")
    reconciled = [a for a in journal.attempts() if "named by its callback" in a.reason]
    assert len(reconciled) == 3 and all(a.task_id for a in reconciled)
    journal.close()
