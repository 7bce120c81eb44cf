"""Awakeable and promise values checked against the type their waiter declared (issue 15).

A waiter that declares a type (`ctx.awakeable(type_hint=int)`, `ctx.promise(name, type_hint=int)`)
journals its JSON schema; a value of another type is refused where it arrives, with 400 and the
validation message, and never reaches the waiter (Restate delivers it, and the waiter's attempt
fails and is retried). Journals written before the schema was recorded still replay and resolve.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

import restate_pg
from restate_pg.client.handle import ClientError
from restate_pg.core.records import JournalRow
from restate_pg.runtime.machine import JournalMachine
from tests.apps import typed_completions
from tests.support.polling import eventually, row
from tests.support.server import serve

INT_REFUSED = "input validation error: the value is not a valid integer: value: 'five' is not of type 'integer'"


@pytest.fixture
async def ingress(clean_db):
    async with serve(typed_completions.app, clean_db, inactivity_timeout=0.3) as served:
        yield served


async def start(ingress, handler: str) -> tuple[str, str, str]:
    """Start a waiter; its invocation id, its holder's key and the awakeable id it handed out."""
    key = uuid.uuid4().hex
    sent = await ingress.client.post(f"/TypedWaiter/{handler}/send", json=key)
    assert sent.status_code == 202

    async def held():
        response = await ingress.client.post(f"/Holder/{key}/held")
        return response.json() if response.content else None

    return sent.json()["invocationId"], key, await eventually(held, what="the awakeable id to reach the holder")


async def output(ingress, invocation_id: str) -> bytes:
    result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
    assert result is not None and result.failure is None, result
    return result.output


async def test_the_ingress_refuses_a_value_of_another_type(ingress):
    invocation_id, _, awakeable_id = await start(ingress, "wait_int")
    refused = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="five")
    assert (refused.status_code, refused.json()["message"]) == (400, INT_REFUSED)
    # Nothing reached the waiter: the right value still completes it.
    accepted = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json=5)
    assert accepted.status_code == 202
    assert await output(ingress, invocation_id) == b"6"


async def test_a_model_is_checked_field_by_field(ingress):
    invocation_id, _, awakeable_id = await start(ingress, "wait_approval")
    refused = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json={"approved": True})
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        "input validation error: the value is not a valid Approval: value: 'amount' is a required property")
    refused = await ingress.client.post(
        f"/restate/awakeables/{awakeable_id}/resolve", json={"approved": "yes", "amount": 3})
    assert refused.json()["message"] == (
        "input validation error: the value is not a valid Approval: approved: 'yes' is not of type 'boolean'")
    accepted = await ingress.client.post(
        f"/restate/awakeables/{awakeable_id}/resolve", json={"approved": True, "amount": 3})
    assert accepted.status_code == 202
    assert await output(ingress, invocation_id) == b'"approved=True amount=3"'


@pytest.mark.parametrize("transport", ["sql", "http"])
async def test_the_clients_raise_the_refusal(ingress, transport):
    invocation_id, _, awakeable_id = await start(ingress, "wait_int")
    if transport == "sql":
        client = restate_pg.create_client(ingress.engine.store.conninfo, app=typed_completions.app)
    else:
        client = restate_pg.create_client(ingress.base_url)
    async with client:
        with pytest.raises(ClientError) as refused:
            await client.resolve_awakeable(awakeable_id, "five")
        assert (refused.value.status_code, str(refused.value)) == (400, f"400: {INT_REFUSED}")
        await client.resolve_awakeable(awakeable_id, 41)
    assert await output(ingress, invocation_id) == b"42"


async def test_a_handler_resolving_with_another_type_fails_with_400(ingress):
    invocation_id, _, awakeable_id = await start(ingress, "wait_int")
    refused = await ingress.client.post("/Resolver/resolve", json={"id": awakeable_id, "value": "five"})
    assert refused.status_code == 400
    assert refused.json()["message"] == INT_REFUSED
    # The refused resolution is journaled with its failure, and was not delivered.
    journaled = await row(ingress.engine, "SELECT failure_code, failure_message FROM restate.journal "
                          "WHERE entry_type = 'CompleteAwakeable' AND failure_code IS NOT NULL")
    assert journaled == (400, INT_REFUSED)
    resolved = await ingress.client.post("/Resolver/resolve", json={"id": awakeable_id, "value": 9})
    assert (resolved.status_code, resolved.json()) == (200, "resolved")
    assert await output(ingress, invocation_id) == b"10"


