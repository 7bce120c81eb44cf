"""Bad input never reaches PostgreSQL, and every error is JSON (issue 11).

Every route of the ingress router and of the admin app is enumerated from the routers
themselves, and each must have probes below (a new route fails `test_every_route_is_probed`
until it has). Each probe is a valid request; each of its path parameters, query parameters,
stored headers, JSON fields (keys included) and stored text bodies is then sent again holding a
NUL, one at a time, over real HTTP. The answer must be a 4xx with Restate's JSON error body
naming the field, and not one row of restate-pg's tables may have changed.

What the other tests here pin down: handler inputs and awakeable values (stored as bytes) may
hold NULs; an empty idempotency key is refused; and the admin app answers 404, 405, 422 and 500
with `{"code", "message"}` too.
"""

from __future__ import annotations

import asyncio
import typing
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute

import restate_pg as restate
from restate_pg.admin import create_admin_app
from restate_pg.admin.services import VERSION_PREFIXES
from restate_pg.ingress import create_router
from restate_pg.core.ids import new_awakeable_id, new_invocation_id
from restate_pg.store.migrate import upgrade
from restate_pg.testing import serve_api
from restate_pg.validation import is_unstorable
from tests.apps import awakeables, ingress_app
from tests.support.server import serve
from tests.test_awakeables import held_id

NUL = "\x00"
INVOCATION = new_invocation_id()  # well-formed, of no invocation
AWAKEABLE = new_awakeable_id(INVOCATION, 17)
APP = restate.app([*ingress_app.app.services.values(), *awakeables.app.services.values()])
#: Every table a request could write to (not the workers' heartbeats).
TABLES = ("invocation", "task", "journal", "notification", "state_entry", "object_lock", "inbox", "promise",
          "promise_waiter", "invocation_waiter", "service", "cron_job")


@dataclass(frozen=True)
class Field:
    """A value a probe sends, how errors name it, and the answer when it holds a NUL."""

    value: str
    label: str = ""
    status: int = 400
    fragment: typing.Optional[str] = None  # expected in the message; default "bad <label>"

    @property
    def expected(self) -> str:
        return self.fragment if self.fragment is not None else f"bad {self.label}"


def name_field(value: str, label: str) -> Field:
    """A service or handler name in a call path: matched as written, never decoded, so `%00`
    there is three plain characters of a name that does not exist."""
    return Field(value, label, 404, "not found")


def action(value: str) -> Field:
    """A literal path segment (attach, output, resolve...): anything else is an unknown path."""
    return Field(value, "action", 404, "unknown ingress path")


@dataclass(frozen=True)
class Probe:
    route: str  # the route template, as the router declares it
    method: str
    path: str  # `{name}` placeholders, filled from `fields`
    fields: typing.Mapping[str, Field] = field(default_factory=dict)
    query: typing.Mapping[str, Field] = field(default_factory=dict)
    body: typing.Any = None  # JSON; every string and key of it is a field
    content: typing.Optional[bytes] = None  # an opaque body, sent as is
    text_body: typing.Optional[Field] = None  # a body stored as text
    stored_headers: typing.Tuple[str, ...] = ()  # headers kept with the invocation


@dataclass(frozen=True)
class Variant:
    description: str
    method: str
    path: str
    options: typing.Mapping[str, typing.Any]
    status: int
    fragment: str


def _poisoned(value: str) -> str:
    return value[:1] + NUL + value[1:]


def _url(probe: Probe, poisoned: typing.Optional[str] = None) -> str:
    path = probe.path
    for name, given in probe.fields.items():
        value = _poisoned(given.value) if name == poisoned else given.value
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return path


def _json_variants(value: typing.Any, path: str = "") -> typing.Iterator[typing.Tuple[str, typing.Any, str]]:
    """(where, the document with a NUL there, the expected message fragment)."""
    if isinstance(value, str):
        yield path, _poisoned(value), f"bad field '{path}'"
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            yield f"name of {where}", {**{k: v for k, v in value.items() if k != key}, _poisoned(key): item}, "bad field name"
            for inner, changed, fragment in _json_variants(item, where):
                yield inner, {**value, key: changed}, fragment
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for inner, changed, fragment in _json_variants(item, f"{path}[{index}]"):
                yield inner, [*value[:index], changed, *value[index + 1:]], fragment


