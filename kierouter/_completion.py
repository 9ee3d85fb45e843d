"""Waiting for tasks: callbacks first, adaptive polling as the fallback.

With a webhook configured, a job waits for KIE's callback; each callback is a hint confirmed by one
status read, so a job costs one status read when callbacks arrive. If no callback has arrived by
the model's p90 latency times ``PollConfig.webhook_fallback``, the job starts polling as well
(callbacks get lost; KIE gives up after a few failed deliveries).

Without a webhook, the key's :class:`~kierouter._read_scheduler.ReadScheduler` hands out the
reads (``PollConfig.scheduler="shared"``, the default): a task asks for its next read when the
chance that it finished since its last read reaches ``read_chance``, from its model's latency
distribution (log-normal through its card's p50 and p90), at most once per ``min_read_gap`` and at
least once per ``max_interval``; the scheduler grants reads within the key's budget, the likeliest
first. A lone task is read often; many share the budget where completions are likeliest
(``docs/performance.md`` § 3, § 4). ``scheduler="per-task"`` is the fixed timetable of
:class:`PollSchedule` instead: the first read at the model's ``first_quantile``, then every
``interval_p50`` × p50 (±``jitter``), growing by ``factor`` past the model's p90, each read queued
for the client's read limiter. A task gets ``latency_p90 × deadline_factor`` seconds (at least
``min_deadline``), bounded by the job's deadline. All durations in :class:`PollConfig` are model
seconds and are multiplied by the router's ``latency_scale`` (the emulator runs time faster;
``latency_scale = 1 / time_scale`` matches it).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import (
    AuthError,
    BlockedClientError,
    InsufficientCreditsError,
    KieError,
    KieRouterError,
    PluginError,
    TaskTimeoutError,
    redact,
)
from ._polling import PollConfig, PollSchedule, latency_quantile
from ._read_scheduler import NOW, Chance, chance_since, next_read_at

if TYPE_CHECKING:
    from ._models import ModelCard, TaskStatus
    from ._transport import KieClient
    from .provider import Provider
    from .webhooks import CallbackWaiter

__all__ = [
    "Completion",
    "PollConfig",
    "PollSchedule",
    "WebhookConfig",
    "latency_quantile",
    "map_provider_error",
]


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

#: Status-read errors that end the wait at once: every later read would fail the same way.
_STOPPING = (AuthError, InsufficientCreditsError, BlockedClientError)


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
        self._firsts: dict[tuple[float, float], float] = {}  # (p50, p90) -> first read

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
            if isinstance(exc, KieError) and exc.task_id is None:
                exc.task_id = task_id  # the error is about this task, not the endpoint
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
        on_task_id: Callable[[str], Awaitable[None]] | None = None,
        ignore: Container[str] = (),
        started: float | None = None,
    ) -> TaskStatus:
        """Wait until KIE reports the task final, or raise :class:`~kierouter.TaskTimeoutError`.

        ``deadline`` is a ``time.monotonic()`` instant; ``started`` the instant the task was
        created (default: now), from which the read schedule counts. ``task_id`` may be ``None``
        when the create's answer was lost: then only a callback (carrying the job key) can name
        the task, and ``on_task_id`` is awaited with the id it names before anything else.
        Callbacks naming a task in ``ignore`` (an earlier attempt of the same job finishing
        late, or another job's task replayed through a leaked callback URL) are skipped.

        A status read that fails is not the task failing: "no such task" (KIE's read side lags
        its write side), 5xx, timeouts, malformed bodies and a plugin failing to parse the
        answer are read again, backing off, until the deadline; only KIE's own final state ends
        the task. KIE refusing the key or the account, or Cloudflare refusing the client, is
        raised at once (every read would fail the same way).
        """
        if task_id is None and waiter is None:
            raise TaskTimeoutError("no task id and no callback to learn it from")
        cfg = self.poll
        start = time.monotonic() if started is None else started
        now = time.monotonic()
        # the fixed timetable: per-task mode, and a webhook's fallback polling (built when used)
        schedule: PollSchedule | None = None
        # The shared scheduler hands out this key's reads (see _read_scheduler); per-task mode
        # sleeps on the task's own timetable and queues for the client's read limiter.
        shared = self.client.read_scheduler if cfg.scheduler == "shared" else None
        if waiter is not None:
            next_poll = start + card.latency_p90 * cfg.webhook_fallback * self.scale
            # However late the fallback, look at least once before the task's deadline.
            next_poll = min(next_poll, max(now, deadline - cfg.min_interval * self.scale))
        elif shared is not None:
            first = self._first_read(card) if cfg.first is None else cfg.first
            next_poll = max(now, start + first * self.scale)
        else:
            schedule = PollSchedule(cfg, card.latency_p50, card.latency_p90, self._rng)
            next_poll = max(now, start + schedule.first() * self.scale)
        read_at = start  # when the task was last read (its create before the first read)
        failures = 0  # status reads in a row that did not answer
        last_error = ""  # why the last status read failed, told when the deadline passes
        last_look = False  # one read at the deadline before giving up
        while True:
            now = time.monotonic()
            hinted = False
            if waiter is not None:
                hinted = await waiter.wait(min(next_poll, deadline) - now)
            elif shared is not None:
                if not last_look:  # after the last look, straight to the timeout below
                    chance = self._chance(card, start, read_at)
                    await shared.turn(min(next_poll, deadline), chance)
            elif next_poll > now:
                await asyncio.sleep(min(next_poll, deadline) - now)
            now = time.monotonic()
            polling = not hinted
            if polling and now >= deadline:
                if last_look or task_id is None:
                    said = f"; the last status read failed: {last_error}" if failures else ""
                    raise TaskTimeoutError(
                        f"{card.id} task did not finish within its deadline{said}",
                        task_id=task_id,
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
                        await on_task_id(task_id)
                elif task_id not in hint_ids:
                    continue  # not the task this job waits for
                if emit is not None:
                    emit("callback", job_key, model=card.id, task_id=task_id)
            elif task_id is None:
                next_poll = deadline  # nothing to poll: only a callback can name the task
                continue
            if shared is not None and waiter is not None:
                # a callback's confirming read goes before every scheduled one
                await shared.turn(NOW if hinted else now)
            try:
                status = await self.read_status(provider, card, task_id)
            except _STOPPING:
                raise
            except KieRouterError as exc:
                status = None
                failures += 1
                last_error = str(exc)
                if emit is not None:
                    emit("polled", job_key, model=card.id, task_id=task_id, detail=str(exc))
            if status is not None:
                failures = 0
                if emit is not None and polling:
                    emit("polled", job_key, model=card.id, task_id=task_id, detail=status.raw_state)
                if status.done:
                    return status
                if hinted and waiter is not None:
                    waiter.rearm(task_id)
            if polling or failures:
                now = read_at = time.monotonic()
                elapsed = (now - start) / self.scale
                if shared is not None and waiter is None:
                    interval = self._next_read(card, elapsed) - elapsed
                else:
                    if schedule is None:
                        schedule = PollSchedule(cfg, card.latency_p50, card.latency_p90, self._rng)
                    interval = schedule.next_interval(elapsed)
                if failures:  # read again soon, then back off: 1, 2, 4 ... x min_interval
                    backoff = min(cfg.min_interval * 2 ** (failures - 1), cfg.max_interval)
                    interval = max(interval, backoff)
                next_poll = now + interval * self.scale

    def _chance(self, card: ModelCard, start: float, read_at: float) -> Chance:
        """How likely the task created at ``start`` and last read at ``read_at`` (monotonic) is
        to have finished by a given instant: the shared scheduler reads the likeliest first."""
        p50, p90, scale = card.latency_p50, card.latency_p90, self.scale
        last = (read_at - start) / scale
        ceiling = max(self.poll.max_interval, self.poll.min_read_gap)

        def chance(now: float) -> float:
            return chance_since(p50, p90, last, (now - start) / scale, ceiling=ceiling)

        return chance

    def _first_read(self, card: ModelCard) -> float:
        """:meth:`_next_read` of a task not read yet: the same for every task on ``card``."""
        key = (card.latency_p50, card.latency_p90)
        first = self._firsts.get(key)
        if first is None:
            first = self._firsts[key] = self._next_read(card, 0.0)
        return first

    def _next_read(self, card: ModelCard, elapsed: float) -> float:
        """Model seconds after the create at which a task on ``card`` last read ``elapsed``
        seconds after it should be read again (the shared scheduler's timetable)."""
        cfg = self.poll
        return next_read_at(
            card.latency_p50,
            card.latency_p90,
            elapsed,
            chance=cfg.read_chance,
            min_gap=cfg.min_read_gap,
            max_gap=max(cfg.max_interval, cfg.min_read_gap),
        )
