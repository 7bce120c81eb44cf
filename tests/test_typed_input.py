"""Input is checked against the handler's input type before an invocation exists (issue 15).

Valid JSON of the wrong type (`"5"` for `Counter/add(delta: int)`) used to be accepted: the
handler's TypeError was retried for an hour, and every later call to that key queued behind it.
Now the ingress answers 400 with the validation message, nothing is written, and the key stays
free. A body that is not JSON under a JSON content type is refused everywhere, awakeables and
promise-completing handlers included; the clients refuse the same input with a ValueError before
anything is sent or written.
"""

from __future__ import annotations

import asyncio
import subprocess
import typing
import uuid

import pytest

import restate_pg
from examples.fastapi_app import services as quickstart
from restate_pg.api.serde import BytesSerde
from restate_pg.client.handle import ClientError
from restate_pg.client.transactional import enqueue
from tests.apps import awakeables, typed_input, workflows
from tests.support.polling import invocation_count
from tests.support.server import serve
from tests.test_awakeables import held_id, start
from tests.test_ingress import assert_error

JSON = {"content-type": "application/json"}
APP = restate_pg.app([*typed_input.app.services.values(), *awakeables.app.services.values(),
                      *workflows.app.services.values()])


@pytest.fixture
async def ingress(clean_db):
    async with serve(APP, clean_db, inactivity_timeout=0.3) as served:
        yield served


@pytest.fixture
async def quickstart_ingress(clean_db):
    async with serve(quickstart.app, clean_db) as served:
        yield served


async def test_the_issues_curl_is_refused_and_the_key_stays_free(quickstart_ingress):
    """`curl .../Counter/mykey/add -H 'content-type: application/json' -d '"5"'`, as in the issue."""
    served = quickstart_ingress
    url = f"{served.base_url}/Counter/mykey/add"
    result = await asyncio.to_thread(  # the server runs on this event loop
        subprocess.run,
        ["curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}", url, "-H", "content-type: application/json", "-d", '"5"'],
        capture_output=True, text=True, check=True,
    )
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "400", result.stdout
    assert "input validation error" in body and "valid integer" in body, body
    assert await invocation_count(served.engine) == 0
    sent = await served.client.post("/Counter/mykey/add/send", content=b'"5"', headers=JSON)
    assert_error(sent, 400, "valid integer")
    assert await invocation_count(served.engine) == 0
    response = await served.client.post("/Counter/mykey/add", content=b"5", headers=JSON)
    assert (response.status_code, response.json()) == (200, 5)


CASES = [
    ("order", {"item": "tea", "quantity": "many"}, {"item": "tea", "quantity": 2}, 2, "quantity"),
    ("order", {"item": "tea"}, {"item": "tea", "quantity": 3}, 3, "quantity"),
    ("point", {"x": 1}, {"x": 1, "y": 2}, 3, "y"),
    ("number", "5", 5, 6, "valid integer"),
    ("number", 5.5, 41, 42, "valid integer"),
    ("text", 5, "ab", "AB", "valid string"),
    ("numbers", [1, "2"], [1, 2], 3, "valid integer"),
    ("numbers", {"a": 1}, [], 0, "valid array"),
    ("maybe", "x", None, -1, "valid integer"),
]


@pytest.mark.parametrize("handler, bad, good, output, fragment", CASES)
async def test_input_of_the_wrong_type_is_refused_before_an_invocation_exists(ingress, handler, bad, good, output, fragment):
    client = ingress.client
    for path in (f"/Typed/{handler}", f"/Typed/{handler}/send", f"/restate/call/Typed/{handler}"):
        body = assert_error(await client.post(path, json=bad), 400, "input validation error")
        assert fragment in body["message"], body
    assert await invocation_count(ingress.engine) == 0
    response = await client.post(f"/Typed/{handler}", json=good)
    assert (response.status_code, response.json()) == (200, output)


async def test_a_handler_without_annotation_accepts_any_json(ingress):
    for value in ("5", 5, [1, "x"], {"a": None}):
        response = await ingress.client.post("/Typed/anything", json=value)
        assert (response.status_code, response.json()) == (200, value)
    response = await ingress.client.post("/Typed/anything", content=b"null", headers=JSON)
    assert (response.status_code, response.content) == (200, b"")  # None, written as restate-sdk does


NOT_JSON = b"{not json"


async def test_a_body_that_is_not_json_under_a_json_content_type_is_refused_everywhere(ingress):
    client = ingress.client
    for path in ("/Typed/anything", "/Typed/anything/send", "/Typed/number", "/Typed/raw",
                 "/PaymentWorkflow/order-1/approve", "/restate/send/Typed/text"):
        assert_error(await client.post(path, content=NOT_JSON, headers=JSON), 400, "not valid JSON")
    for content_type in ("application/json; charset=utf-8", "application/problem+json"):
        response = await client.post("/Typed/raw", content=NOT_JSON, headers={"content-type": content_type})
        assert_error(response, 400, "not valid JSON")
    assert await invocation_count(ingress.engine) == 0
    response = await client.post("/Typed/raw", content=NOT_JSON, headers={"content-type": "text/plain"})
    assert (response.status_code, response.content) == (200, NOT_JSON)  # not JSON, and not said to be