def variants(probe: Probe, prefix: str = "") -> typing.Iterator[Variant]:
    """The probe's requests with a NUL in one place each."""
    base: typing.Dict[str, typing.Any] = {"params": {k: f.value for k, f in probe.query.items()}}
    if probe.body is not None:
        base["json"] = probe.body
    if probe.content is not None:
        base["content"], base["headers"] = probe.content, {"content-type": "application/json"}
    if probe.text_body is not None:
        base["content"], base["headers"] = probe.text_body.value.encode(), {"content-type": "text/plain"}
    what = f"{probe.method} {prefix}{probe.path}"
    for name, given in probe.fields.items():
        yield Variant(f"{what}: NUL in path {name}", probe.method, prefix + _url(probe, name), base,
                      given.status, given.expected)
    url = prefix + _url(probe)
    for name, given in probe.query.items():
        params = {**base["params"], name: _poisoned(given.value)}
        yield Variant(f"{what}: NUL in ?{name}", probe.method, url, {**base, "params": params}, given.status, given.expected)
    if probe.body is not None:
        for where, document, fragment in _json_variants(probe.body):
            yield Variant(f"{what}: NUL in JSON {where}", probe.method, url, {**base, "json": document}, 400, fragment)
    if probe.text_body is not None:
        content = _poisoned(probe.text_body.value).encode()
        yield Variant(f"{what}: NUL in the body", probe.method, url, {**base, "content": content}, 400,
                      probe.text_body.expected)


SERVICE, KEY, HANDLER = name_field("Counter", "service name"), Field("k", "key"), name_field("add", "handler name")
DELAY = Field("1s", "delay query parameter")
SCOPE = Field("tenant-1", "scope", 400, "invalid scope")
STORED = ("idempotency-key", "x-restate-probe")

INGRESS_PROBES = (
    Probe("/{rest:path}", "POST", "/{service}/{key}/{handler}", {"service": SERVICE, "key": KEY, "handler": HANDLER},
          {"delay": DELAY}, content=b"1", stored_headers=STORED),
    Probe("/{rest:path}", "POST", "/{service}/{key}/{handler}/send", {"service": SERVICE, "key": KEY, "handler": HANDLER},
          {"delay": DELAY}, content=b"1", stored_headers=STORED),
    Probe("/{rest:path}", "POST", "/{service}/{handler}/send",
          {"service": name_field("Effects", "service name"), "handler": name_field("echo", "handler name")},
          {"delay": DELAY}, content=b'"x"', stored_headers=STORED),
    Probe("/restate/call/{rest:path}", "POST", "/restate/call/{service}/{key}/{handler}",
          {"service": SERVICE, "key": KEY, "handler": HANDLER}, content=b"1", stored_headers=STORED),
    Probe("/restate/send/{rest:path}", "POST", "/restate/send/{service}/{key}/{handler}",
          {"service": SERVICE, "key": KEY, "handler": HANDLER}, {"delay": DELAY}, content=b"1", stored_headers=STORED),
    *(Probe("/restate/scope/{rest:path}", "POST", f"/restate/scope/{{scope}}/{verb}/{{service}}/{{key}}/{{handler}}",
            {"scope": SCOPE, "service": SERVICE, "key": KEY, "handler": HANDLER}, content=b"1", stored_headers=STORED)
      for verb in ("call", "send")),
    *(Probe(f"{prefix}/{{awakeable_id}}/{{action}}", "POST", f"{prefix}/{{awakeable_id}}/{{action}}",
            {"awakeable_id": Field(AWAKEABLE, "awakeable id"), "action": action(verb)}, **body)  # type: ignore[arg-type]
      for prefix in ("/restate/awakeables", "/restate/a")
      for verb, body in (("resolve", {"content": b'"v"'}), ("reject", {"text_body": Field("no", "failure message")}))),
    Probe("/restate/invocation/{rest:path}", "GET", "/restate/invocation/{id}/{action}",
          {"id": Field(INVOCATION, "invocation id"), "action": action("output")}),
    Probe("/restate/invocation/{rest:path}", "GET", "/restate/invocation/{service}/{handler}/{idempotency_key}/output",
          {"service": Field("Effects", "service name"), "handler": Field("echo", "handler name"),
           "idempotency_key": Field("ik", "idempotency key")}),
    Probe("/restate/invocation/{rest:path}", "GET", "/restate/invocation/{service}/{key}/{handler}/{idempotency_key}/output",
          {"service": Field("Counter", "service name"), "key": KEY, "handler": Field("add", "handler name"),
           "idempotency_key": Field("ik", "idempotency key")}),
    Probe("/restate/workflow/{name}/{workflow_id}/{action}", "GET", "/restate/workflow/{name}/{workflow_id}/{action}",
          {"name": Field("Signup", "workflow name"), "workflow_id": Field("w", "workflow id"), "action": action("output")}),
    Probe("/restate/{action}/{invocation_id}", "GET", "/restate/{action}/{invocation_id}",
          {"action": action("output"), "invocation_id": Field(INVOCATION, "invocation id")}),
    Probe("/restate/{action}", "POST", "/restate/{action}", {"action": action("output")},
          body={"target": "invocation", "invocationId": INVOCATION}),
    Probe("/restate/{action}", "POST", "/restate/output",
          body={"target": "idempotentInvocation", "service": "Counter", "key": "k", "handler": "add", "idempotencyKey": "ik"}),
    Probe("/restate/{action}", "POST", "/restate/lookup", body={"target": "workflow", "workflowName": "Signup", "workflowKey": "w"}),
    Probe("/restate/{rest:path}", "GET", "/restate/{rest}", {"rest": action("nothing")}),
    Probe("/restate/health", "GET", "/restate/health", query={"x": Field("1", status=200, fragment="")}),
)


