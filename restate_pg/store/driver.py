"""The narrow interface between restate-pg and PostgreSQL.

`Store` owns a psycopg connection pool and runs the statements of `queries.py`; it knows nothing
about handlers or replay. Each public method is one transaction: a single read or
housekeeping statement is sent prepared, in autocommit; a transaction of several statements is
sent as one multi-statement message, which PostgreSQL runs as one implicit transaction (all or
nothing, locks held to its end), and concurrent ones share that message and its commit
(`group_commit`). Measured here, one message is 3-4x cheaper than psycopg's pipeline mode.
"""

from __future__ import annotations

import base64
import hashlib
import os
import typing
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import AsyncClientCursor
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from restate_pg.core.errors import Fenced
from restate_pg.core.hints import Hint
from restate_pg.store.faults import FaultPlan, statement_name
from restate_pg.store.group_commit import Applied, GroupCommitter
from restate_pg.store.queries import Queries
from restate_pg.core.records import (
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
    Resolution,
    Retry,
    Submission,
    Submitted,
    Suspend,
)
from restate_pg.store.schema import FENCED_SQLSTATE

if typing.TYPE_CHECKING:
    from restate_pg.store.steps import SqlStepStatements

#: The settings of a registered service that an operator may change (`modify_service`).
SERVICE_SETTINGS = ("public", "idempotency_retention", "workflow_retention", "journal_retention",
                    "inactivity_timeout", "abort_timeout")


def state_version(state: typing.Mapping[str, bytes]) -> str:
    """A version of an object key's whole state: it changes whenever any entry does. Computed as
    Restate computes it, so that Restate's CLI (`restate state patch|clear|edit`), which derives the
    version from the state it read, sends one that matches."""
    digest = hashlib.sha256()
    for index, name in enumerate(sorted(state, key=str.encode)):
        digest.update(index.to_bytes(8, "big") + b"\x01" + name.encode() + b"\x02" + bytes(state[name]) + b"\x03")
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii").rstrip("=")  # as the CLI sends it


def _failure(code: typing.Optional[int], message: typing.Optional[str], metadata: typing.Any) -> typing.Optional[Failure]:
    if code is None:
        return None
    return Failure(code, message or "", metadata)


def submission_doc(sub: Submission) -> typing.Dict[str, typing.Any]:
    """A submission as `submit_invocation()` reads it."""
    return {
        "id": sub.id,
        "service": sub.service,
        "handler": sub.handler,
        "key": sub.key,
        "service_ty": sub.service_ty,
        "handler_ty": sub.handler_ty,
        "input": _b64(sub.input),
        "headers": sub.headers,
        "idempotency_key": sub.idempotency_key,
        "invoked_by": sub.invoked_by,
        "caller_id": sub.caller_id,
        "caller_command": sub.caller_command,
        "waiter": sub.waiter,
        "delay_ms": sub.delay_ms,
        "owner": sub.owner,
        "deployment": sub.deployment,
    }


def _lock_params(service: str, key: str) -> typing.Dict[str, typing.Any]:
    return {"service": service, "key": key}


Statement = typing.Tuple[str, typing.Mapping[str, typing.Any]]
Rows = typing.Optional[typing.List[typing.Tuple[typing.Any, ...]]]


def _fenced_or(exc: psycopg.Error) -> Exception:
    if getattr(exc, "sqlstate", None) == FENCED_SQLSTATE:
        return Fenced(str(exc.diag.message_primary or exc))
    return exc


def _named(conninfo: str, application_name: str) -> str:
    """`conninfo` with an application name, unless it or `PGAPPNAME` has one (or it cannot be
    read: connecting will say what is wrong), so that operators can tell whose backend is whose."""
    try:
        if "application_name" in conninfo_to_dict(conninfo) or os.environ.get("PGAPPNAME"):
            return conninfo
        return make_conninfo(conninfo, application_name=application_name)
    except psycopg.ProgrammingError:
        return conninfo


