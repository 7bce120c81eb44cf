"""A saga: three steps with compensations, the third fails terminally, and the first two are
undone in reverse order exactly once each, also when the worker is SIGKILLed mid-compensation."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.apps import sagas
from tests.support import ledger
from tests.support.polling import eventually
from tests.support.processes import WorkerProcess
from tests.support.server import SUSPENDING_IDS, serve, suspending_modes

APP = "tests.apps.sagas:app"
UNDONE = ["book flight", "book hotel", "book car", "cancel hotel", "cancel flight"]


@pytest.mark.parametrize("inactivity", suspending_modes(5.0), ids=SUSPENDING_IDS)
async def test_compensations_run_in_reverse_order(clean_db, side_effects, inactivity):
    async with serve(sagas.app, clean_db, inactivity_timeout=inactivity) as ingress:
        tag = uuid.uuid4().hex
        response = await ingress.client.post("/Trip/book", json=tag)
    assert (response.status_code, response.json()["message"]) == (422, "no cars left")
    assert ledger.steps(tag) == UNDONE


@pytest.mark.parametrize("held_after", ["hotel", "flight"])
@pytest.mark.slow
async def test_a_worker_killed_during_compensation(clean_db, side_effects, held_after):
    async with serve(sagas.app, clean_db, run_handlers=False, poll_interval=0.1) as ingress:
        tag = uuid.uuid4().hex
        victim = WorkerProcess(APP, clean_db, env={"SAGA_HOLD_AFTER": held_after}).start()
        call = asyncio.ensure_future(ingress.client.post("/Trip/book", json=tag))
        try:
            holding = await eventually(lambda: asyncio.to_thread(ledger.count, f"hold:{tag}"), 1, timeout_s=30)
            assert holding == 1, victim.log()
            victim.kill()
            assert not call.done()
            with WorkerProcess(APP, clean_db):
                response = await asyncio.wait_for(call, 60)
        finally:
            call.cancel()
            if victim.process is not None and victim.process.poll() is None:
                victim.kill()
    assert (response.status_code, response.json()["message"]) == (422, "no cars left")
    assert ledger.steps(tag) == UNDONE  # each step and each compensation exactly once
