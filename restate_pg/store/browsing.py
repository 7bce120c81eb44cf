"""What the operator UI reads (`restate_pg.ui`): invocations page by page, one invocation with
its journal, object keys, and the overview's numbers (`sql/queries/browsing.sql`).

These statements are sent as text with their values filled in (`Gateway.transaction`), not
prepared: a prepared statement may get a generic plan, made for any value, in which an unused
filter (`%(service)s IS NULL OR ...`) still stands and no index matches. With the values in
the text, PostgreSQL drops the unused filters and pages through the index that fits.
"""

from __future__ import annotations

import typing
from datetime import datetime

from restate_pg.store.gateway import StorePart
from restate_pg.store.rows import Row

#: How far inboxed and completed invocations are counted (the count shows "at least" past it).
COUNT_CAP = 10_000
#: Journal entries shown on one invocation's page.
JOURNAL_LIMIT = 2_000


class InvocationFilter(typing.TypedDict, total=False):
    """The list's filters; a missing or None one does not filter."""

    statuses: typing.Optional[typing.List[str]]
    service: typing.Optional[str]
    handler: typing.Optional[str]
    key: typing.Optional[str]
    deployment: typing.Optional[str]
    result: typing.Optional[str]  # success | failure | none (not completed)
    since: typing.Optional[datetime]
    until: typing.Optional[datetime]
    id: typing.Optional[str]  # one invocation, by its whole id (its primary key: instant)
    text: typing.Optional[str]  # an id's start, an idempotency key, a caller, a restarted one (scans)


#: The statuses of live invocations, kept on their task row.
LIVE_STATUSES = ("scheduled", "ready", "running", "suspended", "backing-off", "paused")
#: The other statuses, as `sys_invocation` names them, and as the invocation row stores them.
STORED_STATUSES = {"pending": "inboxed", "completed": "completed"}

#: The overview's chart counts at most this many of the last hour's newest invocations.
CHART_CAP = 20_000

_FILTERS = ("id", "service", "handler", "key", "deployment", "result", "since", "until", "text")


def _filled(filters: InvocationFilter) -> typing.Dict[str, typing.Any]:
    return {name: filters.get(name) for name in _FILTERS}


class Browsing(StorePart):
    """The UI's reads; each one statement, none locking."""

    async def _read(self, sql: str, params: typing.Mapping[str, typing.Any]) -> typing.List[Row]:
        rows = (await self._db.transaction([(sql, params)]))[0]
        return rows or []

    async def browse_invocations(
        self, filters: InvocationFilter, *, limit: int,
        cursor: typing.Optional[typing.Tuple[datetime, str]] = None,
    ) -> typing.List[Row]:
        """A page of invocations matching `filters`, newest first, after `cursor` (the
        (created_at, id) of the last one of the page before)."""
        at, last_id = cursor if cursor is not None else (None, None)
        statuses = filters.get("statuses") or [*LIVE_STATUSES, *STORED_STATUSES]
        params = {**_filled(filters), "limit": limit, "cursor_at": at, "cursor_id": last_id,
                  "live": [s for s in statuses if s in LIVE_STATUSES],
                  "stored": [STORED_STATUSES[s] for s in statuses if s in STORED_STATUSES]}
        return await self._read(self._db.q.BROWSE_INVOCATIONS, params)

    async def status_counts(self, filters: InvocationFilter) -> typing.Dict[str, int]:
        """Invocations per status matching the target filters of `filters` (inboxed and completed
        ones counted up to `COUNT_CAP`)."""
        params = {**_filled(filters), "cap": COUNT_CAP}
        return {row["status"]: int(row["invocations"])
                for row in await self._read(self._db.q.BROWSE_STATUS_COUNTS, params)}

    async def browse_invocation(self, invocation_id: str) -> typing.Optional[Row]:
        rows = await self._read(self._db.q.BROWSE_INVOCATION, {"id": invocation_id})
        return rows[0] if rows else None

    async def browse_journal(self, invocation_id: str) -> typing.List[Row]:
        return await self._read(self._db.q.BROWSE_JOURNAL, {"id": invocation_id, "limit": JOURNAL_LIMIT})

    async def callee_statuses(self, ids: typing.Sequence[str]) -> typing.Dict[str, str]:
        if not ids:
            return {}
        rows = await self._read(self._db.q.BROWSE_CALLEES, {"ids": list(ids)})
        return {row["id"]: row["status"] for row in rows}

    async def state_keys(
        self, service: str, *, after: typing.Optional[str], prefix: typing.Optional[str], limit: int
    ) -> typing.List[Row]:
        params = {"service": service, "after": after, "prefix": prefix, "limit": limit}
        return await self._read(self._db.q.BROWSE_STATE_KEYS, params)

    async def overview(self) -> typing.Dict[str, typing.List[Row]]:
        """The overview page's numbers, read in one round trip."""
        q = self._db.q
        backlog, keys, per_minute, workers = await self._db.transaction([
            (q.BROWSE_BACKLOG, {}), (q.BROWSE_KEY_BACKLOG, {"limit": 10}),
            (q.BROWSE_CREATED_PER_MINUTE, {"cap": CHART_CAP}), (q.BROWSE_WORKERS, {}),
        ])
        return {"backlog": backlog or [], "keys": keys or [], "per_minute": per_minute or [], "workers": workers or []}
