"""restate-pg as the Restate server of real SDK endpoints (TypeScript SDK 1.17.2, restate-sdk 1.3.0),
over every transport they offer: HTTP/2 cleartext bidirectional, HTTP/2 and HTTP/1.1
request-response. Each endpoint is registered through the admin API, as Restate's CLI does, and
invoked through the ingress, as curl does; the journal is read back from the tables.

The services are tests/endpoints/{typescript,python} (the same names and behaviour in both SDKs)."""

from __future__ import annotations

import asyncio
import typing
import uuid

import psycopg
import pytest

from restate_pg.api.app import App
from tests.endpoints.fixtures import VARIANTS
from tests.endpoints.processes import Endpoint
from tests.support.polling import eventually
from tests.support.server import Served, serve

pytestmark = pytest.mark.slow


@pytest.fixture
async def server(clean_db: str) -> typing.AsyncIterator[Served]:
    async with serve(App(), clean_db, admin=True, inactivity_timeout=1.0) as served:
        yield served


async def register(server: Served, endpoint: Endpoint) -> typing.Dict[str, typing.Any]:
    response = await server.client.post("/admin/deployments", json={
        "uri": endpoint.url, "use_http_11": endpoint.mode.startswith("h1")})
    assert response.status_code == 201, response.text
    await eventually(lambda: _served(server, "Echo"), what="the registered services to reach the ingress")
    return response.json()


async def _served(server: Served, service: str) -> bool:
    await server.engine.load_overrides()
    return server.engine.service(service) is not None


async def call(server: Served, path: str, body: typing.Any = None, status: int = 200) -> typing.Any:
    response = await server.client.post(path, json=body)
    assert response.status_code == status, (path, response.status_code, response.text)
    return response.json() if response.content else None


async def attach(server: Served, invocation_id: str) -> typing.Any:
    response = await server.client.get(f"/restate/invocation/{invocation_id}/attach")
    assert response.status_code == 200, response.text
    return response.json() if response.content else None


def journal(url: str, invocation_id: str) -> typing.List[typing.Tuple[str, typing.Optional[int], typing.Optional[int]]]:
    with psycopg.connect(url) as conn:
        return [tuple(row) for row in conn.execute(  # type: ignore[misc]
            "SELECT entry_type, command_index, completes FROM restate.journal WHERE invocation_id = %s ORDER BY index",
            [invocation_id])]


def key() -> str:
    return uuid.uuid4().hex[:12]


#: Every transport, once per SDK; TypeScript's HTTP/1.1 "bidi" endpoints are driven over the same
#: request-response path as its HTTP/1.1 ones (tests/test_sdk_endpoints.py covers their discovery).
PROTOCOL_VARIANTS = [variant for variant in VARIANTS if variant != ("typescript", "h1-bidi")]


