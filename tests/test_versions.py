"""Deployment versioning: an invocation is pinned to the deployment that started it, and only
workers of that deployment (or of one an operator marked compatible) resume it."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.apps import versions
from tests.support import ledger
from tests.support.polling import eventually, row
from tests.support.processes import WorkerProcess
from tests.support.server import serve
from tests.test_cli import run_cli

APP = "tests.apps.versions:app"


def worker(database_url: str, deployment: str) -> WorkerProcess:
    return WorkerProcess(APP, database_url, env={"RESTATE_PG_DEPLOYMENT": deployment},
                         extra=["--inactivity-timeout", "0.05"])


@pytest.fixture
async def ingress(clean_db, side_effects):
    async with serve(versions.app, clean_db, run_handlers=False, poll_interval=0.1) as served:
        yield served


async def suspended_on(ingress, database_url: str, deployment: str) -> tuple[str, str]:
    """Start Upgrade/slow on a worker of `deployment` and stop that worker once the invocation
    is suspended in its sleep, pinned to it."""
    tag = uuid.uuid4().hex
    with worker(database_url, deployment) as old:
        invocation_id = (await ingress.client.post("/Upgrade/slow/send", json=tag)).json()["invocationId"]
        task = lambda: row(ingress.engine, "SELECT status, deployment_id FROM restate.task WHERE invocation_id = %s", invocation_id)
        assert await eventually(task, ("suspended", deployment)) == ("suspended", deployment), old.log()
    return invocation_id, tag


async def in_flight(database_url: str, tmp_path) -> dict:
    done = await asyncio.to_thread(run_cli, "deployments", "list", "--json", "--database-url", database_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return {d["id"]: (d["workers"], d["in_flight"]) for d in json.loads(done.stdout)}


async def test_a_newer_worker_leaves_an_older_deployments_invocation_alone(ingress, clean_db, tmp_path):
    invocation_id, tag = await suspended_on(ingress, clean_db, "v1")
    with worker(clean_db, "v2") as newer:
        # the pinned invocation's timer is due; v2 claims due work oldest first, so once it has
        # finished work submitted after that, it has passed the v1 invocation over
        due = lambda: row(ingress.engine, "SELECT run_at <= now() FROM restate.task WHERE invocation_id = %s", invocation_id)
        assert await eventually(due, (True,)) == (True,)
        assert (await ingress.client.post("/Upgrade/quick")).json() == "v2", newer.log()
        assert await row(ingress.engine, "SELECT status, lease_owner, deployment_id FROM restate.task"
                         " WHERE invocation_id = %s", invocation_id) == ("suspended", None, "v1")
        assert await in_flight(clean_db, tmp_path) == {"v1": (0, 1), "v2": (1, 0)}
        with worker(clean_db, "v1"):
            result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
    assert result.output == b'"v1"'
    assert ledger.steps(tag) == ["before", "after"]


async def test_an_operator_lets_a_newer_deployment_take_over(ingress, clean_db, tmp_path):
    invocation_id, tag = await suspended_on(ingress, clean_db, "v1")
    with worker(clean_db, "v2"):
        assert (await ingress.client.post("/Upgrade/quick")).json() == "v2"  # v2 is registered and running
        marked = await asyncio.to_thread(run_cli, "deployments", "compatible", "v2", "v1", "--database-url", clean_db, cwd=tmp_path)
        assert marked.returncode == 0, marked.stderr
        result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
    assert result.output == b'"v2"'
    assert ledger.steps(tag) == ["before", "after"]  # the journaled step was not run again
    unknown = await asyncio.to_thread(run_cli, "deployments", "compatible", "v2", "v0", "--database-url", clean_db, cwd=tmp_path)
    assert (unknown.returncode, "unknown deployment(s): v0" in unknown.stderr) == (1, True)
