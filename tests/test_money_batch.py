"""The batch and the command line keep paid work: an image that cannot be written leaves the
batch running and its manifest written, and ``kierouter fetch`` saves it later; a router
pointed at a running emulator by ``KIE_BASE_URL`` creates one task and saves its image; the
router's create pacing matches KIE's real limit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kierouter import Router
from kierouter.batch import BatchSettings, batch_status, parse_rows, run_batch
from kierouter.cli import main
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator, in_thread

SCALE = 500.0
CLI = [sys.executable, "-m", "kierouter.cli"]


def _plugins() -> list[Any]:
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana]


def test_an_image_that_cannot_be_written_is_undelivered_and_fetched_later(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Row 2's image name is taken by a folder: the batch does not die (no ExceptionGroup),
    writes its manifest with row 2 undelivered (task id, URLs, credits, reason as fields), and
    creates nothing more for it; once the name is free, ``kierouter fetch DIR`` saves it."""
    rows = parse_rows("\n".join(f"a red fox, take {i}" for i in range(3)))
    out = tmp_path / "out"
    (out / "row-2-generate-1.png").mkdir(parents=True)  # where row 2's image would go
    with in_thread(time_scale=SCALE, create_limit=500, create_window=1.0) as emu:
        settings = BatchSettings(
            policy="budget", base_url=emu.base_url, loopback=True, time_scale=SCALE,
            create_limit=500, create_window=1.0, read_rate=1000.0,
        )  # fmt: skip
        report = asyncio.run(
            run_batch(rows, out, settings, api_key=emu.api_key, plugins=_plugins())
        )
        assert emu.stats()["created_total"] == 3
        assert report.counts["downloaded"] == 2 and report.counts["undelivered"] == 1
        (undelivered,) = report.undelivered
        assert undelivered["job_key"] == "row-2-generate" and undelivered["urls"]
        assert undelivered["task_id"] and undelivered["credits"] > 0 and undelivered["reason"]
        manifest = {
            m["job_key"]: m
            for m in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())
        }
        row2 = manifest["row-2-generate"]
        assert (row2["state"], row2["task_id"], row2["urls"]) == (
            "undelivered", undelivered["task_id"], undelivered["urls"],
        )  # fmt: skip
        assert batch_status(out)["undelivered"] == report.undelivered

        (out / "row-2-generate-1.png").rmdir()
        code = main(["fetch", str(out), "--json", "--sim-url", emu.base_url])
        fetched = json.loads(capsys.readouterr().out)
        assert code == 0 and [f["job_key"] for f in fetched["fetched"]] == ["row-2-generate"]
        assert emu.stats()["created_total"] == 3  # saved, never created again
    assert (out / "row-2-generate-1.png").is_file()
    status = batch_status(out)
    assert status["complete"] and status["undelivered"] == []


def test_kie_base_url_at_a_running_emulator_creates_one_task_and_saves_it(tmp_path: Path) -> None:
    """``KIE_BASE_URL=<a running kierouter sim> kierouter generate ...``: results on the
    emulator's own loopback host are fetched (it used to refuse them and pay model after
    model): one task, its image saved."""
    sim = subprocess.Popen(
        [*CLI, "sim", "--port", "0", "--time-scale", "1000"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().strip()
        env = {**os.environ, "KIE_BASE_URL": url, "KIE_API_KEY": "sim-key"}
        done = subprocess.run(
            [*CLI, "generate", "a red fox", "--out", str(tmp_path), "--json",
             "--listen", "127.0.0.1:0"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        stats = json.loads(
            subprocess.run(
                [sys.executable, "-c", f"import httpx; print(httpx.get('{url}/_sim/stats').text)"],
                capture_output=True, text=True, check=True,
            ).stdout
        )  # fmt: skip
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert stats["created_total"] == 1 and result["delivery"] == "downloaded"
    (file,) = result["files"]
    assert Path(file["path"]).parent == tmp_path and Path(file["path"]).stat().st_size > 0


@pytest.mark.slow
async def test_the_router_paces_creates_to_kies_real_limit() -> None:
    """25 jobs at once through a Router with its default create pacing, against an emulator
    enforcing KIE's real limit (20 creates per 10 s, not lifted): not one 429."""
    seedream = "bytedance/seedream-v4-text-to-image"
    policy = Policy(name="one", ladder=("seedream",), constraints=Constraints(allow=(seedream,)))
    async with Emulator(time_scale=SCALE) as emu:  # create_limit 20 per 10 s: KIE's
        async with Router(
            _plugins(), api_key=emu.api_key, base_url=emu.base_url, latency_scale=1 / SCALE
        ) as router:
            results = await asyncio.gather(
                *(router.generate(f"a red fox {i}", policy=policy) for i in range(25))
            )
        stats = emu.stats()
    assert all(r.ok for r in results)
    assert stats["created_total"] == 25 and stats["rejected"].get("429", 0) == 0
