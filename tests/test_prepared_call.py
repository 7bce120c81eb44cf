"""The write path's statement sent through libpq without a cursor (store/prepared_call.py): prepared
once per connection, given again to a connection that lost it, errors as psycopg raises them, and
a lost connection an error rather than a hang. A real PostgreSQL throughout."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from restate_pg.store.prepared_call import PreparedCall

#: A statement of the same shape as `apply`: one text argument, one row of text.
ECHO = PreparedCall("restate_pg_test_echo", "SELECT upper($1::text), (extract(epoch FROM now()) * 1000000)::int8")
#: One that fails for an input that is not a number, and answers no row for one not above 0.
POSITIVE = PreparedCall("restate_pg_test_positive", "SELECT $1::text WHERE $1::text::int > 0")


async def prepared_names(conn: psycopg.AsyncConnection) -> list[str]:
    cur = await conn.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'restate_pg_test_%' ORDER BY name")
    return [name for (name,) in await cur.fetchall()]


async def test_a_connection_gets_the_statement_prepared_at_its_first_call_and_keeps_it(database_url):
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, prepare_threshold=0) as conn:
        assert await prepared_names(conn) == []
        value, micros = await ECHO.row(conn, b"one")
        assert value == b"ONE" and int(micros) > 0
        assert await prepared_names(conn) == ["restate_pg_test_echo"]
        assert (await ECHO.row(conn, b"two"))[0] == b"TWO"
        assert await prepared_names(conn) == ["restate_pg_test_echo"]


async def test_a_connection_that_lost_the_statement_to_deallocate_all_is_given_it_again(database_url):
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, prepare_threshold=0) as conn:
        await ECHO.row(conn, b"before")
        await conn.execute("DEALLOCATE ALL")  # what psycopg sends after a ROLLBACK on such a connection
        assert await prepared_names(conn) == []
        assert (await ECHO.row(conn, b"after"))[0] == b"AFTER"
        assert await prepared_names(conn) == ["restate_pg_test_echo"]


async def test_a_connection_configured_not_to_prepare_gets_the_statement_as_text(database_url):
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, prepare_threshold=None) as conn:
        assert (await ECHO.row(conn, b"text"))[0] == b"TEXT"
        assert await prepared_names(conn) == []


async def test_an_error_of_the_statement_is_psycopgs_error_for_its_sqlstate_and_the_connection_stays_usable(database_url):
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, prepare_threshold=0) as conn:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation) as caught:
            await POSITIVE.row(conn, b"not a number")
        assert caught.value.sqlstate == "22P02"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert (await ECHO.row(conn, b"still"))[0] == b"STILL"


async def test_a_statement_answering_no_row_is_refused(database_url):
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.ProgrammingError, match="expected one row, got 0"):
            await POSITIVE.row(conn, b"0")


async def test_a_connection_in_a_transaction_of_psycopgs_is_refused(database_url):
    async with await psycopg.AsyncConnection.connect(database_url) as conn:  # psycopg would send BEGIN first
        with pytest.raises(psycopg.ProgrammingError, match="autocommit"):
            await ECHO.row(conn, b"x")


async def test_a_connection_killed_mid_statement_raises_operational_error_at_once(database_url):
    slow = PreparedCall("restate_pg_test_slow", "SELECT $1::text, pg_sleep(60)::text")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        pid = conn.info.backend_pid
        call = asyncio.ensure_future(slow.row(conn, b"x"))
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as killer:
            while True:  # until the statement runs (a state in pg_stat_activity, not a sleep)
                cur = await killer.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,))
                if (await cur.fetchone())[0] == "active":
                    break
            await killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            await asyncio.wait_for(call, 30)
        assert conn.broken
