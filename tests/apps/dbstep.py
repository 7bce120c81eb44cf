"""Handlers whose database steps (ctx.run_in_transaction) write to an application table.

`Shop/<key>/book` books one row in `public.booking` through the step, on the connection kind the
request names: psycopg async, psycopg sync, a SQLAlchemy Session or AsyncSession, or Django's
connection (restate_pg.contrib.django; Django is configured on first use, in the worker). Environment
switches freeze a worker where a test wants to SIGKILL or SIGSTOP it:

- DBSTEP_HOLD=inside: inside the step, after its INSERT, before its commit;
- DBSTEP_HOLD=after: after the step committed, before the handler's next journal entry;
- DBSTEP_STALL=1: in the handler, just before the step begins (for losing the lease there).
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
import typing

import restate_pg as restate
from restate_pg.store.database import to_sqlalchemy_url
from restate_pg import ObjectContext, TerminalError, TransactionOptions
from tests.support import ledger

DDL = """
CREATE TABLE IF NOT EXISTS public.booking (
    id bigserial PRIMARY KEY,
    tag text NOT NULL,
    variant text NOT NULL,
    pid integer NOT NULL
)
"""
INSERT = "INSERT INTO public.booking (tag, variant, pid) VALUES (%s, %s, %s) RETURNING id"

shop = restate.VirtualObject("Shop")


def _before_commit(key: str, fail: typing.Optional[str]) -> None:
    if fail == "terminal":
        raise TerminalError("out of stock", 422)
    if fail == "retryable" and ledger.count(key, "failed once") == 0:
        ledger.record(key, "failed once")
        raise RuntimeError("the database step failed once")
    if os.environ.get("DBSTEP_HOLD") == "inside":
        ledger.record(f"hold:{key}", f"holding inside in {os.getpid()}")


def _booked(key: str, variant: str, row_id: int) -> typing.Dict[str, typing.Any]:
    ledger.record(key, f"{variant} step by {os.getpid()}")
    return {"id": row_id, "pid": os.getpid()}


async def book_async(conn: typing.Any, key: str, fail: typing.Optional[str]) -> typing.Dict[str, typing.Any]:
    cur = await conn.execute(INSERT, (key, "async", os.getpid()))
    row_id = (await cur.fetchone())[0]
    _before_commit(key, fail)
    if os.environ.get("DBSTEP_HOLD") == "inside":
        await asyncio.Event().wait()  # until SIGKILL
    return _booked(key, "async", row_id)


def book_sync(conn: typing.Any, key: str, fail: typing.Optional[str]) -> typing.Dict[str, typing.Any]:
    row_id = conn.execute(INSERT, (key, "sync", os.getpid())).fetchone()[0]
    _before_commit(key, fail)
    if os.environ.get("DBSTEP_HOLD") == "inside":
        threading.Event().wait()  # until SIGKILL
    return _booked(key, "sync", row_id)


def _orm_insert(key: str, variant: str) -> typing.Any:
    from sqlalchemy import text

    return text("INSERT INTO public.booking (tag, variant, pid) VALUES (:tag, :variant, :pid) RETURNING id").bindparams(
        tag=key, variant=variant, pid=os.getpid())


def book_session(session: typing.Any, key: str, fail: typing.Optional[str]) -> typing.Dict[str, typing.Any]:
    row_id = session.execute(_orm_insert(key, "session")).scalar_one()
    _before_commit(key, fail)
    return _booked(key, "session", row_id)


async def book_async_session(session: typing.Any, key: str, fail: typing.Optional[str]) -> typing.Dict[str, typing.Any]:
    row_id = (await session.execute(_orm_insert(key, "async_session"))).scalar_one()
    _before_commit(key, fail)
    return _booked(key, "async_session", row_id)


def book_django(key: str, fail: typing.Optional[str]) -> typing.Dict[str, typing.Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(INSERT, (key, "django", os.getpid()))
        row_id = cursor.fetchone()[0]
    _before_commit(key, fail)
    if os.environ.get("DBSTEP_HOLD") == "inside":
        threading.Event().wait()  # until SIGKILL
    return _booked(key, "django", row_id)


@functools.lru_cache(maxsize=None)
def _django() -> typing.Any:
    import django
    from django.conf import settings
    from psycopg.conninfo import conninfo_to_dict

    from restate_pg.contrib.django import DjangoStepBinding

    params = conninfo_to_dict(ledger.dsn())
    settings.configure(DATABASES={"default": {
        "ENGINE": "django.db.backends.postgresql", "NAME": params.pop("dbname"), "USER": params.pop("user", ""),
        "PASSWORD": params.pop("password", ""), "HOST": params.pop("host", ""), "PORT": params.pop("port", ""),
        "OPTIONS": params,
    }})
    django.setup()
    return DjangoStepBinding("default")


def _sqlalchemy_url() -> str:
    return to_sqlalchemy_url(ledger.dsn())


@functools.lru_cache(maxsize=None)
def _sessions(asynchronous: bool) -> typing.Any:
    if asynchronous:
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        return async_sessionmaker(create_async_engine(_sqlalchemy_url()))
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(create_engine(_sqlalchemy_url()))


ACTIONS = {
    "async": (book_async, None),
    "sync": (book_sync, None),
    "session": (book_session, lambda: _sessions(False)),
    "async_session": (book_async_session, lambda: _sessions(True)),
    "django": (book_django, _django),
}


@shop.handler()
async def book(ctx: ObjectContext, request: typing.Dict[str, typing.Any]) -> typing.Dict[str, typing.Any]:
    key = ctx.key()
    action, sessions = ACTIONS[request["variant"]]
    await ctx.run("before", lambda: ledger.record(key, f"before by {os.getpid()}"))
    if os.environ.get("DBSTEP_STALL") == "1":
        time.sleep(4)  # blocks the whole worker: its lease runs out while it is stopped here
        ledger.record(key, f"step reached by {os.getpid()}")
    options: TransactionOptions[typing.Any] = TransactionOptions(session=sessions() if sessions else None)
    try:
        booked = await ctx.run_in_transaction("book", action, options, key, request.get("fail"))
    except TerminalError as exc:
        return {"failed": exc.message, "code": exc.status_code}
    if os.environ.get("DBSTEP_HOLD") == "after":
        ledger.record(f"hold:{key}", f"holding after in {os.getpid()}")
        await asyncio.Event().wait()  # until SIGKILL
    if request.get("fail") == "after_once" and ledger.count(key, "failed after") == 0:
        ledger.record(key, "failed after")
        raise RuntimeError("the handler failed once after its step")  # the retry replays the step
    ctx.set("booked", booked)
    await ctx.run("after", lambda: ledger.record(key, f"after by {os.getpid()}"))
    return booked


app = restate.app([shop])
