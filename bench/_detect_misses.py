"""One-off diagnostic for the 1,000-in-flight row of ``detect_latency.py``: where each
schedule's status reads that did not find their task finished fall, at 1,000 in flight (2,000
jobs, the same harness).

Prints, per schedule: reads, misses (reads that saw a task still running), the run's length in
emulated seconds, misses and reads per 30 emulated seconds from the first create, and misses by
the task's age (10 s bins). Not a benchmark (no target, no results file).

    uv run python bench/_detect_misses.py
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from _modes import run_in_flight
from detect_latency import BUDGET, FLIGHT_MODEL, KIE_LIMIT

import kierouter

SCALE = 5.0
reads: list[tuple[float, str, str]] = []  # (monotonic, task id, state seen)
created: dict[str, float] = {}


def _with_probe() -> None:
    """Every Router built from here on also reports its events to :func:`_probe`."""
    original = kierouter.Router.__init__

    def init(self: Any, *args: Any, event_sinks: Any = (), **kwargs: Any) -> None:
        original(self, *args, event_sinks=[*event_sinks, _probe], **kwargs)

    kierouter.Router.__init__ = init  # type: ignore[method-assign]


def _probe(event: Any) -> None:
    if event.kind == "polled" and event.task_id:
        reads.append((time.monotonic(), event.task_id, event.detail))
    elif event.kind == "created" and event.task_id:
        created[event.task_id] = time.monotonic()


async def main() -> None:
    from kierouter import load_registry
    from kierouter.sim import in_thread

    registry = load_registry()
    with in_thread(
        time_scale=SCALE, create_limit=10**6, create_window=1.0, read_limit=KIE_LIMIT * SCALE
    ) as emu:
        for scheduler in ("per-task", "shared"):
            reads.clear()
            created.clear()
            await run_in_flight(emu, registry, scheduler, FLIGHT_MODEL, 1000, 2000, BUDGET)
            t0 = min(created.values())
            t1 = max(at for at, _, _ in reads)
            per_bin: collections.Counter[int] = collections.Counter()
            missed: collections.Counter[int] = collections.Counter()
            ages: collections.Counter[int] = collections.Counter()
            for at, task_id, state in reads:
                b = int((at - t0) * SCALE / 30)
                per_bin[b] += 1
                if state not in ("success", "fail"):
                    missed[b] += 1
                    ages[int((at - created[task_id]) * SCALE / 10) * 10] += 1
            print(
                f"{scheduler}: {len(reads)} reads, {sum(missed.values())} misses, "
                f"run {(t1 - t0) * SCALE:.0f} emulated s"
            )
            print("  misses per 30 s:", [missed[b] for b in sorted(per_bin)])
            print("  reads per 30 s: ", [per_bin[b] for b in sorted(per_bin)])
            print("  misses by task age (10 s bins):", sorted(ages.items()))


if __name__ == "__main__":
    _with_probe()
    asyncio.run(main())
