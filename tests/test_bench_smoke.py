"""Every benchmark in ``bench/`` runs end to end in its smallest mode (``--smoke``).

These prove the scripts work against the current code (the emulator, the router, the policy
engine, the journal and the batch runner they drive); they assert nothing about speed. A smoke
run prints its table and writes no results file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

#: script -> a word its table must contain
SCRIPTS = {
    "import_time.py": "load_registry",
    "overhead.py": "router",
    "status_reads.py": "webhook",
    "detect_latency.py": "fixed 5 s polling",
    "cost_per_image.py": "expected-cost ordering",
    "scale.py": "in flight",
    "routing.py": "uncached",
    "ratelimit.py": "router create limiter",
    "scale_workers.py": "3 workers",
    "scale_pool.py": "2 accounts",
}
#: the scripts that need PostgreSQL and kierouter[scale]
NEEDS_POSTGRES = {"scale_workers.py", "scale_pool.py"}


def _scale_unavailable() -> str | None:
    """Why the scale benchmarks cannot run here (they need PostgreSQL and kierouter[scale])."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_scale_cluster", BENCH / "_scale_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    why: str | None = module.pg_unavailable()
    return why


def _run(script: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIE_")}
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=BENCH.parent,
        env=env,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def test_every_benchmark_has_a_smoke_test() -> None:
    """No script in bench/ is left out of this file."""
    scripts = {p.name for p in BENCH.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_runs_in_smoke_mode(script: str) -> None:
    """The script exits 0 and prints its table (with its command line) in --smoke mode."""
    if script in NEEDS_POSTGRES and (why := _scale_unavailable()) is not None:
        pytest.skip(f"{script} needs PostgreSQL: {why}")
    out = _run(script)
    assert SCRIPTS[script] in out
    assert f"uv run python bench/{script} --smoke" in out
