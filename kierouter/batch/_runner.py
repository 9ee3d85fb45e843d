"""Running a batch: journal every job, pace creates, download at once, resume after anything.

A batch lives in its output folder: ``journal.sqlite`` (every job and attempt), the images,
``manifest.jsonl`` and ``.callback-secret`` (the key of the per-job callback tokens, so a resumed
batch accepts callbacks for tasks an earlier process created; it is not written to the journal).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from kierouter._errors import (
    AmbiguousSubmissionError,
    AuthError,
    ConfigurationError,
    InsufficientCreditsError,
    KieRouterError,
)
from kierouter._models import Attempt, ImageFile, ImageRequest
from kierouter.journal import JobRecord, RouterJournal, SqliteJournal

from ._input import BatchRow
from ._pacer import BudgetReachedError, CreatePacer, PacedGate
from ._plan import USD_PER_CREDIT, BatchPlan, plan_batch, step_policy, step_request

if TYPE_CHECKING:
    from kierouter._router import Router

__all__ = [
    "JOURNAL_FILE",
    "MANIFEST_FILE",
    "BatchBudgetError",
    "BatchReport",
    "BatchSettings",
    "batch_status",
    "plan_rows",
    "resume_batch",
    "run_batch",
    "write_manifest",
]

JOURNAL_FILE = "journal.sqlite"
"""The journal of a batch, inside its output folder (SQLite, WAL)."""
MANIFEST_FILE = "manifest.jsonl"
"""One JSON line per job, inside the output folder: its row, attempts, credits and files."""
SECRET_FILE = ".callback-secret"


class BatchBudgetError(ConfigurationError):
    """The batch's expected cost exceeds ``--budget``: it is not started."""

    def __init__(self, expected: float, budget: float, spent: float = 0.0) -> None:
        self.expected = expected
        self.budget = budget
        already = f" ({spent:g} already spent)" if spent else ""
        super().__init__(
            f"the batch is expected to cost {expected:g} credits{already}, over the budget of "
            f"{budget:g}; nothing was started. Raise --budget or trim the batch"
        )


@dataclass(kw_only=True)
class BatchSettings:
    """How a batch runs. Stored in the journal (no secrets) so ``resume`` needs only the folder.

    Attributes:
        policy: default policy of rows that name none (``auto`` when ``None``).
        budget: credits the batch may spend (expected cost checked before starting; creates
            refused once spent plus in-flight would pass it).
        concurrency: rows in progress at once (each row's steps run one after another).
        create_limit / create_window: at most this many creates per window (KIE: 20 per 10 s).
        base_url: KIE's address (``None``: ``$KIE_BASE_URL`` or api.kie.ai); an emulator's URL.
        sim: run an emulator in-process (``--sim``); ``loopback`` is implied.
        loopback: the API is a local emulator: downloads from loopback allowed, callbacks are
            received on ``127.0.0.1``.
        time_scale: the emulator's time scale (model latencies are divided by it).
        scenario: with ``sim``, a scenario TOML for the emulator (faults, model behaviour,
            Market models it does not ship; see ``docs/emulator.md``); unused without ``sim``.
        listen / public_url: receive KIE's callbacks (``host:port`` / URL KIE reaches).
        read_rate: status reads per second.
    """

    policy: str | None = None
    budget: float | None = None
    concurrency: int = 100
    create_limit: int = 20
    create_window: float = 10.0
    base_url: str | None = None
    sim: bool = False
    loopback: bool = False
    time_scale: float = 1.0
    scenario: str | None = None
    listen: str | None = None
    public_url: str | None = None
    read_rate: float = 10.0
    listen_port: int = 0

    def check(self) -> None:
        """Raise :class:`ConfigurationError` for impossible values."""
        if self.concurrency < 1:
            raise ConfigurationError("--concurrency must be at least 1")
        if self.create_limit < 1 or self.create_window <= 0:
            raise ConfigurationError("--create-rate must be >= 1 and --create-window > 0")
        if self.time_scale <= 0:
            raise ConfigurationError("--time-scale must be positive")
        if self.budget is not None and self.budget < 0:
            raise ConfigurationError("--budget must be >= 0")


