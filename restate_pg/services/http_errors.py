"""What an HTTP transport answers when PostgreSQL is unavailable: one mapping, shared by the
ingress, the admin API's routes and operations, and its `/query`.

The store raises `StoreUnavailable` when it loses the database under a request; the answer is
503 (retry later), whose message says no more than that (the driver's message names hosts and
sockets, which are not the client's business). Any other `DatabaseUnavailable` was written to be
shown (`cannot connect to database "app" on db:5432: ...`, from an operator's query) and is.
"""

from __future__ import annotations

import typing

from restate_pg.core.errors import DatabaseUnavailable, StoreUnavailable

__all__ = ["UNAVAILABLE", "UNAVAILABLE_STATUS", "unavailable"]

UNAVAILABLE_STATUS = 503
UNAVAILABLE = "the database is unavailable, retry later"


def unavailable(exc: DatabaseUnavailable) -> typing.Tuple[int, str]:
    """The status and message answering a request that failed because the database is unavailable."""
    if isinstance(exc, StoreUnavailable):
        return UNAVAILABLE_STATUS, UNAVAILABLE
    return UNAVAILABLE_STATUS, str(exc)
