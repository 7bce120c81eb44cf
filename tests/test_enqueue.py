"""Starting invocations in the application's own transaction: commit and they run, roll back and
they never existed; through every supported kind of connection."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

import restate_pg
from restate_pg.client.handle import ClientError
from restate_pg.core.hints import work_channel
from restate_pg.services.rules import FlowRuleBook
from restate_pg.store.database import to_sqlalchemy_url
from tests.apps import awakeables, clients, workflows
from tests.support.polling import eventually, row
from tests.support.processes import WorkerProcess
from tests.support.server import serve

APP = "tests.apps.clients:app"


@pytest.fixture
async def ingress(clean_db):
    async with serve(clients.app, clean_db, inactivity_timeout=0.3) as served:
        yield served


@pytest.fixture
def sa_engine(clean_db):
    engine = create_engine(to_sqlalchemy_url(clean_db))
    yield engine
    engine.dispose()


@pytest.fixture
async def sa_async_engine(clean_db):
    engine = create_async_engine(to_sqlalchemy_url(clean_db))
    yield engine
    await engine.dispose()


def exists(database_url: str, invocation_id: str) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM restate.invocation WHERE id = %s", (invocation_id,)).fetchone()[0] == 1


async def output_of(ingress, invocation_id: str) -> bytes:
    result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
    assert result is not None and result.failure is None, result
    return result.output


@pytest.mark.slow
def test_rollback_leaves_nothing_and_commit_runs_on_a_worker_process(clean_db):
    with psycopg.connect(clean_db) as conn:
        dropped = restate_pg.enqueue(conn, clients.confirm, 1)
        conn.rollback()
    assert not exists(clean_db, dropped.invocation_id)

    with psycopg.connect(clean_db) as conn:
        kept = restate_pg.enqueue(conn, clients.confirm, 2)
        assert kept.status == "Accepted"
    # leaving the block committed
    with WorkerProcess(APP, clean_db):

        async def status() -> tuple:
            with psycopg.connect(clean_db, autocommit=True) as conn:
                return conn.execute(
                    "SELECT status, convert_from(output, 'UTF8') FROM restate.invocation WHERE id = %s",
                    (kept.invocation_id,),
                ).fetchone()

        assert asyncio.run(eventually(status, ("completed", '"order 2 confirmed"'), timeout_s=30)) == (
            "completed", '"order 2 confirmed"')


def test_the_work_hint_is_delivered_at_commit_only(clean_db):
    with psycopg.connect(clean_db, autocommit=True) as listener, psycopg.connect(clean_db) as conn:
        listener.execute(f"LISTEN {work_channel('restate')}")
        restate_pg.enqueue(conn, clients.confirm, 3)
        conn.rollback()
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []
        restate_pg.enqueue(conn, clients.confirm, 4)
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []  # not before the commit
        conn.commit()
        assert [n.channel for n in listener.notifies(timeout=10, stop_after=1)] == [work_channel("restate")]


async def test_sqlalchemy_session_object_send(ingress, sa_engine):
    key = uuid.uuid4().hex
    with Session(sa_engine) as session:
        dropped = restate_pg.enqueue(session, awakeables.hold, "never", key=key)
        session.rollback()
    assert not exists(ingress.engine.store.conninfo, dropped.invocation_id)
    with Session(sa_engine) as session, session.begin():
        sent = restate_pg.enqueue(session, awakeables.hold, "kept", key=key)
    await output_of(ingress, sent.invocation_id)
    assert (await ingress.client.post(f"/Holder/{key}/held")).json() == "kept"


async def test_sqlalchemy_connection_by_name_with_the_app(ingress, sa_engine):
    with sa_engine.begin() as conn:
        sent = restate_pg.enqueue(conn, "Orders/confirm", 5, app=clients.app)
    assert await output_of(ingress, sent.invocation_id) == b'"order 5 confirmed"'


async def test_sqlalchemy_async_session_starts_a_workflow(ingress, sa_async_engine):
    order = uuid.uuid4().hex
    async with AsyncSession(sa_async_engine) as session:
        dropped = await restate_pg.enqueue_async(session, workflows.run, {"amount": 7}, key=order)
        await session.rollback()
    assert not exists(ingress.engine.store.conninfo, dropped.invocation_id)
    async with AsyncSession(sa_async_engine) as session, session.begin():
        started = await restate_pg.enqueue_async(session, workflows.run, {"amount": 7}, key=order)
    assert started.invocation_id == dropped.invocation_id  # one run per workflow id
    async with sa_async_engine.begin() as conn:
        again = await restate_pg.enqueue_async(conn, workflows.run, {"amount": 8}, key=order)
    assert (again.status, again.invocation_id) == ("PreviouslyAccepted", started.invocation_id)
    assert (await ingress.client.post(f"/PaymentWorkflow/{order}/approve", json="ann")).status_code == 200
    assert await output_of(ingress, started.invocation_id) == b'"charged 7, approved by ann"'


async def test_psycopg_async_delayed_send(ingress):
    async with await psycopg.AsyncConnection.connect(ingress.engine.store.conninfo) as conn:
        sent = await restate_pg.enqueue_async(conn, clients.confirm, 9, delay=timedelta(milliseconds=300))
        await conn.commit()
    delay = await row(ingress.engine, "SELECT scheduled_start_at - created_at FROM restate.invocation WHERE id = %s",
                      sent.invocation_id)
    assert delay == (timedelta(milliseconds=300),)  # both from the enqueueing transaction's now()
    assert await output_of(ingress, sent.invocation_id) == b'"order 9 confirmed"'


async def test_the_same_idempotency_key_is_accepted_once(ingress):
    conninfo = ingress.engine.store.conninfo
    handles = []
    for _ in range(2):
        async with await psycopg.AsyncConnection.connect(conninfo) as conn:
            handles.append(await restate_pg.enqueue_async(conn, clients.confirm, 10, idempotency_key="order-10"))
    assert [h.status for h in handles] == ["Accepted", "PreviouslyAccepted"]
    assert handles[0].invocation_id == handles[1].invocation_id
    # the ingress derives the same id from the same key
    answer = await ingress.client.post("/Orders/confirm", json=10, headers={"idempotency-key": "order-10"})
    assert (answer.headers["x-restate-id"], answer.json()) == (handles[0].invocation_id, "order 10 confirmed")


def test_bad_requests_are_refused_before_anything_is_written(clean_db):
    with psycopg.connect(clean_db) as conn:
        with pytest.raises(ValueError, match="is keyed"):
            restate_pg.enqueue(conn, awakeables.hold, "x")
        with pytest.raises(ValueError, match="takes no key"):
            restate_pg.enqueue(conn, clients.confirm, 1, key="k")
        with pytest.raises(ValueError, match="idempotency key with a workflow"):
            restate_pg.enqueue(conn, workflows.run, {}, key="k", idempotency_key="i")
        with pytest.raises(ValueError, match="pass the handler function, or an app"):
            restate_pg.enqueue(conn, "Orders/confirm", 1)
        with pytest.raises(TypeError, match="not a restate handler"):
            restate_pg.enqueue(conn, print, 1)
        with pytest.raises(TypeError, match="use the async variant"):
            asyncio.run(_enqueue_on_async_connection(clean_db))
        assert conn.execute("SELECT count(*) FROM restate.invocation").fetchone()[0] == 0


async def test_flow_control_in_the_applications_transaction(ingress):
    """A scope, limit key and priority are stored with the invocation (which runs, under the
    rules); bad ones are refused before anything is written, and a full backlog raises 429 with
    nothing written, leaving the application's transaction usable."""
    await FlowRuleBook(ingress.engine.store).upsert([{"pattern": "outbox/full", "limits": {"backlog": 1}}])
    conninfo = ingress.engine.store.conninfo
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        sent = await restate_pg.enqueue_async(conn, clients.confirm, 30, scope="outbox", limit_key="acme/u1", priority=7)
    assert await output_of(ingress, sent.invocation_id) == b'"order 30 confirmed"'
    assert await row(ingress.engine, "SELECT scope, limit_key, priority FROM restate.invocation WHERE id = %s",
                     sent.invocation_id) == ("outbox", "acme/u1", 7)
    with psycopg.connect(conninfo) as conn:
        for options, message in [({"scope": "a b"}, "invalid scope"), ({"limit_key": "a"}, "needs a scope"),
                                 ({"scope": "s", "priority": 5000}, "invalid priority")]:
            with pytest.raises(ValueError, match=message):
                restate_pg.enqueue(conn, clients.confirm, 1, **options)
        assert conn.execute("SELECT count(*) FROM restate.invocation WHERE scope IS DISTINCT FROM 'outbox'").fetchone()[0] == 0
        # one queued in this transaction fills the backlog of outbox/full: the next is refused
        first = restate_pg.enqueue(conn, clients.confirm, 31, scope="outbox", limit_key="full")
        with pytest.raises(ClientError) as refused:
            restate_pg.enqueue(conn, clients.confirm, 32, scope="outbox", limit_key="full")
        assert (refused.value.status_code, refused.value.message) == (429, "the backlog of outbox/full is full: retry later")
        conn.commit()
    assert await output_of(ingress, first.invocation_id) == b'"order 31 confirmed"'
    assert await row(ingress.engine, "SELECT count(*) FROM restate.invocation WHERE limit_key = 'full'") == (1,)


async def _enqueue_on_async_connection(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        restate_pg.enqueue(conn, clients.confirm, 1)


def test_django_connection(clean_db):
    import django
    from django.conf import settings

    params = psycopg.conninfo.conninfo_to_dict(clean_db)
    if not settings.configured:
        settings.configure(DATABASES={"default": {
            "ENGINE": "django.db.backends.postgresql", "NAME": params["dbname"], "USER": params.get("user", ""),
            "HOST": params.get("host", ""), "PORT": params.get("port", ""),
        }})
        django.setup()
    from django.db import connection, transaction

    from restate_pg.contrib.django import enqueue

    try:
        with transaction.atomic():
            dropped = enqueue(clients.confirm, 11)
            raise _Abort
    except _Abort:
        pass
    assert not exists(clean_db, dropped.invocation_id)
    with transaction.atomic():
        kept = enqueue(clients.confirm, 12)
    assert exists(clean_db, kept.invocation_id)
    connection.close()


class _Abort(Exception):
    pass
