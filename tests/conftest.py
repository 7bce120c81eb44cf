"""Fixtures every test module may use: a PostgreSQL database with the restate-pg schema migrated.

Where the database comes from, first that works:

1. `$DATABASE_URL`, used as is (its `restate` schema is migrated, and emptied by `clean_db`);
2. a PostgreSQL server at 127.0.0.1:5432 (user `postgres`, no password): a fresh database
   `restate_pg_test_<random>` is created for the session and dropped at its end;
3. an embedded PostgreSQL (`pgserver`) in a temporary directory, stopped at the end.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from restate_pg.errors import DatabaseUnavailable
from restate_pg.store.database import check_reachable, resolve_database_url, to_psycopg_conninfo
from restate_pg.store.migrate import VERSION_TABLE, upgrade

#: The schema the session database is migrated into.
TEST_SCHEMA = "restate"
#: Maintenance database of the local server used when $DATABASE_URL is not set (a URL ending in
#: the database name, which the session database replaces).
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A psycopg connection string of a database whose `restate` schema is migrated."""
    explicit = resolve_database_url(None)
    if explicit is not None:
        url = to_psycopg_conninfo(explicit)
        upgrade(url, TEST_SCHEMA)
        yield url
    elif _local_server_available():
        with _temporary_database(LOCAL_SERVER) as url:
            upgrade(url, TEST_SCHEMA)
            yield url
    else:
        from restate_pg.store.embedded import start_embedded

        with start_embedded(tmp_path_factory.mktemp("postgres") / "pgdata") as server:
            upgrade(server.url, TEST_SCHEMA)
            yield server.url


@pytest.fixture
def clean_db(database_url: str) -> Iterator[str]:
    """`database_url`, with every restate-pg table emptied first (the migration history is kept)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> %s",
                [TEST_SCHEMA, VERSION_TABLE],
            )
        ]
        if tables:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(TEST_SCHEMA, t) for t in tables)
                )
            )
    yield database_url


def _local_server_available() -> bool:
    try:
        check_reachable(LOCAL_SERVER, timeout=2.0)
    except DatabaseUnavailable:
        return False
    return True


@contextmanager
def _temporary_database(server_url: str) -> Iterator[str]:
    name = f"restate_pg_test_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            # Connections a test leaked (or a worker subprocess left behind) would block DROP.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def side_effects(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty side-effect ledger (tests.support.ledger), reachable from worker subprocesses too."""
    from tests.support import ledger

    monkeypatch.setenv(ledger.DSN_ENV, database_url)
    ledger.reset()
    yield
