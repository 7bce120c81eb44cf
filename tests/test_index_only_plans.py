"""Claims, timer lookups and the ingress's lookups by id stay index-driven with 1,000,000 completed
invocations retained (issue 18): EXPLAIN (ANALYZE, FORMAT JSON) of the statements as the store
sends them, in a schema of this test's own.

What a completed invocation leaves behind is what fills it: its `invocation` row (a quarter of
them a virtual object's exclusive handler, over 1,000 keys), three journal entries for one in ten
(journal retention), the objects' state. Beside them, a handful of live invocations, so that the
plans have something to find: ready ones, due and later delayed starts, sleepers with timers,
parked and running ones, scoped ones (flow control) and object-key holders.

Each statement is planned the ways it runs:
- sent as text with its values filled in (`Gateway.transaction`: the claim, the load): that plan;
- sent prepared (`Gateway.rows`), or run inside a server function (PL/pgSQL caches the plans of
  its statements): the plan for these values, and the generic plan PostgreSQL may switch to
  after five runs (`plan_cache_mode = force_generic_plan`).
The functions' driving queries are read from the functions installed in the schema (the `FOR ...
IN <query> LOOP` of `start_due_scheduled()` and `claim_flow()`), their arguments as parameters.

Every scan of a table holding retained data must be an index scan (plain, index-only or bitmap),
and touch few rows, as estimated and as counted. The retained tables are unlogged here: that
halves the time to fill them and changes no plan (the planner does not look at it).
"""

from __future__ import annotations

import re
import secrets
import typing

import psycopg
import pytest
from psycopg import sql

from restate_pg.store.migrate import upgrade
from restate_pg.store.queries import Queries, fill_schema

pytestmark = pytest.mark.slow

COMPLETED = 1_000_000
#: Tables that keep rows after their invocation completed: a scan of these must use an index.
RETAINED = {"invocation", "journal", "state_entry", "promise"}
#: At most this many rows per scan, estimated (per loop) or counted (over its loops).
ROWS_BOUND = 1_000
INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}

Plan = typing.Dict[str, typing.Any]

