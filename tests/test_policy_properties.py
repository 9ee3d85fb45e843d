"""Property tests of the planner over random catalogues, requests and policies (hypothesis)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from kierouter import Capabilities, ImageRequest, ModelCard, Pricing
from kierouter.policy import (
    Constraints,
    Objective,
    Policy,
    expected_credits,
    p_success,
    plan,
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
        max_steps=draw(st.integers(2, 6)),
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


def brute_force(steps: list[tuple[float, float]]) -> tuple[float, float]:
    """E[credits] and P(success) by enumerating every success/failure outcome of the steps."""
    expected = success = 0.0
    for outcome in itertools.product((True, False), repeat=len(steps)):
        prob = math.prod(p if ok else 1 - p for (_, p), ok in zip(steps, outcome, strict=True))
        paid = 0.0
        for (credits, _), ok in zip(steps, outcome, strict=True):
            paid += credits
            if ok:
                success += prob
                break
        expected += prob * paid
    return expected, success


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
@given(cards(), requests(), policies())
def test_expected_credits_match_brute_force(
    catalogue: dict[str, ModelCard], request: ImageRequest, policy: Policy
) -> None:
    """E[credits], P(success) and the worst case equal a brute-force enumeration of outcomes."""
    result = plan(request, catalogue, policy)
    steps = [(s.credits, s.p_success) for s in result.steps]
    expected, success = brute_force(steps)
    assert math.isclose(result.expected_credits, expected, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(result.p_success, success, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(expected_credits(steps), expected, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(p_success(steps), success, rel_tol=1e-9, abs_tol=1e-9)
    assert result.worst_case_credits == sum(c for c, _ in steps)


@settings(max_examples=300, deadline=None)
@given(cards(), st.just(ImageRequest(prompt="a red fox")), floors())
def test_expected_cost_ordering_is_optimal_and_never_worse_than_the_ladder(
    catalogue: dict[str, ModelCard], request: ImageRequest, ladder: Policy
) -> None:
    """Under the same constraints (the floor), expected-cost plans the ladder's models with the
    same P(success), E[credits] no higher than the ladder's, and the lowest E[credits] of any
    order of those models (brute force over every permutation)."""
    ordered = msgspec.structs.replace(ladder, ordering="expected-cost")
    by_ladder = plan(request, catalogue, ladder)
    by_cost = plan(request, catalogue, ordered)
    assert sorted(by_cost.models) == sorted(by_ladder.models)
    assert math.isclose(by_cost.p_success, by_ladder.p_success, abs_tol=1e-12)
    assert by_cost.expected_credits <= by_ladder.expected_credits + 1e-9
    steps = [(s.credits, s.p_success) for s in by_cost.steps]
    best = min((expected_credits(order) for order in itertools.permutations(steps)), default=0.0)
    assert math.isclose(by_cost.expected_credits, best, rel_tol=1e-9, abs_tol=1e-9)


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