def _b64(value: typing.Optional[bytes]) -> typing.Optional[str]:
    return None if value is None else base64.b64encode(value).decode("ascii")


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
        faults: typing.Optional[FaultPlan] = None,
        application_name: str = "restate-pg",
    ) -> None:
        self.schema = schema
        #: Injected failures (fault-injection tests only); None in normal operation.
        self.faults = faults
        self.q = Queries(schema)
        conninfo = _named(conninfo, application_name)
        self.conninfo = conninfo
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0 if prepare else None},
            name="restate-pg",
        )
        self._committer = GroupCommitter(self.pool, self.q.APPLY, faults=faults)
        self._heartbeat_conn: typing.Optional[psycopg.AsyncConnection[typing.Any]] = None

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=10)

    async def close(self) -> None:
        if self._heartbeat_conn is not None:
            await self._heartbeat_conn.close()
            self._heartbeat_conn = None
        await self.pool.close()

    # -- the two ways of talking to the database ---------------------------------------------

    async def _one(self, sql: str, params: typing.Mapping[str, typing.Any]) -> typing.List[typing.Tuple[typing.Any, ...]]:
        """One statement, prepared, in its own (autocommit) transaction."""
        name = statement_name(sql) if self.faults is not None else ""
        if self.faults is not None:
            self.faults.check(name, "before")
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            rows = await cur.fetchall() if cur.description is not None else []
        if self.faults is not None:
            self.faults.check(name, "after")
        return rows

    async def _transaction(self, statements: typing.Sequence[Statement]) -> typing.List[Rows]:
        """Several statements as one implicit transaction, in one round trip; rows of each."""
        names = [statement_name(sql) for sql, _ in statements] if self.faults is not None else []
        for name in names:
            self.faults.check(name, "before")  # type: ignore[union-attr]
        async with self.pool.connection() as conn:
            cur = AsyncClientCursor(conn)
            script = ";\n".join(cur.mogrify(sql, params) for sql, params in statements)
            try:
                await cur.execute(script)
            except psycopg.Error as exc:
                raise _fenced_or(exc) from None
            results: typing.List[Rows] = []
            while True:
                results.append(await cur.fetchall() if cur.description is not None else None)
                if not cur.nextset():
                    break
        for name in names:
            self.faults.check(name, "after")  # type: ignore[union-attr]
        return results

    async def _apply(self, request: typing.Dict[str, typing.Any]) -> Applied:
        """One request of the server-side `apply()`, committed with concurrent ones (group commit)."""
        try:
            return await self._committer.run(request)
        except psycopg.Error as exc:
            raise _fenced_or(exc) from None

    # -- submitting ---------------------------------------------------------------------------

    async def submit(self, sub: Submission) -> Submitted:
        """Create one invocation (`submit_invocation`), taking the object key's lock if needed."""
        started, db_now = await self._apply({"submit": submission_doc(sub)})
        return _submitted(sub, started, db_now)

    async def get_invocation(self, invocation_id: str) -> typing.Optional[typing.Dict[str, typing.Any]]:
        return await self._first(self.q.GET_INVOCATION, {"id": invocation_id})

    async def wait_for(self, invocation_id: str, waiter: str) -> typing.Optional[typing.Dict[str, typing.Any]]:
        """Register `waiter` to be told of the result (`wait_for_invocation`); returns the row."""
        return await self._first(self.q.WAIT_FOR_INVOCATION, {"id": invocation_id, "waiter": waiter})

    # -- claiming ------------------------------------------------------------------------------

    async def claim(
        self, owner: str, services: typing.Sequence[str], limit: int, deployments: typing.Sequence[str] = ()
    ) -> typing.List[ClaimedTask]:
        """Lease due tasks (`claim_tasks`): unpinned ones, pinned to `deployments[0]` (the
        worker's own) as they start, and those pinned to any of `deployments`."""
        params = {"owner": owner, "services": list(services), "limit": limit,
                  "deployments": list(deployments), "deployment": deployments[0] if deployments else None}
        _, rows = await self._transaction([(self.q.START_DUE_SCHEDULED, params), (self.q.CLAIM_TASKS, params)])
        return [
            ClaimedTask(Lease(r[0], owner, r[1], r[2]), wakeups=r[3], previous_status=r[4], db_now=r[5], lag=r[6])
            for r in rows or []
        ]

    async def task_gauges(self) -> typing.List[typing.Tuple[str, str, int]]:
        """(service, status, count) of invocations not completed (`task_gauges`)."""
        return [(r[0], r[1], r[2]) for r in await self._one(self.q.TASK_GAUGES, {})]

    async def next_due(self, services: typing.Sequence[str], deployments: typing.Sequence[str] = ()) -> typing.Optional[float]:
        rows = await self._one(self.q.NEXT_DUE, {"services": list(services), "deployments": list(deployments)})
        return rows[0][0] if rows else None

    async def compatible_deployments(self, deployment: str) -> typing.List[str]:
        rows = await self._one(self.q.COMPATIBLE_DEPLOYMENTS, {"deployment": deployment})
        return list(rows[0][0]) if rows else []

    async def mark_compatible(self, deployment: str, compatible: typing.Sequence[str]) -> bool:
        return bool(await self._one(self.q.MARK_COMPATIBLE, {"deployment": deployment, "compatible": list(compatible)}))

    async def load(self, ids: typing.Sequence[str]) -> typing.Dict[str, LoadedInvocation]:
        """Invocation rows, journals and mailboxes of freshly claimed invocations, in one round trip."""
        params = {"ids": list(ids)}
        inv_rows, jr_rows, mb_rows = await self._transaction(
            [(self.q.LOAD_INVOCATIONS, params), (self.q.LOAD_JOURNALS, params), (self.q.LOAD_MAILBOXES, params)]
        )
        loaded: typing.Dict[str, LoadedInvocation] = {}
        for r in inv_rows or []:
            record = InvocationRecord(
                id=r[0], service=r[1], handler=r[2], key=r[3], input=bytes(r[4]), headers=r[5] or {},
                idempotency_key=r[6], caller_id=r[7], caller_command=r[8], status=r[9],
            )
            loaded[record.id] = LoadedInvocation(record, [], [])
        for r in jr_rows or []:
            target = loaded.get(r[0])
            if target is not None:
                target.journal.append(
                    JournalRow(
                        index=r[1], command_index=r[2], completes=r[3], entry_type=r[4], name=r[5],
                        params=r[6], completed=r[7], value=None if r[8] is None else bytes(r[8]),
                        failure=_failure(r[9], r[10], r[11]), sleep_wakeup_at=r[12],
                    )
                )
        for r in mb_rows or []:
            target = loaded.get(r[0])
            if target is not None:
                target.mailbox.append(
                    MailboxItem(r[1], r[2], None if r[3] is None else bytes(r[3]), _failure(r[4], r[5], r[6]))
                )
        return loaded

    async def read_mailbox(self, invocation_id: str, after: int) -> typing.Tuple[typing.Optional[int], typing.List[MailboxItem]]:
        """The wake-up counter and notifications newer than `after` (`read_mailbox`)."""
        rows = await self._one(self.q.READ_MAILBOX, {"id": invocation_id, "after": after})
        if not rows:
            return None, []
        items = [
            MailboxItem(r[1], r[2], None if r[3] is None else bytes(r[3]), _failure(r[4], r[5], r[6]))
            for r in rows
            if r[1] is not None
        ]
        return rows[0][0], items

    async def load_state(self, service: str, key: str) -> typing.Dict[str, bytes]:
        rows = await self._one(self.q.LOAD_STATE, {"service": service, "key": key})
        return {name: bytes(value) for name, value in rows}

    # -- an attempt's transaction ------------------------------------------------------------------

    async def flush(self, lease: Lease, batch: Batch) -> FlushResult:
        """Apply an attempt's buffered writes and its outcome atomically, fenced by its lease
        (`flush()` in procedures.py)."""
        applied, db_now = await self._apply({"flush": flush_request(lease, batch)})
        return flush_result(batch, applied, db_now)

    def step_statements(self, lease: Lease) -> "SqlStepStatements":
        """The fence and flush a database step of `lease`'s attempt runs in its own transaction
        (the runtime's `JournalStore` port)."""
        from restate_pg.store.steps import SqlStepStatements  # steps.py reads the flush codec from here

        return SqlStepStatements(self.q, lease)

    async def resolve_awakeable(self, resolution: Resolution) -> typing.Tuple[str, typing.Optional[str]]:
        """Complete an awakeable from outside any handler (`resolve_awakeable()`); returns what
        became of it (resolved, unknown, completed, already) and the process to wake."""
        applied, _ = await self._apply({"resolve": _resolution_doc(resolution)})
        return applied["status"], applied.get("owner")

    async def cancel(self, invocation_id: str) -> typing.Dict[str, typing.Any]:
        """Ask an invocation to stop (`cancel_invocation()`): what became of it, whom to wake."""
        applied, _ = await self._apply({"cancel": invocation_id})
        return typing.cast(typing.Dict[str, typing.Any], applied)

    async def kill(self, invocation_id: str) -> typing.Dict[str, typing.Any]:
        """End an invocation at once with its callees (`kill_invocation()`)."""
        applied, _ = await self._apply({"kill": invocation_id})
        return typing.cast(typing.Dict[str, typing.Any], applied)

    async def purge(self, invocation_id: str) -> typing.Tuple[typing.Optional[str], bool]:
        """Forget a completed invocation (`purge_invocation`): its status before, and whether it went."""
        status, purged = (await self._one(self.q.PURGE_INVOCATION, {"id": invocation_id}))[0]
        return status, bool(purged)

    async def resume(self, invocation_id: str) -> typing.Tuple[typing.Optional[str], typing.Optional[str], bool]:
        """Run a paused, backing-off or suspended invocation now (`resume_invocation`)."""
        status, task_status, resumed = (await self._one(self.q.RESUME_INVOCATION, {"id": invocation_id}))[0]
        return status, task_status, bool(resumed)

    async def fire_timers(self, invocation_id: typing.Optional[str]) -> typing.List[typing.Tuple[str, typing.Optional[str], bool]]:
        """Make pending sleeps and delayed starts due now (`fire_timers`, for tests): per invocation
        touched, its id, the process running it, and whether a sleep of it fired."""
        rows = await self._one(self.q.FIRE_TIMERS, {"id": invocation_id})
        return [(target, owner, bool(slept)) for target, owner, slept in rows]

    async def pause(
        self, invocation_id: str
    ) -> typing.Tuple[typing.Optional[str], typing.Optional[str], bool, typing.Optional[Lease]]:
        """Stop an invocation until it is resumed (`pause_invocation`): its status, its task's
        status before, whether it was paused now, and the lease of the attempt that was stopped."""
        status, task_status, paused, owner, epoch = (await self._one(self.q.PAUSE_INVOCATION, {"id": invocation_id}))[0]
        stopped = Lease(invocation_id, owner, epoch, 0) if owner is not None else None
        return status, task_status, bool(paused), stopped

    async def purge_journal(self, invocation_id: str) -> typing.Optional[str]:
        """Forget a completed invocation's journal (`purge_journal`); returns its status."""
        rows = await self._one(self.q.PURGE_JOURNAL, {"id": invocation_id})
        return rows[0][0] if rows else None

    async def restart_source(self, invocation_id: str, prefix: int) -> typing.Optional[typing.Dict[str, typing.Any]]:
        """What restarting `invocation_id` with its journal up to `prefix` needs to check."""
        return await self._first(self.q.RESTART_SOURCE, {"id": invocation_id, "prefix": prefix})

    async def restart(
        self, invocation_id: str, new_id: str, prefix: int, lock: typing.Optional[typing.Tuple[str, str]]
    ) -> typing.Tuple[typing.Optional[str], int]:
        """Create `new_id` re-running completed `invocation_id` with its journal up to `prefix`,
        in one transaction; returns the new invocation's status (None if not created) and the
        number of journal entries kept, or (None, -1) if the old invocation is gone."""
        params = {"id": invocation_id, "new_id": new_id, "prefix": prefix}
        statements: typing.List[Statement] = []
        if lock is not None:
            statements.append((self.q.LOCK_OBJECT_KEY, _lock_params(*lock)))
        statements += [
            (self.q.RESTART_INVOCATION, params),
            (self.q.MARK_RESTARTED, params),
            (self.q.COPY_JOURNAL_PREFIX, params),
        ]
        created = (await self._transaction(statements))[len(statements) - 3]
        return (created[0][0], int(created[0][1])) if created else (None, -1)

    async def purge_expired(self, limit: int = 1000) -> int:
        """Forget up to `limit` completed invocations past their retention (`purge_expired`)."""
        return int((await self._one(self.q.PURGE_EXPIRED, {"limit": limit}))[0][0])

    # -- workers -------------------------------------------------------------------------------

    async def register_worker(
        self, worker_id: str, hostname: str, pid: int, services: typing.Sequence[str], deployment: typing.Optional[str] = None
    ) -> datetime:
        rows = await self._one(
            self.q.REGISTER_WORKER,
            {"id": worker_id, "hostname": hostname, "pid": pid, "services": list(services), "deployment": deployment},
        )
        return rows[0][0]

    async def register_deployment(self, deployment: str, services: typing.Sequence[typing.Dict[str, typing.Any]]) -> None:
        """Record a deployment and make it the latest of its services, unless a newer one is
        (`register_deployment`, `register_services`, one transaction)."""
        params = {"deployment": deployment, "services": Jsonb(list(services))}
        await self._transaction([(self.q.REGISTER_DEPLOYMENT, params), (self.q.REGISTER_SERVICES, params)])

    # -- services, deployments and state, for operators -------------------------------------------

    async def list_services(self, name: typing.Optional[str] = None) -> typing.List[typing.Dict[str, typing.Any]]:
        return await self._dicts(self.q.LIST_SERVICES, {"name": name})

    async def modify_service(self, name: str, settings: typing.Mapping[str, typing.Any]) -> bool:
        """Change a service's settings (`modify_service`): public, and retentions and timeouts in
        seconds; a setting left out stays as it is. False if the service is not registered."""
        params = {key: settings.get(key) for key in SERVICE_SETTINGS}
        return bool(await self._one(self.q.MODIFY_SERVICE, {"name": name, **params}))

    async def list_deployments(self, deployment: typing.Optional[str] = None) -> typing.List[typing.Dict[str, typing.Any]]:
        return await self._dicts(self.q.LIST_DEPLOYMENTS, {"id": deployment})

    async def change_state(
        self,
        service: str,
        key: str,
        changes: typing.Mapping[str, typing.Optional[bytes]],
        *,
        replace: bool = False,
        expected_version: typing.Optional[str] = None,
    ) -> bool:
        """Write state entries of an object key (None clears one), or with `replace` make them the
        key's whole state; all or nothing. With `expected_version`, only if the state still has
        that version (`state_version`); returns False when it did not."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(self.q.LOCK_OBJECT_KEY, _lock_params(service, key))
            if expected_version is not None:
                rows = await (await conn.execute(self.q.LOAD_STATE, {"service": service, "key": key})).fetchall()
                if state_version({name: bytes(value) for name, value in rows}) != expected_version.rstrip("="):
                    return False
            if replace:
                await conn.execute(self.q.CLEAR_STATE_OF_KEY, {"service": service, "key": key, "name": None})
            for name, value in changes.items():
                params = {"service": service, "key": key, "name": name, "value": value}
                await conn.execute(self.q.CLEAR_STATE_OF_KEY if value is None else self.q.SET_STATE_ENTRY, params)
        return True

    async def _first(self, sql: str, params: typing.Mapping[str, typing.Any]) -> typing.Optional[typing.Dict[str, typing.Any]]:
        rows = await self._dicts(sql, params)
        return rows[0] if rows else None

    async def _dicts(self, sql: str, params: typing.Mapping[str, typing.Any]) -> typing.List[typing.Dict[str, typing.Any]]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, params)
            return await cur.fetchall()

    # -- cron schedules -------------------------------------------------------------------------

    async def create_cron(self, row: typing.Mapping[str, typing.Any]) -> bool:
        """Register a run-time schedule (`create_cron`); False if the name is taken."""
        return bool(await self._one(self.q.CREATE_CRON, _cron_params(row, "api")))

    async def sync_code_crons(
        self, rows: typing.Sequence[typing.Mapping[str, typing.Any]], services: typing.Sequence[str]
    ) -> typing.Tuple[typing.List[str], typing.List[str]]:
        """Make the code-declared schedules of `services` be `rows`, in one transaction; returns
        the names refused (taken by run-time schedules) and the names deleted."""
        refused: typing.List[str] = []
        async with self.pool.connection() as conn, conn.transaction():
            for row in rows:
                if not await (await conn.execute(self.q.SYNC_CODE_CRON, _cron_params(row, "code"))).fetchall():
                    refused.append(row["name"])
            cur = await conn.execute(
                self.q.DELETE_STALE_CODE_CRONS, {"services": list(services), "names": [row["name"] for row in rows]})
            deleted = [r[0] for r in await cur.fetchall()]
        return refused, deleted

    async def list_crons(self, name: typing.Optional[str] = None) -> typing.List[typing.Dict[str, typing.Any]]:
        return await self._dicts(self.q.LIST_CRONS, {"name": name})

    async def set_cron_enabled(self, name: str, enabled: bool, next_at: datetime) -> bool:
        """Pause or resume a schedule (`set_cron_enabled`); False if there is none of that name."""
        return bool(await self._one(self.q.SET_CRON_ENABLED, {"name": name, "enabled": enabled, "next_at": next_at}))

    async def delete_cron(self, name: str) -> bool:
        return bool(await self._one(self.q.DELETE_CRON, {"name": name}))

    async def next_cron_due(self, targets: typing.Sequence[str]) -> typing.Optional[float]:
        """Seconds until the next schedule of these handlers ('Service/handler') is due."""
        rows = await self._one(self.q.NEXT_CRON_DUE, {"targets": list(targets)})
        return rows[0][0] if rows else None

    async def fire_due_crons(
        self,
        targets: typing.Sequence[str],
        limit: int,
        plan: typing.Callable[[typing.Dict[str, typing.Any]], "CronFiring"],
    ) -> typing.List[typing.Tuple[str, typing.List[str]]]:
        """Claim due schedules of these handlers ('Service/handler', `claim_due_crons`), submit
        the invocations `plan` makes of each and advance it, all in one transaction: a tick fires
        exactly once, whichever worker claims it. Returns each schedule's name and the ids of
        the invocations created."""
        fired: typing.List[typing.Tuple[str, typing.List[str]]] = []
        async with self.pool.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(self.q.CLAIM_DUE_CRONS, {"targets": list(targets), "limit": limit})
            for job in await cur.fetchall():
                firing = plan(job)
                created: typing.List[str] = []
                for sub in firing.submissions:
                    if sub.exclusive:
                        await conn.execute(self.q.LOCK_OBJECT_KEY, _lock_params(sub.service, sub.key or ""))
                    status = await (await conn.execute(self.q.SUBMIT_INVOCATION, {"doc": Jsonb(submission_doc(sub))})).fetchone()
                    if status is not None and status[0] is not None:
                        created.append(sub.id)
                last = firing.submissions[-1] if firing.submissions else None
                await conn.execute(self.q.ADVANCE_CRON, {
                    "name": job["name"], "next_at": firing.next_at, "tick": firing.last_tick,
                    "invocation_id": last.id if last is not None else None})
                fired.append((job["name"], created))
        return fired

    async def heartbeat(
        self, worker_id: str, held: typing.Collection[str], grace_ms: int
    ) -> typing.Optional[typing.Tuple[datetime, typing.List[str]]]:
        """Renew the worker's leases and give back those older than `grace_ms` that it does not
        hold an attempt for (`held`); returns the database time and what was given back, or
        None if the worker was declared dead.

        It runs on a connection of its own: a worker's liveness must not wait for a free pool
        connection, nor for any statement of its own that waits on another worker's locks."""
        if self.faults is not None:
            self.faults.check("heartbeat", "before")
        conn = self._heartbeat_conn
        if conn is None or conn.closed:
            conn = self._heartbeat_conn = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, connect_timeout=10)
        try:
            cur = await conn.execute(self.q.HEARTBEAT, {"id": worker_id, "held": list(held), "grace_ms": grace_ms})
            row = await cur.fetchone()
        except psycopg.OperationalError:
            self._heartbeat_conn = None
            await conn.close()
            raise
        if self.faults is not None:
            self.faults.check("heartbeat", "after")
        return None if row is None else (row[0], list(row[1]))

    async def reap(self, lease_ms: int) -> typing.List[str]:
        return [r[0] for r in await self._one(self.q.REAP_WORKERS, {"lease_ms": lease_ms})]

    async def unregister_worker(self, worker_id: str) -> None:
        await self._one(self.q.UNREGISTER_WORKER, {"id": worker_id})

    async def db_now(self) -> datetime:
        return (await self._one(self.q.DB_NOW, {}))[0][0]

    async def notify(self, channel: str, hint: Hint) -> None:
        await self._one(self.q.NOTIFY, {"channel": channel, "payload": hint.encode()})


