"""One key's status-read rate, shared by every worker through Postgres.

KIE allows about 10 status reads per second per key. Each worker's client reads through a
:class:`SharedReadLimiter`: one token bucket per account in ``kierouter.read_buckets``, refilled
on Postgres's clock and taken under a row lock, so the reads of all workers together stay under
the key's rate. With callbacks a task is read about once; without them this is what keeps many
workers' polling from drawing 429s.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from kierouter._ratelimit import RateLimiter

from ._gate import GLOBAL_SCHEMA, ensure_global_tables

__all__ = ["SharedReadLimiter"]


class SharedReadLimiter(RateLimiter):
    """``rate`` status reads per second on average (bursts of ``burst``) for one account, across
    every process using the same database. A drop-in for a client's ``read_limiter``."""

    def __init__(self, url: str, account: str, rate: float, burst: int | None = None) -> None:
        import psycopg

        super().__init__(rate, burst)
        self.account = account
        self._conn: Any = psycopg.connect(url, autocommit=True)
        self._db_lock = threading.Lock()
        ensure_global_tables(self._conn)

    def __repr__(self) -> str:
        return f"<SharedReadLimiter {self.account} {self.rate:g}/s burst {self.burst}>"

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def try_take(self) -> float:
        """Take a token (returns 0) or say how many seconds until one is there."""
        g = GLOBAL_SCHEMA
        with self._db_lock, self._conn.transaction():
            self._conn.execute(
                f"INSERT INTO {g}.read_buckets (account, tokens) VALUES (%s, %s) "
                "ON CONFLICT (account) DO NOTHING",
                (self.account, float(self.burst)),
            )
            row = self._conn.execute(
                f"SELECT tokens, EXTRACT(EPOCH FROM clock_timestamp() - at) FROM {g}.read_buckets "
                "WHERE account = %s FOR UPDATE",
                (self.account,),
            ).fetchone()
            tokens = min(float(self.burst), float(row[0]) + max(0.0, float(row[1])) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._conn.execute(
                f"UPDATE {g}.read_buckets SET tokens = %s, at = clock_timestamp() "
                "WHERE account = %s",
                (tokens, self.account),
            )
            return wait

    async def acquire(self) -> None:
        """Wait until this account may read once more."""
        while True:
            wait = await asyncio.to_thread(self.try_take)
            if wait <= 0:
                return
            await asyncio.sleep(wait)