_FILL = [
    # the completed invocations, one every 3 ms over the last hour, kept for a day
    """INSERT INTO {s}.invocation (id, service, handler, key, service_ty, handler_ty, status, input, headers,
                                   invoked_by, waiter, created_at, modified_at, completed_at, result, output,
                                   retain_until, deployment_id, attempts)
       SELECT 'inv_1' || lpad(to_hex(n), 33, '0'),
              CASE WHEN mod(n, 4) = 0 THEN 'BenchCounter' ELSE 'Bench' END,
              CASE WHEN mod(n, 4) = 0 THEN 'add' ELSE 'three_steps' END,
              CASE WHEN mod(n, 4) = 0 THEN 'k' || mod(n, 1000) END,
              CASE WHEN mod(n, 4) = 0 THEN 'virtual_object' ELSE 'service' END,
              CASE WHEN mod(n, 4) = 0 THEN 'exclusive' END,
              'completed', '"x"', '{"content-type": "application/json"}', 'ingress', 'a-process',
              at, at, at, 'success', '"x:abc"', at + interval '1 day', 'dp_1', 1
         FROM generate_series(1, %(completed)s) AS n,
              LATERAL (SELECT now() - interval '1 hour' + n * interval '3 ms' AS at) AS t""",
    # their journals, for one in ten
    """INSERT INTO {s}.journal (invocation_id, index, command_index, entry_type, name, completed, value)
       SELECT 'inv_1' || lpad(to_hex(n), 33, '0'), k, k, 'Run', 'step', true, '"a"'
         FROM generate_series(1, %(completed)s, 10) AS n, generate_series(1, 3) AS k""",
    "INSERT INTO {s}.state_entry SELECT 'BenchCounter', 'k' || k, 'value', '7' FROM generate_series(0, 999) AS k",
    # the live ones: an invocation row and a task each
    """WITH live (kind, count, service, exclusive, status, task_status, run_at, lease_owner, scope) AS (VALUES
           ('ready', 20, 'Bench', false, 'invoked', 'ready', now() - interval '1 s', NULL, NULL),
           ('due', 10, 'Bench', false, 'scheduled', 'scheduled', now() - interval '1 s', NULL, NULL),
           ('later', 10, 'Bench', false, 'scheduled', 'scheduled', now() + interval '1 hour', NULL, NULL),
           ('sleeping', 20, 'Bench', false, 'invoked', 'suspended', now() + interval '10 min', NULL, NULL),
           ('parked', 10, 'Bench', false, 'invoked', 'suspended', 'infinity', NULL, NULL),
           ('running', 10, 'Bench', false, 'invoked', 'running', now(), 'another-worker', NULL),
           ('scoped', 5, 'Bench', false, 'invoked', 'ready', now() - interval '1 s', NULL, 'tenant'),
           ('holder', 5, 'BenchCounter', true, 'invoked', 'ready', now() - interval '1 s', NULL, NULL)
       ), rows AS (
           SELECT 'inv_' || kind || '_' || g AS id, 'k' || g AS key, live.* FROM live, generate_series(1, live.count) AS g
       ), invocations AS (
           INSERT INTO {s}.invocation (id, service, handler, key, service_ty, handler_ty, status, input, invoked_by,
                                       scope, deployment_id)
           SELECT id, service, CASE WHEN exclusive THEN 'add' ELSE 'three_steps' END, CASE WHEN exclusive THEN key END,
                  CASE WHEN exclusive THEN 'virtual_object' ELSE 'service' END, CASE WHEN exclusive THEN 'exclusive' END,
                  status, '"x"', 'ingress', scope, CASE WHEN lease_owner IS NOT NULL THEN 'dp_1' END
             FROM rows
       ), locks AS (
           INSERT INTO {s}.object_lock (service, key, invocation_id) SELECT service, key, id FROM rows WHERE exclusive
       )
       INSERT INTO {s}.task (invocation_id, service, status, run_at, lease_owner, scope, deployment_id, epoch, attempt)
       SELECT id, service, task_status, run_at, lease_owner, scope, CASE WHEN lease_owner IS NOT NULL THEN 'dp_1' END,
              CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END, CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END
         FROM rows""",
    # an exclusive call queued behind the first key's holder
    """WITH queued AS (
           INSERT INTO {s}.invocation (id, service, handler, key, service_ty, handler_ty, status, input, invoked_by)
           VALUES ('inv_inboxed_1', 'BenchCounter', 'add', 'k1', 'virtual_object', 'exclusive', 'inboxed', '"x"', 'ingress')
       )
       INSERT INTO {s}.inbox (service, key, invocation_id) VALUES ('BenchCounter', 'k1', 'inv_inboxed_1')""",
    # the sleepers' journals, the running ones' first step, a result waiting for two sleepers
    """INSERT INTO {s}.journal (invocation_id, index, command_index, entry_type, params, sleep_wakeup_at)
       SELECT 'inv_sleeping_' || g, 1, 1, 'Sleep', '{"duration_ms": 600000}', now() + interval '10 min'
         FROM generate_series(1, 20) AS g""",
    """INSERT INTO {s}.journal (invocation_id, index, command_index, entry_type, name, completed, value)
       SELECT 'inv_running_' || g, 1, 1, 'Run', 'one', true, '"a"' FROM generate_series(1, 10) AS g""",
    """INSERT INTO {s}.notification (invocation_id, command_index, value)
       SELECT 'inv_sleeping_' || g, 1, '"woken"' FROM generate_series(1, 2) AS g""",
]

SERVICES = ["Bench", "BenchCounter"]
CLAIM = {"owner": "plan-worker", "services": SERVICES, "fresh": SERVICES, "limit": 32, "deployments": ["dp_1"],
         "deployment": "dp_1"}
