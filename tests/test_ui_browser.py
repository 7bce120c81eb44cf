"""The operator UI in a real headless browser: Debian's chromium, driven by Playwright's Python
API (`executable_path`: Playwright's own browser download is not used; .ci/run installs
chromium). Each test saves screenshots of the pages it saw in tests/artifacts/ui/."""

from __future__ import annotations

import asyncio
import shutil
import time
import typing
import uuid
from pathlib import Path

import pytest

from tests.apps import operated
from tests.support.polling import eventually
from tests.support.server import serve

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "ui"


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("the UI's browser tests need Debian's chromium: apt-get install -y chromium (.ci/run does)")
    return path


@pytest.fixture
async def page(chromium: str) -> typing.AsyncIterator[typing.Any]:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            tab = await browser.new_page(viewport={"width": 1300, "height": 900})
            tab.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))  # the confirmations
            yield tab
        finally:
            await browser.close()


@pytest.fixture
async def ingress(clean_db):
    async with serve(operated.app, clean_db, admin=True, inactivity_timeout=0.3) as served:
        yield served


async def shot(page: typing.Any, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.slow
async def test_list_filter_and_an_invocations_journal_in_order(ingress, page):
    name = uuid.uuid4().hex[:8]
    await ingress.client.post("/UiCounter/someone/add", json=1)  # another service's, to filter out
    sent = await ingress.client.post("/UiTrip/plan/send", json=name)
    trip_id = sent.json()["invocationId"]
    awakeable_id = await eventually(lambda: operated.handed_out.get(name), what="the awakeable handed out")
    resolved = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="approved")
    assert resolved.status_code == 202, resolved.text
    output = await ingress.client.get(f"/restate/invocation/{trip_id}/attach")
    assert output.json() == f"Hello, {name}! approved"

    await page.goto(f"{ingress.base_url}/admin/ui/invocations")
    await page.wait_for_selector("tr.invocation")
    assert await page.locator("tr.invocation").count() == 3  # the trip, its call, the counter's add
    await shot(page, "invocations")
    await page.select_option("select[name=service]", "UiTrip")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url("**service=UiTrip**")
    assert await page.locator("tr.invocation").count() == 1
    assert await page.inner_text('b[data-status="completed"]') == "1"
    await shot(page, "invocations-filtered")

    await page.click(f"a.id:has-text('{trip_id}')")
    await page.wait_for_selector("ol.timeline")
    types = await page.eval_on_selector_all("li.entry", "els => els.map(e => e.dataset.type)")
    kinds = await page.eval_on_selector_all("li.entry", "els => els.map(e => e.className)")
    indexes = await page.eval_on_selector_all("li.entry[data-index]", "els => els.map(e => +e.dataset.index)")
    assert indexes == sorted(indexes) and len(indexes) == len(set(indexes))  # as stored
    commands = [t for t, k in zip(types, kinds) if "notification" not in k]
    assert commands == ["Input", "Sleep", "Call", "Awakeable", "Run", "Output"], types
    # each waiting command is followed (later) by the notification that completed it
    assert types.index("Sleep") < types.index("Call") < types.index("Run")
    notifications = [t for t, k in zip(types, kinds) if "notification" in k]
    assert {"Sleep", "Call", "Signal (awakeable)"} <= set(notifications), types
    assert "wakes at" in await page.inner_text("li.entry[data-type=Sleep]")
    assert "hand out" in await page.inner_text("li.entry[data-type=Run]")
    assert "approved" in await page.inner_text("li.entry[data-type='Signal (awakeable)']")
    assert f"Hello, {name}! approved" in await page.inner_text("li.entry[data-type=Output]")
    await shot(page, "invocation")

    await page.click("a.callee")  # the call links to the callee's page, which links back
    await page.wait_for_selector("a.caller")
    assert "UiGreeter" in await page.inner_text("table.header")
    assert f"Hello, {name}!" in await page.inner_text("li.entry[data-type=Output]")
    await shot(page, "invocation-callee")


