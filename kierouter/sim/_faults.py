"""Fault injection: wrong answers on purpose, chosen by a seeded random stream.

Kinds (see :data:`FAULT_KINDS`):

* ``http_429`` — HTTP 429, body code 429, ``Retry-After``; a create is not queued.
* ``code_455`` / ``code_500`` / ``code_550`` — HTTP 200 with that code in the body.
* ``http_500`` — HTTP 500 with a code-500 body.
* ``drop_connection`` — the socket is closed with no answer. On a create the task IS created
  first (the answer is lost, as when a network fails after KIE accepted it).
* ``slow_response`` — the answer is held for ``seconds`` real seconds (default 35, beyond a
  30 s read timeout). On a create the task is created first.
* ``malformed_body`` — HTTP 200 with a truncated, non-JSON body. On a create the task is created.
* ``truncated_body`` — the first half of the real answer, with its status and content type (a
  result file cut short: a PNG that does not decode). On a create the task is created.
* ``wrong_content_type`` — HTTP 200 with an HTML page (``text/html``) in place of the answer, as
  a proxy or CDN error page. On a create the task is created.
* ``mislabeled_body`` — HTTP 200 with a plain-text body sent under the answer's own content type
  (text served as ``image/png``). On a create the task is created.
* ``lost_callback`` / ``duplicate_callback`` — the completion callback is not sent, or sent twice.

``paths`` picks the endpoints: ``create``, ``status``, ``credit``, ``download`` (download-url),
``upload``, ``files`` (result files and uploaded files) or ``any`` (every KIE API endpoint; not
``files``). On ``files``, ``http_500`` answers HTTP 500, ``drop_connection`` resets the
connection, ``slow_response`` delays the file, and the three body faults above spoil it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FAULT_KINDS", "PATH_KINDS", "Fault", "Faults"]

FAULT_KINDS = (
    "http_429",
    "code_455",
    "http_500",
    "code_500",
    "code_550",
    "drop_connection",
    "slow_response",
    "malformed_body",
    "truncated_body",
    "wrong_content_type",
    "mislabeled_body",
    "lost_callback",
    "duplicate_callback",
)
"""The fault kinds ``Emulator.inject`` (and a scenario's ``[[faults]]``) accepts."""
PATH_KINDS = ("create", "status", "credit", "download", "upload", "files", "any")
"""Which calls a fault applies to (the ``paths=`` of ``Emulator.inject``)."""
_CALLBACK_KINDS = ("lost_callback", "duplicate_callback")
_API_PATHS = frozenset({"create", "status", "credit", "download", "upload"})


@dataclass
class Fault:
    """One injected fault rule. ``count`` is how many times it may still fire (None: no limit);
    ``after`` how many matching requests still pass untouched before it may fire."""

    kind: str
    rate: float = 1.0
    count: int | None = None
    paths: tuple[str, ...] = ("any",)
    seconds: float = 35.0
    after: int = 0
    fired: int = 0

    def matches(self, category: str) -> bool:
        """Whether this rule applies to requests of ``category``."""
        if self.kind in _CALLBACK_KINDS:
            return category == "callback"
        if category in self.paths:
            return True
        return "any" in self.paths and category in _API_PATHS


class Faults:
    """The active fault rules and the seeded random stream that decides when they fire."""

    def __init__(self, seed: int = 0) -> None:
        self.rules: list[Fault] = []
        self._random = random.Random(seed)
        self.fired: dict[str, int] = {}
        self.by_path: dict[str, dict[str, int]] = {}

    def add(
        self,
        kind: str,
        *,
        rate: float = 1.0,
        count: int | None = None,
        paths: Iterable[str] | str | None = None,
        seconds: float = 35.0,
        after: int = 0,
    ) -> Fault:
        """Add a rule; raises ``ValueError`` naming a bad kind, path, rate, count or after."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {rate}")
        if count is not None and count < 0:
            raise ValueError("fault count must not be negative")
        if not isinstance(after, int) or after < 0:
            raise ValueError(f"fault after must be a whole number ≥ 0, got {after!r}")
        chosen = (paths,) if isinstance(paths, str) else tuple(paths or ("any",))
        for path in chosen:
            if path not in PATH_KINDS:
                raise ValueError(f"unknown fault path {path!r}; one of {', '.join(PATH_KINDS)}")
        rule = Fault(kind, rate, count, chosen, seconds, after)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        self.rules.clear()

    def pick(self, category: str) -> Fault | None:
        """The rule that fires for one request of ``category``, if any."""
        for rule in self.rules:
            if not rule.matches(category) or rule.count == 0:
                continue
            if rule.after > 0:  # "the fifth create": the first matching requests pass
                rule.after -= 1
                continue
            if rule.rate < 1.0 and self._random.random() >= rule.rate:
                continue
            if rule.count is not None:
                rule.count -= 1
            rule.fired += 1
            self.fired[rule.kind] = self.fired.get(rule.kind, 0) + 1
            kinds = self.by_path.setdefault(category, {})
            kinds[rule.kind] = kinds.get(rule.kind, 0) + 1
            return rule
        return None
