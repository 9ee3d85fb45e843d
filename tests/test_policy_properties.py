"""Property tests of the planner over random catalogues, requests and policies (hypothesis).

The expected numbers are checked against a brute-force enumeration of every outcome of every
attempt under KIE's billing (a failed task is free; a produced image is paid, accepted or not),
with learned rates drawn from random outcome counts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from fractions import Fraction
from statistics import NormalDist
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from kierouter import Capabilities, ImageRequest, ModelCard, Pricing
from kierouter.policy import (
    Constraints,
    Objective,
    OutcomeStats,
    Plan,
    Policy,
    expected_credits,
    p_success,
    plan,
    worst_case_credits,
)

FAMILIES = ("seedream", "nano-banana", "qwen", "flux-kontext", "gpt4o-image", "midjourney", "x")
STRENGTHS = ("text", "chinese", "editing", "4k", "artistic")
URL = "https://example.com/a.png"
# prompt -> the language the engine must read from it (None: no constraint)
PROMPTS = {"a red fox": None, 'a sign saying "OPEN"': None, "红狐狸": "zh", "赤いキツネです": "ja"}


@st.composite
def cards(draw: Any) -> dict[str, ModelCard]:
    n = draw(st.integers(1, 12))
    out = {}
    for i in range(n):
        family = draw(st.sampled_from(FAMILIES))
        kinds = draw(
            st.sampled_from((("generate", "edit"), ("generate", "edit"), ("generate",), ("edit",)))
        )
        out[f"m{i}"] = ModelCard(
            id=f"m{i}",
            family=family,
            task_kinds=kinds,
            pricing=Pricing(credits=draw(st.sampled_from((1.0, 2.0, 3.5, 4.0, 6.0, 10.0, 25.0)))),
            latency_p50=draw(st.sampled_from((10.0, 20.0, 40.0, 90.0))),
            latency_p90=200.0,
            quality=draw(st.sampled_from((6.0, 7.5, 8.0, 9.0, 9.5))),
            capabilities=Capabilities(
                aspect_ratios=("1:1", "16:9"),
                resolutions=draw(st.sampled_from(((), ("1K",), ("1K", "2K", "4K")))),
                max_images=draw(st.sampled_from((1, 4, 4))),
                max_reference_images=draw(st.sampled_from((0, 3, 3))),
                seed=draw(st.booleans()),
                mask=draw(st.booleans()),
            ),
            strengths=tuple(draw(st.lists(st.sampled_from(STRENGTHS), unique=True, max_size=4))),
            languages=draw(st.sampled_from((("en",), ("en", "zh"), ("*",), ("*",)))),
            success_rate=draw(st.sampled_from((0.05, 0.5, 0.8, 0.9, 0.99))),
        )
    return out


@st.composite
def learned(draw: Any, catalogue: dict[str, ModelCard]) -> dict[str, tuple[int, int, int]]:
    """Outcomes observed per model: (failed tasks, rejected images, accepted images)."""
    counts = st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6))
    chosen = draw(st.lists(st.sampled_from(sorted(catalogue)), unique=True))
    return {model: draw(counts) for model in chosen}


def stats_from(outcomes: dict[str, tuple[int, int, int]]) -> OutcomeStats:
    stats = OutcomeStats(prior_weight=10)
    for model, (failed, rejected, accepted) in outcomes.items():
        for ok, billed, times in (
            (False, False, failed),
            (False, True, rejected),
            (True, True, accepted),
        ):
            for _ in range(times):
                stats.record(model, ok, billed=billed)
    return stats


def rates(card: ModelCard, outcomes: dict[str, tuple[int, int, int]]) -> tuple[Fraction, Fraction]:
    """P(billed) and P(accepted | billed), exactly: Beta priors worth 10 outcomes, the card's
    success rate for billing and 1 for acceptance."""
    failed, rejected, accepted = outcomes.get(card.id, (0, 0, 0))
    billed = rejected + accepted
    prior = Fraction(card.success_rate)
    return (10 * prior + billed) / (10 + failed + billed), Fraction(10 + accepted, 10 + billed)


def mean_seconds(card: ModelCard) -> float:
    """The mean of the log-normal latency through the card's p50 and p90."""
    sigma = math.log(card.latency_p90 / card.latency_p50) / NormalDist().inv_cdf(0.9)
    return card.latency_p50 * math.exp(sigma**2 / 2)


