"""Benchmark 1: import and plugin discovery in a cold process, against ``import httpx``.

Each sample is a fresh interpreter (``python -c``) that times, from inside, ``import kierouter``
followed by ``kierouter.load_registry()`` (entry-point discovery of every installed plugin and
their hook calls). The same is done for ``import kierouter`` alone and for ``import httpx`` as the
baseline; the variants alternate so that machine noise hits them alike. Also reported: the whole
process wall time seen by the parent (interpreter start-up included), and the slowest imports
(``-X importtime``) of one discovery run as the profile.

Two cache settings are measured: with the bytecode cache (``.pyc`` files, what an installed
package normally has; kept under a temporary ``PYTHONPYCACHEPREFIX`` so the tree stays clean) and
without it (``PYTHONDONTWRITEBYTECODE=1``, how this sandbox runs: every module is compiled from
source on every start).

Target: import + discovery < 150 ms.

    uv run python bench/import_time.py [--quick|--smoke]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from _common import parse_args, report, spread, summary, table

TARGET_MS = 150.0

VARIANTS = {
    "import kierouter + load_registry()": (
        "import kierouter\nr = kierouter.load_registry()\n"
        "extra = {'plugins': len(r.plugins), 'cards': len(r.cards),"
        " 'failed': [p.name for p in r.plugins if p.errors]}"
    ),
    "import kierouter": "import kierouter\nextra = {}",
    "import httpx (baseline)": "import httpx\nextra = {}",
}

CHILD = """\
import time
t0 = time.perf_counter()
{code}
t1 = time.perf_counter()
import json, sys
print(json.dumps({{"ms": (t1 - t0) * 1000, **extra}}))
"""


def environment(cached: bool, prefix: str) -> dict[str, str]:
    """The child's environment: with a bytecode cache under ``prefix``, or with none."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    if cached:
        env["PYTHONPYCACHEPREFIX"] = prefix
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_once(code: str, env: dict[str, str]) -> tuple[float, float, dict[str, object]]:
    """(inside ms, whole-process ms, extra facts) of one cold interpreter."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(code=code)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    wall = (time.perf_counter() - t0) * 1000
    data = json.loads(out.strip().splitlines()[-1])
    return float(data.pop("ms")), wall, data


def profile(code: str, env: dict[str, str], top: int = 12) -> list[tuple[str, float, float]]:
    """The slowest imports (cumulative ms) of one run under ``-X importtime``."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        try:
            own, cumulative = int(parts[0].split(":")[1]), int(parts[1])
        except ValueError:
            continue
        rows.append((parts[2].strip(), own / 1000, cumulative / 1000))
    rows.sort(key=lambda r: -r[2])
    return rows[:top]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    reps = {"smoke": 2, "quick": 15, "full": 40}[args.mode]
    prefix = tempfile.mkdtemp(prefix="kierouter-bench-pyc-")
    settings = {"bytecode cached": True, "no bytecode cache": False}
    inside: dict[tuple[str, str], list[float]] = {(c, n): [] for c in settings for n in VARIANTS}
    whole: dict[tuple[str, str], list[float]] = {(c, n): [] for c in settings for n in VARIANTS}
    facts: dict[str, object] = {}
    for cached in settings.values():  # warm the file system and the .pyc cache
        for code in VARIANTS.values():
            run_once(code, environment(cached, prefix))
    for _ in range(reps):
        for cache, cached in settings.items():
            env = environment(cached, prefix)
            for name, code in VARIANTS.items():
                ms, wall, extra = run_once(code, env)
                inside[cache, name].append(ms)
                whole[cache, name].append(wall)
                facts.update(extra)
    stats = {key: summary(v) for key, v in inside.items()}
    wall_stats = {key: summary(v) for key, v in whole.items()}
    main_name = next(iter(VARIANTS))
    met = {cache: stats[cache, main_name]["median"] < TARGET_MS for cache in settings}
    rows = []
    for cache in settings:
        for name in VARIANTS:
            target = ""
            if name == main_name:
                target = f"< {TARGET_MS:g} ms: {'met' if met[cache] else 'MISSED'}"
            rows.append(
                [
                    cache,
                    name,
                    spread(stats[cache, name], " ms"),
                    spread(wall_stats[cache, name], " ms"),
                    target,
                ]
            )
    md = table(["cache", "cold process", "import time (inside)", "whole process", "target"], rows)
    base = "import httpx (baseline)"
    ratios = ", ".join(
        f"{c}: {stats[c, main_name]['median'] / stats[c, base]['median']:.2f}×" for c in settings
    )
    md += (
        f"\n\n{reps} cold processes per row; {facts.get('plugins')} plugins installed, "
        f"{facts.get('cards')} model cards registered, failed plugins: {facts.get('failed')}. "
        f"kierouter + discovery relative to `import httpx`: {ratios}."
    )
    code = VARIANTS[main_name].split("\nextra")[0]
    profiles = {
        cache: profile(code, environment(cached, prefix)) for cache, cached in settings.items()
    }
    for cache, prof in profiles.items():
        md += f"\n\nSlowest imports in one discovery run, {cache} (`-X importtime`):\n\n"
        md += table(
            ["module", "self ms", "cumulative ms"],
            [[f"`{m}`", f"{s:.1f}", f"{c:.1f}"] for m, s, c in prof],
        )
    report(
        "import_time",
        args,
        {
            "reps": reps,
            "target_ms": TARGET_MS,
            "target_met": met,
            "inside_ms": {f"{c} / {n}": v for (c, n), v in stats.items()},
            "whole_process_ms": {f"{c} / {n}": v for (c, n), v in wall_stats.items()},
            "facts": facts,
            "profiles": profiles,
        },
        md,
    )


if __name__ == "__main__":
    main()
