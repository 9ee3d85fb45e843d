"""Success rates learned from outcomes, per model and intent.

Each model starts from its card's ``success_rate`` as a Beta prior worth ``prior_weight``
pseudo-outcomes: with ``s`` successes out of ``n`` observed outcomes the estimate is
``(prior_weight·p₀ + s) / (prior_weight + n)``. Outcomes are kept per model and per intent tag
(the task kind and tags such as ``text`` or ``chinese``, see
:func:`~kierouter.policy.infer_intent`), so that a model that keeps failing at rendering text
loses ground for text prompts only. A plan uses the most specific tag that has observations and
says so in the step's reason (``learned from N outcomes``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

__all__ = ["OutcomeStats"]


class OutcomeStats:
    """Observed successes and failures per (model, intent tag); feeds :func:`plan`.

    A :class:`~kierouter.Router` keeps one and records every attempt's outcome into it.
    Thread-safe; cheap to read (two dict lookups per model and tag).
    """

    def __init__(self, prior_weight: float = 10.0) -> None:
        if prior_weight <= 0:
            raise ValueError("prior_weight must be positive")
        self.prior_weight = prior_weight
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._lock = threading.Lock()
        #: Bumped by every change; plans cached for one version are reused until the next.
        self.version = 0

    def __repr__(self) -> str:
        return f"<OutcomeStats {len(self._counts)} (model, intent) pairs>"

    def __len__(self) -> int:
        return len(self._counts)

    def record(self, model: str, ok: bool, intent: Sequence[str] = ("*",)) -> None:
        """Count one outcome of ``model`` under each of the request's intent tags.

        Without ``intent`` the outcome counts under ``*`` (any intent) only.
        """
        tags = ("*", *intent) if intent and intent[0] != "*" else ("*",)
        with self._lock:
            for tag in dict.fromkeys(tags):
                counts = self._counts.setdefault((model, tag), [0, 0])
                counts[0] += 1 if ok else 0
                counts[1] += 1
            self.version += 1

    def counts(self, model: str, tag: str = "*") -> tuple[int, int]:
        """``(successes, outcomes)`` observed for ``model`` under ``tag`` (``*``: all)."""
        found = self._counts.get((model, tag))
        return (found[0], found[1]) if found else (0, 0)

    def estimate(
        self, model: str, prior: float, intent: Sequence[str] = ()
    ) -> tuple[float, int, str]:
        """``(p, n, tag)``: the learned success rate, from the most specific tag with data.

        Tags are tried from the most specific (the last of ``intent``) to the task kind, then
        ``*``; ``n`` is 0 (and ``p`` the prior) when nothing was observed.
        """
        counts = self._counts
        for tag in (*reversed(intent), "*"):
            found = counts.get((model, tag))
            if found is not None and found[1]:
                w = self.prior_weight
                return (w * prior + found[0]) / (w + found[1]), found[1], tag
        return prior, 0, ""

    def clear(self) -> None:
        """Forget every observation."""
        with self._lock:
            self._counts.clear()
            self.version += 1
