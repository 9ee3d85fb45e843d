"""The router: the library API that turns requests into images.

::

    async with Router() as router:                       # plugins from entry points
        result = await router.generate("a red fox in snow, watercolor", policy="budget")
        print(result.served_model, result.credits, [f.path for f in result.files])

:class:`Router` is async-first; :class:`SyncRouter` is the same API for scripts, running its own
event loop in a background thread. :meth:`Router.task` rebuilds a :class:`TaskHandle` from a task
id, e.g. to fetch a result later. See :mod:`kierouter._run` for what happens inside a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._completion import Completion, PollConfig, WebhookConfig
from ._cooldown import Cooldown
from ._errors import (
    ConfigurationError,
    GenerationFailedError,
    TaskTimeoutError,
    ValidationError,
)
from ._events import EventBus, EventSink
from ._models import Attempt, ImageFile, ImageRequest, Result, TaskStatus
from ._run import Existing, Job, Journal, RunContext

if TYPE_CHECKING:
    import httpx

    from ._history import History
    from ._plugins import Registry
    from ._transport import KieClient
    from .judging import Judge
    from .policy import Plan, Policy
    from .webhooks import WebhookReceiver

__all__ = ["PollConfig", "Router", "SyncRouter", "SyncTaskHandle", "TaskHandle", "WebhookConfig"]

_JOB_KEY = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,200}$")


def _as_request(request: ImageRequest | str) -> ImageRequest:
    if isinstance(request, str):
        return ImageRequest(prompt=request)
    if not isinstance(request, ImageRequest):
        raise ValidationError("request", f"expected an ImageRequest or a prompt, got {request!r}")
    return request


def _check_job_key(job_key: str | None) -> str:
    if job_key is None:
        return f"job-{secrets.token_hex(8)}"
    if not isinstance(job_key, str) or not _JOB_KEY.match(job_key):
        raise ValidationError(
            "job_key", "must be 1–200 characters without slashes or control characters"
        )
    return job_key


class TaskHandle:
    """A KIE task by id: check it, wait for it, download its images. Rebuildable any time.

    Get one from :meth:`Router.task`; it needs only the task id and the model id.
    """

    def __init__(self, router: Router, task_id: str, model: str) -> None:
        self._router = router
        self.task_id = task_id
        self.model = model
        self.card = router.registry.card(model)
        self.provider = router.registry.provider(model)

    def __repr__(self) -> str:
        return f"<TaskHandle {self.task_id} {self.model}>"

    async def status(self) -> TaskStatus:
        """One status read."""
        return await self._router._completion.read_status(self.provider, self.card, self.task_id)

    async def wait(self, timeout: float | None = None) -> TaskStatus:  # noqa: ASYNC109
        """Poll until the task is final; :class:`~kierouter.TaskTimeoutError` after ``timeout``."""
        completion = self._router._completion
        limit = timeout if timeout is not None else completion.task_timeout(self.card)
        status = await self.status()
        if status.done:
            return status
        return await completion.wait(
            job_key=f"task-{self.task_id}",
            card=self.card,
            provider=self.provider,
            task_id=self.task_id,
            deadline=time.monotonic() + limit,
            emit=self._router.events.emit,
        )

    async def download(
        self,
        directory: str | os.PathLike[str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a task deadline, not a call timeout
    ) -> tuple[ImageFile, ...]:
        """Wait for the task, then download its images into ``directory``.

        Expired links are re-minted through the download-url endpoint. Raises
        :class:`~kierouter.GenerationFailedError` when the task failed.
        """
        status = await self.wait(timeout)
        if status.state != "success":
            raise GenerationFailedError(
                status.fail_message or "the task failed", task_id=self.task_id
            )
        files = []
        for index, url in enumerate(status.urls, start=1):
            files.append(
                await self._router._downloader.fetch(
                    url,
                    directory,
                    f"{self.task_id}-{index}",
                    task_id=self.task_id,
                    provider=self.provider,
                )
            )
        return tuple(files)


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
        out_dir: default folder for downloaded images; ``None`` keeps URLs only.
        webhook: a :class:`WebhookConfig` to complete tasks by callback instead of polling.
        poll: a :class:`PollConfig`.
        latency_scale: multiplies every model latency the router waits on (``1 / time_scale``
            against the emulator).
        allow_private_downloads: allow result URLs on loopback/private addresses (emulator only).
        event_sinks: callables (or ``{name: callable}``) that receive every event.
        config: a loaded kierouter configuration (price overrides, policies).
        journal: an object recording intents, task ids, attempts and results (see ``Journal``).
        cooldown: share a :class:`~kierouter._cooldown.Cooldown` between routers.
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
        log: bool = False,
    ) -> None:
        from ._downloads import Downloader
        from ._plugins import load_registry
        from ._transport import KieClient

        if latency_scale <= 0:
            raise ConfigurationError("latency_scale must be positive")
        if registry is None:
            registry = (
                load_registry()
                if plugins is None
                else load_registry(list(plugins), entry_points=False)
            )
        self.registry = registry
        self.config = config
        _apply_config_pricing(registry, config)
        self._own_client = client is None
        self.client = client or KieClient(api_key, base_url=base_url, transport=transport)
        self.policy = policy
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.journal = journal
        self.poll = poll or PollConfig()
        self.latency_scale = latency_scale
        self.events = EventBus(registry.event_sinks)
        sinks = event_sinks.items() if isinstance(event_sinks, Mapping) else event_sinks
        for item in sinks:
            if isinstance(item, tuple):
                self.events.add(item[0], item[1])
            else:
                self.events.add(getattr(item, "__name__", type(item).__name__), item)
        self.stats = _new_outcome_stats()
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
        self._completion = Completion(self.client, poll=self.poll, latency_scale=latency_scale)
        self._downloader = Downloader(self.client, allow_private=allow_private_downloads)
        self._ctx = RunContext(
            registry=registry,
            client=self.client,
            completion=self._completion,
            downloader=self._downloader,
            cooldown=cooldown or Cooldown(period=60.0 * max(latency_scale, 0.01)),
            events=self.events,
            receiver=self._receiver,
            public_url=webhook.public_url if webhook is not None else None,
            stats=self.stats,
            latency_scale=latency_scale,
            create_retries=self.poll.create_retries,
            retry_backoff=self.poll.retry_backoff,
        )
        self._default_judge = self._resolve_judge(judge) if judge is not None else None
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
        """Stop the webhook server, drain event sinks, close the HTTP client (if the router's)."""
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None
        await self.events.drain()
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

    # -- planning ------------------------------------------------------------------------------

    def _resolve_policy(self, policy: str | Policy | None) -> Policy:
        resolved: Policy = _policy_engine().resolve_policy(
            policy if policy is not None else self.policy,
            registry=self.registry,
            config=self.config,
        )
        return resolved

    def _plan(self, request: ImageRequest, policy: Policy) -> Plan:
        result: Plan = _policy_engine().plan(request, self.registry.cards, policy, stats=self.stats)
        return result

    def _prepare(
        self, request: ImageRequest | str, policy: str | Policy | None
    ) -> tuple[ImageRequest, Policy, Plan]:
        req = _as_request(request).validate()
        resolved = self._resolve_policy(policy)
        req = _policy_engine().apply_policy_options(req, resolved)
        return req, resolved, self._plan(req, resolved)

    def explain(self, request: ImageRequest | str, policy: str | Policy | None = None) -> Plan:
        """The ranked plan for ``request`` (models, reasons, expected cost); no network call."""
        return self._prepare(request, policy)[2]

    def _resolve_judge(self, judge: Judge | str | None) -> Judge | None:
        if judge is None:
            return self._default_judge
        if isinstance(judge, str):
            found = self.registry.judges.get(judge)
            if found is not None:
                return found
            from .judging import BUILTIN_JUDGES

            if judge in BUILTIN_JUDGES:
                return BUILTIN_JUDGES[judge]
            known = sorted({*self.registry.judges, *BUILTIN_JUDGES})
            raise ConfigurationError(f"unknown judge {judge!r}; known judges: {', '.join(known)}")
        if not callable(judge):
            raise ConfigurationError(f"judge must be a callable or a name, got {judge!r}")
        return judge

    def _job(
        self,
        request: ImageRequest | str,
        *,
        policy: str | Policy | None,
        job_key: str | None,
        out_dir: str | os.PathLike[str] | None,
        judge: Judge | str | None,
        prior: Sequence[Attempt] = (),
    ) -> Job:
        req, resolved, plan = self._prepare(request, policy)
        return Job(
            self._ctx,
            request=req,
            policy=resolved,
            plan=plan,
            job_key=_check_job_key(job_key),
            out_dir=Path(out_dir) if out_dir is not None else self.out_dir,
            judge=self._resolve_judge(judge),
            journal=self.journal,
            prior=prior,
        )

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
        """Run one job: plan, create, wait, download, judge, escalate; return its Result.

        Raises :class:`~kierouter.ValidationError` before any call for a bad request,
        :class:`~kierouter.JobFailedError` or :class:`~kierouter.BudgetExhaustedError` (both
        listing the attempts) when no model served it, :class:`~kierouter.AuthError` /
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
        model: str,
        task_id: str | None,
        attempt_no: int = 1,
        prior_attempts: Sequence[Attempt] = (),
        policy: str | Policy | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        judge: Judge | str | None = None,
    ) -> Result:
        """Continue a job whose task on ``model`` was already created; never create it again.

        With ``task_id`` the task is awaited (callback or polling), downloaded and judged; with
        ``task_id=None`` (an ambiguous create) only a callback carrying ``job_key`` can name it.
        If it does not serve the job, the remaining rungs of the plan run, skipping every model
        in ``prior_attempts`` and ``model``. ``prior_attempts`` also count against the budget.
        """
        job = self._job(
            request,
            policy=policy,
            job_key=job_key,
            out_dir=out_dir,
            judge=judge,
            prior=prior_attempts,
        )
        job.budget.take_attempt()  # the existing create was one of the job's attempts
        await self.start()
        skip = {a.model for a in prior_attempts if a.outcome != "skipped"}
        return await job.run(existing=Existing(model, task_id, attempt_no), skip=sorted(skip))

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
        if self._receiver is None:
            raise ConfigurationError("reconcile needs a webhook (callbacks carry the job key)")
        await self.start()
        card = self.registry.card(model)
        provider = self.registry.provider(model)
        waiter = self._receiver.expect(job_key)
        try:
            status = await self._completion.wait(
                job_key=job_key,
                card=card,
                provider=provider,
                task_id=None,
                deadline=time.monotonic() + timeout,
                waiter=waiter,
                emit=self.events.emit,
            )
        except TaskTimeoutError:
            return None
        finally:
            self._receiver.forget(job_key)
        self.events.emit("reconciled", job_key, model=model, task_id=status.task_id)
        return status

    def task(self, task_id: str, *, model: str) -> TaskHandle:
        """A handle on an existing task (e.g. from a Result or a journal)."""
        return TaskHandle(self, task_id, model)

    async def credits(self) -> float:
        """The account's credit balance."""
        return await self.client.credits()


def _apply_config_pricing(registry: Registry, config: Any) -> None:
    """Apply ``[pricing]`` overrides from a loaded configuration, when it has some."""
    pricing = getattr(config, "pricing", None)
    if pricing:
        known = {k: v for k, v in dict(pricing).items() if k in registry.cards}
        registry.with_pricing(known)


_POLICY_ENGINE: Any = None


def _policy_engine() -> Any:
    # Imported on first use: kierouter.policy stays out of `import kierouter`'s path. Kept once
    # found: each job asks for it three times.
    global _POLICY_ENGINE
    if _POLICY_ENGINE is None:
        from . import policy

        _POLICY_ENGINE = policy
    return _POLICY_ENGINE


def _new_outcome_stats() -> Any:
    factory = getattr(_policy_engine(), "OutcomeStats", None)
    return factory() if factory is not None else None


# The blocking facade lives in its own module; re-exported here (kierouter.SyncRouter).
from ._sync import SyncRouter, SyncTaskHandle  # noqa: E402
