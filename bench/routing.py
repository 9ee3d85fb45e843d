"""Benchmark 7: routing decision time: ``kierouter.policy.plan`` over a 30-model catalogue.

The catalogue: every card the installed plugins register plus synthetic cards (copies of real
ones under new ids and prices) up to 30. For each built-in policy, a request that suits it (a
text prompt for ``text``, a Chinese one for ``chinese``, a background removal for ``utility``,
a plain prompt for the rest) is planned many times, each call timed on its own, in three regimes:

* **uncached**: the policy is compiled against the catalogue (done once per policy and
  catalogue), but the planner's memory of plans per request shape is emptied before every call:
  the real planning work for a request shape not seen before. The target applies here.
* **remembered**: the same request shape again: the planner answers from its memory.
* **cold**: every planner cache emptied first (compile + plan), as for the first request after
  loading a policy.

Target: median < 50 µs.

    uv run python bench/routing.py [--quick|--smoke]
"""

from __future__ import annotations

import time
from typing import Any

from _common import parse_args, percentile, report, table

TARGET_US = 50.0
CATALOGUE = 30


def catalogue() -> tuple[dict[str, Any], int]:
    """(30 cards by id, how many are real)."""
    import msgspec

    from kierouter import load_registry

    real = dict(load_registry().cards)
    cards = dict(real)
    donors = sorted(real.values(), key=lambda c: c.id)
    n = 0
    while len(cards) < CATALOGUE:
        donor = donors[n % len(donors)]
        n += 1
        pricing = msgspec.structs.replace(donor.pricing, credits=donor.pricing.credits * 1.1 + n)
        card = msgspec.structs.replace(
            donor, id=f"synthetic/{donor.family}-{n}", pricing=pricing, plugin="synthetic"
        )
        cards[card.id] = card
    return cards, len(real)


def requests() -> dict[str, Any]:
    from kierouter import ImageRequest

    plain = ImageRequest(prompt="a red fox in the snow, watercolor", aspect_ratio="16:9")
    return {
        "budget": plain,
        "speed": plain,
        "quality": plain,
        "artistic": ImageRequest(prompt="an anime girl under cherry blossoms, dreamy"),
        "text": ImageRequest(prompt='a poster that says "GRAND OPENING" in bold letters'),
        "chinese": ImageRequest(prompt="一只在雪地里的红狐狸,水彩画"),
        "utility": ImageRequest(task="remove-background", images=("https://example.com/fox.png",)),
        "auto": plain,
    }


def time_calls(fn: Any, before: Any, n: int) -> list[float]:
    """Microseconds of ``n`` calls of ``fn``, ``before`` run (untimed) ahead of each."""
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        before()
        t0 = clock()
        fn()
        out.append((clock() - t0) / 1000)
    return out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    n = {"smoke": 50, "quick": 3000, "full": 20000}[args.mode]
    n_cold = {"smoke": 20, "quick": 300, "full": 2000}[args.mode]
    from kierouter.policy import _planner, builtin_policies, plan

    cards, n_real = catalogue()
    policies = builtin_policies()
    reqs = requests()

    def forget_plans() -> None:
        for compiled in _planner._COMPILED.values():
            compiled.memo.clear()

    def nothing() -> None:
        pass

    results: dict[str, Any] = {}
    rows = []
    for name, policy in policies.items():
        request = reqs.get(name, reqs["auto"])
        first = plan(request, cards, policy)

        def call(request: Any = request, policy: Any = policy) -> None:
            plan(request, cards, policy)

        regimes = {
            "uncached": time_calls(call, forget_plans, n),
            "remembered": time_calls(call, nothing, n),
            "cold": time_calls(call, _planner.clear_caches, n_cold),
        }
        results[name] = {
            regime: {
                "n": len(v),
                "median_us": percentile(v, 50),
                "p99_us": percentile(v, 99),
            }
            for regime, v in regimes.items()
        }
        results[name]["steps"] = list(first.models)
        results[name]["dropped"] = len(first.dropped)
        u = results[name]["uncached"]
        met = u["median_us"] < TARGET_US
        results[name]["target_met"] = met
        r, c = results[name]["remembered"], results[name]["cold"]
        rows.append(
            [
                f"`{name}`",
                f"{len(first.steps)} / {len(first.dropped)}",
                f"**{u['median_us']:.1f}**",
                f"{u['p99_us']:.1f}",
                f"{r['median_us']:.1f}",
                f"{r['p99_us']:.1f}",
                f"{c['median_us']:.1f}",
                f"{c['p99_us']:.1f}",
                "met" if met else "MISSED",
            ]
        )
    md = table(
        [
            "policy",
            "steps / dropped",
            "uncached median µs",
            "uncached p99 µs",
            "remembered median µs",
            "remembered p99 µs",
            "cold median µs",
            "cold p99 µs",
            "< 50 µs median",
        ],
        rows,
    )
    md += (
        f"\n\n{len(cards)} cards ({n_real} from the installed plugins, {len(cards) - n_real} "
        f"synthetic); {n:,} timed calls per policy (uncached and remembered), {n_cold:,} cold."
    )
    report(
        "routing",
        args,
        {"cards": len(cards), "real_cards": n_real, "calls": n, "results": results},
        md,
    )


if __name__ == "__main__":
    main()
