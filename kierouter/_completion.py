"""Waiting for tasks: callbacks first, adaptive polling as the fallback.

With a webhook configured, a job waits for KIE's callback; each callback is a hint confirmed by one
status read, so a job costs one status read when callbacks arrive. If no callback has arrived by
the model's p90 latency times ``PollConfig.webhook_fallback``, the job starts polling as well
(callbacks get lost; KIE gives up after a few failed deliveries).

Without a webhook, the first poll happens near the model's median latency, then the interval grows
geometrically with jitter, between ``min_interval`` and ``max_interval``. Every read goes through
the client's global read limiter (KIE allows about 10 status reads per second per key), and a task
gets ``latency_p90 × deadline_factor`` seconds (at least ``min_deadline``), bounded by the job's
deadline. All durations in :class:`PollConfig` are model seconds and are multiplied by the router's
``latency_scale`` (the emulator runs time faster; ``latency_scale = 1 / time_scale`` matches it).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import (
    AuthError,
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

__all__ = ["Completion", "PollConfig", "WebhookConfig", "map_provider_error"]


@dataclass(frozen=True, kw_only=True)
class PollConfig:
    """How to poll. Durations are model seconds, scaled by the router's ``latency_scale``.

    Attributes:
        first: seconds before the first poll; ``None`` uses the model's median latency.
        factor: growth of the interval after each pending read.
        min_interval: shortest interval between two reads of one task (KIE suggests 2–5 s).
        max_interval: longest interval between two reads of one task.
        jitter: ± fraction of random spread on each interval, so jobs do not poll in lockstep.
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
        max_body: largest accepted callback body, bytes.
    """

    public_url: str | None = None
    hmac_key: str | None = field(default=None, repr=False)
    token_secret: str | None = field(default=None, repr=False)
    listen: str | None = None
    max_skew: float = 300.0
    max_body: int = 256 * 1024


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
        if waiter is not None:
            next_poll = start + card.latency_p90 * cfg.webhook_fallback * self.scale
            # However late the fallback, look at least once before the task's deadline.
            next_poll = min(next_poll, max(start, deadline - cfg.min_interval * self.scale))
        else:
            first = card.latency_p50 if cfg.first is None else cfg.first
            next_poll = start + first * self.scale
        interval = max(cfg.min_interval, (card.latency_p90 - card.latency_p50) / 2)
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
                spread = 1 + self._rng.uniform(-cfg.jitter, cfg.jitter)
                next_poll = time.monotonic() + interval * spread * self.scale
                interval = min(interval * cfg.factor, cfg.max_interval)
                interval = max(interval, cfg.min_interval)
