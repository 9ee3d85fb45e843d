"""Benchmark 5: credits per accepted image under failures, for three routing strategies.

Scenario (the emulator and a judge): Seedream tasks fail 30 %, Nano Banana tasks 15 %, and the
judge rejects 10 % of delivered images (decided by a hash of the task id, so every strategy faces
the same odds). Failed tasks cost nothing (KIE charges on success); rejected images are paid.
The same text-to-image jobs run under:

* **default ladder**: ``Policy(name="ladder")``: Seedream → Nano Banana → Flux Kontext / GPT-4o →
  Midjourney, cheapest model first inside a rung;
* **expected-cost ordering**: ``Policy(name="expected-cost", ordering="expected-cost")``: the same
  models ordered by credits / p(success) to minimise expected credits (p learned from outcomes as
  the run goes, starting from the cards);
* **always the quality model**: the built-in ``quality`` policy: the best-quality model first,
  escalating by quality.

Reported: credits per accepted image (credits the emulator charged / accepted images), success
rate (jobs with an accepted image), mean attempts per job, and which model served.

    uv run python bench/cost_per_image.py [--quick|--smoke]
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from typing import Any

from _common import parse_args, report, table

TIME_SCALE = 400.0
REJECT = 0.10


def judge(context: Any) -> Any:
    """Reject 10 % of images, by a hash of the task id (the same odds for every strategy)."""
    from kierouter import Verdict

    digest = hashlib.sha256(context.status.task_id.encode()).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 < REJECT:
        return Verdict(False, "rejected by the benchmark judge (10 %)")
    return Verdict(True)


def strategies() -> dict[str, Any]:
    from kierouter.policy import Policy, builtin_policies

    return {
        "default ladder": Policy(name="ladder"),
        "expected-cost ordering": Policy(name="expected-cost", ordering="expected-cost"),
        "always the quality model": builtin_policies()["quality"],
    }


async def run(name: str, policy: Any, jobs: int, seed: int) -> dict[str, Any]:
    from kierouter import KieClient, Router, load_registry
    from kierouter.sim import Emulator

    registry = load_registry()
    async with Emulator(
        time_scale=TIME_SCALE, create_limit=10**6, create_window=1.0, seed=seed
    ) as emu:
        emu.configure("seedream", fail_rate=0.30)
        emu.configure("nano-banana", fail_rate=0.15)
        client = KieClient(
            emu.api_key, base_url=emu.base_url, create_limit=10**6, create_window=1.0,
            read_rate=10_000,
        )  # fmt: skip
        router = Router(
            registry=registry,
            client=client,
            latency_scale=1 / TIME_SCALE,
            judge=judge,
            allow_private_downloads=True,
        )
        plan = router.explain("a red fox in the snow, watercolor", policy)
        sem = asyncio.Semaphore(100)
        served: Counter[str] = Counter()
        attempts: list[int] = []

        async def job(i: int) -> None:
            from kierouter import KieRouterError

            async with sem:
                try:
                    result = await router.generate(
                        f"a red fox in the snow, take {i}", policy=policy
                    )
                except KieRouterError as exc:
                    served["(none: job failed)"] += 1
                    attempts.append(sum(1 for a in getattr(exc, "attempts", ()) if a.task_id))
                    return
                served[result.served_model or "?"] += 1
                attempts.append(sum(1 for a in result.attempts if a.task_id))

        async with client, router:
            await asyncio.gather(*(job(i) for i in range(jobs)))
        stats = emu.stats()
    accepted = jobs - served["(none: job failed)"]
    return {
        "strategy": name,
        "plan": list(plan.models),
        "plan_expected_credits": plan.expected_credits,
        "jobs": jobs,
        "accepted": accepted,
        "success_rate": accepted / jobs,
        "credits": stats["credits_charged"],
        "credits_per_accepted": stats["credits_charged"] / accepted if accepted else float("inf"),
        "tasks_created": stats["created_total"],
        "tasks_failed": stats["failed"],
        "mean_attempts": sum(attempts) / len(attempts),
        "served": dict(served.most_common()),
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    jobs = {"smoke": 10, "quick": 200, "full": 600}[args.mode]
    results = [
        asyncio.run(run(name, policy, jobs, seed=7)) for name, policy in strategies().items()
    ]
    rows = []
    for r in results:
        served = ", ".join(f"`{m}` {n}" for m, n in r["served"].items())
        rows.append(
            [
                r["strategy"],
                " → ".join(f"`{m}`" for m in r["plan"][:4]),
                f"{r['plan_expected_credits']:.2f}",
                f"**{r['credits_per_accepted']:.2f}**",
                f"{r['success_rate']:.1%}",
                f"{r['mean_attempts']:.2f}",
                f"{r['tasks_failed']} / {r['tasks_created']}",
                served,
            ]
        )
    md = table(
        [
            "strategy",
            "plan (first 4 steps)",
            "plan E[credits] (cards)",
            "credits / accepted image",
            "success rate",
            "tasks / job",
            "failed / created tasks",
            "served by",
        ],
        rows,
    )
    md += (
        f"\n\n{jobs} jobs per strategy, same prompts and seed; Seedream fails 30 %, Nano Banana "
        f"15 %, the judge rejects {REJECT:.0%}; credits are what the emulator charged."
    )
    report("cost_per_image", args, {"jobs": jobs, "results": results}, md)


if __name__ == "__main__":
    main()
