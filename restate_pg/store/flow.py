"""Flow-control rules and queues: the rows behind the admin API's `/limits/rules`, the CLI's
`restate-pg rules`, the metrics and the UI (the claim itself is `claim_flow()`, in claim_tasks)."""

from __future__ import annotations

import typing

from restate_pg.store.gateway import StorePart


class FlowRules(StorePart):
    """Rules and queue counts."""

    async def list_flow_rules(self) -> typing.List[typing.Dict[str, typing.Any]]:
        return await self._db.rows(self._db.q.LIST_FLOW_RULES, {})

    async def upsert_flow_rules(self, rows: typing.Sequence[typing.Mapping[str, typing.Any]]) -> typing.Optional[str]:
        """Create or replace rules in one transaction: all or none. Returns the pattern whose
        precondition failed (then nothing changed), else None."""
        q = self._db.q
        async with self._db.connection() as conn, conn.transaction():
            for row in rows:
                expected = row.get("expected_version")
                if expected == -1:  # must not exist yet
                    cur = await conn.execute(q.FLOW_RULE_VERSION, {"pattern": row["pattern"]})
                    if await cur.fetchone() is not None:
                        raise PreconditionFailed(row["pattern"])
                    expected = None
                cur = await conn.execute(q.UPSERT_FLOW_RULE, {**row, "expected_version": expected})
                if await cur.fetchone() is None:
                    raise PreconditionFailed(row["pattern"])
                if row["level"] >= 3 and not row["disabled"]:  # queued ones of its target come under it too
                    await conn.execute(q.MARK_TARGET_TASKS, {"service": row["scope_part"], "priority": row["priority"],
                                                             "handler": row["l1_part"] if row["level"] == 4 else None})
        return None

    async def target_rule_services(self) -> typing.FrozenSet[str]:
        """The services an enabled service or handler rule names (`target_rule_services`)."""
        return frozenset(row["service"] for row in await self._db.rows(self._db.q.TARGET_RULE_SERVICES, {}))

    async def delete_flow_rules(self, rows: typing.Sequence[typing.Mapping[str, typing.Any]]) -> typing.List[str]:
        """Delete rules in one transaction; returns the patterns deleted. A rule whose
        `expected_version` differs fails the whole batch (`PreconditionFailed`)."""
        q, deleted = self._db.q, []
        async with self._db.connection() as conn, conn.transaction():
            for row in rows:
                cur = await conn.execute(q.DELETE_FLOW_RULE, {"pattern": row["pattern"], "expected_version": row.get("expected_version")})
                gone = await cur.fetchone()
                if gone is not None:
                    deleted.append(row["pattern"])
                elif row.get("expected_version") is not None:
                    raise PreconditionFailed(row["pattern"])
        return deleted

    async def flow_queues(self) -> typing.List[typing.Dict[str, typing.Any]]:
        return await self._db.rows(self._db.q.FLOW_QUEUES, {})

    async def flow_target_queues(self) -> typing.List[typing.Dict[str, typing.Any]]:
        """Per service/handler a rule names: running, queued and waiting invocations."""
        return await self._db.rows(self._db.q.FLOW_TARGET_QUEUES, {})

    async def flow_scope_gauges(self) -> typing.List[typing.Dict[str, typing.Any]]:
        """Per scope: running, queued and waiting invocations (`flow_scope_gauges`)."""
        return await self._db.rows(self._db.q.FLOW_SCOPE_GAUGES, {})


class PreconditionFailed(Exception):
    """A rule's version precondition did not hold: the batch rolled back."""

    def __init__(self, pattern: str) -> None:
        super().__init__(pattern)
        self.pattern = pattern

