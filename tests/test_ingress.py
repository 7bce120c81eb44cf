"""The HTTP ingress contract (Restate's, see /work/shared/reference/restate.md section 2), end to end."""

from __future__ import annotations

import asyncio
import typing
from datetime import datetime, timedelta

import httpx
import psycopg
import pytest

from restate_pg.core.ids import is_invocation_id
from tests.apps import ingress_app
from tests.support import ledger
from tests.support.polling import eventually, invocation_count
from tests.support.server import serve


@pytest.fixture
async def ingress(clean_db, side_effects):
    async with serve(ingress_app.app, clean_db, inactivity_timeout=2.0) as served:
        yield served


def assert_error(
    response: httpx.Response, status: int, fragment: str = "", source: str = "ingress"
) -> typing.Dict[str, typing.Any]:
    """An error answer: the status, a JSON body with a message (never a traceback), its source."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert "Traceback" not in response.text
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    assert fragment in body["message"]
    assert response.headers["x-restate-error-source"] == body["source"] == source
    return body


async def _json(response: typing.Awaitable[httpx.Response]) -> typing.Any:
    return (await response).json()


def db_now(url: str) -> datetime:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT now()").fetchone()[0]


def effect_times(tag: str) -> typing.List[datetime]:
    with psycopg.connect(ledger.dsn(), autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT at FROM public.side_effect WHERE tag = %s ORDER BY id", (tag,))]


# -- calls ---------------------------------------------------------------------------------------


async def test_call_returns_the_handler_output(ingress):
    response = await ingress.client.post("/Steps/greet_model", json={"name": "ada", "times": 1})
    assert response.status_code == 200
    assert response.json() == {"name": "ADA", "times": 2}
    assert response.headers["content-type"] == "application/json"
    assert is_invocation_id(response.headers["x-restate-id"])
    assert "idempotency-expires" not in response.headers  # only retained completions have one


async def test_empty_output_has_no_content_type(ingress):
    response = await ingress.client.post("/Steps/nothing")
    assert response.status_code == 200
    assert response.content == b""
    assert "content-type" not in response.headers
    assert is_invocation_id(response.headers["x-restate-id"])


async def test_object_calls_with_percent_encoded_keys(ingress):
    client = ingress.client
    assert (await client.post("/Counter/a%2Fb/whose")).json() == "a/b"
    assert (await client.post("/Counter/caf%C3%A9%20au%20lait/whose")).json() == "café au lait"
    assert (await client.post("/restate/call/Counter/x%2Fy%2Fz/whose")).json() == "x/y/z"
    # the decoded key is the object's identity: both spellings reach the same state
    assert (await client.post("/Counter/a%2Fb/add", json=2)).json() == 2
    assert (await client.post("/restate/call/Counter/a%2fb/add", json=3)).json() == 5
    assert (await client.get("/Counter/a%2Fb/get")).json() == 5
    assert (await client.get("/Counter/a/get")).json() == 0
    response = await client.post("/Counter/%FF/whose")
    assert_error(response, 400, "cannot decode key")


async def test_the_router_mounted_under_a_prefix(clean_db):
    """As the README mounts it: the prefix is not part of the service's path."""
    from fastapi import FastAPI

    from restate_pg.ingress import create_router
    from restate_pg.testing import serve_api

    api = FastAPI()
    api.include_router(create_router(ingress_app.app, database_url=clean_db, poll_interval=0.2), prefix="/restate-ingress")
    async with serve_api(api) as base_url, httpx.AsyncClient(base_url=base_url + "/restate-ingress") as client:
        assert (await client.post("/Counter/a%2Fb/whose")).json() == "a/b"
        assert (await client.post("/restate/call/Counter/x%2Fy/whose")).json() == "x/y"
        assert (await client.post("/Counter/a%2Fb/add", json=2)).json() == 2
        assert_error(await client.post("/Nope/handler"), 404, "service 'Nope' not found")


async def test_get_is_accepted_for_calls(ingress):
    await ingress.client.post("/Counter/g/add", json=4)
    response = await ingress.client.get("/Counter/g/get")
    assert response.status_code == 200 and response.json() == 4


