"""Every context method, through the real ingress against a real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from tests.apps import kitchen
from tests.support import ledger
from tests.support.polling import eventually, row
from tests.support.server import SUSPENDING_IDS, serve, suspending_modes


async def _json(response):
    return (await response).json()


async def _content(response):
    return (await response).content


@pytest.fixture(params=suspending_modes(0.5), ids=SUSPENDING_IDS)
async def ingress(clean_db, side_effects, request):
    async with serve(kitchen.app, clean_db, inactivity_timeout=request.param) as served:
        yield served


async def test_run_results_are_journaled_and_never_rerun(ingress):
    response = await ingress.client.post("/Steps/three", json="t1")
    assert response.status_code == 200
    assert response.json() == ["t1-0", "t1-1", "t1-2"]
    # the first attempt failed after step 1; the retry replayed steps 0 and 1 from the journal
    assert ledger.steps("t1") == ["step0", "step1", "step2"]


async def test_run_retries_in_place_until_success(ingress):
    response = await ingress.client.post("/Steps/run_retries", json=3)
    assert response.json() == 3


async def test_run_exhausted_attempts_become_a_terminal_error(ingress):
    response = await ingress.client.post("/Steps/run_exhausted", json=None)
    assert response.json() == "caught 500: always broken"


async def test_terminal_error_inside_run_is_recorded_and_returned(ingress):
    response = await ingress.client.post("/Steps/run_terminal")
    assert response.status_code == 402
    assert response.json() == {"code": 402, "message": "card declined", "source": "invocation"}


async def test_random_uuid_and_time_are_stable_across_attempts(ingress):
    response = await ingress.client.post("/Steps/deterministic")
    assert response.status_code == 200
    invocation_id = response.headers["x-restate-id"]
    seen = ledger.steps(invocation_id)
    assert len(seen) == 2 and seen[0] == seen[1]  # both attempts saw the same values
    assert repr(response.json()) == seen[0]


async def test_request_carries_id_headers_and_body(ingress):
    response = await ingress.client.post("/Steps/whoami", headers={"x-my-header": "hello"})
    body = response.json()
    assert body["id"] == response.headers["x-restate-id"]
    assert body["headers"]["x-my-header"] == "hello"
    assert body["headers"]["x-restate-ingress-path"] == "/Steps/whoami"
    assert "host" not in body["headers"]


async def test_pydantic_dataclass_and_bytes_serdes(ingress):
    response = await ingress.client.post("/Steps/greet_model", json={"name": "ada", "times": 1})
    assert response.json() == {"name": "ADA", "times": 2}
    response = await ingress.client.post("/Steps/move", json={"x": 1, "y": 2})
    assert response.json() == {"x": 2, "y": 3}
    response = await ingress.client.post(
        "/Steps/raw_echo", content=b"\x00\x01\xff", headers={"content-type": "application/octet-stream"}
    )
    assert response.content == b"\xff\x01\x00"
    assert response.headers["content-type"] == "application/octet-stream"
    response = await ingress.client.post("/Steps/nothing")
    assert response.status_code == 200 and response.content == b""


async def test_sleep(ingress):
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await ingress.client.post("/Steps/nap", json=300)
    assert response.json() == "rested"
    assert loop.time() - started >= 0.3


async def test_long_sleep_suspends_and_resumes(ingress):
    # inactivity_timeout is 0.5 s, so this invocation suspends and is resumed by its timer
    response = await ingress.client.post("/Steps/nap", json=1500)
    assert response.json() == "rested"


async def test_state_get_set_clear_and_keys(ingress):
    client = ingress.client
    assert (await client.post("/Counter/k1/add", json=5)).json() == 5
    assert (await client.post("/Counter/k1/add", json=2)).json() == 7
    assert (await client.get("/Counter/k1/get")).json() == 7
    assert (await client.get("/Counter/other/get")).json() == 0
    assert (await client.post("/Counter/k1/set_many", json={"a": 1, "b": [2]})).json() == ["a", "b", "count"]
    assert (await client.get("/Counter/k1/keys")).json() == ["a", "b", "count"]
    assert (await client.post("/Counter/k1/clear", json="a")).json() == ["b", "count"]
    assert (await client.post("/Counter/k1/clear_all")).json() == []
    assert (await client.get("/Counter/k1/get")).json() == 0
    assert (await client.post("/Counter/some%2Fkey/whose")).json() == "some/key"


async def test_state_set_before_terminal_error_is_kept(ingress):
    response = await ingress.client.post("/Counter/failing/add_then_fail", json=1)
    assert response.status_code == 500
    assert response.json()["message"] == "failing"
    assert (await ingress.client.get("/Counter/failing/get")).json() == 1


async def test_shared_handler_cannot_write_state(clean_db, side_effects):
    async with serve(kitchen.app, clean_db) as served:
        response = await served.client.post("/Counter/k/bad_write/send")
        assert response.status_code == 202
        invocation_id = response.json()["invocationId"]
        row = await wait_for_failure(served, invocation_id)
        assert "cannot write state" in row["last_failure"]


async def wait_for_failure(served, invocation_id, code=None):
    """The task row once it records a failure (with `code`, if given)."""

    async def failure():
        found = await row(served.engine, "SELECT status, last_failure, last_failure_code, attempt FROM restate.task "
                                         "WHERE invocation_id = %s", invocation_id)
        if found is not None and found[1] is not None and (code is None or found[2] == code):
            return {"status": found[0], "last_failure": found[1], "last_failure_code": found[2], "attempt": found[3]}
        return None

    return await eventually(failure, what=f"{invocation_id} to fail with code {code}")


async def test_non_determinism_is_reported_with_code_570(ingress):
    response = await ingress.client.post("/Steps/nondeterministic/send")
    invocation_id = response.json()["invocationId"]
    row = await wait_for_failure(ingress, invocation_id, code=570)
    assert "mismatch" in row["last_failure"]
    assert "Run(name='first')" in row["last_failure"] and "Sleep()" in row["last_failure"]


async def test_calls_three_services_deep(ingress):
    response = await ingress.client.post("/First/chain", json=2)
    assert response.json() == 211


async def test_terminal_error_propagates_through_nested_calls(ingress):
    response = await ingress.client.post("/First/fail", json="out of stock")
    assert response.status_code == 422
    assert response.json() == {"code": 422, "message": "out of stock", "metadata": {"depth": "3"}, "source": "invocation"}
    assert ledger.count(response.headers["x-restate-id"]) == 1


async def test_one_way_sends_arrive_in_issue_order(ingress):
    assert (await ingress.client.post("/First/fan_out", json="fan")).json() == "sent"
    items = await eventually(lambda: _json(ingress.client.get("/Counter/fan/items")), [f"item{i}" for i in range(5)])
    assert items == [f"item{i}" for i in range(5)]


async def test_send_with_idempotency_key_runs_once(ingress):
    assert (await ingress.client.post("/First/send_once", json="idem")).json() == "sent twice"
    assert await eventually(lambda: _json(ingress.client.get("/Counter/idem/get")), 1) == 1
    # no second execution can come: both sends are the one invocation, and it has completed
    sends = await row(ingress.engine, "SELECT count(*), bool_and(status = 'completed') FROM restate.invocation "
                                      "WHERE service = 'Counter' AND key = 'idem' AND handler = 'add'")
    assert sends == (1, True)
    assert (await ingress.client.get("/Counter/idem/get")).json() == 1


async def test_generic_call_and_send(ingress):
    assert (await ingress.client.post("/First/generic", json="g")).json() == "7"
    assert await eventually(lambda: _json(ingress.client.get("/Counter/g/get")), 8) == 8


async def test_object_call_from_a_service(ingress):
    assert (await ingress.client.post("/First/call_object", json="oc")).json() == 2


async def test_private_handler_is_callable_from_handlers_only(ingress):
    response = await ingress.client.post("/Steps/private")
    assert response.status_code == 400
    assert response.json()["message"] == "the invoked service is not public"
    assert (await ingress.client.post("/Steps/call_private")).json() == "secret"


async def test_service_send_with_and_without_delay(ingress):
    response = await ingress.client.post("/First/notify", json="note")
    sent_id = response.json()
    assert sent_id.startswith("inv_1")
    seen = await eventually(lambda: (ledger.count("note"), ledger.count("note-later")), (1, 1))
    assert seen == (1, 1)
    async with ingress.engine.store.pool.connection() as conn:
        cur = await conn.execute("SELECT service, handler, invoked_by FROM restate.invocation WHERE id = %s", (sent_id,))
        assert await cur.fetchone() == ("Third", "record", "service")


async def test_workflow_call_and_send_from_a_handler(ingress):
    assert (await ingress.client.post("/First/workflows", json="wf1")).json() == "welcome wf1@example.com"
    assert (await ingress.client.post("/Signup/wf1/stage")).json() == "done"
    # an empty body (None) until the sent workflow has finished
    stage = await eventually(lambda: _content(ingress.client.post("/Signup/wf1-sent/stage")), b'"done"')
    assert stage == b'"done"'


async def _paused(ingress, invocation_id):
    task = await row(ingress.engine, "SELECT status, attempt, last_failure FROM restate.task WHERE invocation_id = %s",
                     invocation_id)
    return task if task is not None and task[0] == "paused" else None


async def test_retry_policy_pauses_after_max_attempts(ingress):
    invocation_id = (await ingress.client.post("/Flaky/always_pauses/send")).json()["invocationId"]
    task = await eventually(lambda: _paused(ingress, invocation_id), what=f"{invocation_id} to pause")
    assert task[0] == "paused" and task[1] == 3
    assert "still broken" in task[2]
    assert ledger.count(invocation_id) == 3


async def test_retry_policy_kill_fails_the_invocation_with_the_last_error(ingress):
    response = await ingress.client.post("/Flaky/killed")
    assert response.status_code == 500
    assert response.json()["message"] == "hopeless"
    assert ledger.count(response.headers["x-restate-id"]) == 2


async def test_handler_inactivity_timeout_suspends_early(ingress):
    invocation_id = (await ingress.client.post("/Flaky/quick_to_suspend/send", json=1500)).json()["invocationId"]
    statuses = set()

    async def finished():  # records every status seen on the way
        task = await row(ingress.engine, "SELECT status FROM restate.task WHERE invocation_id = %s", invocation_id)
        if task is not None:
            statuses.add(task[0])
        return task is None

    assert await eventually(finished) is True
    assert "suspended" in statuses
    result = await ingress.engine.results.wait(invocation_id)
    assert result.output == b'"woke"'
