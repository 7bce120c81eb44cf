"""Flow control through Restate's service protocol (issue 17, docs/flow-control.md): the scope API
of the TypeScript SDK 1.17 (`ctx.scope(...).serviceClient(...)`, `rpc.opts({limitKey})`,
`genericSend({scope, limitKey})`) and restate-sdk's `ctx.scope(...)` reach restate-pg in the v7
Call and OneWayCall commands; the callee learns them from the StartMessage (`ctx.request()`), and
a concurrency rule on the scope holds for them.

Each call's handler records its start and end (tests/endpoints: `<tag>.intervals` in the
endpoint's counters directory, the endpoint's own monotonic clock), inside its attempt's lease.
"""

from __future__ import annotations

import typing

import psycopg
import pytest

from restate_pg.api.app import App
from tests.endpoints.processes import Endpoint
from tests.support.polling import eventually
from tests.support.server import Served, serve

pytestmark = pytest.mark.slow


@pytest.fixture
async def server(clean_db: str) -> typing.AsyncIterator[Served]:
    async with serve(App(), clean_db, admin=True, inactivity_timeout=1.0) as served:
        yield served


async def _served(server: Served, service: str) -> bool:
    await server.engine.load_overrides()
    return server.engine.service(service) is not None


def most_at_once(endpoint: Endpoint, tag: str) -> int:
    """The most calls between their start and end records at one instant."""
    lines = (endpoint.counters / f"{tag}.intervals").read_text().split()
    records = sorted((int(lines[i + 2]), lines[i]) for i in range(0, len(lines), 3))
    running = peak = 0
    for _, step in records:
        running += 1 if step == "start" else -1
        peak = max(peak, running)
    return peak


@pytest.mark.parametrize("sdk", ["typescript", "python"])
async def test_scoped_calls_from_an_sdk_carry_scope_and_limit_key_and_are_limited(
        sdk: str, server: Served, start_endpoint: typing.Any, clean_db: str) -> None:
    endpoint = start_endpoint(sdk, "h2")
    response = await server.client.post("/admin/deployments", json={"uri": endpoint.url})
    assert response.status_code == 201, response.text
    await eventually(lambda: _served(server, "Scoped"), what="the registered services to reach the ingress")
    rules = await server.client.put("/admin/limits/rules", json=[{"pattern": "sdk-scope", "limits": {"concurrency": 2}}])
    assert rules.status_code == 200, rules.text

    fan_out = {"scope": "sdk-scope", "limitKey": "tenant1/user2", "tag": "fan", "count": 12, "ms": 40}
    answer = await server.client.post("/Scoped/fanOut", json=fan_out)
    assert answer.status_code == 200, answer.text
    # each callee was told its scope and limit key (StartMessage v7), as ctx.request() shows them
    assert answer.json() == [{"n": n, "scope": "sdk-scope", "limitKey": "tenant1/user2"} for n in range(12)]
    assert most_at_once(endpoint, "fan") == 2  # never more than the rule; and it was reached

    sent = await server.client.post("/Scoped/sendOne", json={"scope": "sdk-scope", "limitKey": "solo", "tag": "one", "ms": 0})
    assert sent.status_code == 200, sent.text
    done = await server.client.get(f"/restate/invocation/{sent.json()}/attach")
    assert done.json() == {"n": 0, "scope": "sdk-scope", "limitKey": "solo"}

    with psycopg.connect(clean_db) as conn:
        stored = conn.execute("SELECT scope, limit_key, count(*) FROM restate.invocation WHERE service = 'ScopedWork'"
                              " GROUP BY 1, 2 ORDER BY 2").fetchall()
    assert stored == [("sdk-scope", "solo", 1), ("sdk-scope", "tenant1/user2", 12)]


@pytest.mark.parametrize("sdk", ["typescript", "python"])
async def test_a_scope_the_sdk_lets_through_but_restate_refuses_fails_the_call_with_400(
        sdk: str, server: Served, start_endpoint: typing.Any) -> None:
    endpoint = start_endpoint(sdk, "h2")
    response = await server.client.post("/admin/deployments", json={"uri": endpoint.url})
    assert response.status_code == 201, response.text
    await eventually(lambda: _served(server, "Scoped"), what="the registered services to reach the ingress")
    answer = await server.client.post("/Scoped/fanOut", json={"scope": "sdk-scope", "limitKey": "a/b/c", "tag": "bad",
                                                              "count": 1, "ms": 0})
    assert answer.status_code == 400, answer.text
    assert "invalid limit key 'a/b/c'" in answer.json()["message"]