@dataclass(frozen=True)
class CronFiring:
    """What one due schedule does now: the invocations of its ticks, and its next tick."""

    submissions: typing.Sequence[Submission]
    next_at: datetime
    last_tick: typing.Optional[datetime]


def _cron_params(row: typing.Mapping[str, typing.Any], source: str) -> typing.Dict[str, typing.Any]:
    return {**row, "headers": Jsonb(dict(row.get("headers") or {})), "source": source,
            "enabled": row.get("enabled", True)}


def _submitted(sub: Submission, started: typing.Dict[str, typing.Any], db_now: datetime) -> Submitted:
    status = started["status"]
    if status is None:
        return Submitted(sub.id, None, False)
    state = started.get("state")
    return Submitted(
        sub.id, status, status == "invoked" and sub.owner is not None, db_now,
        None if state is None else {name: base64.b64decode(value) for name, value in state.items()},
    )


def _failure_doc(failure: typing.Optional[Failure]) -> typing.Dict[str, typing.Any]:
    if failure is None:
        return {"failure_code": None, "failure_message": None, "failure_metadata": None}
    # a text column cannot hold NUL: a message that has one (echoing bad input, say) is spelled out
    message = failure.message.replace("\x00", "\\u0000")
    return {"failure_code": failure.code, "failure_message": message, "failure_metadata": failure.metadata or None}


