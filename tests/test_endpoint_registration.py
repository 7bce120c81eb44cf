"""Registering SDK endpoints through the admin API, as Restate registers them: discovery over real
HTTP/2 cleartext (and HTTP/1.1) against a stand-in endpoint that serves a manifest, the
deployment and its services stored, Restate's answers for known uris, force, breaking changes,
dry runs, updates and removals, and Restate's words for every way discovery fails.
"""

from __future__ import annotations

import asyncio
import typing

import psycopg
import pytest

from restate_pg.core.hints import work_channel
from tests.apps import kitchen
from tests.support.manifest_endpoint import manifest, serve_manifest, service
from tests.support.server import serve
from tests.test_restate_cli_contract import assert_restate_id

ACCEPT = ", ".join(f"application/vnd.restate.endpointmanifest.v{v}+json" for v in (1, 2, 3, 4))


@pytest.fixture
async def admin(clean_db):
    async with serve(kitchen.app, clean_db, admin=True) as served:
        yield served


@pytest.fixture
async def endpoint():
    async with serve_manifest() as served:
        yield served


async def deployments(admin) -> typing.Dict[str, typing.Dict[str, typing.Any]]:
    return {d["id"]: d for d in (await admin.client.get("/admin/deployments")).json()["deployments"]}


async def service_rows(url: str) -> typing.Dict[str, typing.Tuple[typing.Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        rows = await (await conn.execute("SELECT name, ty, deployment_id, revision, handlers FROM restate.service")).fetchall()
    return {row[0]: row[1:] for row in rows}


async def test_register_over_http2_stores_the_deployment_and_its_services(admin, endpoint, clean_db):
    endpoint.document = manifest(
        service("Greeter", "SERVICE", {"name": "greet", "input": {"required": True, "contentType": "application/json",
                                                                  "jsonSchema": {"type": "string"}},
                                       "output": {"contentType": "application/json", "jsonSchema": {"title": "Greeting"}}},
                documentation="Says hello", metadata={"team": "a"}, inactivityTimeout=30000),
        service("Cart", "VIRTUAL_OBJECT", {"name": "add"}, {"name": "get", "ty": "SHARED", "ingressPrivate": True},
                enableLazyState=True, retryPolicyMaxAttempts=3, retryPolicyOnMaxAttempts="KILL"),
        low=5, high=7)
    answer = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri, "additional_headers": {"X-Token": "t1"}})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert_restate_id(body["id"], "dp_1", (22, 128))
    assert answer.headers["location"] == f"deployments/{body['id']}"
    assert (body["min_protocol_version"], body["max_protocol_version"], body["sdk_version"]) == (5, 7, "restate-sdk-typescript/1.17.2")
    greeter, cart = sorted(body["services"], key=lambda s: s["name"] != "Greeter")
    assert (greeter["ty"], greeter["revision"], greeter["deployment_id"], greeter["documentation"]) == ("Service", 1, body["id"], "Says hello")
    assert (greeter["inactivity_timeout"], greeter["metadata"]) == ("30s", {"team": "a"})
    (greet,) = greeter["handlers"]
    assert (greet["input_description"], greet["output_description"]) == ("JSON string", "JSON 'Greeting'")
    assert greet["input_json_schema"] == {"type": "string"}
    assert (cart["ty"], cart["enable_lazy_state"], cart["retry_policy"]["max_attempts"], cart["retry_policy"]["on_max_attempts"]) == (
        "VirtualObject", True, 3, "Kill")
    assert {h["name"]: (h["ty"], h["public"]) for h in cart["handlers"]} == {"add": ("Exclusive", True), "get": ("Shared", False)}

    (asked,) = endpoint.seen
    assert (asked["path"], asked["http_version"]) == ("/discover", "2")
    assert (asked["headers"]["accept"], asked["headers"]["x-token"]) == (ACCEPT, "t1")

    listed = (await deployments(admin))[body["id"]]
    assert (listed["uri"], listed["protocol_type"], listed["http_version"]) == (endpoint.uri, "BidiStream", "HTTP/2.0")
    assert (listed["min_protocol_version"], listed["max_protocol_version"], listed["sdk_version"]) == (5, 7, "restate-sdk-typescript/1.17.2")
    assert listed["additional_headers"] == {"x-token": "t1"}
    assert sorted((s["name"], s["revision"]) for s in listed["services"]) == [("Cart", 1), ("Greeter", 1)]
    assert any(d["uri"].startswith("restate-pg://") for d in (await deployments(admin)).values())  # the in-process one too

    described = (await admin.client.get(f"/admin/deployments/{body['id']}")).json()
    assert {s["name"]: s["deployment_id"] for s in described["services"]} == {"Greeter": body["id"], "Cart": body["id"]}
    services = {s["name"]: s for s in (await admin.client.get("/admin/v4/services")).json()["services"]}
    assert (services["Cart"]["ty"], services["Cart"]["deployment_id"], services["Cart"]["revision"]) == ("VirtualObject", body["id"], 1)

    rows = await service_rows(clean_db)
    assert rows["Cart"][:3] == ("virtual_object", body["id"], 1)
    handlers = {h["name"]: h for h in rows["Greeter"][3]}
    assert handlers["greet"]["input"] == {"required": True, "content_type": "application/json", "json_schema": {"type": "string"}}
    assert handlers["greet"]["output"]["content_type"] == "application/json"
    assert {h["name"]: h["kind"] for h in rows["Cart"][3]} == {"add": "exclusive", "get": "shared"}


