"""Waiting for tasks: callbacks first, adaptive polling as the fallback.

With a webhook configured, a job waits for KIE's callback; each callback is a hint confirmed by one
status read, so a job costs one status read when callbacks arrive. If no callback has arrived by
the model's p90 latency times ``PollConfig.webhook_fallback``, the job starts polling as well
(callbacks get lost; KIE gives up after a few failed deliveries).

Without a webhook, polling follows the model's latency distribution, modelled as log-normal through
its card's p50 and p90 (see :class:`PollSchedule`): the first read at its ``first_quantile`` (30 %:
about 0.7 × p50, a little before the median), then a read every ``interval_p50`` × p50 (0.3 × p50,
±``jitter``), between ``min_interval`` and ``max_interval``; past the model's p90 the interval
grows by ``factor`` per read. That spends about three reads per image on average (median two) and
knows a task finished some 4–5 s after it did, where a first read at p50 followed by long growing
intervals cost two reads but 10 s (``docs/performance.md`` § 3, § 4). Every read goes through
the client's global read limiter (KIE allows about 10 status reads per second per key), and a task
gets ``latency_p90 × deadline_factor`` seconds (at least ``min_deadline``), bounded by the job's
deadline. All durations in :class:`PollConfig` are model seconds and are multiplied by the router's
``latency_scale`` (the emulator runs time faster; ``latency_scale = 1 / time_scale`` matches it).
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import (
    AuthError,
    ConfigurationError,
    FeatureDisabledError,
    InsufficientCreditsError,
    KieError,
    KieRouterError,
    NotFoundError,
    PluginError,
    TaskTimeoutError,
    TransportError,
    redact,
)

if TYPE_CHECKING:
    from ._models import ModelCard, TaskStatus
    from ._transport import KieClient
    from .provider import Provider
    from .webhooks import CallbackWaiter

__all__ = ["Completion", "PollConfig", "PollSchedule", "WebhookConfig", "map_provider_error"]


@dataclass(frozen=True, kw_only=True)
class PollConfig:
    """How to poll. Durations are model seconds, scaled by the router's ``latency_scale``.

    Polling follows the model's latency distribution (log-normal through the card's p50 and p90;
    see :class:`PollSchedule`): the first read at ``first_quantile`` of it, then a read every
    ``interval_p50 × p50`` until the model's p90, growing by ``factor`` per read after that.

    Attributes:
        first: seconds before the first poll; ``None`` reads at the model's ``first_quantile``.
        factor: growth of the interval after each pending read once the task has run longer than
            the model's p90 latency (the slow tail, where reading often buys little).
        min_interval: shortest interval between two reads of one task (KIE suggests 2–5 s).
        max_interval: longest interval between two reads of one task.
        jitter: ± fraction of random spread on each interval, so jobs do not poll in lockstep
            (the spread interval stays within ``min_interval`` and ``max_interval``).
        first_quantile: with ``first=None``, the first read comes when this share of the model's
            tasks has finished (0.3: about 0.7 × p50 for a p90 of 2.25 × p50). Between 0 and 1.
        interval_p50: the interval between reads, as a fraction of the model's p50 latency
            (0.3: every 6 s for a 20 s model), until the model's p90. Positive.
        deadline_factor: a task is given ``latency_p90 × deadline_factor`` seconds...
        min_deadline: ...but at least this many.
        webhook_fallback: with a webhook, start polling after ``latency_p90 × webhook_fallback``
            seconds without a callback.
        not_found_reads: how many "no such task" answers in a row are tolerated right after a
            create (KIE's read side may lag its write side) before the task counts as lost.
        create_retries: how many times a create that failed transiently (455, 5xx, no
            connection) is retried on the same model before the job moves on; each retry
            counts against the job's ``max_attempts``.
        retry_backoff: seconds before the first such retry; doubles for each further one.
    """

    first: float | None = None
    factor: float = 1.6
    min_interval: float = 2.0
    max_interval: float = 15.0
    jitter: float = 0.2
    deadline_factor: float = 3.0
    min_deadline: float = 60.0
    webhook_fallback: float = 2.0
    not_found_reads: int = 3
    create_retries: int = 2
    retry_backoff: float = 2.0
    first_quantile: float = 0.3
    interval_p50: float = 0.3

    def __post_init__(self) -> None:
        if not 0 < self.first_quantile < 1:
            raise ConfigurationError(
                f"PollConfig.first_quantile must be between 0 and 1, got {self.first_quantile!r}"
            )
        if not self.interval_p50 > 0:
            raise ConfigurationError(
                f"PollConfig.interval_p50 must be positive, got {self.interval_p50!r}"
            )


#: The standard normal's 90th percentile: a log-normal's sigma is ln(p90 / p50) / Z90.
_Z90 = 1.2815515655446004


@functools.lru_cache(maxsize=512)  # a few (card, quantile) pairs, asked once per task
def latency_quantile(p50: float, p90: float, q: float) -> float:
    """The ``q`` quantile of a log-normal latency through ``p50`` and ``p90`` (seconds)."""
    from statistics import NormalDist  # not at import time: keeps ``import kierouter`` light

    if p50 <= 0:
        return 0.0
    sigma = math.log(p90 / p50) / _Z90 if p90 > p50 else 0.0
    return p50 * math.exp(sigma * NormalDist().inv_cdf(q))


class PollSchedule:
    """When to read one task's status: model seconds, from the card's p50/p90 and a PollConfig.

    The model's latency is taken as log-normal through its p50 and p90 (the shape KIE's task
    times have, and the one the emulator draws from). The first read comes at the distribution's
    ``first_quantile`` (or after ``first`` seconds when set): a little before the median, so a
    fast task is seen early. Then a read every ``interval_p50 × p50`` seconds with ``± jitter``:
    short enough that a task is known some 0.15 × p50 after it finished, long enough that the
    median task costs two or three reads. Past the model's p90 the interval grows by ``factor``
    per read (the slow tail costs few reads). Every interval stays within ``min_interval`` and
    ``max_interval``, jitter included.
    """

    def __init__(
        self, poll: PollConfig, p50: float, p90: float, rng: random.Random | None = None
    ) -> None:
        self.poll = poll
        self.p50 = max(0.0, p50)
        self.p90 = max(self.p50, p90)
        self._rng = rng or random.Random()
        self._interval = self._clamp(poll.interval_p50 * self.p50)

    def __repr__(self) -> str:
        return f"<PollSchedule p50={self.p50:g} p90={self.p90:g} next={self._interval:g}>"

    def _clamp(self, seconds: float) -> float:
        cfg = self.poll
        return min(max(seconds, cfg.min_interval), max(cfg.max_interval, cfg.min_interval))

    def first(self) -> float:
        """Seconds from the create to the first read."""
        if self.poll.first is not None:
            return self.poll.first
        return latency_quantile(self.p50, self.p90, self.poll.first_quantile)

    def next_interval(self, elapsed: float) -> float:
        """Seconds from a pending read made ``elapsed`` seconds after the create to the next."""
        cfg = self.poll
        if elapsed >= self.p90:
            self._interval = self._clamp(self._interval * cfg.factor)
        spread = 1 + self._rng.uniform(-cfg.jitter, cfg.jitter)
        return self._clamp(self._interval * spread)

    def times(self, reads: int) -> list[float]:
        """The first ``reads`` read times after the create, if each read took no time."""
        at = [self.first()]
        while len(at) < reads:
            at.append(at[-1] + self.next_interval(at[-1]))
        return at


@dataclass(frozen=True, kw_only=True)
class WebhookConfig:
    """Receive KIE's callbacks instead of polling.

    Attributes:
        public_url: the URL at which KIE reaches the receiver (``https://example.com``); callback
            URLs are ``{public_url}/kie/callback/{job_key}?token=...``. Leave it out together with
            ``listen`` to use the address the built-in server bound.
        hmac_key: KIE's ``webhookHmacKey`` (kie.ai settings); when set, callbacks without a valid,
            fresh signature are refused. Never shown in reprs, logs or errors.
        token_secret: secret the per-job URL tokens derive from; random per router by default.
            Set it to accept callbacks for jobs created by an earlier process (batch resume).
        listen: ``"host:port"`` to have the router serve the receiver itself (``port`` 0 picks a
            free one); leave ``None`` when you mount ``router.webhook_app`` in your own app.
        max_skew: accepted age of a callback's signature timestamp, seconds.
        max_body: largest accepted callback body, bytes (declared or streamed).
        read_timeout: seconds a callback's whole body may take to arrive (then 408).
        spool: path of a callback spool file shared by the processes of one machine (several
            workers behind one URL): a callback that reaches a process not waiting for its job
            is accepted into it, and the waiting process picks it up within a second. Needs
            ``token_secret``, the same in every process. See docs/webhooks.md.
    """

    public_url: str | None = None
    hmac_key: str | None = field(default=None, repr=False)
    token_secret: str | None = field(default=None, repr=False)
    listen: str | None = None
    max_skew: float = 300.0
    max_body: int = 256 * 1024
    read_timeout: float = 10.0
    spool: str | os.PathLike[str] | None = None


def plugin_error(card: ModelCard, method: str, exc: BaseException) -> PluginError:
    """A provider method raised something other than kierouter's errors: name plugin and error."""
    detail = redact(str(exc))[:300]
    return PluginError(
        card.plugin or card.family or card.id,
        f"{method} for {card.id} raised {type(exc).__name__}: {detail} (a bug in the plugin)",
    )


def map_provider_error(provider: Provider, exc: KieRouterError) -> KieRouterError:
    """Let a provider refine a KIE error (e.g. a family's 400 meaning content policy)."""
    mapper = getattr(provider, "map_error", None)
    if mapper is None or not isinstance(exc, KieError):
        return exc
    try:
        mapped = mapper(exc)
    except Exception:  # a plugin bug must not hide the original error
        return exc
    return mapped if isinstance(mapped, KieRouterError) else exc


Emit = Callable[..., Any]


class Completion:
    """Waits for tasks of one router. Strictly private; see the module docstring."""

    def __init__(
        self,
        client: KieClient,
        *,
        poll: PollConfig,
        latency_scale: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.poll = poll
        self.scale = latency_scale
        self._rng = rng or random.Random()
        #: Status reads made, by model (a benchmark or test can read it).
        self.reads: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<Completion scale={self.scale:g}>"

    def task_timeout(self, card: ModelCard) -> float:
        """Seconds a task on ``card`` is given before it counts as timed out."""
        cfg = self.poll
        return max(card.latency_p90 * cfg.deadline_factor, cfg.min_deadline) * self.scale

    async def read_status(self, provider: Provider, card: ModelCard, task_id: str) -> TaskStatus:
        """One status read, parsed by the provider; errors refined by its ``map_error``."""
        self.reads[card.id] = self.reads.get(card.id, 0) + 1
        try:
            data = await self.client.read(provider.status_path, provider.status_params(task_id))
            return provider.parse_status(data, task_id=task_id)
        except KieRouterError as exc:
            mapped = map_provider_error(provider, exc)
            if mapped is exc:
                raise
            raise mapped from exc
        except Exception as exc:  # a plugin bug: fail this model's attempt, not the router
            raise plugin_error(card, "parse_status", exc) from exc

    async def wait(
        self,
        *,
        job_key: str,
        card: ModelCard,
        provider: Provider,
        task_id: str | None,
        deadline: float,
        waiter: CallbackWaiter | None = None,
        emit: Emit | None = None,
        on_task_id: Callable[[str], None] | None = None,
        ignore: Collection[str] = (),
    ) -> TaskStatus:
        """Wait until the task is final, or raise :class:`~kierouter.TaskTimeoutError`.

        ``deadline`` is a ``time.monotonic()`` instant. ``task_id`` may be ``None`` when the
        create's answer was lost: then only a callback (carrying the job key) can name the task,
        and ``on_task_id`` is called with the id it names. Callbacks naming a task in ``ignore``
        (an earlier attempt of the same job, finishing late) are skipped.
        """
        if task_id is None and waiter is None:
            raise TaskTimeoutError("no task id and no callback to learn it from")
        cfg = self.poll
        start = time.monotonic()
        schedule = PollSchedule(cfg, card.latency_p50, card.latency_p90, self._rng)
        if waiter is not None:
            next_poll = start + card.latency_p90 * cfg.webhook_fallback * self.scale
            # However late the fallback, look at least once before the task's deadline.
            next_poll = min(next_poll, max(start, deadline - cfg.min_interval * self.scale))
        else:
            next_poll = start + schedule.first() * self.scale
        not_found = 0
        last_look = False  # one read at the deadline before giving up
        while True:
            now = time.monotonic()
            hinted = False
            if waiter is not None:
                hinted = await waiter.wait(min(next_poll, deadline) - now)
            elif next_poll > now:
                await asyncio.sleep(min(next_poll, deadline) - now)
            now = time.monotonic()
            polling = not hinted
            if polling and now >= deadline:
                if last_look or task_id is None:
                    raise TaskTimeoutError(
                        f"{card.id} task did not finish within its deadline", task_id=task_id
                    )
                last_look = True
            if hinted:
                assert waiter is not None
                hint_ids = [h.task_id for h in waiter.take() if h.task_id not in ignore]
                if not hint_ids:
                    continue
                if task_id is None:
                    task_id = hint_ids[0]
                    if on_task_id is not None:
                        on_task_id(task_id)
                elif task_id not in hint_ids:
                    # A late callback of an earlier rung of this job: not the task we wait for.
                    continue
                if emit is not None:
                    emit("callback", job_key, model=card.id, task_id=task_id)
            elif task_id is None:
                next_poll = deadline  # nothing to poll: only a callback can name the task
                continue
            try:
                status = await self.read_status(provider, card, task_id)
            except (AuthError, InsufficientCreditsError, FeatureDisabledError):
                raise
            except NotFoundError:
                not_found += 1
                if not_found >= cfg.not_found_reads:
                    raise
                status = None
            except (KieError, TransportError) as exc:
                if isinstance(exc, KieError) and not exc.transient:
                    raise
                status = None  # already retried by the client: try again at the next poll
                if emit is not None:
                    emit("polled", job_key, model=card.id, task_id=task_id, detail=str(exc))
            if status is not None:
                not_found = 0
                if emit is not None and polling:
                    emit("polled", job_key, model=card.id, task_id=task_id, detail=status.raw_state)
                if status.done:
                    return status
                if hinted and waiter is not None:
                    waiter.rearm(task_id)
            if polling:
                now = time.monotonic()
                elapsed = (now - start) / self.scale
                next_poll = now + schedule.next_interval(elapsed) * self.scale