async def test_an_awakeable_resolved_with_a_body_that_is_not_json_is_refused(ingress):
    invocation_id, key = await start(ingress, "wait")
    awakeable_id = await held_id(ingress, key)
    response = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", content=b"hello", headers=JSON)
    assert_error(response, 400, "not valid JSON")
    response = await ingress.client.post(f"/restate/a/{awakeable_id}/resolve", content=NOT_JSON, headers=JSON)
    assert_error(response, 400, "not valid JSON")
    # `curl -d hello` (no content type: curl's form encoding) is not a content type chosen for a waiter
    response = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", content=b"hello")
    assert_error(response, 400, "not valid JSON")
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", content=b"hello", headers=form)
    assert_error(response, 400, "not valid JSON")
    response = await ingress.client.post(f"/restate/awakeables/{awakeable_id}/resolve", json="hello")
    assert response.status_code == 202  # the refusals left it waiting
    result = await ingress.engine.results.wait(invocation_id)
    assert result is not None and result.output == b'"got hello"'


@pytest.mark.parametrize("via", ["curl", "client"])
async def test_an_awakeable_value_under_a_content_type_of_its_own_is_passed_as_is(ingress, via):
    """A waiter may take raw bytes (`ctx.awakeable(serde=BytesSerde())`): its resolver says so
    (the HTTP client does when given a serde that is not JSON)."""
    key = uuid.uuid4().hex
    invocation_id = (await ingress.client.post("/Typed/wait_raw/send", json=key)).json()["invocationId"]
    awakeable_id = await held_id(ingress, key)
    if via == "curl":
        response = await ingress.client.post(
            f"/restate/awakeables/{awakeable_id}/resolve", content=b"\x01raw", headers={"content-type": "application/octet-stream"})
        assert response.status_code == 202
    else:
        async with restate_pg.create_client(ingress.base_url) as http:
            await http.resolve_awakeable(awakeable_id, b"\x01raw", serde=BytesSerde())
    result = await ingress.engine.results.wait(invocation_id)
    assert result is not None and result.output == b"\x01raw"


async def test_a_void_handler_names_the_content_type_plainly(ingress):
    response = await ingress.client.post("/PaymentWorkflow/order-2/status", content=b"", headers=JSON)
    body = assert_error(response, 400, "Expected body and content-type to be empty")
    assert "Some(" not in body["message"] and "'application/json'" in body["message"], body


# -- the clients ---------------------------------------------------------------------------------------


@pytest.fixture(params=["sql", "http"])
async def client(request, ingress):
    if request.param == "sql":
        made = restate_pg.create_client(ingress.engine.store.conninfo, app=APP)
    else:
        made = restate_pg.create_client(ingress.base_url)
    async with made:
        yield made


CLIENT_CALLS: typing.List[typing.Callable[[typing.Any], typing.Awaitable[typing.Any]]] = [
    lambda c: c.service_call(typed_input.number, "5"),
    lambda c: c.service_send(typed_input.text, 5),
    lambda c: c.service_call(typed_input.numbers, [1, "2"]),
    lambda c: c.service_send(typed_input.number, None),
]


@pytest.mark.parametrize("call", CLIENT_CALLS)
async def test_the_clients_refuse_the_wrong_type_with_a_value_error(client, ingress, call):
    with pytest.raises(ValueError, match="input validation error"):
        await call(client)
    assert await invocation_count(ingress.engine) == 0
    assert await client.service_call(typed_input.number, 1) == 2


async def test_a_named_target_is_checked_where_its_definition_is_known(ingress):
    """Over SQL the app gives names their definitions: a ValueError before writing. Over HTTP
    without an app, the ingress refuses it: `ClientError` 400 with the same message."""
    async with restate_pg.create_client(ingress.engine.store.conninfo, app=APP) as sql:
        with pytest.raises(ValueError, match="input validation error"):
            await sql.generic_call("Typed", "number", b'"5"')
    async with restate_pg.create_client(ingress.base_url) as http:
        with pytest.raises(ClientError, match="400: input validation error.*valid integer"):
            await http.generic_call("Typed", "number", b'"5"')
    assert await invocation_count(ingress.engine) == 0


async def test_enqueue_refuses_the_wrong_type_before_writing(ingress):
    import psycopg

    with psycopg.connect(ingress.engine.store.conninfo) as conn:
        with pytest.raises(ValueError, match="input validation error.*valid integer"):
            enqueue(conn, typed_input.number, "5")
        with pytest.raises(ValueError, match="input validation error"):
            enqueue(conn, "Typed/numbers", ["x"], app=APP)
        enqueue(conn, typed_input.number, 5, idempotency_key=uuid.uuid4().hex)
    assert await invocation_count(ingress.engine) == 1


def test_a_cron_job_declared_with_input_of_the_wrong_type_is_refused():
    """It would fire every tick into a handler that can only fail and be retried."""
    from restate_pg.api.cron import Cron, InvalidCron

    def declare(*crons: Cron) -> restate_pg.App:
        return restate_pg.app([typed_input.typed], crons=crons)

    with pytest.raises(InvalidCron, match="cron job 'bad': input validation error.*valid integer"):
        declare(Cron("bad", "* * * * *", typed_input.number, input="5"))
    with pytest.raises(InvalidCron, match="input validation error.*valid integer"):
        declare(Cron("named", "* * * * *", "Typed/number", input="5"))
    with pytest.raises(InvalidCron, match="cron job 'none': input validation error"):
        declare(Cron("none", "* * * * *", typed_input.number))
    assert declare(Cron("good", "* * * * *", typed_input.number, input=5)).crons["good"].input_bytes() == b"5"