async def wait_until_waiting(ingress, workflow_id: str) -> str:
    sent = await ingress.client.post(f"/TypedFlow/{workflow_id}/run/send", json="go")
    assert sent.status_code == 202

    async def status():
        response = await ingress.client.post(f"/TypedFlow/{workflow_id}/status")
        return response.json() if response.content else None

    await eventually(status, "waiting", what="the run to wait for its promise")
    return sent.json()["invocationId"]


async def test_a_promise_refuses_a_value_its_waiter_cannot_take(ingress):
    workflow_id = uuid.uuid4().hex
    run_id = await wait_until_waiting(ingress, workflow_id)
    refused = await ingress.client.post(f"/TypedFlow/{workflow_id}/give", json="five")
    assert refused.json() == f"refused 400: {INT_REFUSED}"
    given = await ingress.client.post(f"/TypedFlow/{workflow_id}/give", json=21)
    assert given.json() == "resolved"
    assert await output(ingress, run_id) == b"42"


async def test_a_promise_nobody_declared_takes_any_value(ingress):
    workflow_id = uuid.uuid4().hex
    await wait_until_waiting(ingress, workflow_id)
    given = await ingress.client.post(f"/TypedFlow/{workflow_id}/give_undeclared", json={"any": ["thing"]})
    assert (given.status_code, given.json()) == (200, "resolved")


async def suspended(ingress, invocation_id: str) -> None:
    async def status():
        found = await row(ingress.engine, "SELECT status FROM restate.task WHERE invocation_id = %s", invocation_id)
        return found[0] if found else None

    await eventually(status, "suspended", what=f"{invocation_id} to suspend")


async def strip_schema(ingress, invocation_id: str, entry_type: str, params: str) -> None:
    """Make `invocation_id`'s (suspended) waiter look as an earlier version journaled it."""
    await suspended(ingress, invocation_id)
    async with ingress.engine.store.pool.connection() as conn:
        stripped = await conn.execute(
            f"UPDATE restate.journal SET params = {params} WHERE invocation_id = %s AND entry_type = %s "
            "AND params ? 'schema'", (invocation_id, entry_type))
        assert stripped.rowcount == 1


async def test_journals_written_before_schemas_still_replay_and_resolve(ingress):
    """The rows an earlier version wrote: an Awakeable without params, a GetPromise with its name
    only. The waiters replay them, their completions are taken (no type known), they finish."""
    invocation_id, _, awakeable_id = await start(ingress, "wait_int")
    await strip_schema(ingress, invocation_id, "Awakeable", "NULL")
    accepted = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json=1)
    assert accepted.status_code == 202
    assert await output(ingress, invocation_id) == b"2"

    workflow_id = uuid.uuid4().hex
    run_id = await wait_until_waiting(ingress, workflow_id)
    await strip_schema(ingress, run_id, "GetPromise", "params - 'schema'")
    given = await ingress.client.post(f"/TypedFlow/{workflow_id}/give", json=4)
    assert given.json() == "resolved"
    assert await output(ingress, run_id) == b"8"


def test_replay_does_not_match_on_the_declared_schema():
    """A journal without schemas (or with another one) replays: the schema is recorded, not matched."""
    old = [
        JournalRow(index=1, command_index=1, completes=None, entry_type="Awakeable", value=b"sign_1x"),
        JournalRow(index=2, command_index=2, completes=None, entry_type="GetPromise", params={"name": "p"}),
    ]
    machine = JournalMachine(old)
    assert machine.awakeable("inv_1", {"type": "integer"}) == (1, "sign_1x")
    assert machine.promise_get("p", False, ("Flow", "k"), {"type": "string"}) == 2
    assert machine.pending.journal == []  # both replayed, nothing journaled again
    fresh = JournalMachine([])
    fresh.awakeable("inv_1", {"type": "integer"})
    fresh.promise_get("p", False, ("Flow", "k"), {"type": "string"})
    assert [r.params for r in fresh.pending.journal] == [{"schema": {"type": "integer"}},
                                                         {"name": "p", "schema": {"type": "string"}}]