A_COMPLETED_ID = "inv_1" + format(COMPLETED // 2, "x").rjust(33, "0")
LOADED = {"ids": ["inv_ready_1", "inv_sleeping_1", "inv_running_1", "inv_holder_1"]}


@pytest.fixture
def retained_schema(database_url: str) -> typing.Iterator[str]:
    """A schema of this test's own, migrated, dropped at the end (with its million rows)."""
    schema = f"retained_{secrets.token_hex(4)}"
    upgrade(database_url, schema)
    try:
        yield schema
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_claims_timers_and_lookups_by_id_stay_index_driven_with_a_million_completed(
        database_url: str, retained_schema: str) -> None:
    q = Queries(retained_schema)
    with psycopg.connect(database_url, autocommit=True) as conn:
        fill(conn, retained_schema)
        # (name, statement, values, prepared): prepared as the store sends it, or as text
        statements = [
            ("start_due_scheduled", q.START_DUE_SCHEDULED, CLAIM, False),
            ("start_due_scheduled: its loop", loop_query(conn, retained_schema, "start_due_scheduled"), CLAIM, True),
            ("claim_tasks", q.CLAIM_TASKS, CLAIM, False),
            ("claim_flow: its loop", loop_query(conn, retained_schema, "claim_flow"), CLAIM, True),
            ("next_due", q.NEXT_DUE, CLAIM, True),
            ("load_invocations", q.LOAD_INVOCATIONS, LOADED, False),
            ("load_journals", q.LOAD_JOURNALS, LOADED, False),
            ("load_mailboxes", q.LOAD_MAILBOXES, LOADED, False),
            ("read_mailbox", q.READ_MAILBOX, {"id": "inv_sleeping_1", "after": 0}, True),
            ("load_state", q.LOAD_STATE, {"service": "BenchCounter", "key": "k7"}, True),
            ("get_invocation", q.GET_INVOCATION, {"id": A_COMPLETED_ID}, True),
            ("wait_for_invocation", q.WAIT_FOR_INVOCATION, {"id": A_COMPLETED_ID, "waiter": "b-process"}, True),
            ("purge_expired", q.PURGE_EXPIRED, {"limit": 1000}, True),
        ]
        plans: typing.Dict[str, Plan] = {}
        for name, statement, values, prepared in statements:
            plans[name] = explain(conn, statement, values)
            if prepared:
                plans[f"{name} (generic plan)"] = explain_generic(conn, statement, values)
    problems = [f"{name}: {problem}" for name, plan in plans.items() for problem in scan_problems(plan)]
    assert not problems, "\n".join(problems) + "\n\n" + "\n".join(f"{n}: {summary(p)}" for n, p in plans.items())
    # the plans found the live work (20 ready, 5 key holders; the scoped 5 through claim_flow;
    # the 10 due starts wait for start_due_scheduled), and the lookups by id their row
    assert found(plans["claim_tasks"]) == 20 + 5 + 5
    assert found(plans["start_due_scheduled: its loop"]) == 10
    assert found(plans["claim_flow: its loop"]) == 5
    assert found(plans["load_journals"]) == 1 + 1  # the sleeper's Sleep, the running one's Run
    for name in ("get_invocation", "wait_for_invocation"):
        for plan in (plans[name], plans[f"{name} (generic plan)"]):
            assert found(plan) == 1 and "Index Scan using invocation_pkey on invocation (1 read)" in summary(plan)


def fill(conn: psycopg.Connection[typing.Any], schema: str) -> None:
    """The completed invocations and the live ones, then fresh statistics."""
    for table in RETAINED:
        conn.execute(sql.SQL("ALTER TABLE {} SET UNLOGGED").format(sql.Identifier(schema, table)))
    for statement in _FILL:
        conn.execute(fill_schema(statement, schema), {"completed": COMPLETED})
    conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(
        sql.Identifier(schema, table) for table in ("invocation", "journal", "state_entry", "task", "notification",
                                                    "object_lock", "inbox"))))


