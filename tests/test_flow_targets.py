"""Flow-control rules on a service or a handler (issue 17, docs/flow-control.md) across three
worker processes: a concurrency rule on a handler is never exceeded, so is one per object key,
a rate rule on a service holds, a handler's default priority overtakes a backlog, a handler's debounce window makes sends
with one debounce key run once, and a full backlog answers 429.

As in tests/test_flow_control.py (whose helpers this module uses): the ingress runs here and
executes nothing; handlers record their start and end in the side-effect ledger. A rule on a
service holds every invocation of it, so each test has services of its own (tests/apps/flow.py).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import typing

import psycopg
import pytest

from tests.apps import flow
from tests.support import ledger
from tests.support.polling import eventually
from tests.support.processes import WorkerProcess
from tests.support.server import serve
from tests.test_flow_control import LEASE_S, intervals, most_at_once, set_rules


@pytest.fixture(scope="module")
def workers(restate_database_url: str) -> typing.Iterator[None]:
    os.environ[ledger.DSN_ENV] = restate_database_url
    ledger.reset()
    processes = [WorkerProcess("tests.apps.flow:app", restate_database_url, env={ledger.DSN_ENV: restate_database_url},
                               lease_seconds=LEASE_S, extra=["--concurrency", "20"]).start() for _ in range(3)]
    try:
        yield
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
async def cluster(workers, database_url):
    async with serve(flow.app, database_url, admin=True, run_handlers=False) as served:
        yield served


@pytest.mark.slow
async def test_a_concurrency_rule_on_a_handler_is_never_exceeded_and_sys_rules_shows_it(cluster):
    await set_rules(cluster, {"target": {"service": "Capped", "handler": "work"}, "limits": {"concurrency": 2},
                              "description": "two digests at once"})
    calls = [cluster.client.post("/Capped/work", json={"tag": "capped", "n": n, "ms": 30}) for n in range(30)]
    calls += [cluster.client.post("/Capped/free", json={"tag": "capped-free", "n": n}) for n in range(5)]  # no rule
    responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200] * 35
    assert sorted(r.json() for r in responses[:30]) == sorted(f"done {n}" for n in range(30))
    assert len(intervals("capped")) == 60 and len(intervals("capped-free")) == 10
    assert most_at_once("capped") == 2  # never more; and the limit was reached
    rules = (await cluster.client.get("/admin/limits/rules")).json()["rules"]
    rule = next(r for r in rules if r["pattern"] == "service:Capped/work")
    assert (rule["target"], rule["limits"], rule["description"]) == (
        {"service": "Capped", "handler": "work"}, {"concurrency": 2}, "two digests at once")
    with psycopg.connect(ledger.dsn()) as conn:
        shown = conn.execute("SELECT target_service, target_handler, concurrency FROM restate.sys_rules"
                             " WHERE pattern = 'service:Capped/work'").fetchall()
    assert shown == [("Capped", "work", 2)]


@pytest.mark.slow  # over four seconds: the full suite's, not the quick run's
async def test_a_per_key_rule_on_a_service_holds_for_each_object_key(cluster):
    await set_rules(cluster, {"target": {"service": "Tenanted"}, "limits": {"concurrency_per_key": 1}})
    calls = [cluster.client.post(f"/Tenanted/{key}/shared_work", json={"tag": f"per-key-{key}", "n": n, "ms": 20})
             for n in range(5) for key in ("a", "b")]
    responses = await asyncio.gather(*calls)
    assert {r.status_code for r in responses} == {200}
    assert most_at_once("per-key-a") == 1 and most_at_once("per-key-b") == 1
    assert len(intervals("per-key-a")) == len(intervals("per-key-b")) == 10


CLAIM_CLOCK = """
CREATE TABLE IF NOT EXISTS public.paced_claim (invocation_id text, at float8);
CREATE OR REPLACE FUNCTION public.record_paced_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.paced_claim VALUES (NEW.invocation_id, extract(epoch FROM clock_timestamp()));
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS record_paced_claim ON restate.task;
CREATE TRIGGER record_paced_claim AFTER UPDATE OF lease_owner ON restate.task FOR EACH ROW
    WHEN (OLD.attempt = 0 AND NEW.lease_owner IS NOT NULL AND NEW.service = 'Paced') EXECUTE FUNCTION public.record_paced_claim();
