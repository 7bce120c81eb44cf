"""`restate-pg invocations list/describe` count the attempts of completed invocations too (the
live-work row that counts them is gone once an invocation completes): the functions that complete
an invocation copy the count into its row (revision 0020; a trigger did before)."""

from __future__ import annotations

import asyncio
import json
import typing
from datetime import timedelta

import psycopg
import pytest

import restate_pg as restate
from tests.apps import awakeables
from tests.support.server import serve
from tests.test_cli import run_cli


#: Fails its first two attempts (retryable), then answers: three attempts.
third_time = restate.Service("ThirdTime", invocation_retry_policy=restate.InvocationRetryPolicy(
    initial_interval=timedelta(milliseconds=10), max_attempts=5))
failures_left: typing.Dict[str, int] = {}


@third_time.handler()
async def lucky(ctx: restate.Context, name: str) -> str:
    if failures_left.setdefault(name, 2) > 0:
        failures_left[name] -= 1
        raise RuntimeError("not yet")
    return f"third time lucky, {name}"


@pytest.fixture
async def ingress(clean_db):
    async with serve(awakeables.app, clean_db, inactivity_timeout=30) as served:
        yield served


@pytest.mark.slow
async def test_a_completed_invocation_shows_its_attempts(ingress, clean_db, tmp_path):
    done = await ingress.client.post("/Chain/echo", json="hi")
    assert done.status_code == 200
    invocation_id = done.headers["x-restate-id"]

    listed = await asyncio.to_thread(run_cli, "invocations", "list", "--json", "--database-url", clean_db,
                                     "--schema", "restate", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (row,) = [r for r in json.loads(listed.stdout) if r["id"] == invocation_id]
    assert (row["status"], row["attempts"]) == ("completed", 1)

    described = await asyncio.to_thread(run_cli, "invocations", "describe", invocation_id, "--database-url", clean_db,
                                        "--schema", "restate", cwd=tmp_path)
    assert described.returncode == 0, described.stderr
    assert any(line.split() == ["attempts", "1"] for line in described.stdout.splitlines()), described.stdout


async def attempts_of(database_url: str, invocation_id: str) -> typing.Tuple[str, typing.Optional[int]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        row = await (await conn.execute(
            "SELECT status, attempts FROM restate.invocation WHERE id = %s", [invocation_id])).fetchone()
    assert row is not None, invocation_id
    return row


async def test_completions_keep_the_attempts_they_took(clean_db):
    """Through `flush`: a call that failed twice and then answered took three attempts. Through
    `finish_invocation`: a call killed while it waited in its key's inbox took none."""
    app = restate.app([third_time, awakeables.holder])
    async with serve(app, clean_db, admin=True, inactivity_timeout=30) as served:
        lucky_call = await served.client.post("/ThirdTime/lucky", json="ann")
        assert (lucky_call.status_code, lucky_call.json()) == (200, "third time lucky, ann")
        assert await attempts_of(clean_db, lucky_call.headers["x-restate-id"]) == ("completed", 3)

        holding = (await served.client.post("/Holder/k/block/send")).json()["invocationId"]
        queued = (await served.client.post("/Holder/k/block/send")).json()["invocationId"]
        assert (await served.client.patch(f"/admin/invocations/{queued}/kill")).status_code == 200
        assert await attempts_of(clean_db, queued) == ("completed", 0)
        assert (await served.client.patch(f"/admin/invocations/{holding}/kill")).status_code == 200
