"""`restate-pg invocations ...`: the admin operations from a shell, run as a user would."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.apps import awakeables
from tests.support.server import serve
from tests.test_awakeables import held_id
from tests.test_cli import assert_one_line_error, run_cli

MISSING = "inv_1" + "0" * 33


@pytest.fixture
async def ingress(clean_db):
    async with serve(awakeables.app, clean_db, inactivity_timeout=30) as served:
        yield served


async def cli(tmp_path, database_url: str, *args: str):
    return await asyncio.to_thread(run_cli, "invocations", *args, "--database-url", database_url, cwd=tmp_path)


@pytest.mark.slow
async def test_cancel_reaches_a_handler_waiting_in_another_process(ingress, clean_db, tmp_path):
    key = uuid.uuid4().hex
    invocation_id = (await ingress.client.post("/Waiter/wait/send", json=key)).json()["invocationId"]
    await held_id(ingress, key)
    done = await cli(tmp_path, clean_db, "cancel", invocation_id)
    assert (done.returncode, done.stdout) == (0, f"{invocation_id}: cancellation requested: the handler raises it at its next await\n")
    result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)  # woken by the CLI's NOTIFY
    assert (result.failure.code, result.failure.message) == (409, "cancelled")

    again = await cli(tmp_path, clean_db, "cancel", invocation_id)
    assert again.returncode == 1
    assert_one_line_error(again, invocation_id, "the invocation is already completed")


@pytest.mark.slow
async def test_json_output_and_unknown_ids(ingress, clean_db, tmp_path):
    done_id = (await ingress.client.post("/Chain/echo", json="hi")).headers["x-restate-id"]
    done = await cli(tmp_path, clean_db, "restart-as-new", done_id, MISSING, "--json")
    assert done.returncode == 1
    first, second = json.loads(done.stdout)
    assert (first["invocation_id"], first["status"]) == (done_id, 200)
    assert second == {"invocation_id": MISSING, "status": 404, "message": "invocation not found"}
    restarted = await asyncio.wait_for(ingress.engine.results.wait(first["new_invocation_id"]), 30)
    assert restarted.output == b'"hi"'

    bad = await cli(tmp_path, clean_db, "kill", "not-an-id")
    assert bad.returncode == 2
    assert_one_line_error(bad, "'not-an-id' is neither an invocation id (inv_1...) nor a target of a registered service")
    usage = await cli(tmp_path, clean_db, "restart-as-new", done_id, "--from", "-1")
    assert usage.returncode == 2
    assert usage.stderr.splitlines()[-1] == "restate-pg: error: argument --from: expected a journal index (0 or more), got '-1'"
