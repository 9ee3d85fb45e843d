"""Run jobs to completion three ways (webhook, adaptive polling, fixed 5 s polling) and record,
per job, the status reads it cost and how long after the emulator finished the task the client
knew it. Shared by ``status_reads.py`` and ``detect_latency.py``.

The emulator runs on its own event loop in a background thread (``Emulator.in_thread``) so that
its clock can be read exactly: a task's emulated completion time converts to this process's
``time.monotonic()``. Latencies are the emulator's per-model distributions (lognormal with each
model's p50/p90), sped up by ``time_scale``; the router is told the same scale.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

#: "adaptive polling" is the router's default without a webhook: the key's shared read scheduler.
MODES = ("webhook", "adaptive polling", "fixed 5 s polling")
HMAC = "whsec-bench-0123456789abcdef"


@dataclass
class JobRecord:
    """What one job cost and when its completion was known."""

    mode: str
    model: str
    task_id: str
    reads: int
    known_at: float  # time.monotonic() when the client knew the task was final
    delay: float = 0.0  # real seconds between the emulator finishing and the client knowing


def generate_models(registry: Any) -> list[str]:
    """Installed text-to-image model ids (edits and utilities need input images)."""
    return sorted(cid for cid, card in registry.cards.items() if "generate" in card.task_kinds)


def completion_monotonic(emu: Any, task_id: str) -> float:
    """``time.monotonic()`` at which the emulator finished ``task_id`` (its clock, converted)."""
    clock = emu.state.clock
    task = emu.state.tasks[task_id]
    assert task.completed is not None, task_id
    return float(clock._real0 + (task.completed - clock._offset) / clock.time_scale)


async def run_mode(
    emu: Any, registry: Any, mode: str, models: list[str], per_model: int, rate: float = 10.0
) -> list[JobRecord]:
    """Run ``per_model`` jobs on each model in ``mode``; one record per job.

    Jobs arrive at ``rate`` per real second (a steady stream, as a service sees them), not all
    at once: a burst of simultaneous creates would delay the create answers, and a poller that
    starts its clock late sees tasks further along than they are.
    """
    from kierouter import ImageRequest, KieClient, PollConfig, Router, WebhookConfig
    from kierouter.policy import Constraints, Policy

    scale = 1 / emu.time_scale
    client = KieClient(
        emu.api_key,
        base_url=emu.base_url,
        create_limit=10**6,
        create_window=1.0,
        # KIE's 10 reads per second, at the emulator's speed: the router's shared read
        # scheduler spends 90 % of it (9 per emulated second)
        read_rate=10.0 * emu.time_scale,
    )
    reads: dict[str, int] = {}
    known: dict[str, float] = {}
    model_of: dict[str, str] = {}

    def sink(event: Any) -> None:
        if not event.task_id:
            return
        if event.kind in ("polled", "callback"):
            reads[event.task_id] = reads.get(event.task_id, 0) + 1
        elif event.kind == "created":
            model_of[event.task_id] = event.model
        elif event.kind == "finished":
            known[event.task_id] = time.monotonic()

    jobs = [(model, i) for i in range(per_model) for model in models]
    start = time.monotonic()

    async def arrive(n: int) -> None:
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))

    if mode == "fixed 5 s polling":
        # What KIE's docs and most clients do: create, then read every 5 s until final.
        async def fixed(n: int, model: str, i: int) -> None:
            card, provider = registry.card(model), registry.provider(model)
            prepared = provider.prepare(card, ImageRequest(prompt=f"a red fox, take {i}"))
            await arrive(n)
            task_id = provider.parse_create(await client.create(prepared.path, prepared.body))
            model_of[task_id] = model
            count = 0
            while True:
                await asyncio.sleep(5.0 * scale)
                data = await client.read(provider.status_path, provider.status_params(task_id))
                count += 1
                if provider.parse_status(data, task_id=task_id).done:
                    known[task_id] = time.monotonic()
                    reads[task_id] = count
                    return

        async with client:
            await asyncio.gather(*(fixed(n, m, i) for n, (m, i) in enumerate(jobs)))
    else:
        webhook = None
        if mode == "webhook":
            # callbacks are waited for patiently: polling is only the fallback for lost ones
            webhook = WebhookConfig(listen="127.0.0.1:0", hmac_key=HMAC)
        router = Router(
            registry=registry,
            client=client,
            latency_scale=scale,
            webhook=webhook,
            poll=PollConfig(webhook_fallback=4.0),
            event_sinks=[sink],
        )
        policies = {
            m: Policy(
                name=f"only-{m}",
                ladder=(registry.card(m).family,),
                constraints=Constraints(allow=(m,)),
            )
            for m in models
        }

        async def routed(n: int, model: str, i: int) -> None:
            await arrive(n)
            result = await router.generate(f"a red fox, take {i}", policy=policies[model])
            if result.served_model != model:
                raise RuntimeError(f"{model} job served by {result.served_model}")

        async with client, router:
            await asyncio.gather(*(routed(n, m, i) for n, (m, i) in enumerate(jobs)))
    records = []
    for task_id, at in known.items():
        record = JobRecord(mode, model_of[task_id], task_id, reads.get(task_id, 0), at)
        record.delay = at - completion_monotonic(emu, task_id)
        records.append(record)
    return records


#: The two read schedules compared at one read budget (``PollConfig.scheduler``).
SCHEDULERS = ("per-task", "shared")


@dataclass
class InFlightRun:
    """One closed-loop run: ``inflight`` jobs kept running until ``total`` were created."""

    scheduler: str
    inflight: int
    records: list[JobRecord]
    read_times: list[float]  # time.monotonic() of every status read's answer, client side
    emulator_reads: int
    rejected_429: int
    seconds: float  # real seconds from the first create to the last job's end


async def run_in_flight(
    emu: Any,
    registry: Any,
    scheduler: str,
    model: str,
    inflight: int,
    total: int,
    budget: float,
    **poll: Any,
) -> InFlightRun:
    """Keep ``inflight`` polled jobs (no webhook) on ``model`` running until ``total`` were
    created, reading status under ``budget`` reads per emulated second.

    ``per-task``: every task on its own fixed timetable, each read queued for the client's read
    limiter. ``shared``: the key's read scheduler at the same budget. Both schedules go through
    the same strict limiter: the client's read limiter set to the budget with bursts of one read
    (reads evenly spaced), so neither gets ahead by bursting above it; the busiest second seen
    is reported for both.
    """
    from kierouter import KieClient, PollConfig, Router
    from kierouter._ratelimit import RateLimiter
    from kierouter.policy import Constraints, Policy

    scale = emu.time_scale
    client = KieClient(
        emu.api_key,
        base_url=emu.base_url,
        create_limit=10**6,
        create_window=1.0,
        # the emulator runs ``scale`` times faster than KIE: so do the read limits
        read_rate=budget * scale,
        status_budget=budget * scale,
        # the fast transport: stock httpx spends some 10 ms of CPU per request, and a thousand
        # creates at once would hold the event loop for seconds (minutes, emulated)
        transport="aiohttp",
    )
    # One limiter for both: the budget, no burst above it. (The client's default burst is a
    # second of its rate, which let the per-task timetable read up to twice the budget in one
    # second: it was not held to the same budget as the shared scheduler.)
    client.read_limiter = RateLimiter(budget * scale, burst=1)
    reads: dict[str, int] = {}
    known: dict[str, float] = {}
    model_of: dict[str, str] = {}
    read_times: list[float] = []

    def sink(event: Any) -> None:
        if not event.task_id:
            return
        if event.kind == "polled":
            reads[event.task_id] = reads.get(event.task_id, 0) + 1
            read_times.append(time.monotonic())
        elif event.kind == "created":
            model_of[event.task_id] = event.model
        elif event.kind == "finished":
            known[event.task_id] = time.monotonic()

    router = Router(
        registry=registry,
        client=client,
        latency_scale=1 / scale,
        poll=PollConfig(scheduler=scheduler, **poll),
        event_sinks=[sink],
    )
    policy = Policy(
        name="only-one",
        ladder=(registry.card(model).family,),
        constraints=Constraints(allow=(model,)),
    )
    counter = iter(range(total))
    before = emu.stats()

    async def worker() -> None:
        for i in counter:
            result = await router.generate(f"a red fox, take {i}", policy=policy)
            if result.served_model != model:
                raise RuntimeError(f"{model} job served by {result.served_model}")

    t0 = time.monotonic()
    async with client, router:
        await asyncio.gather(*(worker() for _ in range(inflight)))
    seconds = time.monotonic() - t0
    after = emu.stats()
    records = []
    for task_id, at in known.items():
        record = JobRecord(scheduler, model_of[task_id], task_id, reads.get(task_id, 0), at)
        record.delay = at - completion_monotonic(emu, task_id)
        records.append(record)
    return InFlightRun(
        scheduler,
        inflight,
        records,
        read_times,
        after["status_reads"] - before["status_reads"],
        after["rejected"].get("429", 0) - before["rejected"].get("429", 0),
        seconds,
    )


def busiest_window(times: list[float], window: float) -> int:
    """The most of ``times`` in any ``window`` seconds."""
    times = sorted(times)
    best = lo = 0
    for hi, at in enumerate(times):
        while at - times[lo] > window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