@st.composite
def requests(draw: Any) -> ImageRequest:
    kind = draw(st.sampled_from(("generate", "edit")))
    refs = draw(st.integers(1, 3)) if kind == "edit" else 0
    return ImageRequest(
        prompt=draw(st.sampled_from(("a red fox", "a red fox", *sorted(PROMPTS)))),
        task=kind,
        images=(URL,) * refs,
        count=draw(st.sampled_from((1, 1, 1, 3))),
        resolution=draw(st.sampled_from((None, None, "1K", "4K"))),
        mask=URL if kind == "edit" and draw(st.integers(0, 4)) == 0 else None,
        aspect_ratio=draw(st.sampled_from((None, None, "1:1", "16:9", "9:16"))),
    )


@st.composite
def floors(draw: Any) -> Policy:
    """Ladder policies whose only limits are a quality floor and a price cap."""
    return Policy(
        name="floor",
        constraints=Constraints(
            min_quality=draw(st.sampled_from((None, 7.5, 8.0))),
            max_credits=draw(st.sampled_from((None, 10.0))),
        ),
        ladder=tuple(draw(st.permutations(FAMILIES))),
        max_steps=draw(st.integers(2, 5)),
    )


@st.composite
def policies(draw: Any, ordering: str | None = None) -> Policy:
    fams = draw(st.permutations(FAMILIES[:6]))
    cut = draw(st.integers(2, 6))
    ladder = list(fams[:cut])
    if len(ladder) > 2 and draw(st.booleans()):
        ladder[1:3] = [f"{ladder[1]}|{ladder[2]}"]
    names = (*FAMILIES, "m0", "m1", "m2")
    return Policy(
        name="p",
        constraints=Constraints(
            require=draw(st.sampled_from(((), (), (), ("text",), ("seed",), ("4k", "editing")))),
            max_credits=draw(st.sampled_from((None, None, 4.0, 10.0))),
            min_quality=draw(st.sampled_from((None, None, 7.5, 9.0))),
            max_latency=draw(st.sampled_from((None, None, 30.0))),
            allow=draw(st.sampled_from(((), (), (), tuple(draw(st.permutations(names))[:5])))),
            deny=draw(st.sampled_from(((), (), (draw(st.sampled_from(names)),)))),
            language=draw(st.sampled_from((None, None, None, "zh"))),
        ),
        objective=Objective(by=draw(st.sampled_from(("cost", "speed", "quality", "weighted")))),
        ladder=tuple(ladder),
        ordering=ordering or draw(st.sampled_from(("ladder", "objective", "expected-cost"))),
        max_steps=draw(st.integers(1, 6)),
    )


def violation(card: ModelCard, request: ImageRequest, policy: Policy) -> str | None:
    """An independent statement of every hard constraint (None: the card may serve)."""
    c = policy.constraints
    caps = card.capabilities
    traits = set(card.strengths) | {n for n in ("seed", "mask") if getattr(caps, n)}
    language = c.language or PROMPTS[request.prompt]
    credits = card.pricing.credits * request.count
    checks = {
        "kind": request.kind in card.task_kinds,
        "allow": not c.allow or card.id in c.allow or card.family in c.allow,
        "deny": card.id not in c.deny and card.family not in c.deny,
        "require": set(c.require) <= traits,
        "quality": c.min_quality is None or card.quality >= c.min_quality,
        "latency": c.max_latency is None or card.latency_p50 <= c.max_latency,
        "credits": c.max_credits is None or credits / request.count <= c.max_credits,
        "refs": request.kind != "edit" or len(request.images) <= caps.max_reference_images,
        "mask": request.mask is None or caps.mask,
        "count": request.count <= caps.max_images,
        "resolution": not request.resolution
        or not caps.resolutions
        or request.resolution in caps.resolutions,
        "orientation": request.aspect_ratio != "9:16",  # no card renders portrait
        "language": language is None or "*" in card.languages or language in card.languages,
        "ladder": policy.ordering == "objective"
        or any(card.family in rung.split("|") for rung in policy.ladder),
    }
    failed = [name for name, ok in checks.items() if not ok]
    return ", ".join(failed) or None


