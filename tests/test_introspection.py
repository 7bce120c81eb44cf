"""The introspection views (Restate's `sys_*` tables and `state`), read through `POST /query`
after real handlers ran, and the indexes that answer their common questions."""

from __future__ import annotations

import base64
import re
import typing
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from tests.apps import introspect
from tests.support.polling import eventually
from tests.support.server import Served, serve

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
async def shop(clean_db: str) -> typing.AsyncIterator[Served]:
    async with serve(introspect.app, clean_db, admin=True) as served:
        yield served


async def query(served: Served, sql: str) -> typing.List[typing.Dict[str, typing.Any]]:
    response = await served.client.post("/admin/query", json={"query": sql})
    assert response.status_code == 200, response.text
    return response.json()["rows"]


async def invocation(served: Served, invocation_id: str) -> typing.Dict[str, typing.Any]:
    (row,) = await query(served, f"SELECT * FROM sys_invocation WHERE id = '{invocation_id}'")
    return row


async def status_of(served: Served, invocation_id: str) -> typing.Optional[str]:
    rows = await query(served, f"SELECT status FROM sys_invocation WHERE id = '{invocation_id}'")
    return rows[0]["status"] if rows else None


async def send(served: Served, path: str, body: typing.Any, **kwargs: typing.Any) -> str:
    response = await served.client.post(path, json=body, **kwargs)
    assert response.status_code == 202, response.text
    return str(response.json()["invocationId"])


async def test_sys_invocation_of_a_completed_call_and_the_call_it_made(shop: Served) -> None:
    done = await shop.client.post("/Shop/order", json="book")
    assert done.status_code == 200
    order_id = done.headers["x-restate-id"]
    row = await invocation(shop, order_id)
    assert {k: row[k] for k in (
        "target", "target_service_name", "target_service_key", "target_handler_name", "target_service_ty",
        "status", "invoked_by", "invoked_by_id", "completion_result", "completion_failure", "retry_count",
    )} == {
        "target": "Shop/order", "target_service_name": "Shop", "target_service_key": None,
        "target_handler_name": "order", "target_service_ty": "service", "status": "completed",
        "invoked_by": "ingress", "invoked_by_id": None, "completion_result": "success",
        "completion_failure": None, "retry_count": None,
    }
    assert datetime.fromisoformat(row["created_at"]) <= datetime.fromisoformat(row["completed_at"])
    assert row["completion_retention"].startswith("PT")
    journal = await query(shop, f"SELECT index FROM sys_journal WHERE id = '{order_id}'")
    assert row["journal_size"] == len(journal)

    (child,) = await query(shop, "SELECT * FROM sys_invocation WHERE invoked_by_id = '%s'" % order_id)
    assert {k: child[k] for k in (
        "target", "target_service_key", "target_service_ty", "invoked_by", "invoked_by_service_name",
        "invoked_by_target", "status",
    )} == {
        "target": "Inventory/book/reserve", "target_service_key": "book", "target_service_ty": "virtual_object",
        "invoked_by": "service", "invoked_by_service_name": "Shop", "invoked_by_target": "Shop/order",
        "status": "completed",
    }


