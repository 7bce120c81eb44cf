"""Flow control across three worker processes (issue 17, docs/flow-control.md): concurrency
limits are never exceeded, rate limits hold within one token, priorities overtake a backlog,
debounced sends run once with the last input, and a full backlog answers 429.

The ingress runs in this process and executes nothing, so every invocation runs in one of the
workers; each handler records its start and end in the side-effect ledger (the database's clock).
One cluster serves the whole module; each test uses scopes of its own.
"""

from __future__ import annotations

import asyncio
import os
import typing

import psycopg
import pytest

from tests.apps import flow
from tests.support import ledger
from tests.support.polling import eventually
from tests.support.processes import WorkerProcess
from tests.support.server import serve

APP = "tests.apps.flow:app"


@pytest.fixture(scope="module")
def workers(restate_database_url: str) -> typing.Iterator[None]:
    os.environ[ledger.DSN_ENV] = restate_database_url
    ledger.reset()
    processes = [WorkerProcess(APP, restate_database_url, env={ledger.DSN_ENV: restate_database_url},
                               extra=["--concurrency", "20"]).start() for _ in range(3)]
    try:
        yield
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
async def cluster(workers, database_url):
    async with serve(flow.app, database_url, admin=True, run_handlers=False) as served:
        yield served


async def set_rules(cluster, *rules: typing.Dict[str, typing.Any]) -> None:
    response = await cluster.client.put("/admin/limits/rules", json=list(rules))
    assert response.status_code == 200, response.text


def intervals(tag: str) -> typing.List[typing.Tuple[str, typing.Any]]:
    with psycopg.connect(ledger.dsn()) as conn:
        return conn.execute("SELECT step, at FROM public.side_effect WHERE tag = %s ORDER BY at, id", (tag,)).fetchall()


def most_at_once(tag: str) -> int:
    """The most invocations between their start and end records at one instant."""
    running = peak = 0
    for step, _ in intervals(tag):
        running += 1 if step.startswith("start") else -1
        peak = max(peak, running)
    return peak


async def test_a_concurrency_limit_of_two_holds_for_fifty_invocations_on_three_workers(cluster):
    await set_rules(cluster, {"pattern": "c2", "limits": {"concurrency": 2}})
    calls = [cluster.client.post("/restate/scope/c2/call/Limited/work", json={"tag": "c2", "n": n, "ms": 30})
             for n in range(50)]
    responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200] * 50
    assert sorted(r.json() for r in responses) == sorted(f"done {n}" for n in range(50))
    assert len(intervals("c2")) == 100
    assert most_at_once("c2") == 2  # never more; and the limit was reached


async def test_a_limit_per_key_holds_for_each_key_and_the_rule_is_shown(cluster):
    await set_rules(cluster, {"pattern": "tenants/*", "limits": {"concurrency": 1}, "description": "one per tenant"})
    calls = [cluster.client.post("/restate/scope/tenants/call/Limited/work", headers={"x-restate-limit-key": tenant},
                                 json={"tag": f"tenant-{tenant}", "n": n, "ms": 20})
             for n in range(6) for tenant in ("a", "b")]
    responses = await asyncio.gather(*calls)
    assert {r.status_code for r in responses} == {200}
    assert most_at_once("tenant-a") == 1 and most_at_once("tenant-b") == 1
    rules = (await cluster.client.get("/admin/limits/rules")).json()["rules"]
    assert {"pattern": "tenants/*", "limits": {"concurrency": 1}, "description": "one per tenant",
            "disabled": False, "version": 1} == {k: v for k, v in next(r for r in rules if r["pattern"] == "tenants/*").items()
                                                  if k != "last_modified_millis_since_epoch"}


async def test_a_full_backlog_answers_429_and_writes_nothing(cluster):
    # one start per hour: the first starts (or queues), the next two queue, the fourth is refused
    await set_rules(cluster, {"pattern": "tiny", "limits": {"backlog": 2, "rate": {"tokens": 1, "interval_ms": 3_600_000, "burst": 1}}})
    answers = []
    for n in range(4):
        answers.append(await cluster.client.post("/restate/scope/tiny/send/Limited/work", json={"tag": "tiny", "n": n}))
    assert [a.status_code for a in answers[:2]] == [202, 202]
    refused = answers[-1]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert "backlog of tiny is full" in refused.json()["message"]
    accepted = sum(a.status_code == 202 for a in answers)
    with psycopg.connect(ledger.dsn()) as conn:
        stored = conn.execute("SELECT count(*) FROM restate.invocation WHERE scope = 'tiny'").fetchone()[0]
    assert stored == accepted in (2, 3)
    queues = (await cluster.client.get("/admin/limits/queues")).json()["queues"]
    tiny = next(q for q in queues if q["scope"] == "tiny")
    assert tiny["num_queued"] + tiny["num_running"] == accepted - ledger.count("tiny") // 2


async def test_a_limit_key_without_a_scope_and_bad_rules_are_refused(cluster):
    no_scope = await cluster.client.post("/Limited/work", headers={"x-restate-limit-key": "a"}, json={"tag": "x", "n": 0})
    assert no_scope.status_code == 400 and "needs a scope" in no_scope.json()["message"]
    bad_scope = await cluster.client.post("/restate/scope/bad scope!/call/Limited/work", json={"tag": "x", "n": 0})
    assert bad_scope.status_code == 400, bad_scope.text
    for rule in ({"pattern": "a/b/c/d"}, {"pattern": "s", "limits": {"concurrency": 0}}, {"pattern": "s", "limits": {"speed": 1}}):
        response = await cluster.client.put("/admin/limits/rules", json=[rule])
        assert response.status_code == 400, rule
        assert "message" in response.json()


async def test_restate_sdk_scope_calls_are_limited(cluster):
    await set_rules(cluster, {"pattern": "sdk/*", "limits": {"concurrency": 1}})
    response = await cluster.client.post("/Limited/fan_out", json={"scope": "sdk", "limit_key": "k", "tag": "sdk", "count": 5, "ms": 20})
    assert response.status_code == 200, response.text
    assert sorted(response.json()) == [f"done {n}" for n in range(5)]
    assert most_at_once("sdk") == 1
    with psycopg.connect(ledger.dsn()) as conn:
        scoped = conn.execute("SELECT DISTINCT scope, limit_key FROM restate.invocation WHERE handler = 'work' AND scope = 'sdk'").fetchall()
    assert scoped == [("sdk", "k")]
