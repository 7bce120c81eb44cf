"""Flow control across three worker processes (issue 17, docs/flow-control.md): concurrency
limits are never exceeded, rate limits hold within one token, priorities overtake a backlog,
debounced sends run once with the last input, and a full backlog answers 429.

The ingress runs in this process and executes nothing, so every invocation runs in one of the
workers; each handler records its start and end in the side-effect ledger (the database's clock).
One cluster serves the whole module; each test uses scopes of its own.
"""

from __future__ import annotations

import asyncio
import json
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

APP = "tests.apps.flow:app"
#: No test here kills a worker: a lease a loaded machine never lets lapse, so that each step runs once.
LEASE_S = 10.0


@pytest.fixture(scope="module")
def workers(restate_database_url: str) -> typing.Iterator[None]:
    os.environ[ledger.DSN_ENV] = restate_database_url
    ledger.reset()
    processes = [WorkerProcess(APP, restate_database_url, env={ledger.DSN_ENV: restate_database_url},
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


@pytest.mark.slow
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
    # one start per hour, a backlog of two: once the first has started (its token spent), the next
    # two queue and the fourth is refused. (Sent back to back, the third met a backlog of two when
    # the first was not claimed yet, and the fourth found room once it was.)
    await set_rules(cluster, {"pattern": "tiny", "limits": {"backlog": 2, "rate": {"tokens": 1, "interval_ms": 3_600_000, "burst": 1}}})

    async def send(n: int) -> typing.Any:
        return await cluster.client.post("/restate/scope/tiny/send/Limited/work", json={"tag": "tiny", "n": n})

    assert (await send(0)).status_code == 202
    await eventually(lambda: len(intervals("tiny")) > 0, what="the first to start")
    answers = [await send(n) for n in (1, 2, 3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    refused = answers[-1]
    assert refused.headers["retry-after"] == "1"
    assert "backlog of tiny is full" in refused.json()["message"]
    with psycopg.connect(ledger.dsn()) as conn:
        stored = conn.execute("SELECT count(*) FROM restate.invocation WHERE scope = 'tiny'").fetchone()[0]
    assert stored == 3

    async def queued() -> int:  # the two behind the first wait for the next token
        queues = (await cluster.client.get("/admin/limits/queues")).json()["queues"]
        return next(q["num_queued"] for q in queues if q["scope"] == "tiny")

    await eventually(queued, 2, what="the two to queue")


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


CLAIM_CLOCK = """
CREATE TABLE IF NOT EXISTS public.flow_claim (invocation_id text, at float8);
CREATE OR REPLACE FUNCTION public.record_flow_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.flow_claim VALUES (NEW.invocation_id, extract(epoch FROM clock_timestamp()));
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS record_flow_claim ON restate.task;
CREATE TRIGGER record_flow_claim AFTER UPDATE OF lease_owner ON restate.task FOR EACH ROW
    WHEN (OLD.attempt = 0 AND NEW.lease_owner IS NOT NULL AND NEW.scope = 'r20') EXECUTE FUNCTION public.record_flow_claim();
"""


@pytest.mark.slow
async def test_a_rate_of_twenty_per_second_holds_over_ten_seconds_within_one_token(cluster):
    """Starts are timed by the database as each claim leases a first attempt (a trigger of the
    test's own), not by the handlers, whose start lags their claim by a varying few ms."""
    with psycopg.connect(ledger.dsn(), autocommit=True) as conn:
        conn.execute(CLAIM_CLOCK)
    await set_rules(cluster, {"pattern": "r20", "limits": {"rate": {"tokens": 20, "interval_ms": 1000, "burst": 1}}})
    sends = [cluster.client.post("/restate/scope/r20/send/Limited/work", json={"tag": "r20", "n": n}) for n in range(200)]
    assert {r.status_code for r in await asyncio.gather(*sends)} == {202}
    await eventually(lambda: ledger.count("r20"), 400, timeout_s=40, what="200 invocations to run")
    with psycopg.connect(ledger.dsn(), autocommit=True) as conn:
        starts = [row[0] for row in conn.execute("SELECT at FROM public.flow_claim ORDER BY at")]
        conn.execute("DROP TRIGGER record_flow_claim ON restate.task")
    assert len(starts) == 200
    # any span of time saw at most 20 per second of it, plus the burst, plus one token
    for i in range(len(starts)):
        for j in range(i + 1, len(starts)):
            assert j - i + 1 <= 20 * (starts[j] - starts[i]) + 1 + 1, (i, j, starts[j] - starts[i])
    assert starts[-1] - starts[0] >= 199 / 20 - 1  # the limit bound: 200 starts took about 10 s


@pytest.mark.slow
async def test_a_high_priority_overtakes_a_backlog_of_low_ones(cluster):
    await set_rules(cluster, {"pattern": "prio", "limits": {"concurrency": 1}})
    for n in range(12):
        response = await cluster.client.post("/restate/scope/prio/send/Limited/work", json={"tag": "prio", "n": n, "ms": 60})
        assert response.status_code == 202
    urgent = await cluster.client.post("/restate/scope/prio/send/Limited/work", headers={"x-restate-pg-priority": "100"},
                                       json={"tag": "prio", "n": "urgent", "ms": 60})
    assert urgent.status_code == 202
    with psycopg.connect(ledger.dsn()) as conn:  # the ledger's clock: by then, urgent was stored
        accepted_at = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    await eventually(lambda: ledger.count("prio"), 26, what="13 invocations to run")
    starts = [(step.split(" ", 1)[1], at) for step, at in intervals("prio") if step.startswith("start")]
    order = [n for n, _ in starts]
    started_before = sum(at <= accepted_at for _, at in starts)  # on a slow machine, the sends take a while
    assert most_at_once("prio") == 1
    # behind at most what had started, and one claim that may have been under way, when it was stored
    assert order.index("urgent") <= started_before + 1, (order, started_before)
    assert order[-1] != "urgent"


async def test_a_debounced_send_runs_once_with_the_last_input(cluster):
    ids = set()
    for n in range(5):
        response = await cluster.client.post("/Limited/work/send?debounce=400ms", headers={"x-restate-pg-debounce-key": "d1"},
                                             json={"tag": "debounce", "n": n})
        assert response.status_code == 202, response.text
        ids.add(response.json()["invocationId"])
    assert len(ids) == 1  # every send joined the pending one
    (invocation_id,) = ids
    done = await cluster.client.get(f"/restate/invocation/{invocation_id}/attach")
    assert done.json() == "done 4"
    assert [step for step, _ in intervals("debounce")] == ["start 4", "end 4"]
    again = await cluster.client.post("/Limited/work/send?debounce=10ms", headers={"x-restate-pg-debounce-key": "d1"},
                                      json={"tag": "debounce", "n": 5})
    assert again.json()["invocationId"] != invocation_id  # the window closed when it started


@pytest.mark.slow
def test_the_cli_sets_lists_and_deletes_rules(database_url):
    def cli(*args: str) -> "subprocess.CompletedProcess[str]":
        return subprocess.run([sys.executable, "-m", "restate_pg", "rules", *args, "--database-url", database_url],
                              capture_output=True, text=True, timeout=60)

    assert cli("set", "cli-scope/*", "--concurrency", "3", "--backlog", "10").stdout == \
        "rule 'cli-scope/*': concurrency 3, backlog 10, version 1\n"
    listed = json.loads(cli("list", "--json").stdout)
    assert {"pattern": "cli-scope/*", "limits": {"concurrency": 3, "backlog": 10}} in [
        {k: r[k] for k in ("pattern", "limits")} for r in listed]
    refused = cli("set", "a/b/c/d")
    assert refused.returncode != 0 and "too many parts" in refused.stderr
    assert cli("delete", "cli-scope/*").stdout == "deleted rule 'cli-scope/*'\n"
    gone = cli("delete", "cli-scope/*")
    assert gone.returncode != 0 and gone.stdout == "no rule 'cli-scope/*'\n"


async def test_clients_scope_calls_and_sends_with_a_limit_key(cluster, database_url):
    """restate-sdk's own client (`generic_call`/`generic_send` with `scope` and `limit_key`) and
    restate-pg's clients (`client.scope(...)`, over HTTP and over SQL) start scoped invocations
    that the rules hold; a scope partitions identity, a limit key does not."""
    import restate  # restate-sdk, as a client of restate-pg's ingress

    import restate_pg
    from restate_pg.client.handle import ClientError

    await set_rules(cluster, {"pattern": "clients/*", "limits": {"concurrency": 1}},
                    {"pattern": "clients/full", "limits": {"backlog": 1, "rate": {"tokens": 1, "interval_ms": 3_600_000, "burst": 1}}})
    job = lambda tag, n: {"tag": tag, "n": n, "ms": 20}  # noqa: E731
    json_headers = {"content-type": "application/json"}
    async with restate.create_client(cluster.base_url) as sdk, \
            restate_pg.create_client(cluster.base_url) as http, \
            restate_pg.create_client(database_url, app=flow.app) as sql:
        calls = [sdk.generic_call("Limited", "work", json.dumps(job("via-sdk", n)).encode(), headers=json_headers,
                                  scope="clients", limit_key="sdk") for n in range(3)]
        calls += [http.scope("clients").service_call(flow.work, job("via-http", n), limit_key="http") for n in range(3)]
        calls += [sql.scope("clients").service_call(flow.work, job("via-sql", n), limit_key="sql") for n in range(3)]
        answers = await asyncio.gather(*calls)
        assert answers[:3] == [json.dumps(f"done {n}").encode() for n in range(3)]
        assert answers[3:] == [f"done {n}" for n in range(3)] * 2
        assert [most_at_once(tag) for tag in ("via-sdk", "via-http", "via-sql")] == [1, 1, 1]

        sent = await sdk.generic_send("Limited", "work", json.dumps(job("sent", 0)).encode(), headers=json_headers,
                                      scope="clients", limit_key="sdk")
        assert await http.attach_invocation(sent.invocation_id) == "done 0"
        # one idempotency key: the same invocation in one scope whatever the limit key, another in another scope
        first = await http.scope("clients").service_send(flow.work, job("idem", 1), limit_key="a", idempotency_key="k")
        again = await sql.scope("clients").service_send(flow.work, job("idem", 1), limit_key="b", idempotency_key="k")
        other = await sql.scope("clients2").service_send(flow.work, job("idem", 2), idempotency_key="k")
        assert first.invocation_id == again.invocation_id != other.invocation_id

        for client in (http, sql):  # refused before anything is sent or written
            with pytest.raises(ValueError, match="invalid scope"):
                client.scope("no spaces")
            with pytest.raises(ValueError, match="needs a scope"):
                await client.generic_call("Limited", "work", b"{}", limit_key="a")
            with pytest.raises(ValueError, match="invalid limit key"):
                await client.scope("clients").service_send(flow.work, job("x", 0), limit_key="a/b/c")
        refused = []
        for client in (http, sql, http, sql):  # one starts (its token), one queues, the next are refused
            try:
                await client.scope("clients").service_send(flow.work, job("full", 0), limit_key="full")
            except ClientError as exc:
                refused.append((exc.status_code, "backlog of clients/full is full" in str(exc)))
        assert refused[-2:] == [(429, True), (429, True)]
    with psycopg.connect(ledger.dsn()) as conn:
        stored = conn.execute("SELECT limit_key, count(*) FROM restate.invocation WHERE scope = 'clients'"
                              " AND limit_key IN ('sdk', 'http', 'sql') GROUP BY 1 ORDER BY 1").fetchall()
    assert stored == [("http", 3), ("sdk", 4), ("sql", 3)]


async def test_metrics_and_the_ui_overview_show_queues_and_rules(cluster):
    """One start an hour: of three sends, one runs and two queue; the scrape and the overview
    say so, with the rules' limits."""
    from prometheus_client.parser import text_string_to_metric_families

    await set_rules(cluster, {"pattern": "gauge", "description": "one an hour",
                              "limits": {"backlog": 5, "rate": {"tokens": 1, "interval_ms": 3_600_000, "burst": 1}}},
                    {"pattern": "gauge/*", "limits": {"concurrency": 3}})
    for n in range(3):
        sent = await cluster.client.post("/restate/scope/gauge/send/Limited/work", headers={"x-restate-limit-key": "k"},
                                         json={"tag": "gauge", "n": n})
        assert sent.status_code == 202, sent.text

    async def gauges() -> typing.Dict[typing.Tuple[str, ...], float]:
        text = (await cluster.client.get("/admin/metrics")).text
        return {(s.name, s.labels.get("scope") or s.labels["pattern"], s.labels.get("stage") or s.labels["limit"]): s.value
                for family in text_string_to_metric_families(text) for s in family.samples
                if s.name.startswith("restate_pg_flow_") and "gauge" in (s.labels.get("scope"), s.labels.get("pattern", "")[:5])}

    async def stages() -> typing.Dict[typing.Tuple[str, ...], float]:
        return {k: v for k, v in (await gauges()).items() if k[0] == "restate_pg_flow_invocations"}

    await eventually(stages, {("restate_pg_flow_invocations", "gauge", "running"): 0.0,
                              ("restate_pg_flow_invocations", "gauge", "queued"): 2.0,
                              ("restate_pg_flow_invocations", "gauge", "waiting"): 0.0}, what="one to run and two to queue")
    limits = {k: v for k, v in (await gauges()).items() if k[0] == "restate_pg_flow_rule_limit"}
    assert limits == {("restate_pg_flow_rule_limit", "gauge", "rate_per_second"): pytest.approx(1 / 3600),
                      ("restate_pg_flow_rule_limit", "gauge", "burst"): 1.0,
                      ("restate_pg_flow_rule_limit", "gauge", "backlog"): 5.0,
                      ("restate_pg_flow_rule_limit", "gauge/*", "concurrency"): 3.0}

    page = (await cluster.client.get("/admin/ui/")).text
    flow_section = page.split('<h2 id="flow-control">Flow control</h2>')[1].split("<h2>")[0]
    assert "<td>gauge</td>" in flow_section and "1 per 3600000 ms, burst 1" in flow_section and "one an hour" in flow_section
    assert "<tr><td>gauge</td><td>k</td><td>0</td><td>2</td><td>0</td>" in flow_section


async def test_restart_as_new_keeps_the_scope_limit_key_and_priority(cluster):
    done = await cluster.client.post("/restate/scope/again/call/Limited/work", json={"tag": "again", "n": 1},
                                     headers={"x-restate-limit-key": "t1/u1", "x-restate-pg-priority": "9"})
    assert done.status_code == 200, done.text
    restarted = await cluster.client.patch(f"/admin/invocations/{done.headers['x-restate-id']}/restart-as-new")
    assert restarted.status_code == 200, restarted.text
    new_id = restarted.json()["new_invocation_id"]
    assert (await cluster.client.get(f"/restate/invocation/{new_id}/attach")).json() == "done 1"
    with psycopg.connect(ledger.dsn()) as conn:
        row = conn.execute("SELECT scope, limit_key, priority FROM restate.invocation WHERE id = %s", (new_id,)).fetchone()
    assert row == ("again", "t1/u1", 9)
