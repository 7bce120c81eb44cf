"""Faults while restate-pg drives real SDK endpoints over Restate's service protocol: a worker
process SIGKILLed mid-handler, the endpoint's process SIGKILLed mid-handler and restarted, and a
PostgreSQL restart. Each leaves nothing lost and no journaled step executed twice. Also: a journal
that does not match on replay is retried with Restate's code 570, and a cancelled remote
invocation runs its compensation and ends 409.

The ingress and admin API run in this process and execute nothing (`run_handlers=False`): every
attempt is driven by `restate-pg worker` processes without an application, which the tests kill.
The handler is `Steps/gated` (tests/endpoints): `n` journaled steps, step `gate` held inside its
`ctx.run` until the test creates a file, so that a fault lands at a known point: steps before the
gate are journaled, the gated one is executing, those after it have not started.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import typing
import uuid

import psycopg
import pytest

from bench.faults.cluster import Cluster
from restate_pg.api.app import App
from tests.endpoints.fixtures import StartEndpoint
from tests.endpoints.processes import Endpoint
from tests.support.polling import eventually
from tests.support.processes import WorkerProcess
from tests.support.server import Served, serve
from tests.test_database_down import cluster  # noqa: F401 (a fixture: a PostgreSQL of the test's own)

pytestmark = pytest.mark.slow

#: Both exchanges (bidirectional, request-response on our HTTP/2 client and on httpx's HTTP/1.1)
#: and both SDKs, each at least once: every fault test runs in each (CI time is counted).
VARIANTS = [("typescript", "h2"), ("typescript", "h1"), ("python", "h2-rr")]
IDS = [f"{sdk}-{mode}" for sdk, mode in VARIANTS]
#: Steps of each gated invocation, and the one held until its gate opens.
STEPS, GATE = 5, 2
#: Liveness bound for an invocation to complete after a fault (a lease expiry, backoffs, restarts).
DONE_S = 60.0


@pytest.fixture
async def ingress(clean_db: str) -> typing.AsyncIterator[Served]:
    async with serve(App(), clean_db, admin=True, run_handlers=False, poll_interval=0.1) as served:
        yield served


@pytest.fixture(params=VARIANTS, ids=IDS)
async def endpoint(request: pytest.FixtureRequest, ingress: Served, start_endpoint: StartEndpoint) -> Endpoint:
    """An SDK endpoint of each variant, registered through the admin API."""
    started = start_endpoint(*request.param)
    await register(ingress, started)
    return started


def worker(database_url: str, **options: typing.Any) -> WorkerProcess:
    """A `restate-pg worker` of the registered endpoints only (1 s lease: takeovers come fast)."""
    return WorkerProcess(None, database_url, **options)


def lasting_worker(database_url: str) -> WorkerProcess:
    """A worker that is never taken over: its lease outlasts any stall of a loaded machine (with
    1 s, a worker starved that long under the parallel suite was declared dead mid-attempt and
    its own next claim ran the unjournaled step again, as a takeover would)."""
    return worker(database_url, lease_seconds=10.0)


async def register(served: Served, endpoint: Endpoint) -> None:
    response = await served.client.post("/admin/deployments",
                                         json={"uri": endpoint.url, "use_http_11": not endpoint.http2})
    assert response.status_code == 201, response.text

    async def known() -> bool:
        await served.engine.load_overrides()
        return served.engine.service("Steps") is not None

    await eventually(known, what="the registered services to reach the ingress")


async def send(served: Served, path: str, body: typing.Any) -> str:
    response = await served.client.post(f"{path}/send", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["invocationId"])


async def outcome(served: Served, invocation_id: str) -> typing.Tuple[int, typing.Any]:
    """The invocation's answer once it completes (attach waits for it): status and body. A 503
    (the database was unreachable: just after a PostgreSQL restart) is asked again, as a client
    does."""
    async def answered() -> typing.Optional[typing.Tuple[int, typing.Any]]:
        response = await served.client.get(f"/restate/invocation/{invocation_id}/attach")
        if response.status_code == 503:
            return None
        return response.status_code, response.json() if response.content else None

    return await eventually(answered, timeout_s=DONE_S, what=f"{invocation_id} to answer")


def journal(url: str, invocation_id: str) -> typing.List[typing.Tuple[str, typing.Optional[int], typing.Optional[int]]]:
    """The invocation's journal: (entry type, command index, index of the command it completes)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT entry_type, command_index, completes FROM restate.journal"
                            " WHERE invocation_id = %s ORDER BY index", [invocation_id]).fetchall()
    return [(str(kind), command, completes) for kind, command, completes in rows]


def journaled_runs(url: str, invocation_id: str) -> int:
    """How many of the invocation's runs have their result journaled."""
    return sum(1 for kind, _, completes in journal(url, invocation_id) if kind == "Run" and completes is not None)


