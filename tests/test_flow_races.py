"""Flow control under racing transactions (issue 17, docs/flow-control.md "Races"): a backlog
is never overshot by concurrent submitters, and a rule on a service created while a submission
is in flight still holds that submission's invocation, and a slot held by a SIGKILLed worker
returns with its lease.

Each race is played step by step on real connections: one transaction is held open at the point
that matters, and the test waits until PostgreSQL shows the other one waiting for the advisory
lock that orders them (pg_locks), so the interleaving is the one named, not a hoped-for one. No
worker runs here: what is queued stays queued.
"""

from __future__ import annotations

import asyncio
import os
import typing

import psycopg
import pytest

from restate_pg.core.ids import new_invocation_id
from restate_pg.core.records import Submission
from restate_pg.services.rules import rule_row
from restate_pg.store import procedures
from restate_pg.store.codec import submission_doc
from restate_pg.store.queries import Queries
from tests.apps import flow
from tests.support import ledger
from tests.support.polling import eventually
from tests.support.processes import WorkerProcess
from tests.support.server import serve
from tests.test_flow_control import APP, intervals, set_rules

q = Queries("restate")


def submission(service: str, handler: str = "work", *, scope: typing.Optional[str] = None,
               owner: typing.Optional[str] = None) -> psycopg.types.json.Jsonb:
    """A backlog-checked send, as the ingress and the clients submit one."""
    sub = Submission(id=new_invocation_id(None), service=service, handler=handler, key=None, service_ty="service",
                     handler_ty=None, input=b"{}", scope=scope, owner=owner, check_backlog=True)
    return psycopg.types.json.Jsonb(submission_doc(sub))


async def submit(conn: psycopg.AsyncConnection, doc: psycopg.types.json.Jsonb) -> str:
    cur = await conn.execute(q.SUBMIT_INVOCATION, {"doc": doc})
    return (await cur.fetchone())[0]


async def set_rule(url: str, entry: typing.Dict[str, typing.Any]) -> None:
    """The rule's row as `PUT /limits/rules` writes it (scope rules need no marking)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(q.UPSERT_FLOW_RULE, rule_row(entry))


async def waiting_for(url: str, namespace: int) -> int:
    """How many backends of this database wait for an advisory lock of `namespace`."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE d.datname = current_database() AND l.locktype = 'advisory' AND NOT l.granted AND l.classid = %s::oid",
            (namespace,))
        return (await cur.fetchone())[0]


async def task_marks(url: str, service: str) -> typing.List[typing.Tuple[typing.Optional[str], bool]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT flow_target, lease_owner IS NOT NULL FROM restate.task WHERE service = %s"
                                 " ORDER BY lease_owner NULLS FIRST", (service,))
        return await cur.fetchall()


@pytest.mark.parametrize("rule, target", [
    ({"pattern": "held", "limits": {"backlog": 1}}, {"service": "Bounded", "scope": "held"}),
    ({"target": {"service": "Bounded"}, "limits": {"backlog": 1}}, {"service": "Bounded"}),
], ids=["scope", "service"])
async def test_a_submission_waits_for_the_one_filling_the_backlog_then_is_refused(clean_db, rule, target):
    await set_rule(clean_db, rule)
    async with await psycopg.AsyncConnection.connect(clean_db) as first, \
            await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as second:
        assert await submit(first, submission(**target)) in ("invoked", "queued")  # the backlog's one place, not committed
        racing = asyncio.ensure_future(submit(second, submission(**target)))
        await eventually(lambda: waiting_for(clean_db, procedures.BACKLOG_LOCK_NAMESPACE), 1,
                         what="the second submitter waiting for the backlog's lock")
        assert not racing.done()
        await first.commit()
        assert await racing == "rejected"


async def test_concurrent_submitters_fill_a_backlog_exactly(clean_db):
    """Thirty connections at once against a scope's backlog of 10 and a service's of 10 (two
    handlers share the service's): ten of each accepted, the rest refused, ten rows each."""
    await set_rule(clean_db, {"pattern": "crowd", "limits": {"backlog": 10}})
    await set_rule(clean_db, {"target": {"service": "Capped"}, "limits": {"backlog": 10}})
    connections = [await psycopg.AsyncConnection.connect(clean_db, autocommit=True) for _ in range(30)]
    try:
        scoped = await asyncio.gather(*(submit(c, submission("Bounded", scope="crowd")) for c in connections))
        targeted = await asyncio.gather(*(submit(c, submission("Capped", "work" if n % 2 else "free"))
                                          for n, c in enumerate(connections)))
    finally:
        for conn in connections:
            await conn.close()
    assert sorted(scoped).count("rejected") == 20 and len(set(scoped) - {"rejected"}) == 1
    assert targeted.count("rejected") == 20
    async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FILTER (WHERE scope = 'crowd'), count(*) FILTER (WHERE service = 'Capped')"
                                 " FROM restate.invocation")
        assert await cur.fetchone() == (10, 10)


