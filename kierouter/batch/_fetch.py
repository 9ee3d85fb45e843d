"""Saving a batch's paid-but-undelivered images again (``kierouter fetch DIR``): by downloading
from the tasks KIE already made, never by creating one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import msgspec

from kierouter._errors import ConfigurationError, DownloadError

from ._connect import open_router
from ._job import save_job
from ._manifest import folder_of, open_journal, write_manifest
from ._settings import BatchSettings

__all__ = ["FetchReport", "fetch_batch"]


class FetchReport(msgspec.Struct, kw_only=True):
    """What :func:`fetch_batch` saved, and what it could not.

    ``fetched`` holds ``{job_key, task_id, model, files}`` per job now ``downloaded``;
    ``undelivered`` holds ``{job_key, task_id, model, urls, credits, reason, expired}`` per job
    still not saved (``expired``: KIE's links no longer answer, even re-minted).
    """

    out_dir: str
    fetched: list[dict[str, Any]]
    undelivered: list[dict[str, Any]]
    manifest: str

    @property
    def complete(self) -> bool:
        """True when nothing is left undelivered."""
        return not self.undelivered


async def fetch_batch(
    out_dir: str | os.PathLike[str],
    *,
    job_key: str | None = None,
    api_key: str | None = None,
    plugins: Sequence[object] | None = None,
    config: Any = None,
    **overrides: Any,
) -> FetchReport:
    """Download again the images of every ``undelivered`` job of the batch in ``out_dir`` (or
    of ``job_key`` alone) from the task KIE already made; nothing is created.

    Each job saved moves to ``downloaded`` and the manifest is rewritten. ``overrides``
    replace stored settings (``base_url``, ...). Raises
    :class:`~kierouter.ConfigurationError` for a job key the batch does not have, or a batch
    that ran on an in-process emulator (``--sim``), whose tasks are gone with it.
    """
    folder = folder_of(out_dir)
    backend = open_journal(folder)
    try:
        settings = BatchSettings.stored(backend.get_meta("batch") or {})
        for name, value in overrides.items():
            if value is not None:
                setattr(settings, name, value)
        if job_key is not None:
            job = backend.job(job_key)
            if job is None:
                raise ConfigurationError(f"the batch in {folder} has no job {job_key!r}")
            jobs = [job] if job.state in ("undelivered", "succeeded") else []
        else:
            jobs = backend.jobs(["undelivered", "succeeded"])
        if jobs and settings.sim:
            raise ConfigurationError(
                "this batch ran on an in-process emulator (--sim), which ended with it: its "
                "tasks and their images are gone. Re-run it, or run batches against "
                "'kierouter sim' (--sim-url) to be able to fetch later"
            )
        fetched: list[dict[str, Any]] = []
        undelivered: list[dict[str, Any]] = []
        if jobs:
            async with contextlib.AsyncExitStack() as stack:
                router = await open_router(
                    stack, folder, backend, settings, api_key=api_key, plugins=plugins,
                    config=config,
                )  # fmt: skip
                for job in jobs:
                    error = await save_job(router, backend, folder, job)
                    entry: dict[str, Any] = {
                        "job_key": job.key,
                        "task_id": job.task_id,
                        "model": job.model,
                    }
                    if error is None:
                        saved = backend.job(job.key)
                        files = saved.files if saved is not None else ()
                        fetched.append({**entry, "files": [f.path for f in files]})
                        continue
                    undelivered.append(
                        {
                            **entry,
                            "urls": list(job.result.urls) if job.result else [],
                            "credits": job.credits,
                            "reason": str(error),
                            "expired": isinstance(error, DownloadError) and error.expired,
                        }
                    )
        manifest = write_manifest(backend, folder)
        return FetchReport(
            out_dir=str(folder), fetched=fetched, undelivered=undelivered, manifest=str(manifest)
        )
    finally:
        backend.close()
