"""Named signals between invocations, with Restate's semantics, over real HTTP and PostgreSQL:
durable, deliverable before the wait starts, once per name, usable in combinators; in the default
mode and with every wait suspending the invocation (inactivity timeout 0, Restate's alwaysSuspending)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.apps import signals
from tests.support.server import serve


@pytest.fixture(params=[0.3, 0.0], ids=["default", "always-suspending"])
async def ingress(clean_db, request):
    async with serve(signals.app, clean_db, inactivity_timeout=request.param) as served:
        yield served


async def start(ingress, handler: str, arg=None) -> str:
    sent = await ingress.client.post(f"/SignalWaiter/{handler}/send", json=arg)
    assert sent.status_code == 202, sent.text
    return sent.json()["invocationId"]


async def send(ingress, invocation_id: str, name: str, value: str, verb: str = "resolve") -> None:
    body = {"invocation_id": invocation_id, "name": name, "value": value, "message": value}
    response = await ingress.client.post(f"/SignalSender/{verb}", json=body)
    assert response.status_code == 200, response.text


async def outcome(ingress, invocation_id: str):
    result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
    assert result is not None
    return result


async def journal_signals(database_url: str, invocation_id: str) -> list[tuple]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT entry_type, command_index, completes, params->>'signal_name' FROM restate.journal"
            " WHERE invocation_id = %s AND entry_type = 'Signal' ORDER BY index", (invocation_id,))
        return list(await cur.fetchall())


async def test_a_signal_completes_the_wait_of_another_invocation(ingress, clean_db):
    invocation_id = await start(ingress, "wait", "go")
    await send(ingress, invocation_id, "go", "hello")
    assert (await outcome(ingress, invocation_id)).output == b'"got hello"'
    assert await journal_signals(clean_db, invocation_id) == [("Signal", None, None, "go")]


async def test_a_signal_sent_before_the_wait_starts_is_kept(ingress):
    invocation_id = await start(ingress, "gate_then_data")
    await send(ingress, invocation_id, "data", "early")
    await send(ingress, invocation_id, "gate", "open")
    assert (await outcome(ingress, invocation_id)).output == b'"open early"'


async def test_a_rejected_signal_raises_a_terminal_error_in_the_waiter(ingress):
    invocation_id = await start(ingress, "wait", "go")
    await send(ingress, invocation_id, "go", "not today", verb="reject")
    failure = (await outcome(ingress, invocation_id)).failure
    assert (failure.code, failure.message) == (451, "not today")


async def test_only_the_first_signal_of_a_name_counts(ingress):
    invocation_id = await start(ingress, "gate_then_data")
    await send(ingress, invocation_id, "data", "first")
    await send(ingress, invocation_id, "data", "second")
    await send(ingress, invocation_id, "gate", "open")
    assert (await outcome(ingress, invocation_id)).output == b'"open first"'


async def test_a_signal_wins_a_select_against_a_long_timer(ingress):
    invocation_id = await start(ingress, "race")
    await send(ingress, invocation_id, "go", "now")
    assert (await outcome(ingress, invocation_id)).output == b'"signal"'


async def test_as_completed_yields_signals_in_the_order_they_arrived(ingress):
    invocation_id = await start(ingress, "arrival_order")
    for name in ("b", "c", "a"):
        await send(ingress, invocation_id, name, name)
    assert (await outcome(ingress, invocation_id)).output == b'["b","c","a"]'


async def test_a_signal_to_an_unknown_invocation_is_dropped(ingress):
    await send(ingress, "inv_1unknown0000000000000000000000", "go", "lost")
    invocation_id = await start(ingress, "wait", "go")
    await send(ingress, invocation_id, "go", "found")
    assert (await outcome(ingress, invocation_id)).output == b'"got found"'
