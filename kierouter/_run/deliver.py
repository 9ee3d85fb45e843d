"""Stage 4, deliver: save a finished (billed) task's images. Delivery is not generation.

Each image is streamed, checked and renamed into place by the router's
:class:`~kierouter._downloads.Downloader` (a few quick tries for a 5xx or a dropped connection;
an expired link is re-minted through KIE's download-url). When an image still could not be
saved, the remaining ones get ``PollConfig.download_retries`` more rounds, backing off like a
create retry and asking download-url for fresh links first. A download that keeps failing, a
refused address or a full disk never makes the job create another task: the job ends
``undelivered`` with the task id, every URL and the credits kept, and ``kierouter fetch`` or
``batch resume`` saves the images later, while KIE's links last.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kierouter._errors import DownloadError

if TYPE_CHECKING:
    from kierouter._models import ImageFile, ModelCard
    from kierouter.provider import Provider

    from .context import RunContext

__all__ = ["Delivered", "deliver"]


@dataclass(frozen=True)
class Delivered:
    """What a delivery saved, and why it stopped short when it did."""

    files: tuple[ImageFile, ...]
    #: why some image could not be saved ("" when every one was)
    error: str = ""
    #: KIE's links for the missing images no longer answer, even re-minted
    expired: bool = False

    @property
    def complete(self) -> bool:
        """True when every image is on disk."""
        return not self.error


async def deliver(
    ctx: RunContext,
    *,
    card: ModelCard,
    provider: Provider,
    task_id: str | None,
    urls: tuple[str, ...],
    target: Path,
    stem: str,
    job_key: str = "",
) -> Delivered:
    """Save every image of a finished task into ``target`` as ``{stem}-{n}``; see the module."""
    if not urls:
        return Delivered((), "KIE reported the task finished but named no result URL")
    saved: dict[int, ImageFile] = {}
    rounds = 1 + ctx.completion.poll.download_retries
    error: DownloadError | None = None
    for round_no in range(rounds):
        if round_no:
            delay = ctx.retry_backoff * 2 ** (round_no - 1) * ctx.latency_scale
            delay *= 1 + ctx.rng.uniform(-0.2, 0.2)
            ctx.events.emit(
                "retried",
                job_key,
                model=card.id,
                task_id=task_id,
                detail=f"download: {error}",
                data={"wait": round(delay, 3)},
            )
            await asyncio.sleep(delay)
        for index, url in enumerate(urls, start=1):
            if index in saved:
                continue
            try:
                file = await ctx.downloader.fetch(
                    url,
                    target,
                    f"{stem}-{index}",
                    task_id=task_id,
                    provider=provider,
                    remint=round_no > 0,
                )
            except DownloadError as exc:
                error = exc
                if exc.permanent:
                    return _short(saved, exc)
                continue
            saved[index] = file
            ctx.events.emit("downloaded", job_key, task_id=task_id, detail=file.path)
        if len(saved) == len(urls):
            return Delivered(tuple(saved[i] for i in sorted(saved)))
    assert error is not None
    return _short(saved, error)


def _short(saved: dict[int, ImageFile], error: DownloadError) -> Delivered:
    files = tuple(saved[i] for i in sorted(saved))
    return Delivered(files, str(error) or type(error).__name__, expired=error.expired)