@pytest.mark.parametrize("variant", PROTOCOL_VARIANTS, ids=[f"{sdk}-{mode}" for sdk, mode in PROTOCOL_VARIANTS])
async def test_every_context_feature_over_every_transport(variant: typing.Tuple[str, str], server: Served,
                                                           start_endpoint: typing.Any, clean_db: str) -> None:
    endpoint = start_endpoint(*variant)
    registered = await register(server, endpoint)
    assert {s["name"] for s in registered["services"]} >= {"Echo", "Steps", "State", "Promises"}

    assert await call(server, "/Echo/echo", {"a": [1, "b"]}) == {"a": [1, "b"]}

    # journaled steps, each executed once
    k = key()
    assert await call(server, "/Steps/steps", {"key": k, "n": 4}) == 6
    assert endpoint.count(f"{k}.steps") == 4

    # eager and lazy state
    for obj in ("State", "LazyState"):
        k = key()
        assert [await call(server, f"/{obj}/{k}/add", 5) for _ in range(3)] == [5, 10, 15]
        await call(server, f"/{obj}/{k}/set", {"name": "x", "value": {"y": 1}})
        assert await call(server, f"/{obj}/{k}/get", "x") == {"y": 1}
        assert await call(server, f"/{obj}/{k}/keys") == ["count", "x"]
        await call(server, f"/{obj}/{k}/clear", "x")
        assert await call(server, f"/{obj}/{k}/keys") == ["count"]
        await call(server, f"/{obj}/{k}/clearAll")
        assert await call(server, f"/{obj}/{k}/keys") == []

    # a durable timer: its completion stamped when it fired, every entry when the engine created it
    assert await call(server, "/Steps/sleep", 300) == "slept"
    with psycopg.connect(clean_db) as conn:
        stamps = conn.execute(
            "SELECT j.index, j.appended_at, j.command_index IS NULL AND j.entry_type = 'Sleep',"
            "       (SELECT s.sleep_wakeup_at FROM restate.journal s WHERE s.invocation_id = j.invocation_id"
            "                                                         AND s.entry_type = 'Sleep' AND s.command_index IS NOT NULL),"
            "       i.completed_at"
            "  FROM restate.journal j JOIN restate.invocation i ON i.id = j.invocation_id"
            " WHERE i.service = 'Steps' AND i.handler = 'sleep' ORDER BY j.index").fetchall()
    assert [row[1] for row in stamps] == sorted(row[1] for row in stamps)
    ((_, fired_at, _, wake_up, completed_at),) = [row for row in stamps if row[2]]
    assert wake_up <= fired_at <= completed_at  # when the timer fired: after the wake-up, before the end

    # calls and sends between handlers of the endpoint, by name, with an idempotency key
    assert await call(server, "/Calls/callEcho", {"value": "hi"}) == "hi"
    assert await call(server, "/Calls/callByName", {"service": "State", "handler": "add", "key": "by-name", "input": 2}) == 2

    # awakeables: resolved from another handler, and from the ingress
    holder = key()
    sent = await call(server, "/Awakeables/await/send", holder, status=202)
    await eventually(lambda: call(server, f"/AwakeableHolder/{holder}/hasAwakeable"), what="the awakeable to be held")
    await call(server, f"/AwakeableHolder/{holder}/resolve", {"ok": True})
    assert await attach(server, sent["invocationId"]) == {"ok": True}

    holder = key()
    sent = await call(server, "/Awakeables/await/send", holder, status=202)
    await eventually(lambda: call(server, f"/AwakeableHolder/{holder}/hasAwakeable"), what="the awakeable to be held")
    with psycopg.connect(clean_db) as conn:
        (raw,) = conn.execute("SELECT convert_from(value, 'UTF8') FROM restate.state_entry WHERE key = %s AND name = 'id'",
                              [holder]).fetchone()  # type: ignore[misc]
    awakeable_id = raw.strip('"')
    response = await server.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json=42)
    assert response.status_code == 202
    assert await attach(server, sent["invocationId"]) == 42

    # workflow promises
    wf = key()
    started = await call(server, f"/Promises/{wf}/run/send", "input", status=202)
    assert await call(server, f"/Promises/{wf}/peek") is None
    await call(server, f"/Promises/{wf}/resolve", "approved")
    assert await attach(server, started["invocationId"]) == "approved"
    assert await call(server, f"/Promises/{wf}/peek") == "approved"

    # a terminal failure in a run
    response = await server.client.post("/Steps/runTerminal", json="no way")
    assert response.status_code == 418 and response.json()["message"] == "no way"


@pytest.mark.parametrize("sdk", ["typescript", "python"])
async def test_failures_are_retried_and_runs_journaled_once(sdk: str, server: Served, start_endpoint: typing.Any) -> None:
    endpoint = start_endpoint(sdk, "h2")
    await register(server, endpoint)
    k = key()
    assert await call(server, "/Steps/failNTimes", {"key": k, "failures": 2}) == 3
    k = key()
    assert await call(server, "/Steps/runRetried", {"key": k, "failures": 2}) == 3


