"""``kierouter upload FILE...``: upload local images to KIE and print the URLs models take.

For users who manage inputs themselves (``generate --image`` uploads by itself). Each file is
checked first (a PNG, JPEG or WEBP by its bytes); the same content is uploaded once and reused
from the cache under the user's data folder while KIE keeps it (3 days, less a day's margin).
Prints one URL a line, in the order given; ``--json`` prints one object per file. KIE deletes
uploaded files after about 3 days. ``--sim-url`` uploads to a running emulator (there is no
``--sim``: an emulator started for this command would take its files with it when it stops).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from ._common import CliError, print_json

if TYPE_CHECKING:
    from kierouter._upload_cache import UploadedFile

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``upload`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "upload",
        help="upload local images to KIE and print their URLs (kept about 3 days)",
        description="Upload PNG, JPEG or WEBP files to KIE's file host and print the URL of each, "
        "for use as reference images. Files already uploaded are not sent again while KIE keeps "
        "them.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="image files to upload")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="upload even when the same content was uploaded recently",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--sim-url",
        metavar="URL",
        help="upload to a running emulator (kierouter sim) at URL, key $KIE_SIM_API_KEY or sim-key",
    )
    where.add_argument(
        "--base-url", metavar="URL", help="KIE's API base URL (default $KIE_BASE_URL)"
    )
    # not offered, but answered: --sim works on every other command, so users will try it here
    where.add_argument("--sim", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.sim_url:
        import os

        return {"base_url": args.sim_url, "api_key": os.environ.get("KIE_SIM_API_KEY") or "sim-key"}
    return {"base_url": args.base_url}


async def _upload(args: argparse.Namespace) -> list[UploadedFile]:
    from kierouter._inputs import check_input
    from kierouter._transport import KieClient
    from kierouter._upload_cache import MemoryUploadCache, SqliteUploadCache
    from kierouter._uploads import Uploader

    for n, path in enumerate(args.files):  # every file checked before the first is sent
        check_input(path, f"files[{n}]")
    cache = MemoryUploadCache() if args.no_cache else SqliteUploadCache.default()
    async with KieClient(**_client_options(args)) as client:
        uploader = Uploader(client, cache=cache)
        try:
            uploads = (uploader.upload(p, field=f"files[{n}]") for n, p in enumerate(args.files))
            return list(await asyncio.gather(*uploads))
        finally:
            uploader.close()


def run(args: argparse.Namespace) -> int:
    """Upload the files; print their URLs."""
    if args.sim:
        raise CliError(
            "upload has no --sim: an emulator started for this command would take the files "
            "with it when it stops. start one with `kierouter sim` and pass --sim-url URL"
        )
    files = asyncio.run(_upload(args))
    if args.json:
        print_json(
            [
                {
                    "file": path,
                    "url": file.url,
                    "sha256": file.sha256,
                    "size": file.size,
                    "mime": file.mime,
                    "uploaded_at": file.uploaded_at,
                    "reused": file.reused,
                }
                for path, file in zip(args.files, files, strict=True)
            ]
        )
    else:
        sys.stdout.write("".join(f"{file.url}\n" for file in files))
    return 0
