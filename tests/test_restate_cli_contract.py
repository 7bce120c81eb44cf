"""Our side of the HTTP exchanges Restate's CLI (`restate`, npm `@restatedev/restate` 1.7) performs
against the admin API. The CLI itself is not run here (the tests do not depend on npm); each test
names the commands it serves, and README "Using Restate's CLI" lists what was tried with it.
"""

from __future__ import annotations

import base64
import hashlib
import uuid

import pyarrow as pa
import pytest

import restate_pg as restate
from restate_pg.admin.services import restate_deployment_id
from restate_pg.worker.engine import Engine
from tests.apps import kitchen
from tests.support.server import serve

#: Restate's base62 alphabet, and how its CLI decodes an id's fixed-width parts.
_RESTATE_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CLI = {"user-agent": "restate-cli/1.7.12 linux-x86_64", "accept": "*/*"}


def _decoded(part: str) -> int:
    value = 0
    for char in part:
        value = value * 62 + _RESTATE_BASE62.index(char)
    return value


def assert_restate_id(value: str, prefix: str, *widths_and_bits: tuple[int, int]) -> None:
    """Restate's CLI refuses an id whose parts overflow their integers when read in its alphabet."""
    assert value.startswith(prefix), value
    rest = value[len(prefix):]
    for width, bits in widths_and_bits:
        part, rest = rest[:width], rest[width:]
        assert len(part) == width and _decoded(part) < 2**bits, value
    assert rest == "", value


@pytest.fixture
async def admin(clean_db):
    async with serve(kitchen.app, clean_db, admin=True) as served:
        yield served


async def test_version_negotiates_the_versioned_paths(admin):
    """Every command starts with GET /version: the CLI picks the highest admin API version both
    support (4 for CLI 1.7), then calls /v4/...; it rejects an answer without `features`, and reads
    `version` as a Restate version to choose features (JSON /query needs >= 1.5)."""
    version = (await admin.client.get("/admin/version", headers=_CLI)).json()
    assert (version["min_admin_api_version"], version["max_admin_api_version"], version["features"]) == (1, 4, {})
    assert version["version"].startswith("1.7.0+restate-pg.")
    for prefix in ("", "/v2", "/v3", "/v4"):
        listed = await admin.client.get(f"/admin{prefix}/services", headers=_CLI)
        assert listed.status_code == 200 and {s["name"] for s in listed.json()["services"]} == set(kitchen.app.services)
    missing = await admin.client.get("/admin/v4/services/Nope", headers=_CLI)
    assert (missing.status_code, missing.json()["message"]) == (404, "service 'Nope' not found")


async def test_services_in_the_shape_the_cli_parses(admin):
    """`restate services list` and `services describe`: no `null` where Restate omits a field
    (`metadata` must be a map), deployment ids Restate's CLI can decode."""
    for service in (await admin.client.get("/admin/v4/services")).json()["services"]:
        assert_restate_id(service["deployment_id"], "dp_1", (22, 128))
        for handler in service["handlers"]:
            assert None not in handler.values() and "metadata" not in handler, handler


async def test_deployments_in_the_shape_the_cli_parses(admin, clean_db):
    """`restate deployments list` (Restate's `DeploymentResponse`), `deployments describe ID` and
    `services describe` (`DetailedDeploymentResponse`, with the services' full metadata), for a
    derived deployment and a named one."""
    named = Engine(restate.app([kitchen.counter], deployment="2026-11-29.1"), clean_db)
    await named.start()
    await named.stop()
    deployments = {d["name"]: d for d in (await admin.client.get("/admin/v4/deployments")).json()["deployments"]}
    assert set(deployments) == {admin.engine.deployment_id, "2026-11-29.1"}
    derived, release = deployments[admin.engine.deployment_id], deployments["2026-11-29.1"]
    assert derived["id"] == admin.engine.deployment_id  # derived ids already have Restate's shape
    assert release["id"] == restate_deployment_id("2026-11-29.1") != "2026-11-29.1"
    for deployment in (derived, release):
        assert_restate_id(deployment["id"], "dp_1", (22, 128))
        assert (deployment["protocol_type"], deployment["http_version"]) == ("RequestResponse", "HTTP/1.1")
        assert deployment["uri"].startswith("restate-pg://deployment/") and deployment["created_at"].endswith("Z")
        assert isinstance(deployment["min_protocol_version"], int) and isinstance(deployment["max_protocol_version"], int)
    assert {"name": "Counter", "revision": 2} in release["services"]  # it registered Counter last
    assert {"name": "Steps", "revision": 1} in derived["services"]
    detailed = (await admin.client.get(f"/admin/v4/deployments/{release['id']}")).json()
    (counter,) = detailed["services"]
    assert (detailed["id"], counter["name"], counter["deployment_id"], counter["revision"]) == (
        release["id"], "Counter", release["id"], 2)
    assert sorted(h["name"] for h in counter["handlers"]) == sorted(kitchen.counter.handlers)
    by_name = await admin.client.get("/admin/v4/deployments/2026-11-29.1")
    assert by_name.json()["id"] == release["id"]
    assert (await admin.client.get("/admin/v4/deployments/dp_1nope")).status_code == 404


