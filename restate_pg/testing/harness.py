"""`create_test_harness`: an application's ingress, admin API and worker, running in the test.

Restate's own harness (`restate.create_test_harness`) starts a Restate server in Docker; here the
whole runtime is this process plus PostgreSQL, so the harness serves the ingress and the admin API
on a free port of 127.0.0.1 with uvicorn, and runs a worker in the test's event loop. Tests talk
to it as clients do in production (HTTP, through `env.client`), and read what happened from the
same introspection views operators use.

What a test cannot do with a real server, the harness adds: firing durable timers without waiting
for them (`fire_timers`), and running an invocation to completion across its sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import typing
from dataclasses import dataclass
from pathlib import Path

import orjson
from fastapi import FastAPI

from restate_pg.api.app import App
from restate_pg.api.entry_codec import JournalValueCodec, decoded
from restate_pg.api.retry import InvocationRetryPolicy
from restate_pg.api.serde import DefaultSerde, Serde, serde_for_type
from restate_pg.cli.servers import running, uvicorn_server
from restate_pg.client.base import RestateClient
from restate_pg.client.http import HttpClient
from restate_pg.client.sql import output_of
from restate_pg.process import open_process
from restate_pg.services.gateway import Gateway
from restate_pg.store.console import run_query
from restate_pg.store.queries import DEFAULT_SCHEMA
from restate_pg.testing.database import migrated_database

__all__ = ["HarnessEnvironment", "InvocationTimeout", "create_test_harness", "serve_api", "test_harness"]

T = typing.TypeVar("T")

#: restate-sdk's default image of its harness's Restate server (unused here: no Docker).
RESTATE_IMAGE = "docker.io/restatedev/restate:latest"

#: `disable_retries`: what restate-sdk's harness sets as its server's default retry policy
#: (`RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=1`, `__ON_MAX_ATTEMPTS=kill`): a failing attempt
#: fails the invocation at once, unless its handler or service sets a policy of its own.
NO_RETRIES = InvocationRetryPolicy(max_attempts=1, on_max_attempts="kill")

#: Path of the admin API beside the ingress on the harness's server.
ADMIN_PREFIX = "/admin"


class InvocationTimeout(AssertionError):
    """`run_to_completion` gave up: the invocation did not complete in time (an assertion
    failure of the test, with the status the invocation was left in)."""


@dataclass
class HarnessEnvironment:
    """What a test gets: the URLs of the ingress and the admin API, a client of the ingress, the
    database, and the worker's engine; with helpers to drive timers and to inspect the outcome."""

    ingress_url: str
    admin_api_url: str
    client: RestateClient
    database_url: str
    schema: str
    engine: Gateway  # the worker's engine: its services (`engine.submissions`, ...) and its store

    async def fire_timers(self, invocation_id: typing.Optional[str] = None) -> int:
        """Fire every pending sleep of `invocation_id` (of all invocations if None) now, and start
        its delayed invocations, as if their time had come; returns how many fired or started.

        A suspended invocation resumes and one waiting in memory continues at once. Only sleeps
        the handler already awaits are fired: call it after the invocation reached its sleep
        (`run_to_completion` keeps calling it until the invocation completes)."""
        return await self.engine.operations.fire_timers(invocation_id)

    async def run_to_completion(
        self,
        invocation_id: str,
        *,
        fire_timers: bool = True,
        timeout: float = 30.0,
        type_hint: typing.Optional[typing.Type[T]] = None,
        serde: Serde[typing.Any] = DefaultSerde(),
    ) -> typing.Any:
        """Wait for the invocation's result and return it (a failure raises `TerminalError`, an
        unknown id `ClientError` 404, as `client.attach_invocation` does). With `fire_timers`, every pending sleep, of this
        invocation and of any other (those it waits for, say), is fired as soon as it is reached,
        so a handler that sleeps for days completes at once. Raises `InvocationTimeout` if it has
        not completed after `timeout` seconds."""
        result = asyncio.ensure_future(self.engine.results.wait(invocation_id))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while not result.done():
                if loop.time() > deadline:
                    row = await self.invocation(invocation_id)
                    status = row["status"] if row is not None else "unknown"
                    raise InvocationTimeout(f"invocation {invocation_id} did not complete within {timeout:g}s (status: {status})")
                if fire_timers:
                    await self.fire_timers()
                await asyncio.wait([result], timeout=self.engine.poll_interval / 4)
            output = await decoded(self.client.journal_value_codec, output_of(invocation_id, result.result()))
            return serde_for_type(type_hint, serde).deserialize(output)
        finally:
            result.cancel()

    async def invocation(self, invocation_id: str) -> typing.Optional[typing.Dict[str, typing.Any]]:
        """The invocation's row of `sys_invocation` (status, target, retry_count, ...), or None."""
        return await self.engine.store.describe_invocation(invocation_id)

    async def journal(self, invocation_id: str) -> typing.List[typing.Dict[str, typing.Any]]:
        """The invocation's rows of `sys_journal` (index, entry_type, name, completed, ...), in order."""
        return await self.engine.store.journal_entries(invocation_id)

    async def state(self, service: str, key: str) -> typing.Dict[str, typing.Any]:
        """The state of one object key or workflow id: each value decoded from JSON (as the
        default serde writes it), or its bytes when it is not JSON."""
        state = await self.engine.store.load_state(service, key)
        return {name: _decoded(value) for name, value in sorted(state.items())}

    async def query(self, sql: str, params: typing.Optional[typing.Mapping[str, typing.Any]] = None) -> typing.List[typing.Dict[str, typing.Any]]:
        """Run a read-only query as `restate-pg sql` does (restate-pg's views first on the search
        path, so `SELECT * FROM sys_invocation` works unqualified); the rows as dicts."""
        result = await asyncio.to_thread(run_query, self.database_url, self.schema, sql, params)
        return [dict(zip(result.columns, row)) for row in result.rows]