@pytest.fixture
async def admin(clean_db):
    async with serve(flow.app, clean_db, admin=True, run_handlers=False) as served:
        yield served


async def test_a_rule_set_while_a_submission_is_in_flight_holds_its_invocation(admin, clean_db):
    """The submission probed the rules before the rule existed: the rule's creation waits for it
    to commit, then marks its task, and the running one's too (it counts towards the rule)."""
    async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as conn:
        assert await submit(conn, submission("Paced", owner="a-worker")) == "invoked"  # leased at once: running
    async with await psycopg.AsyncConnection.connect(clean_db) as submitter:
        assert await submit(submitter, submission("Paced")) == "invoked"  # no rule yet: unmarked, not committed
        putting = asyncio.ensure_future(admin.client.put(
            "/admin/limits/rules", json=[{"target": {"service": "Paced"}, "limits": {"concurrency": 1}}]))
        await eventually(lambda: waiting_for(clean_db, procedures.TARGET_RULES_LOCK_NAMESPACE), 1,
                         what="the rule's creation waiting for the submission")
        assert not putting.done()
        await submitter.commit()
        assert (await putting).status_code == 200
    assert await task_marks(clean_db, "Paced") == [("Paced/work", False), ("Paced/work", True)]


async def test_a_submission_during_a_rules_creation_sees_the_rule(clean_db):
    """The rule's transaction (as FlowRules.upsert_flow_rules runs it) holds the service's lock:
    a submission waits for it, then is marked and queued, not started at once by its submitter."""
    row = rule_row({"target": {"service": "Ranked", "handler": "work"}, "limits": {"concurrency": 1}})
    async with await psycopg.AsyncConnection.connect(clean_db) as rules, \
            await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as submitter:
        await rules.execute(q.LOCK_TARGET_RULES, {"service": "Ranked"})
        await rules.execute(q.UPSERT_FLOW_RULE, row)
        submitting = asyncio.ensure_future(submit(submitter, submission("Ranked", owner="a-worker")))
        await eventually(lambda: waiting_for(clean_db, procedures.TARGET_RULES_LOCK_NAMESPACE), 1,
                         what="the submission waiting for the rule's transaction")
        assert not submitting.done()
        await rules.commit()
        assert await submitting == "queued"
    assert await task_marks(clean_db, "Ranked") == [("Ranked/work", False)]


@pytest.mark.slow
async def test_a_slot_held_by_a_killed_worker_returns_with_its_lease(restate_database_url):
    """Concurrency 1 on a scope; the worker running its one invocation is SIGKILLed mid-attempt:
    a second invocation waits until the dead worker's lease expires (usage is counted from the
    leases), then each runs alone: the killed one's retry and the waiting one never overlap."""
    os.environ[ledger.DSN_ENV] = restate_database_url
    ledger.reset()
    env = {ledger.DSN_ENV: restate_database_url}
    async with serve(flow.app, restate_database_url, admin=True, run_handlers=False) as cluster:
        await set_rules(cluster, {"pattern": "solo", "limits": {"concurrency": 1}})
        with WorkerProcess(APP, restate_database_url, env=env) as doomed:
            holding = asyncio.ensure_future(cluster.client.post(
                "/restate/scope/solo/call/Limited/work", json={"tag": "solo", "n": 0, "ms": 1000}))
            await eventually(lambda: [step for step, _ in intervals("solo")], ["start 0"], what="the first attempt running")
            doomed.kill()
        waiting = asyncio.ensure_future(cluster.client.post(
            "/restate/scope/solo/call/Limited/work", json={"tag": "solo", "n": 1, "ms": 0}))
        with WorkerProcess(APP, restate_database_url, env=env):
            responses = await asyncio.gather(holding, waiting)
    assert [r.json() for r in responses] == ["done 0", "done 1"]
    steps = [step for step, _ in intervals("solo")]
    assert steps[0] == "start 0" and steps.count("end 0") == steps.count("end 1") == 1
    assert steps.index("end 1") == steps.index("start 1") + 1, steps  # the waiting one ran alone
