"""The emulator's state: tasks, balance, model settings, limits, files and counters.

Handlers in ``_market``/``_legacy``/``_common`` read and change it; a background loop finishes
tasks when their emulated time comes (charging credits and firing callbacks), and every status
read settles due tasks first so answers never lag the clock.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import heapq
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

from ._catalog import CATALOG, ModelInfo
from ._faults import Faults
from ._open_models import MarketModel
from ._tasks import Clock, ImageJob, Task, sample_latency, unit
from ._validation import Rejection

__all__ = [
    "DEFAULT_RESULT_TTL",
    "DEFAULT_VISIBILITY_LAG",
    "FAIL_STAGES",
    "LINK_TTL",
    "UPLOAD_TTL",
    "ModelConfig",
    "SimState",
    "Upload",
    "check_non_negative",
]

DEFAULT_RESULT_TTL = 24 * 3600.0  # Market result URLs "typically expire after 24 hours"
# A new task is not readable at once (Market answers 422 "recordInfo is null"). One emulated
# second: short, and before any client's first read at ~0.7 x a model's p50 (5 s at the least).
DEFAULT_VISIBILITY_LAG = 1.0
FAIL_STAGES = ("generate", "create")
_CREATE_FAILURE_SHARE = 0.1  # a task whose creation fails ends early in its drawn latency
LINK_TTL = 20 * 60.0  # download-url links: 20 minutes
UPLOAD_TTL = 3 * 24 * 3600.0  # uploaded files: 3 days


def check_non_negative(name: str, value: Any) -> float:
    """``value`` as a finite float >= 0; ``ValueError`` naming ``name`` otherwise."""
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


@dataclass
class ModelConfig:
    """Per-model (or family, or ``"*"``) behaviour; ``None`` fields inherit the broader level."""

    latency: tuple[float, float] | None = None
    fail_rate: float | None = None
    fail_code: str | None = None
    fail_msg: str | None = None
    never_finish_rate: float | None = None
    price: float | None = None
    fail_stage: str | None = None

    def merged(self, other: ModelConfig) -> ModelConfig:
        """``self`` overlaid by ``other``'s set fields."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for f in fields(other):
            value = getattr(other, f.name)
            if value is not None:
                values[f.name] = value
        return ModelConfig(**values)


@dataclass
class Upload:
    """An uploaded file. Strictly private."""

    data: bytes
    mime: str
    expires: float


