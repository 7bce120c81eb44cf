"""Exactly-once database steps (ctx.run_in_transaction), with real worker processes.

Each step INSERTs one row into the application table `public.booking` in the transaction that
journals it; the tests count the rows after crashes, failures and replays.
"""

from __future__ import annotations

import asyncio
import re
import signal

import psycopg
import pytest

import restate_pg as restate
from tests.apps import dbstep
from tests.support import ledger
from tests.support.processes import REPO, WorkerProcess
from tests.support.server import serve
from tests.support.crashing import killed_and_rescued
from tests.support.polling import eventually

APP = "tests.apps.dbstep:app"
VARIANTS = ["async", "sync", "session", "async_session", "django"]


@pytest.fixture
async def ingress(clean_db, side_effects):
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(dbstep.DDL)
        conn.execute("TRUNCATE public.booking")
    async with serve(dbstep.app, clean_db, run_handlers=False, poll_interval=0.1) as served:
        yield served


def bookings(database_url: str, key: str) -> list:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT id, variant, pid FROM public.booking WHERE tag = %s ORDER BY id", (key,)).fetchall()


def step_entries(database_url: str, key: str, name: str = "book") -> list:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT j.value, j.failure_code, j.failure_message FROM restate.journal j"
            " JOIN restate.invocation i ON i.id = j.invocation_id"
            " WHERE i.key = %s AND j.entry_type = 'Run' AND j.name = %s", (key, name)).fetchall()


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.slow
async def test_a_step_commits_its_writes_with_its_journal_entry(ingress, clean_db, variant):
    key = f"plain-{variant}"
    with WorkerProcess(APP, clean_db) as worker:
        response = await ingress.client.post(f"/Shop/{key}/book", json={"variant": variant})
    assert response.status_code == 200, response.text
    [(row_id, row_variant, pid)] = bookings(clean_db, key)
    assert response.json() == {"id": row_id, "pid": worker.pid}
    assert (row_variant, pid) == (variant, worker.pid)
    [(value, code, _)] = step_entries(clean_db, key)
    assert code is None and b'"id"' in bytes(value)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.slow
async def test_a_terminal_error_rolls_the_step_back_and_is_journaled(ingress, clean_db, variant):
    key = f"terminal-{variant}"
    with WorkerProcess(APP, clean_db):
        response = await ingress.client.post(f"/Shop/{key}/book", json={"variant": variant, "fail": "terminal"})
    assert response.status_code == 200, response.text
    assert response.json() == {"failed": "out of stock", "code": 422}
    assert bookings(clean_db, key) == []  # the INSERT before the error was rolled back
    assert step_entries(clean_db, key) == [(None, 422, "out of stock")]


@pytest.mark.parametrize("variant", ["async", "session", "django"])
@pytest.mark.slow
async def test_another_exception_rolls_back_and_the_retry_applies_the_step_once(ingress, clean_db, variant):
    key = f"retry-{variant}"
    with WorkerProcess(APP, clean_db) as worker:
        response = await ingress.client.post(f"/Shop/{key}/book", json={"variant": variant, "fail": "retryable"})
    assert response.status_code == 200, response.text
    assert ledger.count(key, "failed once") == 1
    [(row_id, _, _)] = bookings(clean_db, key)
    assert response.json() == {"id": row_id, "pid": worker.pid}


@pytest.mark.slow
async def test_a_retried_attempt_replays_the_recorded_result(ingress, clean_db):
    key = "replay"
    with WorkerProcess(APP, clean_db) as worker:
        response = await ingress.client.post(f"/Shop/{key}/book", json={"variant": "sync", "fail": "after_once"})
    assert response.status_code == 200, response.text
    assert ledger.count(key, "failed after") == 1  # the handler ran twice ...
    assert ledger.count(key, f"sync step by {worker.pid}") == 1  # ... its step once
    [(row_id, _, _)] = bookings(clean_db, key)
    assert response.json() == {"id": row_id, "pid": worker.pid}


