"""Starting invocations in the application's own database transaction.

`enqueue(conn, target, arg)` writes the invocation with the same server-side function the
ingress and the workers use (`apply()` in procedures.py: the object key's lock for an exclusive
handler, then `submit_invocation()`), and a NOTIFY that hints the workers, on the connection the
application is already using. Both belong to its transaction: commit, and the invocation exists
and a worker picks it up at once (PostgreSQL delivers the NOTIFY at commit); roll back, and it
never existed. This is the transactional outbox, with restate-pg's own tables as the outbox.
"""

from __future__ import annotations

import typing
from datetime import timedelta


from restate_pg.api.app import App
from restate_pg.store.user_connections import execute, execute_async
from restate_pg.client.handle import ClientError, RestateClientSendHandle
from restate_pg.client.scoped import flow_of
from restate_pg.client.target import TargetLike, resolve
from restate_pg.core.hints import work_channel
from restate_pg.store.codec import decode_results, encode_requests, submission_doc
from restate_pg.store.errors import is_schema_missing
from restate_pg.store.migrate import not_migrated
from restate_pg.store.queries import Queries
from restate_pg.core.records import Submission
from restate_pg.services.outcomes import BacklogFull


def prepare(
    target: TargetLike,
    arg: typing.Any = None,
    *,
    key: typing.Optional[str] = None,
    delay: typing.Optional[timedelta] = None,
    idempotency_key: typing.Optional[str] = None,
    headers: typing.Optional[typing.Dict[str, str]] = None,
    app: typing.Optional[App] = None,
    scope: typing.Optional[str] = None,
    limit_key: typing.Optional[str] = None,
    priority: int = 0,
) -> Submission:
    """The submission of a request to `target` with input `arg` (and flow control: its scope,
    limit key and priority, docs/flow-control.md)."""
    flow = flow_of(scope, limit_key, priority)
    resolved = resolve(target, app)
    payload = resolved.input_serde.serialize(arg) if resolved.require_definition().takes_input else b""
    return resolved.submission(key, payload, delay=delay, idempotency_key=idempotency_key, headers=headers, flow=flow)


def _statement(sub: Submission, schema: str) -> typing.Tuple[str, typing.Dict[str, typing.Any]]:
    requests = encode_requests([{"submit": submission_doc(sub)}])
    return Queries(schema).ENQUEUE, {"requests": requests, "channel": work_channel(schema)}


def _handle(sub: Submission, row: typing.Sequence[typing.Any]) -> RestateClientSendHandle:
    started = decode_results(row[0])[0]  # the `started` column of ENQUEUE
    if started["status"] == "rejected":  # nothing was written; the transaction goes on
        raise ClientError(429, str(BacklogFull(sub.scope, sub.limit_key, f"{sub.service}/{sub.handler}")))
    return RestateClientSendHandle(sub.id, 202, "Accepted" if started["status"] is not None else "PreviouslyAccepted")


def enqueue(
    conn: typing.Any, target: TargetLike, arg: typing.Any = None, *, schema: str = "restate", **options: typing.Any
) -> RestateClientSendHandle:
    """Start an invocation of `target` (a send: nothing waits for it) in `conn`'s transaction.

    `conn` is a SQLAlchemy `Session` or `Connection`, a psycopg `Connection`, or a DB-API
    connection (Django's: see `restate_pg.contrib.django`). Options, as for `prepare`: `key` (of
    the object or workflow; a workflow's `run` handler starts the workflow), `delay`,
    `idempotency_key`, `headers`, `app` (to name the target by a string), and `scope`,
    `limit_key`, `priority` (flow control). Returns the invocation id, with status
    "PreviouslyAccepted" when the same idempotency key or workflow id was submitted before; a
    scope whose backlog is full raises `ClientError(429)`, having written nothing.
    """
    sub = prepare(target, arg, **options)
    sql, params = _statement(sub, schema)
    try:
        row = execute(conn, sql, params)
    except Exception as exc:
        _refuse_unmigrated(exc, schema)
        raise
    return _handle(sub, row)


async def enqueue_async(
    conn: typing.Any, target: TargetLike, arg: typing.Any = None, *, schema: str = "restate", **options: typing.Any
) -> RestateClientSendHandle:
    """`enqueue` on a SQLAlchemy `AsyncSession` or `AsyncConnection`, or a psycopg `AsyncConnection`;
    the same options (`key`, `delay`, `idempotency_key`, `headers`, `app`, `scope`, `limit_key`,
    `priority`)."""
    sub = prepare(target, arg, **options)
    sql, params = _statement(sub, schema)
    try:
        row = await execute_async(conn, sql, params)
    except Exception as exc:
        _refuse_unmigrated(exc, schema)
        raise
    return _handle(sub, row)


def _refuse_unmigrated(exc: Exception, schema: str) -> None:
    """Raise the CLI's one-line `SchemaNotMigrated` in place of the driver's `UndefinedTable` (or
    missing schema or function) when `schema` was never migrated. Checked only once the statement
    failed, so that a working enqueue costs nothing more; the driver's error is dropped, its
    message is the one-liner's. The application's transaction is aborted either way."""
    if is_schema_missing(exc):
        raise not_migrated(schema) from None
