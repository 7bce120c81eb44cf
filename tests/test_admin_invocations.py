"""The admin API's operations on one invocation beyond cancel and kill: pause, resume,
restart-as-new, purge-journal, and the expiry of idempotency keys."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from restate_pg.core import hints
from tests.apps import awakeables, sagas
from tests.support import ledger
from tests.support.polling import eventually, row
from tests.support.processes import WorkerProcess
from tests.support.server import serve
from tests.test_awakeables import held_id

MISSING = "inv_1" + "0" * 33


@pytest.fixture
async def ingress(clean_db, side_effects):
    app = type(awakeables.app)([*awakeables.app.services.values(), *sagas.app.services.values()])
    async with serve(app, clean_db, admin=True, inactivity_timeout=0.3, retention_interval=0.1) as served:
        yield served


async def result_of(ingress, invocation_id: str):
    result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
    assert result is not None
    return result


def task_status(ingress, invocation_id: str):
    return lambda: row(ingress.engine, "SELECT status, lease_owner FROM restate.task WHERE invocation_id = %s", invocation_id)


async def test_pause_stops_an_invocation_until_it_is_resumed(ingress):
    key = uuid.uuid4().hex
    invocation_id = (await ingress.client.post("/Waiter/wait/send", json=key)).json()["invocationId"]
    awakeable_id = await held_id(ingress, key)
    assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/pause")).status_code == 202
    assert await task_status(ingress, invocation_id)() == ("paused", None)
    assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/pause")).status_code == 200
    # what it waits for arrives, but a paused invocation does not run until resumed
    await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="hello")
    assert (await ingress.client.get(f"/restate/invocation/{invocation_id}/output")).status_code == 470
    assert await task_status(ingress, invocation_id)() == ("paused", None)
    assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/resume")).status_code == 200
    assert (await result_of(ingress, invocation_id)).output == b'"got hello"'
    completed = await ingress.client.patch(f"/admin/invocations/{invocation_id}/pause")
    assert (completed.status_code, completed.json()["message"]) == (409, "the invocation is already completed")


async def test_pause_answers(ingress):
    delayed = await ingress.client.post("/Waiter/wait/send", json="x", params={"delay": "1h"})
    not_running = await ingress.client.patch(f"/admin/invocations/{delayed.json()['invocationId']}/pause")
    assert (not_running.status_code, not_running.json()["message"]) == (409, "the invocation is not running (inboxed or scheduled)")
    assert (await ingress.client.patch(f"/admin/invocations/{MISSING}/pause")).status_code == 404
    assert (await ingress.client.patch("/admin/invocations/nope/pause")).status_code == 400


async def test_restart_as_new_from_scratch(ingress):
    tag = uuid.uuid4().hex
    first = await ingress.client.post("/Redo/steps", json=tag)
    old_id = first.headers["x-restate-id"]
    restarted = await ingress.client.patch(f"/admin/invocations/{old_id}/restart-as-new")
    assert restarted.status_code == 200
    new_id = restarted.json()["new_invocation_id"]
    assert new_id != old_id
    assert (await result_of(ingress, new_id)).output == first.content
    assert ledger.steps(tag) == ["first", "second", "first", "second"]
    assert await row(ingress.engine, "SELECT restarted_from, invoked_by FROM restate.invocation WHERE id = %s",
                     new_id) == (old_id, "restart_as_new")


async def test_restart_as_new_keeping_a_journal_prefix(ingress):
    tag = uuid.uuid4().hex
    old_id = (await ingress.client.post("/Redo/steps", json=tag)).headers["x-restate-id"]
    sleep_command, sleep_done = await row(
        ingress.engine,
        "SELECT max(index) FILTER (WHERE entry_type = 'Sleep' AND command_index IS NOT NULL),"
        "       max(index) FILTER (WHERE entry_type = 'Sleep' AND completes IS NOT NULL)"
        "  FROM restate.journal WHERE invocation_id = %s", old_id)
    # a prefix that ends between a command and its completion cannot be replayed
    cut = await ingress.client.patch(f"/admin/invocations/{old_id}/restart-as-new", params={"from": sleep_command})
    assert cut.status_code == 400
    restarted = await ingress.client.patch(f"/admin/invocations/{old_id}/restart-as-new", params={"from": sleep_done})
    new_id = restarted.json()["new_invocation_id"]
    assert (await result_of(ingress, new_id)).output == b'["one","two"]'
    assert ledger.steps(tag) == ["first", "second", "second"]  # "first" came from the copied journal


async def test_restart_as_new_refusals(ingress):
    tag = uuid.uuid4().hex
    old_id = (await ingress.client.post("/Redo/steps", json=tag)).headers["x-restate-id"]
    past_end = await ingress.client.patch(f"/admin/invocations/{old_id}/restart-as-new", params={"from": 99})
    assert past_end.status_code == 400
    assert (await ingress.client.patch(f"/admin/invocations/{old_id}/restart-as-new", params={"from": "x"})).status_code == 400
    assert (await ingress.client.patch(f"/admin/invocations/{old_id}/purge-journal")).status_code == 200
    assert (await ingress.client.get(f"/restate/invocation/{old_id}/output")).json() == ["one", "two"]
    gone = await ingress.client.patch(f"/admin/invocations/{old_id}/restart-as-new", params={"from": 1})
    assert gone.status_code == 410
    assert (await ingress.client.patch(f"/admin/invocations/{old_id}/restart-as-new")).status_code == 200

    key = uuid.uuid4().hex
    running = (await ingress.client.post("/Waiter/wait/send", json=key)).json()["invocationId"]
    await held_id(ingress, key)
    assert (await ingress.client.patch(f"/admin/invocations/{running}/restart-as-new")).status_code == 409
    assert (await ingress.client.patch(f"/admin/invocations/{running}/purge-journal")).status_code == 409
    delayed = (await ingress.client.post("/Redo/steps/send", json=tag, params={"delay": "1h"})).json()["invocationId"]
    assert (await ingress.client.patch(f"/admin/invocations/{delayed}/restart-as-new")).status_code == 425
    assert (await ingress.client.patch(f"/admin/invocations/{MISSING}/restart-as-new")).status_code == 404
    await ingress.client.patch(f"/admin/invocations/{running}/kill")


async def test_an_idempotency_key_runs_once_until_it_expires(ingress):
    tag = uuid.uuid4().hex
    headers = {"idempotency-key": tag}
    first = await ingress.client.post("/Redo/once", json=tag, headers=headers)
    again = await ingress.client.post("/Redo/once", json=tag, headers=headers)
    assert (first.json(), again.json()) == (1, 1)
    assert first.headers["x-restate-id"] == again.headers["x-restate-id"]
    # swept once its 200 ms idempotency retention has passed; then the key is free again
    gone = lambda: row(ingress.engine, "SELECT count(*) FROM restate.invocation WHERE id = %s", first.headers["x-restate-id"])
    assert await eventually(gone, (0,)) == (0,)
    later = await ingress.client.post("/Redo/once", json=tag, headers=headers)
    assert later.json() == 2
    assert ledger.count(tag, "once") == 2


@pytest.mark.slow
async def test_pause_stops_the_attempt_of_another_worker_process(clean_db):
    async with serve(awakeables.app, clean_db, admin=True, run_handlers=False, poll_interval=0.1) as ingress:
        with WorkerProcess("tests.apps.awakeables:app", clean_db, extra=["--inactivity-timeout", "30"]) as worker:
            key = uuid.uuid4().hex
            invocation_id = (await ingress.client.post("/Waiter/wait/send", json=key)).json()["invocationId"]
            awakeable_id = await held_id(ingress, key)
            owner = await row(ingress.engine, "SELECT lease_owner FROM restate.task WHERE invocation_id = %s", invocation_id)
            assert owner != (None,), worker.log()  # waiting in the worker's memory, holding the lease
            assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/pause")).status_code == 202
            await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="late")
            assert await task_status(ingress, invocation_id)() == ("paused", None)
            assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/resume")).status_code == 200
            assert (await result_of(ingress, invocation_id)).output == b'"got late"'
            # the first attempt was stopped when paused, not left waiting until its next write
            assert f"attempt 1 of {invocation_id} stopped: its lease was taken away" in worker.log()


async def test_a_late_stop_message_does_not_end_the_attempt_that_resumed(ingress):
    """A pause's stop message names the attempt it stopped: one that arrives after a resume, when
    the invocation runs again under a new lease, leaves the new attempt alone."""
    key = uuid.uuid4().hex
    invocation_id = (await ingress.client.post("/Waiter/wait/send", json=key)).json()["invocationId"]
    awakeable_id = await held_id(ingress, key)
    (paused_epoch,) = await row(ingress.engine, "SELECT epoch FROM restate.task WHERE invocation_id = %s", invocation_id)
    assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/pause")).status_code == 202
    assert (await ingress.client.patch(f"/admin/invocations/{invocation_id}/resume")).status_code == 200
    epoch = lambda: row(ingress.engine, "SELECT epoch, lease_owner IS NOT NULL FROM restate.task WHERE invocation_id = %s",
                        invocation_id)
    assert await eventually(epoch, (paused_epoch + 1, True)) == (paused_epoch + 1, True)
    await ingress.engine.store.notify(ingress.engine.own_channel, hints.stop(invocation_id, paused_epoch))
    await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="still here")
    assert (await result_of(ingress, invocation_id)).output == b'"got still here"'


async def test_a_restart_with_a_journal_prefix_waits_for_the_deployment_that_wrote_it(ingress):
    tag = uuid.uuid4().hex
    old_id = (await ingress.client.post("/Redo/steps", json=tag)).headers["x-restate-id"]
    await row(ingress.engine, "UPDATE restate.invocation SET deployment_id = 'v-old' WHERE id = %s RETURNING id", old_id)
    restarted = await ingress.client.patch(f"/admin/invocations/{old_id}/restart-as-new", params={"from": 1})
    new_id = restarted.json()["new_invocation_id"]
    pinned = lambda: row(ingress.engine, "SELECT t.deployment_id, t.lease_owner IS NULL, i.status FROM restate.task t"
                                         " JOIN restate.invocation i ON i.id = t.invocation_id WHERE i.id = %s", new_id)
    # this worker runs another deployment: it claims newer work (a delayed send goes through its
    # claim loop, which takes due tasks oldest first), and leaves the restart alone
    newer = (await ingress.client.post("/Chain/echo/send", json="newer", params={"delay": "1ms"})).json()["invocationId"]
    assert (await result_of(ingress, newer)).output == b'"newer"'
    assert await pinned() == ("v-old", True, "invoked")
    assert await ingress.engine.store.mark_compatible(ingress.engine.deployment_id, ["v-old"])
    await ingress.engine.store.notify(ingress.engine.work_channel, hints.SERVICES_CHANGED)
    assert (await result_of(ingress, new_id)).output == b'["one","two"]'
    assert ledger.steps(tag) == ["first", "second", "second"]  # "first" replayed from the copied prefix
