"""Shared helpers for the benchmarks in ``bench/``: machine facts, statistics, the emulator.

Every benchmark is a script run as ``uv run python bench/<name>.py [--quick|--smoke]``. It compares
two (or more) things in one run, prints a Markdown table, and writes the same numbers as JSON to
``bench/results/<name>.json`` (``--smoke`` runs write nothing: they only prove the script works).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(description: str, extra: Sequence[tuple[str, dict[str, Any]]] = ()) -> Any:
    """``--quick`` (under 2 minutes) and ``--smoke`` (seconds; for the test suite)."""
    parser = argparse.ArgumentParser(description=description)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller run, under 2 minutes")
    mode.add_argument("--smoke", action="store_true", help="tiny run proving the script works")
    for flag, options in extra:
        parser.add_argument(flag, **options)
    args = parser.parse_args()
    args.mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    # the jobs' own warnings (failed tasks are part of some scenarios) would flood the output
    import logging

    logging.getLogger("kierouter").setLevel(logging.ERROR)
    return args


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": cores,
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "load_1min": round(load[0], 2),
    }


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, min and max of ``samples``."""
    data = sorted(samples)
    if not data:
        return {"n": 0, "median": float("nan"), "q1": float("nan"), "q3": float("nan"),
                "min": float("nan"), "max": float("nan")}  # fmt: skip
    if len(data) >= 4:
        q1, _, q3 = statistics.quantiles(data, n=4)
    else:
        q1, q3 = data[0], data[-1]
    return {
        "n": len(data),
        "median": statistics.median(data),
        "q1": q1,
        "q3": q3,
        "min": data[0],
        "max": data[-1],
    }


def percentile(samples: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100), nearest rank."""
    data = sorted(samples)
    if not data:
        return float("nan")
    rank = max(0, min(len(data) - 1, round(p / 100 * len(data) + 0.5) - 1))
    return data[rank]


def spread(s: dict[str, float], unit: str = "", digits: int = 1) -> str:
    """``median (IQR q1–q3, min–max)`` as text."""
    f = f"{{:.{digits}f}}"
    return (
        f"{f.format(s['median'])}{unit} (IQR {f.format(s['q1'])}–{f.format(s['q3'])}, "
        f"range {f.format(s['min'])}–{f.format(s['max'])})"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report(name: str, args: Any, data: dict[str, Any], markdown: str) -> None:
    """Print the table and machine line; save JSON unless this was a smoke run."""
    info = machine()
    command = f"uv run python bench/{name}.py" + ("" if args.mode == "full" else f" --{args.mode}")
    print(markdown)
    print()
    print(
        f"Command: `{command}` · {info['cores']} cores ({info['cpu']}) · "
        f"Python {info['python']} · load {info['load_1min']}"
    )
    if args.mode == "smoke":
        return
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "command": command,
        "mode": args.mode,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info,
        **data,
    }
    suffix = "" if args.mode == "full" else f"-{args.mode}"
    path = RESULTS / f"{name}{suffix}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    print(f"Saved {path.relative_to(ROOT)}")


class EmulatorProcess:
    """The emulator in its own process (``python -m kierouter.cli sim``), on a free port.

    Running KIE's stand-in in a separate process keeps its CPU off the client's core, as the real
    API is: on a 2-core machine the client under test gets one core and the emulator the other.
    Settings go through the admin API (``/_sim/configure``); counters come from ``/_sim/stats``.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.api_key = ""

    def __enter__(self) -> EmulatorProcess:
        cmd = [sys.executable, "-m", "kierouter.cli", "sim", "--port", "0"]
        for name, value in self.options.items():
            cmd += [f"--{name.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        self.api_key = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"emulator did not start: {err}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One admin call (blocking; not part of any timed section)."""
        import httpx

        response = httpx.request(method, f"{self.base_url}/_sim/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def configure(self, **settings: Any) -> None:
        """``POST /_sim/configure`` (model settings need ``model=``)."""
        self.admin("POST", "configure", settings)

    def stats(self) -> dict[str, Any]:
        """``GET /_sim/stats``."""
        result: dict[str, Any] = self.admin("GET", "stats")
        return result

    def reset(self) -> None:
        """``POST /_sim/reset``: forget tasks, counters and model settings."""
        self.admin("POST", "reset", {})


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """Wall and CPU seconds of the block: ``with timer() as t: ...; t["wall"], t["cpu"]``."""
    out: dict[str, float] = {}
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - w0
        out["cpu"] = time.process_time() - c0
