"""The planner: request + model cards + policy → ranked :class:`~kierouter.policy.Plan`.

Planning makes no network call and is cheap enough to run for every job (well under 50 µs for
a 30-model catalogue): what depends only on the policy and the cards (task kinds, allow/deny,
required strengths, quality and latency floors, ladder rungs) is compiled once and cached per
(policy, cards) pair; per request only the request's own needs (reference images, mask, count,
resolution, aspect ratio, prompt length, language, price) are checked, and only the kept
models are ranked.

Steps, in order:

1. **Intent** (:func:`~kierouter.policy.infer_intent`): task kind plus ``text``, ``chinese``,
   ``4k``, ``anime``. A policy with ``infer=True`` (``auto``) then plans like the built-in mode
   for that intent (``utility``, ``text``, ``chinese``; ``4k`` adds ``require=("4k",)``), with
   its own constraints merged on top (the stricter limit wins).
2. **Hard constraints** drop models, each with a reason: the request's task kind, the policy's
   ``task_kinds``, ``allow``/``deny`` (ids or families), ``require`` (strengths or capabilities),
   ``min_quality``, ``max_latency``, the ladder (for the ``ladder`` and ``expected-cost``
   orderings), then what the request needs: reference images, mask, count, resolution, aspect
   ratio orientation, prompt length, prompt language, ``max_credits`` per image.
3. **Order**: ``ladder`` takes rung by rung one model per rung (the objective's best; inside a
   rung with alternatives the intent decides: text → GPT-4o image, edit → Flux Kontext), then a
   second pass over the rungs, and so on; ``objective`` ranks every kept model;
   ``expected-cost`` takes the ladder's models and sorts them by credits per accepted image
   cᵢ/aᵢ, then by Lᵢ/pᵢ (the least E[credits] for that set, and the fastest such order; see
   :mod:`._expected`). The ``cost`` objective ranks by the same key. ``prefer``-ed models go
   first; at most ``max_steps`` are kept.
4. **Numbers**: each step's credits, latencies, quality, P(billed) and P(accepted) (the card's,
   or learned from outcomes when ``stats`` is given) and P(reached), and the plan's E[credits],
   E[seconds], P(success) and worst case.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import msgspec

from kierouter._models import ImageRequest, ModelCard, _ratio_value

from ._auto import any_model_policy, widened
from ._builtin import AUTO_MODES, RUNG_PREFERENCE
from ._expected import mean_latency
from ._intent import infer_intent, prompt_language
from ._learning import OutcomeStats
from ._steps import Rates, build_plan, cheapest_key, learned_rates
from ._types import Constraints, Dropped, Plan, Policy

__all__ = ["apply_policy_options", "clear_caches", "effective_policy", "merge_constraints", "plan"]

_CAPABILITY_NAMES = ("seed", "negative_prompt", "mask")


def _orientation(ratio: str) -> str | None:
    value = _ratio_value(ratio)
    if value is None:
        return None
    return "square" if value == 1 else ("landscape" if value > 1 else "portrait")


class _Card:
    """What planning needs from one card, precomputed. Strictly private."""

    __slots__ = (
        "any_language",
        "card",
        "family",
        "id",
        "kinds",
        "languages",
        "mask",
        "max_images",
        "max_prompt",
        "max_refs",
        "mean",
        "negative_prompt",
        "orientations",
        "p50",
        "p_card",
        "quality",
        "resolutions",
        "seed",
        "traits",
        "unit",
    )

    def __init__(self, card: ModelCard) -> None:
        caps = card.capabilities
        pricing = card.pricing
        self.card = card
        self.id = card.id
        self.family = card.family
        self.kinds = frozenset(card.task_kinds)
        self.traits = frozenset(
            (*card.strengths, *(n for n in _CAPABILITY_NAMES if getattr(caps, n)))
        )
        self.languages = frozenset(card.languages)
        self.any_language = "*" in self.languages
        self.quality = card.quality
        self.p50 = card.latency_p50
        self.mean = mean_latency(card.latency_p50, card.latency_p90)
        self.p_card = card.success_rate
        self.max_refs = caps.max_reference_images
        self.max_images = caps.max_images
        self.max_prompt = caps.max_prompt_chars
        self.resolutions = frozenset(caps.resolutions)
        self.seed = caps.seed
        self.negative_prompt = caps.negative_prompt
        self.mask = caps.mask
        if "auto" in caps.aspect_ratios:
            self.orientations: frozenset[str] | None = None
        else:
            self.orientations = frozenset(
                o for o in (_orientation(r) for r in caps.aspect_ratios) if o is not None
            )
        simple = not pricing.by_resolution and not pricing.by_speed and not pricing.per_task
        self.unit: float | None = pricing.credits if simple else None

    def credits(self, request: ImageRequest) -> float:
        unit = self.unit
        return unit * request.count if unit is not None else self.card.credits_for(request)


_CARD_CACHE: dict[int, _Card] = {}


def _card_info(card: ModelCard) -> _Card:
    info = _CARD_CACHE.get(id(card))
    if info is None or info.card is not card:
        if len(_CARD_CACHE) > 4096:
            _CARD_CACHE.clear()
        info = _CARD_CACHE[id(card)] = _Card(card)
    return info


class _Compiled:
    """A policy compiled against one catalogue. Strictly private."""

    __slots__ = ("by_kind", "cards", "memo", "policy", "prompt_limits", "rungs", "speed_priced")

    def __init__(self, policy: Policy, cards: tuple[ModelCard, ...]) -> None:
        self.policy = policy
        self.cards = cards
        self.rungs = tuple(tuple(r.split("|")) for r in policy.ladder)
        #: kind -> (candidates as (info, rung index), static drops)
        self.by_kind: dict[str, tuple[list[tuple[_Card, int]], list[Dropped]]] = {}
        #: request shape -> plan (a plan depends on the request only through its shape)
        self.memo: dict[tuple[Any, ...], Plan] = {}
        self.speed_priced = any(c.pricing.by_speed for c in cards)
        self.prompt_limits = sorted({c.capabilities.max_prompt_chars for c in cards})

    def for_kind(self, kind: str) -> tuple[list[tuple[_Card, int]], list[Dropped]]:
        found = self.by_kind.get(kind)
        if found is None:
            found = self.by_kind[kind] = self._compile(kind)
        return found

    def _rung(self, info: _Card) -> int:
        for index, names in enumerate(self.rungs):
            if info.family in names or info.id in names:
                return index
        return -1

    def _compile(self, kind: str) -> tuple[list[tuple[_Card, int]], list[Dropped]]:
        policy = self.policy
        limits = policy.constraints
        allow, deny, require = set(limits.allow), set(limits.deny), limits.require
        use_ladder = policy.ordering != "objective"
        kept: list[tuple[_Card, int]] = []
        dropped: list[Dropped] = []
        for card in self.cards:
            info = _card_info(card)
            rung = self._rung(info)
            reason = None
            if kind not in info.kinds:
                reason = f"does not do {kind} (does {', '.join(card.task_kinds)})"
            elif limits.task_kinds and kind not in limits.task_kinds:
                reason = (
                    f"policy {policy.name!r} takes only {', '.join(limits.task_kinds)} requests"
                )
            elif allow and info.id not in allow and info.family not in allow:
                reason = "not in the policy's allow list"
            elif info.id in deny or info.family in deny:
                reason = "in the policy's deny list"
            elif missing := [r for r in require if r not in info.traits]:
                reason = f"lacks {', '.join(missing)} (the policy requires it)"
            elif limits.min_quality is not None and info.quality < limits.min_quality:
                reason = f"quality {info.quality:g} is below the floor {limits.min_quality:g}"
            elif limits.max_latency is not None and info.p50 > limits.max_latency:
                reason = f"p50 latency {info.p50:g} s is over the {limits.max_latency:g} s limit"
            elif use_ladder and rung < 0:
                reason = f"family {info.family!r} is not on the ladder {'/'.join(policy.ladder)}"
            if reason is None:
                kept.append((info, rung))
            else:
                dropped.append(Dropped(model=info.id, reason=reason))
        return kept, dropped


_COMPILED: dict[tuple[int, int], _Compiled] = {}


def _compiled(policy: Policy, cards: dict[str, ModelCard]) -> _Compiled:
    key = (id(policy), id(cards))
    found = _COMPILED.get(key)
    values = tuple(cards.values())
    if found is None or found.policy is not policy or found.cards != values:
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        found = _COMPILED[key] = _Compiled(policy, values)
    return found


# -- auto ------------------------------------------------------------------------------------


def merge_constraints(base: Constraints, extra: Constraints) -> Constraints:
    """Both sets of limits at once: the stricter of each wins.

    ``require``, ``deny`` and ``task_kinds`` combine; ``allow`` is ``extra``'s when it has one;
    ``language`` is ``extra``'s when set.
    """

    def lowest(a: float | None, b: float | None) -> float | None:
        return a if b is None else b if a is None else min(a, b)

    def highest(a: float | None, b: float | None) -> float | None:
        return a if b is None else b if a is None else max(a, b)

    kinds = base.task_kinds
    if extra.task_kinds:
        kinds = tuple(k for k in kinds if k in extra.task_kinds) if kinds else extra.task_kinds
    return Constraints(
        task_kinds=kinds,
        require=tuple(dict.fromkeys((*base.require, *extra.require))),
        language=extra.language or base.language,
        max_credits=lowest(base.max_credits, extra.max_credits),
        min_quality=highest(base.min_quality, extra.min_quality),
        max_latency=lowest(base.max_latency, extra.max_latency),
        allow=extra.allow or base.allow,
        deny=tuple(dict.fromkeys((*base.deny, *extra.deny))),
    )


_EFFECTIVE: dict[tuple[int, str], tuple[Policy, Policy]] = {}


def effective_policy(policy: Policy, intent: tuple[str, ...]) -> Policy:
    """The policy actually planned: ``policy`` itself, or for ``infer=True`` its intent's mode.

    The mode (e.g. the built-in ``text``) gives the ladder, objective and ordering; ``policy``
    keeps its name, budget, preferences, options and step cap, and its constraints are merged
    with the mode's (the stricter wins).
    """
    if not policy.infer:
        return policy
    tag = ""
    mode: Policy | None = None
    for candidate, candidate_mode in AUTO_MODES:
        if candidate in intent:
            tag, mode = candidate, candidate_mode
            break
    if not tag:
        return policy
    key = (id(policy), tag)
    found = _EFFECTIVE.get(key)
    if found is not None and found[0] is policy:
        return found[1]
    # Computed once per (policy, intent) and remembered, so structs.replace is off the hot path.
    if mode is None:  # 4k: same ladder, models that render 4K
        constraints = merge_constraints(policy.constraints, Constraints(require=(tag,)))
        result = msgspec.structs.replace(policy, constraints=constraints)
    else:
        result = msgspec.structs.replace(
            policy,
            constraints=merge_constraints(mode.constraints, policy.constraints),
            objective=mode.objective,
            ladder=mode.ladder,
            ordering=mode.ordering,
        )
    if len(_EFFECTIVE) > 256:
        _EFFECTIVE.clear()
    _EFFECTIVE[key] = (policy, result)
    return result


def apply_policy_options(request: ImageRequest, policy: Policy) -> ImageRequest:
    """Merge the policy's default model options (and those for the request's intent) under the
    request's own options; the request wins on conflicts."""
    layers: list[dict[str, dict[str, Any]]] = []
    if policy.options:
        layers.append(policy.options)
    if policy.options_by_intent:
        intent = infer_intent(request)
        layers.extend(policy.options_by_intent[t] for t in intent if t in policy.options_by_intent)
    if not layers:
        return request
    merged: dict[str, dict[str, Any]] = {}
    for layer in (*layers, request.options):
        for key, values in layer.items():
            merged[key] = {**merged.get(key, {}), **values}
    if merged == request.options:
        return request
    import msgspec

    return msgspec.structs.replace(request, options=merged)