@pytest.mark.parametrize("variant", ["async", "sync", "django"])
@pytest.mark.parametrize("hold", ["after", "inside"])
@pytest.mark.slow
async def test_sigkill_around_the_commit_leaves_exactly_one_copy(ingress, clean_db, variant, hold):
    """Killed right after the step committed (before the next journal entry), the victim's row
    stays and the rescuer replays its recorded result; killed inside the step (before commit),
    nothing of the victim's stays and the rescuer applies the step once."""
    key = f"killed-{hold}-{variant}"
    call = ingress.client.post(f"/Shop/{key}/book", json={"variant": variant})
    async with killed_and_rescued(call, APP, clean_db, key, {"DBSTEP_HOLD": hold}) as (victim, rescuer, response):
        assert response.status_code == 200, response.text
    writer = victim if hold == "after" else rescuer
    [(row_id, _, pid)] = bookings(clean_db, key)
    assert pid == writer.pid
    assert response.json() == {"id": row_id, "pid": writer.pid}
    assert ledger.count(key, f"after by {rescuer.pid}") == 1


@pytest.mark.parametrize("variant", ["async", "sync", "django"])
@pytest.mark.slow
async def test_an_attempt_that_lost_its_lease_writes_nothing(ingress, clean_db, variant):
    """SIGSTOP a worker just before its step; another takes over and finishes; on SIGCONT the
    stopped one goes on into its step, whose fence refuses it: no row of its own.

    The zombie's long lease spaces its heartbeats (a third of it, longer than the whole test) so
    that it reaches the step before a heartbeat could tell it that it was declared dead, however
    long the rescuer takes on a loaded machine: the fence is what stops it. A worker is reaped by
    its own lease, so the test ages the stopped zombie's last heartbeat past it, as ten minutes
    stopped would."""
    key = f"zombie-{variant}"
    zombie = WorkerProcess(APP, clean_db, env={"DBSTEP_STALL": "1"}, lease_seconds=600).start()
    try:
        call = asyncio.ensure_future(ingress.client.post(f"/Shop/{key}/book", json={"variant": variant}))
        # journaled, not only run: stopped between the two, the zombie would lose its lease there
        await eventually(lambda: step_entries(clean_db, key, "before"), what="the zombie to journal its first step")
        zombie.signal(signal.SIGSTOP)
        with psycopg.connect(clean_db, autocommit=True) as conn:
            aged = conn.execute("UPDATE restate.worker SET heartbeat_at = now() - interval '1 hour' WHERE pid = %s",
                                (zombie.pid,)).rowcount
        assert aged == 1
        with WorkerProcess(APP, clean_db) as rescuer:
            response = await asyncio.wait_for(call, 60)
            assert response.status_code == 200, response.text
            zombie.signal(signal.SIGCONT)
            await eventually(lambda: ledger.count(key, f"step reached by {zombie.pid}") == 1, what="the zombie's step")
            await eventually(lambda: "lost its lease" in zombie.log(), what="the step's fence to refuse the zombie")
    except BaseException:
        print("zombie log:\n" + zombie.log())
        raise
    finally:
        zombie.kill()
    [(row_id, _, pid)] = bookings(clean_db, key)
    assert pid == rescuer.pid
    assert response.json() == {"id": row_id, "pid": rescuer.pid}
    assert ledger.count(key, f"{variant} step by {zombie.pid}") == 0


async def test_the_readme_example(clean_db):
    """The README's database-step example, run as written, by an in-process worker."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Exactly-once database steps\n", 1)[1].split("\n## ", 1)[0]
    [source] = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace: dict = {}
    exec(compile(source, "README.md", "exec"), namespace)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.payment")
        conn.execute("CREATE TABLE public.payment (id serial PRIMARY KEY, order_id int NOT NULL, amount int NOT NULL)")
    async with serve(restate.app([namespace["payments"]]), clean_db) as served:
        headers = {"idempotency-key": "order-7"}
        first = await served.client.post("/Payments/pay", json={"id": 7, "amount": 100}, headers=headers)
        again = await served.client.post("/Payments/pay", json={"id": 7, "amount": 100}, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    with psycopg.connect(clean_db) as conn:
        rows = conn.execute("SELECT id, order_id, amount FROM public.payment").fetchall()
    assert rows == [(first.json(), 7, 100)] and again.json() == first.json()