class SimState:
    """Everything the emulator knows. Strictly private to :mod:`kierouter.sim`."""

    def __init__(
        self,
        *,
        api_key: str,
        time_scale: float,
        hmac_key: str | None,
        credits: float,
        create_limit: int,
        create_window: float,
        read_limit: float | None,
        seed: int,
        result_ttl: float = DEFAULT_RESULT_TTL,
        id_salt: str = "",
        visibility_lag: float = DEFAULT_VISIBILITY_LAG,
        price_multiplier: float = 1.0,
        credits_in_status: bool = True,
    ) -> None:
        self.api_key = api_key
        self.hmac_key = hmac_key
        self.clock = Clock(time_scale)
        self.seed = seed
        # task ids differ between emulator runs unless a seed was chosen, so a journal from an
        # earlier run never finds someone else's task under its old id
        self.id_salt = id_salt
        self.faults = Faults(seed)
        self.create_limit = create_limit
        self.create_window = create_window
        self.read_limit = read_limit
        self.result_ttl = result_ttl
        self.visibility_lag = check_non_negative("visibility_lag", visibility_lag)
        self.price_multiplier = check_non_negative("price_multiplier", price_multiplier)
        self.credits_in_status = bool(credits_in_status)
        self.configs: dict[str, ModelConfig] = {}
        # the built-in catalogue plus the Market models a scenario declared
        self.models: dict[str, ModelInfo] = dict(CATALOG)
        self.market_models: dict[str, MarketModel] = {}
        self.base_url = ""
        self.on_complete: Callable[[Task], None] | None = None
        self._initial_credits = credits
        self._wake = asyncio.Event()
        self.reset(credits)

    def reset(self, credits: float | None = None) -> None:
        """Forget tasks, files, counters, faults and model settings; refill the balance."""
        self.balance = float(self._initial_credits if credits is None else credits)
        self._initial_credits = self.balance
        self.reserved = 0.0
        self.tasks: dict[str, Task] = {}
        self.uploads: dict[str, Upload] = {}
        self.tokens: dict[str, tuple[str, float]] = {}
        self.images: dict[str, bytes] = {}
        self.origin_links: dict[str, str] = {}
        self.configs.clear()
        self.faults.clear()
        self.faults.fired.clear()
        self.faults.by_path.clear()
        self._heap: list[tuple[float, str]] = []
        self._counter = 0
        self._creates: dict[str, collections.deque[float]] = {}
        self._reads: dict[str, tuple[float, float]] = {}
        self.counters: dict[str, Any] = {
            "created": {},
            "created_total": 0,
            "status_reads": 0,
            "credits_charged": 0.0,
            "callbacks_sent": 0,
            "callbacks_failed": 0,
            "callbacks_lost": 0,
            "callback_attempts": 0,
            "rejected": {},
            "succeeded": 0,
            "failed": 0,
            "downloads": 0,
            "uploads": 0,
            "upload_bytes": 0,
            "uploads_by_endpoint": {},
        }
        self.callback_log: list[dict[str, Any]] = []
        self._wake.set()

    # -- models -------------------------------------------------------------------------------

    def add_market_model(self, spec: MarketModel) -> None:
        """Serve a Market model the emulator does not ship (kept across :meth:`reset`)."""
        self.market_models[spec.id] = spec
        self.models[spec.id] = ModelInfo(
            spec.id,
            spec.family,
            "market",
            spec.price,
            spec.p50,
            spec.p90,
            dict(spec.price_by_resolution),
        )

    def family_of(self, model: str) -> str:
        """The family name of a model id (the id itself when unknown)."""
        info = self.models.get(model)
        return info.family if info else model

    # -- settings -----------------------------------------------------------------------------

    def configure(self, target: str, **settings: Any) -> ModelConfig:
        """Set behaviour for a model id, a family or ``"*"`` (tasks created from now on)."""
        allowed = {f.name for f in fields(ModelConfig)}
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise ValueError(f"unknown model setting {unknown[0]!r}; one of {sorted(allowed)}")
        families = {info.family for info in self.models.values()}
        if target != "*" and target not in self.models and target not in families:
            raise ValueError(
                f"no model or family {target!r} is known to the emulator; use a model id, a "
                'family or "*" (declare other Market models in a scenario\'s [market_models])'
            )
        if "latency" in settings and settings["latency"] is not None:
            p50, p90 = (float(v) for v in settings["latency"])
            if p50 <= 0 or p90 < p50:
                raise ValueError("latency must be (p50, p90) with 0 < p50 <= p90")
            settings["latency"] = (p50, p90)
        for name in ("fail_rate", "never_finish_rate"):
            value = settings.get(name)
            if value is not None and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if settings.get("fail_code") is not None:
            settings["fail_code"] = str(settings["fail_code"])
        stage = settings.get("fail_stage")
        if stage is not None and stage not in FAIL_STAGES:
            raise ValueError(f"fail_stage must be one of {', '.join(FAIL_STAGES)}, got {stage!r}")
        current = self.configs.get(target, ModelConfig())
        self.configs[target] = current.merged(ModelConfig(**settings))
        return self.configs[target]

    def config_for(self, model: str) -> ModelConfig:
        """The effective settings of ``model``: ``"*"``, then its family, then the model."""
        result = ModelConfig()
        for key in ("*", self.family_of(model), model):
            if key in self.configs:
                result = result.merged(self.configs[key])
        return result

    def price_for(self, model: str, base: float) -> float:
        """What a task on ``model`` will be charged: ``base`` (the catalogue's price) or the
        model's price setting, times the emulator's ``price_multiplier``."""
        override = self.config_for(model).price
        price = float(base if override is None else override) * self.price_multiplier
        return round(price, 6)

    # -- accounting and limits ----------------------------------------------------------------

    def reject(self, code: int) -> None:
        """Count one rejected request by its code."""
        rejected = self.counters["rejected"]
        rejected[str(code)] = rejected.get(str(code), 0) + 1

    def check_create_rate(self, key: str) -> None:
        """Raise a 429 :class:`Rejection` above ``create_limit`` creates per window (real time)."""
        now = time.monotonic()
        window = self._creates.setdefault(key, collections.deque())
        while window and window[0] <= now - self.create_window:
            window.popleft()
        if len(window) >= self.create_limit:
            wait = max(1, math.ceil(window[0] + self.create_window - now))
            raise Rejection(
                429,
                "The frequency of your requests is too high, please try again later.",
                http_status=429,
            ).with_retry(wait)
        window.append(now)

    def check_read_rate(self, key: str) -> None:
        """Raise a 429 :class:`Rejection` above ``read_limit`` status reads per second."""
        if not self.read_limit:
            return
        now = time.monotonic()
        tokens, last = self._reads.get(key, (float(self.read_limit), now))
        tokens = min(float(self.read_limit), tokens + (now - last) * self.read_limit)
        if tokens < 1.0:
            self._reads[key] = (tokens, now)
            raise Rejection(
                429, "Too many status queries, please slow down.", http_status=429
            ).with_retry(1)
        self._reads[key] = (tokens - 1.0, now)

    def check_balance(self, price: float) -> None:
        """Raise 402 when the balance, less what running tasks will cost, is below ``price``."""
        if self.balance - self.reserved < price - 1e-9:
            raise Rejection(402, "The current credits are insufficient. Please top up.")

    # -- tasks --------------------------------------------------------------------------------

    def new_task_id(self) -> str:
        """A fresh 32-hex task id (reproducible when the salt is empty)."""
        self._counter += 1
        text = f"{self.seed}:{self.id_salt}:{self._counter}"
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    def start_task(
        self,
        *,
        api: str,
        model: str,
        body: dict[str, Any],
        price: float,
        images: Iterable[ImageJob],
        callback_url: str | None,
        broken_reference: str | None = None,
    ) -> Task:
        """Create, count and schedule a task; its latency and outcome follow the model settings.
        A ``broken_reference`` (an input URL KIE cannot download) makes the task fail."""
        task_id = self.new_task_id()
        info = self.models.get(model)
        config = self.config_for(model)
        p50, p90 = config.latency or ((info.p50, info.p90) if info else (20.0, 45.0))
        now = self.clock.now()
        outcome = "success"
        # latency and outcome follow the seed and the creation order, not the (salted) id
        draw = (self.seed, self._counter)
        if unit(*draw, "never") < (config.never_finish_rate or 0.0):
            outcome = "never"
        elif unit(*draw, "fail") < (config.fail_rate or 0.0):
            outcome = "fail"
        task = Task(
            id=task_id,
            api=api,
            model=model,
            family=self.family_of(model),
            body=body,
            created=now,
            duration=sample_latency(p50, p90, *draw),
            outcome=outcome,
            price=price,
            images=list(images),
            callback_url=callback_url or None,
        )
        if config.fail_code:
            task.fail_code = config.fail_code
        if config.fail_msg:
            task.fail_msg = config.fail_msg
        if broken_reference is not None and outcome != "never":
            task.outcome = outcome = "fail"
            task.fail_code = "451" if api == "gpt4o" else "400"  # 4o: "download failed"
            task.fail_msg = f"Failed to download the input image: {broken_reference}"
        if outcome == "fail" and config.fail_stage == "create":
            task.fail_stage = "create"
            task.duration *= _CREATE_FAILURE_SHARE
        # KIE cannot finish a task before it can be read: completion waits for visibility
        task.visible_at = now + self.visibility_lag
        task.duration = max(task.duration, self.visibility_lag)
        self.tasks[task_id] = task
        self.reserved += price
        created = self.counters["created"]
        created[model] = created.get(model, 0) + 1
        self.counters["created_total"] += 1
        if outcome != "never":
            heapq.heappush(self._heap, (task.due, task_id))
            self._wake.set()
        return task

    def settle(self) -> None:
        """Finish every task whose time has come."""
        now = self.clock.now()
        while self._heap and self._heap[0][0] <= now:
            _, task_id = heapq.heappop(self._heap)
            task = self.tasks.get(task_id)
            if task is not None and task.state == "pending":
                self._finish(task)

    def _finish(self, task: Task) -> None:
        task.completed = task.due
        self.reserved = max(0.0, self.reserved - task.price)
        if task.outcome == "success":
            task.state = "success"
            task.charged = task.price
            self.balance = round(self.balance - task.price, 6)
            self.counters["credits_charged"] += task.price
            self.counters["succeeded"] += 1
            task.urls = [
                f"{self.base_url}/files/{task.id}/{n}.png" for n in range(len(task.images))
            ]
        else:
            task.state = "fail"
            self.counters["failed"] += 1
        if self.on_complete is not None and task.callback_url:
            self.on_complete(task)

    async def run(self) -> None:
        """Background loop: finish tasks as emulated time reaches them."""
        while True:
            self._wake.clear()
            self.settle()
            timeout = 1.0
            if self._heap:
                timeout = min(timeout, self.clock.real_delay(self._heap[0][0] - self.clock.now()))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(timeout, 0.001))

    def advance(self, seconds: float) -> None:
        """Jump emulated time forward and finish what became due."""
        self.clock.advance(seconds)
        self.settle()
        self._wake.set()

    def set_time_scale(self, value: float) -> None:
        """Change how fast emulated time runs."""
        self.clock.time_scale = value
        self._wake.set()

    # -- reporting ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters as plain JSON-able data (the ``GET /_sim/stats`` body)."""
        self.settle()
        out = {
            key: (dict(value) if isinstance(value, dict) else value)
            for key, value in self.counters.items()
        }
        out["balance"] = round(self.balance, 6)
        out["credits_charged"] = round(float(self.counters["credits_charged"]), 6)
        out["pending"] = sum(1 for t in self.tasks.values() if t.state == "pending")
        out["faults"] = dict(self.faults.fired)
        out["faults_by_path"] = {path: dict(kinds) for path, kinds in self.faults.by_path.items()}
        out["emulated_seconds"] = round(self.clock.now(), 3)
        return out

    def charges(self) -> dict[str, Any]:
        """Credits charged: ``{"total": credits, "tasks": {taskId: credits}}`` (billed tasks)."""
        self.settle()
        tasks = {t.id: t.charged for t in self.tasks.values() if t.charged}
        return {"total": round(float(self.counters["credits_charged"]), 6), "tasks": tasks}

    def task_list(self) -> list[dict[str, Any]]:
        """One summary per task (the ``GET /_sim/tasks`` body)."""
        self.settle()
        now = self.clock.now()
        return [
            {
                "taskId": t.id,
                "api": t.api,
                "model": t.model,
                "family": t.family,
                "state": t.phase(now),
                "price": t.price,
                "charged": t.charged,
                "callBackUrl": t.callback_url,
                "job_key": t.job_key,
                "createTime": self.clock.epoch_ms(t.created),
                "urls": list(t.urls),
            }
            for t in self.tasks.values()
        ]
