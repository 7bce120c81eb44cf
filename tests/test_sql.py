"""Operators' SQL over HTTP (`POST /query` of the admin API) and from the command line
(`restate-pg sql`): read-only, one statement, clear errors."""

from __future__ import annotations

import base64
import contextlib
import secrets
import typing
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import sql as pgsql

from restate_pg.admin.query import create_query_router
from restate_pg.store.migrate import upgrade
from restate_pg.worker.engine import Engine
from tests.apps import introspect
from tests.support.server import Served, serve, serve_api
from tests.test_cli import UNREACHABLE, assert_one_line_error, run_cli


@pytest.fixture
async def admin(clean_db: str) -> typing.AsyncIterator[Served]:
    async with serve(introspect.app, clean_db, admin=True) as served:
        yield served


async def post_query(served: Served, sql: str) -> httpx.Response:
    return await served.client.post("/admin/query", json={"query": sql})


async def test_query_answers_rows_with_json_safe_values(admin: Served) -> None:
    done = await admin.client.post("/Shop/order", json="book")
    assert done.status_code == 200
    response = await post_query(
        admin,
        "SELECT id, raw, appended_at, interval '90 seconds' AS pause, 2.50::numeric AS price, "
        "'{\"a\": [1]}'::jsonb AS doc FROM sys_journal "
        f"WHERE id = '{done.headers['x-restate-id']}' AND index = 0",
    )
    assert response.status_code == 200
    (row,) = response.json()["rows"]
    assert row["id"] == done.headers["x-restate-id"]
    assert base64.b64decode(row["raw"]) == b'"book"'
    assert datetime.fromisoformat(row["appended_at"]).tzinfo is not None
    assert (row["pause"], row["price"], row["doc"]) == ("PT90S", 2.5, {"a": [1]})


async def test_query_sees_the_application_tables_too(admin: Served) -> None:
    response = await post_query(admin, "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'restate'")
    assert response.status_code == 200 and response.json()["rows"][0]["n"] > 5
    response = await post_query(admin, "SELECT current_schemas(false) AS path")
    assert response.json()["rows"][0]["path"][0] == "restate"


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELEC * FROM sys_invocation", 'syntax error at or near "SELEC"'),
        ("SELECT * FROM sys_nothing", 'relation "sys_nothing" does not exist'),
        ("DELETE FROM state", "queries are read-only"),
        ("UPDATE state_entry SET value = '2'", "queries are read-only"),
        ("UPDATE sys_invocation SET status = 'completed'", 'cannot update view "sys_invocation"'),
        ("CREATE TABLE public.sneaky (a int)", "queries are read-only"),
        ("SELECT 1; DELETE FROM state_entry", "one statement at a time"),
        ("COMMIT", ""),
        ("", "the query is empty"),
    ],
)
async def test_bad_or_writing_queries_are_refused_with_400(admin: Served, sql: str, fragment: str) -> None:
    async with admin.engine.store.pool.connection() as conn:
        await conn.execute("INSERT INTO restate.state_entry VALUES ('Counter', 'k', 'n', '1')")
    response = await post_query(admin, sql)
    if sql == "COMMIT":  # harmless: it ends the read-only transaction and nothing else runs in it
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert fragment in response.json()["message"]
    rows = (await post_query(admin, "SELECT key FROM state")).json()["rows"]
    assert rows == [{"key": "n"}]  # nothing was written


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"sql": "SELECT 1"}', b'{"query": 1}'])
async def test_malformed_bodies_are_refused_with_400(admin: Served, body: bytes) -> None:
    response = await admin.client.post("/admin/query", content=body)
    assert response.status_code == 400
    assert '"query"' in response.json()["message"]


async def test_a_query_running_too_long_is_cancelled(clean_db: str) -> None:
    engine = Engine(introspect.app, clean_db)
    async with _served(create_query_router(engine, timeout_s=0.2)) as client:
        response = await client.post("/query", json={"query": "SELECT pg_sleep(5)"})
    assert response.status_code == 400
    assert "longer than 0.2s" in response.json()["message"]


async def test_database_down_is_503() -> None:
    engine = Engine(introspect.app, UNREACHABLE)  # never started: it is only asked for its database
    async with _served(create_query_router(engine)) as client:
        response = await client.post("/query", json={"query": "SELECT 1"})
    assert response.status_code == 503
    assert "cannot connect" in response.json()["message"]


@contextlib.asynccontextmanager
async def _served(router: typing.Any) -> typing.AsyncIterator[httpx.AsyncClient]:
    api = FastAPI()
    api.include_router(router)
    async with serve_api(api) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            yield client


# -- restate-pg sql ----------------------------------------------------------------------------


@pytest.mark.slow
def test_sql_prints_a_table(clean_db: str, tmp_path: Path) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("INSERT INTO restate.state_entry VALUES ('Counter', 'a', 'count', '12'), ('Counter', 'b', 'count', '7')")
    done = run_cli(
        "sql", "--database-url", clean_db,
        "SELECT service_key, key, value_utf8 FROM state WHERE service_name = 'Counter' ORDER BY service_key",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "service_key | key   | value_utf8",
        "------------+-------+-----------",
        "a           | count | 12",
        "b           | count | 7",
        "(2 rows)",
    ]


@pytest.mark.slow
def test_sql_json_for_scripts(clean_db: str, tmp_path: Path) -> None:
    done = run_cli(
        "sql", "--json", "SELECT 'x'::bytea AS raw, NULL AS nothing, 3 AS n",
        cwd=tmp_path, env={"DATABASE_URL": clean_db},
    )
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {"rows": [{"raw": "eA==", "nothing": None, "n": 3}]}


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT * FROM nowhere", 'relation "nowhere" does not exist'),
        ("DROP TABLE restate.state_entry", "queries are read-only"),
        ("SELECT 1; SELECT 2", "one statement at a time"),
    ],
)
@pytest.mark.slow
def test_sql_bad_query_is_one_line_and_exit_1(clean_db: str, tmp_path: Path, sql: str, fragment: str) -> None:
    # 1, as every operator command exits when PostgreSQL refuses what it runs (tests/test_cli_exit_status.py)
    done = run_cli("sql", "--database-url", clean_db, sql, cwd=tmp_path)
    assert done.returncode == 1
    assert_one_line_error(done, fragment)
    assert done.stdout == ""


def test_sql_unreachable_database(tmp_path: Path) -> None:
    done = run_cli("sql", "--database-url", UNREACHABLE, "SELECT 1", cwd=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, "cannot connect")


@pytest.mark.slow
def test_sql_reads_the_given_schema(database_url: str, tmp_path: Path) -> None:
    schema = f"test_sql_{secrets.token_hex(4)}"
    upgrade(database_url, schema)
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(pgsql.SQL("INSERT INTO {}.state_entry VALUES ('Counter', 'mine', 'n', '5')").format(
                pgsql.Identifier(schema)))
        done = run_cli(
            "sql", "--database-url", database_url, "--schema", schema, "--json",
            "SELECT service_key, value_utf8 FROM state", cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert orjson.loads(done.stdout) == {"rows": [{"service_key": "mine", "value_utf8": "5"}]}
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(pgsql.SQL("DROP SCHEMA {} CASCADE").format(pgsql.Identifier(schema)))


def test_sql_has_help(tmp_path: Path) -> None:
    done = run_cli("sql", "--help", cwd=tmp_path)
    assert done.returncode == 0
    for option in ("--database-url", "--schema", "--json", "--timeout", "sys_invocation"):
        assert option in done.stdout