def _resolution_doc(resolution: Resolution) -> typing.Dict[str, typing.Any]:
    failure = resolution.failure
    return {
        "id": resolution.awakeable_id,
        "invocation_id": resolution.invocation_id,
        "command_index": resolution.command_index,
        "value": _b64(resolution.value) if failure is None else None,
        **_failure_doc(failure),
    }


def flush_request(lease: Lease, batch: Batch) -> typing.Dict[str, typing.Any]:
    """The request of `flush()` in procedures.py for an attempt's buffered writes and outcome."""
    outcome = batch.outcome
    request: typing.Dict[str, typing.Any] = {"id": lease.invocation_id, "owner": lease.owner, "epoch": lease.epoch}
    if batch.create is not None:  # created here, leased to this attempt: the fence then holds
        request["create"] = submission_doc(batch.create)
    keys: typing.Set[typing.Tuple[str, str]] = {
        (s.service, s.key or "") for s in batch.submissions if s.exclusive and s.delay_ms is None
    }
    if isinstance(outcome, Complete) and outcome.release_key is not None:
        keys.add(outcome.release_key)
    if keys:
        request["locks"] = sorted(keys)
    if batch.journal:
        request["journal"] = [_journal_doc(row) for row in batch.journal]
    if batch.state:
        request["state"] = [
            {"op": op.kind, "service": service, "key": key, "name": op.name, "value": _b64(op.value)}
            for service, key, op in batch.state
        ]
    if batch.submissions:
        request["submissions"] = [submission_doc(sub) for sub in batch.submissions]
    if batch.consumed:
        request["consumed"] = batch.consumed
    if batch.resolutions:
        request["resolutions"] = [_resolution_doc(r) for r in batch.resolutions]
    if batch.promise_gets or batch.promise_completions:
        request["promise_key"] = batch.promise_key
        request["promise_gets"] = [{"name": g.name, "command": g.command_index, "peek": g.peek} for g in batch.promise_gets]
        request["promise_completions"] = [
            {"name": c.name, "command": c.command_index, "value": _b64(c.value) if c.failure is None else None,
             **_failure_doc(c.failure)}
            for c in batch.promise_completions
        ]
    if batch.cancels:
        request["cancels"] = batch.cancels
    if batch.attaches:
        request["attaches"] = [{"target": target, "command": command} for target, command in batch.attaches]
    if isinstance(outcome, Suspend):
        request["outcome"] = {"kind": "suspend", "wake_at": outcome.wake_at, "wakeups": outcome.wakeups}
    elif isinstance(outcome, Retry):
        request["outcome"] = {
            "kind": "retry",
            "status": outcome.status,
            "delay_ms": outcome.delay_ms,
            "failure": outcome.failure,
            "failure_code": outcome.failure_code,
        }
    elif isinstance(outcome, Complete):
        failure = outcome.failure
        request["outcome"] = {
            "kind": "complete",
            "output": _b64(outcome.output),
            **_failure_doc(failure),
            "retention_ms": outcome.retention_ms,
            "caller_id": outcome.caller[0] if outcome.caller else None,
            "caller_command": outcome.caller[1] if outcome.caller else None,
            "release_key": outcome.release_key,
            "take_next_owner": lease.owner if outcome.take_next else None,
        }
    return request


