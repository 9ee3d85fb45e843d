"""One KIE key's create limit and one batch's budget, shared by every worker through Postgres.

:class:`SharedGate` is the batch's create gate (:class:`~kierouter.journal.CreateGate`) for many
processes. Before each create (before its intent is journaled):

* **budget** — the create's price is reserved on the batch's ``budget`` row by one conditional
  ``UPDATE ... WHERE settled + reserved + price <= limit``: two workers can never both take the
  last credits. A job keeps one reservation however often it is recovered; when its attempt ends
  the reservation is released and ``settled`` becomes what the journal says was charged.
* **create slot** — at most ``limit`` creates of one account in any ``window`` seconds, counted
  on Postgres's clock in ``kierouter.creates`` under an advisory lock, stamped again when the
  create is answered (as :class:`~kierouter.batch.CreatePacer` counts them in one process).

With a pool of accounts (several ``accounts``), the slot is taken on the account with the most
room in its window among those whose last known balance covers the create's price; the job's
account is then in :attr:`SharedGate.assigned` (and given to ``on_assign``, which journals it
before the create is sent) for the pool's client to send the create with that account's key.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any

from kierouter._errors import BudgetReachedError, InsufficientCreditsError
from kierouter.journal import CreateGate

__all__ = ["GLOBAL_SCHEMA", "SharedGate", "ensure_global_tables"]

GLOBAL_SCHEMA = "kierouter"

_GLOBAL_TABLES = (
    f"CREATE SCHEMA IF NOT EXISTS {GLOBAL_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {GLOBAL_SCHEMA}.creates (
        account TEXT NOT NULL,
        job_key TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())""",
    f"CREATE INDEX IF NOT EXISTS creates_at ON {GLOBAL_SCHEMA}.creates (account, at)",
    f"""CREATE TABLE IF NOT EXISTS {GLOBAL_SCHEMA}.read_buckets (
        account TEXT PRIMARY KEY,
        tokens DOUBLE PRECISION NOT NULL,
        at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())""",
    f"""CREATE TABLE IF NOT EXISTS {GLOBAL_SCHEMA}.batches (
        batch_id TEXT PRIMARY KEY,
        out_dir TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
)


def ensure_global_tables(conn: Any) -> None:
    """Create the tables every batch of a database shares (idempotent, serialised)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('kierouter-global-schema'))")
        for statement in _GLOBAL_TABLES:
            conn.execute(statement)


def budget_tables(conn: Any, schema: str, limit: float | None) -> None:
    """The batch's budget row (``limit`` ``NULL``: no limit) and its reservations."""
    with conn.transaction():
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".budget (id INTEGER PRIMARY KEY, '
            "lim DOUBLE PRECISION, reserved DOUBLE PRECISION NOT NULL DEFAULT 0, "
            "settled DOUBLE PRECISION NOT NULL DEFAULT 0)"
        )
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".reservations '
            "(job_key TEXT PRIMARY KEY, amount DOUBLE PRECISION NOT NULL)"
        )
        conn.execute(
            f'INSERT INTO "{schema}".budget (id, lim) VALUES (1, %s) '
            "ON CONFLICT (id) DO UPDATE SET lim = excluded.lim",
            (limit,),
        )


