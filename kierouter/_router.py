"""The router: the library API that turns requests into images.

::

    async with Router() as router:                       # plugins from entry points
        result = await router.generate("a red fox in snow, watercolor", policy="budget")
        print(result.served_model, result.credits, [f.path for f in result.files])

:class:`Router` is async-first; :class:`SyncRouter` is the same API for scripts, running its own
event loop in a background thread. :meth:`Router.task` rebuilds a :class:`TaskHandle` from a task
id, e.g. to fetch a result later. See :mod:`kierouter._run` for what happens inside a job.

Tasks the router *watches* (a task that passed its deadline while the job moved on, under a
policy whose ``on_timeout`` is ``escalate``) may finish after :meth:`Router.generate` returned:
the result lists them in ``Result.watching``; the router follows them in the background, saves
their images as ``extra`` attempts, journals them and sends an ``extra`` event;
:meth:`Router.drain` waits for them and returns how they ended, and :meth:`Router.aclose` waits
for them too (each within ``PollConfig.watch_limit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._budget import SpendLimit
from ._completion import PollConfig, WebhookConfig
from ._cooldown import Cooldown
from ._errors import (
    ConfigurationError,
)
from ._events import EventBus, EventSink
from ._inputs import has_local_inputs
from ._models import Attempt, ImageRequest, Result, TaskStatus
from ._planning import Planner, apply_config_pricing, check_job_key, new_outcome_stats
from ._run import Existing, Job, JobState, Journal, RunContext, Watcher
from ._run.follow import reconcile
from ._task import TaskHandle

if TYPE_CHECKING:
    import httpx

    from ._history import History
    from ._plugins import Registry
    from ._transport import KieClient
    from ._upload_cache import UploadCache
    from .judging import Judge
    from .policy import Plan, Policy
    from .webhooks import WebhookReceiver

__all__ = ["PollConfig", "Router", "TaskHandle", "WebhookConfig"]


class Router:
    """Routes image jobs across KIE's models. Use ``async with Router(...) as router``.

    Args:
        plugins: ``None`` loads installed plugins from entry points; a list registers exactly
            those plugin objects (modules) in-process.
        registry: a ready :class:`~kierouter.Registry` (wins over ``plugins``).
        client: a ready :class:`~kierouter.KieClient`; else one is built from ``api_key``
            (default ``$KIE_API_KEY``), ``base_url`` and ``transport``.
        policy: default policy, by name or as a :class:`~kierouter.Policy`.
        judge: default judge: a callable or a registered judge name (``"basic"`` is built in).
        out_dir: default folder for downloaded images; ``None`` keeps URLs only. It is created
            and checked for writing before a job's first create.
        webhook: a :class:`WebhookConfig` to complete tasks by callback instead of polling.
        poll: a :class:`PollConfig`.
        latency_scale: multiplies every model latency the router waits on (``1 / time_scale``
            against the emulator).
        allow_private_downloads: allow result URLs on any loopback/private address. Without it,
            results on KIE's own host are still fetched when the base URL is on loopback or a
            private network (an emulator: ``KIE_BASE_URL=http://127.0.0.1:8799``).
        budget: credits every job of this router may spend together (``None``: no limit). Each
            create holds its price first; a create that would pass the limit raises
            :class:`~kierouter.BudgetReachedError`. Safe under any number of concurrent jobs.
        event_sinks: callables (or ``{name: callable}``) that receive every event.
        config: a loaded kierouter configuration (price overrides, policies).
        journal: an object recording intents, task ids, attempts and results (see ``Journal``).
        cooldown: share a :class:`~kierouter._cooldown.Cooldown` between routers.
        upload_cache: where uploads of local input images are remembered (default: in memory;
            a :class:`~kierouter.SqliteUploadCache` keeps them across runs).
        upload_url: KIE's upload host (default: see :class:`~kierouter.Uploader`).
        log: record every job in the history ``kierouter logs`` shows (``logs.db`` in the
            user's data folder, or ``$KIEROUTER_HOME``): prompt, policy, model, attempts,
            credits, files, task ids; never a secret.
    """

    def __init__(
        self,
        plugins: Iterable[object] | None = None,
        *,
        registry: Registry | None = None,
        client: KieClient | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | str | None = None,
        policy: str | Policy = "auto",
        judge: Judge | str | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        webhook: WebhookConfig | None = None,
        poll: PollConfig | None = None,
        latency_scale: float = 1.0,
        allow_private_downloads: bool = False,
        event_sinks: Iterable[EventSink] | Mapping[str, EventSink] = (),
        config: Any = None,
        journal: Journal | None = None,
        cooldown: Cooldown | None = None,
        budget: float | None = None,
        log: bool = False,
        upload_cache: UploadCache | None = None,
        upload_url: str | None = None,
    ) -> None:
        from ._plugins import load_registry
        from ._transport import KieClient
        from ._uploads import UPLOAD_REUSE, Uploader

        finite = isinstance(latency_scale, int | float) and math.isfinite(latency_scale)
        if isinstance(latency_scale, bool) or not finite or latency_scale <= 0:
            raise ConfigurationError(
                f"latency_scale must be a finite positive number, got {latency_scale!r}"
            )
        spend = SpendLimit(budget)  # refuses a NaN, infinite or negative budget
        if registry is None:
            registry = (
                load_registry()
                if plugins is None
                else load_registry(list(plugins), entry_points=False)
            )
        self.registry = registry
        self.config = config
        apply_config_pricing(registry, config)
        self._own_client = client is None
        self.client = client or KieClient(api_key, base_url=base_url, transport=transport)
        self.policy = policy
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.journal = journal
        self.poll = poll or PollConfig()
        self.latency_scale = latency_scale
        self.events = EventBus(registry.event_sinks)
        self.events.add_all(event_sinks)
        self.stats = new_outcome_stats()
        self._planner = Planner(registry, config, self.stats)
        self.webhook = webhook
        self._receiver: WebhookReceiver | None = None
        if webhook is not None:
            from .webhooks import WebhookReceiver

            self._receiver = WebhookReceiver(
                token_secret=webhook.token_secret,
                hmac_key=webhook.hmac_key,
                max_skew=webhook.max_skew,
                max_body=webhook.max_body,
                read_timeout=webhook.read_timeout,
                spool=webhook.spool,
            )
            if webhook.public_url is None and webhook.listen is None:
                raise ConfigurationError(
                    "WebhookConfig needs public_url (where KIE reaches your receiver) or listen"
                )
        self._watcher = Watcher()
        self._ctx = RunContext.build(
            registry,
            self.client,
            poll=self.poll,
            latency_scale=latency_scale,
            allow_private_downloads=allow_private_downloads,
            cooldown=cooldown,
            events=self.events,
            receiver=self._receiver,
            public_url=webhook.public_url if webhook is not None else None,
            stats=self.stats,
            spend=spend,
            journal=journal,
        )
        self._completion = self._ctx.completion
        self._downloader = self._ctx.downloader
        #: Uploads local input images (after planning, once per content); see Uploader.
        self.uploads = Uploader(
            self.client,
            base_url=upload_url,
            cache=upload_cache,
            reuse_for=UPLOAD_REUSE * latency_scale,  # an emulator's days pass faster
        )
        self._default_judge = self._planner.resolve_judge(judge) if judge is not None else None
        self._stack: contextlib.AsyncExitStack | None = None
        self._server: Any = None
        self._start_lock: asyncio.Lock | None = None
        self._history: History | None = None
        if log:
            from ._history import History

            self._history = History()

    def __repr__(self) -> str:
        name = self.policy if isinstance(self.policy, str) else self.policy.name
        webhook = "on" if self.webhook is not None else "off"
        return (
            f"<Router {len(self.registry.cards)} models policy={name!r} "
            f"base_url={self.client.base_url!r} webhook={webhook}>"
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Router:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the built-in webhook server if one is configured (``generate`` calls this)."""
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._stack is not None:
                return
            stack = contextlib.AsyncExitStack()
            if self._receiver is not None:
                stack.push_async_callback(self._receiver.aclose)  # its spool reader, if any
            webhook = self.webhook
            if webhook is not None and webhook.listen is not None and self._receiver is not None:
                from ._server import RECEIVER_LIMITS, serve

                host, _, port = webhook.listen.rpartition(":")
                if not host or not port.isdigit():
                    raise ConfigurationError(
                        f"WebhookConfig.listen must be 'host:port', got {webhook.listen!r}"
                    )
                self._server = await stack.enter_async_context(
                    serve(
                        self._receiver,
                        host=host.strip("[]"),
                        port=int(port),
                        limits=RECEIVER_LIMITS,
                    )
                )
                if webhook.public_url is None:
                    self._ctx.public_url = self._server.url
            self._stack = stack

    async def aclose(self) -> None:
        """Wait for watched tasks (:meth:`drain`), stop the webhook server, drain event sinks,
        close the upload cache's file and the HTTP client (if the router's)."""
        await self._watcher.wait()
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None
        await self.events.drain()
        self.uploads.close()
        if self._own_client:
            await self.client.aclose()

    # -- properties ----------------------------------------------------------------------------

    @property
    def webhook_app(self) -> WebhookReceiver:
        """The ASGI app receiving KIE's callbacks; mount it at ``/kie`` in your web app."""
        if self._receiver is None:
            raise ConfigurationError("this router has no webhook; pass webhook=WebhookConfig(...)")
        return self._receiver

    @property
    def public_url(self) -> str | None:
        """Base URL put into callback URLs (``None`` when polling)."""
        return self._ctx.public_url

    @property
    def cooldown(self) -> Cooldown:
        """The per-model circuit breaker shared by this router's jobs."""
        return self._ctx.cooldown

    @property
    def status_reads(self) -> dict[str, int]:
        """Status reads made so far, by model."""
        return dict(self._completion.reads)

    @property
    def spent(self) -> float:
        """Credits KIE charged for this router's tasks so far (settled amounts)."""
        return self._ctx.spend.spent

    @property
    def budget(self) -> float | None:
        """The router-wide spend limit (``Router(budget=...)``), or ``None``."""
        return self._ctx.spend.limit

    @property
    def budget_reached(self) -> bool:
        """True once a create was refused because the spend limit had no room for it."""
        return self._ctx.spend.reached is not None

    def watching(self, job_key: str | None = None) -> tuple[str, ...]:
        """Task ids still watched in the background (of one job, or of every job)."""
        return self._watcher.watching(job_key)

    async def drain(self, job_key: str | None = None) -> list[Attempt]:
        """Wait until every watched task (of ``job_key``, or of every job) has ended and been
        recorded; return the attempts they ended with: ``extra`` (paid, images saved),
        ``failed`` or ``timeout``. Each watch ends within ``PollConfig.watch_limit``.

        A watched task that ended while its job still ran is in that job's result already (its
        hedged attempt became the extra); the ones that were still running when the job
        returned are exactly those its ``Result.watching`` names.
        """
        return await self._watcher.wait(job_key)

    # -- planning ------------------------------------------------------------------------------

    def explain(self, request: ImageRequest | str, policy: str | Policy | None = None) -> Plan:
        """The ranked plan for ``request`` (models, reasons, expected cost); no network call."""
        return self._planner.prepare(request, policy if policy is not None else self.policy)[2]

    def _job(
        self,
        request: ImageRequest | str,
        *,
        policy: str | Policy | None,
        job_key: str | None,
        out_dir: str | os.PathLike[str] | None,
        judge: Judge | str | None,
        prior: Sequence[Attempt] = (),
        resuming: bool = False,
    ) -> Job:
        req, resolved, plan = self._planner.prepare(
            request, policy if policy is not None else self.policy, check_inputs=not resuming
        )
        state = JobState(
            self._ctx,
            request=req,
            policy=resolved,
            plan=plan,
            job_key=check_job_key(job_key),
            out_dir=Path(out_dir) if out_dir is not None else self.out_dir,
            judge=self._planner.resolve_judge(judge) if judge is not None else self._default_judge,
            journal=self.journal,
            prior=prior,
            inputs=self.uploads.resolve if has_local_inputs(req) else None,
        )
        return Job(state, self._watcher)

    # -- running -------------------------------------------------------------------------------

    async def generate(
        self,
        request: ImageRequest | str,
        *,
        policy: str | Policy | None = None,
        job_key: str | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        judge: Judge | str | None = None,
    ) -> Result:
        """Run one job: plan, create, follow, deliver, judge, escalate; return its Result.

        Raises :class:`~kierouter.ValidationError` before any call for a bad request and
        :class:`~kierouter.ConfigurationError` when the output folder cannot be written (nothing
        sent); :class:`~kierouter.JobFailedError` or :class:`~kierouter.BudgetExhaustedError`
        (both listing the attempts) when no model served it;
        :class:`~kierouter.BudgetReachedError` when the router's ``budget`` has no room;
        :class:`~kierouter.PaidUndeliveredError` (carrying the paid ``Result``) when KIE made
        the image but it could not be saved; :class:`~kierouter.AuthError` /
        :class:`~kierouter.InsufficientCreditsError` when KIE refuses the account, and
        :class:`~kierouter.AmbiguousSubmissionError` when a create's answer was lost and no
        callback named the task.
        """
        job = self._job(request, policy=policy, job_key=job_key, out_dir=out_dir, judge=judge)
        if self._stack is None:  # started already: no lock round trip per job
            await self.start()
        if self._history is not None:
            return await self._history.track(job, job.run(), base_url=self.client.base_url)
        return await job.run()

    async def resume(
        self,
        request: ImageRequest | str,
        *,
        job_key: str,
        model: str | None = None,
        task_id: str | None = None,
        attempt_no: int = 1,
        prior_attempts: Sequence[Attempt] = (),
        policy: str | Policy | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        judge: Judge | str | None = None,
    ) -> Result:
        """Continue a job whose task on ``model`` was already created; never create it again.

        With ``task_id`` the task is awaited (callback or polling), downloaded and judged; with
        ``task_id=None`` (an ambiguous create) only a callback carrying ``job_key`` can name it.
        If it does not serve the job, the remaining rungs of the plan run (where the money rule
        allows another create), skipping every model in ``prior_attempts`` and ``model``.
        ``prior_attempts`` also count against the budget. With ``model=None`` no task is
        pending: the plan goes on after ``prior_attempts``.
        """
        job = self._job(
            request,
            policy=policy,
            job_key=job_key,
            out_dir=out_dir,
            judge=judge,
            prior=prior_attempts,
            resuming=True,
        )
        existing = None
        if model is not None:
            job.budget.take_attempt()  # the existing create was one of the job's attempts
            existing = Existing(model, task_id, attempt_no)
        await self.start()
        skip = {a.model for a in prior_attempts if a.outcome != "skipped"}
        return await job.run(existing=existing, skip=sorted(skip))

    async def watch(
        self,
        request: ImageRequest | str,
        *,
        job_key: str,
        model: str,
        task_id: str,
        attempt_no: int = 1,
        policy: str | Policy | None = None,
        out_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """Watch a hedged task created earlier (a resumed batch): it ends as an ``extra``,
        ``failed`` or ``timeout`` attempt in the journal; :meth:`drain` waits for it."""
        job = self._job(
            request, policy=policy, job_key=job_key, out_dir=out_dir, judge=None, resuming=True
        )
        await self.start()
        run = job.adopt(Existing(model, task_id, attempt_no))
        self._watcher.start(job.state, run, held=False)  # no job of it runs here

    async def reconcile(
        self,
        job_key: str,
        *,
        model: str,
        timeout: float,  # noqa: ASYNC109 - how long to wait for a callback, part of the API
    ) -> TaskStatus | None:
        """Learn the task of an ambiguous create from its callback (which carries ``job_key``).

        Waits up to ``timeout`` seconds for a callback for ``job_key``, confirms it with one
        status read and returns that status (``None`` when no callback arrived). Needs a
        webhook whose ``token_secret`` matches the one the create was sent with.
        """
        await self.start()
        return await reconcile(self._ctx, job_key, model=model, timeout=timeout)

    def task(self, task_id: str, *, model: str) -> TaskHandle:
        """A handle on an existing task (e.g. from a Result or a journal)."""
        return TaskHandle(self, task_id, model)

    async def credits(self) -> float:
        """The account's credit balance."""
        return await self.client.credits()