def flush_result(batch: Batch, applied: typing.Dict[str, typing.Any], db_now: datetime) -> FlushResult:
    """What a committed `flush()` of `batch` answered."""
    result = FlushResult(db_now=db_now)
    for sub, started in zip(batch.submissions, applied["submitted"], strict=True):
        result.submitted.append(_submitted(sub, started, db_now))
    result.suspended = bool(applied.get("suspended"))
    result.waiter = applied.get("waiter")
    result.caller_owner = applied.get("caller_owner")
    result.woken = [(target, owner) for target, owner in applied.get("woken", ())]
    result.answers = {int(command): answer for command, answer in (applied.get("answers") or {}).items()}
    holder = applied.get("next_holder")
    if holder is not None:
        result.next_holder = InvocationRecord(
            id=holder["id"], service=holder["service"], handler=holder["handler"], key=holder["key"],
            input=base64.b64decode(holder["input"]), headers=holder["headers"] or {},
            idempotency_key=holder["idempotency_key"], caller_id=holder["caller_id"],
            caller_command=holder["caller_command"], status="invoked",
        )
    return result


def _journal_doc(row: JournalRow) -> typing.Dict[str, typing.Any]:
    failure = row.failure
    return {
        "index": row.index,
        "command_index": row.command_index,
        "completes": row.completes,
        "entry_type": row.entry_type,
        "name": row.name,
        "params": row.params,
        "completed": row.completed,
        "value": _b64(row.value),
        **_failure_doc(failure),
        "sleep_wakeup_at": row.sleep_wakeup_at,
    }