async def test_restate_call_and_send_paths(ingress):
    client = ingress.client
    response = await client.post("/restate/call/Steps/greet_model", json={"name": "bo"})
    assert response.status_code == 200 and response.json() == {"name": "BO", "times": 2}
    assert (await client.post("/restate/call/Counter/v17/add", json=5)).json() == 5

    response = await client.post("/restate/send/Counter/v17/add", json=1)
    assert response.status_code == 202
    body = response.json()
    assert body == {"invocationId": response.headers["x-restate-id"], "status": "Accepted"}
    await eventually(lambda: _json(client.post("/restate/call/Counter/v17/get")), 6, what="the send to have run")

    response = await client.post("/restate/send/Effects/once", json="v17-send")
    assert response.status_code == 202 and response.json()["status"] == "Accepted"
    await eventually(lambda: ledger.count("v17-send") == 1, what="the /restate/send invocation ran")

    # the /send suffix belongs to the classic paths only
    assert_error(await client.post("/restate/call/Steps/greet_model/send", json={"name": "x"}), 400, "bad path")
    assert_error(await client.post("/restate/send/Counter/k/add/send", json=1), 400, "bad path")
    assert_error(await client.post("/restate/call/Nope/x"), 404, "service 'Nope' not found")
    assert_error(await client.post("/restate/unknown/Steps/nothing"), 404)


# -- sends ---------------------------------------------------------------------------------------


async def test_send_is_accepted_and_runs(ingress):
    response = await ingress.client.post("/Effects/once/send", json="fire-and-forget")
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == {"invocationId": response.headers["x-restate-id"], "status": "Accepted"}
    assert is_invocation_id(body["invocationId"])
    await eventually(lambda: ledger.count("fire-and-forget") == 1, what="the send ran")

    response = await ingress.client.post("/Counter/sent/add/send", json=7)
    assert response.status_code == 202 and response.json()["status"] == "Accepted"
    await eventually(lambda: _json(ingress.client.get("/Counter/sent/get")), 7, what="the object send to have run")


async def test_delayed_send_runs_not_before_its_delay(ingress):
    started = asyncio.get_running_loop().time()
    response = await ingress.client.post("/Effects/once/send?delay=1s", json="delayed")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "Accepted" and body["invocationId"] == response.headers["x-restate-id"]
    execution_time = datetime.fromisoformat(body["executionTime"])
    assert body["executionTime"].endswith("Z")
    await eventually(lambda: ledger.count("delayed") == 1, what="the delayed send ran")
    assert asyncio.get_running_loop().time() - started >= 1.0
    (ran_at,) = effect_times("delayed")
    assert ran_at >= execution_time  # both on the database's clock


@pytest.mark.parametrize(
    ("delay", "expected"),
    [
        ("1500", timedelta(milliseconds=1500)),  # bare milliseconds, as restate-sdk's client sends
        ("500ms", timedelta(milliseconds=500)),
        ("10s", timedelta(seconds=10)),
        ("PT1M", timedelta(minutes=1)),
        ("1m30s", timedelta(seconds=90)),
    ],
)
async def test_delay_formats_set_the_execution_time(ingress, clean_db, delay, expected):
    before = db_now(clean_db)
    response = await ingress.client.post(f"/Effects/echo/send?delay={delay}", json=1)
    after = db_now(clean_db)
    assert response.status_code == 202, response.text
    execution_time = datetime.fromisoformat(response.json()["executionTime"])
    assert before + expected <= execution_time <= after + expected


async def test_delay_errors(ingress):
    client = ingress.client
    body = assert_error(await client.post("/Effects/once/send?delay=soon", json="x"), 400, "bad delay query parameter")
    assert body["code"] == 400
    assert_error(await client.post("/Effects/once/send?delay=", json="x"), 400, "bad delay query parameter")
    assert_error(await client.post("/Effects/once/send?delay=-5s", json="x"), 400, "bad delay query parameter")
    assert_error(await client.post("/Effects/once/send?delay=99999999999999999999", json="x"), 400, "bad delay")
    assert_error(await client.post("/Effects/once/send?delay=99999999%20weeks", json="x"), 400, "bad delay")
    assert_error(await client.post("/Effects/once?delay=1s", json="x"), 400, "only with sends")
    assert_error(await client.post("/restate/call/Effects/once?DELAY=1s", json="x"), 400, "only with sends")
    assert await invocation_count(ingress.engine) == 0, "each refusal came before any invocation existed"


# -- idempotency ----------------------------------------------------------------------------------


