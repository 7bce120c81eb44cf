"""The narrow interface between restate-pg and PostgreSQL.

`Store` owns a psycopg connection pool and runs the statements of `queries.py`; it knows nothing
about handlers or replay. Each public method is one transaction, sent with pipeline mode so that
BEGIN, the statements and COMMIT travel in one round trip.
"""

from __future__ import annotations

import typing
from datetime import datetime

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from restate_pg.api.errors import SdkInternalException
from restate_pg.store.queries import Queries
from restate_pg.store.records import (
    Batch,
    ClaimedTask,
    Complete,
    Failure,
    FlushResult,
    InvocationRecord,
    JournalRow,
    Lease,
    LoadedInvocation,
    MailboxItem,
    Retry,
    Submission,
    Submitted,
    Suspend,
)
from restate_pg.store.schema import FENCED_SQLSTATE

#: First half of the two-int advisory lock key of object keys ("rpg" + 1), so that restate-pg's
#: locks never collide with the application's own advisory locks on single bigint keys.
OBJECT_LOCK_NAMESPACE = 0x72706701


class Fenced(SdkInternalException):
    """The attempt lost its lease: another worker owns the invocation now."""


def _failure(code: typing.Optional[int], message: typing.Optional[str], metadata: typing.Any) -> typing.Optional[Failure]:
    if code is None:
        return None
    return Failure(code, message or "", metadata)


def _submission_params(sub: Submission) -> typing.Dict[str, typing.Any]:
    return {
        "id": sub.id,
        "service": sub.service,
        "handler": sub.handler,
        "key": sub.key,
        "service_ty": sub.service_ty,
        "handler_ty": sub.handler_ty,
        "input": sub.input,
        "headers": Jsonb(sub.headers),
        "idempotency_key": sub.idempotency_key,
        "invoked_by": sub.invoked_by,
        "caller_id": sub.caller_id,
        "caller_command": sub.caller_command,
        "waiter": sub.waiter,
        "delay_ms": sub.delay_ms,
        "exclusive": sub.exclusive,
        "owner": sub.owner,
    }


def _lock_params(service: str, key: str) -> typing.Dict[str, typing.Any]:
    return {"namespace": OBJECT_LOCK_NAMESPACE, "service": service, "key": key}