async def test_a_known_uri_is_answered_with_its_deployment_unless_forced(admin, endpoint, clean_db):
    first = (await admin.client.post("/admin/v4/deployments", json={"uri": endpoint.uri})).json()
    endpoint.document = manifest(service("Greeter", "SERVICE", {"name": "greet"}, {"name": "wave"}))
    again = await admin.client.post("/admin/v4/deployments", json={"uri": endpoint.uri + "/", "force": False})
    assert (again.status_code, again.json()["id"]) == (200, first["id"])
    assert len(endpoint.seen) == 1  # as Restate: a known endpoint is not asked again
    conflict = await admin.client.post("/admin/v2/deployments", json={"uri": endpoint.uri, "force": False})
    assert (conflict.status_code, conflict.json()["message"]) == (409, f"Conflict: deployment {first['id']} already exists")

    forced = await admin.client.post("/admin/v4/deployments", json={"uri": endpoint.uri, "force": True})
    assert (forced.status_code, forced.json()["id"]) == (200, first["id"])
    (greeter,) = forced.json()["services"]
    assert (greeter["revision"], [h["name"] for h in greeter["handlers"]]) == (2, ["greet", "wave"])
    assert (await service_rows(clean_db))["Greeter"][2] == 2
    old_api = await admin.client.post("/admin/v2/deployments", json={"uri": endpoint.uri})  # force defaults to true
    assert (old_api.status_code, old_api.json()["services"][0]["revision"]) == (201, 3)
    assert len([d for d in (await deployments(admin)).values() if d["uri"].startswith("http")]) == 1


async def test_dry_run_discovers_and_answers_but_stores_nothing(admin, endpoint, clean_db):
    before = await deployments(admin)
    answer = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri, "dry_run": True})
    assert answer.status_code == 201 and answer.json()["services"][0]["name"] == "Greeter"
    assert len(endpoint.seen) == 1
    assert await deployments(admin) == before
    assert "Greeter" not in await service_rows(clean_db)
    assert (await admin.client.get("/admin/services/Greeter")).status_code == 404


async def test_a_service_changes_type_only_with_breaking(admin, endpoint, clean_db):
    endpoint.others["/objects/discover"] = manifest(service("Greeter", "VIRTUAL_OBJECT"))
    first = (await admin.client.post("/admin/deployments", json={"uri": endpoint.uri})).json()
    refused = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri + "/objects"})
    assert refused.status_code == 409
    assert refused.json() == {"code": 409, "restate_code": "META0006", "message": (
        "[META0006] detected a new service revision for 'Greeter' changing the service type from previous revision. "
        "Service type cannot be changed across revisions.")}
    assert (await service_rows(clean_db))["Greeter"][:3] == ("service", first["id"], 1)
    allowed = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri + "/objects", "breaking": True})
    assert allowed.status_code == 201, allowed.text
    assert (await service_rows(clean_db))["Greeter"][:3] == ("virtual_object", allowed.json()["id"], 2)
    listed = await deployments(admin)  # the older deployment keeps its own revision
    assert listed[first["id"]]["services"] == [{"name": "Greeter", "revision": 1}]
    in_process = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri + "/counter"})
    assert in_process.status_code == 400  # no manifest there
    endpoint.others["/counter/discover"] = manifest(service("Counter", "SERVICE"))
    taken = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri + "/counter"})
    assert taken.status_code == 409 and "'Counter'" in taken.json()["message"]  # the in-process virtual object