# -- planning ----------------------------------------------------------------------------------


def _request_drop(
    info: _Card, request: ImageRequest, n_refs: int, orientation: str | None, language: str | None
) -> str | None:
    if n_refs > info.max_refs:
        return f"takes at most {info.max_refs} reference image(s), the request has {n_refs}"
    if request.mask is not None and not info.mask:
        return "cannot take a mask"
    if request.count > info.max_images:
        return f"returns at most {info.max_images} image(s) a task, not {request.count}"
    resolution = request.resolution
    if resolution is not None and info.resolutions and resolution not in info.resolutions:
        return f"cannot render {resolution} (renders {', '.join(sorted(info.resolutions))})"
    orientations = info.orientations
    if orientation is not None and orientations is not None and orientation not in orientations:
        return f"renders no {orientation} aspect ratio"
    if len(request.prompt) > info.max_prompt:
        return f"takes prompts of at most {info.max_prompt} characters"
    if language is not None and not info.any_language and language not in info.languages:
        return f"does not understand {language} prompts (understands {', '.join(info.languages)})"
    return None


def _objective_keys(
    policy: Policy, kept: list[tuple[_Card, int, float]], rates: Rates
) -> dict[str, tuple[Any, ...]]:
    by = policy.objective.by
    if by == "speed":
        return {i.id: (i.p50, c, -i.quality, i.id) for i, _, c in kept}
    if by == "quality":
        return {i.id: (-i.quality, c, i.p50, i.id) for i, _, c in kept}
    if by == "weighted":
        o = policy.objective
        if o.cost or o.speed or o.quality:
            top_c = max((c for _, _, c in kept), default=1.0) or 1.0
            top_l = max((i.p50 for i, _, _ in kept), default=1.0) or 1.0
            return {
                i.id: (
                    -(
                        o.cost * (1 - c / top_c)
                        + o.speed * (1 - i.p50 / top_l)
                        + o.quality * i.quality / 10
                    ),
                    c,
                    i.id,
                )
                for i, _, c in kept
            }
    return {i.id: (*cheapest_key(i, c, rates), -i.quality, i.id) for i, _, c in kept}


