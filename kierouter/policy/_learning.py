"""Billing and acceptance rates learned from outcomes, per model and intent.

Every attempt ends one of three ways (see :mod:`kierouter.policy._expected`): KIE fails the task
(free), KIE produces an image that is accepted (billed, the job is done), or KIE produces an image
that is not accepted: the judge rejected it, or the job gave up on the task at its deadline and
KIE bills it anyway (billed, the ladder moves on). :meth:`OutcomeStats.record` counts, per
(model, intent tag), the outcomes ``n``, the billed ones ``b`` and the accepted ones ``s``, and
two rates are learned from them, each from a Beta prior worth ``prior_weight`` pseudo-outcomes:

* P(billed) = (w·p₀ + b) / (w + n), from the card's ``success_rate`` p₀ (the chance that KIE
  produces an image);
* P(accepted | billed) = (w·1 + s) / (w + b): a produced image is taken to be accepted until
  judges or deadlines say otherwise.

Outcomes are kept per model and per intent tag (the task kind and tags such as ``text`` or
``chinese``, see :func:`~kierouter.policy.infer_intent`), so that a model that keeps failing at
rendering text loses ground for text prompts only. A plan uses the most specific tag that has
observations and says so in the step's reason (``learned from N outcomes``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

__all__ = ["ACCEPT_PRIOR", "OutcomeStats"]

ACCEPT_PRIOR = 1.0
"""The prior P(accepted | billed): a produced image counts as accepted until outcomes say not."""


class OutcomeStats:
    """Observed outcomes per (model, intent tag): billed or not, accepted or not; feeds
    :func:`~kierouter.policy.plan`.

    A :class:`~kierouter.Router` keeps one and records every attempt's outcome into it.
    Thread-safe; cheap to read (a few dict lookups per model).
    """

    def __init__(self, prior_weight: float = 10.0) -> None:
        if prior_weight <= 0:
            raise ValueError("prior_weight must be positive")
        self.prior_weight = prior_weight
        #: model -> tag -> [accepted, billed, outcomes] (by model first: one lookup finds that a
        #: model has no data, the common case while planning)
        self._counts: dict[str, dict[str, list[int]]] = {}
        self._lock = threading.Lock()
        #: Bumped by every change; plans cached for one version are reused until the next.
        self.version = 0

    def __repr__(self) -> str:
        return f"<OutcomeStats {len(self)} (model, intent) pairs>"

    def __len__(self) -> int:
        return sum(len(tags) for tags in self._counts.values())

    def record(
        self,
        model: str,
        ok: bool,
        intent: Sequence[str] = ("*",),
        *,
        billed: bool | None = None,
    ) -> None:
        """Count one outcome of ``model`` under each of the request's intent tags.

        ``ok``: the attempt's image was accepted (it was billed too). ``billed`` says whether an
        attempt that was not accepted was paid for: ``True`` when KIE produced an image that the
        judge rejected or that the job abandoned at its deadline, ``False`` (the default when
        ``ok`` is false) when the task failed, which KIE does not bill. Without ``intent`` the
        outcome counts under ``*`` (any intent) only.
        """
        if billed is None:
            billed = ok
        elif ok and not billed:
            raise ValueError("billed=False with ok=True: an accepted image was produced and billed")
        tags = ("*", *intent) if intent and intent[0] != "*" else ("*",)
        with self._lock:
            by_tag = self._counts.setdefault(model, {})
            for tag in dict.fromkeys(tags):
                counts = by_tag.setdefault(tag, [0, 0, 0])
                counts[0] += ok
                counts[1] += billed
                counts[2] += 1
            self.version += 1

    def counts(self, model: str, tag: str = "*") -> tuple[int, int]:
        """``(accepted, outcomes)`` observed for ``model`` under ``tag`` (``*``: all)."""
        found = self._counts.get(model, {}).get(tag)
        return (found[0], found[2]) if found else (0, 0)

    def tally(self, model: str, tag: str = "*") -> tuple[int, int, int]:
        """``(accepted, billed, outcomes)`` observed for ``model`` under ``tag`` (``*``: all)."""
        found = self._counts.get(model, {}).get(tag)
        return (found[0], found[1], found[2]) if found else (0, 0, 0)

    def rates(
        self, model: str, prior: float, intent: Sequence[str] = ()
    ) -> tuple[float, float, int, str]:
        """``(p_billed, p_accept, n, tag)``: P(billed) and P(accepted | billed) learned from the
        most specific tag with data.

        Tags are tried from the most specific (the last of ``intent``) to the task kind, then
        ``*``; ``n`` is 0 (and the rates the priors: ``prior`` and :data:`ACCEPT_PRIOR`) when
        nothing was observed.
        """
        return self.rates_by_tags(model, prior, (*reversed(intent), "*"))

    def rates_by_tags(
        self, model: str, prior: float, tags: Sequence[str]
    ) -> tuple[float, float, int, str]:
        """:meth:`rates` with the tags to try given in order, most specific first (the planner
        builds that tuple once per plan, not once per model)."""
        by_tag = self._counts.get(model)
        if by_tag is not None:
            for tag in tags:
                found = by_tag.get(tag)
                if found is not None and found[2]:
                    w = self.prior_weight
                    accepted, billed, n = found
                    return (
                        (w * prior + billed) / (w + n),
                        (w * ACCEPT_PRIOR + accepted) / (w + billed),
                        n,
                        tag,
                    )
        return prior, ACCEPT_PRIOR, 0, ""

    def estimate(
        self, model: str, prior: float, intent: Sequence[str] = ()
    ) -> tuple[float, int, str]:
        """``(p, n, tag)``: the learned probability that an attempt's image is accepted,
        P(billed)·P(accepted | billed), from the most specific tag with data (see :meth:`rates`).
        """
        billed, accept, n, tag = self.rates(model, prior, intent)
        return billed * accept, n, tag

    def clear(self) -> None:
        """Forget every observation."""
        with self._lock:
            self._counts.clear()
            self.version += 1