_LOOP = re.compile(r"\bFOR\s+v_\w+\s+IN\s+(SELECT\b.*?)\s+LOOP\b", re.DOTALL | re.IGNORECASE)


def loop_query(conn: psycopg.Connection[typing.Any], schema: str, function: str) -> str:
    """The query a server function loops over, as installed in `schema`, its arguments (`p_x`)
    as statement parameters (`%(x)s`)."""
    row = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = %s AND pronamespace = %s::regnamespace",
                       (function, schema)).fetchone()
    assert row is not None, f"{schema}.{function}() is not installed"
    loop = _LOOP.search(row[0])
    assert loop is not None, f"{function}() has no FOR ... IN SELECT ... LOOP"
    return f"-- {function}()'s loop\n" + re.sub(r"\bp_(\w+)\b", r"%(\1)s", loop.group(1))


def explain(conn: psycopg.Connection[typing.Any], statement: str, values: typing.Mapping[str, typing.Any]) -> Plan:
    """EXPLAIN ANALYZE of the statement with its values filled in, run and rolled back."""
    text = psycopg.ClientCursor(conn).mogrify(statement, values)
    with conn.transaction(force_rollback=True):
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + text).fetchone()
    assert row is not None
    return typing.cast(Plan, row[0][0]["Plan"])


def explain_generic(conn: psycopg.Connection[typing.Any], statement: str, values: typing.Mapping[str, typing.Any]) -> Plan:
    """EXPLAIN ANALYZE of the statement prepared, with the generic plan PostgreSQL may choose
    for a prepared statement after five runs, run and rolled back."""
    names: typing.List[str] = []

    def number(match: "re.Match[str]") -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    prepared = re.sub(r"%\((\w+)\)s", number, statement)
    arguments = sql.SQL(", ").join(sql.Literal(values[name]) for name in names)
    conn.execute("PREPARE plan_check AS " + prepared)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            row = conn.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE plan_check ({})").format(arguments)).fetchone()
    finally:
        conn.execute("DEALLOCATE plan_check")
    assert row is not None
    return typing.cast(Plan, row[0][0]["Plan"])


def nodes(plan: Plan) -> typing.Iterator[Plan]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def touched(node: Plan) -> float:
    """Rows a scan node read: those it returned and those its filters removed, over all its loops."""
    per_loop = node["Actual Rows"] + node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
    return float(per_loop * node["Actual Loops"])


def scan_problems(plan: Plan) -> typing.List[str]:
    """What is wrong with a plan's scans: one of a retained table not through an index, or any
    that reads many rows (the live tables hold the live work only: a few rows here)."""
    problems = []
    for node in nodes(plan):
        if "Relation Name" not in node or node["Node Type"] == "ModifyTable":
            continue
        where = f"{node['Node Type']} on {node['Relation Name']}"
        if node["Relation Name"] in RETAINED and node["Node Type"] not in INDEX_SCANS:
            problems.append(f"{where}: not an index scan")
        if node["Plan Rows"] > ROWS_BOUND or touched(node) > ROWS_BOUND:
            problems.append(f"{where}: {node['Plan Rows']} rows estimated, {touched(node):.0f} read")
    return problems

def found(plan: Plan) -> int:
    """The rows the statement's top node returned."""
    return int(plan["Actual Rows"])


def summary(plan: Plan) -> str:
    """The scan nodes of a plan, one line: `Index Scan using invocation_pkey on invocation (1 row)`."""
    parts = []
    for node in nodes(plan):
        if "Relation Name" in node and node["Node Type"] != "ModifyTable":
            index = f" using {node['Index Name']}" if "Index Name" in node else ""
            parts.append(f"{node['Node Type']}{index} on {node['Relation Name']} ({touched(node):.0f} read)")
        elif node["Node Type"] == "Bitmap Index Scan":
            parts.append(f"Bitmap Index Scan on {node['Index Name']}")
        elif node["Node Type"] == "Function Scan":
            parts.append(f"Function Scan on {node.get('Function Name')}")
    return "; ".join(parts) or plan["Node Type"]