def gated_journal() -> typing.List[typing.Tuple[str, typing.Optional[int], typing.Optional[int]]]:
    """What the journal of a completed `Steps/gated` holds: each step's run and its result once."""
    rows: typing.List[typing.Tuple[str, typing.Optional[int], typing.Optional[int]]] = []
    for i in range(1, STEPS + 1):
        rows += [("Run", i, None), ("Run", None, i)]
    return rows + [("Output", STEPS + 1, None)]


async def held_at_gate(endpoint: Endpoint, url: str, key: str, invocation_id: str) -> None:
    """Wait until the gated step executes, with every step before it journaled."""
    await eventually(lambda: endpoint.count(f"{key}.step-{GATE}") == 1 and journaled_runs(url, invocation_id) == GATE,
                     timeout_s=DONE_S, what=f"{invocation_id} to be held at step {GATE}")


def open_gate(endpoint: Endpoint, key: str) -> None:
    (endpoint.counters / f"{key}.open").touch()


def assert_each_step_once(endpoint: Endpoint, key: str, gated_runs: int) -> None:
    """Every step ran once, except the gated one, which ran `gated_runs` times: a step whose
    result was not journaled when the fault struck runs again (ctx.run is at least once)."""
    runs = [endpoint.count(f"{key}.step-{i}") for i in range(STEPS)]
    assert runs == [gated_runs if i == GATE else 1 for i in range(STEPS)], runs


def new_key() -> str:
    return uuid.uuid4().hex[:12]


async def test_a_worker_killed_mid_handler_is_taken_over(
        endpoint: Endpoint, ingress: Served, clean_db: str) -> None:
    key = new_key()
    # The killed worker's lease is a lasting one (see lasting_worker): with 1 s, a first worker
    # starved that long under a loaded machine lost its lease before step 0 was journaled and its
    # own next claim ran step 0 again (seen once, [2, 1, 2, 1, 1]); the takeover waits out the 10 s.
    with lasting_worker(clean_db) as first:
        invocation_id = await send(ingress, "/Steps/gated", {"key": key, "n": STEPS, "gate": GATE})
        await held_at_gate(endpoint, clean_db, key, invocation_id)
        first.kill()
    with worker(clean_db) as second:
        open_gate(endpoint, key)
        assert await outcome(ingress, invocation_id) == (200, sum(range(STEPS))), second.log()
    # the gated step ran in the killed worker's attempt and again in the rescuer's; no other step
    # ran twice, and the handler was started again (the takeover replayed the journal)
    assert_each_step_once(endpoint, key, gated_runs=2)
    assert endpoint.count(f"{key}.attempts") >= 2
    assert journal(clean_db, invocation_id) == gated_journal()


async def test_an_endpoint_killed_mid_handler_and_restarted_completes_the_invocation(
        endpoint: Endpoint, ingress: Served, clean_db: str) -> None:
    key = new_key()
    with lasting_worker(clean_db) as driver:
        invocation_id = await send(ingress, "/Steps/gated", {"key": key, "n": STEPS, "gate": GATE})
        await held_at_gate(endpoint, clean_db, key, invocation_id)
        endpoint.kill()
        open_gate(endpoint, key)
        endpoint.restart()  # same port, same counters
        assert await outcome(ingress, invocation_id) == (200, sum(range(STEPS))), driver.log()
    assert_each_step_once(endpoint, key, gated_runs=2)
    assert journal(clean_db, invocation_id) == gated_journal()


async def test_a_handler_held_mid_step_holds_back_no_other_invocation(
        endpoint: Endpoint, ingress: Served, clean_db: str) -> None:
    """While one invocation's step runs on (an exchange that stays open), others of the same
    endpoint go on: over h2c, request-response exchanges once queued behind it (one stream per
    connection in httpx until the server announces a stream limit, which Node never does)."""
    key = new_key()
    with lasting_worker(clean_db) as driver:
        held = await send(ingress, "/Steps/gated", {"key": key, "n": STEPS, "gate": GATE})
        await held_at_gate(endpoint, clean_db, key, held)
        others = [await send(ingress, "/Steps/steps", {"key": new_key(), "n": 3}) for _ in range(3)]
        for invocation_id in others:
            assert await outcome(ingress, invocation_id) == (200, 3), driver.log()
        assert endpoint.count(f"{key}.passed") == 0  # still held: the others did not wait for it
        open_gate(endpoint, key)
        assert await outcome(ingress, held) == (200, sum(range(STEPS))), driver.log()
    assert_each_step_once(endpoint, key, gated_runs=1)