class BatchReport(msgspec.Struct, kw_only=True):
    """How a run (or resume) ended."""

    out_dir: str
    counts: dict[str, int]
    jobs: int
    spent: float
    usd: float
    budget: float | None
    budget_reached: bool
    stopped: str | None
    unknown: list[str]
    failed: list[str]
    manifest: str
    elapsed: float
    created_this_run: int
    #: ``auth`` (KIE refused the key) or ``credits`` (the account ran dry) when KIE stopped it
    halted: str | None = None

    @property
    def complete(self) -> bool:
        """True when every job is downloaded."""
        return self.counts.get("downloaded", 0) == self.jobs


# -- journal specs ---------------------------------------------------------------------------


def _spec(row: BatchRow, step: str, expected: float) -> dict[str, Any]:
    return {
        "row": row.index,
        "line": row.line,
        "row_key": row.key,
        "step": step,
        "steps": list(row.steps),
        "policy": row.policy,
        "request": msgspec.to_builtins(row.request),
        "expected_credits": expected,
    }


def _rows_from(jobs: Iterable[JobRecord]) -> list[BatchRow]:
    rows: dict[str, BatchRow] = {}
    for job in jobs:
        spec = job.spec
        if spec["row_key"] in rows:
            continue
        rows[spec["row_key"]] = BatchRow(
            index=spec["row"],
            line=spec["line"],
            key=spec["row_key"],
            request=msgspec.convert(spec["request"], ImageRequest),
            policy=spec["policy"],
            steps=tuple(spec["steps"]),
        )
    return list(rows.values())


def _secret(out_dir: Path) -> str:
    path = out_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value)
    return value


def _sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


# -- manifest and status ---------------------------------------------------------------------