_OBJECTIVE_WORDS = {
    "cost": "cheapest",
    "speed": "fastest",
    "quality": "best quality",
    "weighted": "best weighted score",
}


def plan(
    request: ImageRequest,
    cards: dict[str, ModelCard],
    policy: Policy,
    stats: OutcomeStats | None = None,
) -> Plan:
    """The ranked plan for ``request`` over ``cards`` under ``policy``; no network call.

    ``stats`` (an :class:`OutcomeStats`) replaces the cards' success rates by learned ones.
    Every model of ``cards`` is either a step or in ``dropped`` with its reason.
    """
    intent = infer_intent(request)
    active = effective_policy(policy, intent) if policy.infer else policy
    compiled = _compiled(active, cards)
    language = active.constraints.language or request.language or prompt_language(request.prompt)
    if language is not None:
        language = language.lower()
        if language.startswith("zh"):
            language = "zh"
    key: tuple[Any, ...] | None = None
    if not (compiled.speed_priced and request.options):
        # everything of the request a plan depends on (see _request_drop and the reasons)
        key = (
            intent,
            len(request.images),
            request.mask is not None,
            request.count,
            request.resolution,
            _orientation(request.aspect_ratio) if request.aspect_ratio else None,
            bisect_left(compiled.prompt_limits, len(request.prompt)),
            language,
            request.seed is not None,
            bool(request.negative_prompt),
            policy.name,
            id(stats) if stats is not None else None,
            stats.version if stats is not None else 0,
        )
        found = compiled.memo.get(key)
        if found is not None:
            return found
    result = _plan(request, compiled, active, policy.name, intent, language, stats)
    if policy.infer and not result.steps:  # auto with any plugin (see _auto)
        wide = any_model_policy(policy)
        anyone = _plan(request, _compiled(wide, cards), wide, policy.name, intent, language, stats)
        result = widened(anyone) if anyone.steps else result
    if key is not None:
        memo = compiled.memo
        if len(memo) >= 512:
            memo.clear()
        memo[key] = result
    return result