"""


async def test_a_rate_rule_on_a_service_holds_within_one_token(cluster):
    """Starts are timed by the database as each claim leases a first attempt (a trigger of the
    test's own), as the scope's rate test does."""
    with psycopg.connect(ledger.dsn(), autocommit=True) as conn:
        conn.execute(CLAIM_CLOCK)
    await set_rules(cluster, {"target": {"service": "Paced"}, "limits": {"rate": {"tokens": 10, "interval_ms": 1000, "burst": 1}}})
    sends = [cluster.client.post("/Paced/work/send", json={"tag": "paced", "n": n}) for n in range(30)]
    assert {r.status_code for r in await asyncio.gather(*sends)} == {202}
    await eventually(lambda: ledger.count("paced"), 60, timeout_s=30, what="30 invocations to run")
    with psycopg.connect(ledger.dsn(), autocommit=True) as conn:
        starts = [row[0] for row in conn.execute("SELECT at FROM public.paced_claim ORDER BY at")]
        conn.execute("DROP TRIGGER record_paced_claim ON restate.task")
    assert len(starts) == 30
    for i in range(len(starts)):  # any span saw at most 10 per second of it, plus the burst, plus one token
        for j in range(i + 1, len(starts)):
            assert j - i + 1 <= 10 * (starts[j] - starts[i]) + 1 + 1, (i, j, starts[j] - starts[i])
    assert starts[-1] - starts[0] >= 29 / 10 - 1  # the limit bound: 30 starts took about 3 s


async def test_a_default_priority_rule_on_a_handler_overtakes_a_backlog(cluster):
    await set_rules(cluster, {"target": {"service": "Ranked"}, "limits": {"concurrency": 1}},
                    {"target": {"service": "Ranked", "handler": "urgent"}, "limits": {"priority": 100}})
    for n in range(10):
        response = await cluster.client.post("/Ranked/work/send", json={"tag": "ranked", "n": n, "ms": 60})
        assert response.status_code == 202
    urgent = await cluster.client.post("/Ranked/urgent/send", json={"tag": "ranked", "n": "urgent", "ms": 60})
    assert urgent.status_code == 202
    await eventually(lambda: ledger.count("ranked"), 22, what="11 invocations to run")
    order = [step.split(" ", 1)[1] for step, _ in intervals("ranked") if step.startswith("start")]
    assert most_at_once("ranked") == 1
    assert order.index("urgent") <= 3, order  # behind at most what was running or being claimed then
    assert order[-1] != "urgent"
    with psycopg.connect(ledger.dsn()) as conn:
        priorities = conn.execute("SELECT handler, priority FROM restate.invocation WHERE service = 'Ranked'"
                                  " GROUP BY 1, 2 ORDER BY 1").fetchall()
    assert priorities == [("urgent", 100), ("work", 0)]


async def test_a_debounce_rule_on_a_handler_runs_sends_of_one_key_once_with_the_last_input(cluster):
    await set_rules(cluster, {"target": {"service": "Settled", "handler": "work"}, "limits": {"debounce_ms": 400}})
    ids = set()
    for n in range(5):  # no ?debounce: the rule gives the window
        response = await cluster.client.post("/Settled/work/send", headers={"x-restate-pg-debounce-key": "d1"},
                                             json={"tag": "settled", "n": n})
        assert response.status_code == 202, response.text
        ids.add(response.json()["invocationId"])
    assert len(ids) == 1  # every send joined the pending one
    (invocation_id,) = ids
    done = await cluster.client.get(f"/restate/invocation/{invocation_id}/attach")
    assert done.json() == "done 4"
    assert [step for step, _ in intervals("settled")] == ["start 4", "end 4"]
    plain = await cluster.client.post("/Settled/work", json={"tag": "settled-plain", "n": 0})  # no debounce key
    assert plain.json() == "done 0"
    refused = await cluster.client.post("/Settled/work", headers={"x-restate-pg-debounce-key": "d1"}, json={"tag": "x", "n": 0})
    assert refused.status_code == 400 and "only with sends" in refused.json()["message"]


async def test_a_backlog_rule_on_a_handler_answers_429_and_writes_nothing(cluster):
    await set_rules(cluster, {"target": {"service": "Bounded", "handler": "work"},
                              "limits": {"backlog": 2, "rate": {"tokens": 1, "interval_ms": 3_600_000, "burst": 1}}})
    answers = [await cluster.client.post("/Bounded/work/send", json={"tag": "bounded", "n": n}) for n in range(4)]
    assert [a.status_code for a in answers[:2]] == [202, 202]
    refused = answers[-1]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert "backlog of Bounded/work is full" in refused.json()["message"]
    accepted = sum(a.status_code == 202 for a in answers)
    with psycopg.connect(ledger.dsn()) as conn:
        stored = conn.execute("SELECT count(*) FROM restate.invocation WHERE service = 'Bounded'").fetchone()[0]
    assert stored == accepted in (2, 3)

    async def queued() -> typing.Optional[float]:  # one started (its token), the others wait for the next token
        from prometheus_client.parser import text_string_to_metric_families

        text = (await cluster.client.get("/admin/metrics")).text
        return next((s.value for family in text_string_to_metric_families(text) for s in family.samples
                     if s.name == "restate_pg_flow_target_invocations" and s.labels == {"target": "Bounded/work", "stage": "queued"}),
                    None)

    await eventually(queued, accepted - 1, what="all but one to queue")

    def finished() -> int:  # the one with the token ran to its end (a worker just started may take a while)
        with psycopg.connect(ledger.dsn()) as conn:
            return conn.execute("SELECT count(*) FROM restate.invocation WHERE service = 'Bounded' AND status = 'completed'").fetchone()[0]

    await eventually(finished, 1, what="the invocation that got the token to finish")
    page = (await cluster.client.get("/admin/ui/")).text
    assert f"<tr><td>Bounded/work</td><td>0</td><td>{accepted - 1}</td>" in page.split('id="flow-control"')[1]


async def test_bad_target_rules_are_refused(cluster):
    for rule in ({"target": {"service": "a/b"}}, {"target": {"handler": "h"}}, {"pattern": "s", "target": {"service": "S"}},
                 {"pattern": "s", "limits": {"priority": 3}}, {"target": {"service": "S"}, "limits": {"priority": 5000}},
                 {"target": {"service": "S"}, "limits": {"debounce_ms": 0}}):
        response = await cluster.client.put("/admin/limits/rules", json=[rule])
        assert response.status_code == 400, rule
        assert "message" in response.json()


@pytest.mark.slow
def test_the_cli_sets_and_deletes_rules_on_a_service_or_handler(database_url):
    def cli(*args: str) -> "subprocess.CompletedProcess[str]":
        return subprocess.run([sys.executable, "-m", "restate_pg", "rules", *args, "--database-url", database_url],
                              capture_output=True, text=True, timeout=60)

    assert cli("set", "--service", "Mailer", "--handler", "digest", "--concurrency", "2", "--per-key", "1",
               "--priority", "5", "--debounce-ms", "500").stdout == \
        "rule 'service:Mailer/digest': concurrency 2, per key 1, priority 5, debounce ms 500, version 1\n"
    assert "service:Mailer/digest: concurrency 2, per key 1" in cli("list").stdout
    refused = cli("set", "--handler", "digest", "--concurrency", "1")
    assert refused.returncode != 0 and "--handler needs --service" in refused.stderr
    assert cli("delete", "--service", "Mailer", "--handler", "digest").stdout == "deleted rule 'service:Mailer/digest'\n"
