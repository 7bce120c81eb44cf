"""Flow-control rules and queues: the rows behind the admin API's `/limits/rules`, the CLI's
`restate-pg rules`, the metrics and the UI (the claim itself is `claim_flow()`, in claim_tasks)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import typing

import psycopg

from restate_pg.store.gateway import StorePart

log = logging.getLogger("restate_pg.flow")

#: A service, a handler (None: the whole service) and the rule's default priority.
_Target = typing.Tuple[str, typing.Optional[str], typing.Optional[int]]

#: How often a rule change is tried again when PostgreSQL broke a deadlock by rolling it back.
_DEADLOCK_RETRIES = 5

#: Pauses between the rounds that mark tasks locked while the rule's transaction ran.
_STRAGGLER_DELAYS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class FlowRules(StorePart):
    """Rules and queue counts."""

    async def list_flow_rules(self) -> typing.List[typing.Dict[str, typing.Any]]:
        return await self._db.rows(self._db.q.LIST_FLOW_RULES, {})

    async def upsert_flow_rules(self, rows: typing.Sequence[typing.Mapping[str, typing.Any]]) -> typing.Optional[str]:
        """Create or replace rules in one transaction: all or none. Returns the pattern whose
        precondition failed (then nothing changed), else None.

        A rule on a service or handler brings the target's existing tasks under it. Its transaction
        first takes the service's target-rules lock, which every submission holds shared while it
        probes the rules: submissions that saw no rule commit before the marking looks, later ones
        see the rule. Tasks another transaction held locked at that instant are marked after the
        commit (`_mark_stragglers`)."""
        targets = sorted({(row["scope_part"], row["l1_part"] if row["level"] == 4 else None, row["priority"])
                          for row in rows if row["level"] >= 3 and not row["disabled"]}, key=repr)
        for attempt in itertools.count(1):
            try:
                await self._upsert_flow_rules(rows, targets)
                break
            except psycopg.errors.DeadlockDetected:  # with a group of submissions holding a service's lock shared
                if attempt == _DEADLOCK_RETRIES:
                    raise
        await self._mark_stragglers(targets)
        return None

    async def _upsert_flow_rules(self, rows: typing.Sequence[typing.Mapping[str, typing.Any]],
                                 targets: typing.Sequence[_Target]) -> None:
        q = self._db.q
        async with self._db.connection() as conn, conn.transaction():
            for service in sorted({service for service, _, _ in targets}):  # one order: rule changes never deadlock each other
                await conn.execute(q.LOCK_TARGET_RULES, {"service": service})
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
            for service, handler, priority in targets:
                await conn.execute(q.MARK_TARGET_TASKS, {"service": service, "handler": handler, "priority": priority})

    async def _mark_stragglers(self, targets: typing.Sequence[_Target]) -> None:
        """Mark the target tasks that were locked (a claim, a flush) while the rule's transaction
        marked the others; each such lock lasts one short transaction, so a few rounds suffice."""
        q = self._db.q
        for service, handler, priority in targets:
            params = {"service": service, "handler": handler, "priority": priority}
            for delay in (*_STRAGGLER_DELAYS, None):
                if await self._db.scalar(q.UNMARKED_TARGET_TASKS, params) == 0:
                    break
                if delay is None:
                    log.warning("restate-pg: some tasks of %s%s stayed locked; they are not under its new rule",
                                service, "/" + handler if handler else "")
                    break
                await asyncio.sleep(delay)  # let the transaction holding them end
                await self._db.execute(q.MARK_TARGET_TASKS, params)

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