async def test_sys_invocation_status_of_live_invocations(shop: Served) -> None:
    held = await send(shop, "/Inventory/pen/hold/send", 3_600_000)
    assert await eventually(lambda: status_of(shop, held), "running") == "running"
    queued = await send(shop, "/Inventory/pen/reserve/send", 1)
    later = await send(shop, "/Shop/order/send", "chair", params={"delay": "1h"})
    napping = await send(shop, "/Shop/nap/send", 3_600_000)
    paused = await send(shop, "/Shop/broken/send", None)
    flaky = await send(shop, "/Shop/flaky/send", None)

    assert await eventually(lambda: status_of(shop, napping), "suspended") == "suspended"
    assert await eventually(lambda: status_of(shop, paused), "paused") == "paused"
    assert await eventually(lambda: status_of(shop, flaky), "backing-off") == "backing-off"
    assert await status_of(shop, queued) == "pending"
    assert await status_of(shop, later) == "scheduled"

    row = await invocation(shop, later)
    assert row["scheduled_start_at"] is not None and row["scheduled_at"] == row["created_at"]
    row = await invocation(shop, paused)
    assert row["last_failure"] is not None and "the shop is closed" in row["last_failure"]
    assert row["retry_count"] == 1 and row["next_retry_at"] is None and row["last_start_at"] is not None
    row = await invocation(shop, flaky)
    assert "try again later" in row["last_failure"]
    assert datetime.fromisoformat(row["next_retry_at"]) > datetime.fromisoformat(row["last_start_at"])

    # one query, Restate's way: how many invocations per status
    counts = await query(shop, "SELECT status, count(*) AS n FROM sys_invocation GROUP BY status ORDER BY status")
    assert {r["status"]: r["n"] for r in counts} == {
        "backing-off": 1, "paused": 1, "pending": 1, "running": 1, "scheduled": 1, "suspended": 1,
    }

    killed = await shop.client.patch(f"/admin/invocations/{paused}/kill")
    assert killed.status_code == 200
    row = await invocation(shop, paused)
    assert (row["status"], row["completion_result"], row["completion_failure"]) == (
        "completed", "failure", "[409] killed")


async def test_sys_inbox_and_sys_keyed_service_status(shop: Served) -> None:
    held = await send(shop, "/Inventory/desk/hold/send", 3_600_000)
    assert await eventually(lambda: status_of(shop, held), "running") == "running"
    first = await send(shop, "/Inventory/desk/reserve/send", 1)
    second = await send(shop, "/Inventory/desk/reserve/send", 2)
    locks = await query(shop, "SELECT * FROM sys_keyed_service_status")
    assert locks == [{"service_name": "Inventory", "service_key": "desk", "invocation_id": held}]
    inbox = await query(shop, "SELECT * FROM sys_inbox WHERE service_name = 'Inventory' ORDER BY sequence_number")
    assert [(r["service_key"], r["id"]) for r in inbox] == [("desk", first), ("desk", second)]
    assert inbox[0]["sequence_number"] < inbox[1]["sequence_number"] and inbox[0]["created_at"] is not None


async def test_sys_journal_lists_commands_and_notifications(shop: Served) -> None:
    done = await shop.client.post("/Shop/order", json="book")
    assert done.status_code == 200
    order_id = done.headers["x-restate-id"]
    journal = await query(shop, f"SELECT * FROM sys_journal WHERE id = '{order_id}' ORDER BY index")
    assert [(e["index"], e["entry_type"]) for e in journal] == [
        (0, "Command: Input"),
        (1, "Command: Run"),
        (2, "Command: Sleep"),
        (3, "Notification: Sleep"),
        (4, "Command: Call"),
        (5, "Notification: Call"),
        (6, "Command: OneWayCall"),
        (7, "Command: Output"),
    ]
    assert all(e["completed"] and e["version"] == 2 for e in journal)
    entry_input, run, sleep, _, call, _, send_, output = journal
    assert base64.b64decode(entry_input["raw"]) == b'"book"' and entry_input["raw_length"] == 6
    assert (run["name"], base64.b64decode(run["raw"])) == ("charge", b'"charged for book"')
    assert sleep["sleep_wakeup_at"] is not None
    (child,) = await query(shop, f"SELECT id FROM sys_invocation WHERE invoked_by_id = '{order_id}'")
    assert (call["invoked_id"], call["invoked_target"]) == (child["id"], "Inventory/book/reserve")
    assert send_["invoked_target"] == "Inventory/book/reserve" and send_["invoked_id"] != child["id"]
    assert base64.b64decode(output["raw"]) == b'"charged for book, 9 left"'
    assert '"value": "\\"charged for book, 9 left\\""' in output["entry_json"]
    assert '"name": "charge"' in run["entry_lite_json"]