def _admin(route: str, method: str, path: typing.Optional[str] = None, **options: typing.Any) -> Probe:
    """Admin probes: every path parameter and every query parameter is refused with a NUL."""
    labels = {"invocation_id": "invocation id", "name": "service name", "handler": "handler name",
              "key": "object key", "deployment_id": "deployment id", "job": "cron job name"}
    values = {"invocation_id": INVOCATION, "name": "Counter", "handler": "add", "key": "k",
              "deployment_id": "dp_1" + "0" * 22, "job": "nightly"}
    fields = {name: Field(values[name], labels[name]) for name in labels if "{" + name + "}" in route}
    query = {name: Field(value, f"query parameter '{name}'") for name, value in options.pop("query", {"x": "1"}).items()}
    return Probe(route, method, path or route, fields, query, **options)


ADMIN_PROBES = (
    *(_admin("/invocations/{invocation_id}/" + op, "PATCH")
      for op in ("cancel", "kill", "purge", "purge-journal", "pause", "resume")),
    _admin("/invocations/{invocation_id}/restart-as-new", "PATCH", query={"from": "0"}),
    *(_admin(path, "GET") for path in ("/metrics", "/health", "/version", "/services", "/subscriptions", "/deployments",
                                       "/cron", "/services/{name}", "/services/{name}/handlers", "/services/{name}/openapi",
                                       "/services/{name}/handlers/{handler}", "/services/{name}/state/{key}",
                                       "/deployments/{deployment_id}", "/cron/{job}")),
    _admin("/services/{name}", "PATCH", body={"public": True, "idempotency_retention": "1 day"}),
    _admin("/services/{name}/state", "POST", body={"object_key": "k", "version": "v", "new_state": {"count": [49]}}),
    _admin("/deployments", "POST", body={"uri": "http://localhost:9080", "additional_headers": {"x-probe": "1"}}),
    _admin("/deployments/{deployment_id}", "PATCH", body={"uri": "http://localhost:9080", "additional_headers": {"x-probe": "1"}}),
    _admin("/deployments/{deployment_id}", "PUT"),
    _admin("/deployments/{deployment_id}", "DELETE"),
    _admin("/cron", "POST", body={"name": "nightly", "schedule": "0 3 * * *", "handler": "Effects/echo", "timezone": "UTC",
                                  "catch_up": "latest", "headers": {"x-probe": "1"}, "scope": "s", "limit_key": "k"}),
    _admin("/cron/{job}", "PATCH", body={"enabled": False}),
    _admin("/cron/{job}", "DELETE"),
    _admin("/query", "POST", body={"query": "SELECT 1"}),
    *(_admin(path, "GET") for path in ("/limits/rules", "/limits/queues")),
    _admin("/limits/rules", "PUT", body=[{"pattern": "checkout/*", "limits": {"concurrency": 2}, "description": "per tenant"}]),
    _admin("/limits/rules/bulk-delete", "POST", body=[{"pattern": "checkout/*"}]),
)


