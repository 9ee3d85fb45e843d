"""Benchmark 2: router overhead vs a raw httpx loop, and stock httpx vs httpx-aiohttp.

N jobs at concurrency C against the emulator (its own process; jobs finish at once:
``time_scale`` 10⁶; no create or read limits), run two ways on the SAME transport:

* **raw**: a minimal hand-written loop on ``httpx.AsyncClient``: POST createTask, GET
  recordInfo until final, msgspec to decode; the same bodies and headers the router sends.
* **router**: ``Router.generate`` (plan, prepare, create, wait, parse, events, Result), one model
  (Seedream v4), no downloads, the client's create/read limiters set out of the way.

Both make exactly one create and one status read per job (checked against the emulator's
counters). The router's client builds each request without ``AsyncClient.build_request`` (URLs
parsed once per path, headers merged once: ``kierouter/_requests.py``), which the raw loop pays
on every call; so on the fast transport a third way is run for comparison, **raw, prebuilt**:
the raw loop building its requests that same way. Router against it is the router's own work
with HTTP handling equal on both sides (reported, not the target). Each is run with the stock
httpx transport and with ``httpx-aiohttp`` (``transport="aiohttp"``). Reported per
configuration: jobs per second (wall) and client CPU per job (the emulator's CPU is in the other
process).

Target: router throughput ≥ 95 % of raw on the same transport.

    uv run python bench/overhead.py [--quick|--smoke] [--profile]

The full run takes about 5 minutes, almost all of it in the stock httpx runs at concurrency 500.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import msgspec
from _common import EmulatorProcess, parse_args, report, spread, summary, table

SEEDREAM = "bytedance/seedream-v4-text-to-image"
TIME_SCALE = 1_000_000
TARGET = 0.95


def _seedream() -> tuple[Any, Any, Any]:
    import kierouter_seedream

    from kierouter import load_registry

    registry = load_registry([kierouter_seedream], entry_points=False)
    return registry, registry.card(SEEDREAM), registry.provider(SEEDREAM)


def _http(transport: str, limit: int) -> Any:
    import httpx

    chosen: Any = None
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        chosen = AiohttpTransport()
    return httpx.AsyncClient(
        transport=chosen,
        timeout=httpx.Timeout(30.0, connect=10.0),
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        headers={"User-Agent": "raw-loop"},
    )


async def run_raw(emu: EmulatorProcess, transport: str, jobs: int, concurrency: int) -> None:
    """The hand-written baseline: create, then poll until final."""
    from kierouter import ImageRequest

    _, card, provider = _seedream()
    decode = msgspec.json.decode
    auth = {"Authorization": f"Bearer {emu.api_key}"}
    post_headers = {**auth, "Content-Type": "application/json"}
    create_url = emu.base_url + provider.prepare(card, ImageRequest(prompt="x")).path
    status_url = emu.base_url + provider.status_path
    sem = asyncio.Semaphore(concurrency)

    async with _http(transport, concurrency) as http:

        async def job(i: int) -> None:
            prepared = provider.prepare(card, ImageRequest(prompt=f"a red fox, take {i}"))
            async with sem:
                r = await http.post(
                    create_url, content=msgspec.json.encode(prepared.body), headers=post_headers
                )
                body = decode(r.content)
                if r.status_code != 200 or body["code"] != 200:
                    raise RuntimeError(f"create failed: {body}")
                task_id = body["data"]["taskId"]
                while True:
                    r = await http.get(status_url, params={"taskId": task_id}, headers=auth)
                    data = decode(r.content)["data"]
                    if data["state"] in ("success", "fail"):
                        return
                    await asyncio.sleep(0.001)

        await asyncio.gather(*(job(i) for i in range(jobs)))


async def run_raw_prebuilt(
    emu: EmulatorProcess, transport: str, jobs: int, concurrency: int
) -> None:
    """The raw loop with its requests built as the router's client builds them: each URL
    parsed once, the headers merged once, ``httpx.Request`` sent with ``AsyncClient.send``."""
    import httpx

    from kierouter import ImageRequest

    _, card, provider = _seedream()
    decode = msgspec.json.decode
    sem = asyncio.Semaphore(concurrency)

    async with _http(transport, concurrency) as http:
        auth = httpx.Headers(http.headers)
        auth["Authorization"] = f"Bearer {emu.api_key}"
        post_headers = httpx.Headers(auth)
        post_headers["Content-Type"] = "application/json"
        create_url = httpx.URL(emu.base_url + provider.prepare(card, ImageRequest(prompt="x")).path)
        status_url = emu.base_url + provider.status_path + "?taskId="
        timeout = http.timeout.as_dict()

        async def job(i: int) -> None:
            prepared = provider.prepare(card, ImageRequest(prompt=f"a red fox, take {i}"))
            async with sem:
                content = msgspec.json.encode(prepared.body)
                request = httpx.Request(
                    "POST", create_url, content=content, headers=post_headers,
                    extensions={"timeout": timeout},
                )  # fmt: skip
                r = await http.send(request)
                body = decode(r.content)
                if r.status_code != 200 or body["code"] != 200:
                    raise RuntimeError(f"create failed: {body}")
                task_id = body["data"]["taskId"]
                while True:
                    request = httpx.Request(
                        "GET", status_url + task_id, headers=auth, extensions={"timeout": timeout}
                    )
                    r = await http.send(request)
                    data = decode(r.content)["data"]
                    if data["state"] in ("success", "fail"):
                        return
                    await asyncio.sleep(0.001)

        await asyncio.gather(*(job(i) for i in range(jobs)))


async def run_router(emu: EmulatorProcess, transport: str, jobs: int, concurrency: int) -> None:
    """The same jobs through ``Router.generate``."""
    from kierouter import KieClient, Router
    from kierouter.policy import Constraints, Policy

    registry, _, _ = _seedream()
    policy = Policy(name="one", ladder=("seedream",), constraints=Constraints(allow=(SEEDREAM,)))
    client = KieClient(
        emu.api_key,
        base_url=emu.base_url,
        transport=None if transport == "httpx" else transport,
        create_limit=10**9,
        create_window=1.0,
        read_rate=1e9,
        max_connections=concurrency,
    )
    sem = asyncio.Semaphore(concurrency)
    async with client, Router(registry=registry, client=client, policy=policy,
                              latency_scale=1 / TIME_SCALE) as router:  # fmt: skip

        async def job(i: int) -> None:
            async with sem:
                result = await router.generate(f"a red fox, take {i}")
                if not result.ok:
                    raise RuntimeError(result)

        await asyncio.gather(*(job(i) for i in range(jobs)))


RUNNERS = {"raw": run_raw, "raw, prebuilt": run_raw_prebuilt, "router": run_router}


def runs_on(way: str, transport: str) -> bool:
    """The prebuilt raw loop is compared on the fast transport only, where CPU decides."""
    return way != "raw, prebuilt" or transport == "aiohttp"


def measure(
    emu: EmulatorProcess, way: str, transport: str, jobs: int, concurrency: int
) -> dict[str, float]:
    """One timed run in a fresh event loop; emulator counters reset before it."""
    emu.reset()
    gc.collect()
    collecting = [0.0, 0.0]  # [start of the running collection, seconds spent collecting]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting[0] = time.perf_counter()
        else:
            collecting[1] += time.perf_counter() - collecting[0]

    gc.callbacks.append(on_gc)
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        asyncio.run(RUNNERS[way](emu, transport, jobs, concurrency))
    finally:
        gc.callbacks.remove(on_gc)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    stats = emu.stats()
    return {
        "jobs_per_s": jobs / wall,
        "cpu_ms_per_job": cpu / jobs * 1000,
        # the cyclic garbage collector's share of that CPU (wall time inside collections)
        "gc_ms_per_job": collecting[1] / jobs * 1000,
        "creates": stats["created_total"],
        "reads": stats["status_reads"],
    }


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        [("--profile", {"action": "store_true", "help": "cProfile one router run"})],
    )
    # stock httpx runs are slow (~50 jobs/s here): fewer of them; the fast transport's runs are
    # short and noisy: more of them
    reps_of = {
        "smoke": {"httpx": 1, "aiohttp": 1},
        "quick": {"httpx": 1, "aiohttp": 3},
        "full": {"httpx": 3, "aiohttp": 7},
    }[args.mode]
    reps = max(reps_of.values())
    levels = (20,) if args.mode == "smoke" else (100, 500)

    def jobs_for(transport: str, concurrency: int) -> int:
        # stock httpx runs ~30-100 jobs/s here: its runs are kept short (at least one full wave)
        if args.mode == "smoke":
            return 40
        if transport == "httpx":
            return concurrency * (1 if args.mode == "quick" else 2) + (
                100 if concurrency < 500 else 0
            )
        return 1000 if args.mode == "quick" else 3000

    # The raw loop gets the same transport state as the router: httpcore's failed per-request
    # 'import sniffio' is recorded once (what KieClient does), so only the router is compared.
    from kierouter._transport import _skip_missing_sniffio

    _skip_missing_sniffio()
    transports = ("httpx", "aiohttp")
    samples: dict[tuple[str, int, str], list[dict[str, float]]] = {}
    with EmulatorProcess(
        time_scale=TIME_SCALE, create_limit=10**9, create_window=1, credits=10**12
    ) as emu:
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            # the fast transport: there the router's own CPU is a visible share of the whole
            measure(emu, "router", "aiohttp", jobs_for("aiohttp", levels[0]), levels[0])
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
            return
        for way in RUNNERS:  # warm-up: imports, first connections
            measure(emu, way, "aiohttp", 100, levels[0])
        for rep in range(reps):
            for concurrency in levels:
                for transport in transports:
                    if rep >= reps_of[transport]:
                        continue
                    jobs = jobs_for(transport, concurrency)
                    for way in RUNNERS:
                        if not runs_on(way, transport):
                            continue
                        run = measure(emu, way, transport, jobs, concurrency)
                        if run["creates"] != jobs or run["reads"] != jobs:
                            raise SystemExit(f"{way}/{transport}: unexpected calls {run}")
                        samples.setdefault((transport, concurrency, way), []).append(run)

    def stat(key: tuple[str, int, str], field: str) -> dict[str, float]:
        return summary([s[field] for s in samples[key]])

    rows = []
    verdicts: dict[str, Any] = {}
    for concurrency in levels:
        for transport in transports:
            raw = stat((transport, concurrency, "raw"), "jobs_per_s")
            routed = stat((transport, concurrency, "router"), "jobs_per_s")
            ratio = routed["median"] / raw["median"]
            met = ratio >= TARGET
            cpu_raw = stat((transport, concurrency, "raw"), "cpu_ms_per_job")["median"]
            cpu_router = stat((transport, concurrency, "router"), "cpu_ms_per_job")["median"]
            cpu_ratio = cpu_raw / cpu_router
            gc_raw = stat((transport, concurrency, "raw"), "gc_ms_per_job")["median"]
            gc_router = stat((transport, concurrency, "router"), "gc_ms_per_job")["median"]
            verdicts[f"{transport}@{concurrency}"] = {
                "ratio": ratio,
                "met": met,
                "cpu_ratio": cpu_ratio,
                "extra_cpu_ms_per_job": cpu_router - cpu_raw,
                "extra_gc_ms_per_job": gc_router - gc_raw,
            }
            prebuilt = (transport, concurrency, "raw, prebuilt")
            if prebuilt in samples:
                lean = stat(prebuilt, "jobs_per_s")["median"]
                cpu_lean = stat(prebuilt, "cpu_ms_per_job")["median"]
                verdicts[f"{transport}@{concurrency}"]["vs_prebuilt"] = {
                    "ratio": routed["median"] / lean,
                    "extra_cpu_ms_per_job": cpu_router - cpu_lean,
                }
            for way in RUNNERS:
                key = (transport, concurrency, way)
                if key not in samples:
                    continue
                target = cpu = ""
                if way == "raw, prebuilt":
                    cpu = (
                        f"router: {cpu_lean / cpu_router:.0%} ({cpu_router - cpu_lean:+.2f} ms/job)"
                    )
                    target = f"router {routed['median'] / lean:.0%} of it (not the target)"
                if way == "router":
                    target = f"{ratio:.0%} of raw: {'met' if met else 'MISSED'}"
                    cpu = f"{cpu_ratio:.0%} ({cpu_router - cpu_raw:+.2f} ms/job)"
                rows.append(
                    [
                        concurrency,
                        transport,
                        way,
                        spread(stat(key, "jobs_per_s"), "", 0),
                        spread(stat(key, "cpu_ms_per_job"), "", 2),
                        f"{stat(key, 'gc_ms_per_job')['median']:.3f}",
                        cpu,
                        target,
                    ]
                )
    md = table(
        [
            "concurrency",
            "transport",
            "way",
            "jobs/s",
            "client CPU ms/job",
            "of it in gc, ms/job (median)",
            "raw CPU / router CPU",
            "router jobs/s ≥ 95 % of raw",
        ],
        rows,
    )
    sizes = ", ".join(f"{t} @ {c}: {jobs_for(t, c)}" for c in levels for t in transports)
    speedups = []
    for concurrency in levels:
        for way in ("raw", "router"):
            a = stat(("aiohttp", concurrency, way), "jobs_per_s")["median"]
            h = stat(("httpx", concurrency, way), "jobs_per_s")["median"]
            speedups.append(f"{way} @ {concurrency}: {a / h:.2f}×")
    md += (
        f"\n\nJobs per run: {sizes}; runs per row: {reps_of}; 1 create + 1 status read per job "
        f"(checked). httpx-aiohttp vs stock httpx throughput: {', '.join(speedups)}."
    )
    report(
        "overhead",
        args,
        {
            "jobs": {f"{t}@{c}": jobs_for(t, c) for c in levels for t in transports},
            "reps": reps_of,
            "target": TARGET,
            "verdicts": verdicts,
            "samples": {f"{t}@{c}/{w}": v for (t, c, w), v in samples.items()},
        },
        md,
    )


if __name__ == "__main__":
    main()
