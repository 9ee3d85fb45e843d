"""Benchmark 5: credits per accepted image under failures and rejections, by routing strategy.

Scenario ``issue`` (issue 18's): Seedream tasks fail 30 %, Nano Banana tasks 15 %, and a judge
rejects 10 % of delivered images. KIE charges a task only when it produces an image: failed
tasks are free, rejected images are paid. Scenario ``picky-judge`` is the same with the judge
rejecting 45 % of Seedream's images, which the model cards cannot know: only learning finds it.

Every strategy plans over the default ladder's four models (Seedream 4, Nano Banana, Flux
Kontext Pro, Midjourney; ``allow`` keeps learning from swapping in their siblings):

* **default ladder**: ``Policy(name="ladder")``: cheapest first;
* **expected-cost ordering**: ``ordering="expected-cost"``, rates learned from outcomes as the
  run goes (the router's ``OutcomeStats``), starting from the cards;
* **every fixed order** of the four models (24 plans; ``--quick`` runs all 24 in ``issue`` and
  two, the ladder's and the best, in ``picky-judge``);
* **always the quality model**: the built-in ``quality`` policy (its own models), for scale.

Every strategy meets the same luck: whether a job's task on a model fails, and whether the judge
rejects its image, follow a hash of (prompt, model) (``_same_odds.py``); nothing may depend on
timing instead (no task deadline is reached, the per-model circuit breaker is off), and the
run counts any attempt that ends otherwise. Reported: credits per
accepted image (what the emulators charged / accepted images), next to what the billing model
predicts (``E[credits] / P(success)`` with the scenario's true rates), and, for the learning
strategy, credits per accepted image over consecutive windows of jobs as its rates converge.

    uv run python bench/cost_per_image.py [--quick|--smoke]
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from contextvars import ContextVar
from typing import Any

from _common import parse_args, report, table
from _same_odds import SameOdds, judge, rate_for

TIME_SCALE = 400.0
CONCURRENCY = 100
SEEDREAM = "bytedance/seedream-v4-text-to-image"
NANO = "google/nano-banana"
FLUX = "flux-kontext-pro"
MJ = "midjourney"
FOUR = (SEEDREAM, NANO, FLUX, MJ)
SHORT = {SEEDREAM: "S", NANO: "N", FLUX: "F", MJ: "M"}
FAIL = {SEEDREAM: 0.30, NANO: 0.15}
SCENARIOS: dict[str, dict[str, Any]] = {
    "issue": {"fail": FAIL, "reject": {"*": 0.10}},
    "picky-judge": {"fail": FAIL, "reject": {SEEDREAM: 0.45, "*": 0.10}},
}


class PaidRejections:
    """Tells the router's OutcomeStats which of its 'not accepted' outcomes were paid.

    The run loop now records a rejected image with ``billed=True`` itself (issue 18), and a
    record that says ``billed`` is passed on as it is, so this only matters for a run loop that
    does not: there the judge marks the job's own task context when it rejects (a sync judge
    runs in the job's task), and the job's next not-accepted record of that model counts as
    paid. Either way the stats get the same records.
    """

    def __init__(self) -> None:
        self._rejected: ContextVar[str | None] = ContextVar("rejected", default=None)
        self._record: Any = None

    def attach(self, stats: Any) -> None:
        self._record = stats.record
        stats.record = self.record

    def seen(self, model: str, accepted: bool) -> None:
        self._rejected.set(None if accepted else model)

    def record(self, model: str, ok: bool, intent: Any = ("*",), *, billed: Any = None) -> None:
        if self._rejected.get() == model:
            self._rejected.set(None)
            if not ok and billed is None:
                billed = True
        self._record(model, ok, intent, billed=billed)


def strategies(orders: list[tuple[str, ...]]) -> dict[str, Any]:
    from kierouter.policy import Constraints, Policy, builtin_policies

    four = Constraints(allow=FOUR)
    out: dict[str, Any] = {
        "default ladder": Policy(name="ladder", constraints=four),
        "expected-cost ordering": Policy(
            name="expected-cost", ordering="expected-cost", constraints=four
        ),
        "always the quality model": builtin_policies()["quality"],
    }
    for order in orders:
        name = "order " + "".join(SHORT[m] for m in order)
        out[name] = Policy(name=name, ladder=order, constraints=four)
    return out


def predicted(models: list[str], scenario: dict[str, Any], credits: dict[str, float]) -> float:
    """E[credits] / P(success) of ``models`` in this order under the scenario's true rates."""
    from kierouter.policy import expected_credits, p_success

    steps = []
    for m in models:
        billed = 1 - rate_for(scenario["fail"], m)
        steps.append((credits[m], billed * (1 - rate_for(scenario["reject"], m)), billed))
    return expected_credits(steps) / p_success(steps)


