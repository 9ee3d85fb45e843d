"""Benchmark 4: time to detect completion: webhook vs adaptive polling vs fixed 5 s polling.

For every job, the delay between the moment the emulator finished the task (its own clock,
converted to this process's ``time.monotonic()``) and the moment the client knew it (the router's
``finished`` event; for the fixed loop, the read that saw the final state). Same jobs and models
as ``status_reads.py`` (every installed text-to-image model, latencies drawn from each model's
distribution, sped up by ``time_scale``).

Two readings of the same delay:

* **measured (real ms)**: what the run saw. For the webhook nothing in the path is scaled (the
  callback POST, the receiver, one confirming status read), so this IS the delay at KIE speed.
* **at KIE speed (model s)**: for polling, the delay is a wait between reads, which the emulator
  compresses: real × time_scale gives the delay a user would see against real KIE.

    uv run python bench/detect_latency.py [--quick|--smoke]
"""

from __future__ import annotations

import asyncio

from _common import parse_args, percentile, report, summary, table
from _modes import HMAC, MODES, generate_models, run_mode

TIME_SCALE = {"smoke": 200.0, "quick": 25.0, "full": 25.0}


async def main_async(scale: float, per_model: int) -> tuple[dict[str, list], list[str]]:
    from kierouter import load_registry
    from kierouter.sim import in_thread

    registry = load_registry()
    models = generate_models(registry)
    records = {}
    with in_thread(time_scale=scale, hmac_key=HMAC, create_limit=10**6, create_window=1.0) as emu:
        for mode in MODES:
            records[mode] = await run_mode(emu, registry, mode, models, per_model)
    return records, models


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    per_model = {"smoke": 1, "quick": 10, "full": 30}[args.mode]
    scale = TIME_SCALE[args.mode]
    records, models = asyncio.run(main_async(scale, per_model))
    rows = []
    results = {}
    for mode in MODES:
        real_ms = [r.delay * 1000 for r in records[mode]]
        s = summary(real_ms)
        p90 = percentile(real_ms, 90)
        if mode == "webhook":
            kie = f"{s['median'] / 1000:.3f} s (p90 {p90 / 1000:.3f} s)"
        else:
            kie = f"{s['median'] / 1000 * scale:.1f} s (p90 {p90 / 1000 * scale:.1f} s)"
        results[mode] = {**s, "p90": p90, "unit": "real ms"}
        rows.append(
            [
                mode,
                s["n"],
                f"{s['median']:.1f}",
                f"{s['q1']:.1f}–{s['q3']:.1f}",
                f"{p90:.1f}",
                f"{s['max']:.1f}",
                kie,
            ]
        )
    md = table(
        [
            "mode",
            "jobs",
            "median (real ms)",
            "IQR (real ms)",
            "p90 (real ms)",
            "max (real ms)",
            "at KIE speed: median (p90)",
        ],
        rows,
    )
    hook = results["webhook"]["median"]
    adaptive = results["adaptive polling"]["median"]
    fixed = results["fixed 5 s polling"]["median"]
    md += (
        f"\n\n{per_model} jobs per model on {len(models)} models; emulator time_scale {scale:g}. "
        f"At KIE speed (medians): the webhook knows in {hook:.1f} ms, adaptive polling "
        f"{adaptive * scale / 1000:.1f} s and fixed 5 s polling {fixed * scale / 1000:.1f} s "
        "after the task finished."
    )
    report(
        "detect_latency",
        args,
        {"per_model": per_model, "time_scale": scale, "models": models, "results": results},
        md,
    )


if __name__ == "__main__":
    main()
