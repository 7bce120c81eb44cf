"""Group commit: the transactions that concurrent attempts want to commit, sent as one.

Every write of restate-pg's hot path is a short transaction, and its cost is dominated by what
does not depend on its size: a round trip through libpq and the event loop, and PostgreSQL's
per-commit work. Each such transaction is a request to the server-side function `apply()`
(`procedures.py`). While one call is in flight, the requests made in the meantime queue up; when
it returns, all of them go to the server in the next call, as one transaction. A lone request is
sent at once, so sequential latency does not change; under load, commits and round trips per
invocation fall with the number of concurrent attempts.

The price of sharing a transaction is sharing its fate: if any request fails (most often the
fence of an attempt that lost its lease, or a deadlock with another process), the whole group
rolls back, and then each request of the group is run again on its own, so that the error reaches
only the request it belongs to. Nothing of a rolled-back group was applied, so re-running is
safe. One group is in flight per process at a time, so the transactions of one process seldom
wait for each other's locks. Each lane (the group in flight, and the two below) keeps its
connection from one transaction to the next (store/held_connection.py).

One kind of request does not queue: the completion of an exclusive handler that hands its object
key over (`hands_over_key`). Calls to one key run one after another, each waiting for that
completion's commit; queued behind a group in flight (most often other callers' submissions), it
would add a whole round trip of that group to every call of the key. It is sent at once, on a
connection of its own, beside the group in flight, unless another such completion is in flight
already (then it queues: with many keys busy, completions share groups as everything else does).
Only a completion that writes to no other invocation goes so: it takes rows of its own invocation,
and the key's lock only when it frees the key (revision 0019: handing the key to the head of its
inbox races with no submission, which appends at the tail), so it seldom waits for the group in
flight, even one holding submissions to the same key; where a cycle does arise (the group holds
the key and attaches a submission to this very invocation by its idempotency key), PostgreSQL
breaks it, and a completion whose transaction it rolled back joins the queue as any request.

Submissions that lock nothing another request holds (`commits_beside`: a service's or a shared
handler's, with no idempotency key, debounce key or flow scope; most often the ingress's sends)
have a lane of their own: while a group is in flight they are committed in groups of their own,
beside it, on a second connection. A send is answered once its row commits, and under load the
group in flight is the flushes of hundreds of attempts: queued behind it, a send waited for two
of its round trips (TypeScript W4: sends accepted +20-30 %, completions level). Such a submission
inserts its own rows and takes only shared locks, except where a target rule with a backlog
governs its service (a lock per service, held to its commit): if two groups ever take two such
locks in opposite orders, PostgreSQL breaks the cycle and the group it rolled back is run again
request by request, as after any failure.
"""

from __future__ import annotations

import asyncio
import time
import typing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg

from restate_pg.store.codec import decode_results, encode_requests_utf8
from restate_pg.store.faults import FaultPlan, request_kinds
from restate_pg.store.prepared_call import PreparedCall

#: The name the `APPLY` statement is prepared under, on every connection that runs it.
APPLY_STATEMENT = "restate_pg_apply"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: Upper bound on the requests of one group, to bound the time a request can wait behind others.
MAX_GROUP_REQUESTS = 128

Applied = typing.Tuple[typing.Any, datetime]  # a request's result, and the transaction's now()


class Lane(typing.Protocol):
    """Where one lane's transactions get their connection (`HeldConnection`)."""

    def __call__(self) -> typing.AsyncContextManager[typing.Any]: ...

    async def release(self) -> None: ...

    async def release_if_idle(self) -> None: ...


@dataclass
class _Request:
    body: typing.Dict[str, typing.Any]
    done: "asyncio.Future[Applied]"


