"""A group committer's lane keeps its connection between transactions (store/held_connection.py):
one backend for consecutive uses, a failed or long-kept connection handed back to the pool, a
use that overlaps another served by a connection of its own, and no keeping at all with a pool
too small to spare one per lane, and an idle lane's connection given back when the housekeeping
asks. Real pool, real PostgreSQL; a backend killed with pg_terminate_backend."""

from __future__ import annotations

import asyncio
import typing

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from restate_pg.core.ids import new_invocation_id
from restate_pg.core.records import Submission
from restate_pg.store.availability import Availability
from restate_pg.store.driver import Store
from restate_pg.store.held_connection import HeldConnection

Conn = psycopg.AsyncConnection[typing.Any]


@pytest.fixture
async def availability(database_url: str) -> typing.AsyncIterator[Availability]:
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=4, open=False, kwargs={"autocommit": True})
    await pool.open(wait=True)
    yield Availability(pool)
    await pool.close()


async def backend_pid(held: HeldConnection) -> int:
    async with held() as conn:
        row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
    assert row is not None
    return int(row[0])


def pool_requests(availability: Availability) -> int:
    return availability.pool.get_stats().get("requests_num", 0)


async def test_consecutive_uses_meet_one_backend_and_take_one_connection(availability: Availability) -> None:
    held = HeldConnection(availability)
    before = pool_requests(availability)
    pids = [await backend_pid(held) for _ in range(5)]
    assert len(set(pids)) == 1
    assert pool_requests(availability) == before + 1
    assert held.held is not None


async def test_a_connection_that_failed_goes_back_and_the_next_use_takes_another(
    availability: Availability, database_url: str
) -> None:
    held = HeldConnection(availability)
    first = await backend_pid(held)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    with pytest.raises(psycopg.OperationalError):
        async with held() as conn:
            await conn.execute("SELECT 1")
    assert held.held is None
    assert availability.down  # noticed, as a pooled connection's failure is
    second = await backend_pid(held)
    assert second != first
    assert not availability.down


async def test_a_statement_error_hands_the_connection_back_in_working_order(availability: Availability) -> None:
    held = HeldConnection(availability)
    await backend_pid(held)
    with pytest.raises(psycopg.errors.DivisionByZero):
        async with held() as conn:
            await conn.execute("SELECT 1 / 0")
    assert held.held is None
    assert not availability.down  # the server answered: an error of the statement, not of the database
    await backend_pid(held)  # from the pool again, usable
    assert held.held is not None


async def test_a_connection_kept_for_hold_s_goes_back_to_the_pool(availability: Availability) -> None:
    held = HeldConnection(availability, hold_s=0.0)
    before = pool_requests(availability)
    for _ in range(3):
        await backend_pid(held)
        assert held.held is None
    assert pool_requests(availability) == before + 3


async def test_an_overlapping_use_gets_a_connection_of_its_own(availability: Availability) -> None:
    held = HeldConnection(availability)
    async with held() as outer:
        async with held() as inner:
            assert inner is not outer
            pids = await asyncio.gather(
                (await outer.execute("SELECT pg_backend_pid()")).fetchone(),
                (await inner.execute("SELECT pg_backend_pid()")).fetchone(),
            )
            assert pids[0] != pids[1]
    assert held.held is outer  # the lane keeps its own; the other went back to the pool
    assert availability.pool.get_stats()["pool_available"] >= 1


async def test_release_gives_the_kept_connection_back(availability: Availability) -> None:
    held = HeldConnection(availability)
    await backend_pid(held)
    available = availability.pool.get_stats()["pool_available"]
    await held.release()
    assert held.held is None
    assert availability.pool.get_stats()["pool_available"] == available + 1


async def test_an_idle_lane_gives_its_connection_back_when_asked(availability: Availability) -> None:
    """The housekeeping's `release_if_idle`: kept while recently used or in use, given back once
    idle for the given time."""
    held = HeldConnection(availability)
    await backend_pid(held)
    await held.release_if_idle(60.0)
    assert held.held is not None  # used just now
    async with held() as conn:
        await held.release_if_idle(0.0)
        assert held.held is conn  # in use: not taken from under its user
    available = availability.pool.get_stats()["pool_available"]
    await held.release_if_idle(0.0)
    assert held.held is None
    assert availability.pool.get_stats()["pool_available"] == available + 1


async def test_without_hold_every_use_takes_from_the_pool(availability: Availability) -> None:
    held = HeldConnection(availability, hold=False)
    before = pool_requests(availability)
    for _ in range(3):
        await backend_pid(held)
    assert held.held is None
    assert pool_requests(availability) == before + 3


def submission() -> Submission:
    return Submission(id=new_invocation_id(None), service="Svc", handler="h", key=None,
                      service_ty="service", handler_ty=None, input=b"{}")


async def apply_backends(store: Store, database_url: str) -> int:
    """How many of the store's backends last ran `apply()`, after ten submissions one after another."""
    for _ in range(10):
        await store.submit(submission())
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        row = await (await admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'restate-pg-held-test'"
            " AND query LIKE '%%restate%%apply(%%' AND pid <> pg_backend_pid()")).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(("pool_size", "expected"), [(10, 1), (2, 2)])
async def test_the_store_keeps_a_connection_per_lane_when_its_pool_can_spare_them(
    clean_db: str, pool_size: int, expected: int
) -> None:
    """Ten sequential submissions: one backend runs them all with a pool of ten; with a pool of
    two (too small to keep connections), the pool hands its two out in turn."""
    store = Store(clean_db, min_size=2, max_size=pool_size, application_name="restate-pg-held-test")
    await store.open()
    try:
        assert await apply_backends(store, clean_db) == expected
    finally:
        await store.close()
