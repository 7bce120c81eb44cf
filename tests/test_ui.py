"""The operator UI over HTTP (tests/test_ui_browser.py drives it in a browser): its pages answer,
filter and page with a keyset on an index, refuse bad input in one line, and are protected by
whatever protects the admin router they come with."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import psycopg
import pytest
from fastapi import Depends, FastAPI, Header, HTTPException

from restate_pg.admin import create_admin_router
from restate_pg.store.queries import Queries
from restate_pg.testing.harness import serve_api
from tests.apps import operated
from tests.support.server import serve


@pytest.fixture
async def ingress(clean_db):
    async with serve(operated.app, clean_db, admin=True, inactivity_timeout=0.3) as served:
        yield served


async def test_every_page_answers(ingress):
    await ingress.client.post("/UiCounter/a/add", json=2)
    for path in ("/", "/invocations", "/state", "/state/UiCounter", "/state/UiCounter/a", "/services",
                 "/services/UiTrip", "/cron", "/sql", "/static/htmx.min.js", "/static/ui.css"):
        answer = await ingress.client.get(f"/admin/ui{path}")
        assert answer.status_code == 200, (path, answer.text[:300])
    root = await ingress.client.get("/admin/ui")  # the URL `restate-pg dev` prints
    assert root.status_code == 307 and root.headers["location"] == "/admin/ui/"
    page = (await ingress.client.get("/admin/ui/invocations")).text
    assert "UiCounter/<i>a</i>/add" in page
    assert "/admin/ui/static/htmx.min.js" in page  # vendored, served by the admin app: no CDN


async def test_filters_counts_and_keyset_pages(ingress):
    ids = [(await ingress.client.post("/UiGreeter/greet", json=f"n{i}")).headers["x-restate-id"] for i in range(7)]
    added = (await ingress.client.post("/UiCounter/k/add", json=1)).headers["x-restate-id"]
    page = (await ingress.client.get("/admin/ui/invocations", params={"service": "UiGreeter"})).text
    assert all(i in page for i in ids) and added not in page
    assert 'data-status="completed">7<' in page
    # one by one, newest first: each page's "next" cursor leads to the one before
    import restate_pg.ui.invocations as invocations_page

    seen: list[str] = []
    old, invocations_page.PAGE_SIZE = invocations_page.PAGE_SIZE, 3
    try:
        params = {"service": "UiGreeter", "status": "completed"}
        while True:
            answer = await ingress.client.get("/admin/ui/invocations", params=params)
            rows = [line.split("/invocations/")[1].split('"')[0] for line in answer.text.splitlines() if 'class="id"' in line]
            seen += rows
            if "after=" not in answer.text:
                break
            params["after"] = answer.text.split("after=")[1].split('"')[0].replace("%2B", "+").replace("%3A", ":").replace("%7E", "~")
    finally:
        invocations_page.PAGE_SIZE = old
    assert seen == list(reversed(ids))
    by_text = (await ingress.client.get("/admin/ui/invocations", params={"q": added[:20]})).text
    assert added in by_text and ids[0] not in by_text


async def test_the_list_pages_through_an_index(clean_db):
    """The first page and the next ones walk invocation_created backwards (or the service's
    index), never sorting the invocations retained (only the live ones, from task): the plans
    show it, with 100,000 completed invocations in the table (bench/ui.py times a million)."""
    q = Queries("restate")
    live = ["scheduled", "ready", "running", "suspended", "backing-off", "paused"]
    base = {"live": live, "stored": ["inboxed", "completed"], "id": None, "service": None, "handler": None, "key": None, "deployment": None, "result": None,
            "since": None, "until": None, "text": None, "limit": 51, "cursor_at": None, "cursor_id": None}
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(q.BENCH_FILL_COMPLETED, {"count": 100_000, "services": 20})
        conn.execute("ANALYZE restate.invocation")
        cur = psycopg.ClientCursor(conn)
        middle = conn.execute("SELECT now() - interval '50 seconds'").fetchone()[0]  # half way down
        plans = {}
        for name, params in (("all", base), ("service", {**base, "service": "Bench3"}),
                             ("next", {**base, "cursor_at": middle, "cursor_id": "inv_1" + "0" * 33}),
                             ("failed", {**base, "result": "failure"}),
                             ("completed", {**base, "live": [], "stored": ["completed"], "service": "Bench3",
                                            "cursor_at": middle, "cursor_id": "inv_1" + "0" * 33})):
            plans[name] = "\n".join(r[0] for r in conn.execute("EXPLAIN " + cur.mogrify(q.BROWSE_INVOCATIONS, params)))
    for name, index in (("all", "invocation_created"), ("service", "invocation_service_created"),
                        ("next", "invocation_created"), ("failed", "invocation_failed_created"),
                        ("completed", "invocation_service_created")):
        assert f"Index Scan Backward using {index} on invocation" in plans[name], (name, plans[name])
        assert "Seq Scan on invocation" not in plans[name], plans[name]
        # the one sort is of the live invocations (task's), each found by its primary key
        assert plans[name].count("Sort  (") <= 1 and "Index Scan using invocation_pkey" in plans[name], plans[name]
    assert "ROW(i.created_at, i.id) < ROW(" in plans["next"], plans["next"]


@pytest.mark.parametrize("params, message", [
    ({"status": "nope"}, "unknown status 'nope'"),
    ({"since": "yesterday"}, "'since' must be a date and time"),
    ({"after": "garbage"}, "bad page cursor 'garbage'"),
    ({"result": "maybe"}, "unknown result 'maybe'"),
    ({"q": "a\x00b"}, "NUL"),
])
async def test_bad_filters_are_refused_in_one_line(ingress, params, message):
    answer = await ingress.client.get("/admin/ui/invocations", params=params)
    assert answer.status_code == 400
    assert message in answer.json()["message"]


async def test_unknown_invocation_and_operation(ingress):
    missing = "inv_1" + "0" * 33
    assert (await ingress.client.get(f"/admin/ui/invocations/{missing}")).status_code == 404
    assert (await ingress.client.get("/admin/ui/invocations/nope")).json() == {"code": 400, "message": "bad invocation id 'nope'"}
    answer = await ingress.client.post(f"/admin/ui/invocations/{missing}/actions/explode")
    assert answer.status_code == 404 and "unknown operation" in answer.json()["message"]
    answer = await ingress.client.post(f"/admin/ui/invocations/{missing}/actions/cancel")
    assert answer.status_code == 404 and "invocation not found" in answer.text  # the admin API's answer
    html = await ingress.client.get(f"/admin/ui/invocations/{missing}", headers={"accept": "text/html"})
    assert html.status_code == 404 and "not found" in html.text and "<html" in html.text


async def test_the_ui_is_protected_as_the_admin_router(clean_db):
    """An app that protects the admin router (here a token checked by a dependency) protects the UI."""

    def token(authorization: str = Header("")) -> None:
        if authorization != "Bearer secret":
            raise HTTPException(401, "no")

    async with serve(operated.app, clean_db) as served:
        api = FastAPI()
        api.include_router(create_admin_router(served.engine), prefix="/admin", dependencies=[Depends(token)])
        async with serve_api(api) as base_url, httpx.AsyncClient(base_url=base_url) as client:
            assert (await client.get("/admin/ui/invocations")).status_code == 401
            assert (await client.get("/admin/ui/static/ui.css")).status_code == 401
            ok = await client.get("/admin/ui/invocations", headers={"authorization": "Bearer secret"})
            assert ok.status_code == 200 and "Invocations" in ok.text


async def test_sql_page_runs_read_only(ingress):
    await ingress.client.post("/UiCounter/s/add", json=5)
    answer = await ingress.client.post("/admin/ui/sql", data={"query": "SELECT service_key, value_utf8 FROM state WHERE service_name = 'UiCounter'"})
    assert answer.status_code == 200 and "<td>s</td><td>5</td>" in answer.text
    refused = await ingress.client.post("/admin/ui/sql", data={"query": "DELETE FROM sys_invocation"})
    assert refused.status_code == 400


async def test_state_edit_checks_the_version(ingress):
    key = uuid.uuid4().hex[:8]
    await ingress.client.post(f"/UiCounter/{key}/add", json=1)
    page = (await ingress.client.get(f"/admin/ui/state/UiCounter/{key}")).text
    version = page.split('name="version" value="')[1].split('"')[0]
    await ingress.client.post(f"/UiCounter/{key}/add", json=1)  # changes it meanwhile
    stale = await ingress.client.post(f"/admin/ui/state/UiCounter/{key}", data={"version": version, "state": '{"count": 9}'})
    assert stale.status_code == 409 and "changed since it was read" in stale.text
    version = stale.text.split('name="version" value="')[1].split('"')[0]
    saved = await ingress.client.post(f"/admin/ui/state/UiCounter/{key}", data={"version": version, "state": '{"count": 9}'})
    assert saved.status_code == 200
    assert (await ingress.client.get(f"/UiCounter/{key}/get")).json() == 9
    bad = await ingress.client.post(f"/admin/ui/state/UiCounter/{key}", data={"version": version, "state": "[1"})
    assert bad.status_code == 400


async def test_a_nul_in_a_form_field_is_refused_with_nothing_written(ingress):
    await ingress.client.post("/UiCounter/n/add", json=1)
    for path, data in (("/admin/ui/sql", {"query": "SELECT 1 -- \x00"}),
                       ("/admin/ui/state/UiCounter/n", {"version": "v", "state": '{"count": "\x00"}'}),
                       ("/admin/ui/services/UiCounter/settings", {"public": "on", "abort_timeout": "1\x00s"})):
        answer = await ingress.client.post(path, data=data)
        assert answer.status_code == 400 and "NUL" in answer.json()["message"], (path, answer.text)
    assert (await ingress.client.get("/UiCounter/n/get")).json() == 1


async def test_bulk_actions_dry_run_then_apply_to_the_filtered_selection(ingress):
    """A dry run counts what the filters select and touches nothing; applying cancels each."""
    ids = []
    for _ in range(3):
        sent = await ingress.client.post("/UiJob/wait/send")
        assert sent.status_code == 202
        ids.append(sent.json()["invocationId"])
    await ingress.client.post("/UiCounter/bulk/add", json=1)  # completed, and another service: not selected

    async def live() -> int:
        with psycopg.connect(ingress.engine.store.conninfo) as conn:
            (n,) = conn.execute("SELECT count(*) FROM restate.task WHERE invocation_id = ANY(%s)", [ids]).fetchone()
        return n

    dry = await ingress.client.post("/admin/ui/invocations/bulk/cancel?service=UiJob&status=running&status=suspended"
                                    "&status=ready&status=pending", data={"dry_run": "1"})
    assert dry.status_code == 200, dry.text
    assert 'data-count="3"' in dry.text and await live() == 3

    applied = await ingress.client.post("/admin/ui/invocations/bulk/cancel?service=UiJob&status=running&status=suspended"
                                        "&status=ready&status=pending")
    assert applied.status_code == 200, applied.text
    assert "cancel: 3 invocations" in applied.text
    for invocation_id in ids:
        result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
        assert result is not None and result.failure is not None and result.failure.code == 409

    unknown = await ingress.client.post("/admin/ui/invocations/bulk/restart-as-new")
    assert unknown.status_code == 404 and "unknown bulk operation" in unknown.text
