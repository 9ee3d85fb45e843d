"""Scale out on DBOS Transact and PostgreSQL: several workers share one KIE key's limits, one
durable journal and one budget (``pip install 'kierouter[scale]'``; ``docs/scale.md``).

Nothing here is imported by ``import kierouter``; ``kierouter batch run --db`` and
``kierouter worker`` import it when asked. :class:`PostgresJournal` is a journal backend the
library can use too: ``Router(journal=RouterJournal(PostgresJournal(url, "batch1")))``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._gate import SharedGate
    from ._journal import PostgresJournal

__all__ = ["PostgresJournal", "SharedGate"]


def __getattr__(name: str) -> Any:
    # psycopg (and DBOS) load only when a name is used
    if name == "PostgresJournal":
        from ._journal import PostgresJournal

        return PostgresJournal
    if name == "SharedGate":
        from ._gate import SharedGate

        return SharedGate
    raise AttributeError(name)