async def test_idempotent_call_repeats_the_response_without_executing_again(ingress):
    headers = {"idempotency-key": "order-1"}
    first = await ingress.client.post("/Effects/once", json="idem", headers=headers)
    second = await ingress.client.post("/Effects/once", json="idem", headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.headers["x-restate-id"] == second.headers["x-restate-id"]
    assert first.headers["idempotency-expires"] == second.headers["idempotency-expires"]
    assert datetime.fromisoformat(first.headers["idempotency-expires"]).tzinfo is not None
    assert ledger.count("idem") == 1

    # another key is another invocation
    third = await ingress.client.post("/Effects/once", json="idem", headers={"idempotency-key": "order-2"})
    assert third.status_code == 200
    assert third.headers["x-restate-id"] != first.headers["x-restate-id"]
    assert ledger.count("idem") == 2


async def test_idempotent_failed_call_repeats_the_failure(ingress):
    headers = {"idempotency-key": "refusal"}
    first = await ingress.client.post("/Effects/refuse", json="no", headers=headers)
    second = await ingress.client.post("/Effects/refuse", json="no", headers=headers)
    for response in (first, second):
        body = assert_error(response, 500, "refused no", source="invocation")
        assert body == {"code": 500, "message": "refused no", "source": "invocation"}
    assert first.headers["x-restate-id"] == second.headers["x-restate-id"]
    assert ledger.count("no") == 1


async def test_concurrent_duplicate_idempotent_calls_execute_once(ingress):
    headers = {"idempotency-key": "together"}
    responses = await asyncio.gather(
        *(ingress.client.post("/Effects/slow_once", json="crowd", headers=headers) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert len({r.headers["x-restate-id"] for r in responses}) == 1
    assert ledger.count("crowd") == 1


async def test_idempotent_send_is_previously_accepted(ingress):
    headers = {"idempotency-key": "send-once"}
    first = await ingress.client.post("/Effects/once/send", json="idem-send", headers=headers)
    assert first.status_code == 202 and first.json()["status"] == "Accepted"
    second = await ingress.client.post("/Effects/once/send", json="idem-send", headers=headers)
    assert second.status_code == 202
    assert second.json() == {"invocationId": first.json()["invocationId"], "status": "PreviouslyAccepted"}
    assert second.headers["x-restate-id"] == first.headers["x-restate-id"]
    # a call with the same key attaches to the sent invocation
    attached = await ingress.client.post("/Effects/once", json="idem-send", headers=headers)
    assert attached.status_code == 200 and attached.json()["tag"] == "idem-send"
    assert attached.headers["x-restate-id"] == first.headers["x-restate-id"]
    assert ledger.count("idem-send") == 1


async def test_idempotency_key_is_per_handler_and_object_key(ingress):
    headers = {"idempotency-key": "same"}
    a = await ingress.client.post("/Counter/one/add", json=1, headers=headers)
    b = await ingress.client.post("/Counter/two/add", json=1, headers=headers)
    c = await ingress.client.post("/Counter/one/add", json=1, headers=headers)
    assert a.json() == b.json() == c.json() == 1
    assert a.headers["x-restate-id"] == c.headers["x-restate-id"] != b.headers["x-restate-id"]
    assert (await ingress.client.get("/Counter/one/get")).json() == 1


# -- workflows ------------------------------------------------------------------------------------


async def test_workflow_runs_once_per_id(ingress):
    client = ingress.client
    first = await client.post("/Signup/ada/run", json="Ada")
    assert first.status_code == 200 and first.json() == "welcome Ada"
    invocation_id = first.headers["x-restate-id"]
    assert "idempotency-expires" in first.headers

    again = await client.post("/Signup/ada/run", json="Ada")
    body = assert_error(again, 409, source="invocation")
    assert body == {"code": 409, "message": "the workflow method was already invoked", "source": "invocation"}
    assert again.headers["x-restate-id"] == invocation_id

    sent = await client.post("/Signup/ada/run/send", json="Ada")
    assert sent.status_code == 202
    assert sent.json() == {"invocationId": invocation_id, "status": "PreviouslyAccepted"}

    # shared handlers are ordinary invocations, callable any time
    assert (await client.post("/Signup/ada/whoami")).json() == "ada"
    assert (await client.post("/restate/call/Signup/ada/whoami", headers={"idempotency-key": "k"})).json() == "ada"
    assert ledger.count("signup:ada") == 1


async def test_workflow_send_then_duplicate_send(ingress):
    first = await ingress.client.post("/restate/send/Signup/bo/run", json="Bo")
    assert first.status_code == 202 and first.json()["status"] == "Accepted"
    second = await ingress.client.post("/Signup/bo/run/send", json="Bo")
    assert second.json() == {"invocationId": first.json()["invocationId"], "status": "PreviouslyAccepted"}
    await eventually(lambda: ledger.count("signup:bo") == 1, what="the workflow ran")
    assert_error(await ingress.client.post("/Signup/bo/run", json="Bo"), 409, source="invocation")
    assert ledger.count("signup:bo") == 1


async def test_idempotency_key_is_refused_on_a_workflow_run(ingress):
    response = await ingress.client.post("/Signup/cy/run", json="Cy", headers={"idempotency-key": "k"})
    assert_error(response, 400, "cannot use the idempotency key with workflow handlers")
    assert await invocation_count(ingress.engine) == 0, "the refusal came before the workflow run existed"


# -- request headers and the request seen by the handler ---------------------------------------------


async def test_headers_reach_the_handler(ingress):
    response = await ingress.client.post(
        "/Steps/whoami?lang=en&x=a%20b",
        headers={"x-my-header": "hello", "authorization": "Bearer t", "idempotency-key": "hdr"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == response.headers["x-restate-id"]
    headers = body["headers"]
    assert headers["x-my-header"] == "hello"
    assert headers["authorization"] == "Bearer t"
    assert headers["x-restate-ingress-path"] == "/Steps/whoami?lang=en&x=a%20b"
    for dropped in ("host", "connection", "idempotency-key", "idempotency-expires"):
        assert dropped not in headers

    response = await ingress.client.post("/restate/call/Steps/whoami")
    assert response.json()["headers"]["x-restate-ingress-path"] == "/restate/call/Steps/whoami"

    # keyed target: the path is recorded as received, still percent-encoded; the key is decoded
    response = await ingress.client.get("/Inspect/a%2Fb%20c/request?delay_not=1", headers={"x-trace": "t-1"})
    body = response.json()
    assert body["key"] == "a/b c" and body["id"] == response.headers["x-restate-id"]
    assert body["headers"]["x-restate-ingress-path"] == "/Inspect/a%2Fb%20c/request?delay_not=1"
    assert body["headers"]["x-trace"] == "t-1"


async def test_headers_must_be_visible_ascii(ingress):
    response = await ingress.client.post("/Steps/whoami", headers={"x-bin": b"caf\xc3\xa9"})
    assert_error(response, 400, "bad header x-bin")
    response = await ingress.client.post("/Effects/once", json="x", headers={"idempotency-key": b"\xff"})
    assert_error(response, 400, "bad header idempotency-key")


# -- input validation ----------------------------------------------------------------------------------


async def test_private_handler_is_refused_by_the_ingress_but_callable_from_handlers(ingress):
    client = ingress.client
    assert_error(await client.post("/Steps/private"), 400, "the invoked service is not public")
    assert_error(await client.post("/Steps/private/send"), 400, "the invoked service is not public")
    assert_error(await client.post("/restate/call/Steps/private"), 400, "not public")
    assert_error(await client.post("/restate/send/Steps/private"), 400, "not public")
    response = await client.post("/Steps/call_private")
    assert response.status_code == 200 and response.json() == "secret"


async def test_handler_without_input_accepts_only_an_empty_request(ingress):
    client = ingress.client
    body = assert_error(await client.post("/Steps/nothing", json=1), 400, "input validation error")
    assert "Expected body and content-type to be empty" in body["message"]
    response = await client.post("/Steps/nothing", headers={"content-type": "application/json"})
    assert_error(response, 400, "Expected body and content-type to be empty")
    response = await client.post("/Steps/nothing", content=b"x")  # a body without content-type
    assert_error(response, 400, "Expected body and content-type to be empty")
    assert_error(await client.post("/Steps/nothing/send", json=1), 400, "Expected body")


async def test_content_type_must_match(ingress):
    client = ingress.client
    response = await client.post("/Effects/echo", content=b'"x"', headers={"content-type": "text/plain"})
    assert_error(response, 400, "Content-type 'text/plain' does not match 'application/json'")
    response = await client.post("/Effects/echo", content=b'"x"')
    assert_error(response, 400, "Empty content-type")
    response = await client.post("/Effects/echo", headers={"content-type": "application/json"})
    assert_error(response, 400, "Empty body not allowed")
    # parameters are ignored; no body and no content-type means "no input"
    response = await client.post("/Effects/echo", content=b'"x"', headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 200 and response.json() == "x"
    response = await client.post("/Effects/echo")
    assert response.status_code == 200 and response.content == b""
    # a handler accepting */* takes any content type, and an empty body
    response = await client.post("/Steps/raw_echo", content=b"abc", headers={"content-type": "text/plain"})
    assert response.status_code == 200 and response.content == b"cba"
    response = await client.post("/Steps/raw_echo", headers={"content-type": "text/plain"})
    assert response.status_code == 200 and response.content == b""


async def test_malformed_json_and_wrong_shape_are_refused(ingress):
    client = ingress.client
    response = await client.post("/Effects/once", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(response, 400, "input validation error")
    response = await client.post("/Steps/greet_model", json={"times": 1})
    assert_error(response, 400, "name")
    response = await client.post("/Steps/greet_model", json={"name": "x", "times": "many"})
    assert_error(response, 400, "times")
    response = await client.post("/Steps/move/send", json={"x": 1})
    assert_error(response, 400, "y")


async def test_oversized_body_is_refused(clean_db, side_effects):
    async with serve(ingress_app.app, clean_db, max_body_size=1024) as served:
        client = served.client
        payload = b'"' + b"a" * 2048 + b'"'
        response = await client.post("/Steps/raw_echo", content=payload, headers={"content-type": "text/plain"})
        assert_error(response, 413, "1024 bytes")

        async def chunks() -> typing.AsyncIterator[bytes]:  # no content-length: counted while read
            for _ in range(4):
                yield b"a" * 512

        response = await client.post("/Steps/raw_echo", content=chunks(), headers={"content-type": "text/plain"})
        assert_error(response, 413, "1024 bytes")
        response = await client.post("/Steps/raw_echo", content=b"a" * 1024, headers={"content-type": "text/plain"})
        assert response.status_code == 200 and len(response.content) == 1024


# -- routing errors -----------------------------------------------------------------------------------


async def test_unknown_service_and_handler(ingress):
    client = ingress.client
    body = assert_error(await client.post("/Nope/handler"), 404, "service 'Nope' not found")
    assert body["code"] == 404
    assert_error(await client.post("/Steps/nope"), 404, "the service 'Steps' exists, but the handler 'nope' was not found")
    assert_error(await client.post("/Counter/k/nope"), 404, "handler 'nope' was not found")
    assert_error(await client.post("/Counter/k/nope/send"), 404, "handler 'nope' was not found")
    assert_error(await client.get("/"), 404)


async def test_bad_paths(ingress):
    client = ingress.client
    for path in ("/Steps", "/Counter/k", "/Steps/nothing/extra", "/Counter/k/add/send/x", "/Steps/nothing/send/"):
        assert_error(await client.post(path), 400, "bad path")


async def test_wrong_method(ingress):
    client = ingress.client
    for method in ("PUT", "DELETE", "PATCH"):
        response = await client.request(method, "/Steps/nothing")
        assert_error(response, 405, "method not allowed")
    assert_error(await client.delete("/restate/call/Counter/k/get"), 405)
    assert_error(await client.put("/Effects/once/send", json="x"), 405)
    assert_error(await client.post("/restate/health"), 405)
    assert await invocation_count(ingress.engine) == 0, "each refusal came before any invocation existed"


async def test_health(ingress):
    response = await ingress.client.get("/restate/health")
    assert response.status_code == 200
    assert response.json() == {"services": ["Counter", "Effects", "Inspect", "Signup", "Steps"]}


# -- failures of the invocation -------------------------------------------------------------------------


async def test_terminal_errors_carry_their_status_code(ingress):
    client = ingress.client
    response = await client.post("/Steps/fail", json="no coffee")
    body = assert_error(response, 418, source="invocation")
    assert body == {"code": 418, "message": "no coffee", "metadata": {"why": "teapot"}, "source": "invocation"}
    assert is_invocation_id(response.headers["x-restate-id"])

    response = await client.post("/Steps/run_terminal")
    assert assert_error(response, 402, source="invocation") == {"code": 402, "message": "card declined", "source": "invocation"}

    response = await client.post("/Effects/refuse", json="default")
    assert assert_error(response, 500, source="invocation") == {"code": 500, "message": "refused default", "source": "invocation"}
    assert is_invocation_id(response.headers["x-restate-id"])


async def test_an_empty_body_is_refused_when_the_input_may_not_be_none(ingress):
    """No body and no content-type: a handler whose input may be None gets None, another gets a
    400 before any invocation exists (it would only fail, and be retried, in the handler)."""
    refused = await ingress.client.post("/Effects/once")
    assert_error(refused, 400, "input validation error: Empty body not allowed")
    async with ingress.engine.store.pool.connection() as conn:
        count = await (await conn.execute("SELECT count(*) FROM restate.invocation WHERE handler = 'once'")).fetchone()
    assert count == (0,)
    accepted = await ingress.client.post("/Effects/echo")  # `value: typing.Any` may be None
    assert (accepted.status_code, accepted.content) == (200, b"")  # None, as restate-sdk writes it