@pytest.mark.parametrize(("sdk", "mode"), VARIANTS, ids=IDS)
async def test_a_postgresql_restart_loses_nothing_and_repeats_no_journaled_step(
        sdk: str, mode: str, cluster: Cluster, start_endpoint: StartEndpoint) -> None:
    """Invocations held mid-handler across a PostgreSQL stop and start: those whose gated step
    ends while PostgreSQL is down, and those whose step ends after it is back, all complete with
    every journaled step run once; an invocation sent after the restart completes too."""
    url = cluster.url("app")
    endpoint = start_endpoint(sdk, mode)
    async with serve(App(), url, admin=True, run_handlers=False, poll_interval=0.1) as served:
        await register(served, endpoint)
        with worker(url, lease_seconds=5.0) as driver:
            keys = [new_key() for _ in range(4)]
            ids = [await send(served, "/Steps/gated", {"key": k, "n": STEPS, "gate": GATE}) for k in keys]
            for k, invocation_id in zip(keys, ids):
                await held_at_gate(endpoint, url, k, invocation_id)
            await asyncio.to_thread(cluster.stop, "fast")
            for k in keys[:2]:  # their gated step ends while PostgreSQL is down
                open_gate(endpoint, k)
            await eventually(lambda: all(endpoint.count(f"{k}.passed") >= 1 for k in keys[:2]),
                             what="the gated steps to end (their results sent) while PostgreSQL is down")
            await asyncio.to_thread(cluster.start)
            for k in keys[2:]:
                open_gate(endpoint, k)
            for invocation_id in ids:
                assert await outcome(served, invocation_id) == (200, sum(range(STEPS))), driver.log()
            after = new_key()
            fresh = await send(served, "/Steps/gated", {"key": after, "n": STEPS, "gate": -1})
            assert await outcome(served, fresh) == (200, sum(range(STEPS))), driver.log()
    for k, invocation_id in zip(keys, ids):
        runs = [endpoint.count(f"{k}.step-{i}") for i in range(STEPS)]
        # steps journaled before the restart ran once, and so did those after the gated one; the
        # gated step runs again when its result reached the worker while PostgreSQL was down (the
        # attempt is handed back, nothing of it stored), as restate-server re-runs a step whose
        # result it could not append
        assert runs[:GATE] + runs[GATE + 1:] == [1] * (STEPS - 1) and runs[GATE] in (1, 2), (k, runs)
        assert journal(url, invocation_id) == gated_journal()
    assert_each_step_once(endpoint, after, gated_runs=1)


def described(url: str, invocation_id: str) -> typing.Dict[str, str]:
    """`restate-pg invocations describe ID`, as an operator reads it: its facts by name."""
    done = subprocess.run([sys.executable, "-m", "restate_pg", "invocations", "describe", invocation_id,
                           "--database-url", url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    facts: typing.Dict[str, str] = {}
    name = ""
    for line in done.stdout.split("\njournal:")[0].splitlines():
        fact = re.match(r"^([a-z][a-z ]*?)\s{2,}(.*)$", line)
        if fact:
            name, facts[fact[1]] = fact[1], fact[2]
        elif name:  # a value of several lines (a failure's message)
            facts[name] += "\n" + line
    return facts


async def test_a_journal_mismatch_on_replay_is_retried_with_code_570(
        endpoint: Endpoint, ingress: Served, clean_db: str) -> None:
    key = new_key()
    with lasting_worker(clean_db):
        invocation_id = await send(ingress, "/Steps/nonDeterministic", key)

        def last_failure() -> typing.Optional[typing.Tuple[str, str]]:
            with psycopg.connect(clean_db) as conn:
                row = conn.execute("SELECT last_failure_error_code, last_failure FROM restate.sys_invocation"
                                   " WHERE id = %s", [invocation_id]).fetchone()
            return None if row is None or row[0] is None else (str(row[0]), str(row[1]))

        await eventually(lambda: endpoint.count(key) >= 2, timeout_s=DONE_S, what="the replay")
        await eventually(lambda: (last_failure() or ("", ""))[0] == "570", timeout_s=DONE_S,
                         what=f"570 as {invocation_id}'s last failure")
        code, message = last_failure() or ("", "")
        facts = described(clean_db, invocation_id)
    assert code == "570" and "mismatch" in message, (code, message)
    assert facts["last failure"].startswith("[570] ") and "mismatch" in facts["last failure"], facts
    assert facts["status"] in ("backing-off", "running"), facts  # retried, as Restate retries it
    # the first attempt's run is journaled once; the mismatching sleep never is
    assert [kind for kind, _, _ in journal(clean_db, invocation_id)] == ["Run", "Run"]


async def test_cancelling_a_remote_invocation_runs_its_compensation(
        endpoint: Endpoint, ingress: Served, clean_db: str) -> None:
    key = new_key()
    with lasting_worker(clean_db):
        invocation_id = await send(ingress, "/Steps/waitUntilCancelled", key)
        await eventually(lambda: started(clean_db, invocation_id), timeout_s=DONE_S, what="the handler to start")
        response = await ingress.client.patch(f"/admin/invocations/{invocation_id}/cancel")
        assert response.status_code in (200, 202), response.text
        status, body = await outcome(ingress, invocation_id)
    assert status == 409, body
    assert endpoint.count(f"{key}.compensated") == 1


def started(url: str, invocation_id: str) -> bool:
    """Whether an attempt of the invocation has started (the cancellation then reaches the handler
    as a signal, which it sees at its next await)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT status, last_start_at FROM restate.sys_invocation WHERE id = %s",
                           [invocation_id]).fetchone()
    return row is not None and row[0] in ("running", "suspended") and row[1] is not None
