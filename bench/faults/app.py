"""The application the fault suite loads: deposits into virtual-object accounts.

`FaultAccount/<key>/deposit` is the exclusive handler under test. Each step leaves evidence the
checks read back after the faults (see docs/faults.md):

- a `ctx.run` inserts a row into `faults.effect` outside the journal, so that re-executions of the
  closure can be counted (at-least-once is allowed for ctx.run, but only across a kill);
- the new balance goes into the object's K/V state (`balance`);
- a database step (`ctx.run_in_transaction`) books the deposit into `faults.booking` with the
  balance it read and the one it wrote; that row commits in the same transaction as the state
  change, so a second booking row for one deposit is a broken exactly-once guarantee, and two
  bookings of one key that read the same balance ran at the same time;
- a 50 ms durable sleep keeps the object key held across a suspension point;
- the new balance is returned, so two deposits of one key returning the same balance are visible.

`FaultTeller/deposit` reaches the same object through `ctx.object_call`, so calls between
invocations (a caller suspended on a callee) are under the faults too.
"""

from __future__ import annotations

import asyncio
import os
import typing
from datetime import timedelta

import psycopg

import restate_pg as restate
from restate_pg import Context, InvocationRetryPolicy, ObjectContext, RunOptions, TransactionOptions

#: The side tables, in the database under test; created by the suite before any process starts.
DDL = """
CREATE SCHEMA IF NOT EXISTS faults;
CREATE TABLE IF NOT EXISTS faults.effect (
    id bigserial PRIMARY KEY,
    deposit text NOT NULL,
    key text NOT NULL,
    invocation_id text NOT NULL,
    pid integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS faults.booking (
    id bigserial PRIMARY KEY,
    deposit text NOT NULL,
    key text NOT NULL,
    invocation_id text NOT NULL,
    amount bigint NOT NULL,
    balance_before bigint NOT NULL,
    balance_after bigint NOT NULL,
    pid integer NOT NULL,
    booked_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""

Deposit = typing.Dict[str, typing.Any]  # {"deposit": id, "amount": n} (+ "key" for the teller)

#: Retries at most a second apart (Restate's default grows to 60 s), so that the system drains
#: within seconds of the last fault; the number of attempts keeps its default.
_RETRY = InvocationRetryPolicy(initial_interval=timedelta(milliseconds=100), max_interval=timedelta(seconds=1))

account = restate.VirtualObject("FaultAccount", invocation_retry_policy=_RETRY)
teller = restate.Service("FaultTeller", invocation_retry_policy=_RETRY)


class _EffectConnection:
    """One connection per worker process for the ctx.run effect, opened again after a fault.

    Not the worker's own pool: the effect stands for a call to an outside system, which knows
    nothing of restate-pg's transactions."""

    def __init__(self) -> None:
        self._conn: typing.Optional[psycopg.AsyncConnection[typing.Any]] = None
        self._lock = asyncio.Lock()

    async def record(self, deposit: str, key: str, invocation_id: str) -> int:
        async with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(os.environ["DATABASE_URL"], autocommit=True)
                cur = await self._conn.execute(
                    "INSERT INTO faults.effect (deposit, key, invocation_id, pid) VALUES (%s, %s, %s, %s) RETURNING id",
                    (deposit, key, invocation_id, os.getpid()))
                row = await cur.fetchone()
            except psycopg.OperationalError:
                # A lost connection: the insert may or may not have committed. Either way the
                # closure fails and runs again, as a call to an outside system would.
                if self._conn is not None:
                    await self._conn.close()
                self._conn = None
                raise
        assert row is not None
        return int(row[0])


_effects = _EffectConnection()


async def _book(conn: psycopg.AsyncConnection[typing.Any], deposit: str, key: str, invocation_id: str,
                amount: int, before: int, after: int) -> int:
    cur = await conn.execute(
        "INSERT INTO faults.booking (deposit, key, invocation_id, amount, balance_before, balance_after, pid)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (deposit, key, invocation_id, amount, before, after, os.getpid()))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


@account.handler()
async def deposit(ctx: ObjectContext, req: Deposit) -> int:
    key, invocation_id = ctx.key(), ctx.request().id
    before = await ctx.get("balance") or 0
    await ctx.run_typed("effect", _effects.record, RunOptions(), req["deposit"], key, invocation_id)
    after = before + int(req["amount"])
    ctx.set("balance", after)
    await ctx.run_in_transaction("book", _book, TransactionOptions(), req["deposit"], key, invocation_id,
                                 int(req["amount"]), before, after)
    await ctx.sleep(timedelta(milliseconds=50))
    return after


@teller.handler(name="deposit")
async def teller_deposit(ctx: Context, req: Deposit) -> int:
    balance: int = await ctx.object_call(deposit, req["key"], {"deposit": req["deposit"], "amount": req["amount"]})
    return balance


app = restate.app([account, teller])