async def test_state_shows_values_as_bytes_and_as_text(shop: Served) -> None:
    done = await shop.client.post("/Shop/order", json="lamp")
    assert done.status_code == 200
    rows = await query(shop, "SELECT * FROM state WHERE service_name = 'Inventory' AND service_key = 'lamp' ORDER BY key")
    photo, stock = rows
    assert {k: stock[k] for k in ("service_name", "service_key", "key", "key_length", "value_utf8", "value_length")} == {
        "service_name": "Inventory", "service_key": "lamp", "key": "stock", "key_length": 5,
        "value_utf8": "9", "value_length": 1,
    }
    assert base64.b64decode(stock["value"]) == b"9"
    # not UTF-8: no text rendering, the bytes are still there
    assert (photo["key"], photo["value_utf8"], photo["value_length"]) == ("photo", None, 6)
    assert base64.b64decode(photo["value"]) == b"\x89PNG\xff\x00"


async def test_sys_promise(shop: Served) -> None:
    run_id = await send(shop, "/Signup/alice/run/send", "alice@example.com")
    confirmed = await shop.client.post("/Signup/alice/confirm", json="1234")
    assert confirmed.status_code == 200
    assert await eventually(lambda: status_of(shop, run_id), "completed") == "completed"
    rows = await query(shop, "SELECT * FROM sys_promise WHERE service_name = 'Signup'")
    assert len(rows) == 1
    assert {k: rows[0][k] for k in ("service_key", "key", "completed", "completion_success_value_utf8",
                                    "completion_failure")} == {
        "service_key": "alice", "key": "confirmation", "completed": True,
        "completion_success_value_utf8": '"1234"', "completion_failure": None,
    }


async def test_sys_idempotency(shop: Served) -> None:
    first = await send(shop, "/Shop/order/send", "mug", headers={"idempotency-key": "order-17"})
    again = await send(shop, "/Shop/order/send", "mug", headers={"idempotency-key": "order-17"})
    assert first == again
    rows = await query(shop, "SELECT * FROM sys_idempotency")
    assert rows == [{"service_name": "Shop", "service_key": None, "service_handler": "order",
                     "idempotency_key": "order-17", "invocation_id": first}]
    assert (await invocation(shop, first))["idempotency_key"] == "order-17"


async def test_sys_service_and_sys_deployment(shop: Served) -> None:
    deployment_id = shop.engine.deployment_id  # registered by the worker when it started
    services = await query(shop, "SELECT * FROM sys_service ORDER BY name")
    assert services == [
        {"name": name, "revision": 1, "public": True, "ty": service.service_type, "deployment_id": deployment_id}
        for name, service in sorted(shop.engine.app.services.items())]
    (registered,) = await query(shop, "SELECT * FROM sys_deployment")
    assert (registered["id"], registered["services"]) == (deployment_id, list(shop.engine.app.services))
    async with shop.engine.store.pool.connection() as conn:
        await conn.execute("TRUNCATE restate.service, restate.deployment")
    assert await query(shop, "SELECT * FROM sys_service") == []  # empty tables answer empty views
    assert await query(shop, "SELECT * FROM sys_deployment") == []
    async with shop.engine.store.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO restate.deployment (id, services) VALUES ('dp_1', '[\"Shop\", {\"name\": \"Inventory\"}]')")
        await conn.execute(
            "INSERT INTO restate.service (name, ty, deployment_id, public) VALUES ('Shop', 'service', 'dp_1', false)")
    assert await query(shop, "SELECT * FROM sys_service") == [
        {"name": "Shop", "revision": 1, "public": False, "ty": "service", "deployment_id": "dp_1"}]
    (deployment,) = await query(shop, "SELECT * FROM sys_deployment")
    assert deployment["id"] == "dp_1" and deployment["services"] == ["Shop", "Inventory"]
    assert deployment["created_at"] is not None and deployment["endpoint"] is None


def readme_queries() -> typing.List[str]:
    """The SQL examples of the README's "Inspecting with SQL" section."""
    text = README.read_text()
    section = text.split("## Inspecting with SQL", 1)[1].split("\n## ", 1)[0]
    blocks = [block.strip() for block in re.findall(r"```sql\n(.*?)```", section, re.DOTALL)]
    return blocks + re.findall(r'restate-pg sql (?:--json )?"([^"]+)"', section)


