"""What every job of one router shares, and what the router tells a journal. Strictly private."""

from __future__ import annotations

import inspect
import random
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from kierouter._budget import SpendLimit

if TYPE_CHECKING:
    from kierouter._completion import Completion
    from kierouter._cooldown import Cooldown
    from kierouter._downloads import Downloader
    from kierouter._errors import KieRouterError
    from kierouter._events import EventBus
    from kierouter._models import Attempt, Result
    from kierouter._plugins import Registry
    from kierouter._polling import PollConfig
    from kierouter._transport import KieClient
    from kierouter.webhooks import WebhookReceiver

__all__ = ["BalanceProbe", "Journal", "RunContext", "TaskOwners", "maybe_await"]


class Journal(Protocol):
    """What the router tells a journal (see :mod:`kierouter.journal`). Methods may be async.

    ``record_intent`` is called (and awaited when it returns an awaitable) BEFORE each create
    POST and must be durable; ``record_submitted`` right after KIE returned the task id, or the
    moment a callback named the task of a create whose answer was lost.

    ``record_attempt`` gets every attempt that ended without serving the job, including a
    ``hedged`` one (past its deadline, still watched) and, later, the same task again when its
    watch ends (``extra``, ``failed`` or ``timeout``, with its settled credits): a journal
    updates the attempt that names the task rather than adding one. The attempt that serves the
    job is not sent on its own: ``record_result`` gets it as the result's last ``success`` (or
    ``undelivered``) attempt, so a journal records both in one transaction.
    """

    def record_intent(self, job_key: str, attempt_no: int, model: str, body: Any) -> Any:
        """A create is about to be sent."""

    def record_submitted(self, job_key: str, attempt_no: int, model: str, task_id: str) -> Any:
        """KIE returned ``task_id`` for the create (or a callback named it)."""

    def record_ambiguous(self, job_key: str, attempt_no: int, model: str, error: str) -> Any:
        """The create was sent but its answer was lost."""

    def record_attempt(self, job_key: str, attempt: Attempt) -> Any:
        """An attempt ended without serving the job (or a watched task ended)."""

    def record_result(self, job_key: str, result: Result) -> Any:
        """The job was served: its serving attempt and its result, together."""

    # Optional: ``record_failed(job_key, error)`` is called, when the journal has it, once the
    # job has given up for good (every model failed, or its own budget ran out). It is not
    # called for an ambiguous create (the job is unknown, not failed) nor when the run is
    # halted from outside (auth, credits, a spend limit), which a resume may continue.
    # Optional: ``task_owner(task_id)`` returns the job key that created ``task_id`` (or
    # ``None``), so a callback naming another job's task never serves this one.


async def maybe_await(value: Any) -> Any:
    """``await value`` when it is awaitable (journal methods and judges may be either)."""
    if inspect.isawaitable(value):
        return await value
    return value


class TaskOwners:
    """Which job created which task, for the tasks this router made (most recent 100 000)."""

    def __init__(self, journal: Journal | None, limit: int = 100_000) -> None:
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._journal = journal
        self._limit = limit

    def add(self, task_id: str, job_key: str) -> None:
        """Remember that ``job_key`` owns ``task_id``."""
        self._owners[task_id] = job_key
        while len(self._owners) > self._limit:
            self._owners.popitem(last=False)

    def owner(self, task_id: str) -> str | None:
        """The job that created ``task_id``, if this router (or its journal) knows."""
        found = self._owners.get(task_id)
        if found is None and self._journal is not None:
            lookup = getattr(self._journal, "task_owner", None)
            if lookup is not None:
                found = lookup(task_id)
        return found

    def foreign_to(self, job_key: str) -> _Foreign:
        """A container of the task ids that belong to some other job than ``job_key``."""
        return _Foreign(self, job_key)


class _Foreign:
    """``task_id in foreign``: True when the task is known to be another job's."""

    __slots__ = ("_job_key", "_owners")

    def __init__(self, owners: TaskOwners, job_key: str) -> None:
        self._owners = owners
        self._job_key = job_key

    def __contains__(self, task_id: object) -> bool:
        if not isinstance(task_id, str):
            return False
        owner = self._owners.owner(task_id)
        return owner is not None and owner != self._job_key


