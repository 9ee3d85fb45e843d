"""Benchmark 6: scale: memory per in-flight job, and journal throughput on a 100,000-row plan.

**Memory**: N ``Router.generate`` jobs are started against the emulator (its own process; the
tasks run for hours, so every job sits created and waiting). When all N creates are answered,
``tracemalloc`` gives the memory this process allocated since just before the jobs started
(router, jobs, asyncio tasks, connection pool, parsed answers), divided by N. The baseline is the
same count of bare ``asyncio`` tasks holding nothing (each sleeping), measured the same way.
Target: < 10 KB per in-flight job at 10,000 jobs.

**Journal** (``kierouter.journal.SqliteJournal``, WAL): a 100,000-row batch plan inserted
(``add_jobs``), then the router's full write sequence for a sample of jobs (intent → submitted →
attempt ended → result → downloaded: five transactions per job), with ``synchronous=FULL`` (the
default: every commit fsynced) against ``NORMAL``; plus reading counts and every row back.

    uv run python bench/scale.py [--quick|--smoke] [--part memory|journal]
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _common import EmulatorProcess, parse_args, report, table

SEEDREAM = "bytedance/seedream-v4-text-to-image"
TARGET_BYTES = 10 * 1024


def _short(filename: str) -> str:
    """``kierouter/_run.py`` or ``aiohttp/streams.py`` rather than a full path."""
    parts = filename.replace("\\", "/").split("/")
    for anchor in ("site-packages", "main"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) + 1 :])
    return "/".join(parts[-2:])


async def _in_flight_router(
    emu: EmulatorProcess, n: int, where: list[tuple[str, float]]
) -> tuple[int, int]:
    """(bytes allocated while n router jobs are in flight, peak); ``where`` gets the top files."""
    import kierouter_seedream

    from kierouter import KieClient, Router, load_registry
    from kierouter.policy import Constraints, Policy

    registry = load_registry([kierouter_seedream], entry_points=False)
    policy = Policy(name="one", ladder=("seedream",), constraints=Constraints(allow=(SEEDREAM,)))
    client = KieClient(
        emu.api_key,
        base_url=emu.base_url,
        transport="aiohttp",
        create_limit=10**9,
        create_window=1.0,
        max_connections=200,
    )
    created = 0
    everyone = asyncio.Event()

    def sink(event: Any) -> None:
        nonlocal created
        if event.kind == "created":
            created += 1
            if created == n:
                everyone.set()

    # latency_scale 10: the first poll of a 20 s (p50) task is 200 s away; nothing polls
    router = Router(registry=registry, client=client, policy=policy, latency_scale=10.0,
                    event_sinks=[sink])  # fmt: skip
    async with client, router:
        await router.credits()  # imports, the first connection
        router.explain("warm-up")  # the policy compiled, the plan remembered
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        before = tracemalloc.take_snapshot()
        tasks = [asyncio.create_task(router.generate(f"a red fox, take {i}")) for i in range(n)]
        await asyncio.wait_for(everyone.wait(), timeout=600)
        await asyncio.sleep(0.2)
        gc.collect()
        now, peak = tracemalloc.get_traced_memory()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        where.extend(
            (_short(d.traceback[0].filename), d.size_diff / n)
            for d in after.compare_to(before, "filename")[:8]
        )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return now - base, peak - base


async def _in_flight_bare(n: int) -> int:
    """Bytes for n bare asyncio tasks each awaiting a sleep (the floor of any async job)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tasks = [asyncio.create_task(asyncio.sleep(3600)) for _ in range(n)]
    await asyncio.sleep(0.1)
    now = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return now - base


def memory(n: int) -> dict[str, Any]:
    with EmulatorProcess(time_scale=1, create_limit=10**9, create_window=1, credits=10**12) as emu:
        emu.configure(model="*", latency=[36000, 72000])
        t0 = time.perf_counter()
        where: list[tuple[str, float]] = []
        used, peak = asyncio.run(_in_flight_router(emu, n, where))
        seconds = time.perf_counter() - t0
        created = emu.stats()["created_total"]
    bare = asyncio.run(_in_flight_bare(n))
    return {
        "jobs": n,
        "created": created,
        "bytes_per_job": used / n,
        "peak_bytes_per_job": peak / n,
        "bare_task_bytes": bare / n,
        "seconds": seconds,
        "target_met": used / n < TARGET_BYTES,
        "by_file": where,
    }


