"""A pool of KIE accounts behind one client: each create goes to the account the gate chose.

A worker given several accounts (``--account NAME=KEY_ENV``, repeated) holds one client per
account. The batch's :class:`~kierouter.scale._gate.SharedGate` picks, for each create, the
account with room in its shared create window whose last known balance covers the price, and
journals it before the create is sent; :class:`PoolClient` sends the create with that account's
key and journals the task's account. Status reads and link re-mints go to the account that
created the task (looked up in the journal after a crash or on another worker), so a task is
never read with another account's key. A 402 on an account marks it dry and the create goes to
another funded account (KIE made no task); only when none is left does the 402 stop the run.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from kierouter._errors import InsufficientCreditsError

from ._defer import DeferringClient

if TYPE_CHECKING:
    from ._gate import SharedGate
    from ._journal import PostgresJournal

__all__ = ["PoolAccount", "PoolClient", "parse_account"]

_URL = re.compile(rb"https?://[^\"\\\s]+")


@dataclass(frozen=True)
class PoolAccount:
    """One KIE account of a worker's pool: its name (shared by every worker: the limits and the
    journal are kept by name), its key (never shown) and, for an emulator, its own base URL."""

    name: str
    api_key: str = field(repr=False)
    base_url: str | None = None


def parse_account(text: str, env: Mapping[str, str]) -> PoolAccount:
    """``NAME=KEY_ENV`` or ``NAME=KEY_ENV@BASE_URL`` (the key is read from the environment
    variable ``KEY_ENV``; a clear error names what is wrong, never the key)."""
    from kierouter._errors import ConfigurationError

    name, eq, rest = text.partition("=")
    variable, at, base_url = rest.partition("@")
    name, variable = name.strip(), variable.strip()
    if not eq or not name or not variable:
        raise ConfigurationError(
            f"--account {text!r}: expected NAME=KEY_ENV (the key in environment variable KEY_ENV)"
        )
    key = env.get(variable, "").strip()
    if not key:
        raise ConfigurationError(
            f"--account {name}: environment variable {variable} is not set (it holds the key)"
        )
    if at and not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"--account {name}: base URL {base_url!r} is not http(s)")
    return PoolAccount(name, key, base_url or None)


class PoolClient(DeferringClient):
    """The client of the pool's first account, sending each create and read with the key of the
    account it belongs to (see the module docstring)."""

    def __init__(
        self,
        members: Mapping[str, DeferringClient],
        first: str,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.account = first
        self.members = dict(members)
        self.gate: SharedGate | None = None
        self.journal: PostgresJournal | None = None
        #: task id → account, and result URL → account (from the task's status reads)
        self.task_accounts: dict[str, str] = {}
        self.url_accounts: dict[str, str] = {}
        #: creates sent per account by this client
        self.creates: dict[str, int] = dict.fromkeys([first, *members], 0)

    def __repr__(self) -> str:
        return f"<PoolClient {sorted(self.creates)}>"

    async def aclose(self) -> None:
        """Close every account's connections."""
        for member in self.members.values():
            await member.aclose()
        await super().aclose()

    # -- creates -------------------------------------------------------------------------------

    async def _create_on(
        self, account: str, path: str, body: Mapping[str, Any], job_key: str | None
    ) -> Any:
        if account == self.account:
            return await super().create(path, body, job_key=job_key)
        return await self.members[account].create(path, body, job_key=job_key)

    async def create(
        self, path: str, body: Mapping[str, Any], *, job_key: str | None = None
    ) -> Any:
        """Send the create with the key of the account the gate gave the job."""
        gate = self.gate
        tried: set[str] = set()
        while True:
            account = self.account
            if gate is not None and job_key is not None:
                account = gate.assigned.get(job_key, self.account)
            try:
                data = await self._create_on(account, path, body, job_key)
            except InsufficientCreditsError:
                # KIE made no task: another funded account may take the same create
                if gate is None or job_key is None:
                    raise
                gate.out_of_credits(account)
                tried.add(account)
                price = float(gate.held_price(job_key))
                if await gate.take_slot(job_key, price, exclude=tried) is None:
                    raise
                continue
            self.creates[account] = self.creates.get(account, 0) + 1
            task_id = data.get("taskId") if isinstance(data, dict) else None
            if isinstance(task_id, str) and task_id:
                self.task_accounts[task_id] = account
                if self.journal is not None:
                    await asyncio.to_thread(self.journal.set_task_account, task_id, account)
            return data

    # -- reads ---------------------------------------------------------------------------------

    async def _account_of(self, task_id: str) -> str:
        account = self.task_accounts.get(task_id)
        if account is None and self.journal is not None:
            account = await asyncio.to_thread(self.journal.account_of_task, task_id)
            if account is not None:
                self.task_accounts[task_id] = account
        return account if account in self.creates else self.account

    async def read(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        method: str = "GET",
        json: Any = None,
    ) -> Any:
        """A read with the key of the account that created the task it names (a status read,
        a re-mint naming the task or one of its result URLs); else the first account's."""
        task_id = (params or {}).get("taskId")
        if task_id is None and isinstance(json, dict):
            task_id = json.get("taskId")
        account = self.account
        if isinstance(task_id, str) and task_id:
            account = await self._account_of(task_id)
        elif isinstance(json, dict) and isinstance(json.get("url"), str):
            account = self.url_accounts.get(json["url"], self.account)
        if account == self.account:
            data = await super().read(path, params, method=method, json=json)
        else:
            data = await self.members[account].read(path, params, method=method, json=json)
        if isinstance(task_id, str) and task_id and data is not None:
            # the task's result URLs: a later re-mint of one goes to the same account
            for url in _URL.findall(msgspec.json.encode(data)):
                self.url_accounts[url.decode()] = account
        return data
