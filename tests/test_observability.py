"""Logs, metrics and traces, read the way an operator's tools read them: Prometheus' text from
`GET /metrics`, JSON log lines from a worker's stderr, spans exported by each process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import typing
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.apps import observed
from tests.support.polling import eventually, row
from tests.support.processes import REPO, WorkerProcess
from tests.support.server import serve

APP = "tests.apps.observed:app"

Samples = typing.Dict[typing.Tuple[str, typing.FrozenSet[typing.Tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> typing.Optional[float]:
    return samples.get((name, frozenset(labels.items())))


async def scrape(client: httpx.AsyncClient, url: str) -> Samples:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


# -- metrics ----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_metrics_count_a_known_workload_exactly(clean_db):
    """Sends wait as ready tasks (no worker yet), then a worker process runs them: the admin API's
    gauges and the worker's own counters show exactly what happened."""
    # Counts are exact only if no attempt loses its lease to a stall of the loaded machine: both
    # processes get a long one (the reaper judges others by its own lease, so they must agree).
    async with serve(observed.app, clean_db, admin=True, run_handlers=False, lease_seconds=15) as ingress:
        client = ingress.client
        for name in ("a", "b", "c"):
            assert (await client.post("/Observed/ok/send", json=name)).status_code == 202
        assert (await client.post("/Observed/fail/send")).status_code == 202
        assert (await client.post("/Observed/flaky/send", json="x")).status_code == 202
        for _ in range(2):
            assert (await client.post("/Observed/sleeper/send")).status_code == 202

        before = await scrape(client, "/admin/metrics")
        assert value(before, "restate_pg_invocations", service="Observed", status="ready") == 7
        assert value(before, "restate_pg_invocations", service="Observed", status="suspended") == 0
        assert value(before, "restate_pg_invocations", service="Front", status="ready") == 0

        port = free_port()
        with WorkerProcess(APP, clean_db, lease_seconds=15, extra=["--metrics-port", str(port)]) as worker:

            async def settled() -> typing.Tuple[typing.Any, ...]:
                ended = await row(ingress.engine, "SELECT count(*) FROM restate.invocation WHERE status = 'completed'")
                suspended = await row(ingress.engine, "SELECT count(*) FROM restate.task WHERE status = 'suspended'")
                return (ended[0] if ended else None, suspended[0] if suspended else None)

            assert await eventually(settled, (5, 2), timeout_s=30) == (5, 2), worker.log()
            counted = await scrape(client, f"http://127.0.0.1:{port}/metrics")
            after = await scrape(client, "/admin/metrics")

    def counter(name: str, handler: str) -> typing.Optional[float]:
        return value(counted, name + "_total", service="Observed", handler=handler)

    assert {h: counter("restate_pg_invocations_started", h) for h in ("ok", "fail", "flaky", "sleeper")} == {
        "ok": 3, "fail": 1, "flaky": 1, "sleeper": 2}
    assert counter("restate_pg_invocations_completed", "ok") == 3
    assert counter("restate_pg_invocations_completed", "flaky") == 1
    assert counter("restate_pg_invocations_completed", "fail") is None
    assert counter("restate_pg_invocations_failed", "fail") == 1
    assert counter("restate_pg_invocation_retries", "flaky") == 1
    assert counter("restate_pg_invocation_retries", "ok") is None

    def observations(name: str, handler: str) -> typing.Optional[float]:
        return value(counted, name + "_count", service="Observed", handler=handler)

    # every invocation was claimed once, the flaky one once more after its backoff
    assert {h: observations("restate_pg_claim_lag_seconds", h) for h in ("ok", "fail", "flaky", "sleeper")} == {
        "ok": 1 * 3, "fail": 1, "flaky": 2, "sleeper": 2}
    assert observations("restate_pg_run_duration_seconds", "ok") == 3
    assert observations("restate_pg_timer_lateness_seconds", "ok") == 3
    assert observations("restate_pg_timer_lateness_seconds", "sleeper") is None  # due in an hour
    infinite = value(counted, "restate_pg_run_duration_seconds_bucket", service="Observed", handler="ok", le="+Inf")
    assert infinite == 3

    assert value(after, "restate_pg_invocations", service="Observed", status="suspended") == 2
    assert value(after, "restate_pg_invocations", service="Observed", status="ready") == 0
    assert value(after, "restate_pg_invocations", service="Observed", status="running") == 0


@pytest.mark.slow
def test_worker_metrics_port_taken_is_a_one_line_error(database_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "restate_pg", "worker", APP, "--database-url", database_url,
             "--metrics-port", str(port), "--log-level", "warning"],
            cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"restate-pg: error: cannot serve metrics on 127.0.0.1:{port}: Address already in use")


