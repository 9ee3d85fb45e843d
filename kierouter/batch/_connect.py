"""The router a batch runs (or fetches) with: its KIE client, create pacing, callbacks, budget.

Shared by ``batch run``/``resume`` and ``kierouter fetch`` so both talk to KIE the same way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from kierouter._upload_cache import SqliteUploadCache
from kierouter.journal import RouterJournal, SqliteJournal

from ._pacer import CreatePacer, PacedGate
from ._settings import JOURNAL_FILE, SECRET_FILE, BatchSettings

if TYPE_CHECKING:
    from kierouter._router import Router

__all__ = ["open_router", "save_settings"]


def _secret(out_dir: Path) -> str:
    path = out_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value)
    return value


def save_settings(backend: SqliteJournal, settings: BatchSettings) -> None:
    """Store ``settings`` in the journal's metadata (no secrets are in them)."""
    meta = backend.get_meta("batch") or {}
    meta["settings"] = msgspec.to_builtins(settings.__dict__)
    backend.set_meta("batch", meta)


def _build(
    out_dir: Path,
    backend: SqliteJournal,
    settings: BatchSettings,
    *,
    base_url: str,
    api_key: str | None,
    plugins: Sequence[object] | None,
    config: Any,
    port: int,
) -> Router:
    from kierouter._router import Router, WebhookConfig
    from kierouter._transport import KieClient

    s = settings
    local = s.sim or s.loopback
    client = KieClient(
        api_key,
        base_url=base_url,
        create_limit=s.create_limit,
        create_window=s.create_window,
        read_rate=s.read_rate,
    )
    webhook = None
    secret = _secret(out_dir)
    if local:
        webhook = WebhookConfig(listen=f"127.0.0.1:{port}", token_secret=secret)
    elif s.listen or s.public_url:
        webhook = WebhookConfig(
            listen=s.listen,
            public_url=s.public_url,
            token_secret=secret,
            hmac_key=os.environ.get("KIE_WEBHOOK_HMAC_KEY") or None,
        )
    gate = PacedGate(CreatePacer(s.create_limit, s.create_window))
    budget = None
    if s.budget is not None:  # what is left of it: the journal knows what was charged before
        budget = max(0.0, s.budget - backend.spent())
    return Router(
        plugins,
        client=client,
        policy=s.policy or "auto",
        journal=RouterJournal(backend, gate=gate),
        webhook=webhook,
        latency_scale=1.0 / (s.time_scale if local else 1.0),
        allow_private_downloads=local,
        out_dir=out_dir,
        config=config,
        budget=budget,
        upload_cache=SqliteUploadCache(out_dir / JOURNAL_FILE),  # uploads: a table of their own
    )


async def open_router(
    stack: contextlib.AsyncExitStack,
    out_dir: Path,
    backend: SqliteJournal,
    settings: BatchSettings,
    *,
    api_key: str | None,
    plugins: Sequence[object] | None,
    config: Any,
) -> Router:
    """Start the batch's router (and, with ``settings.sim``, its in-process emulator) on
    ``stack``. A local emulator's callbacks come back on the port the batch used before, when
    it is free, so tasks created by an earlier process still reach it."""
    base_url = settings.base_url
    if settings.sim:
        from kierouter.sim import Emulator

        emu = await stack.enter_async_context(
            Emulator(
                time_scale=settings.time_scale,
                create_limit=settings.create_limit,
                create_window=settings.create_window,
                scenario=settings.scenario,
            )
        )
        base_url, api_key = emu.base_url, emu.api_key
    local = settings.sim or settings.loopback
    options: dict[str, Any] = {
        "base_url": base_url or "",
        "api_key": api_key,
        "plugins": plugins,
        "config": config,
    }
    router = _build(
        out_dir, backend, settings, port=settings.listen_port if local else 0, **options
    )
    try:
        await router.start()
    except OSError:
        await router.aclose()
        await router.client.aclose()
        # the old port is taken: callbacks to it are lost, polling picks those tasks up
        router = _build(out_dir, backend, settings, port=0, **options)
        await router.start()
    stack.push_async_callback(router.client.aclose)
    stack.push_async_callback(router.aclose)
    url = router.public_url
    if url and local:
        settings.listen_port = urlsplit(url).port or 0
        save_settings(backend, settings)
    return router