async def test_query_answers_the_cli_in_arrow(admin):
    """`restate sql`, `invocations list` and `services status` read POST /query as an Arrow IPC
    stream (they send `Accept: */*`); `invocations describe` and `kv get` ask for JSON and need
    the content type to be exactly application/json."""
    key = uuid.uuid4().hex
    done = await admin.client.post(f"/Counter/{key}/add", json=2)
    sql = f"SELECT id, status, created_at, journal_size FROM sys_invocation WHERE target_service_key = '{key}'"
    answer = await admin.client.post("/admin/v4/query", json={"query": sql}, headers=_CLI)
    assert answer.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(answer.content).read_all()
    assert table.to_pylist()[0]["id"] == done.headers["x-restate-id"] and table.to_pylist()[0]["status"] == "completed"
    assert pa.types.is_timestamp(table.schema.field("created_at").type)
    count = await admin.client.post("/admin/v4/query", json={"query": "SELECT COUNT(*) FROM sys_service"}, headers=_CLI)
    assert pa.ipc.open_stream(count.content).read_all().column(0).type == pa.int64()  # the CLI's counts
    as_json = await admin.client.post("/admin/v4/query", json={"query": sql}, headers={**_CLI, "accept": "application/json"})
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json()["rows"][0]["id"] == done.headers["x-restate-id"]
    asked = await admin.client.post("/admin/query", json={"query": sql}, headers={"accept": "application/vnd.apache.arrow.stream"})
    assert pa.ipc.open_stream(asked.content).read_all().num_rows == 1
    others = await admin.client.post("/admin/query", json={"query": sql})  # curl, httpx...: JSON as before
    assert others.json()["rows"][0]["status"] == "completed"
    bad = await admin.client.post("/admin/v4/query", json={"query": "SELECT nope"}, headers=_CLI)
    assert bad.status_code == 400 and "nope" in bad.json()["message"]


async def test_invocation_ids_decode_in_restates_alphabet(admin):
    """`restate invocations describe|cancel|kill ID` parse the id: its partition key (u64) and
    uuid (u128) parts must fit when read with Restate's alphabet."""
    for n in range(20):
        sent = await admin.client.post(f"/Counter/{uuid.uuid4().hex}/add/send", json=n)
        assert_restate_id(sent.json()["invocationId"], "inv_1", (11, 64), (22, 128))
    kept = await admin.client.post("/Counter/k/add/send", json=1, headers={"idempotency-key": "once"})
    assert_restate_id(kept.json()["invocationId"], "inv_1", (11, 64), (22, 128))
    killed = await admin.client.patch(f"/admin/v4/invocations/{kept.json()['invocationId']}/kill")
    assert killed.status_code in (200, 409)  # the versioned path the CLI calls; 409 if it already completed


async def test_the_cli_finds_invocations_to_operate_on_in_sys_invocation_status(admin):
    """`restate invocations cancel|kill ID` select the target with this query, then PATCH
    /v4/invocations/{id}/cancel|kill; `purge` selects the completed ones."""
    later = (await admin.client.post("/Counter/later/add/send?delay=60s", json=1)).json()["invocationId"]
    done = (await admin.client.post("/Counter/now/add", json=1)).headers["x-restate-id"]

    async def found(sql: str) -> list[dict]:
        answer = await admin.client.post("/admin/v4/query", json={"query": sql}, headers={**_CLI, "accept": "application/json"})
        assert answer.status_code == 200, answer.text
        return answer.json()["rows"]

    running = "SELECT id, target FROM sys_invocation_status WHERE id = '{}' AND status != 'completed' LIMIT 500"
    assert await found(running.format(later)) == [{"id": later, "target": "Counter/later/add"}]
    assert await found(running.format(done)) == []
    statuses = await found(f"SELECT id, status FROM sys_invocation_status WHERE id IN ('{later}', '{done}') ORDER BY status")
    assert statuses == [{"id": done, "status": "completed"}, {"id": later, "status": "scheduled"}]
    cancelled = await admin.client.patch(f"/admin/v4/invocations/{later}/cancel")
    assert cancelled.status_code == 200
    purged = await admin.client.patch(f"/admin/v4/invocations/{done}/purge")
    assert purged.status_code == 200 and await found(running.format(done).replace(" AND status != 'completed'", "")) == []