class SharedGate(CreateGate):
    """The create gate of one batch in one worker (see the module docstring).

    Args:
        url: the database.
        schema: the batch's schema (``kr_<batch id>``).
        account: the KIE account the creates count against, or the names of a pool's accounts.
        limit / window: creates per window of each account (KIE: 20 per 10 s; give the window
            a margin).
        price: the credits one create of ``model`` for ``job_key`` is expected to cost.
        balances: each account's last known balance (``None``: unknown, not checked).
        on_assign: called with ``(job_key, account)`` when a job's create gets its account.
    """

    def __init__(
        self,
        url: str,
        schema: str,
        *,
        account: str | Sequence[str],
        limit: int,
        window: float,
        price: Callable[[str, str], float],
        balances: dict[str, float | None] | None = None,
        on_assign: Callable[[str, str], None] | None = None,
    ) -> None:
        import psycopg

        self.schema = schema
        self.accounts = [account] if isinstance(account, str) else list(account)
        if not self.accounts:
            raise ValueError("a create gate needs at least one account")
        self.account = self.accounts[0]
        self.balances: dict[str, float | None] = dict(balances or {})
        self._on_assign = on_assign
        #: the account each job's current create was given, and the price reserved for it
        self.assigned: dict[str, str] = {}
        self._amounts: dict[str, float] = {}
        self.limit = limit
        self.window = window
        self._price = price
        self._conn: Any = psycopg.connect(url, autocommit=True)
        self._lock = threading.Lock()
        #: creates let through by this gate
        self.granted = 0
        #: a create was refused because the shared budget had no room
        self.reached = False
        self._held: set[str] = set()

    def __repr__(self) -> str:
        return f"<SharedGate {self.schema} {self.limit}/{self.window:g}s>"

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    # -- budget ---------------------------------------------------------------------------------

    def _reserve(self, job_key: str, amount: float) -> bool:
        s = self.schema
        with self._lock, self._conn.transaction():
            held = self._conn.execute(
                f'SELECT amount FROM "{s}".reservations WHERE job_key = %s FOR UPDATE', (job_key,)
            ).fetchone()
            if held is not None:
                return True  # recovered job: its reservation is still there
            row = self._conn.execute(
                f'UPDATE "{s}".budget SET reserved = reserved + %s WHERE id = 1 AND '
                "(lim IS NULL OR settled + reserved + %s <= lim + 1e-9) RETURNING 1",
                (amount, amount),
            ).fetchone()
            if row is None:
                return False
            self._conn.execute(
                f'INSERT INTO "{s}".reservations (job_key, amount) VALUES (%s, %s)',
                (job_key, amount),
            )
            return True

    def settle(self, job_key: str) -> None:
        """Release ``job_key``'s reservation; ``settled`` = the journal's charged credits."""
        s = self.schema
        with self._lock, self._conn.transaction():
            self._conn.execute(f'SELECT 1 FROM "{s}".budget WHERE id = 1 FOR UPDATE')
            row = self._conn.execute(
                f'DELETE FROM "{s}".reservations WHERE job_key = %s RETURNING amount', (job_key,)
            ).fetchone()
            self._conn.execute(
                f'UPDATE "{s}".budget SET reserved = GREATEST(0, reserved - %s), settled = '
                f"(SELECT COALESCE(SUM(credits), 0) FROM \"{s}\".attempts WHERE phase = 'ended') "
                "WHERE id = 1",
                (float(row[0]) if row else 0.0,),
            )

    def budget_row(self) -> tuple[float | None, float, float]:
        """``(limit, reserved, settled)``."""
        with self._lock:
            row = self._conn.execute(
                f'SELECT lim, reserved, settled FROM "{self.schema}".budget WHERE id = 1'
            ).fetchone()
        return (row[0], float(row[1]), float(row[2])) if row else (None, 0.0, 0.0)

    # -- create slots ---------------------------------------------------------------------------

    def _funded(self, amount: float, exclude: Collection[str] = ()) -> list[str]:
        """The accounts not excluded whose last known balance covers ``amount``."""
        return [
            a
            for a in self.accounts
            if a not in exclude and ((b := self.balances.get(a)) is None or b + 1e-9 >= amount)
        ]

    def _used(self, accounts: list[str]) -> dict[str, int]:
        """Creates of each account in its current window (a hint for the order: most room
        first; the count that decides is taken again under the account's lock)."""
        rows = self._conn.execute(
            f"SELECT account, COUNT(*) FROM {GLOBAL_SCHEMA}.creates WHERE account = ANY(%s) AND "
            "at > clock_timestamp() - make_interval(secs => %s) GROUP BY account",
            (accounts, self.window),
        ).fetchall()
        used = dict.fromkeys(accounts, 0)
        used.update({str(a): int(n) for a, n in rows})
        return used

    def _try_slot(self, job_key: str, accounts: list[str] | None = None) -> tuple[float, str]:
        """Take a slot on one of ``accounts`` (returns ``(0, account)``) or say how many seconds
        until one frees."""
        accounts = accounts or self.accounts
        with self._lock:
            used = self._used(accounts) if len(accounts) > 1 else {accounts[0]: 0}
            soonest = float("inf")
            for account in sorted(accounts, key=lambda a: (used[a], accounts.index(a))):
                wait = self._try_account(job_key, account)
                if wait <= 0:
                    return 0.0, account
                soonest = min(soonest, wait)
            return soonest, ""

    def _try_account(self, job_key: str, account: str) -> float:
        g = GLOBAL_SCHEMA
        with self._conn.transaction():
            self._conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", ("kierouter-creates:" + account,)
            )
            self._conn.execute(
                f"DELETE FROM {g}.creates WHERE account = %s AND "
                "at < clock_timestamp() - make_interval(secs => %s)",
                (account, self.window * 3),
            )
            row = self._conn.execute(
                f"SELECT COUNT(*), MIN(at), EXTRACT(EPOCH FROM clock_timestamp() - MIN(at)) "
                f"FROM {g}.creates WHERE account = %s AND "
                "at > clock_timestamp() - make_interval(secs => %s)",
                (account, self.window),
            ).fetchone()
            assert row is not None
            if int(row[0]) < self.limit:
                self._conn.execute(
                    f"INSERT INTO {g}.creates (account, job_key) VALUES (%s, %s)",
                    (account, job_key),
                )
                return 0.0
            return max(0.01, self.window - float(row[2]))

    def _restamp(self, job_key: str) -> None:
        account = self.assigned.get(job_key, self.account)
        with self._lock:
            self._conn.execute(
                f"UPDATE {GLOBAL_SCHEMA}.creates SET at = clock_timestamp() WHERE ctid = "
                f"(SELECT ctid FROM {GLOBAL_SCHEMA}.creates WHERE account = %s AND job_key = %s "
                "ORDER BY at DESC LIMIT 1)",
                (account, job_key),
            )

    # -- the gate -------------------------------------------------------------------------------

    async def before(self, job_key: str, model: str) -> None:
        """Reserve the create's price, then wait for a create slot of the account."""
        amount = self._price(job_key, model)
        self._amounts[job_key] = amount
        if not await asyncio.to_thread(self._reserve, job_key, amount):
            limit, reserved, settled = await asyncio.to_thread(self.budget_row)
            self.reached = True
            raise BudgetReachedError(settled + reserved, limit or 0.0)
        if await self.take_slot(job_key, amount) is None:
            await asyncio.to_thread(self.settle, job_key)  # give the reservation back
            raise InsufficientCreditsError(
                f"no account of the pool has {amount:g} credits left for this create "
                f"(last known balances: {self._balances_text()})"
            )

    async def take_slot(
        self, job_key: str, amount: float, exclude: Collection[str] = ()
    ) -> str | None:
        """Wait for a create slot on a funded account not in ``exclude``; the account, or
        ``None`` when no account's last known balance covers ``amount``."""
        while True:
            funded = self._funded(amount, exclude)
            if not funded:
                return None
            wait, account = await asyncio.to_thread(self._try_slot, job_key, funded)
            if wait <= 0:
                self.granted += 1
                self._held.add(job_key)
                self.assigned[job_key] = account
                balance = self.balances.get(account)
                if balance is not None:
                    self.balances[account] = balance - amount
                if self._on_assign is not None:
                    await asyncio.to_thread(self._on_assign, job_key, account)
                return account
            await asyncio.sleep(wait)

    def held_price(self, job_key: str) -> float:
        """The price reserved for ``job_key``'s current create."""
        return self._amounts.get(job_key, 0.0)

    def out_of_credits(self, account: str) -> None:
        """KIE said ``account`` cannot pay (402): no create goes to it from this gate again."""
        self.balances[account] = 0.0

    def _balances_text(self) -> str:
        return ", ".join(
            f"{a}: {'unknown' if b is None else f'{b:g}'}"
            for a in self.accounts
            for b in [self.balances.get(a)]
        )

    def answered(self, job_key: str) -> None:
        """The create was answered: its slot counts for one more window from now (once)."""
        if job_key in self._held:
            self._held.discard(job_key)
            self._restamp(job_key)

    def ended(self, job_key: str) -> None:
        """The attempt is over: settle the budget."""
        self.answered(job_key)
        self.settle(job_key)
