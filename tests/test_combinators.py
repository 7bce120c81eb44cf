"""select, gather, as_completed and wait_completed over durable futures, and their determinism."""

from __future__ import annotations

import pytest

from tests.apps import combos
from tests.support.server import SUSPENDING_IDS, serve, suspending_modes


@pytest.fixture(params=suspending_modes(1), ids=SUSPENDING_IDS)
async def ingress(clean_db, request):
    async with serve(combos.app, clean_db, inactivity_timeout=request.param) as served:
        yield served


async def test_select_returns_the_first_to_complete(ingress):
    assert (await ingress.client.post("/Combos/first_wins", json=None)).json() == ["fast", "fast"]


@pytest.mark.parametrize(("millis", "expected"), [(50, "result rested"), (3000, "timed out")])
async def test_select_a_call_against_a_timeout(ingress, millis, expected):
    assert (await ingress.client.post("/Combos/call_with_timeout", json=millis)).json() == expected


async def test_gather_waits_for_all_and_keeps_failures_in_their_futures(ingress):
    assert (await ingress.client.post("/Combos/gather_all", json=None)).json() == ["a", "418: no luck", "c"]


async def test_as_completed_yields_in_completion_order(ingress):
    assert (await ingress.client.post("/Combos/completion_order", json=None)).json() == ["one", "two", "three"]


async def test_wait_completed_returns_at_once_when_one_is_done(ingress):
    assert (await ingress.client.post("/Combos/already_completed", json=None)).json() == [1, 1, "done"]


async def test_select_picks_the_same_winner_when_replayed(ingress):
    before = combos.entered.get("winner_after_replay", 0)  # the other mode's run, in this process
    response = await ingress.client.post("/Combos/winner_after_replay", json=None)
    assert response.json() == ["early", "early", "late"]
    assert combos.entered["winner_after_replay"] - before == 2  # suspended at the sleep, then replayed
    async with ingress.engine.store.pool.connection() as conn:
        runs = await (await conn.execute(
            "SELECT count(*) FROM restate.journal j JOIN restate.invocation i ON i.id = j.invocation_id"
            " WHERE i.handler = 'winner_after_replay' AND j.entry_type = 'Run'")).fetchone()
    assert runs == (2,)  # each run journaled once: the replay ran none of them again


async def test_only_durable_futures_can_be_combined(ingress):
    message = (await ingress.client.post("/Combos/foreign", json=None)).json()
    assert "durable futures" in message
