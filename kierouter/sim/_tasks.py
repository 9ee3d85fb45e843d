"""The emulated clock, per-model latency, and the task record.

Emulated time runs ``time_scale`` times faster than real time, plus whatever :meth:`Clock.advance`
adds. Task timestamps (``createTime``, ``completeTime``), latencies, link expiry and callback
retries all use emulated time; a 46 s job finishes in 0.46 real seconds at ``time_scale=100``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

__all__ = ["Clock", "ImageJob", "Task", "sample_latency", "unit"]

_Z90 = NormalDist().inv_cdf(0.9)


class Clock:
    """Emulated time: epoch milliseconds that run ``time_scale`` times faster than real time."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._scale = float(time_scale)
        self._real0 = time.monotonic()
        self._epoch0 = time.time()
        self._offset = 0.0
        self._changed = asyncio.Event()

    @property
    def time_scale(self) -> float:
        """How many emulated seconds pass per real second."""
        return self._scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        if value <= 0:
            raise ValueError("time_scale must be positive")
        now = time.monotonic()
        self._offset += (now - self._real0) * self._scale
        self._real0 = now
        self._scale = float(value)
        self._poke()

    def now(self) -> float:
        """Emulated seconds since the clock started."""
        return (time.monotonic() - self._real0) * self._scale + self._offset

    def epoch_ms(self, at: float | None = None) -> int:
        """Emulated wall time in epoch milliseconds (of ``at``, default now)."""
        return int((self._epoch0 + (self.now() if at is None else at)) * 1000)

    def advance(self, seconds: float) -> None:
        """Jump emulated time forward."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds
        self._poke()

    def real_delay(self, emulated_seconds: float) -> float:
        """Real seconds until ``emulated_seconds`` of emulated time have passed."""
        return max(0.0, emulated_seconds) / self._scale

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def sleep_until(self, target: float) -> None:
        """Wait until emulated time reaches ``target`` (wakes early on :meth:`advance`)."""
        while (remaining := target - self.now()) > 0:
            changed = self._changed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), min(self.real_delay(remaining), 1.0))


def _uniform(*parts: object) -> float:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64


def sample_latency(p50: float, p90: float, *parts: object) -> float:
    """A lognormal duration with these percentiles, the same for the same ``parts``."""
    p50 = max(0.01, p50)
    p90 = max(p50, p90)
    sigma = (math.log(p90) - math.log(p50)) / _Z90 if p90 > p50 else 0.0
    z = NormalDist().inv_cdf(_uniform(*parts))
    return float(p50 * math.exp(sigma * z))


def unit(*parts: object) -> float:
    """A deterministic number in (0, 1) for ``parts``."""
    return _uniform(*parts)


@dataclass
class ImageJob:
    """How to draw one result image. Strictly private."""

    kind: str  # "generate", "upscale" or "remove-background"
    width: int
    height: int
    key: bytes
    source: str | None = None  # the first reference image's URL, read when the result is drawn


@dataclass
class Task:
    """One emulated task, whatever its API family. Strictly private."""

    id: str
    api: str  # "market", "gpt4o", "flux", "mj"
    model: str
    family: str
    body: dict[str, Any]
    created: float  # emulated seconds
    duration: float  # emulated seconds until it finishes
    outcome: str  # "success", "fail", "never"
    price: float
    images: list[ImageJob] = field(default_factory=list)
    callback_url: str | None = None
    fail_code: str = "500"
    fail_msg: str = "internal error, please try again later."
    fail_stage: str = "generate"  # "generate" or "create" (legacy successFlag 2)
    visible_at: float = 0.0  # emulated second from which status reads find the task
    state: str = "pending"  # pending -> success | fail
    completed: float | None = None
    charged: float = 0.0
    urls: list[str] = field(default_factory=list)

    def visible(self, now: float) -> bool:
        """Whether a status read at emulated ``now`` finds the task (KIE's read lag)."""
        return now >= self.visible_at

    def phase(self, now: float) -> str:
        """``waiting``, ``queuing``, ``generating``, ``success`` or ``fail`` at emulated ``now``."""
        if self.state != "pending":
            return self.state
        elapsed = now - self.created
        if self.outcome == "never":
            return "waiting" if elapsed < 5 else "generating"
        fraction = elapsed / self.duration if self.duration > 0 else 1.0
        if fraction < 0.1:
            return "waiting"
        if fraction < 0.2:
            return "queuing"
        return "generating"

    def progress(self, now: float) -> float:
        """Fraction done in ``[0, 1]``."""
        if self.state != "pending":
            return 1.0
        if self.outcome == "never" or self.duration <= 0:
            return 0.0
        return min(0.99, max(0.0, (now - self.created) / self.duration))

    @property
    def due(self) -> float:
        """Emulated second at which the task finishes (``inf`` if never)."""
        return math.inf if self.outcome == "never" else self.created + self.duration

    @property
    def job_key(self) -> str | None:
        """The job key the callback URL carries: kierouter's path form
        ``.../kie/callback/{job_key}`` or a ``job`` (``job_key``, ``jobKey``, ``key``) query
        parameter; ``None`` without one."""
        if not self.callback_url:
            return None
        from urllib.parse import parse_qs, unquote, urlsplit

        parts = urlsplit(self.callback_url)
        marker = "/kie/callback/"
        if marker in parts.path:
            key = unquote(parts.path.split(marker, 1)[1]).strip("/")
            if key:
                return key
        query = parse_qs(parts.query)
        for name in ("job", "job_key", "jobKey", "key"):
            if query.get(name):
                return query[name][0]
        return None