@pytest.mark.parametrize("sdk", ["typescript", "python"])
async def test_the_journal_is_stored_as_the_endpoint_sent_it(sdk: str, server: Served, start_endpoint: typing.Any,
                                                             clean_db: str) -> None:
    endpoint = start_endpoint(sdk, "h2-rr")
    await register(server, endpoint)
    response = await server.client.post("/Steps/steps", json={"key": key(), "n": 2})
    assert response.status_code == 200
    invocation_id = response.headers["x-restate-id"]
    assert journal(clean_db, invocation_id) == [
        ("Run", 1, None), ("Run", None, 1), ("Run", 2, None), ("Run", None, 2), ("Output", 3, None)]
    with psycopg.connect(clean_db) as conn:
        (status, attempts) = conn.execute("SELECT status, attempts FROM restate.invocation WHERE id = %s",
                                          [invocation_id]).fetchone()  # type: ignore[misc]
    assert status == "completed"


async def test_calls_cross_between_sdks(server: Served, start_endpoint: typing.Any) -> None:
    python = start_endpoint("python", "h2", prefix="Py")
    typescript = start_endpoint("typescript", "h2", prefix="Ts")
    for endpoint in (python, typescript):
        response = await server.client.post("/admin/deployments", json={"uri": endpoint.url})
        assert response.status_code == 201, response.text
    await eventually(lambda: _served(server, "PyEcho"), what="the python services")
    await eventually(lambda: _served(server, "TsEcho"), what="the typescript services")
    assert await call(server, "/TsCalls/callByName", {"service": "PyEcho", "handler": "echo", "input": "from ts"}) == "from ts"
    assert await call(server, "/PyCalls/callByName", {"service": "TsEcho", "handler": "echo", "input": "from py"}) == "from py"


async def test_input_of_the_wrong_type_is_refused_at_the_door(server: Served, start_endpoint: typing.Any) -> None:
    """The endpoint's published schema says integer: a string is refused with 400, nothing runs."""
    endpoint = start_endpoint("python", "h2")
    await register(server, endpoint)
    response = await server.client.post(f"/State/{key()}/add", json="5")
    assert response.status_code == 400, response.text
    assert "input validation error" in response.json()["message"] and "integer" in response.json()["message"]
    response = await server.client.post("/Echo/echo", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert await call(server, f"/State/{key()}/add", 5) == 5


def _in_process_app() -> App:
    """An in-process Python service that calls SDK endpoints' handlers by name, and is called by them."""
    import restate_pg as restate

    local = restate.Service("Local")

    @local.handler()
    async def relay(ctx: restate.Context, request: typing.Dict[str, typing.Any]) -> typing.Any:
        import json

        raw = await ctx.generic_call(request["service"], request["handler"], json.dumps(request["input"]).encode(),
                                     key=request.get("key"))
        return json.loads(raw)

    @local.handler()
    async def shout(ctx: restate.Context, text: str) -> str:
        return text.upper()

    return restate.app([local])


@pytest.mark.parametrize("sdk", ["typescript", "python"])
async def test_calls_cross_between_in_process_handlers_and_endpoints(sdk: str, clean_db: str,
                                                                     start_endpoint: typing.Any) -> None:
    endpoint = start_endpoint(sdk, "h2")
    async with serve(_in_process_app(), clean_db, admin=True, inactivity_timeout=1.0) as server:
        await register(server, endpoint)
        # in-process Python -> the endpoint (a keyed handler, its state kept)
        k = key()
        assert await call(server, "/Local/relay", {"service": "State", "handler": "add", "key": k, "input": 3}) == 3
        assert await call(server, f"/State/{k}/get", "count") == 3
        # the endpoint -> in-process Python
        assert await call(server, "/Calls/callByName", {"service": "Local", "handler": "shout", "input": "hey"}) == "HEY"
