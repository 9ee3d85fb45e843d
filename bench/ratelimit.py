"""Benchmark 8: create-rate saturation: achieved create rate / allowed, and 429s.

The emulator enforces a create limit (20 per 2 s in the full and quick runs; KIE's is 20 per
10 s, shortened here to keep the run short, the ratio is what counts). The same N jobs (Seedream
v4, jobs finish fast) are pushed three ways:

* **no client pacing**: a router whose client limit is set far above the server's; it learns
  of the limit from 429 answers and waits out their ``Retry-After``;
* **router create limiter**: ``KieClient(create_limit=20, create_window=2)``, the router's own
  window limiter matched to the server's;
* **batch runner**: ``kierouter.batch.run_batch`` with ``create_limit``/``create_window`` set
  to the server's (its pacer, journal, downloads and callbacks included).

Achieved rate = creates after the first full window / time from the first to the last create
(the emulator's clock), divided by the allowed rate; 1.0 is a perfect limiter.
Target: close to 1.0 with zero 429s.

    uv run python bench/ratelimit.py [--quick|--smoke]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import parse_args, report, table

TIME_SCALE = 200.0
SEEDREAM = "bytedance/seedream-v4-text-to-image"


def _plugins() -> list[Any]:
    import kierouter_seedream

    return [kierouter_seedream]


async def _router_run(emu: Any, jobs: int, client_limit: int, window: float) -> None:
    from kierouter import KieClient, Router
    from kierouter.policy import Constraints, Policy

    policy = Policy(name="one", ladder=("seedream",), constraints=Constraints(allow=(SEEDREAM,)))
    client = KieClient(
        emu.api_key, base_url=emu.base_url, create_limit=client_limit, create_window=window,
        read_rate=1000, create_attempts=10,
    )  # fmt: skip
    router = Router(_plugins(), client=client, policy=policy, latency_scale=1 / TIME_SCALE)
    async with client, router:
        results = await asyncio.gather(
            *(router.generate(f"a red fox, take {i}") for i in range(jobs)),
            return_exceptions=True,
        )
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        print(f"  {len(failed)} jobs failed, e.g. {failed[0]!r:.200}")


async def _batch_run(emu: Any, jobs: int, limit: int, window: float) -> None:
    from kierouter.batch import BatchSettings, parse_rows, run_batch

    rows = parse_rows("\n".join(f"a red fox, take {i}" for i in range(jobs)))
    settings = BatchSettings(
        base_url=emu.base_url, loopback=True, time_scale=TIME_SCALE, create_limit=limit,
        create_window=window, concurrency=max(50, 2 * limit), read_rate=1000,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kierouter-bench-batch-") as tmp:
        result = await run_batch(
            rows, Path(tmp) / "out", settings, api_key=emu.api_key, plugins=_plugins()
        )
    if not result.complete:
        print(f"  batch incomplete: {result.counts}")


async def measure(way: str, jobs: int, limit: int, window: float) -> dict[str, Any]:
    from kierouter.sim import Emulator

    async with Emulator(time_scale=TIME_SCALE, create_limit=limit, create_window=window) as emu:
        t0 = time.perf_counter()
        if way == "no client pacing":
            await _router_run(emu, jobs, 10**6, 1.0)
        elif way == "router create limiter":
            await _router_run(emu, jobs, limit, window)
        else:
            await _batch_run(emu, jobs, limit, window)
        wall = time.perf_counter() - t0
        stats = emu.stats()
        created = sorted(t.created for t in emu.state.tasks.values())
    span = (created[-1] - created[0]) / TIME_SCALE if len(created) > 1 else 0.0
    after_first_window = len(created) - limit
    rate = after_first_window / span if span > 0 else float("nan")
    allowed = limit / window
    return {
        "way": way,
        "jobs": jobs,
        "created": len(created),
        "rejected_429": stats["rejected"].get("429", 0),
        "span_s": span,
        "ideal_span_s": (-(-len(created) // limit) - 1) * window,
        "achieved_per_s": rate,
        "allowed_per_s": allowed,
        "ratio": rate / allowed,
        "wall_s": wall,
        "succeeded": stats["succeeded"],
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    jobs, limit, window = {
        "smoke": (30, 10, 0.5),
        "quick": (200, 20, 2.0),
        "full": (400, 20, 2.0),
    }[args.mode]
    ways = ("no client pacing", "router create limiter", "batch runner")
    results = [asyncio.run(measure(way, jobs, limit, window)) for way in ways]
    rows = []
    for r in results:
        ok = r["rejected_429"] == 0 and r["ratio"] >= 0.9
        rows.append(
            [
                r["way"],
                f"{r['created']} / {r['jobs']}",
                r["rejected_429"],
                f"{r['span_s']:.2f} s (ideal {r['ideal_span_s']:.0f} s)",
                f"{r['achieved_per_s']:.2f} / {r['allowed_per_s']:.2f} per s",
                f"**{r['ratio']:.3f}**",
                f"{r['wall_s']:.1f} s",
                "" if r["way"] == "no client pacing" else ("met" if ok else "MISSED"),
            ]
        )
    md = table(
        [
            "way",
            "tasks created / jobs",
            "429s",
            "first → last create",
            "achieved / allowed rate",
            "ratio",
            "wall",
            "≥ 0.9 with 0 429s",
        ],
        rows,
    )
    md += (
        f"\n\nEmulator limit {limit} creates per {window:g} s (real seconds), {jobs} jobs, "
        f"time_scale {TIME_SCALE:g}."
    )
    report(
        "ratelimit",
        args,
        {"jobs": jobs, "limit": limit, "window": window, "results": results},
        md,
    )


if __name__ == "__main__":
    main()