@pytest.mark.slow
async def test_cancel_a_running_invocation_and_see_it_end(ingress, page):
    job_id = (await ingress.client.post("/UiJob/wait/send")).json()["invocationId"]
    await page.goto(f"{ingress.base_url}/admin/ui/invocations/{job_id}")
    await page.wait_for_selector("li.entry[data-type=Awakeable]")  # it runs, waiting
    assert "completed" not in await page.inner_text("#status")
    await shot(page, "invocation-running")
    clicked = time.monotonic()
    await page.click("button.action-cancel")  # confirmed by the dialog handler
    await page.wait_for_selector("p.answer:has-text('cancel: 202')")
    await page.wait_for_selector("#status:has-text('completed')", timeout=30_000)  # polled in
    seen_after = time.monotonic() - clicked
    assert "failure" in await page.inner_text("#status")
    assert "[409]" in await page.inner_text("li.entry[data-type=Output]")
    await shot(page, "invocation-cancelled")
    print(f"the cancelled invocation's end showed {seen_after:.2f}s after the click")
    # an action on what has ended answers with the admin API's error, shown in the page
    await page.click("button.action-kill")
    await page.wait_for_selector("p.answer.error:has-text('409 the invocation is already completed')")


@pytest.mark.slow
async def test_bulk_cancel_with_a_dry_run_first(ingress, page):
    ids = [(await ingress.client.post("/UiJob/wait/send")).json()["invocationId"] for _ in range(2)]
    await page.goto(f"{ingress.base_url}/admin/ui/invocations?service=UiJob&status=running&status=suspended"
                    "&status=ready&status=pending")
    await page.select_option("#bulk-operation", "cancel")
    await page.click("#bulk-dry-run")
    await page.wait_for_selector("#bulk-answer:has-text('cancel would touch 2 invocations')")
    await shot(page, "invocations-bulk-dry-run")
    await page.click("#bulk-apply")  # confirmed by the dialog handler
    await page.wait_for_selector("#bulk-answer:has-text('cancel: 2 invocations')")
    await shot(page, "invocations-bulk-applied")
    for invocation_id in ids:
        result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
        assert result is not None and result.failure is not None and result.failure.code == 409


@pytest.mark.slow
async def test_edit_a_keys_state_and_read_it_back_over_the_ingress(ingress, page):
    key = uuid.uuid4().hex[:8]
    await ingress.client.post(f"/UiCounter/{key}/add", json=3)
    await page.goto(f"{ingress.base_url}/admin/ui/state")
    await page.click("a:has-text('UiCounter')")
    await page.click(f"a.key:has-text('{key}')")
    assert (await page.inner_text("pre[data-entry=count]")).strip() == "3"
    await shot(page, "state-key")
    await page.fill("textarea[name=state]", '{"count": 42}')
    await page.click("#save-state")
    await page.wait_for_selector("p.answer:has-text('saved')")
    assert (await page.inner_text("pre[data-entry=count]")).strip() == "42"
    await shot(page, "state-key-saved")
    assert (await ingress.client.get(f"/UiCounter/{key}/get")).json() == 42


@pytest.mark.slow
async def test_run_a_sql_query(ingress, page):
    await ingress.client.post("/UiGreeter/greet", json="sql")
    await page.goto(f"{ingress.base_url}/admin/ui/sql")
    await page.fill("#query", "SELECT target, status FROM sys_invocation WHERE target_service_name = 'UiGreeter'")
    await page.click("#run-query")
    await page.wait_for_selector("table.sql td")
    assert await page.eval_on_selector_all("table.sql td", "els => els.map(e => e.innerText)") == ["UiGreeter/greet", "completed"]
    await shot(page, "sql")
    await page.fill("#query", "DELETE FROM sys_invocation")
    await page.click("#run-query")
    await page.wait_for_selector("#sql-result .answer.error")


@pytest.mark.slow
async def test_the_other_pages_render(ingress, page):
    await ingress.client.post("/UiCounter/k/add", json=1)
    for path, name, selector in (("", "overview", "section.cards"), ("services", "services", "table.list"),
                                 ("services/UiTrip", "service", "form.try"), ("cron", "cron", "h1")):
        await page.goto(f"{ingress.base_url}/admin/ui/{path}")
        await page.wait_for_selector(selector)
        await shot(page, name)
    # try it: a handler invoked through the ingress from the service's page
    await page.goto(f"{ingress.base_url}/admin/ui/services/UiGreeter")
    await page.fill("input[name=ingress]", ingress.base_url)
    await page.fill("textarea[name=body]", '"form"')
    await page.click("form.try button")
    await page.wait_for_selector("#try-answer p.answer.ok")
    assert "Hello, form!" in await page.inner_text("#try-answer")
    await shot(page, "service-try")
