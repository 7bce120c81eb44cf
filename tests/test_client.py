"""The Python client, over SQL and over HTTP to a real ingress, async and blocking."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import psycopg
import pytest

import restate_pg
from restate_pg import ClientError, TerminalError
from tests.apps import awakeables, clients, workflows
from tests.support.polling import eventually
from tests.support.server import serve


@pytest.fixture
async def ingress(clean_db):
    async with serve(clients.app, clean_db, admin=True, inactivity_timeout=0.3) as served:
        yield served


@pytest.fixture(params=["sql", "http"])
async def client(request, ingress):
    if request.param == "sql":
        made = restate_pg.create_client(ingress.engine.store.conninfo, app=clients.app)
    else:
        made = restate_pg.create_client(ingress.base_url, admin_url=ingress.base_url + "/admin")
    async with made:
        yield made


async def awakeable_of(client, key: str) -> str:
    """The awakeable id `Waiter/wait` handed to the holder `key`, once it has."""

    async def handed_out() -> bool:
        return await client.object_call(awakeables.held, key, None) is not None

    assert await eventually(handed_out, True), "the awakeable id never reached the holder"
    return await client.object_call(awakeables.held, key, None)


async def test_call_and_send_then_attach_and_output(client):
    assert await client.service_call(clients.confirm, 1) == "order 1 confirmed"
    sent = await client.service_send(clients.confirm, 2)
    assert sent.status == "Accepted" and sent.invocation_id.startswith("inv_1")
    assert await client.attach_invocation(sent.invocation_id, type_hint=str) == "order 2 confirmed"
    assert await client.get_output(sent.invocation_id) == "order 2 confirmed"


async def test_a_delayed_send_is_not_ready_before_its_time(client):
    sent = await client.service_send(clients.confirm, 3, send_delay=timedelta(seconds=2))
    assert sent.execution_time is not None
    with pytest.raises(ClientError) as not_ready:
        await client.get_output(sent.invocation_id)
    assert not_ready.value.status_code == 470
    assert await client.attach_invocation(sent.invocation_id) == "order 3 confirmed"


async def test_duplicates_with_the_same_idempotency_key(client):
    key = uuid.uuid4().hex
    first = await client.service_send(clients.confirm, 4, idempotency_key=key)
    second = await client.service_send(clients.confirm, 5, idempotency_key=key)
    assert (first.status, second.status) == ("Accepted", "PreviouslyAccepted")
    assert first.invocation_id == second.invocation_id
    # a call with the key attaches to the first invocation: the first input's result
    assert await client.service_call(clients.confirm, 6, idempotency_key=key) == "order 4 confirmed"


async def test_awakeables_resolved_and_rejected(client):
    key = uuid.uuid4().hex
    waiting = await client.service_send(awakeables.wait, key)
    await client.resolve_awakeable(await awakeable_of(client, key), "from the client")
    assert await client.attach_invocation(waiting.invocation_id) == "got from the client"

    key = uuid.uuid4().hex
    waiting = await client.service_send(awakeables.wait, key)
    await client.reject_awakeable(await awakeable_of(client, key), "declined")
    with pytest.raises(TerminalError) as failed:
        await client.attach_invocation(waiting.invocation_id)
    assert (failed.value.status_code, failed.value.message) == (500, "declined")


async def test_cancel(client):
    key = uuid.uuid4().hex
    waiting = await client.service_send(awakeables.wait, key)
    await awakeable_of(client, key)
    await client.cancel_invocation(waiting.invocation_id)
    with pytest.raises(TerminalError) as cancelled:
        await client.attach_invocation(waiting.invocation_id)
    assert (cancelled.value.status_code, cancelled.value.message) == (409, "cancelled")
    with pytest.raises(ClientError) as again:
        await client.cancel_invocation(waiting.invocation_id)
    assert again.value.status_code == 409


async def test_a_workflow_and_its_promise(client):
    order = uuid.uuid4().hex
    started = await client.workflow_send(workflows.run, order, {"amount": 20})
    assert (await client.workflow_send(workflows.run, order, {"amount": 21})).status == "PreviouslyAccepted"
    # a promise is completed by the workflow's shared handler, as in Restate
    await client.workflow_call(workflows.approve, order, "bob")
    assert await client.attach_invocation(started.invocation_id) == "charged 20, approved by bob"
    with pytest.raises(TerminalError) as twice:
        await client.workflow_call(workflows.run, order, {"amount": 22})
    assert (twice.value.status_code, twice.value.message) == (409, "the workflow method was already invoked")


async def test_generic_call_and_send_by_name(client):
    assert await client.generic_call("Orders", "confirm", b"7") == b'"order 7 confirmed"'
    sent = await client.generic_send("Orders", "confirm", b"8")
    assert await client.attach_invocation(sent.invocation_id) == "order 8 confirmed"
    assert await client.service_call("Orders/confirm", 9) == "order 9 confirmed"


async def test_errors(client):
    with pytest.raises(ClientError) as unknown:
        await client.attach_invocation("inv_1" + "0" * 33)
    assert unknown.value.status_code == 404
    with pytest.raises(ClientError) as bad_id:
        await client.resolve_awakeable("sign_1nonsense", "x")
    assert bad_id.value.status_code == 400
    with pytest.raises(ValueError, match="is keyed"):
        await client.object_call(awakeables.held, None, None)  # type: ignore[arg-type]


async def test_http_only_unknown_targets_come_back_as_client_errors(ingress):
    async with restate_pg.create_client(ingress.base_url) as client:
        with pytest.raises(ClientError) as unknown:
            await client.generic_call("Nobody", "here", b"")
        assert unknown.value.status_code == 404
        with pytest.raises(ClientError, match="admin_url"):
            await client.cancel_invocation("inv_1" + "0" * 33)


async def test_sql_needs_the_definition_of_a_named_target(ingress):
    async with restate_pg.create_client(ingress.engine.store.conninfo) as client:
        with pytest.raises(ValueError, match="pass the handler function, or an app"):
            await client.generic_call("Orders", "confirm", b"1")
        assert await client.service_call(clients.confirm, 10) == "order 10 confirmed"


@pytest.mark.parametrize("transport", ["sql", "http"])
async def test_the_blocking_client(ingress, transport):
    url = ingress.engine.store.conninfo if transport == "sql" else ingress.base_url

    def use() -> list:
        with restate_pg.create_sync_client(url) as client:
            sent = client.service_send(clients.confirm, 11)
            scoped = client.scope(f"blocking-{transport}")
            with pytest.raises(ValueError, match="scope"):
                client.scope("no spaces")
            return [client.service_call(clients.confirm, 12), client.attach_invocation(sent.invocation_id),
                    scoped.service_call(clients.confirm, 15, limit_key="tenant")]

    # off the event loop that serves the ingress, as code without a loop would be
    assert await asyncio.to_thread(use) == ["order 12 confirmed", "order 11 confirmed", "order 15 confirmed"]
    async with await psycopg.AsyncConnection.connect(ingress.engine.store.conninfo) as conn:
        cur = await conn.execute("SELECT scope, limit_key FROM restate.sys_invocation WHERE scope = %s", (f"blocking-{transport}",))
        assert await cur.fetchall() == [(f"blocking-{transport}", "tenant")]


async def test_create_client_as_restate_sdk_uses_it(ingress):
    client = restate_pg.create_client(ingress.base_url)  # without `async with`, as restate-sdk allows
    try:
        assert await client.service_call(clients.confirm, arg=13) == "order 13 confirmed"
        handle = await client.service_send(clients.confirm, arg=14, send_delay=timedelta(milliseconds=10))
        assert (handle.status_code, await client.attach_invocation(handle.invocation_id)) == (202, "order 14 confirmed")
    finally:
        await client.close()


def test_create_client_refuses_what_it_cannot_reach():
    from restate_pg.store.database import ConfigurationError

    with pytest.raises(ConfigurationError, match="unsupported database URL scheme"):
        restate_pg.create_client("mysql://localhost/app")
    with pytest.raises(TypeError, match="journal_value_codec must be a JournalValueCodec"):
        restate_pg.create_client("http://localhost:8080", None, object())

    async def bad_name() -> None:
        async with restate_pg.create_client("http://127.0.0.1:9") as client:
            await client.service_call("Orders", 1)

    with pytest.raises(ValueError, match="expected 'Service/handler'"):
        asyncio.run(bad_name())


async def test_create_client_takes_restate_sdks_ingress_keyword_and_defaults_to_database_url(clean_db, monkeypatch):
    """`create_client(ingress=...)` as restate-sdk spells it; with no argument, `$DATABASE_URL`
    (where restate-sdk reads a Restate Cloud key); with neither, a clear error."""
    async with restate_pg.create_client(ingress=clean_db, app=clients.app) as by_keyword:
        handle = await by_keyword.service_send(clients.confirm, 1)
    monkeypatch.setenv("DATABASE_URL", clean_db)
    async with restate_pg.create_client(app=clients.app) as from_env:
        again = await from_env.service_send(clients.confirm, 2)
    with psycopg.connect(clean_db) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM restate.invocation")}
    assert {handle.invocation_id, again.invocation_id} <= stored
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(ValueError, match=r"pass the ingress URL .* or set \$DATABASE_URL"):
        restate_pg.create_client()