def _ui(route: str, method: str = "GET") -> Probe:
    """Operator UI probes (restate_pg/ui, mounted by the admin router, unversioned only): every
    path parameter and query parameter is refused with a NUL, in the admin API's error body.
    Form fields are checked by tests/test_ui.py."""
    labels = {"invocation_id": "invocation id", "name": "service name", "service": "service name",
              "key": "object key", "job": "cron job name", "operation": "operation", "action": "action",
              "file": "file name"}
    values = {"invocation_id": INVOCATION, "name": "Counter", "service": "Counter", "key": "k", "job": "nightly",
              "operation": "cancel", "action": "enable", "file": "ui.css"}
    fields = {name: Field(values[name], labels[name]) for name in labels if "{" + name + "}" in route}
    return Probe(route, method, route, fields, {"x": Field("1", "query parameter 'x'")})


UI_PROBES = (
    *(_ui(path) for path in ("/ui", "/ui/", "/ui/static/{file}", "/ui/invocations", "/ui/invocations/{invocation_id}",
                             "/ui/invocations/{invocation_id}/live", "/ui/state", "/ui/state/{service}",
                             "/ui/state/{service}/{key}", "/ui/services", "/ui/services/{name}", "/ui/cron", "/ui/sql")),
    *(_ui(path, "POST") for path in ("/ui/invocations/{invocation_id}/actions/{operation}", "/ui/invocations/bulk/{operation}",
                                     "/ui/state/{service}/{key}",
                                     "/ui/services/{name}/settings", "/ui/services/{name}/try", "/ui/cron/{job}/{action}",
                                     "/ui/sql")),
)


def _unversioned(path: str) -> str:
    for prefix in VERSION_PREFIXES:
        if path.startswith(prefix + "/"):
            return path[len(prefix):]
    return path


