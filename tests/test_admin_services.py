"""The admin API's services, deployments, health and version paths, read from the registry that
workers write when they start."""

from __future__ import annotations

import uuid

import pytest

import restate_pg as restate
from restate_pg.admin.services import restate_deployment_id
from restate_pg.worker.engine import Engine
from tests.apps import kitchen
from tests.support.polling import row
from tests.support.server import serve


@pytest.fixture
async def admin(clean_db):
    async with serve(kitchen.app, clean_db, admin=True) as served:
        yield served


async def test_services_as_registered_by_the_worker(admin):
    services = {s["name"]: s for s in (await admin.client.get("/admin/services")).json()["services"]}
    assert sorted(services) == sorted(kitchen.app.services)
    counter = services["Counter"]
    assert {k: counter[k] for k in ("ty", "deployment_id", "revision", "public", "idempotency_retention", "journal_retention")} == {
        "ty": "VirtualObject", "deployment_id": admin.engine.deployment_id, "revision": 1, "public": True,
        "idempotency_retention": "1day", "journal_retention": "1day"}
    assert counter == (await admin.client.get("/admin/services/Counter")).json()
    handlers = {h["name"]: h for h in (await admin.client.get("/admin/services/Counter/handlers")).json()["handlers"]}
    assert (handlers["add"]["ty"], handlers["get"]["ty"]) == ("Exclusive", "Shared")
    assert handlers["add"]["input_json_schema"] == {"type": "integer"}
    assert (await admin.client.get("/admin/services/Counter/handlers/add")).json() == handlers["add"]
    missing = await admin.client.get("/admin/services/Nope")
    assert (missing.status_code, missing.json()["message"]) == (404, "service 'Nope' not found")
    assert (await admin.client.get("/admin/services/Counter/handlers/nope")).status_code == 404


async def test_openapi_health_version_and_deployments(admin):
    document = (await admin.client.get("/admin/services/Counter/openapi")).json()
    assert document["openapi"] == "3.1.0"
    assert "/Counter/{key}/add" in document["paths"] and "/Counter/{key}/add/send" in document["paths"]
    assert document["paths"]["/Counter/{key}/add"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {"type": "integer"}
    assert (await admin.client.get("/admin/health")).status_code == 200
    version = (await admin.client.get("/admin/version")).json()
    assert set(version) == {"version", "min_admin_api_version", "max_admin_api_version", "features"}
    (deployment,) = (await admin.client.get("/admin/deployments")).json()["deployments"]
    assert (deployment["id"], deployment["workers"]) == (admin.engine.deployment_id, 1)
    assert sorted(s["name"] for s in deployment["services"]) == sorted(kitchen.app.services)
    assert (await admin.client.get(f"/admin/deployments/{deployment['id']}")).json()["id"] == deployment["id"]
    assert (await admin.client.get("/admin/deployments/dp_nope")).status_code == 404


async def test_an_operator_makes_a_service_private_and_changes_its_retention(admin):
    key = uuid.uuid4().hex
    private = await admin.client.patch("/admin/services/Counter", json={"public": False})
    assert (private.status_code, private.json()["public"]) == (200, False)
    refused = await admin.client.post(f"/Counter/{key}/add", json=1)
    assert (refused.status_code, refused.json()["message"]) == (400, "the invoked service is not public")
    changed = await admin.client.patch("/admin/services/Counter", json={"public": True, "journal_retention": "2 hours"})
    assert changed.json()["journal_retention"] == "2h"
    done = await admin.client.post(f"/Counter/{key}/add", json=1)
    assert done.status_code == 200
    kept = await row(admin.engine, "SELECT retain_until - completed_at FROM restate.invocation WHERE id = %s",
                     done.headers["x-restate-id"])
    assert kept[0].total_seconds() == 7200


@pytest.mark.parametrize("body, message", [
    ({"public": "yes"}, "'public' must be true or false"),
    ({"journal_retention": "soon"}, "'journal_retention': not a duration: 'soon'"),
    ({"colour": "blue"}, "unknown field 'colour'"),
    ([1], "the request body must be a JSON object"),
])
async def test_bad_service_changes_are_refused(admin, body, message):
    response = await admin.client.patch("/admin/services/Counter", json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)


async def test_replace_the_state_of_an_object_key(admin):
    key = uuid.uuid4().hex
    await admin.client.post(f"/Counter/{key}/set_many", json={"count": 1, "extra": "x"})
    current = (await admin.client.get(f"/admin/services/Counter/state/{key}")).json()
    stale = await admin.client.post("/admin/services/Counter/state", json={
        "object_key": key, "version": "not-" + current["version"], "new_state": {"count": list(b"7")}})
    assert stale.status_code == 409
    replaced = await admin.client.post("/admin/services/Counter/state", json={
        "object_key": key, "version": current["version"], "new_state": {"count": list(b"42")}})
    assert replaced.status_code == 202
    assert (await admin.client.post(f"/Counter/{key}/keys")).json() == ["count"]
    assert (await admin.client.post(f"/Counter/{key}/add", json=1)).json() == 43
    stateless = await admin.client.post("/admin/services/Steps/state", json={"object_key": key, "new_state": {}})
    assert stateless.status_code == 400
    bad = await admin.client.post("/admin/services/Counter/state", json={"object_key": key, "new_state": {"a": [300]}})
    assert (bad.status_code, bad.json()["message"]) == (400, "state 'a' must be an array of byte values (0-255)")


async def test_a_newer_deployment_takes_over_its_services_and_an_older_one_does_not(admin, clean_db):
    await admin.client.patch("/admin/services/Counter", json={"public": False})
    newer = Engine(restate.app([kitchen.counter], deployment="v2"), clean_db)
    await newer.start()
    await newer.stop()
    counter = (await admin.client.get("/admin/services/Counter")).json()
    # a named deployment is shown with a Restate-shaped id, the only kind Restate's CLI reads
    assert (counter["deployment_id"], counter["revision"], counter["public"]) == (restate_deployment_id("v2"), 2, True)  # overrides reset
    assert counter["deployment_name"] == "v2"
    older = Engine(kitchen.app, clean_db)  # the first deployment restarts
    await older.start()
    await older.stop()
    counter = (await admin.client.get("/admin/services/Counter")).json()
    assert (counter["deployment_name"], counter["revision"]) == ("v2", 2)
    assert (await admin.client.get("/admin/services/Steps")).json()["deployment_id"] == admin.engine.deployment_id