class BalanceProbe:
    """What KIE charged for a task, from the account balance, when nothing else of this router
    could have moved it: the balance read after the previous task ended (with nothing created
    or ended since) and the balance read after this one.

    Only used for models whose status answers report no task cost (the legacy families): after
    such a task ends with the router idle, the balance is read once, and that reading is the
    starting point of the next task if nothing happens in between. ``epoch`` counts every
    create sent and every task ended. No read is ever made before a create. Another process
    spending from the same account would go unseen: that is why a task's own reported cost
    always wins.
    """

    def __init__(self) -> None:
        self.epoch = 0
        self.running = 0
        #: models whose status answers reported a task's cost: no probing for them
        self.reporting: set[str] = set()
        #: the last balance read and the epoch it was read at
        self._last: tuple[float, int] | None = None

    def begin(self, model: str) -> float | None:
        """A create on ``model`` is about to be sent: count it as running. Returns the balance
        before it when the last reading still holds (nothing of the router ran since)."""
        last = self._last
        before = None
        if last is not None and last[1] == self.epoch and self.running == 0:
            before = None if model in self.reporting else last[0]
        self.running += 1
        self.epoch += 1
        return before

    def expect(self) -> int:
        """The epoch a task's end must find (one more: its own end) for its reading to hold."""
        return self.epoch + 1

    def ended(self) -> None:
        """A task of this router ended (or its create was refused: KIE made no task)."""
        self.epoch += 1
        self.running = max(0, self.running - 1)

    def idle(self) -> bool:
        """Whether no task of the router is running (a balance read now is this router's)."""
        return self.running == 0

    def read(self, balance: float, epoch: int) -> None:
        """Remember a balance read at ``epoch`` (ignored when something happened meanwhile)."""
        if epoch == self.epoch:
            self._last = (balance, epoch)


@dataclass(eq=False)
class RunContext:
    """What every job of one router shares. Strictly private."""

    registry: Registry
    client: KieClient
    completion: Completion
    downloader: Downloader
    cooldown: Cooldown
    events: EventBus
    receiver: WebhookReceiver | None = None
    public_url: str | None = None
    stats: Any = None
    latency_scale: float = 1.0
    create_retries: int = 2
    retry_backoff: float = 2.0
    #: how long (model seconds, from its create) a task is followed before giving up on it
    watch_limit: float = 1200.0
    spend: SpendLimit = field(default_factory=SpendLimit)
    probe: BalanceProbe = field(default_factory=BalanceProbe)
    owners: TaskOwners = field(default_factory=lambda: TaskOwners(None))
    #: folders already checked for writing before a first create
    writable: set[str] = field(default_factory=set)
    #: Set when KIE refused the key or the account ran dry: every job running at that moment
    #: stops before its next create. Jobs started later try again (the user may have topped up).
    halted: KieRouterError | None = None
    halted_at: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def build(
        cls,
        registry: Registry,
        client: KieClient,
        *,
        poll: PollConfig,
        latency_scale: float,
        allow_private_downloads: bool,
        cooldown: Cooldown | None,
        events: EventBus,
        receiver: WebhookReceiver | None,
        public_url: str | None,
        stats: Any,
        spend: SpendLimit,
        journal: Journal | None,
    ) -> RunContext:
        """The context of one router: its completion, downloader, cooldown and spend limit."""
        from kierouter._completion import Completion
        from kierouter._cooldown import Cooldown
        from kierouter._downloads import Downloader
        from kierouter._hosts import emulator_hosts

        return cls(
            registry=registry,
            client=client,
            completion=Completion(client, poll=poll, latency_scale=latency_scale),
            downloader=Downloader(
                client,
                allow_private=allow_private_downloads,
                allow_hosts=emulator_hosts(client.base_url),
                retry_wait=0.2 * min(1.0, latency_scale),  # an emulator's files answer faster
            ),
            cooldown=cooldown or Cooldown(period=60.0 * max(latency_scale, 0.01)),
            events=events,
            receiver=receiver,
            public_url=public_url,
            stats=stats,
            latency_scale=latency_scale,
            create_retries=poll.create_retries,
            retry_backoff=poll.retry_backoff,
            watch_limit=poll.watch_limit,
            spend=spend,
            owners=TaskOwners(journal),
        )

    def halt(self, exc: KieRouterError) -> None:
        """Stop every running job: KIE refused the key or the account."""
        self.halted = exc
        self.halted_at = time.monotonic()

    def observe(
        self, model: str, ok: bool, intent: Sequence[str] = (), *, billed: bool | None = None
    ) -> None:
        """Feed an outcome (per model and intent) to the policy engine's learned rates.

        ``billed=True`` for an attempt that was not accepted but was paid for (the judge
        rejected its image, or the job gave up on it at its deadline while KIE goes on): the
        expected cost must count those credits, not treat the attempt as a free failure.
        """
        if self.stats is None:
            return
        record = getattr(self.stats, "record", None)
        if callable(record):
            try:
                if billed is not None:
                    record(model, ok, intent or ("*",), billed=billed)
                elif intent:
                    record(model, ok, intent)
                else:
                    record(model, ok)
            except Exception:  # learning must never break a job
                pass