def declared_routes(routes: typing.Iterable[typing.Any], prefix: str = "") -> typing.Iterator[typing.Tuple[str, str]]:
    """(path, method) of every API route, through included routers (which recent FastAPI keeps
    as routers, older versions copied as routes). FastAPI's own /docs routes read no input."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from declared_routes(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            yield from ((prefix + route.path, method) for method in route.methods)


def test_every_route_is_probed(database_url):
    """The probes cover every route the routers declare (a new route needs its probes)."""
    router = create_router(APP, database_url=database_url)
    assert {path for path, _ in declared_routes(router.routes)} == {probe.route for probe in INGRESS_PROBES}
    admin_routes = {(_unversioned(path), method) for path, method in declared_routes(create_admin_app(router.engine).routes)}  # type: ignore[attr-defined]
    assert admin_routes == {(probe.route, probe.method) for probe in (*ADMIN_PROBES, *UI_PROBES)}
    assert any(path.startswith("/v4/") for path, _ in declared_routes(create_admin_app(router.engine).routes))  # type: ignore[attr-defined]


@pytest.fixture
async def served(clean_db):
    """The ingress with the admin router under /admin, and the admin app on a port of its own."""
    async with serve(APP, clean_db, admin=True) as ingress, serve_api(create_admin_app(ingress.engine)) as admin_url:
        async with httpx.AsyncClient(base_url=admin_url, timeout=30) as admin:
            assert (await ingress.client.post("/Counter/k/add", json=1)).json() == 1  # some rows to keep
            yield ingress, admin


async def digest(url: str) -> typing.Dict[str, str]:
    """A fingerprint of every row of the tables a request could write."""
    sql = " UNION ALL ".join(
        f"SELECT '{table}', md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) FROM restate.{table} r"
        for table in TABLES)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return dict(await (await conn.execute(sql)).fetchall())


def check_error(response: httpx.Response, variant: Variant, ingress: bool) -> typing.Optional[str]:
    """What is wrong with the answer to `variant`, if anything."""
    if response.status_code != variant.status:
        return f"status {response.status_code}: {response.text[:200]}"
    if variant.status < 400:
        return None
    if response.headers.get("content-type") != "application/json" or "Traceback" in response.text:
        return f"not a JSON error: {response.headers.get('content-type')} {response.text[:200]}"
    body = response.json()
    expected_keys = {"code", "message", "source"} if ingress else {"code", "message"}
    if set(body) != expected_keys or body["code"] != variant.status or not body["message"]:
        return f"not Restate's error body: {body}"
    if ingress and (body["source"], response.headers.get("x-restate-error-source")) != ("ingress", "ingress"):
        return f"not an ingress error: {body}"
    if variant.fragment not in body["message"]:
        return f"the message does not name the field ({variant.fragment!r}): {body['message']}"
    return None


async def probe_all(client: httpx.AsyncClient, url: str, variants_: typing.Iterable[Variant], ingress: bool) -> typing.List[str]:
    failures = []
    for variant in variants_:
        before = await digest(url)
        response = await client.request(variant.method, variant.path, **variant.options)
        problem = check_error(response, variant, ingress)
        after = await digest(url)
        if after != before:
            changed = sorted(table for table in TABLES if before[table] != after[table])
            problem = f"{problem or 'answered as expected'}, but it wrote to {', '.join(changed)}"
        if problem:
            failures.append(f"{variant.description}: {problem}")
    return failures


@pytest.mark.slow
async def test_a_nul_anywhere_in_an_ingress_request_is_refused_with_nothing_written(served, clean_db):
    ingress, _ = served
    checked = [variant for probe in INGRESS_PROBES for variant in variants(probe)]
    assert len(checked) > 50
    failures = await probe_all(ingress.client, clean_db, checked, ingress=True)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
async def test_a_nul_anywhere_in_an_admin_request_is_refused_with_nothing_written(served, clean_db):
    """On the admin app (unversioned and /v2-/v4 paths) and on the router mounted in an app."""
    ingress, admin = served
    checked = [variant for prefix in ("", *VERSION_PREFIXES) for probe in ADMIN_PROBES for variant in variants(probe, prefix)]
    failures = await probe_all(admin, clean_db, checked, ingress=False)
    mounted = [variant for probe in ADMIN_PROBES for variant in variants(probe, "/admin")]
    failures += await probe_all(ingress.client, clean_db, mounted, ingress=False)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
async def test_a_nul_anywhere_in_a_ui_request_is_refused_with_nothing_written(served, clean_db):
    """The operator UI, on the admin app and under the admin router mounted in an app."""
    ingress, admin = served
    failures = await probe_all(admin, clean_db, [v for probe in UI_PROBES for v in variants(probe)], ingress=False)
    mounted = [variant for probe in UI_PROBES for variant in variants(probe, "/admin")]
    failures += await probe_all(ingress.client, clean_db, mounted, ingress=False)
    assert not failures, "\n".join(failures)


async def raw_request(base_url: str, request: bytes) -> bytes:
    """`request` sent as it is: no HTTP client sends a NUL in a header."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


@pytest.mark.slow
async def test_a_nul_in_a_stored_header_never_reaches_the_application(served, clean_db):
    """The HTTP server refuses a header holding a NUL (400, its own plain-text body) before any
    application code runs; the ingress would refuse it too (headers must be visible ASCII)."""
    ingress, _ = served
    for probe in INGRESS_PROBES:
        for header in probe.stored_headers:
            before = await digest(clean_db)
            body = probe.content or b""
            answer = await raw_request(ingress.base_url, (
                f"{probe.method} {_url(probe)} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n").encode() + header.encode() + b": a\x00b\r\n\r\n" + body)
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
            assert await digest(clean_db) == before, f"{probe.path} with a NUL in {header} wrote something"


async def test_a_handler_input_and_an_awakeable_value_may_hold_nul(served, clean_db):
    """They are stored as bytes: a NUL, raw or as JSON's \\u0000, is the handler's business."""
    ingress, _ = served
    client = ingress.client
    raw = await client.post("/Steps/raw_echo", content=b"a\x00b", headers={"content-type": "application/octet-stream"})
    assert (raw.status_code, raw.content) == (200, b"b\x00a")
    echoed = await client.post("/Effects/echo", json="a\x00b")
    assert (echoed.status_code, echoed.json()) == (200, "a\x00b")
    sent = (await client.post("/Effects/echo/send", json={"note": "\x00"})).json()["invocationId"]
    assert (await client.get(f"/restate/invocation/{sent}/attach")).json() == {"note": "\x00"}

    waiting = (await client.post("/Waiter/wait/send", json="nul-key")).json()["invocationId"]
    held = await held_id(ingress, "nul-key")
    refused = await client.post(f"/restate/awakeables/{held}/reject", content=b"no\x00pe")
    assert (refused.status_code, refused.json()["message"]) == (
        400, "bad failure message (the request body): it contains a NUL character (\\u0000), which PostgreSQL cannot store")
    assert (await client.post(f"/restate/awakeables/{held}/resolve", json="a\x00b")).status_code == 202
    assert (await client.get(f"/restate/invocation/{waiting}/attach")).json() == "got a\x00b"  # not the rejection


