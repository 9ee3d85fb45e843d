"""Benchmark 4, repeated: the 1,000-in-flight row of ``detect_latency.py`` run several times in
one process, the two read schedules alternating which goes first.

``detect_latency.py`` runs each in-flight row once; at 1,000 in flight the two schedules'
medians differ by a few percent, about what one run differs from the next on a shared machine.
This runs that row ``REPEATS`` times (per-task then shared, then shared then per-task, ...) so
the difference can be read against its spread. Same harness (``_modes.run_in_flight``): Seedream,
no webhook, 9 reads per emulated second through one strict limiter for both (bursts of one read),
the emulator refusing above 10.

    uv run python bench/detect_repeat.py [--quick|--smoke]
"""

from __future__ import annotations

import asyncio

from _common import parse_args, percentile, report, summary, table
from _modes import busiest_window, run_in_flight
from detect_latency import BUDGET, FLIGHT_MODEL, KIE_LIMIT

#: (jobs in flight, jobs in all, emulator time_scale, repetitions) per mode.
SIZES = {"smoke": (5, 5, 100.0, 1), "quick": (1000, 1000, 5.0, 2), "full": (1000, 2000, 5.0, 3)}


async def repeat_async(mode: str) -> list[dict]:
    from kierouter import load_registry
    from kierouter.sim import in_thread

    registry = load_registry()
    inflight, total, scale, repeats = SIZES[mode]
    rows = []
    with in_thread(
        time_scale=scale, create_limit=10**6, create_window=1.0, read_limit=KIE_LIMIT * scale
    ) as emu:
        for rep in range(repeats):
            order = ("per-task", "shared") if rep % 2 == 0 else ("shared", "per-task")
            for scheduler in order:
                run = await run_in_flight(
                    emu, registry, scheduler, FLIGHT_MODEL, inflight, total, BUDGET
                )
                delays = [rec.delay * scale for rec in run.records]
                reads = [rec.reads for rec in run.records]
                rows.append(
                    {
                        "repetition": rep + 1,
                        "scheduler": scheduler,
                        "inflight": inflight,
                        "jobs": len(run.records),
                        "time_scale": scale,
                        "median_s": summary(delays)["median"],
                        "p90_s": percentile(delays, 90),
                        "reads_per_image_mean": sum(reads) / max(1, len(reads)),
                        "reads_per_second_mean": run.emulator_reads / (run.seconds * scale),
                        "busiest_second": busiest_window(run.read_times, 1.0 / scale),
                        "rejected_429": run.rejected_429,
                    }
                )
    return rows


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    rows = asyncio.run(repeat_async(args.mode))
    md = table(
        [
            "repetition",
            "schedule",
            "in flight",
            "jobs",
            "delay median (s)",
            "p90 (s)",
            "reads/image mean",
            "reads/s mean",
            "busiest second",
            "429s",
        ],
        [
            [
                r["repetition"],
                r["scheduler"],
                r["inflight"],
                r["jobs"],
                f"{r['median_s']:.2f}",
                f"{r['p90_s']:.2f}",
                f"{r['reads_per_image_mean']:.2f}",
                f"{r['reads_per_second_mean']:.2f}",
                r["busiest_second"],
                r["rejected_429"],
            ]
            for r in rows
        ],
    )
    ratios = []
    for rep in sorted({r["repetition"] for r in rows}):
        by = {r["scheduler"]: r for r in rows if r["repetition"] == rep}
        ratios.append(by["shared"]["median_s"] / by["per-task"]["median_s"])
    md += (
        "\n\nShared median / per-task median per repetition: "
        + ", ".join(f"{x:.3f}" for x in ratios)
        + f". Read budget {BUDGET:g} per emulated second for both (one limiter, bursts of one "
        f"read), the emulator refusing above {KIE_LIMIT:g}; delays in emulated seconds."
    )
    report("detect_repeat", args, {"model": FLIGHT_MODEL, "budget": BUDGET, "rows": rows,
                                   "shared_over_per_task": ratios}, md)  # fmt: skip


if __name__ == "__main__":
    main()
