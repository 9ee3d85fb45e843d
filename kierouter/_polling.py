"""How to follow tasks (:class:`PollConfig`) and when to read a task's status
(:class:`PollSchedule`, drawn from the model's latency distribution).

The model's latency is taken as log-normal through its card's p50 and p90 (the shape KIE's task
times have, and the one the emulator draws from).
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

from ._errors import ConfigurationError

__all__ = ["PollConfig", "PollSchedule", "latency_quantile"]


@dataclass(frozen=True, kw_only=True)
class PollConfig:
    """How to poll. Durations are model seconds, scaled by the router's ``latency_scale``.

    Polling follows the model's latency distribution (log-normal through the card's p50 and p90;
    see :class:`PollSchedule`): the first read at ``first_quantile`` of it, then a read every
    ``interval_p50 × p50`` until the model's p90, growing by ``factor`` per read after that.

    With ``scheduler="shared"`` (the default) the reads of every task on one key come out of
    that key's budget (:class:`~kierouter._read_scheduler.ReadScheduler`, the client's
    ``status_budget``): a task is read when the chance that it finished since its last read
    reaches ``read_chance``, at most once per ``min_read_gap`` and at least once per
    ``max_interval``; when more tasks are due than the budget reads, the one likeliest to be
    found finished goes first.
    ``scheduler="per-task"`` is the fixed schedule per task described above (each task on its
    own timetable, every read queued for the client's read limiter).

    Attributes:
        scheduler: ``"shared"`` (reads from the key's budget, by chance of completion) or
            ``"per-task"`` (a fixed timetable per task; the schedule before the shared one).
        read_chance: with the shared scheduler, read a task again once the chance that it
            finished since its last read reaches this (0.05: about every second near a 20 s
            model's median). Between 0 and 1.
        min_read_gap: with the shared scheduler, the shortest time between two reads of one
            task (0.5: at most two reads a second). Positive.
        first: seconds before the first poll; ``None`` reads at the model's ``first_quantile``.
        factor: growth of the interval after each pending read once the task has run longer than
            the model's p90 latency (the slow tail, where reading often buys little).
        min_interval: with ``per-task``, the shortest interval between two reads of one task.
        max_interval: longest interval between two reads of one task (both schedulers).
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
        not_found_reads: kept so that existing configurations load; it no longer ends a task.
            A status read answered "no such task" (KIE's read side lags its write side, or
            the id is not visible yet) is read again, backing off, until the task's deadline:
            only KIE's own final state ends a task.
        create_retries: how many times a create that failed transiently (455, 5xx, no
            connection) is retried on the same model before the job moves on; each retry
            counts against the job's ``max_attempts``.
        retry_backoff: seconds before the first such retry; doubles for each further one.
            Downloads of a finished task back off the same way.
        watch_limit: seconds from its create after which a task KIE never reported final is
            given up (its attempt ends ``timeout``): how long a hedged task is watched, and how
            long a job whose policy says ``on_timeout = "wait"`` follows its task. KIE advises
            to stop polling after 10–15 minutes.
        download_retries: how many more rounds a finished task's images get after a failed
            download (each round re-mints the links through KIE's download-url first) before
            the job ends ``undelivered``, its URLs kept.
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
    watch_limit: float = 1200.0
    download_retries: int = 3
    scheduler: str = "shared"
    read_chance: float = 0.05
    min_read_gap: float = 0.5

    def __post_init__(self) -> None:
        if self.scheduler not in ("shared", "per-task"):
            raise ConfigurationError(
                f"PollConfig.scheduler must be 'shared' or 'per-task', got {self.scheduler!r}"
            )
        if not (isinstance(self.read_chance, int | float) and 0 < self.read_chance < 1):
            raise ConfigurationError(
                f"PollConfig.read_chance must be between 0 and 1, got {self.read_chance!r}"
            )
        _check_number("min_read_gap", self.min_read_gap, positive=True)
        if self.first is not None:
            _check_number("first", self.first, low=0.0)
        _check_number("factor", self.factor, low=1.0)
        for name in ("min_interval", "max_interval", "deadline_factor", "min_deadline"):
            _check_number(name, getattr(self, name), positive=True)
        for name in ("webhook_fallback", "interval_p50", "watch_limit"):
            _check_number(name, getattr(self, name), positive=True)
        _check_number("jitter", self.jitter, low=0.0, high=1.0)
        _check_number("retry_backoff", self.retry_backoff, low=0.0)
        if not 0 < self.first_quantile < 1:  # also refuses NaN
            raise ConfigurationError(
                f"PollConfig.first_quantile must be between 0 and 1, got {self.first_quantile!r}"
            )
        for name in ("not_found_reads", "create_retries", "download_retries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(
                    f"PollConfig.{name} must be a whole number >= 0, got {value!r}"
                )


def _check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    positive: bool = False,
) -> None:
    """Refuse a PollConfig field that is not a finite number in range (NaN and inf included)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and positive:
        ok = value > 0  # type: ignore[operator]
    if ok and low is not None:
        ok = value >= low  # type: ignore[operator]
    if ok and high is not None:
        ok = value <= high  # type: ignore[operator]
    if not ok:
        wanted = "a finite positive number" if positive else "a finite number"
        if low is not None:
            wanted += f" >= {low:g}"
        if high is not None:
            wanted += f" and <= {high:g}"
        raise ConfigurationError(f"PollConfig.{name} must be {wanted}, got {value!r}")


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
