"""An attempt's transaction, and the awakeable resolutions that enter from outside any handler:
requests of the server-side `apply()`, written and read by `codec`, committed with concurrent
ones by `group_commit`; and, read before a completion is written, the types its waiters declared."""

from __future__ import annotations

import typing

from restate_pg.core.records import Batch, FlushResult, Lease, Resolution, Signal
from restate_pg.store import codec
from restate_pg.store.gateway import StorePart
from restate_pg.store.steps import SqlStepStatements

#: A JSON schema, as the journal stores a waiter's declared type.
Schema = typing.Dict[str, typing.Any]


class WritePath(StorePart):
    """Flushes and resolutions, each one request of `apply()`."""

    async def flush(self, lease: Lease, batch: Batch) -> FlushResult:
        """Apply an attempt's buffered writes and its outcome atomically, fenced by its lease
        (`flush()` in procedures.py)."""
        applied, db_now = await self._db.apply({"flush": codec.flush_request(lease, batch)})
        return codec.flush_result(batch, applied, db_now)

    def step_statements(self, lease: Lease) -> SqlStepStatements:
        """The fence and flush a database step of `lease`'s attempt runs in its own transaction
        (the runtime's `JournalStore` port)."""
        return SqlStepStatements(self._db.q, lease)

    async def resolve_awakeable(self, resolution: Resolution) -> typing.Tuple[str, typing.Optional[str]]:
        """Complete an awakeable from outside any handler (`resolve_awakeable()`); returns what
        became of it (resolved, unknown, completed, already) and the process to wake."""
        applied: codec.ResolveAnswer
        applied, _ = await self._db.apply({"resolve": codec.resolution_doc(resolution)})
        return applied["status"], applied.get("owner")

    async def resolve_signal(self, signal: Signal) -> typing.Tuple[str, typing.Optional[str]]:
        """Deliver a signal from outside any handler (`resolve_signal()`: an SDK endpoint's
        awakeable resolved at the ingress); what became of it, and the process to wake."""
        applied: codec.ResolveAnswer
        applied, _ = await self._db.apply({"signal": codec.signal_doc(signal)})
        return applied["status"], applied.get("owner")

    async def awakeable_schema(self, resolution: Resolution) -> typing.Optional[Schema]:
        """The JSON schema the awakeable's creator declared for its value; None when it declared
        none or the awakeable is not journaled (then resolving it finds nothing either)."""
        row = await self._db.first(self._db.q.AWAKEABLE_SCHEMA, {
            "invocation_id": resolution.invocation_id, "command_index": resolution.command_index,
            "id": resolution.awakeable_id})
        return None if row is None else row["schema"]

    async def promise_schemas(self, service: str, key: str, name: str) -> typing.List[Schema]:
        """The JSON schemas declared by the commands waiting for promise `name` of workflow `key`."""
        rows = await self._db.rows(self._db.q.PROMISE_SCHEMAS, {"service": service, "key": key, "name": name})
        return [row["schema"] for row in rows]