def restate_state_version(state: dict[bytes, bytes]) -> str:
    """How Restate's CLI versions the state it read: SHA-256 over the entries sorted by key, each
    as (index: 8 bytes big-endian, 0x01, key, 0x02, value, 0x03), URL-safe base64 without padding."""
    digest = hashlib.sha256()
    for index, (key, value) in enumerate(sorted(state.items())):
        digest.update(index.to_bytes(8, "big") + b"\x01" + key + b"\x02" + value + b"\x03")
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


async def test_state_read_in_hex_and_replaced_at_the_version_the_cli_computes(admin):
    """`restate kv get` / `state get` read `state` as JSON from /v4/query with values in hex;
    `state patch|edit|clear` then POST /v4/services/{name}/state with the version they computed
    from what they read, and a 409 if it no longer matches."""
    key = uuid.uuid4().hex
    await admin.client.post(f"/Counter/{key}/add", json=7)
    sql = f"select key, value from state where service_name = 'Counter' and service_key = '{key}' ;"
    read = await admin.client.post("/admin/v4/query", json={"query": sql}, headers={**_CLI, "accept": "application/json"})
    assert read.json()["rows"] == [{"key": "count", "value": b"7".hex()}]
    unversioned = await admin.client.post("/admin/query", json={"query": sql})
    assert unversioned.json()["rows"] == [{"key": "count", "value": base64.b64encode(b"7").decode()}]  # as before
    version = restate_state_version({b"count": b"7"})
    assert (await admin.client.get(f"/admin/v4/services/Counter/state/{key}")).json()["version"] == version
    patched = await admin.client.post("/admin/v4/services/Counter/state", json={
        "version": version, "object_key": key, "new_state": {"count": list(b"41")}, "scope": None})
    assert patched.status_code == 202
    assert (await admin.client.post(f"/Counter/{key}/add", json=1)).json() == 42
    stale = await admin.client.post("/admin/v4/services/Counter/state", json={
        "version": version, "object_key": key, "new_state": {}})
    assert stale.status_code == 409
    padded = restate_state_version({b"count": b"42"}) + "="  # Restate's decoder takes either
    cleared = await admin.client.post("/admin/v4/services/Counter/state", json={
        "version": padded, "object_key": key, "new_state": {}})
    assert cleared.status_code == 202
    assert (await admin.client.post(f"/Counter/{key}/get")).json() == 0


async def test_service_config_patch_with_the_fields_left_null(admin):
    """`restate services config patch Counter --journal-retention 2h` sends every field of
    `ModifyServiceRequest`, null for those it leaves unchanged."""
    changed = await admin.client.patch("/admin/v4/services/Counter", json={
        "public": None, "idempotency_retention": None, "workflow_completion_retention": None,
        "journal_retention": "2h", "inactivity_timeout": None, "abort_timeout": None})
    assert changed.status_code == 200
    assert (changed.json()["journal_retention"], changed.json()["public"]) == ("2h", True)


async def test_what_restate_pg_does_not_do_is_answered_in_restates_error_shape(admin):
    """`restate deployments register URI` of an endpoint that does not answer gets Restate's
    discovery error, and `deployments remove --force ID` of an in-process deployment a message the
    CLI prints (its workers own it); `subscriptions list` shows none. Registering endpoints that
    answer: tests/test_endpoint_registration.py."""
    registered = await admin.client.post("/admin/v4/deployments", json={"uri": "http://127.0.0.1:1"})
    assert registered.status_code == 400 and registered.json()["message"].startswith("[META0003] error when calling")
    removed = await admin.client.delete(f"/admin/v4/deployments/{admin.engine.deployment_id}?force=true")
    assert removed.status_code == 501 and "stop its workers" in removed.json()["message"]
    assert (await admin.client.get("/admin/v4/subscriptions")).json() == {"subscriptions": []}