async def test_http_11_endpoints(admin, clean_db):
    async with serve_manifest(http2=False) as endpoint:
        refused = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri})
        assert refused.status_code == 400
        assert refused.json() == {"code": 400, "restate_code": "META0014", "message": (
            f"[META0014] error when calling '{endpoint.uri}/discover': server possibly supports only HTTP1.1, consider "
            "discovery with --use-http1.1.")}
        answer = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri, "use_http_11": True})
        assert answer.status_code == 201, answer.text
        assert endpoint.seen[-1]["http_version"] == "1.1"
        assert (await deployments(admin))[answer.json()["id"]]["http_version"] == "HTTP/1.1"


@pytest.mark.parametrize(("change", "status", "code", "message"), [
    ({"content_type": "text/html"}, 400, "META0013", "received a bad response from the SDK: Bad content type header: "
     f"\"text/html\". Expected one of '\"{ACCEPT}\"'"),
    ({"content_type": None}, 400, "META0013", "received a bad response from the SDK: No content type header was specified."),
    ({"document": manifest(service("Greeter"), mode=None)}, 400, "META0013",
     "received a bad response from the SDK: missing protocol mode"),
    ({"document": manifest(service("Greeter"), low=1, high=4)}, 400, "META0012",
     "unsupported service protocol versions: [1, 4]. Supported versions by this runtime are [5, 7]. Please upgrade the "
     "SDK and try registering again."),
    ({"document": manifest(service("Greeter"), low=6, high=5)}, 400, "META0013",
     "received a bad response from the SDK: Expected min protocol version to be <= max protocol version."),
    ({"document": manifest(service("restateAdmin"))}, 400, "META0005",
     "cannot insert/modify service 'restateAdmin' as it contains a reserved name"),
    ({"document": manifest(service("Greeter", "SERVICE", {"name": "greet", "ty": "EXCLUSIVE"}))}, 400, None,
     "invalid combination of service type and handler type '(Service, Some(Exclusive))'"),
    ({"document": manifest(service("Greeter", "SERVICE", {"name": "bad-name"}))}, 400, None,
     "received a bad response from the SDK that cannot be decoded: manifest.services[0].handlers[0].name: 'bad-name' "
     "does not match"),
    ({"document": {"services": []}}, 400, None,
     "received a bad response from the SDK that cannot be decoded: manifest: missing field `minProtocolVersion`"),
    ({"body": b"{not json"}, 400, None, "received a bad response from the SDK that cannot be decoded: "),
    ({"status": 403}, 400, "META0003", "got status code '403 Forbidden'."),
])
async def test_bad_manifests_and_answers_are_refused_in_restates_words(admin, endpoint, change, status, code, message):
    for name, value in change.items():
        setattr(endpoint, name, value)
    before = await deployments(admin)
    answer = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri})
    assert answer.status_code == status, answer.text
    expected = message if code is None else f"[{code}] {message}"
    assert answer.json()["message"].startswith(expected), answer.json()
    assert answer.json().get("restate_code") == code
    assert await deployments(admin) == before


async def test_unreachable_and_missing_endpoints(admin, endpoint):
    missing = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri + "/nope"})
    assert missing.status_code == 400
    assert missing.json()["message"].startswith(
        "[META0003] got status code '404'. Make sure the provided URI has the correct path where the Restate SDK "
        "endpoint is mounted.")
    unreachable = await admin.client.post("/admin/deployments", json={"uri": "http://127.0.0.1:1"})
    assert unreachable.status_code == 400
    assert unreachable.json()["message"].startswith(
        "[META0003] error when calling 'http://127.0.0.1:1/discover': unable to reach the remote endpoint.")


@pytest.mark.parametrize(("body", "message"), [
    ({"uri": "localhost:9080/x"}, "The request field 'uri' is invalid. Reason: The provided uri localhost:9080/x is not absolute"),
    ({"uri": "/relative"}, "The request field 'uri' is invalid. Reason: The provided uri /relative is not absolute"),
    ({"uri": "ftp://host"}, "The request field 'uri' is invalid. Reason: The provided uri ftp://host is neither http nor https."),
    ({"uri": 3}, "The request field 'uri' is invalid."),
    ({"uri": "http://h", "additional_headers": {"bad name": "v"}}, "The request field 'additional_headers' is invalid."),
    ({"uri": "http://h", "additional_headers": ["x"]}, "The request field 'additional_headers' is invalid."),
    ({"uri": "http://h", "additional_headers": {"x-token": "caf\u00e9"}}, "The request field 'additional_headers' is invalid."),
    ({"uri": "http://h", "force": "yes"}, "The request field 'force' is invalid."),
    ({"uri": "http://h", "colour": "red"}, "unknown field(s) colour"),
    ({"arn": "arn:aws:lambda:eu:1:function:f:1"}, "restate-pg registers no Lambda deployments"),
])
async def test_bad_registration_requests(admin, body, message):
    answer = await admin.client.post("/admin/deployments", json=body)
    assert answer.status_code == 400 and answer.json()["message"].startswith(message), answer.text