async def run(name: str, policy: Any, scenario: dict[str, Any], jobs: int) -> dict[str, Any]:
    from kierouter import KieClient, KieRouterError, PollConfig, Router, load_registry
    from kierouter._cooldown import Cooldown
    from kierouter.sim import Emulator

    registry = load_registry()
    options = {"time_scale": TIME_SCALE, "create_limit": 10**6, "create_window": 1.0}
    async with Emulator(seed=1, **options) as good, Emulator(seed=2, **options) as bad:
        bad.configure("*", fail_rate=1.0)
        client = KieClient(
            good.api_key, base_url=good.base_url, create_limit=10**6, create_window=1.0,
            read_rate=10_000, transport=SameOdds(good.base_url, bad.base_url, scenario["fail"]),
        )  # fmt: skip
        paid = PaidRejections()
        router = Router(
            registry=registry,
            client=client,
            latency_scale=1 / TIME_SCALE,
            judge=judge(scenario["reject"], paid.seen),
            allow_private_downloads=True,
            # Nothing may depend on timing rather than on the shared dice (``unexpected`` below
            # counts what does): no task times out on a busy machine, and the per-model circuit
            # breaker, which skips a model after a run of failures for a while, never opens.
            poll=PollConfig(deadline_factor=30),
            cooldown=Cooldown(threshold=10**9),
        )
        paid.attach(router.stats)
        plan = router.explain("a red fox in the snow, watercolor", policy)
        sem = asyncio.Semaphore(CONCURRENCY)
        per_job: list[tuple[float, bool]] = [(0.0, False)] * jobs
        served: Counter[str] = Counter()
        orders: Counter[str] = Counter()
        unexpected: Counter[str] = Counter()
        tasks = 0

        async def job(i: int) -> None:
            nonlocal tasks
            prompt = f"a red fox in the snow, take {i}"
            async with sem:  # jobs start in index order: the windows follow the learning
                models = router.explain(prompt, policy).models
                if set(models) <= set(SHORT):
                    orders["".join(SHORT[m] for m in models)] += 1
                try:
                    result = await router.generate(prompt, policy=policy)
                except KieRouterError as exc:
                    attempts, model = getattr(exc, "attempts", ()), "(none: job failed)"
                else:
                    attempts, model = result.attempts, result.served_model or "?"
                served[model] += 1
                tasks += sum(1 for a in attempts if a.task_id)
                unexpected.update(
                    a.outcome
                    for a in attempts
                    if a.outcome not in ("success", "failed", "rejected")
                )
                per_job[i] = (sum(a.credits for a in attempts), model != "(none: job failed)")

        async with client, router:
            await asyncio.gather(*(job(i) for i in range(jobs)))
        charged = good.stats()["credits_charged"] + bad.stats()["credits_charged"]
    accepted = sum(ok for _, ok in per_job)
    return {
        "strategy": name,
        "plan": list(plan.models),
        "plan_expected_credits": plan.credits_per_accepted,  # from the cards, before learning
        "plans_used": dict(orders.most_common()),
        "jobs": jobs,
        "accepted": accepted,
        "success_rate": accepted / jobs,
        "credits": charged,
        "credits_recorded": sum(c for c, _ in per_job),
        "credits_per_accepted": charged / accepted if accepted else float("inf"),
        "mean_attempts": tasks / jobs,
        "served": dict(served.most_common()),
        "unexpected_outcomes": dict(unexpected),
        "per_job": per_job,
    }


def windows(per_job: list[Any], size: int) -> list[float]:
    """Credits per accepted image over consecutive windows of ``size`` jobs."""
    out = []
    for start in range(0, len(per_job), size):
        chunk = per_job[start : start + size]
        accepted = sum(ok for _, ok in chunk)
        out.append(sum(c for c, _ in chunk) / accepted if accepted else float("inf"))
    return out