#: One attempt: credits, P(billed), P(accepted | billed), mean seconds.
Attempt = tuple[float, float, float, float]


def brute_force(steps: Sequence[Attempt]) -> tuple[float, float, float]:
    """E[credits], P(success) and E[seconds] by walking every outcome of every attempt: KIE
    fails the task (free, next step), or produces an image (paid) that is accepted (stop) or
    not (next step)."""
    totals = [0.0, 0.0, 0.0]

    def walk(i: int, prob: float, paid: float, elapsed: float) -> None:
        if i == len(steps) or prob == 0.0:
            totals[0] += prob * paid
            totals[2] += prob * elapsed
            return
        credits, billed, accept, seconds = steps[i]
        elapsed += seconds
        accepted = prob * billed * accept
        totals[0] += accepted * (paid + credits)
        totals[1] += accepted
        totals[2] += accepted * elapsed
        walk(i + 1, prob * billed * (1 - accept), paid + credits, elapsed)
        walk(i + 1, prob * (1 - billed), paid, elapsed)

    walk(0, 1.0, 0.0, 0.0)
    return totals[0], totals[1], totals[2]


def attempts(result: Plan, catalogue: dict[str, ModelCard], outcomes: Any) -> list[Attempt]:
    """The plan's steps as attempts, with rates computed here from the recorded outcomes."""
    out = []
    for step in result.steps:
        card = catalogue[step.model]
        billed, accept = rates(card, outcomes)
        out.append((step.credits, float(billed), float(accept), mean_seconds(card)))
    return out


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=300, deadline=None)
@given(cards(), requests(), policies())
def test_no_step_violates_a_hard_constraint(
    catalogue: dict[str, ModelCard], request: ImageRequest, policy: Policy
) -> None:
    """Every planned model passes every hard constraint; every model that passes them is either
    planned or dropped only for max_steps; nothing is planned twice; max_steps holds."""
    result = plan(request, catalogue, policy)
    for step in result.steps:
        assert violation(catalogue[step.model], request, policy) is None, step
    assert len(result.models) == len(set(result.models)) <= max(policy.max_steps, 0)
    for dropped in result.dropped:
        bad = violation(catalogue[dropped.model], request, policy)
        assert (bad is None) == dropped.reason.startswith("beyond max_steps"), (dropped, bad)
    assert sorted([*result.models, *(d.model for d in result.dropped)]) == sorted(catalogue)


@settings(max_examples=300, deadline=None)
@given(st.data(), cards(), requests(), policies())
def test_expected_numbers_match_brute_force(
    data: Any, catalogue: dict[str, ModelCard], request: ImageRequest, policy: Policy
) -> None:
    """Each step's P(billed), P(success) and mean latency follow the learned outcomes and the
    card; the plan's E[credits], P(success), E[seconds], each step's P(reached) and the worst
    case equal a brute-force walk over every outcome of every attempt."""
    outcomes = data.draw(learned(catalogue))
    result = plan(request, catalogue, policy, stats=stats_from(outcomes))
    steps = attempts(result, catalogue, outcomes)
    for step, (_, billed, accept, seconds) in zip(result.steps, steps, strict=True):
        assert close(step.p_billed, billed) and close(step.p_success, billed * accept)
        assert close(step.latency_mean, seconds)
    expected, success, seconds = brute_force(steps)
    assert close(result.expected_credits, expected)
    assert close(result.p_success, success)
    assert close(result.expected_seconds, seconds)
    if result.p_success > 0:
        assert close(result.credits_per_accepted, expected / success)
    for i, step in enumerate(result.steps):
        assert close(step.p_reached, 1 - brute_force(steps[:i])[1])
    triples = [(s.credits, s.p_success, s.p_billed) for s in result.steps]
    assert close(expected_credits(triples), expected)
    assert close(p_success(triples), success)
    assert result.worst_case_credits == worst_case_credits(triples) == sum(c for c, *_ in steps)