def _decoded(value: bytes) -> typing.Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


@contextlib.asynccontextmanager
async def create_test_harness(
    app: App,
    follow_logs: bool = False,
    restate_image: str = RESTATE_IMAGE,
    always_replay: bool = False,
    disable_retries: bool = False,
    journal_value_codec: typing.Optional[JournalValueCodec] = None,
    *,
    database_url: typing.Optional[str] = None,
    schema: str = DEFAULT_SCHEMA,
    **engine_options: typing.Any,
) -> typing.AsyncIterator[HarnessEnvironment]:
    """Run `app` for a test: ingress and admin API on a free local port, and a worker, in this
    event loop, until the block ends. restate-sdk's signature: `follow_logs` and `restate_image`
    concern its Docker container and are ignored (the worker logs in the test's process).
    `disable_retries` makes one attempt the default retry policy, then the invocation fails
    (`NO_RETRIES`; a handler's or service's own policy still applies), as restate-sdk's harness
    configures its server. `journal_value_codec` is `env.client`'s, as restate-sdk's: give the
    codec of `restate.app(..., journal_value_codec=...)` so that the client's inputs and
    results match what the handlers journal.

    `database_url` is a database whose restate-pg `schema` is migrated (the pytest fixture
    `restate_database_url` gives one); without it, `$DATABASE_URL` is migrated and used, else an
    embedded PostgreSQL is started in a temporary directory. `always_replay=True` suspends an
    invocation whenever it waits, so that every step after the first runs on a replayed
    handler, as with Restate's harness. Other keywords go to the worker's `Engine`
    (`concurrency`, `lease_seconds`, `poll_interval`...)."""
    if disable_retries:  # as Restate's harness sets its server's default retry policy
        engine_options["default_retry_policy"] = NO_RETRIES
    if journal_value_codec is not None and not isinstance(journal_value_codec, JournalValueCodec):
        raise TypeError(f"journal_value_codec must be a JournalValueCodec, got {journal_value_codec!r}")
    if always_replay:
        engine_options["inactivity_timeout"] = 0.0
    engine_options.setdefault("poll_interval", 0.2)
    async with contextlib.AsyncExitStack() as stack:
        if database_url is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="restate-pg-harness-")))
            database_url = await asyncio.to_thread(
                stack.enter_context, migrated_database(data_dir=data_dir / "pgdata", schema=schema)
            )
        yield await stack.enter_async_context(_running(app, database_url, schema, engine_options, journal_value_codec))


def test_harness(
    app: App,
    follow_logs: bool = False,
    restate_image: str = RESTATE_IMAGE,
    always_replay: bool = False,
    disable_retries: bool = False,
) -> typing.NoReturn:
    """restate-sdk's deprecated synchronous harness: refused, naming its replacement."""
    raise NotImplementedError(
        "test_harness is deprecated in restate-sdk and not provided by restate-pg: "
        "use `async with restate.create_test_harness(app) as env:`")


test_harness.__test__ = False  # type: ignore[attr-defined]  # not a test, whatever pytest collects


@contextlib.asynccontextmanager
async def _running(
    app: App, database_url: str, schema: str, engine_options: typing.Dict[str, typing.Any],
    codec: typing.Optional[JournalValueCodec] = None,
) -> typing.AsyncIterator[HarnessEnvironment]:
    from restate_pg.admin import create_admin_router
    from restate_pg.ingress import create_router

    engine = open_process(app, database_url, schema=schema, **engine_options)
    api = FastAPI()
    api.include_router(create_admin_router(engine), prefix=ADMIN_PREFIX)
    api.include_router(create_router(app, engine=engine))
    await engine.start()
    try:
        async with serve_api(api) as base_url:
            admin_url = base_url + ADMIN_PREFIX
            client = HttpClient(base_url, admin_url=admin_url, app=app)
            client.journal_value_codec = codec
            try:
                yield HarnessEnvironment(base_url, admin_url, client, database_url, schema, engine)
            finally:
                await client.close()
    finally:
        await engine.stop()


@contextlib.asynccontextmanager
async def serve_api(api: FastAPI) -> typing.AsyncIterator[str]:
    """Serve `api` on a free port of 127.0.0.1 with uvicorn, in this event loop; yield its base URL.
    The server is built and started as `restate-pg dev` starts its admin API (`restate_pg.cli.servers`)."""
    server = uvicorn_server(
        api, host="127.0.0.1", port=0, log_level="warning", lifespan="on", timeout_graceful_shutdown=2,
        own_signals=False,  # leave the test runner its signals
    )
    async with running(server) as port:
        yield f"http://127.0.0.1:{port}"
