"""The router's commands as a user runs them: generate --sim, status, credits, webhook serve."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kierouter._images import decode_png
from kierouter.sim import Emulator
from kierouter.webhooks import WebhookReceiver, sign

CLI = [sys.executable, "-m", "kierouter.cli"]


SEEDREAM = "bytedance/seedream-v4-text-to-image"


def _installed_models() -> set[str]:
    from kierouter._plugins import load_registry

    return set(load_registry().cards)


#: The commands below load plugins from entry points, as a user's install does.
needs_plugins = pytest.mark.skipif(
    SEEDREAM not in _installed_models(), reason="the Seedream plugin registers no model yet"
)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KIE_API_KEY": ""}  # --sim must not need a key
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


async def _arun(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


@needs_plugins
def test_generate_sim_json_writes_a_png(tmp_path: Path) -> None:
    """`kierouter generate PROMPT --sim --json` writes a valid PNG and prints the result JSON."""
    done = _run("generate", "a red fox in snow, watercolor", "--sim", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {"served_model", "attempts", "credits", "files", "seed", "job_key"} <= set(data)
    assert data["served_model"]
    assert data["credits"] == sum(a["credits"] for a in data["attempts"]) > 0
    for attempt in data["attempts"]:
        assert {"model", "task_id", "outcome", "reason", "credits", "seed"} <= set(attempt)
    (file,) = data["files"]
    path = Path(file["path"])
    assert path.parent == Path("kierouter-out") or path.parent == tmp_path / "kierouter-out"
    content = (tmp_path / path if not path.is_absolute() else path).read_bytes()
    assert hashlib.sha256(content).hexdigest() == file["sha256"]
    assert file["size"] == len(content)
    image = decode_png(content)
    assert image.width > 0 and image.height > 0


@needs_plugins
def test_generate_sim_human_output(tmp_path: Path) -> None:
    """Without --json the output names the model, the file and the credits with their USD."""
    done = _run(
        "generate", "a lighthouse", "--sim", "--aspect-ratio", "16:9", "--seed", "7",
        "--out", "shots", "--judge", "basic", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "served by " in done.stdout
    assert "credits: " in done.stdout and "$" in done.stdout
    assert list((tmp_path / "shots").glob("*.png"))


@pytest.mark.skipif(
    "recraft/crisp-upscale" not in _installed_models(), reason="needs the Recraft plugin"
)
def test_generate_runs_utility_tasks_without_a_prompt(tmp_path: Path) -> None:
    """`generate --task upscale --image URL` needs no prompt and is served by the upscaler;
    the result is larger than the emulator's source picture."""
    done = _run(
        "generate", "--task", "upscale", "--image", "https://example.com/photo.png",
        "--sim", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["served_model"] == "recraft/crisp-upscale"
    (file,) = data["files"]
    assert decode_png(_read(file["path"])).width > 0
    refused = _run("generate", "make it night", "--task", "edit", "--sim", cwd=tmp_path)
    assert refused.returncode == 2 and "an edit request needs" in refused.stderr


def test_generate_bad_input_exits_2(tmp_path: Path) -> None:
    """A bad request is refused before anything runs, with exit code 2."""
    done = _run("generate", "a fox", "--sim", "--count", "99", cwd=tmp_path)
    assert done.returncode == 2
    assert "count" in done.stderr


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=500) as emulator:
        yield emulator


@needs_plugins
async def test_credits_and_status_against_a_running_emulator(emu: Emulator, tmp_path: Path) -> None:
    """`kierouter credits` and `kierouter status TASK --model M --download DIR` talk to KIE."""
    code, out, err = await _arun("credits", "--sim-url", emu.base_url, "--json")
    assert code == 0, err
    assert json.loads(out)["credits"] == emu.balance

    async with httpx.AsyncClient(base_url=emu.base_url) as http:
        created = await http.post(
            "/api/v1/jobs/createTask",
            headers={"Authorization": f"Bearer {emu.api_key}"},
            json={"model": SEEDREAM, "input": {"prompt": "a fox", "image_size": "square"}},
        )
    task_id = created.json()["data"]["taskId"]
    code, out, err = await _arun(
        "status", task_id, "--model", SEEDREAM, "--sim-url", emu.base_url,
        "--json", "--download", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["task_id"] == task_id and data["state"] == "success"
    assert _read(data["files"][0]["path"]).startswith(b"\x89PNG")


async def test_webhook_serve_accepts_and_spools_callbacks(tmp_path: Path) -> None:
    """`kierouter webhook serve` checks tokens and signatures and spools accepted callbacks
    (into the SQLite spool routers read)."""
    spool = tmp_path / "callbacks.sqlite"
    env = {
        **os.environ,
        "KIEROUTER_WEBHOOK_TOKEN_SECRET": "serve-token-secret",
        "KIE_WEBHOOK_HMAC_KEY": "serve-hmac-key-0123",
    }
    proc = await asyncio.create_subprocess_exec(
        *CLI, "webhook", "serve", "--port", "0", "--spool", str(spool),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        base = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        tokens = WebhookReceiver(token_secret="serve-token-secret")
        url = tokens.callback_url(base, "row-3")
        body = {"code": 200, "data": {"taskId": "task-9", "state": "success"}}
        ts = str(int(time.time()))
        good = {
            "X-Webhook-Timestamp": ts,
            "X-Webhook-Signature": sign("serve-hmac-key-0123", "task-9", ts),
        }
        async with httpx.AsyncClient() as http:
            accepted = await http.post(url, json=body, headers=good)
            unsigned = await http.post(url, json=body)
            bad_token = await http.post(url.split("?")[0] + "?token=nope", json=body, headers=good)
        assert (accepted.status_code, unsigned.status_code, bad_token.status_code) == (
            200,
            401,
            401,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)
    with contextlib.closing(sqlite3.connect(spool)) as db:
        rows = db.execute("SELECT job_key, task_id, body FROM callbacks").fetchall()
    assert [(job, task, json.loads(body)) for job, task, body in rows] == [
        ("row-3", "task-9", body)
    ]