def write_manifest(backend: SqliteJournal, out_dir: Path) -> Path:
    """Rewrite ``manifest.jsonl`` from the journal: one line per downloaded job."""
    attempts: dict[str, list[dict[str, Any]]] = {}
    for a in backend.attempts():
        if a.outcome == "skipped":
            continue
        attempts.setdefault(a.job_key, []).append(
            {
                "model": a.model,
                "outcome": a.outcome or a.phase,
                "task_id": a.task_id,
                "credits": a.credits,
                "reason": a.reason,
            }
        )
    lines = []
    for job in backend.jobs(["downloaded"]):
        spec = job.spec
        result = job.result
        files = [
            {
                "path": os.path.relpath(f.path, out_dir),
                "sha256": f.sha256,
                "size": f.size,
                "content_type": f.content_type,
            }
            for f in job.files
        ]
        tried = attempts.get(job.key, [])
        lines.append(
            {
                "job_key": job.key,
                "row": spec["row"],
                "line": spec["line"],
                "id": spec["row_key"],
                "step": spec["step"],
                "prompt": spec["request"].get("prompt", ""),
                "served_model": result.served_model if result else job.model,
                "attempts": tried,
                "task_ids": [t["task_id"] for t in tried if t["task_id"]],
                "credits": job.credits,
                "seed": spec["request"].get("seed"),
                "path": files[0]["path"] if files else None,
                "sha256": files[0]["sha256"] if files else None,
                "files": files,
            }
        )
    path = out_dir / MANIFEST_FILE
    temp = out_dir / f".{MANIFEST_FILE}.{secrets.token_hex(4)}"
    with temp.open("wb") as out:
        for line in lines:
            out.write(msgspec.json.encode(line) + b"\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)
    return path


def _resolve(out_dir: str | os.PathLike[str]) -> Path:
    return Path(out_dir).resolve()


def _open(out_dir: Path) -> SqliteJournal:
    path = out_dir / JOURNAL_FILE
    if not path.exists():
        raise ConfigurationError(f"{out_dir} holds no batch journal ({JOURNAL_FILE})")
    return SqliteJournal(path)


def batch_status(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Counts per state, credits, and the jobs that need attention, read from the journal."""
    folder = Path(out_dir)
    backend = _open(folder)
    try:
        meta = backend.get_meta("batch") or {}
        jobs = backend.jobs()
        counts = backend.counts()
        spent = backend.spent()
        attempts = backend.attempts()
        return {
            "out_dir": str(folder),
            "source": meta.get("source"),
            "jobs": len(jobs),
            "rows": len({j.spec["row_key"] for j in jobs}),
            "counts": counts,
            "spent": round(spent, 6),
            "usd": round(spent * USD_PER_CREDIT, 6),
            "expected_credits": meta.get("expected_credits"),
            "budget": meta.get("budget"),
            "creates": sum(1 for a in attempts if a.reached_kie),
            "unknown": [j.key for j in jobs if j.state in ("unknown", "submitting")],
            "failed": [{"job_key": j.key, "error": j.error} for j in jobs if j.state == "failed"],
            "complete": counts["downloaded"] == len(jobs),
        }
    finally:
        backend.close()


# -- planning ----------------------------------------------------------------------------------


def plan_rows(
    rows: list[BatchRow],
    settings: BatchSettings,
    *,
    plugins: Sequence[object] | None = None,
    source: str = "<batch>",
    config: Any = None,
) -> BatchPlan:
    """Price a batch with no network call (see :func:`kierouter.batch.plan_batch`).

    ``config`` is a loaded kierouter configuration (its ``[policies]`` and ``[prices]``)."""
    from kierouter._router import Router

    router = Router(plugins, policy=settings.policy or "auto", config=config)
    return plan_batch(
        router,
        rows,
        policy=settings.policy,
        create_limit=settings.create_limit,
        create_window=settings.create_window,
        source=source,
    )


# -- the run -------------------------------------------------------------------------------------

ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass(eq=False)
class _Run:
    out_dir: Path
    backend: SqliteJournal
    settings: BatchSettings
    api_key: str | None
    plugins: Sequence[object] | None
    progress: ProgressCallback | None
    progress_interval: float
    config: Any = None
    requests: dict[str, ImageRequest] = field(default_factory=dict)
    halted: KieRouterError | None = None
    router: Router | None = None
    gate: PacedGate | None = None
    started: float = field(default_factory=time.monotonic)
    done_at_start: int = 0

    # -- setup ---------------------------------------------------------------------------------

    def _cost(self, job_key: str, model: str) -> float:
        assert self.router is not None
        request = self.requests.get(job_key)
        card = self.router.registry.cards.get(model)
        return card.credits_for(request) if card is not None else 0.0

    def _build_router(self, base_url: str, port: int) -> Router:
        from kierouter._router import Router, WebhookConfig
        from kierouter._transport import KieClient

        s = self.settings
        scale = s.time_scale if (s.sim or s.loopback) else 1.0
        client = KieClient(
            self.api_key,
            base_url=base_url,
            create_limit=s.create_limit,
            create_window=s.create_window,
            read_rate=s.read_rate,
        )
        webhook = None
        secret = _secret(self.out_dir)
        if s.sim or s.loopback:
            webhook = WebhookConfig(listen=f"127.0.0.1:{port}", token_secret=secret)
        elif s.listen or s.public_url:
            webhook = WebhookConfig(
                listen=s.listen,
                public_url=s.public_url,
                token_secret=secret,
                hmac_key=os.environ.get("KIE_WEBHOOK_HMAC_KEY") or None,
            )
        self.gate = PacedGate(
            CreatePacer(s.create_limit, s.create_window),
            self.backend,
            budget=s.budget,
            cost_of=self._cost,
        )
        journal = RouterJournal(self.backend, gate=self.gate)
        return Router(
            self.plugins,
            client=client,
            policy=s.policy or "auto",
            journal=journal,
            webhook=webhook,
            latency_scale=1.0 / scale,
            allow_private_downloads=s.sim or s.loopback,
            out_dir=self.out_dir,
            config=self.config,
        )

    async def _start_router(self, base_url: str) -> Router:
        port = self.settings.listen_port if (self.settings.sim or self.settings.loopback) else 0
        router = self._build_router(base_url, port)
        try:
            await router.start()
        except OSError:
            await router.aclose()
            await router.client.aclose()
            router = self._build_router(base_url, 0)  # the old port is taken: callbacks to it
            await router.start()  # are lost, polling picks those tasks up
        url = router.public_url
        if url and (self.settings.sim or self.settings.loopback):
            self.settings.listen_port = urlsplit(url).port or 0
            self._save_settings()
        return router

    def _save_settings(self) -> None:
        meta = self.backend.get_meta("batch") or {}
        meta["settings"] = msgspec.to_builtins(self.settings.__dict__)
        self.backend.set_meta("batch", meta)

    # -- progress --------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        counts = self.backend.counts()
        total = sum(counts.values())
        done = counts["downloaded"] + counts["failed"]
        elapsed = time.monotonic() - self.started
        finished_here = done - self.done_at_start
        eta = None
        if finished_here > 0 and done < total:
            eta = (total - done) * elapsed / finished_here
        spent = self.backend.spent()
        return {
            "counts": counts,
            "jobs": total,
            "done": done,
            "spent": round(spent, 4),
            "usd": round(spent * USD_PER_CREDIT, 4),
            "elapsed": round(elapsed, 2),
            "eta": None if eta is None else round(eta, 1),
            "budget": self.settings.budget,
        }

    async def _report_progress(self) -> None:
        assert self.progress is not None
        while True:
            await asyncio.sleep(self.progress_interval)
            with contextlib.suppress(Exception):
                self.progress(self.snapshot())

    # -- executing -------------------------------------------------------------------------------

    def _prepare_journal(self, requeue_unknown: bool) -> None:
        for stale in self.out_dir.glob(".*.part"):
            with contextlib.suppress(OSError):
                stale.unlink()  # a download cut short by a kill
        for job in self.backend.jobs(["submitting"]):
            self.backend.mark_unknown(
                job.key, "the batch stopped while this create was in flight; not resubmitted"
            )
        if requeue_unknown:
            for job in self.backend.jobs(["unknown"]):
                self.backend.requeue_unknown(job.key)

    async def execute(self, *, requeue_unknown: bool = False) -> BatchReport:
        self._prepare_journal(requeue_unknown)
        counts = self.backend.counts()
        self.done_at_start = counts["downloaded"] + counts["failed"]
        created_before = sum(1 for a in self.backend.attempts() if a.reached_kie)
        rows = _rows_from(self.backend.jobs())
        async with contextlib.AsyncExitStack() as stack:
            base_url = self.settings.base_url
            if self.settings.sim:
                from kierouter.sim import Emulator

                emu = await stack.enter_async_context(
                    Emulator(
                        time_scale=self.settings.time_scale,
                        create_limit=self.settings.create_limit,
                        create_window=self.settings.create_window,
                        scenario=self.settings.scenario,
                    )
                )
                base_url, self.api_key = emu.base_url, emu.api_key
            router = await self._start_router(base_url or "")
            self.router = router
            stack.push_async_callback(router.client.aclose)
            stack.push_async_callback(router.aclose)
            if router.webhook is not None:
                for job in self.backend.jobs(["unknown", "submitted"]):
                    router.webhook_app.expect(job.key)  # queue callbacks that come early
            reporter = None
            if self.progress is not None:
                reporter = asyncio.ensure_future(self._report_progress())
            try:
                # ``concurrency`` workers take rows in order from one iterator: memory stays
                # flat however long the batch, and a crash cancels the other workers cleanly.
                pending = iter(rows)
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(self.settings.concurrency, len(rows))):
                        group.create_task(self._worker(pending))
            finally:
                if reporter is not None:
                    reporter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reporter
        manifest = write_manifest(self.backend, self.out_dir)
        if self.progress is not None:
            self.progress(self.snapshot())
        jobs = self.backend.jobs()
        counts = self.backend.counts()
        spent = self.backend.spent()
        stopped = None
        gate = self.gate
        if self.halted is not None:
            stopped = str(self.halted)
        elif gate is not None and gate.stopped is not None:
            stopped = f"budget reached: {spent:g} of {gate.budget:g} credits spent"
        return BatchReport(
            out_dir=str(self.out_dir),
            counts=counts,
            jobs=len(jobs),
            spent=round(spent, 6),
            usd=round(spent * USD_PER_CREDIT, 6),
            budget=self.settings.budget,
            budget_reached=gate is not None and gate.stopped is not None,
            stopped=stopped,
            unknown=[j.key for j in jobs if j.state == "unknown"],
            failed=[j.key for j in jobs if j.state == "failed"],
            manifest=str(manifest),
            elapsed=round(time.monotonic() - self.started, 3),
            created_this_run=sum(1 for a in self.backend.attempts() if a.reached_kie)
            - created_before,
            halted=(
                None
                if self.halted is None
                else "credits"
                if isinstance(self.halted, InsufficientCreditsError)
                else "auth"
            ),
        )

    def _stopped(self) -> bool:
        return self.halted is not None or (self.gate is not None and self.gate.stopped is not None)

    async def _worker(self, rows: Iterator[BatchRow]) -> None:
        for row in rows:
            await self._row(row)

    async def _row(self, row: BatchRow) -> None:
        previous: str | None = None
        for step in row.steps:
            job = self.backend.job(row.job_key(step))
            if job is None or job.state == "failed":
                return
            if job.state != "downloaded":
                if self._stopped():
                    return
                job = await self._job(job, row, step, step_request(row, step, previous))
            if job.state != "downloaded" or job.result is None or not job.result.urls:
                return
            previous = job.result.urls[0]

    async def _job(
        self, job: JobRecord, row: BatchRow, step: str, request: ImageRequest
    ) -> JobRecord:
        router = self.router
        assert router is not None and self.gate is not None
        key = job.key
        self.requests[key] = request
        policy = step_policy(row, step, self.settings.policy)
        if job.state == "unknown" and router.webhook is None:
            return job  # only a callback can name the task: stays unknown, reported
        try:
            if job.state == "planned":
                await router.generate(request, policy=policy, job_key=key, out_dir=self.out_dir)
            elif job.state in ("submitted", "unknown") and job.model:
                prior = [
                    Attempt(
                        model=a.model,
                        outcome=a.outcome,  # type: ignore[arg-type]
                        reason=a.reason,
                        task_id=a.task_id,
                        credits=a.credits,
                        seed=a.seed,
                    )
                    for a in self.backend.attempts(key)
                    if a.phase == "ended" and a.outcome not in (None, "skipped")
                ]
                await router.resume(
                    request,
                    job_key=key,
                    model=job.model,
                    task_id=job.task_id if job.state == "submitted" else None,
                    attempt_no=max(job.attempt_no, 1),
                    prior_attempts=prior,
                    policy=policy,
                    out_dir=self.out_dir,
                )
        except BudgetReachedError:
            pass  # the job stays planned; resume with a larger budget
        except AmbiguousSubmissionError:
            pass  # stays unknown: reconciled by a later callback or status read, never resent
        except (AuthError, InsufficientCreditsError) as exc:
            self.halted = exc
        except KieRouterError as exc:
            current = self.backend.job(key)
            if current is not None and current.state == "planned":  # no live task left
                self.backend.mark_failed(key, str(exc))
        finally:
            self.gate.ended(key)
        current = self.backend.job(key)
        assert current is not None
        if current.state == "succeeded":
            await self._downloaded(current)
            current = self.backend.job(key)
            assert current is not None
        return current

    async def _downloaded(self, job: JobRecord) -> None:
        """Check the files of a succeeded job (re-fetch missing ones), then mark it."""
        result = job.result
        assert result is not None and self.router is not None
        files = list(result.files)
        intact = bool(files) and all(_sha256(f.path) == f.sha256 for f in files)
        if not intact:
            files = await self._fetch_again(job)
        if files:
            self.backend.mark_downloaded(job.key, files)

    async def _fetch_again(self, job: JobRecord) -> list[ImageFile]:
        from kierouter._downloads import Downloader

        router = self.router
        assert router is not None and job.task_id and job.model
        try:
            status = await router.task(job.task_id, model=job.model).status()
            downloader = Downloader(
                router.client, allow_private=self.settings.sim or self.settings.loopback
            )
            provider = router.registry.provider(job.model)
            return [
                await downloader.fetch(
                    url, self.out_dir, f"{job.key}-{i}", task_id=job.task_id, provider=provider
                )
                for i, url in enumerate(status.urls, start=1)
            ]
        except KieRouterError as exc:
            self.backend.mark_failed(job.key, f"result could not be downloaded again: {exc}")
            return []


def _settings_from(meta: dict[str, Any]) -> BatchSettings:
    stored = meta.get("settings") or {}
    known = {k: v for k, v in stored.items() if k in BatchSettings.__dataclass_fields__}
    return BatchSettings(**known)


def _new_batch(
    rows: list[BatchRow],
    out_dir: str | os.PathLike[str],
    settings: BatchSettings,
    plan: BatchPlan,
    source: str,
) -> tuple[Path, SqliteJournal]:
    """Create the folder and its journal with every job planned."""
    folder = Path(out_dir).resolve()
    if (folder / JOURNAL_FILE).exists():
        raise ConfigurationError(
            f"{folder} already holds a batch; continue it with 'kierouter batch resume {folder}'"
        )
    folder.mkdir(parents=True, exist_ok=True)
    backend = SqliteJournal(folder / JOURNAL_FILE)
    expected = {j.job_key: j.expected_credits for j in plan.jobs}
    backend.set_meta(
        "batch",
        {
            "source": source,
            "rows": len(rows),
            "expected_credits": plan.expected_credits,
            "worst_case_credits": plan.worst_case_credits,
            "budget": settings.budget,
            "settings": msgspec.to_builtins(settings.__dict__),
            "created_at": time.time(),
        },
    )
    backend.add_jobs(
        (row.job_key(step), _spec(row, step, expected.get(row.job_key(step), 0.0)))
        for row in rows
        for step in row.steps
    )
    return folder, backend


async def run_batch(
    rows: list[BatchRow],
    out_dir: str | os.PathLike[str],
    settings: BatchSettings,
    *,
    api_key: str | None = None,
    plugins: Sequence[object] | None = None,
    source: str = "<batch>",
    progress: ProgressCallback | None = None,
    progress_interval: float = 1.0,
    plan: BatchPlan | None = None,
    config: Any = None,
) -> BatchReport:
    """Plan, price-check, journal and run a batch into ``out_dir``.

    Raises :class:`BatchBudgetError` (nothing started) when the plan's expected credits exceed
    ``settings.budget``, and :class:`~kierouter.ConfigurationError` when ``out_dir`` already
    holds a batch (use :func:`resume_batch`).
    """
    settings.check()
    if plan is None:
        plan = plan_rows(rows, settings, plugins=plugins, source=source, config=config)
    if settings.budget is not None and plan.expected_credits > settings.budget + 1e-9:
        raise BatchBudgetError(plan.expected_credits, settings.budget)
    folder, backend = _new_batch(rows, out_dir, settings, plan, source)
    try:
        run = _Run(folder, backend, settings, api_key, plugins, progress, progress_interval, config)
        return await run.execute()
    finally:
        backend.close()


async def resume_batch(
    out_dir: str | os.PathLike[str],
    *,
    api_key: str | None = None,
    plugins: Sequence[object] | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 1.0,
    requeue_unknown: bool = False,
    config: Any = None,
    **overrides: Any,
) -> BatchReport:
    """Continue a batch after any interruption; never creates a task twice.

    Jobs with a task id are awaited and downloaded; creates left in flight become ``unknown``
    and wait for their callback; ``requeue_unknown=True`` (an explicit operator decision, which
    may pay twice) creates those again. ``overrides`` replace stored settings (``budget``,
    ``concurrency``, ``base_url``, ...).
    """
    folder = _resolve(out_dir)
    backend = _open(folder)
    try:
        meta = backend.get_meta("batch") or {}
        settings = _settings_from(meta)
        for name, value in overrides.items():
            if name not in BatchSettings.__dataclass_fields__:
                raise ConfigurationError(f"unknown batch setting {name!r}")
            if value is not None:
                setattr(settings, name, value)
        settings.check()
        if settings.budget is not None:
            spent = backend.spent()
            remaining = sum(
                float(j.spec.get("expected_credits", 0.0))
                for j in backend.jobs(["planned", "submitting", "submitted", "unknown"])
            )
            if spent + remaining > settings.budget + 1e-9:
                raise BatchBudgetError(spent + remaining, settings.budget, spent)
        meta["budget"] = settings.budget
        backend.set_meta("batch", meta)
        run = _Run(folder, backend, settings, api_key, plugins, progress, progress_interval, config)
        run._save_settings()
        return await run.execute(requeue_unknown=requeue_unknown)
    finally:
        backend.close()
