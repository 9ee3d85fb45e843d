"""Where uploaded files are remembered, so the same content is uploaded once per retention window.

An entry is keyed by the upload host and the content's SHA-256 and holds KIE's ``downloadUrl``
and when it was uploaded. KIE keeps uploaded files about 3 days (:data:`UPLOAD_RETENTION`); the
:class:`~kierouter.Uploader` decides how long an entry may be reused.

* :class:`MemoryUploadCache`: a dict, the default of a :class:`~kierouter.Router`.
* :class:`SqliteUploadCache`: a table in a SQLite file. A batch keeps it in its own
  ``journal.sqlite`` (a table of its own, ``kierouter_uploads``); the CLI in
  ``uploads.sqlite`` under the user's data folder (:meth:`SqliteUploadCache.default`).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Protocol

import msgspec

__all__ = [
    "UPLOAD_RETENTION",
    "MemoryUploadCache",
    "SqliteUploadCache",
    "UploadCache",
    "UploadedFile",
    "user_data_dir",
]

UPLOAD_RETENTION = 3 * 24 * 3600.0
"""Seconds KIE keeps an uploaded file (3 days, KIE-API.md §3.5); older cache entries are dropped."""


class UploadedFile(msgspec.Struct, frozen=True, kw_only=True):
    """A file uploaded to KIE: the URL a model takes, and what was uploaded when.

    ``uploaded_at`` is a Unix time (seconds). ``reused`` is true when the URL came from the
    cache (or from an upload another job made at the same time) rather than a new upload.
    """

    url: str
    sha256: str
    size: int
    mime: str
    uploaded_at: float
    reused: bool = False


class UploadCache(Protocol):
    """What an :class:`~kierouter.Uploader` needs to remember uploads. Methods are synchronous
    and quick (a dict, a SQLite row)."""

    def get(self, host: str, sha256: str) -> UploadedFile | None:
        """The last upload of this content to ``host``, if remembered."""

    def put(self, host: str, file: UploadedFile) -> None:
        """Remember an upload to ``host``."""


class MemoryUploadCache:
    """Uploads remembered in memory, for the life of the object (a router's default)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], UploadedFile] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, host: str, sha256: str) -> UploadedFile | None:
        """The remembered upload of this content to ``host``, if any."""
        return self._entries.get((host, sha256))

    def put(self, host: str, file: UploadedFile) -> None:
        """Remember an upload to ``host``."""
        self._entries[(host, file.sha256)] = file


def user_data_dir() -> Path:
    """kierouter's folder for the user's data: ``$KIEROUTER_HOME`` when set, else the platform's
    data folder (``~/.local/share/kierouter`` or ``$XDG_DATA_HOME/kierouter`` on Linux,
    ``~/Library/Application Support/kierouter`` on macOS, ``%LOCALAPPDATA%\\kierouter`` on
    Windows)."""
    home = os.environ.get("KIEROUTER_HOME")
    if home:
        return Path(home).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "kierouter"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "kierouter"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kierouter"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS kierouter_uploads (
    host TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    url TEXT NOT NULL,
    size INTEGER NOT NULL,
    mime TEXT NOT NULL,
    uploaded_at REAL NOT NULL,
    PRIMARY KEY (host, sha256)
)
"""


class SqliteUploadCache:
    """Uploads remembered in a table (``kierouter_uploads``) of a SQLite file.

    The file may be shared with other tables (a batch's journal): this class opens its own
    connection, creates only its own table, and commits each entry at once. Safe to use from
    any one thread at a time; entries older than KIE's retention are deleted as new ones come.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SqliteUploadCache {self.path}>"

    @classmethod
    def default(cls) -> SqliteUploadCache:
        """The CLI's cache: ``uploads.sqlite`` in :func:`user_data_dir`."""
        return cls(user_data_dir() / "uploads.sqlite")

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            db.commit()
            self._db = db
        return self._db

    def get(self, host: str, sha256: str) -> UploadedFile | None:
        """The remembered upload of this content to ``host``, if any."""
        with self._lock:
            row = (
                self._connect()
                .execute(
                    "SELECT url, size, mime, uploaded_at FROM kierouter_uploads "
                    "WHERE host = ? AND sha256 = ?",
                    (host, sha256),
                )
                .fetchone()
            )
        if row is None:
            return None
        url, size, mime, uploaded_at = row
        return UploadedFile(url=url, sha256=sha256, size=size, mime=mime, uploaded_at=uploaded_at)

    def put(self, host: str, file: UploadedFile) -> None:
        """Remember an upload to ``host`` (and forget entries KIE has deleted by now)."""
        with self._lock:
            db = self._connect()
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO kierouter_uploads "
                    "(host, sha256, url, size, mime, uploaded_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (host, file.sha256, file.url, file.size, file.mime, file.uploaded_at),
                )
                db.execute(
                    "DELETE FROM kierouter_uploads WHERE uploaded_at < ?",
                    (time.time() - UPLOAD_RETENTION,),
                )

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
