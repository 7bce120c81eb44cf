"""An attempt's transaction, and the awakeable resolutions that enter from outside any handler:
requests of the server-side `apply()`, written and read by `codec`, committed with concurrent
ones by `group_commit`."""

from __future__ import annotations

import typing

import orjson

from restate_pg.core.records import Batch, FlushResult, Lease, Resolution, SignalDelivery
from restate_pg.store import codec
from restate_pg.store.gateway import StorePart
from restate_pg.store.steps import SqlStepStatements


class WritePath(StorePart):
    """Flushes and resolutions, each one request of `apply()`."""

    async def flush(self, lease: Lease, batch: Batch) -> FlushResult:
        """Apply an attempt's buffered writes and its outcome atomically, fenced by its lease
        (`flush()` in procedures.py)."""
        woken = await self._send_signals(batch.signals) if batch.signals else []
        applied, db_now = await self._db.apply({"flush": codec.flush_request(lease, batch)})
        result = codec.flush_result(batch, applied, db_now)
        result.woken += woken
        return result

    async def _send_signals(self, signals: typing.Sequence[SignalDelivery]) -> typing.List[typing.Tuple[str, typing.Optional[str]]]:
        """Deliver named signals, in one transaction, ahead of the flush that journals them (the
        flush function has no section for them; delivery is idempotent by name, so a flush that
        fails after it is made good by the retry). The invocations to wake, with their process."""
        statements = [(self._db.q.SEND_SIGNAL, {"signal": orjson.dumps(codec.signal_doc(s)).decode()}) for s in signals]
        results = await self._db.transaction(statements, {i: ("answer",) for i in range(len(statements))})
        woken = []
        for signal, rows in zip(signals, results, strict=True):
            answer = (rows or [{}])[0].get("answer") or {}
            if answer.get("status") == "resolved":
                woken.append((signal.invocation_id, answer.get("owner")))
        return woken

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