def _plan(
    request: ImageRequest,
    compiled: _Compiled,
    active: Policy,
    name: str,
    intent: tuple[str, ...],
    language: str | None,
    stats: OutcomeStats | None,
) -> Plan:
    kind = request.kind
    candidates, static_dropped = compiled.for_kind(kind)
    dropped = list(static_dropped)
    limits = active.constraints
    # an edit needs a model taking its references; for a generate request with images the
    # provider decides (and names the edit model to use instead)
    n_refs = len(request.images) if kind == "edit" else 0
    orientation = _orientation(request.aspect_ratio) if request.aspect_ratio else None
    cap = limits.max_credits
    count = request.count
    kept: list[tuple[_Card, int, float]] = []
    for info, rung in candidates:
        reason = _request_drop(info, request, n_refs, orientation, language)
        if reason is None:
            credits = info.credits(request)
            if cap is not None and credits / count > cap:
                reason = f"costs {credits / count:g} credits an image, over the cap of {cap:g}"
            else:
                kept.append((info, rung, credits))
                continue
        dropped.append(Dropped(model=info.id, reason=reason))

    rates = learned_rates(kept, stats, intent)
    keys = _objective_keys(active, kept, rates)
    ordering = active.ordering
    why: dict[str, str] = {}
    word = _OBJECTIVE_WORDS[active.objective.by]
    if ordering == "objective":
        ranked = sorted(kept, key=lambda k: keys[k[0].id])
        for n, (info, _, _) in enumerate(ranked, 1):
            why[info.id] = f"#{n} {word} of the eligible models"
    else:
        preferred: tuple[str, ...] = ()
        reason_tag = ""
        for tag, families in RUNG_PREFERENCE:
            if tag in intent:
                preferred, reason_tag = families, tag
                break
        rungs: dict[int, list[tuple[_Card, int, float]]] = {}
        for entry in kept:
            rungs.setdefault(entry[1], []).append(entry)
        groups = []
        for index in sorted(rungs):
            group = rungs[index]
            if len(group) > 1:
                group.sort(key=lambda k: (k[0].family not in preferred, keys[k[0].id]))
            groups.append(group)
        ranked = []
        depth = 0
        limit = len(kept) if active.prefer else min(len(kept), max(active.max_steps, 0))
        while len(ranked) < limit:
            for group in groups:
                if depth < len(group) and len(ranked) < limit:
                    entry = group[depth]
                    ranked.append(entry)
                    info = entry[0]
                    rung_name = active.ladder[entry[1]]
                    lead = "first" if depth == 0 else f"#{depth + 1}"
                    note = (
                        f"; {info.family} goes first in this rung for {reason_tag}"
                        if depth == 0 and info.family in preferred and "|" in rung_name
                        else ""
                    )
                    why[info.id] = f"ladder rung {rung_name!r}, {lead} ({word}){note}"
            depth += 1
    if active.prefer:
        order = {m: n for n, m in enumerate(active.prefer)}
        front = sorted((e for e in ranked if e[0].id in order), key=lambda e: order[e[0].id])
        if front:
            for info, _, _ in front:
                why[info.id] = "preferred by the policy; " + why[info.id]
            ranked = front + [e for e in ranked if e[0].id not in order]

    max_steps = max(active.max_steps, 0)
    if len(ranked) > max_steps or len(ranked) < len(kept):
        rest = ranked[max_steps:]
        if len(ranked) < len(kept):
            seen = {e[0].id for e in ranked}
            rest += [e for e in kept if e[0].id not in seen]
        ranked = ranked[:max_steps]
        beyond = f"beyond max_steps ({max_steps})"
        for info, _, _ in rest:
            dropped.append(Dropped(model=info.id, reason=beyond))

    if ordering == "expected-cost" and len(ranked) > 1:
        ranked.sort(key=lambda e: (*cheapest_key(e[0], e[2], rates), e[0].id))
        for info, _, credits in ranked:
            per = cheapest_key(info, credits, rates)[0]
            why[info.id] += f"; ordered by credits per accepted image ({per:.3g})"
    return build_plan(request, ranked, rates, why, name, dropped, intent)


def clear_caches() -> None:
    """Forget every compiled policy and remembered plan (tests; cards changed in place)."""
    _COMPILED.clear()
    _EFFECTIVE.clear()
    _CARD_CACHE.clear()
