"""`kierouter sim` as a real process: prints its URL and key, serves a recorded seedream job to a
downloadable PNG, and stops on SIGTERM; `generate --sim` and `batch run --sim` take a scenario."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

RECORDING = (
    Path(__file__).parent / "fixtures" / "kie-recordings" / "seedream-5-lite-text-to-image.json"
)


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sim_command_serves_a_recorded_job_until_terminated(tmp_path: Path) -> None:
    """The recorded createTask body gets a taskId; recordInfo reaches success; the PNG downloads."""
    port = free_port()
    body = json.loads(RECORDING.read_text())["exchanges"][0]["request"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kierouter.cli", "sim", "--port", str(port), "--time-scale", "500",
         "--api-key", "cli-test-key"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        key = process.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}" and key == "cli-test-key"
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
            created = http.post("/api/v1/jobs/createTask", json=body).json()
            task_id = created["data"]["taskId"]
            for _ in range(1000):
                # right after the create, KIE answers 422 "recordInfo is null": read again
                data = http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id}).json()[
                    "data"
                ] or {"state": "not visible yet"}
                if data["state"] in ("success", "fail"):
                    break
                time.sleep(0.02)
            assert data["state"] == "success"
            (png_url,) = json.loads(data["resultJson"])["resultUrls"]
            png = http.get(png_url)
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    assert code == 0


def test_sim_command_reports_a_bad_scenario(tmp_path: Path) -> None:
    """A scenario with an unknown key exits with code 2 and names the key."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[defaults]\ntimescale = 2\n")
    result = subprocess.run(
        [sys.executable, "-m", "kierouter.cli", "sim", "--port", "0", "--scenario", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "timescale" in result.stderr


def test_generate_and_batch_run_sim_take_a_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`generate --sim --scenario` and `batch run --sim --scenario` run their emulator with it
    (an empty balance: KIE's 402, exit code 4); `--scenario` without `--sim` is refused."""
    from kierouter.cli import main

    scenario = tmp_path / "broke.toml"
    scenario.write_text("[defaults]\ncredits = 0\n")
    rows = tmp_path / "rows.txt"
    rows.write_text("a red fox\n")
    common = ["--sim", "--scenario", str(scenario), "--time-scale", "200"]
    assert main(["generate", "a red fox", *common, "--out", str(tmp_path / "g")]) == 4
    assert "402" in capsys.readouterr().err
    assert main(["batch", "run", str(rows), "--out", str(tmp_path / "b"), *common]) == 4
    assert "402" in capsys.readouterr().err
    assert main(["generate", "a red fox", "--scenario", str(scenario)]) == 2
    assert "--scenario needs --sim" in capsys.readouterr().err
    assert main(["batch", "run", str(rows), "--out", str(tmp_path / "c"), "--scenario", "x"]) == 2