# -- logs -------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_json_logs_carry_the_invocation_and_are_not_repeated_on_replay(clean_db):
    async with serve(observed.app, clean_db, run_handlers=False) as ingress:
        with WorkerProcess(APP, clean_db, extra=["--log-format", "json"]) as worker:
            invocation_id = (await ingress.client.post("/Chatty/k1/chat/send")).json()["invocationId"]
            # fired only once attempt 1 suspended: a sleep that ended while its entry was being
            # written (a loaded machine) would let attempt 1 go on instead
            status = "SELECT status FROM restate.sys_invocation WHERE id = %s"
            assert await eventually(lambda: row(ingress.engine, status, invocation_id), ("suspended",), timeout_s=60) == (
                "suspended",), worker.log()
            assert await ingress.engine.operations.fire_timers(invocation_id) == 1
            result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 60)
            assert result.output == b'"done"', worker.log()
        lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]

    chat = [entry for entry in lines if entry["logger"] == "observed.chatty"]
    # attempt 1 ran to the sleep and suspended; attempt 2 replayed to it, then failed after
    # run "two"; attempt 3 replayed everything before the failure: each line is logged once
    assert [(entry["message"], entry["attempt"]) for entry in chat] == [
        ("begin", 1), ("after run", 1), ("after sleep", 2), ("end", 3)]
    for entry in chat:
        assert entry["invocation_id"] == invocation_id
        assert (entry["service"], entry["handler"], entry["key"], entry["level"]) == ("Chatty", "chat", "k1", "INFO")
    retried = [entry for entry in lines if entry["logger"] == "restate_pg.attempt"]
    assert len(retried) == 1, lines
    assert retried[0]["level"] == "WARNING"
    assert "first try of chat:k1 fails" in retried[0]["message"]
    assert (retried[0]["invocation_id"], retried[0]["attempt"], retried[0]["key"]) == (invocation_id, 2, "k1")


# -- traces -----------------------------------------------------------------------------------


def _start(args: typing.Sequence[str], env: typing.Dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "restate_pg", *args], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.slow
async def test_one_trace_from_the_ingress_through_a_call_in_other_processes(clean_db, tmp_path):
    """The ingress (`restate-pg serve`) and the handlers (`restate-pg worker`) run in two processes,
    each exporting its own spans: they form one trace, continuing the caller's traceparent."""
    env = {**os.environ, "OBSERVED_SPANS": str(tmp_path / "spans")}
    port = free_port()
    common = ["--database-url", clean_db, "--poll-interval", "0.1"]
    ingress = _start(["serve", APP, "--port", str(port), *common], env, tmp_path / "serve.log")
    worker = _start(["worker", APP, "--lease-seconds", "2", *common], env, tmp_path / "worker.log")
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            async def healthy() -> bool:
                try:
                    return (await client.get("/restate/health")).status_code == 200
                except httpx.TransportError:
                    return False

            assert await eventually(healthy, True, timeout_s=30)
            response = await client.post(
                "/Front/greet", json="ada", headers={"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"})
            assert response.status_code == 200
            assert response.json() == "ADA/ADA"
    finally:
        for process in (ingress, worker):
            process.terminate()
        for process in (ingress, worker):
            process.wait(timeout=30)
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("serve", "worker")}
    files = {int(p.name.split(".")[1]): json.loads(p.read_text()) for p in tmp_path.glob("spans.*.json")}
    assert set(files) == {ingress.pid, worker.pid}, logs

    assert len(files[ingress.pid]) == 1, files
    (ingress_span,) = files[ingress.pid]
    assert (ingress_span["name"], ingress_span["kind"]) == ("ingress Front/greet", "SERVER")
    assert ingress_span["parent_id"] == "00f067aa0ba902b7"
    spans = {span["name"]: span for span in files[worker.pid]}
    assert sorted(spans) == ["call Back/echo", "invoke Back/echo", "invoke Front/greet", "run reverse", "run shout"]
    assert {span["trace_id"] for span in [ingress_span, *spans.values()]} == {caller_trace}

    def parent(name: str) -> str:
        return spans[name]["parent_id"]

    assert parent("invoke Front/greet") == ingress_span["span_id"]
    assert parent("run shout") == spans["invoke Front/greet"]["span_id"]
    assert parent("call Back/echo") == spans["invoke Front/greet"]["span_id"]
    assert parent("invoke Back/echo") == spans["call Back/echo"]["span_id"]
    assert parent("run reverse") == spans["invoke Back/echo"]["span_id"]
    assert spans["invoke Front/greet"]["attributes"]["restate.invocation.id"] == ingress_span["attributes"]["restate.invocation.id"]
    assert spans["invoke Back/echo"]["attributes"]["restate.attempt.outcome"] == "completed"


# -- the README -------------------------------------------------------------------------------


async def test_readme_logging_example(clean_db, caplog):
    """The README's logging example, run as written: its lines carry the invocation's fields."""
    import logging
    import re

    import restate_pg as restate

    text = (REPO / "README.md").read_text()
    section = text[text.index("## Observability"):]
    source = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: typing.Dict[str, typing.Any] = {"charge": lambda order: f"receipt of {order}"}
    exec(compile(source, "README.md", "exec"), namespace)
    with caplog.at_level(logging.INFO, logger="shop.checkout"):
        async with serve(restate.app([namespace["checkout"]]), clean_db) as served:
            response = await served.client.post("/Checkout/pay", json="o-17")
    assert response.status_code == 200
    assert response.json() == "receipt of o-17"
    records = [r for r in caplog.records if r.name == "shop.checkout"]
    assert [r.getMessage() for r in records] == ["charging o-17", "charged o-17"]
    for record in records:
        assert record.restate_invocation_id == response.headers["x-restate-id"]
        assert (record.restate_service, record.restate_handler, record.restate_key, record.restate_attempt) == (
            "Checkout", "pay", None, 1)
