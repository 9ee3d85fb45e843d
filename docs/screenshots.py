"""Screenshots of the built docs in headless Chromium, light and dark, to look at before a release.

Builds the site into a temporary folder, serves it on loopback, and has Chromium photograph the
pages readers land on (quickstart, concepts, policies, models, performance, the API reference),
each in a window tall enough to show its figures, once in the light scheme and once in the dark
one (the site follows the system's scheme until a reader picks one; ``--force-dark-mode`` makes
Chromium's dark).

Needs a ``chromium`` on PATH (Debian: ``apt-get install chromium``). Usage::

    uv run python docs/screenshots.py [OUT_DIR]    # default: <temp dir>/kierouter-screenshots
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PAGES", "main", "shoot"]

ROOT = Path(__file__).resolve().parents[1]
#: file name -> (page of the built site, window height): tall enough to reach its figures
PAGES = {
    "quickstart": ("", 2400),
    "concepts": ("concepts/", 7000),
    "policies": ("policies/", 2600),
    "models": ("models/", 2600),
    "performance": ("performance/", 6400),
    "api-router": ("api/router/", 3200),
    "api-policies": ("api/policies/", 3200),
}
_WIDTH = 1280
_CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=3000",  # let scripts (tabs, the scheme toggle) settle before the shot
)


def _build(site: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        check=True,
    )


@contextmanager
def _serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on a free loopback port; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log on the terminal."""


def shoot(chromium: str, url: str, out: Path, *, height: int, dark: bool) -> None:
    """One screenshot of ``url`` into ``out``, the window ``height`` pixels tall."""
    flags = [*_CHROMIUM_FLAGS, f"--window-size={_WIDTH},{height}"]
    if dark:
        flags.append("--force-dark-mode")
    subprocess.run(
        [chromium, *flags, f"--screenshot={out}", url],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Build, serve and photograph every page of :data:`PAGES` in both schemes."""
    args = list(sys.argv[1:] if argv is None else argv)
    out_dir = Path(args[0]) if args else Path(tempfile.gettempdir()) / "kierouter-screenshots"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.stderr.write("no chromium on PATH (Debian: apt-get install chromium)\n")
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        _build(site)
        with _serve(site) as base:
            for name, (path, height) in PAGES.items():
                for scheme in ("light", "dark"):
                    target = out_dir / f"{name}-{scheme}.png"
                    shoot(chromium, base + path, target, height=height, dark=scheme == "dark")
                    sys.stdout.write(f"{target}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