def test_a_pair_is_billed_on_every_attempt() -> None:
    """expected_credits of (credits, p) pairs is the every-attempt-paid formula, and equals
    the brute force with P(billed) = 1; the same steps with P(billed) < 1 cost less."""
    pairs = [(3.5, 0.63), (4.0, 0.765), (8.0, 0.9)]
    paid_always = [(c, 1.0, p, 0.0) for c, p in pairs]
    assert close(expected_credits(pairs), brute_force(paid_always)[0])
    assert close(expected_credits(pairs), 3.5 + 0.37 * 4.0 + 0.37 * 0.235 * 8.0)
    triples = [(3.5, 0.63, 0.7), (4.0, 0.765, 0.85), (8.0, 0.9, 1.0)]
    assert expected_credits(triples) < expected_credits(pairs)
    assert close(expected_credits(triples), brute_force([(3.5, 0.7, 0.9, 0), (4, 0.85, 0.9, 0),
                                                         (8, 1.0, 0.9, 0)])[0])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.data(), cards(), st.just(ImageRequest(prompt="a red fox")), floors())
def test_expected_cost_ordering_is_optimal_and_never_worse_than_the_ladder(
    data: Any, catalogue: dict[str, ModelCard], request: ImageRequest, ladder: Policy
) -> None:
    """Under the same constraints (the floor) and learned rates, expected-cost plans the
    ladder's models with the same P(success) and E[credits] (a job, an accepted image) no
    higher than the ladder's; no order of those models costs less, by a brute-force walk over
    every outcome of every order; among the orders that cost as little (equal keys, computed
    exactly here), none is faster."""
    outcomes = data.draw(learned(catalogue))
    stats = stats_from(outcomes)
    ordered = msgspec.structs.replace(ladder, ordering="expected-cost")
    by_ladder = plan(request, catalogue, ladder, stats=stats)
    by_cost = plan(request, catalogue, ordered, stats=stats)
    assert sorted(by_cost.models) == sorted(by_ladder.models)
    assert math.isclose(by_cost.p_success, by_ladder.p_success, abs_tol=1e-12)
    assert by_cost.expected_credits <= by_ladder.expected_credits + 1e-9
    if by_cost.p_success > 0:
        assert by_cost.credits_per_accepted <= by_ladder.credits_per_accepted + 1e-9
    steps = attempts(by_cost, catalogue, outcomes)
    costs = [brute_force(order)[0] for order in itertools.permutations(steps)]
    assert close(by_cost.expected_credits, min(costs, default=0.0))
    # equal cost keys c/a (exact fractions) form runs; inside a run every order costs the
    # same, and the plan's must be the fastest of them
    keys = [key(by_cost, i, catalogue, outcomes) for i in range(len(steps))]
    assert keys == sorted(keys)
    for _, run in itertools.groupby(range(len(steps)), key=lambda i: keys[i]):
        block = list(run)
        if len(block) > 1:
            head, tail = steps[: block[0]], steps[block[-1] + 1 :]
            times = [
                brute_force([*head, *order, *tail])[2]
                for order in itertools.permutations(steps[block[0] : block[-1] + 1])
            ]
            assert by_cost.expected_seconds <= min(times) + 1e-9


def key(result: Plan, i: int, catalogue: dict[str, ModelCard], outcomes: Any) -> Fraction | float:
    """Step i's cost key c/a, exactly (∞ when it never yields an accepted image)."""
    step = result.steps[i]
    billed, accept = rates(catalogue[step.model], outcomes)
    return Fraction(step.credits) / accept if billed and accept else math.inf


@settings(max_examples=200, deadline=None)
@given(cards(), requests(), requests(), policies())
def test_remembered_plans_equal_fresh_ones(
    catalogue: dict[str, ModelCard], first: ImageRequest, second: ImageRequest, policy: Policy
) -> None:
    """Plans are remembered per request shape: the plan for a request right after another one
    equals the plan computed with every cache cleared."""
    from kierouter.policy._planner import clear_caches

    plan(first, catalogue, policy)
    warm = plan(second, catalogue, policy)
    again = plan(second, catalogue, policy)
    clear_caches()
    assert plan(second, catalogue, policy) == warm == again