class GroupCommitter:
    """Runs requests of `apply()`, sharing transactions between concurrent callers."""

    def __init__(
        self,
        lane: typing.Callable[[], "Lane"],
        apply_sql: str,
        *,
        max_requests: int = MAX_GROUP_REQUESTS,
        faults: typing.Optional[FaultPlan] = None,
        submission_lane: bool = True,
    ) -> None:
        #: The connections of each lane, one transaction at a time each: the group in flight's, and
        #: the express completions' (`lane()` is called once for each; store/held_connection.py).
        self._connection = lane()
        self._express: typing.Optional[Lane] = lane() if submission_lane else None
        self._faults = faults
        self._apply = PreparedCall(APPLY_STATEMENT, apply_sql)
        self._max_requests = max_requests
        self._queue: typing.List[_Request] = []
        self._draining = False
        #: A key's completion is being sent beside the group in flight (one at a time: many keys'
        #: completions would otherwise each take a transaction of their own).
        self._express_busy = False
        #: Submissions that commit beside the group in flight (`commits_beside`), grouped alike.
        self._lane: typing.Optional[GroupCommitter] = (
            GroupCommitter(lane, apply_sql, max_requests=max_requests, faults=faults, submission_lane=False)
            if submission_lane else None
        )
        self._transactions = 0
        self._loop: typing.Optional[asyncio.AbstractEventLoop] = None
        #: Told of each transaction's `now()` and when its request left (time.monotonic()).
        self._observe: typing.Optional[typing.Callable[[datetime, float], None]] = None

    def observe_clock(self, observe: typing.Callable[[datetime, float], None]) -> None:
        """Tell `observe(db_now, sent_at)` of every transaction, the lane's too: a sample of the
        database's clock bounded on both sides (runtime/clock.py)."""
        self._observe = observe
        if self._lane is not None:
            self._lane.observe_clock(observe)

    async def release(self, *, idle_only: bool = False) -> None:
        """Give the connections the lanes keep back to the pool: all of them (before the pool
        closes), or with `idle_only` those of lanes idle for a while (`release_if_idle`)."""
        lanes = [self._connection] if self._express is None else [self._connection, self._express]
        for lane in lanes:
            await (lane.release_if_idle() if idle_only else lane.release())
        if self._lane is not None:
            await self._lane.release(idle_only=idle_only)

    @property
    def transactions(self) -> int:
        """Transactions sent (groups, and requests re-run alone after a group failed)."""
        return self._transactions + (self._lane.transactions if self._lane is not None else 0)

    async def run(self, body: typing.Dict[str, typing.Any]) -> Applied:
        """Apply one request (`{"flush": ...}` or `{"submit": ...}`) in a transaction, possibly
        shared; returns its result and the database time of that transaction."""
        if self._draining and not self._express_busy and hands_over_key(body):
            self._express_busy = True
            try:
                results, db_now = await self._execute([body], self._express)
                return results[0], db_now
            except _ROLLED_BACK:  # broken out of a lock cycle with the group in flight: nothing applied
                pass
            finally:
                self._express_busy = False
        if self._draining and self._lane is not None and commits_beside(body):
            return await self._lane.run(body)
        loop = self._loop
        if loop is None or loop.is_closed():  # the loop is asked once: on Python 3.11 each ask is a getpid()
            loop = self._loop = asyncio.get_running_loop()
        done: asyncio.Future[Applied] = loop.create_future()
        self._queue.append(_Request(body, done))
        if not self._draining:
            self._draining = True
            asyncio.ensure_future(self._drain())
        return await done

    async def _drain(self) -> None:
        try:
            while self._queue:
                group, self._queue = self._queue[: self._max_requests], self._queue[self._max_requests :]
                await self._commit(group)
        finally:
            self._draining = False

    async def _commit(self, group: typing.List[_Request]) -> None:
        live = [r for r in group if not r.done.cancelled()]
        if not live:
            return
        try:
            results, db_now = await self._execute([r.body for r in live])
        except asyncio.CancelledError:
            for request in live:
                request.done.cancel()
            raise
        except Exception as exc:
            if len(live) == 1 or not isinstance(exc, psycopg.Error):
                for request in live:
                    _settle(request, exc=exc)
                return
            for request in live:  # find whose request failed: each on its own
                try:
                    own, db_now = await self._execute([request.body])
                    _settle(request, (own[0], db_now))
                except asyncio.CancelledError:
                    for pending in live:
                        pending.done.cancel()
                    raise
                except Exception as own_exc:
                    _settle(request, exc=own_exc)
            return
        for request, result in zip(live, results, strict=True):
            _settle(request, (result, db_now))

    async def _execute(
        self, bodies: typing.List[typing.Dict[str, typing.Any]], lane: typing.Optional["Lane"] = None,
    ) -> typing.Tuple[typing.List[typing.Any], datetime]:
        self._transactions += 1
        kinds = request_kinds(bodies) if self._faults is not None else []
        for kind in kinds:
            self._faults.check(kind, "before")  # type: ignore[union-attr]
        async with (lane or self._connection)() as conn:
            sent_at = time.monotonic()
            results, db_now_us = await self._apply.row(conn, encode_requests_utf8(typing.cast(typing.Any, bodies)))
        for kind in kinds:
            self._faults.check(kind, "after")  # type: ignore[union-attr]
        assert results is not None and db_now_us is not None
        db_now = _EPOCH + timedelta(microseconds=int(db_now_us))
        if self._observe is not None:
            self._observe(db_now, sent_at)
        return decode_results(results), db_now


#: Errors after which PostgreSQL rolled the transaction back for a lock cycle or conflict: the
#: request can be sent again as it is.
_ROLLED_BACK = (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable, psycopg.errors.SerializationFailure)


#: The parts of a flush that touch only the invocation's own rows (and its key, released).
_OWN_PARTS = frozenset({"id", "owner", "epoch", "journal", "state", "outcome", "consumed"})


def hands_over_key(body: typing.Mapping[str, typing.Any]) -> bool:
    """Whether `body` is a flush that completes an invocation of an exclusive handler, releasing
    its object key, locking no other key and writing to no other invocation (no caller to tell, no
    calls, awakeables, signals or promises): see the module's docstring."""
    flush = body.get("flush")
    if flush is None or not _OWN_PARTS.issuperset(flush):
        return False
    outcome = flush.get("outcome")
    if outcome is None or outcome.get("kind") != "complete" or outcome.get("release_key") is None:
        return False
    if outcome.get("caller_id") is not None:
        return False
    return True


def commits_beside(body: typing.Mapping[str, typing.Any]) -> bool:
    """Whether `body` is a submission that may commit beside the group in flight: one that takes
    no object key, workflow, idempotency key, debounce slot or flow scope (see the module's
    docstring)."""
    sub = body.get("submit")
    return (sub is not None and sub["handler_ty"] not in ("exclusive", "workflow") and sub["idempotency_key"] is None
            and sub["debounce_key"] is None and sub["scope"] is None)


def _settle(request: _Request, applied: typing.Optional[Applied] = None, *, exc: typing.Optional[BaseException] = None) -> None:
    if request.done.done():
        return
    if exc is not None:
        request.done.set_exception(exc)
    else:
        request.done.set_result(applied)  # type: ignore[arg-type]