class Store:
    """PostgreSQL access for one schema."""

    def __init__(
        self,
        conninfo: str,
        schema: str = "restate",
        *,
        min_size: int = 2,
        max_size: int = 10,
        prepare: bool = True,
    ) -> None:
        self.schema = schema
        self.q = Queries(schema)
        self.conninfo = conninfo
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"prepare_threshold": 0 if prepare else None},
            name="restate-pg",
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=10)

    async def close(self) -> None:
        await self.pool.close()

    # -- submitting ---------------------------------------------------------------------------

    async def submit(self, sub: Submission) -> Submitted:
        """Create one invocation (`submit_invocation`), taking the object key's lock if needed."""
        async with self.pool.connection() as conn:
            async with conn.pipeline(), conn.transaction():
                if sub.exclusive and sub.delay_ms is None:
                    await conn.execute(self.q.LOCK_OBJECT_KEY, _lock_params(sub.service, sub.key or ""))
                cur = await conn.execute(self.q.SUBMIT_INVOCATION, _submission_params(sub))
            row = await cur.fetchone()
        if row is None:
            return Submitted(sub.id, None, False)
        return Submitted(sub.id, row[1], row[1] == "invoked" and sub.owner is not None, row[2])

    async def get_invocation(self, invocation_id: str) -> typing.Optional[typing.Dict[str, typing.Any]]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(self.q.GET_INVOCATION, {"id": invocation_id})
            row = await cur.fetchone()
            await conn.commit()
            return row

    async def wait_for(self, invocation_id: str, waiter: str) -> typing.Optional[typing.Dict[str, typing.Any]]:
        """Register `waiter` to be told of the result (`wait_for_invocation`); returns the row."""
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(self.q.WAIT_FOR_INVOCATION, {"id": invocation_id, "waiter": waiter})
            row = await cur.fetchone()
            await conn.commit()
            return row

    # -- claiming ------------------------------------------------------------------------------

    async def claim(self, owner: str, services: typing.Sequence[str], limit: int) -> typing.List[ClaimedTask]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                self.q.CLAIM_TASKS, {"owner": owner, "services": list(services), "limit": limit}
            )
            rows = await cur.fetchall()
            await conn.commit()
        return [
            ClaimedTask(Lease(r[0], owner, r[1], r[2]), wakeups=r[3], previous_status=r[4], db_now=r[5])
            for r in rows
        ]

    async def next_due(self, services: typing.Sequence[str]) -> typing.Optional[float]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.q.NEXT_DUE, {"services": list(services)})
            row = await cur.fetchone()
            await conn.commit()
        return None if row is None else row[0]

    async def start_scheduled(self, lease: Lease, service: str, key: typing.Optional[str], exclusive: bool) -> str:
        """A due delayed invocation becomes invoked, or inboxed behind its key (`start_scheduled`)."""
        async with self.pool.connection() as conn:
            async with conn.pipeline(), conn.transaction():
                await conn.execute(self.q.FENCE, {"id": lease.invocation_id, "owner": lease.owner, "epoch": lease.epoch})
                if exclusive:
                    await conn.execute(self.q.LOCK_OBJECT_KEY, _lock_params(service, key or ""))
                cur = await conn.execute(
                    self.q.START_SCHEDULED,
                    {"id": lease.invocation_id, "service": service, "key": key, "exclusive": exclusive},
                )
            row = await cur.fetchone()
        return row[0] if row else "missing"

    async def load(self, ids: typing.Sequence[str]) -> typing.Dict[str, LoadedInvocation]:
        """Invocation rows, journals and mailboxes of freshly claimed invocations."""
        params = {"ids": list(ids)}
        async with self.pool.connection() as conn:
            async with conn.pipeline():
                inv_cur = await conn.execute(self.q.LOAD_INVOCATIONS, params)
                jr_cur = await conn.execute(self.q.LOAD_JOURNALS, params)
                mb_cur = await conn.execute(self.q.LOAD_MAILBOXES, params)
            inv_rows = await inv_cur.fetchall()
            jr_rows = await jr_cur.fetchall()
            mb_rows = await mb_cur.fetchall()
            await conn.commit()
        loaded: typing.Dict[str, LoadedInvocation] = {}
        for r in inv_rows:
            record = InvocationRecord(
                id=r[0], service=r[1], handler=r[2], key=r[3], input=bytes(r[4]), headers=r[5] or {},
                idempotency_key=r[6], caller_id=r[7], caller_command=r[8], status=r[9],
            )
            loaded[record.id] = LoadedInvocation(record, [], [])
        for r in jr_rows:
            target = loaded.get(r[0])
            if target is not None:
                target.journal.append(
                    JournalRow(
                        index=r[1], command_index=r[2], completes=r[3], entry_type=r[4], name=r[5],
                        params=r[6], completed=r[7], value=None if r[8] is None else bytes(r[8]),
                        failure=_failure(r[9], r[10], r[11]), sleep_wakeup_at=r[12],
                    )
                )
        for r in mb_rows:
            target = loaded.get(r[0])
            if target is not None:
                target.mailbox.append(
                    MailboxItem(r[1], r[2], None if r[3] is None else bytes(r[3]), _failure(r[4], r[5], r[6]))
                )
        return loaded

    async def read_mailbox(self, invocation_id: str, after: int) -> typing.Tuple[typing.Optional[int], typing.List[MailboxItem]]:
        """The wake-up counter and notifications newer than `after` (`read_mailbox`)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.q.READ_MAILBOX, {"id": invocation_id, "after": after})
            rows = await cur.fetchall()
            await conn.commit()
        if not rows:
            return None, []
        items = [
            MailboxItem(r[1], r[2], None if r[3] is None else bytes(r[3]), _failure(r[4], r[5], r[6]))
            for r in rows
            if r[1] is not None
        ]
        return rows[0][0], items

    async def load_state(self, service: str, key: str) -> typing.Dict[str, bytes]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.q.LOAD_STATE, {"service": service, "key": key})
            rows = await cur.fetchall()
            await conn.commit()
        return {name: bytes(value) for name, value in rows}

    # -- an attempt's transaction ------------------------------------------------------------------

    async def flush(self, lease: Lease, batch: Batch, *, own_key: typing.Optional[typing.Tuple[str, str]] = None) -> FlushResult:
        """Apply an attempt's buffered writes and its outcome atomically, fenced by its lease.

        Locks are taken in the documented order: own task row (fence), the caller's task row,
        then object keys sorted, so that two flushes can never wait on each other in a cycle.
        """
        q = self.q
        outcome = batch.outcome
        keys: typing.Set[typing.Tuple[str, str]] = {
            (s.service, s.key or "") for s in batch.submissions if s.exclusive and s.delay_ms is None
        }
        if isinstance(outcome, Complete) and outcome.release_key is not None:
            keys.add(outcome.release_key)
        try:
            async with self.pool.connection() as conn:
                async with conn.pipeline(), conn.transaction():
                    fence = await conn.execute(
                        q.FENCE, {"id": lease.invocation_id, "owner": lease.owner, "epoch": lease.epoch}
                    )
                    caller_cur = None
                    if isinstance(outcome, Complete) and outcome.caller is not None:
                        failure = outcome.failure
                        caller_cur = await conn.execute(
                            q.DELIVER_NOTIFICATION,
                            {
                                "target": outcome.caller[0],
                                "command_index": outcome.caller[1],
                                "value": outcome.output,
                                "failure_code": failure.code if failure else None,
                                "failure_message": failure.message if failure else None,
                                "failure_metadata": Jsonb(failure.metadata) if failure and failure.metadata else None,
                            },
                        )
                    for service, key in sorted(keys):
                        await conn.execute(q.LOCK_OBJECT_KEY, _lock_params(service, key))
                    if batch.journal:
                        async with conn.cursor() as cur:
                            await cur.executemany(
                                q.APPEND_JOURNAL, [self._journal_params(lease.invocation_id, row) for row in batch.journal]
                            )
                    for service, key, op in batch.state:
                        if op.kind == "set":
                            await conn.execute(q.SET_STATE, {"service": service, "key": key, "name": op.name, "value": op.value})
                        elif op.kind == "clear":
                            await conn.execute(q.CLEAR_STATE, {"service": service, "key": key, "name": op.name})
                        else:
                            await conn.execute(q.CLEAR_ALL_STATE, {"service": service, "key": key})
                    sub_curs = [
                        (sub, await conn.execute(q.SUBMIT_INVOCATION, _submission_params(sub)))
                        for sub in batch.submissions
                    ]
                    if batch.consumed:
                        await conn.execute(q.DELETE_NOTIFICATIONS, {"seqs": batch.consumed})
                    outcome_cur = None
                    release_cur = None
                    if isinstance(outcome, Suspend):
                        outcome_cur = await conn.execute(
                            q.SUSPEND_TASK,
                            {"id": lease.invocation_id, "wake_at": outcome.wake_at, "wakeups": outcome.wakeups},
                        )
                    elif isinstance(outcome, Retry):
                        await conn.execute(
                            q.RETRY_TASK,
                            {
                                "id": lease.invocation_id,
                                "status": outcome.status,
                                "delay_ms": outcome.delay_ms,
                                "failure": outcome.failure,
                                "failure_code": outcome.failure_code,
                            },
                        )
                    elif isinstance(outcome, Complete):
                        failure = outcome.failure
                        outcome_cur = await conn.execute(
                            q.COMPLETE_INVOCATION,
                            {
                                "id": lease.invocation_id,
                                "result": "failure" if failure else "success",
                                "output": outcome.output,
                                "failure_code": failure.code if failure else None,
                                "failure_message": failure.message if failure else None,
                                "failure_metadata": Jsonb(failure.metadata) if failure and failure.metadata else None,
                                "retention_ms": outcome.retention_ms,
                            },
                        )
                        await conn.execute(q.DELETE_TASK, {"id": lease.invocation_id})
                        if outcome.release_key is not None:
                            release_cur = await conn.execute(
                                q.RELEASE_OBJECT_KEY,
                                {
                                    "service": outcome.release_key[0],
                                    "key": outcome.release_key[1],
                                    "holder": lease.invocation_id,
                                    "owner": lease.owner if outcome.take_next else None,
                                },
                            )
                result = FlushResult(db_now=(await fence.fetchone())[1])
                for sub, cur in sub_curs:
                    row = await cur.fetchone()
                    if row is None:
                        result.submitted.append(Submitted(sub.id, None, False))
                    else:
                        result.submitted.append(Submitted(sub.id, row[1], row[1] == "invoked" and sub.owner is not None, row[2]))
                if isinstance(outcome, Suspend):
                    result.suspended = (await outcome_cur.fetchone()) is not None
                elif isinstance(outcome, Complete):
                    row = await outcome_cur.fetchone()
                    result.waiter = row[0] if row else None
                    if caller_cur is not None:
                        row = await caller_cur.fetchone()
                        result.caller_owner = row[0] if row else None
                    if release_cur is not None:
                        row = await release_cur.fetchone()
                        result.next_holder = row[0] if row else None
                return result
        except psycopg.Error as exc:
            if getattr(exc, "sqlstate", None) == FENCED_SQLSTATE:
                raise Fenced(str(exc.diag.message_primary or exc)) from None
            raise

    @staticmethod
    def _journal_params(invocation_id: str, row: JournalRow) -> typing.Dict[str, typing.Any]:
        failure = row.failure
        return {
            "id": invocation_id,
            "index": row.index,
            "command_index": row.command_index,
            "completes": row.completes,
            "entry_type": row.entry_type,
            "name": row.name,
            "params": Jsonb(row.params) if row.params is not None else None,
            "completed": row.completed,
            "value": row.value,
            "failure_code": failure.code if failure else None,
            "failure_message": failure.message if failure else None,
            "failure_metadata": Jsonb(failure.metadata) if failure and failure.metadata else None,
            "sleep_wakeup_at": row.sleep_wakeup_at,
        }

    # -- workers -------------------------------------------------------------------------------

    async def register_worker(self, worker_id: str, hostname: str, pid: int, services: typing.Sequence[str]) -> datetime:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                self.q.REGISTER_WORKER, {"id": worker_id, "hostname": hostname, "pid": pid, "services": list(services)}
            )
            row = await cur.fetchone()
            await conn.commit()
        return row[0]

    async def heartbeat(self, worker_id: str) -> typing.Optional[datetime]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.q.HEARTBEAT, {"id": worker_id})
            row = await cur.fetchone()
            await conn.commit()
        return None if row is None else row[0]

    async def reap(self, lease_ms: int) -> typing.List[str]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.q.REAP_WORKERS, {"lease_ms": lease_ms})
            rows = await cur.fetchall()
            await conn.commit()
        return [r[0] for r in rows]

    async def unregister_worker(self, worker_id: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(self.q.UNREGISTER_WORKER, {"id": worker_id})
            await conn.commit()

    async def db_now(self) -> datetime:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT now()")
            row = await cur.fetchone()
            await conn.commit()
        return row[0]

    async def notify(self, channel: str, payload: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(self.q.NOTIFY, {"channel": channel, "payload": payload})
            await conn.commit()
