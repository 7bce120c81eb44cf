"""Deployment versioning: an invocation is pinned to the deployment that started it, and only
workers of that deployment (or of one an operator marked compatible) resume it."""

from __future__ import annotations

import asyncio
import json
import logging
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
    async with serve(versions.app, clean_db, run_handlers=False, poll_interval=0.1, admin=True) as served:
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
async def test_invocations_waiting_for_a_deployment_without_workers_are_shown_with_the_command_that_releases_them(
    ingress, clean_db, tmp_path
):
    invocation_id, tag = await suspended_on(ingress, clean_db, "v1")  # and v1's only worker stopped
    release = "restate-pg deployments compatible v2 v1"
    with worker(clean_db, "v2") as newer:
        # the worker's log names the deployment, the count and the command
        warned = lambda: [line for line in newer.log().splitlines() if "deployment v1" in line]
        lines = await eventually(warned, what="the worker's warning about deployment v1")
        assert "WARNING" in lines[0] and "1 invocation(s)" in lines[0] and release in lines[0], newer.log()
        # `invocations list` has a column for it, and says what to run
        listed = await asyncio.to_thread(run_cli, "invocations", "list", "--database-url", clean_db, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "stranded" in listed.stdout.splitlines()[0], listed.stdout
        assert "1 invocation(s)" in listed.stderr and "deployment v1" in listed.stderr and release in listed.stderr
        as_json = await asyncio.to_thread(run_cli, "invocations", "list", "--json", "--database-url", clean_db, cwd=tmp_path)
        assert as_json.returncode == 0, as_json.stderr
        assert {row["id"]: row["stranded"] for row in json.loads(as_json.stdout)}[invocation_id] is True
        # and a metric, on the admin API (the same in every process: read from the database)
        scrape = (await ingress.client.get("/admin/metrics")).text
        assert 'restate_pg_invocations_stranded{deployment="v1"} 1.0' in scrape, scrape
        # the command releases it: v2 takes it over and nothing is stranded any more
        marked = await asyncio.to_thread(run_cli, *release.split()[1:], "--database-url", clean_db, cwd=tmp_path)
        assert marked.returncode == 0, marked.stderr
        result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
        assert result.output == b'"v2"'
        scrape = (await ingress.client.get("/admin/metrics")).text
        assert "# TYPE restate_pg_invocations_stranded gauge" in scrape and 'deployment="v1"' not in scrape, scrape
        listed = await asyncio.to_thread(run_cli, "invocations", "list", "--database-url", clean_db, cwd=tmp_path)
        assert (listed.returncode, listed.stderr) == (0, "")


@pytest.mark.slow
async def test_a_live_worker_of_the_deployment_means_nothing_is_stranded(ingress, clean_db, tmp_path):
    invocation_id, _ = await suspended_on(ingress, clean_db, "v1")
    with worker(clean_db, "v1") as same:
        result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
        assert result.output == b'"v1"'
        assert "stranded" not in same.log() and "no live worker" not in same.log()


@pytest.mark.slow
async def test_housekeeping_says_when_nothing_is_stranded_any_more(ingress, clean_db, monkeypatch, caplog):
    """The check runs again at each housekeeping round and speaks when what it finds changes."""
    invocation_id, _ = await suspended_on(ingress, clean_db, "v1")
    monkeypatch.setenv("RESTATE_PG_DEPLOYMENT", "v2")  # what the app's handlers report, in this process
    caplog.set_level(logging.INFO, logger="restate_pg.worker")
    said = lambda text: [r.getMessage() for r in caplog.records if text in r.getMessage()]
    async with serve(versions.app, clean_db, deployment="v2", retention_interval=0.1) as newer:
        (warning,) = await eventually(lambda: said("wait for deployment v1"), what="the warning at start")
        assert warning.startswith("1 invocation(s) wait for deployment v1,") and warning.endswith(
            "restate-pg deployments compatible v2 v1"), warning
        await newer.engine.store.mark_compatible("v2", ["v1"])  # what the printed command does
        await eventually(lambda: said("no invocation waits for a deployment without a live worker"),
                         what="housekeeping to notice the release")
        result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
    assert result.output == b'"v2"'
    assert len(said("wait for deployment v1")) == 1  # said once, not at every round