def journal(rows: int, sample: int) -> dict[str, Any]:
    from kierouter import ImageFile, Result
    from kierouter._models import Attempt
    from kierouter.journal import SqliteJournal

    out: dict[str, Any] = {"rows": rows, "sample": sample}
    with tempfile.TemporaryDirectory(prefix="kierouter-bench-journal-") as tmp:
        for sync in ("FULL", "NORMAL"):
            path = Path(tmp) / f"journal-{sync}.sqlite"
            backend = SqliteJournal(path, synchronous=sync)
            specs = [
                (f"row-{i:06d}", {"prompt": f"a red fox, take {i}", "line": i}) for i in range(rows)
            ]
            t0 = time.perf_counter()
            backend.add_jobs(specs)
            insert = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(sample):
                key = f"row-{i:06d}"
                task = f"task{i:028d}"
                backend.begin_attempt(key, 1, SEEDREAM, "0" * 64)
                backend.attempt_submitted(key, 1, SEEDREAM, task)
                backend.end_attempt(
                    key, Attempt(model=SEEDREAM, outcome="success", task_id=task, credits=3.5)
                )
                attempt = Attempt(model=SEEDREAM, outcome="success", task_id=task, credits=3.5)
                result = Result(
                    served_model=SEEDREAM, attempts=(attempt,), credits=3.5,
                    urls=(f"https://x/{task}.png",), job_key=key,
                )  # fmt: skip
                backend.record_result(key, result)
                image = ImageFile(
                    path=f"/out/{key}.png", url=result.urls[0], sha256="0" * 64, size=1234,
                    content_type="image/png",
                )  # fmt: skip
                backend.mark_downloaded(key, (image,))
            lifecycle = time.perf_counter() - t0
            t0 = time.perf_counter()
            counts = backend.counts()
            count_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            listed = len(backend.jobs())
            list_s = time.perf_counter() - t0
            backend.close()
            size = path.stat().st_size + sum(
                p.stat().st_size for p in Path(tmp).glob(f"journal-{sync}.sqlite-*")
            )
            out[sync] = {
                "insert_rows_per_s": rows / insert,
                "insert_s": insert,
                "jobs_per_s": sample / lifecycle,
                "transactions_per_s": sample * 5 / lifecycle,
                "counts_ms": count_s * 1000,
                "read_all_s": list_s,
                "rows_read": listed,
                "downloaded": counts.get("downloaded", 0),
                "file_mb": size / 1e6,
            }
    return out


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        [("--part", {"choices": ["memory", "journal", "all"], "default": "all"})],
    )
    n = {"smoke": 300, "quick": 10_000, "full": 10_000}[args.mode]
    rows = {"smoke": 2_000, "quick": 100_000, "full": 100_000}[args.mode]
    sample = {"smoke": 50, "quick": 1_000, "full": 5_000}[args.mode]
    data: dict[str, Any] = {}
    md = ""
    if args.part in ("memory", "all"):
        mem = memory(n)
        data["memory"] = mem
        verdict = "met" if mem["target_met"] else "MISSED"
        md += table(
            ["in flight", "what", "bytes per job", "target"],
            [
                [
                    f"{n:,}",
                    "Router.generate jobs, created and waiting",
                    f"{mem['bytes_per_job']:,.0f} (peak {mem['peak_bytes_per_job']:,.0f})",
                    f"< 10 KB: {verdict}",
                ],
                [f"{n:,}", "bare asyncio tasks (baseline)", f"{mem['bare_task_bytes']:,.0f}", ""],
            ],
        )
        md += (
            f"\n\nAll {mem['created']:,} creates answered in {mem['seconds']:.1f} s "
            "(httpx-aiohttp transport, emulator in its own process). Where the bytes are "
            "(tracemalloc, by file, per job):\n\n"
        )
        md += table(["file", "bytes per job"], [[f"`{f}`", f"{b:,.0f}"] for f, b in mem["by_file"]])
        md += "\n\n"
    if args.part in ("journal", "all"):
        j = journal(rows, sample)
        data["journal"] = j
        jrows = []
        for sync in ("FULL", "NORMAL"):
            s = j[sync]
            jrows.append(
                [
                    sync,
                    f"{s['insert_rows_per_s']:,.0f} rows/s ({s['insert_s']:.2f} s)",
                    f"{s['jobs_per_s']:,.0f} jobs/s ({s['transactions_per_s']:,.0f} tx/s)",
                    f"{s['counts_ms']:.1f} ms",
                    f"{s['read_all_s']:.2f} s",
                    f"{s['file_mb']:.1f} MB",
                ]
            )
        md += table(
            [
                "synchronous",
                f"add_jobs({rows:,} rows)",
                f"job lifecycle (5 commits/job, {sample:,} jobs)",
                "counts()",
                f"jobs() all {rows:,}",
                "file size",
            ],
            jrows,
        )
        md += (
            "\n\nFor scale: KIE accepts 20 creates per 10 s per account (2 jobs/s), so the "
            "journal's lifecycle rate is the headroom over what a batch can ever ask of it."
        )
    report("scale", args, data, md)


if __name__ == "__main__":
    main()
