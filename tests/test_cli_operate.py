"""The operator's commands: `invocations list|describe`, bulk operations on a target, `services
list`, `kv get|set|clear`, run as a user would, against invocations that really ran."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.apps import kitchen
from tests.support.server import serve
from tests.test_cli import assert_one_line_error, run_cli


@pytest.fixture
async def shop(clean_db):
    async with serve(kitchen.app, clean_db) as served:
        yield served


async def cli(tmp_path, database_url: str, *args: str):
    return await asyncio.to_thread(run_cli, *args, "--database-url", database_url, cwd=tmp_path)


@pytest.mark.slow
async def test_list_and_describe_invocations(shop, clean_db, tmp_path):
    key = uuid.uuid4().hex
    added = await shop.client.post(f"/Counter/{key}/add", json=2)
    delayed = (await shop.client.post("/Steps/nothing/send", params={"delay": "1h"})).json()["invocationId"]

    listed = await cli(tmp_path, clean_db, "invocations", "list", "--service", "Counter", "--json")
    assert listed.returncode == 0, listed.stderr
    (only,) = json.loads(listed.stdout)
    assert (only["id"], only["target"], only["status"]) == (added.headers["x-restate-id"], f"Counter/{key}/add", "completed")
    by_handler = await cli(tmp_path, clean_db, "invocations", "list", "--service", "Steps", "--handler", "nothing", "--json")
    assert [r["id"] for r in json.loads(by_handler.stdout)] == [delayed]
    scheduled = await cli(tmp_path, clean_db, "invocations", "list", "--status", "scheduled", "--newer-than", "1h")
    assert delayed in scheduled.stdout and scheduled.stdout.rstrip().endswith("(1 row)")
    older = await cli(tmp_path, clean_db, "invocations", "list", "--older-than", "1 hour", "--json")
    assert json.loads(older.stdout) == []

    described = await cli(tmp_path, clean_db, "invocations", "describe", added.headers["x-restate-id"])
    assert described.returncode == 0, described.stderr
    assert "status           completed (success)" in described.stdout
    assert "journal:" in described.stdout and "Command: Input" in described.stdout
    as_json = json.loads((await cli(tmp_path, clean_db, "invocations", "describe", delayed, "--json")).stdout)
    assert as_json["invocation"]["status"] == "scheduled"
    assert [e["entry_type"] for e in as_json["journal"]] == ["Command: Input"]

    unknown = await cli(tmp_path, clean_db, "invocations", "describe", "inv_1" + "0" * 33)
    assert unknown.returncode == 1
    assert_one_line_error(unknown, "unknown invocation")
    bad = await cli(tmp_path, clean_db, "invocations", "list", "--older-than", "soon")
    assert bad.returncode == 2


@pytest.mark.slow
async def test_bulk_operations_on_a_target_ask_first_and_show_progress(shop, clean_db, tmp_path):
    delayed = [(await shop.client.post("/Steps/nothing/send", params={"delay": "1h"})).json()["invocationId"]
               for _ in range(20)]
    refused = await cli(tmp_path, clean_db, "invocations", "cancel", "Steps/nothing")
    assert refused.returncode == 2
    assert_one_line_error(refused, "20 unfinished invocation(s) of Steps/nothing match: pass --yes")
    done = await cli(tmp_path, clean_db, "invocations", "cancel", "Steps/nothing", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": canceled: it had not started") == 20
    assert "restate-pg: cancel: 20/20" in done.stderr
    purged = await cli(tmp_path, clean_db, "invocations", "purge", "Steps", "--yes", "--json")
    assert sorted(r["invocation_id"] for r in json.loads(purged.stdout)) == sorted(delayed)
    assert (await shop.client.get(f"/restate/invocation/{delayed[0]}/output")).status_code == 404
    nothing = await cli(tmp_path, clean_db, "invocations", "kill", "Steps/nothing")
    assert (nothing.returncode, nothing.stderr.strip()) == (0, "restate-pg: no unfinished invocations of Steps/nothing")


@pytest.mark.slow
async def test_services_list(shop, clean_db, tmp_path):
    listed = json.loads((await cli(tmp_path, clean_db, "services", "list", "--json")).stdout)
    counter = next(s for s in listed if s["name"] == "Counter")
    assert (counter["type"], counter["deployment"]) == ("virtual_object", shop.engine.deployment_id)
    assert "add" in counter["handlers"].split(", ")
    table = (await cli(tmp_path, clean_db, "services", "list")).stdout
    assert table.splitlines()[0].split(" | ")[0].strip() == "name"


@pytest.mark.slow
async def test_kv_get_set_clear(shop, clean_db, tmp_path):
    key = uuid.uuid4().hex
    await shop.client.post(f"/Counter/{key}/set_many", json={"count": 2, "label": "two"})
    state = json.loads((await cli(tmp_path, clean_db, "kv", "get", "Counter", key, "--json")).stdout)
    assert state["state"] == {"count": 2, "label": "two"} and state["version"]
    table = (await cli(tmp_path, clean_db, "kv", "get", "Counter", key, "label")).stdout
    assert '"two"' in table

    assert (await cli(tmp_path, clean_db, "kv", "set", "Counter", key, "count", "41")).returncode == 0
    assert (await shop.client.post(f"/Counter/{key}/add", json=1)).json() == 42
    assert (await cli(tmp_path, clean_db, "kv", "clear", "Counter", key, "label")).returncode == 0
    assert (await shop.client.post(f"/Counter/{key}/keys")).json() == ["count"]
    assert (await cli(tmp_path, clean_db, "kv", "clear", "Counter", key)).returncode == 0
    assert (await shop.client.post(f"/Counter/{key}/keys")).json() == []

    not_json = await cli(tmp_path, clean_db, "kv", "set", "Counter", key, "label", "two")
    assert not_json.returncode == 2
    assert_one_line_error(not_json, "VALUE is not JSON", "--raw")
    assert (await cli(tmp_path, clean_db, "kv", "set", "Counter", key, "label", "two", "--raw")).returncode == 0
    assert (await shop.client.post(f"/Counter/{key}/keys")).json() == ["label"]
    for args, message in ((("kv", "get", "Counter", key, "nope"), "has no state entry 'nope'"),
                          (("kv", "get", "Nope", key), "unknown service 'Nope'"),
                          (("kv", "set", "Nope", key, "a", "1"), "unknown service 'Nope'"),
                          (("kv", "clear", "Steps", key), "'Steps' is a plain service")):
        failed = await cli(tmp_path, clean_db, *args)
        assert failed.returncode == 1
        assert_one_line_error(failed, message)
