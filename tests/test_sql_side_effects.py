"""`restate-pg sql` and `POST /query` are documented as read-only. Writes are refused by the READ
ONLY transaction (tests/test_sql.py); these are what a READ ONLY transaction still lets through,
with an effect outside it that no rollback undoes: ending or cancelling other sessions (the
workers' own), reloading the server's configuration, writing files (`COPY ... TO PROGRAM`), SQL
text run by a function (`query_to_xml`). Each is refused before it reaches PostgreSQL."""

from __future__ import annotations

import secrets
import typing
from pathlib import Path

import psycopg
import pytest

from tests.support.server import Served, serve
from tests.apps import introspect
from tests.test_cli import assert_one_line_error, run_cli

#: Names the victim's session; each test's is its own (with `{victim}` replaced), so that a query
#: that does end a session (as on a version without the check) ends only its own test's.
TERMINATE = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{victim}'"

REFUSED = [
    TERMINATE,
    TERMINATE.replace("pg_terminate_backend", 'pg_catalog."pg_terminate_backend"'),
    TERMINATE.replace("pg_terminate_backend(pid)", "PG_TERMINATE_BACKEND /* spaced */ (pid)"),
    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = '{victim}'",
    "SELECT query_to_xml('SELECT pg_termin' || 'ate_backend(' || pid || ')', true, true, '')"
    " FROM pg_stat_activity WHERE application_name = '{victim}'",
    "SELECT pg_reload_conf()",
    "COPY (SELECT 1) TO PROGRAM 'true'",
    "DO $$ BEGIN PERFORM 1; END $$",
]


@pytest.fixture
def victim(clean_db: str) -> typing.Iterator[psycopg.Connection]:
    """Another session of the database's role, as a worker's would be, named at random (`aimed`)."""
    with psycopg.connect(clean_db, autocommit=True, application_name=f"rpg-victim-{secrets.token_hex(6)}") as conn:
        yield conn


def aimed(query: str, victim: psycopg.Connection) -> str:
    return query.replace("{victim}", victim.info.parameter_status("application_name") or "")


def still_alive(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("query", REFUSED)
@pytest.mark.slow
def test_sql_refuses_side_effects(clean_db: str, victim: psycopg.Connection, tmp_path: Path, query: str) -> None:
    done = run_cli("sql", "--database-url", clean_db, aimed(query, victim), cwd=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert_one_line_error(done, "read-only")
    assert still_alive(victim)


@pytest.fixture
async def admin(clean_db: str) -> typing.AsyncIterator[Served]:
    async with serve(introspect.app, clean_db, admin=True) as served:
        yield served


@pytest.mark.parametrize("query", REFUSED)
async def test_query_refuses_side_effects(admin: Served, victim: psycopg.Connection, query: str) -> None:
    response = await admin.client.post("/admin/query", json={"query": aimed(query, victim)})
    assert response.status_code == 400, response.text
    assert "read-only" in response.json()["message"]
    assert still_alive(victim)


async def test_query_still_reads_pg_stat_activity(admin: Served, victim: psycopg.Connection) -> None:
    response = await admin.client.post("/admin/query", json={
        "query": aimed("SELECT application_name FROM pg_stat_activity WHERE application_name = '{victim}'", victim)})
    assert response.status_code == 200
    assert response.json()["rows"] == [{"application_name": aimed("{victim}", victim)}]
