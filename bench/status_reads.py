"""Benchmark 3: status reads per image: webhook vs adaptive polling vs fixed 5 s polling.

The same jobs (every installed text-to-image model, latencies drawn from each model's emulated
distribution) are run three ways against one emulator:

* **webhook**: the router's built-in receiver gets the emulator's signed callbacks; each callback
  is confirmed by one status read (polling only if no callback came by 4 × p90).
* **adaptive polling**: the router's default: first read near the model's p50, then growing
  intervals with jitter.
* **fixed 5 s polling**: what KIE's docs and most clients do: a read every 5 s until final.

Reads are counted per job from the client's side and checked against the emulator's counter.

Targets: webhook ≤ 1 read per image; adaptive polling ≤ 3 per image on median.

    uv run python bench/status_reads.py [--quick|--smoke]
"""

from __future__ import annotations

import asyncio
import statistics
from collections import defaultdict

from _common import parse_args, percentile, report, table
from _modes import HMAC, MODES, generate_models, run_mode

#: emulated seconds per real second; lower is closer to real timing (event-loop delays of a few
#: ms are scaled up by it), higher is faster to run
TIME_SCALE = {"smoke": 200.0, "quick": 25.0, "full": 25.0}


async def main_async(scale: float, per_model: int) -> tuple[dict[str, list], dict[str, int], list]:
    from kierouter import load_registry
    from kierouter.sim import in_thread

    registry = load_registry()
    models = generate_models(registry)
    records: dict[str, list] = {}
    emulator_reads: dict[str, int] = {}
    with in_thread(time_scale=scale, hmac_key=HMAC, create_limit=10**6, create_window=1.0) as emu:
        for mode in MODES:
            before = emu.stats()["status_reads"]
            records[mode] = await run_mode(emu, registry, mode, models, per_model)
            emulator_reads[mode] = emu.stats()["status_reads"] - before
    return records, emulator_reads, models


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    per_model = {"smoke": 1, "quick": 10, "full": 30}[args.mode]
    scale = TIME_SCALE[args.mode]
    records, emulator_reads, models = asyncio.run(main_async(scale, per_model))
    rows = []
    verdicts = {}
    results = {}
    for mode in MODES:
        reads = [r.reads for r in records[mode]]
        counted = sum(reads)
        median = statistics.median(reads)
        target = ""
        if mode == "webhook":
            met = max(reads) <= 1 and emulator_reads[mode] <= len(reads)
            target = f"≤ 1 per image: {'met' if met else 'MISSED'}"
            verdicts[mode] = met
        elif mode == "adaptive polling":
            met = median <= 3
            target = f"≤ 3 median: {'met' if met else 'MISSED'}"
            verdicts[mode] = met
        results[mode] = {
            "jobs": len(reads),
            "median": median,
            "mean": statistics.fmean(reads),
            "p90": percentile(reads, 90),
            "max": max(reads),
            "client_counted": counted,
            "emulator_counted": emulator_reads[mode],
        }
        rows.append(
            [
                mode,
                len(reads),
                f"{median:g}",
                f"{statistics.fmean(reads):.2f}",
                f"{percentile(reads, 90):g}",
                max(reads),
                f"{counted} / {emulator_reads[mode]}",
                target,
            ]
        )
    md = table(
        [
            "mode",
            "images",
            "reads/image median",
            "mean",
            "p90",
            "max",
            "reads (client / emulator)",
            "target",
        ],
        rows,
    )
    per_model_rows = []
    by_model: dict[tuple[str, str], list[int]] = defaultdict(list)
    for mode in MODES:
        for r in records[mode]:
            by_model[mode, r.model].append(r.reads)
    for model in models:
        per_model_rows.append(
            [f"`{model}`"] + [f"{statistics.median(by_model[mode, model]):g}" for mode in MODES]
        )
    md += "\n\nMedian reads per image by model:\n\n" + table(["model", *MODES], per_model_rows)
    md += (
        f"\n\n{per_model} jobs per model on {len(models)} models; emulator time_scale "
        f"{scale:g} (a 20 s job takes {20 / scale:g} s), the router told the same scale."
    )
    report(
        "status_reads",
        args,
        {
            "per_model": per_model,
            "time_scale": scale,
            "models": models,
            "results": results,
            "targets_met": verdicts,
        },
        md,
    )


if __name__ == "__main__":
    main()
