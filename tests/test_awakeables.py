"""Awakeables: created by a handler, completed from the ingress or from another handler."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.apps import awakeables
from tests.support.polling import eventually
from tests.support.processes import WorkerProcess
from tests.support.server import SUSPENDING_IDS, serve, suspending_modes

APP = "tests.apps.awakeables:app"


@pytest.fixture(params=suspending_modes(0.3), ids=SUSPENDING_IDS)
async def ingress(clean_db, request):
    async with serve(awakeables.app, clean_db, inactivity_timeout=request.param) as served:
        yield served


async def start(ingress, handler: str) -> tuple[str, str]:
    key = uuid.uuid4().hex
    sent = await ingress.client.post(f"/Waiter/{handler}/send", json=key)
    assert sent.status_code == 202
    return sent.json()["invocationId"], key


async def held_id(ingress, key: str) -> str:
    async def held():
        response = await ingress.client.post(f"/Holder/{key}/held")
        return response.json() if response.content else None  # None is an empty body, as in restate-sdk

    return await eventually(held, what="the awakeable id to reach the holder")


async def outcome(ingress, invocation_id: str):
    result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
    assert result is not None
    return result


async def test_resolved_from_the_ingress(ingress):
    invocation_id, key = await start(ingress, "wait")
    awakeable_id = await held_id(ingress, key)
    assert awakeable_id.startswith("sign_1")
    response = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="hello")
    assert (response.status_code, response.content) == (202, b"")
    assert (await outcome(ingress, invocation_id)).output == b'"got hello"'


async def test_rejected_from_the_ingress(ingress):
    invocation_id, key = await start(ingress, "wait")
    awakeable_id = await held_id(ingress, key)
    response = await ingress.client.post(f"/restate/a/{awakeable_id}/reject", content="card declined")
    assert response.status_code == 202
    failure = (await outcome(ingress, invocation_id)).failure
    assert (failure.code, failure.message) == (500, "card declined")


async def test_resolved_and_rejected_by_other_handlers(ingress):
    invocation_id, key = await start(ingress, "wait")
    await held_id(ingress, key)
    assert (await ingress.client.post(f"/Holder/{key}/unlock", json="from a handler")).status_code == 200
    assert (await outcome(ingress, invocation_id)).output == b'"got from a handler"'

    invocation_id, key = await start(ingress, "wait")
    await held_id(ingress, key)
    assert (await ingress.client.post(f"/Holder/{key}/refuse", json="not today")).status_code == 200
    failure = (await outcome(ingress, invocation_id)).failure
    assert (failure.code, failure.message) == (451, "not today")


async def test_resolved_before_it_is_awaited(ingress):
    invocation_id, key = await start(ingress, "wait_later")
    awakeable_id = await held_id(ingress, key)
    await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="early")
    assert (await outcome(ingress, invocation_id)).output == b'"got early"'


async def test_a_second_resolution_is_ignored(ingress):
    invocation_id, key = await start(ingress, "wait_later")
    awakeable_id = await held_id(ingress, key)
    first = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="first")
    second = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="second")
    assert (first.status_code, second.status_code) == (202, 202)
    assert (await outcome(ingress, invocation_id)).output == b'"got first"'
    late = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="late")
    assert late.status_code == 202  # accepted and dropped: the invocation is over


async def test_an_awakeable_loses_a_select_against_a_sleep(ingress):
    invocation_id, key = await start(ingress, "wait_or_timeout")
    assert (await outcome(ingress, invocation_id)).output == b'"sleep"'


@pytest.mark.parametrize("awakeable_id", ["nope", "sign_1AAAA", "inv_1abc"])
async def test_bad_ids_are_refused(ingress, awakeable_id):
    response = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json=1)
    assert response.status_code == 400
    assert response.json()["message"] == f"bad awakeable id '{awakeable_id}'"


async def test_an_unknown_secret_changes_nothing(ingress):
    invocation_id, key = await start(ingress, "wait")
    awakeable_id = await held_id(ingress, key)
    forged = awakeable_id[:-4] + ("AAAA" if not awakeable_id.endswith("AAAA") else "BBBB")
    assert (await ingress.client.post(f"/restate/awakeables/{forged}/resolve", json="forged")).status_code == 202
    await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="real")
    assert (await outcome(ingress, invocation_id)).output == b'"got real"'


async def test_only_post_resolves(ingress):
    assert (await ingress.client.get("/restate/awakeables/sign_1x/resolve")).status_code == 405
    assert (await ingress.client.post("/restate/awakeables/sign_1x/complete")).status_code == 404


@pytest.mark.slow
async def test_delivered_although_the_worker_holding_it_is_killed(clean_db):
    async with serve(awakeables.app, clean_db, run_handlers=False, poll_interval=0.1) as ingress:
        worker = WorkerProcess(APP, clean_db, extra=["--inactivity-timeout", "30"]).start()
        try:
            invocation_id, key = await start(ingress, "wait")
            awakeable_id = await held_id(ingress, key)
            resolving = asyncio.ensure_future(
                ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="survived"))
            worker.kill()
            assert (await resolving).status_code == 202
        finally:
            if worker.process.poll() is None:
                worker.kill()
        with WorkerProcess(APP, clean_db, extra=["--lease-seconds", "2"]):
            assert (await outcome(ingress, invocation_id)).output == b'"got survived"'
