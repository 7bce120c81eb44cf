"""A PostgreSQL database for a test session, with the restate-pg schema migrated.

Shared by the pytest plugin (`restate_pg.testing`), `create_test_harness` and this repository's
own test suite, so that all of them find a database the same way: `$DATABASE_URL` as is; else a
fresh database on a server the suite names, when it is reachable (dropped afterwards); else an
embedded PostgreSQL (pgserver) in a directory of its own, stopped afterwards. A session that runs
beside others (a pytest-xdist worker) never shares one: it gets a fresh database beside
`$DATABASE_URL`'s rather than that one.
"""

from __future__ import annotations

import contextlib
import secrets
import typing
from pathlib import Path

import psycopg
from psycopg import sql

from restate_pg.core.errors import DatabaseUnavailable
from restate_pg.store import queries
from restate_pg.store.database import check_reachable, resolve_database_url, to_psycopg_conninfo
from restate_pg.store.migrate import VERSION_TABLE, upgrade
from restate_pg.store.queries import DEFAULT_SCHEMA

__all__ = ["empty_schema", "migrated_database", "server_reachable", "temporary_database"]


@contextlib.contextmanager
def migrated_database(
    *,
    data_dir: Path,
    server_url: typing.Optional[str] = None,
    schema: str = DEFAULT_SCHEMA,
    worker: typing.Optional[str] = None,
) -> typing.Iterator[str]:
    """Yield the psycopg URL of a database whose `schema` is migrated to the newest revision.

    `$DATABASE_URL` is used as it is (the caller's own database: nothing is dropped); else, when
    `server_url` (a URL of the server's maintenance database) is reachable, a fresh database on
    it, dropped at the end; else an embedded PostgreSQL keeping its data in `data_dir`.

    `worker` names one of several sessions running at once (a pytest-xdist worker, `gw0`...):
    then `$DATABASE_URL` only names the server, on which the session gets a fresh database of its
    own, `<its database>_<worker>_<random>`, dropped at the end (its role needs CREATEDB); the
    fresh databases on `server_url` carry the worker's name too.
    """
    explicit = resolve_database_url(None)
    if explicit is not None and worker is None:
        url = to_psycopg_conninfo(explicit)
        upgrade(url, schema)
        yield url
    elif explicit is not None:
        explicit = to_psycopg_conninfo(explicit)
        own_name = psycopg.conninfo.conninfo_to_dict(explicit).get("dbname") or "restate_pg_test"
        with temporary_database(explicit, prefix=f"{own_name[:40]}_{worker}") as url:
            upgrade(url, schema)
            yield url
    elif server_url is not None and server_reachable(server_url):
        prefix = "restate_pg_test" if worker is None else f"restate_pg_test_{worker}"
        with temporary_database(server_url, prefix=prefix) as url:
            upgrade(url, schema)
            yield url
    else:
        from restate_pg.store.embedded import start_embedded

        with start_embedded(data_dir) as server:
            upgrade(server.url, schema)
            yield server.url


def server_reachable(url: str) -> bool:
    """Whether PostgreSQL at `url` accepts a connection within two seconds."""
    try:
        check_reachable(url, timeout=2.0)
    except DatabaseUnavailable:
        return False
    return True


@contextlib.contextmanager
def temporary_database(server_url: str, prefix: str = "restate_pg_test") -> typing.Iterator[str]:
    """Create a database with a random name on the server of `server_url`; drop it at the end,
    ending the connections a test or a worker subprocess left behind, which would block DROP."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    server_url = to_psycopg_conninfo(server_url)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL(queries.CREATE_DATABASE).format(name=sql.Identifier(name)))
    try:
        yield psycopg.conninfo.make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(queries.END_DATABASE_SESSIONS, {"name": name})
            conn.execute(sql.SQL(queries.DROP_DATABASE).format(name=sql.Identifier(name)))


def empty_schema(url: str, schema: str = DEFAULT_SCHEMA) -> None:
    """Empty every restate-pg table of `schema` (its migration history is kept), so that a test
    starts with no invocation, journal or state left by the one before."""
    with psycopg.connect(to_psycopg_conninfo(url), autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(queries.SCHEMA_TABLES, {"schema": schema, "version_table": VERSION_TABLE})
        ]
        with conn.transaction():
            for table in tables:
                conn.execute(sql.SQL(queries.EMPTY_TABLE).format(table=sql.Identifier(schema, table)))
            conn.execute(queries.RESTART_IDENTITIES, {"schema": schema})