async def test_readme_queries_run(shop: Served, database_url: str) -> None:
    queries = readme_queries()
    assert len(queries) >= 8
    with psycopg.connect(database_url, autocommit=True) as conn:  # the application's own table
        conn.execute("CREATE TABLE IF NOT EXISTS public.product (sku text PRIMARY KEY, title text NOT NULL)")
        conn.execute("INSERT INTO public.product VALUES ('book', 'A book') ON CONFLICT DO NOTHING")
    try:
        done = await shop.client.post("/Shop/order", json="book")
        assert done.status_code == 200
        broken = await send(shop, "/Shop/broken/send", None)
        assert await eventually(lambda: status_of(shop, broken), "paused") == "paused"
        held = await send(shop, "/Inventory/pen/hold/send", 3_600_000)
        assert await eventually(lambda: status_of(shop, held), "running") == "running"
        await send(shop, "/Inventory/pen/reserve/send", 1)
        await send(shop, "/Signup/bob/run/send", "bob@example.com")
        assert (await shop.client.post("/Signup/bob/confirm", json="42")).status_code == 200
        for sql in queries:
            sql = sql.replace("inv_1fvS0lzJxzX5QUG1oOlu7Sk1vBw9ExRoS", done.headers["x-restate-id"])
            rows = await query(shop, sql)
            assert rows, sql
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP TABLE public.product")


# -- the common questions are answered by indexes ----------------------------------------------

_PLANS = {
    "invocations of one service in one status":
        "SELECT id FROM restate.sys_invocation WHERE target_service_name = 'Svc7' AND status = 'completed'",
    "live invocations of one service in one status":
        "SELECT id FROM restate.sys_invocation WHERE target_service_name = 'Svc7' AND status = 'suspended'",
    "one invocation": "SELECT * FROM restate.sys_invocation WHERE id = 'inv-77'",
    "the journal of one invocation": "SELECT * FROM restate.sys_journal WHERE id = 'inv-77' ORDER BY index",
    "the state of one key":
        "SELECT key, value_utf8 FROM restate.state WHERE service_name = 'Counter' AND service_key = 'k77'",
}


def test_views_answer_common_questions_from_indexes(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:  # rolled back: the rows and their statistics go
        conn.execute(
            "INSERT INTO restate.invocation (id, service, handler, service_ty, status, input, invoked_by, result,"
            " output, completed_at)"
            " SELECT 'inv-' || g, 'Svc' || (g % 20), 'run', 'service', 'completed', '1', 'ingress', 'success', '2',"
            " now() FROM generate_series(1, 40000) g")
        conn.execute(
            "INSERT INTO restate.invocation (id, service, handler, service_ty, status, input, invoked_by)"
            " SELECT 'live-' || g, 'Svc' || (g % 20), 'run', 'service', 'invoked', '1', 'ingress'"
            " FROM generate_series(1, 2000) g")
        conn.execute(
            "INSERT INTO restate.task (invocation_id, service, status, run_at)"
            " SELECT 'live-' || g, 'Svc' || (g % 20), 'suspended', 'infinity' FROM generate_series(1, 2000) g")
        conn.execute(
            "INSERT INTO restate.journal (invocation_id, index, command_index, entry_type, completed, value)"
            " SELECT 'inv-' || g, k, k, 'Run', true, '3' FROM generate_series(1, 40000) g, generate_series(1, 3) k")
        conn.execute(
            "INSERT INTO restate.state_entry SELECT 'Counter', 'k' || g, 'count', '4' FROM generate_series(1, 40000) g")
        conn.execute("ANALYZE restate.invocation, restate.task, restate.journal, restate.state_entry")
        plans = {
            question: "\n".join(row[0] for row in conn.execute("EXPLAIN " + sql))
            for question, sql in _PLANS.items()
        }
        vocabulary = [row[0] for row in conn.execute(
            "SELECT DISTINCT status FROM restate.sys_invocation WHERE id IN ('inv-1', 'live-1') ORDER BY 1")]
        conn.rollback()
    assert vocabulary == ["completed", "suspended"]
    for question, plan in plans.items():
        for table in ("invocation", "journal", "state_entry"):
            assert f"Seq Scan on {table} " not in plan, f"{question}:\n{plan}"
    assert "invocation_service_status" in plans["invocations of one service in one status"]
    assert "journal_pkey" in plans["the journal of one invocation"]
    assert "state_entry_pkey" in plans["the state of one key"]