def scenario_report(name: str, results: list[dict[str, Any]], window: int) -> tuple[str, Any]:
    by_name = {r["strategy"]: r for r in results}
    main = ("default ladder", "expected-cost ordering", "always the quality model")
    rows = []
    for r in results:
        if r["strategy"] in main:
            served = ", ".join(f"`{m}` {n}" for m, n in r["served"].items())
            rows.append([
                r["strategy"], " → ".join(f"`{m}`" for m in r["plan"][:4]),
                ", ".join(f"{o} {n}" for o, n in r["plans_used"].items()) or "(its own)",
                f"**{r['credits_per_accepted']:.3f}**", f"{r['success_rate']:.1%}",
                f"{r['mean_attempts']:.2f}", served,
            ])  # fmt: skip
    md = f"**Scenario `{name}`**\n\n" + table(
        ["strategy", "first plan", "plans used (S N F M)", "credits / accepted image",
         "success", "tasks / job", "served by"],
        rows,
    )  # fmt: skip
    orders = sorted(
        (r for r in results if r["strategy"].startswith("order ")),
        key=lambda r: r["credits_per_accepted"],
    )
    summary: dict[str, Any] = {}
    if orders:
        learned = by_name["expected-cost ordering"]["credits_per_accepted"]
        best = orders[0]
        md += "\n\n" + table(
            ["fixed order", "credits / accepted image", "predicted", "success"],
            [[r["strategy"].removeprefix("order "), f"{r['credits_per_accepted']:.3f}",
              f"{r['predicted']:.3f}", f"{r['success_rate']:.1%}"] for r in orders],
        )  # fmt: skip
        md += (
            f"\n\nExpected-cost ordering {learned:.3f} vs the best fixed order "
            f"({best['strategy'].removeprefix('order ')}) {best['credits_per_accepted']:.3f} and "
            f"the ladder {by_name['default ladder']['credits_per_accepted']:.3f}; "
            f"{sum(r['credits_per_accepted'] < learned - 1e-9 for r in orders)} of "
            f"{len(orders)} fixed orders cost less."
        )
        summary = {"best_fixed_order": best["strategy"], "best": best["credits_per_accepted"]}
        series = {
            s: windows(by_name[s]["per_job"], window)
            for s in ("expected-cost ordering", "default ladder", best["strategy"])
        }
        md += "\n\n" + table(
            [f"jobs (windows of {window})", *series],
            [[f"{i * window + 1}–{(i + 1) * window}", *(f"{v[i]:.2f}" for v in series.values())]
             for i in range(len(next(iter(series.values()))))],
        )  # fmt: skip
        half = len(by_name[best["strategy"]]["per_job"]) // 2
        later = {s: windows(by_name[s]["per_job"][half:], 10**9)[0] for s in series}
        md += "\n\nSecond half of the run: " + ", ".join(f"{s} {v:.3f}" for s, v in later.items())
        summary["series"] = series
        summary["second_half"] = later
    return md, summary


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    jobs = {"smoke": 8, "quick": 200, "full": 600}[args.mode]
    window = {"smoke": 4, "quick": 50, "full": 50}[args.mode]
    from kierouter import load_registry

    credits = {m: load_registry().cards[m].pricing.credits for m in FOUR}
    data: dict[str, Any] = {"jobs": jobs, "concurrency": CONCURRENCY, "scenarios": {}}
    parts = []
    for name, scenario in SCENARIOS.items():
        results = []
        orders = list(itertools.permutations(FOUR))
        if args.mode != "full" and name != "issue":  # the ladder's order and the best one
            orders = [FOUR, (NANO, SEEDREAM, FLUX, MJ)]
        if args.mode == "smoke":  # proves the script works: two orders, one scenario
            orders = [FOUR, (NANO, SEEDREAM, FLUX, MJ)] if name == "issue" else []
        for label, policy in strategies(orders).items():
            result = asyncio.run(run(label, policy, scenario, jobs))
            order = [m for m in policy.ladder if m in FOUR] if label.startswith("order ") else []
            result["predicted"] = predicted(order, scenario, credits) if order else None
            results.append(result)
        md, summary = scenario_report(name, results, window)
        parts.append(md)
        for r in results:
            r.pop("per_job")
        data["scenarios"][name] = {**scenario, **summary, "results": results}
    # the headline strategies of issue 18's scenario, for the summary table and the figure
    data["results"] = [
        r for r in data["scenarios"]["issue"]["results"] if not r["strategy"].startswith("order ")
    ]
    odd = {
        f"{name}/{r['strategy']}": r["unexpected_outcomes"]
        for name, found in data["scenarios"].items()
        for r in found["results"]
        if r["unexpected_outcomes"]
    }
    parts.append(
        f"Attempts ending other than success, failure or rejection: {odd} (not shared luck)."
        if odd
        else "Every attempt ended in success, failure or rejection: every strategy met the "
        "same luck."
    )
    md = "\n\n".join(parts) + (
        f"\n\n{jobs} jobs per strategy, {CONCURRENCY} in flight, the same prompts; a job's "
        "failure and rejection on a model follow a hash of (prompt, model), so every strategy "
        "meets the same luck. Credits are what the emulators charged; predicted = "
        "E[credits] / P(success) of the billing model with the scenario's true rates."
    )
    report("cost_per_image", args, data, md)


if __name__ == "__main__":
    main()
