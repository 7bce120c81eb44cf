"""Workers with different lease lengths on one database (say, during a rollout that changes
`--lease-seconds`): each is judged by its own lease. A worker with a 1 s lease reaps every third
of a second; a live worker with a 6 s lease heartbeats every 2 s, so judged by the reaper's lease
it would be declared dead between its heartbeats and its running invocation taken over and run
again (revision 0016 records each worker's lease; reap_workers reads it)."""

from __future__ import annotations

import asyncio
import os

import psycopg
import pytest

from tests.apps import flow
from tests.support import ledger
from tests.support.polling import eventually
from tests.support.processes import WorkerProcess
from tests.support.server import serve
from tests.test_flow_control import APP, intervals


@pytest.mark.slow
async def test_a_worker_with_a_short_lease_never_reaps_a_live_one_with_a_longer_lease(restate_database_url):
    os.environ[ledger.DSN_ENV] = restate_database_url
    ledger.reset()
    env = {ledger.DSN_ENV: restate_database_url}
    async with serve(flow.app, restate_database_url, run_handlers=False) as ingress:
        with WorkerProcess(APP, restate_database_url, env=env, lease_seconds=6.0) as patient:
            # runs on the only worker there is: 4 s between its two journaled records
            call = asyncio.ensure_future(ingress.client.post("/Limited/work", json={"tag": "leases", "n": 0, "ms": 4000}))
            await eventually(lambda: [step for step, _ in intervals("leases")], ["start 0"], what="the call running")
            with WorkerProcess(APP, restate_database_url, env=env, lease_seconds=1.0) as hasty:
                await eventually(lambda: "reap" in hasty.log() or _reaps(restate_database_url), True,
                                 what="the short-lease worker reaping")
                response = await call
            assert response.status_code == 200 and response.json() == "done 0"
            assert [step for step, _ in intervals("leases")] == ["start 0", "end 0"]  # ran once, on its worker
            assert "declared dead" not in patient.log()
            with psycopg.connect(restate_database_url) as conn:
                assert conn.execute("SELECT lease_ms FROM restate.worker ORDER BY lease_ms").fetchall() == [(6000,)]


def _reaps(url: str) -> bool:
    """Whether the short-lease worker has started reaping (its first lease of heartbeats is over):
    its own row has been renewed for a lease."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT heartbeat_at - started_at >= interval '1 second' FROM restate.worker"
                           " WHERE lease_ms = 1000").fetchone()
    return bool(row and row[0])