async def test_an_ignored_query_parameter_is_kept_percent_encoded(served):
    ingress, _ = served
    response = await ingress.client.post("/Inspect/k/request?note=a%00b")
    assert response.status_code == 200, response.text
    assert response.json()["headers"]["x-restate-ingress-path"] == "/Inspect/k/request?note=a%00b"


@pytest.mark.slow
async def test_an_empty_idempotency_key_is_refused(served, clean_db):
    """As Restate refuses one from a handler ("the idempotency key provided in the request is
    empty"); otherwise every request sending it would collapse into one invocation."""
    ingress, _ = served
    before = await digest(clean_db)
    for path in ("/Counter/empty/add", "/Counter/empty/add/send", "/restate/send/Effects/echo", "/Signup/empty/run"):
        response = await ingress.client.post(path, json=1, headers={"idempotency-key": ""})
        assert response.status_code == 400, response.text
        assert response.json() == {"code": 400, "message": "the idempotency key provided in the request is empty",
                                   "source": "ingress"}
        assert response.headers["x-restate-error-source"] == "ingress"
    assert await digest(clean_db) == before


@pytest.mark.slow
async def test_the_admin_app_answers_every_error_with_restates_body(served):
    ingress, admin = served
    assert (await admin.get("/nope")).json() == {"code": 404, "message": "no admin path /nope"}
    assert (await admin.put("/services")).json() == {"code": 405, "message": "method PUT not allowed on /services"}
    assert (await admin.get("/v4/cron/a%00b")).json() == {
        "code": 400, "message": "bad cron job name: it contains a NUL character (\\u0000), which PostgreSQL cannot store"}

    extended = create_admin_app(ingress.engine)  # a route an application adds to the admin app

    @extended.get("/extra/{count}")
    async def extra(count: int) -> typing.Dict[str, int]:
        return {"count": count}

    async with serve_api(extended) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/extra/2")).json() == {"count": 2}
        invalid = await client.get("/extra/two")
        assert invalid.status_code == 422
        assert set(invalid.json()) == {"code", "message"} and invalid.json()["code"] == 422
        assert "path.count" in invalid.json()["message"]


async def test_unexpected_failures_answer_json_500(database_url):
    """A schema broken under a running server (its tables renamed away): the admin app, the
    mounted admin router and the ingress still answer JSON, without a traceback."""
    schema = "broken_" + new_invocation_id()[-8:].lower()
    upgrade(database_url, schema)
    try:
        async with serve(APP, database_url, admin=True, schema=schema) as ingress, \
                serve_api(create_admin_app(ingress.engine)) as admin_url, httpx.AsyncClient(base_url=admin_url) as admin:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(f"ALTER TABLE {schema}.service RENAME TO service_gone")
                conn.execute(f"ALTER TABLE {schema}.invocation RENAME TO invocation_gone")
            for response in (await admin.get("/services"), await ingress.client.get("/admin/v4/services")):
                assert response.status_code == 500
                assert response.json() == {"code": 500, "message": "internal error while handling the request"}
            called = await ingress.client.post("/Counter/k/add", json=1)
            assert called.status_code == 500
            assert called.json() == {"code": 500, "message": "internal error while handling the request", "source": "ingress"}
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_the_safety_net_recognizes_what_postgresql_cannot_store(database_url):
    """What the ingress and admin API answer 400 for if a NUL ever slips past the checks."""
    refused = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for sql, value in (("SELECT %s::text", "a\x00b"), ("SELECT %s::jsonb", '"a\\u0000b"'), ("SELECT %s::int", "x")):
            with pytest.raises(psycopg.DataError) as failed:
                conn.execute(sql, (value,))
            refused.append(is_unstorable(failed.value))
    assert refused == [True, True, False]
