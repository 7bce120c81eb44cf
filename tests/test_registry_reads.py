"""A deployment registered by another process is driven here as soon as this process knows of
it, however it learns: the `services` hint, a request to the ingress naming one of its services,
or its own start. Each test registers with the CLI (a process of its own, as an operator does)
while the process under test runs a real SDK endpoint's invocations; the housekeeping that used
to repair a missed registration runs only once a minute, beyond the tests' waits.

Reads of the registry, and of everything else `load_overrides` reads, run one at a time, so that
a read that started earlier never finishes last.

Seen in the TypeScript benchmark: an endpoint registered while `restate-pg dev` was starting
(between its first read of the registry and its LISTEN) answered the first calls a minute late.
"""

from __future__ import annotations

import asyncio
import typing

import psycopg
from restate_pg.api.app import App
from restate_pg.worker.engine import Engine
from tests.endpoints.processes import Endpoint
from tests.support.polling import eventually
from tests.support.server import serve
from tests.test_cli import run_cli

#: Shorter than the housekeeping interval (60 s), which reads the registry again whatever happened.
PROMPTLY_S = 20.0


async def register_with_the_cli(endpoint: Endpoint, database_url: str, cwd: typing.Any) -> None:
    done = await asyncio.to_thread(run_cli, "deployments", "register", endpoint.url, "--database-url", database_url, cwd=cwd)
    assert done.returncode == 0, done.stderr


async def completed(database_url: str, invocation_id: str) -> typing.Optional[bytes]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        row = await (await conn.execute(
            "SELECT output FROM restate.invocation WHERE id = %s AND status = 'completed'", [invocation_id])).fetchone()
    return None if row is None else bytes(row[0])


async def test_a_service_the_ingress_finds_is_driven_by_its_worker_without_hints(
        clean_db: str, python_endpoint: Endpoint, tmp_path: typing.Any) -> None:
    """A process without LISTEN (as behind a transaction-pooling proxy) never gets the hint: the
    ingress reads the registry again for a service it does not know, and the worker, which
    shares that read, runs the call at once instead of handing it back to nobody."""
    async with serve(App(), clean_db, poll_only=True) as served:
        await register_with_the_cli(python_endpoint, clean_db, tmp_path)
        answer = await served.client.post("/Echo/echo", json={"hello": "world"}, timeout=PROMPTLY_S)
        assert (answer.status_code, answer.json()) == (200, {"hello": "world"})


async def test_a_registration_committed_as_a_worker_starts_is_seen(
        clean_db: str, python_endpoint: Endpoint, tmp_path: typing.Any) -> None:
    """The registration commits right after the starting worker's first read of the registry:
    its hint must find the worker's LISTEN already there. The call comes through another
    process's ingress (no worker there), so only this worker can run it."""
    engine = Engine(App(), clean_db, poll_interval=0.2, pool_size=4)
    first_read = engine.remote.load

    async def read_then_register() -> None:
        engine.remote.load = first_read  # type: ignore[method-assign]
        await first_read()
        await register_with_the_cli(python_endpoint, clean_db, tmp_path)

    engine.remote.load = read_then_register  # type: ignore[method-assign]
    await engine.start()
    try:
        assert engine.remote.load is first_read, "the start read the registry"
        async with serve(App(), clean_db, run_handlers=False) as ingress:
            answer = await ingress.client.post("/Echo/echo", json={"hello": "world"}, timeout=PROMPTLY_S)
        assert (answer.status_code, answer.json()) == (200, {"hello": "world"})
    finally:
        await engine.stop()


async def test_reads_of_the_registry_run_one_at_a_time(clean_db: str, python_endpoint: Endpoint,
                                                      tmp_path: typing.Any) -> None:
    """A read that fetched the registry before a registration cannot finish after a read that
    started later and replace what it found: the later read waits for it."""
    engine = Engine(App(), clean_db, run_handlers=False, poll_only=True, pool_size=2)
    await engine.start()
    try:
        fetch = engine.store.driven_endpoints
        fetches: typing.List[str] = []
        fetched, release = asyncio.Event(), asyncio.Event()

        async def held_first_fetch() -> typing.Any:
            fetches.append("fetch")
            rows = await fetch()
            if len(fetches) == 1:
                fetched.set()
                await release.wait()
            return rows

        engine.store.driven_endpoints = held_first_fetch  # type: ignore[method-assign]
        stale = asyncio.ensure_future(engine.remote.load())
        await fetched.wait()  # its rows were read before the registration
        await register_with_the_cli(python_endpoint, clean_db, tmp_path)
        fresh = asyncio.ensure_future(engine.remote.load())
        await asyncio.sleep(0)  # one turn of the loop: the later read starts, and must wait
        assert fetches == ["fetch"]
        release.set()
        await asyncio.gather(stale, fresh)
        assert fetches == ["fetch", "fetch"] and "Echo" in engine.remote.services
    finally:
        await engine.stop()


async def test_reads_of_operators_settings_run_one_at_a_time(clean_db: str) -> None:
    """The same for everything `load_overrides` reads (the settings operators change, target
    rules, compatible deployments, the registry): hints, LISTEN reconnections, the housekeeping
    and the admin API each ask for it, and the reads never overlap; every one of a burst of
    requests gets a read of its own, after the one under way."""
    from tests.apps import kitchen

    engine = Engine(kitchen.app, clean_db, poll_only=True, pool_size=2)
    await engine.start()
    try:
        read = engine._read_overrides
        running, overlapping, reads = 0, 0, 0

        async def counted_read() -> None:
            nonlocal running, overlapping, reads
            running += 1
            overlapping = max(overlapping, running)
            try:
                await read()
            finally:
                running -= 1
                reads += 1

        engine._read_overrides = counted_read  # type: ignore[method-assign]
        await asyncio.gather(*(engine.load_overrides() for _ in range(5)))
        assert (overlapping, reads) == (1, 5)
    finally:
        await engine.stop()
