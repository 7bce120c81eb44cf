"""The library on a database restate-pg never migrated: `create_router`, `create_client` and
`enqueue` refuse it with the CLI's one-line message (`SchemaNotMigrated`), never the driver's
`UndefinedTable`; `create_router(..., migrate=True)` (and `create_client`) migrate it instead."""

from __future__ import annotations

import typing

import psycopg
import pytest
from fastapi import FastAPI

import restate_pg
from restate_pg.ingress import create_router
from restate_pg.errors import SchemaNotMigrated
from restate_pg.store.migrate import current_revision, head_revision
from restate_pg.testing.database import temporary_database
from tests.apps import clients

MESSAGE = "the restate-pg schema 'restate' is not migrated (run `restate-pg migrate`)"


@pytest.fixture
def unmigrated(database_url: str) -> typing.Iterator[str]:
    """A fresh database on the test server, with no restate-pg schema."""
    with temporary_database(database_url, prefix="restate_pg_unmigrated") as url:
        yield url


def _no_driver_error(exc: BaseException) -> None:
    """The error says what to do, and carries no psycopg error along (no second traceback)."""
    assert str(exc) == MESSAGE
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


async def test_create_router_refuses_an_unmigrated_database(unmigrated):
    router = create_router(clients.app, database_url=unmigrated)
    with pytest.raises(SchemaNotMigrated) as raised:
        async with router.lifespan_context(FastAPI()):
            pass
    _no_driver_error(raised.value)


async def test_create_router_migrates_when_asked(unmigrated):
    router = create_router(clients.app, database_url=unmigrated, migrate=True)
    async with router.lifespan_context(FastAPI()):
        pass
    assert current_revision(unmigrated) == head_revision()


async def test_create_client_refuses_an_unmigrated_database(unmigrated):
    client = restate_pg.create_client(unmigrated, app=clients.app)
    with pytest.raises(SchemaNotMigrated) as raised:
        await client.service_send(clients.confirm, 1)
    await client.close()
    _no_driver_error(raised.value)


async def test_create_client_migrates_when_asked(unmigrated):
    async with restate_pg.create_client(unmigrated, app=clients.app, migrate=True) as client:
        handle = await client.service_send(clients.confirm, 1)
    assert handle.invocation_id
    assert current_revision(unmigrated) == head_revision()


def test_enqueue_refuses_an_unmigrated_database(unmigrated):
    with psycopg.connect(unmigrated) as conn:
        with pytest.raises(SchemaNotMigrated) as raised:
            restate_pg.enqueue(conn, clients.confirm, 1)
        conn.rollback()
    _no_driver_error(raised.value)


async def test_enqueue_async_refuses_an_unmigrated_database(unmigrated):
    async with await psycopg.AsyncConnection.connect(unmigrated) as conn:
        with pytest.raises(SchemaNotMigrated) as raised:
            await restate_pg.enqueue_async(conn, clients.confirm, 1)
        await conn.rollback()
    _no_driver_error(raised.value)