async def test_update_headers_and_uri_rediscovers(admin, endpoint, clean_db):
    registered = (await admin.client.post("/admin/deployments", json={"uri": endpoint.uri})).json()
    path = f"/admin/v4/deployments/{registered['id']}"
    patched = await admin.client.patch(path, json={"additional_headers": {"x-token": "t2"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["additional_headers"] == {"x-token": "t2"} and endpoint.seen[-1]["headers"]["x-token"] == "t2"
    endpoint.others["/moved/discover"] = manifest(service("Greeter", "SERVICE", {"name": "greet"}, {"name": "wave"}))
    moved = await admin.client.patch(path, json={"uri": endpoint.uri + "/moved"})
    assert moved.json()["uri"] == endpoint.uri + "/moved"
    assert [h["name"] for h in moved.json()["services"][0]["handlers"]] == ["greet"]  # services kept without overwrite
    overwritten = await admin.client.patch(path, json={"uri": endpoint.uri + "/moved", "overwrite": True})
    assert [h["name"] for h in overwritten.json()["services"][0]["handlers"]] == ["greet", "wave"]
    assert (await service_rows(clean_db))["Greeter"][2] == 1  # an update keeps the revision
    endpoint.others["/v7/discover"] = manifest(service("Greeter"), low=5, high=7)
    changed = await admin.client.patch(path, json={"uri": endpoint.uri + "/v7"})
    assert (changed.status_code, changed.json()["restate_code"]) == (400, "META0016")
    assert "from 5..=6 to 5..=7" in changed.json()["message"]
    assert (await admin.client.put(path, json={"uri": endpoint.uri})).status_code == 405
    put = await admin.client.put(f"/admin/v2/deployments/{registered['id']}", json={"uri": endpoint.uri})
    assert (put.status_code, put.json()["uri"]) == (200, endpoint.uri)
    in_process = [d for d in (await deployments(admin)).values() if d["uri"].startswith("restate-pg:")][0]
    refused = await admin.client.patch(f"/admin/deployments/{in_process['id']}", json={"uri": endpoint.uri})
    assert refused.status_code == 400 and "run by restate-pg's workers" in refused.json()["message"]
    assert (await admin.client.patch("/admin/deployments/dp_1nope", json={"uri": endpoint.uri})).status_code == 404


async def test_remove_needs_force(admin, endpoint, clean_db):
    registered = (await admin.client.post("/admin/deployments", json={"uri": endpoint.uri})).json()
    path = f"/admin/v4/deployments/{registered['id']}"
    refused = await admin.client.delete(path)
    assert refused.status_code == 409 and "force=true" in refused.json()["message"]
    assert (await admin.client.delete(path + "?force=true")).status_code == 202
    assert registered["id"] not in await deployments(admin)
    assert "Greeter" not in await service_rows(clean_db)
    assert (await admin.client.get("/admin/services/Greeter")).status_code == 404
    assert (await admin.client.delete(path + "?force=true")).status_code == 404
    again = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri})
    assert again.status_code == 201 and again.json()["id"] != registered["id"]


async def test_registration_tells_workers_once_it_commits(admin, endpoint, clean_db):
    """A `services` hint on the work channel when a registration commits, none for a dry run:
    notifications arrive in commit order, so a marker sent between the two tells them apart."""
    channel = work_channel("restate")
    async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as conn:
        await conn.execute(f"LISTEN {channel}")
        assert (await admin.client.post("/admin/deployments", json={"uri": endpoint.uri, "dry_run": True})).status_code == 201
        await conn.execute("SELECT pg_notify(%s, 'marker')", (channel,))
        registered = await admin.client.post("/admin/deployments", json={"uri": endpoint.uri})
        assert registered.status_code == 201
        payloads = []
        async for note in conn.notifies(timeout=10):
            if note.payload in ("marker", "services"):
                payloads.append(note.payload)
            if len(payloads) == 2:
                break
        assert payloads == ["marker", "services"]
        assert (await service_rows(clean_db))["Greeter"][1] == registered.json()["id"]


async def test_concurrent_registrations_of_one_uri_make_one_deployment(admin, endpoint):
    answers = await asyncio.gather(*(admin.client.post("/admin/deployments", json={"uri": endpoint.uri}) for _ in range(4)))
    assert sorted(a.status_code for a in answers)[-1] in (200, 201) and {a.status_code for a in answers} <= {200, 201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert len([d for d in (await deployments(admin)).values() if d["uri"].startswith("http")]) == 1
