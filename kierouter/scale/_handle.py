"""One batch as a worker runs it: its Postgres journal, shared gate and router.

Every worker that takes a row of a batch opens the batch once: the journal
(:class:`PostgresJournal`), the gate that shares the key's create limit and the batch's budget
(:class:`SharedGate`) and a router built like a one-machine batch's (``batch._connect``), whose
callback receiver accepts every job of the batch and forwards those another worker runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from kierouter._errors import ConfigurationError, KieRouterError
from kierouter._models import ImageRequest
from kierouter.batch._settings import SECRET_FILE, BatchSettings
from kierouter.journal import RouterJournal

from ._gate import SharedGate
from ._journal import PostgresJournal
from ._pool import PoolAccount
from ._reads import SharedReadLimiter

if TYPE_CHECKING:
    from kierouter._router import Router

__all__ = ["BatchHandle", "WorkerOptions", "callback_secret", "open_batch"]

log = logging.getLogger("kierouter.scale")

#: seconds added to the create window: workers POST some milliseconds after their slot is taken
#: (measured 16-82 ms), so a window of exactly 10 s let 21-31 creates into some 10 s at KIE
WINDOW_MARGIN = 0.5


@dataclass(kw_only=True)
class WorkerOptions:
    """How one worker process talks to KIE (no secret is stored in the database)."""

    url: str = field(repr=False)  # may hold the database password
    executor_id: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    account: str = "default"
    #: several KIE accounts (``--account NAME=KEY_ENV``, repeated): creates go to the one with
    #: room and credits; empty: the one key ``api_key`` as account ``account``
    pool: tuple[PoolAccount, ...] = ()
    concurrency: int = 20
    #: ``host:port`` where this worker serves the callback front (:mod:`._front`)
    listen: str | None = None
    #: the URL KIE posts callbacks to (this worker's front, or a balancer before several)
    callback_url: str | None = None
    plugins: Any = None
    config: Any = None

    def __post_init__(self) -> None:
        from urllib.parse import urlsplit

        from kierouter._errors import register_secret

        register_secret(urlsplit(self.url).password)  # never in a message or a log line
        register_secret(self.api_key)
        for member in self.pool:
            register_secret(member.api_key)


def callback_secret(out_dir: Path) -> str:
    """The batch's callback-token key, in its shared folder (created once, read by every
    worker: any of them can then check a callback's token)."""
    path = out_dir / SECRET_FILE
    for _ in range(50):
        if path.exists():
            text = path.read_text().strip()
            if text:
                return text
            time.sleep(0.1)  # another worker is writing it
            continue
        import secrets

        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


@dataclass(eq=False)
class BatchHandle:
    """A batch opened in this worker."""

    batch_id: str
    out_dir: Path
    backend: PostgresJournal
    settings: BatchSettings
    gate: SharedGate
    router: Router
    stack: contextlib.AsyncExitStack
    requests: dict[str, ImageRequest] = field(default_factory=dict)

    async def aclose(self) -> None:
        """Stop the router, close the connections."""
        await self.stack.aclose()
        self.gate.close()
        self.backend.close()


def _price(
    backend: PostgresJournal, router_of: Callable[[], Router]
) -> Callable[[str, str], float]:
    def price(job_key: str, model: str) -> float:
        job = backend.job(job_key)
        request = None
        if job is not None and job.spec.get("step") == (job.spec.get("steps") or [None])[0]:
            request = msgspec.convert(job.spec["request"], ImageRequest)
        return float(router_of().registry.card(model).credits_for(request))

    return price


async def open_batch(
    options: WorkerOptions,
    batch_id: str,
    on_callback: Callable[[str, str, str, Any], None],
) -> BatchHandle:
    """Open ``batch_id`` in this worker: journal, shared gate, router with its receiver."""
    from kierouter._router import Router, WebhookConfig

    from ._defer import DeferringClient
    from ._pool import PoolClient

    backend = PostgresJournal(options.url, batch_id)
    meta = backend.get_meta("batch")
    if not meta:
        backend.close()
        raise ConfigurationError(f"the database holds no batch {batch_id!r}")
    s = BatchSettings.stored(meta)
    out_dir = Path(meta["out_dir"])
    base_url = options.base_url or s.base_url
    local = s.sim or s.loopback or bool(options.base_url)
    holder: list[Router] = []
    # a 429 (another client of the key, say) made no task: the row is enqueued again with a
    # delay (_defer) rather than moved on; the shared gate keeps the workers from causing one
    common: dict[str, Any] = {
        "create_limit": s.create_limit,
        "create_window": s.create_window,
        "read_rate": s.read_rate,
        "default_delay": s.create_window,
    }
    stack = contextlib.AsyncExitStack()
    pool = options.pool
    names = [a.name for a in pool] or [options.account]
    client: DeferringClient
    if pool:
        members = {
            a.name: DeferringClient(a.api_key, base_url=a.base_url or base_url or "", **common)
            for a in pool[1:]
        }
        first = pool[0]
        client = PoolClient(
            members, first.name, first.api_key, base_url=first.base_url or base_url or "", **common
        )
        clients = {first.name: client, **members}
    else:
        client = DeferringClient(options.api_key, base_url=base_url or "", **common)
        clients = {options.account: client}
    for name, member in clients.items():
        # each key's status reads, shared by every worker (a client's own limiter is per process)
        reads = SharedReadLimiter(options.url, name, s.read_rate)
        member.read_limiter = reads
        stack.callback(reads.close)
    balances: dict[str, float | None] = {}
    if pool:  # each account's balance: an account that cannot pay a create is not given one
        for name, member in clients.items():
            try:
                balances[name] = await member.credits()
            except KieRouterError as exc:
                log.warning("account %s: balance unknown (%s)", name, exc)
                balances[name] = None
    gate = SharedGate(
        options.url,
        backend.schema,
        account=names,
        limit=s.create_limit,
        window=s.create_window + WINDOW_MARGIN,
        price=_price(backend, lambda: holder[0]),
        balances=balances,
        on_assign=backend.set_job_account if pool else None,
    )
    if isinstance(client, PoolClient):
        client.gate = gate
        client.journal = backend
    secret = callback_secret(out_dir)
    if options.callback_url:
        from ._front import batch_callback_url

        webhook = WebhookConfig(
            public_url=batch_callback_url(options.callback_url, batch_id),
            token_secret=secret,
            hmac_key=os.environ.get("KIE_WEBHOOK_HMAC_KEY") or None,
        )
    elif local:
        webhook = WebhookConfig(listen="127.0.0.1:0", token_secret=secret)
    else:
        # KIE reaches one callback URL (--callback-url, served by --listen or a balancer); the
        # batch's own --listen/--public-url would send every worker's callbacks to one port
        webhook = None
    router = Router(
        options.plugins,
        client=client,
        policy=s.policy or "auto",
        journal=RouterJournal(backend, gate=gate),
        webhook=webhook,
        latency_scale=1.0 / (s.time_scale if local else 1.0),
        allow_private_downloads=local,
        out_dir=out_dir,
        config=options.config,
    )
    holder.append(router)
    await router.start()
    stack.push_async_callback(router.client.aclose)
    stack.push_async_callback(router.aclose)
    if webhook is not None:
        receiver = router.webhook_app
        receiver.accept_any_job = True  # any job of the batch: the owner may be another worker

        def forward(job_key: str, task_id: str, body: Any) -> None:
            if job_key not in receiver.waiting():
                on_callback(batch_id, job_key, task_id, body)

        receiver.on_callback = forward
    return BatchHandle(batch_id, out_dir, backend, s, gate, router, stack)
