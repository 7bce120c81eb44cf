"""The scenarios of Restate's SDK conformance suite (`sdk-tests`, restate.md section 6.3) against
our app written from its service contracts (tests/apps/conformance), through the real ingress and
admin API, in three configurations: default, always suspending (inactivity timeout 0) and three
worker processes, as Restate's suites `default`, `alwaysSuspending` and `threeNodes` run them.
Scenario numbers are the reference's; 19, 39 and 44 (a runtime killed or stopped) run with the
worker processes.

Left out: 15 (Custom: shell commands of Restate's CI), 24 (request signing, an SDK endpoint's
concern: tests/endpoints), 34 (scope concurrency limits need Restate's JVM-hosted services).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import typing

import psycopg
import pytest
from psycopg import sql

from restate_pg.store.migrate import upgrade
from tests.apps import conformance
from tests.support.polling import eventually, row
from tests.support.processes import WorkerProcess
from tests.support.server import Served, serve


MODES = ("default", "always-suspending", "three-workers")
APP = "tests.apps.conformance:app"


@pytest.fixture(scope="module", params=MODES)
async def ingress(database_url, request):
    """One server per configuration for the whole module, in a schema of its own (the scenarios
    use fresh keys, as Restate's do, so they need no emptied tables; starting a server per test
    would double the module's time). "three-workers" runs the handlers in three `restate-pg
    worker` processes behind an ingress that runs none (Restate's threeNodes suite)."""
    schema = f"conformance_{secrets.token_hex(4)}"
    upgrade(database_url, schema)
    workers: typing.List[WorkerProcess] = []
    try:
        options: typing.Dict[str, typing.Any] = {"inactivity_timeout": 0.0 if request.param == "always-suspending" else 1.0}
        if request.param == "three-workers":
            workers.extend(worker(database_url, schema) for _ in range(3))
            options = {"run_handlers": False, "poll_interval": 0.1}
        async with serve(conformance.app, database_url, admin=True, schema=schema, **options) as served:
            served.mode = request.param  # type: ignore[attr-defined]
            served.always_suspending = request.param == "always-suspending"  # type: ignore[attr-defined]
            served.workers = workers  # type: ignore[attr-defined]
            served.schema = schema  # type: ignore[attr-defined]
            yield served
    finally:
        for process in workers:
            process.stop()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def worker(database_url: str, schema: str) -> WorkerProcess:
    return WorkerProcess(APP, database_url, extra=("--schema", schema)).start()


def key() -> str:
    return secrets.token_hex(6)


async def post(ingress: Served, path: str, body: typing.Any = None, **headers: str) -> typing.Any:
    response = await ingress.client.post(path, json=body, headers=headers)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json() if response.content else None  # a void handler answers an empty body


async def send(ingress: Served, path: str, body: typing.Any = None) -> str:
    response = await ingress.client.post(f"{path}/send", json=body)
    assert response.status_code == 202, response.text
    return response.json()["invocationId"]


async def failure(ingress: Served, path: str, body: typing.Any = None) -> dict:
    response = await ingress.client.post(path, json=body, headers={"idempotency-key": key()})
    assert response.status_code >= 400, response.text
    return response.json()


def proxied(service: str, handler: str, message: typing.Any, object_key: typing.Optional[str] = None,
            **extra: typing.Any) -> dict:
    return {"serviceName": service, "handlerName": handler, "virtualObjectKey": object_key,
            "message": list(json.dumps(message).encode()), **extra}


# -- CallOrdering (1) -------------------------------------------------------------------------

@pytest.mark.parametrize("sends", [(True, False, False), (False, True, False), (True, True, False)],
                         ids=lambda s: "-".join("send" if x else "call" for x in s))
@pytest.mark.slow
async def test_1_ordering(ingress, sends):
    target = key()
    calls = [{"proxyRequest": proxied("ListObject", "append", str(i), target), "oneWayCall": one_way,
              "awaitAtTheEnd": True} for i, one_way in enumerate(sends)]
    await post(ingress, "/Proxy/manyCalls", calls)
    assert await post(ingress, f"/ListObject/{target}/clear") == ["0", "1", "2"]


# -- Cancellation (2, 3) ----------------------------------------------------------------------

async def _cancelled(ingress: Served, target: str, cancel: typing.Callable[[], typing.Awaitable[None]]) -> None:
    await eventually(lambda: post(ingress, f"/AwakeableHolder/{target}/hasAwakeable"), True,
                     what="the blocking service to hold its awakeable")
    await post(ingress, f"/AwakeableHolder/{target}/unlock", "cancel")

    async def verified() -> bool:
        await cancel()
        try:
            response = await asyncio.wait_for(ingress.client.post(f"/CancelTestRunner/{target}/verifyTest"), 1)
        except asyncio.TimeoutError:
            return False  # the runner still holds the key
        return response.json() is True

    await eventually(verified, what="the runner to see its call cancelled")
    assert await post(ingress, f"/CancelTestBlockingService/{target}/isUnlocked") is None


@pytest.mark.parametrize("operation", ["CALL", "SLEEP", "AWAKEABLE"])
async def test_2_cancel_from_admin_api(ingress, operation):
    target = key()
    invocation_id = await send(ingress, f"/CancelTestRunner/{target}/startTest", operation)

    async def cancel() -> None:
        response = await ingress.client.patch(f"/admin/invocations/{invocation_id}/cancel")
        assert response.status_code in (200, 202, 404, 409), response.text

    await _cancelled(ingress, target, cancel)


@pytest.mark.parametrize("operation", ["CALL", "SLEEP", "AWAKEABLE"])
async def test_3_cancel_from_context(ingress, operation):
    target = key()
    invocation_id = await post(ingress, "/Proxy/oneWayCall", proxied("CancelTestRunner", "startTest", operation, target))

    async def cancel() -> None:
        await post(ingress, "/TestUtilsService/cancelInvocation", invocation_id)

    await _cancelled(ingress, target, cancel)


# -- Combinators (4-14) and Signals (35, 36) --------------------------------------------------

def program(*commands: dict) -> dict:
    return {"commands": list(commands)}


def awakeable(name: str) -> dict:
    return {"type": "createAwakeable", "awakeableKey": name}


def signal(name: str) -> dict:
    return {"type": "createSignal", "signalName": name}


def run_returns(value: str) -> dict:
    return {"type": "runReturns", "value": value}


def run_fails(reason: str) -> dict:
    return {"type": "runThrowTerminalException", "reason": reason}


async def interpret(ingress: Served, commands: dict) -> typing.Tuple[str, str]:
    """Send the program to a fresh interpreter key; (its key, its invocation id)."""
    target = key()
    return target, await send(ingress, f"/VirtualObjectCommandInterpreter/{target}/interpretCommands", commands)


async def attach(ingress: Served, invocation_id: str) -> typing.Tuple[int, typing.Any]:
    response = await ingress.client.get(f"/restate/invocation/{invocation_id}/attach")
    return response.status_code, response.json() if response.content else None


async def test_4_awakeable_or_timeout_using_await_any(ingress):
    target = key()
    result = await post(ingress, f"/VirtualObjectCommandInterpreter/{target}/interpretCommands", program(
        {"type": "awaitAny", "commands": [awakeable("awk"), {"type": "sleep", "timeoutMillis": 100}]}))
    assert result == "sleep"


async def test_5_awakeable_or_timeout_using_the_timeout_command(ingress):
    message = (await failure(ingress, f"/VirtualObjectCommandInterpreter/{key()}/interpretCommands", program(
        {"type": "awaitAwakeableOrTimeout", "awakeableKey": "awk", "timeoutMillis": 100})))["message"]
    assert "await-timeout" in message


async def test_6_first_successful_completed_awakeable(ingress):
    target, invocation_id = await interpret(ingress, program({"type": "awaitAnySuccessful", "commands": [
        awakeable("awk0"), run_fails("run0"), awakeable("awk1"), run_fails("run1"), awakeable("awk2"),
        run_fails("run2")]}))
    for name in ("awk0", "awk1", "awk2"):
        await eventually(lambda name=name: post(ingress, f"/VirtualObjectCommandInterpreter/{target}/hasAwakeable", name),
                         True, what=f"{name} to be registered")
    await post(ingress, f"/VirtualObjectCommandInterpreter/{target}/rejectAwakeable", {"awakeableKey": "awk2", "reason": "rejected"})
    await post(ingress, f"/VirtualObjectCommandInterpreter/{target}/resolveAwakeable", {"awakeableKey": "awk1", "value": "awk1-result"})
    assert await attach(ingress, invocation_id) == (200, "awk1-result")


async def _signal(ingress: Served, invocation_id: str, name: str, value: typing.Optional[str] = None,
                  reason: typing.Optional[str] = None) -> None:
    if reason is None:
        await post(ingress, "/TestUtilsService/resolveSignal",
                   {"invocationId": invocation_id, "signalName": name, "value": value})
    else:
        await post(ingress, "/TestUtilsService/rejectSignal",
                   {"invocationId": invocation_id, "signalName": name, "reason": reason})


SIGNALS = [signal("sig0"), signal("sig1"), signal("sig2")]


async def test_7_signal_first_successful_or_all_failed(ingress):
    _, invocation_id = await interpret(ingress, program({"type": "awaitAnySuccessful", "commands": SIGNALS}))
    await _signal(ingress, invocation_id, "sig0", reason="err0")
    await _signal(ingress, invocation_id, "sig2", reason="err2")
    await _signal(ingress, invocation_id, "sig1", "success1")
    assert await attach(ingress, invocation_id) == (200, "success1")


async def test_8_signal_all_successful_or_first_failed(ingress):
    _, invocation_id = await interpret(ingress, program({"type": "awaitAllSucceededOrFirstFailed", "commands": SIGNALS}))
    for i in range(3):
        await _signal(ingress, invocation_id, f"sig{i}", f"val{i}")
    assert await attach(ingress, invocation_id) == (200, "val0|val1|val2")


async def test_9_signal_all_completed(ingress):
    _, invocation_id = await interpret(ingress, program({"type": "awaitAllCompleted", "commands": SIGNALS}))
    await _signal(ingress, invocation_id, "sig0", "val0")
    await _signal(ingress, invocation_id, "sig1", reason="err1")
    await _signal(ingress, invocation_id, "sig2", "val2")
    assert await attach(ingress, invocation_id) == (200, "ok:val0|err:err1|ok:val2")


async def test_10_signal_first_completed(ingress):
    _, invocation_id = await interpret(ingress, program({"type": "awaitAny", "commands": SIGNALS}))
    await _signal(ingress, invocation_id, "sig1", "first")
    assert await attach(ingress, invocation_id) == (200, "first")


async def test_11_mixed_run_wins_race_against_signal(ingress):
    _, invocation_id = await interpret(ingress, program(
        {"type": "awaitFirstCompleted", "commands": [signal("never"), run_returns("runval")]}))
    assert await attach(ingress, invocation_id) == (200, "runval")


async def test_12_mixed_signal_wins_after_run_fails(ingress):
    _, invocation_id = await interpret(ingress, program(
        {"type": "awaitFirstSucceededOrAllFailed", "commands": [run_fails("fail"), signal("sig")]}))
    await _signal(ingress, invocation_id, "sig", "sigval")
    assert await attach(ingress, invocation_id) == (200, "sigval")


async def test_13_mixed_all_succeeded_run_and_signal(ingress):
    _, invocation_id = await interpret(ingress, program(
        {"type": "awaitAllSucceededOrFirstFailed", "commands": [run_returns("runval"), signal("sig")]}))
    await _signal(ingress, invocation_id, "sig", "sigval")
    assert await attach(ingress, invocation_id) == (200, "runval|sigval")


async def test_14_mixed_all_completed_run_signal_and_failed_run(ingress):
    _, invocation_id = await interpret(ingress, program(
        {"type": "awaitAllCompleted", "commands": [run_returns("runval"), signal("sig"), run_fails("fail")]}))
    await _signal(ingress, invocation_id, "sig", "sigval")
    assert await attach(ingress, invocation_id) == (200, "ok:runval|ok:sigval|err:fail")


async def test_35_signal_resolve(ingress):
    _, invocation_id = await interpret(ingress, program({"type": "awaitOne", "command": signal("mysignal")}))
    await _signal(ingress, invocation_id, "mysignal", "hello")
    assert await attach(ingress, invocation_id) == (200, "hello")


async def test_36_signal_reject(ingress):
    _, invocation_id = await interpret(ingress, program({"type": "awaitOne", "command": signal("mysignal")}))
    await _signal(ingress, invocation_id, "mysignal", reason="boom")
    status, body = await attach(ingress, invocation_id)
    assert status >= 400 and "boom" in body["message"]


# -- Ingress (16, 17) -------------------------------------------------------------------------

async def test_16_headers_pass_through(ingress):
    headers = await post(ingress, "/TestUtilsService/echoHeaders", None, **{"x-my-custom-header": "x-my-custom-value"})
    assert headers["x-my-custom-header"] == "x-my-custom-value"


async def test_17_raw_handler(ingress):
    payload = secrets.token_bytes(100)
    response = await ingress.client.post("/TestUtilsService/rawEcho", content=payload,
                                         headers={"content-type": "application/octet-stream"})
    assert (response.status_code, response.content) == (200, payload)


# -- KillInvocation (18) ----------------------------------------------------------------------

async def test_18_kill(ingress):
    target = key()
    invocation_id = await send(ingress, f"/KillTestRunner/{target}/startCallTree")
    await eventually(lambda: post(ingress, f"/AwakeableHolder/{target}/hasAwakeable"), True,
                     what="the singleton to hand out its awakeable")
    await post(ingress, f"/AwakeableHolder/{target}/unlock", "")

    async def killed() -> bool:
        response = await ingress.client.patch(f"/admin/invocations/{invocation_id}/kill")
        return response.status_code in (200, 202)

    await eventually(killed, what="the kill to be accepted")
    assert await post(ingress, f"/KillTestSingleton/{target}/isUnlocked") is None


# -- NonDeterminismErrors (20-23): alwaysSuspending only, as in Restate -------------------------

@pytest.mark.parametrize("handler", ["eitherSleepOrCall", "callDifferentMethod",
                                     "backgroundInvokeWithDifferentTargets", "setDifferentKey"])
async def test_20_23_non_determinism(ingress, handler):
    if not ingress.always_suspending:
        return  # an attempt that waits in memory is never replayed: Restate runs these suspending only
    await post(ingress, f"/Counter/{handler}/add", 1)
    response = await ingress.client.post(f"/NonDeterministic/{handler}/{handler}", json=None)
    assert response.status_code >= 400, response.text
    assert await post(ingress, f"/Counter/{handler}/get") == 1


# -- RunFlush (25) and RunRetry (26-28) -------------------------------------------------------

async def test_25_run_flush(ingress):
    # Restate acknowledges a run's result with a notification, which an always-suspending attempt
    # waits for by suspending, so the final attempt replays all three (0). Here a run's result is
    # durable when its flush commits, within the attempt: the first attempt runs each once (3).
    assert await post(ingress, "/TestUtilsService/countExecutedSideEffects", 3) == 3


async def test_26_run_retry_with_success(ingress):
    assert await post(ingress, f"/Failing/{key()}/sideEffectSucceedsAfterGivenAttempts", 3) >= 3


async def test_27_run_retry_executed_only_once(ingress):
    assert await post(ingress, f"/Failing/{key()}/sideEffectFailsAfterGivenAttempts", 1) >= 1


async def test_28_run_retry_with_exhausted_attempts(ingress):
    assert await post(ingress, f"/Failing/{key()}/sideEffectFailsAfterGivenAttempts", 3) >= 3


# -- ServiceToServiceCommunication (29-33) ----------------------------------------------------

async def test_29_regular_call(ingress):
    answer = await post(ingress, "/Proxy/call", proxied("TestUtilsService", "uppercaseEcho", "ping"))
    assert json.loads(bytes(answer)) == "PING"


async def test_30_one_way_call(ingress):
    target = key()
    await post(ingress, "/Proxy/oneWayCall", proxied("Counter", "add", 1, target))
    assert await eventually(lambda: post(ingress, f"/Counter/{target}/get"), 1) == 1


async def test_31_one_way_call_with_idempotency_key(ingress):
    target, idempotency_key = key(), key()
    request = proxied("Counter", "add", 1, target, idempotencyKey=idempotency_key)
    first = await post(ingress, "/Proxy/oneWayCall", request)
    assert await post(ingress, "/Proxy/oneWayCall", request) == first  # the same invocation
    assert await eventually(lambda: post(ingress, f"/Counter/{target}/get"), 1) == 1
    output = await ingress.client.get(f"/restate/invocation/Counter/{target}/add/{idempotency_key}/output")
    assert output.json() == {"oldValue": 0, "newValue": 1}


async def test_32_call_with_idempotency_key(ingress):
    target, idempotency_key = key(), key()
    request = proxied("Counter", "add", 1, target, idempotencyKey=idempotency_key)
    for _ in range(2):
        assert json.loads(bytes(await post(ingress, "/Proxy/call", request))) == {"oldValue": 0, "newValue": 1}
    assert await post(ingress, f"/Counter/{target}/get") == 1
    output = await ingress.client.get(f"/restate/invocation/Counter/{target}/add/{idempotency_key}/output")
    assert output.json() == {"oldValue": 0, "newValue": 1}


@pytest.mark.slow
async def test_33_one_way_call_with_delay(ingress):
    if ingress.mode != "default":
        return  # delays are kept by the database, not by an attempt: one configuration suffices
    target, started = key(), time.monotonic()
    for _ in range(10):
        await post(ingress, "/Proxy/oneWayCall", proxied("Counter", "add", 1, target, delayMillis=5000))
    assert await eventually(lambda: post(ingress, f"/Counter/{target}/get"), 10, timeout_s=30) == 10
    assert 5 <= time.monotonic() - started < 30


# -- Sleep (37, 38) ---------------------------------------------------------------------------

async def test_37_sleep(ingress):
    started = time.monotonic()
    assert await post(ingress, f"/VirtualObjectCommandInterpreter/{key()}/interpretCommands",
                      program({"type": "awaitOne", "command": {"type": "sleep", "timeoutMillis": 10}})) == "sleep"
    assert time.monotonic() - started >= 0.01


async def test_38_many_sleeps(ingress):
    rng = secrets.SystemRandom()
    sleeps = [program({"type": "awaitAllCompleted", "commands": [
        {"type": "sleep", "timeoutMillis": rng.randint(10, 50)} for _ in range(20)]}) for _ in range(50)]
    results = await asyncio.wait_for(asyncio.gather(*(
        post(ingress, f"/VirtualObjectCommandInterpreter/{key()}/interpretCommands", p) for p in sleeps)), 60)
    assert results == ["|".join(["ok:sleep"] * 20)] * 50


# -- State (41-43) ----------------------------------------------------------------------------

async def test_41_add(ingress):
    target = key()
    assert await post(ingress, f"/Counter/{target}/add", 1) == {"oldValue": 0, "newValue": 1}
    assert await post(ingress, f"/Counter/{target}/add", 2) == {"oldValue": 1, "newValue": 3}


async def test_42_proxy_one_way_add(ingress):
    target = key()
    for _ in range(3):
        await post(ingress, "/Proxy/oneWayCall", proxied("Counter", "add", 1, target))
    assert await eventually(lambda: post(ingress, f"/Counter/{target}/get"), 3) == 3


async def test_43_list_state_and_clear_all(ingress):
    target = key()
    await post(ingress, f"/MapObject/{target}/set", {"key": "my-key-0", "value": "my-value-0"})
    await post(ingress, f"/MapObject/{target}/set", {"key": "my-key-1", "value": "my-value-1"})
    await post(ingress, f"/MapObject/{target}1/set", {"key": "my-key-2", "value": "my-value-2"})
    cleared = await post(ingress, f"/MapObject/{target}/clearAll")
    assert sorted(entry["key"] for entry in cleared) == ["my-key-0", "my-key-1"]
    assert await post(ingress, f"/MapObject/{target}/get", "my-key-0") == ""
    assert await post(ingress, f"/MapObject/{target}/get", "my-key-1") == ""
    assert await post(ingress, f"/MapObject/{target}1/get", "my-key-2") == "my-value-2"


# -- UserErrors (45-54) -----------------------------------------------------------------------

METADATA = {"key1": "value1", "key2": "value2"}


@pytest.mark.parametrize("times", [1, 3], ids=["once", "several-times"])
@pytest.mark.parametrize("metadata", [None, METADATA], ids=["plain", "with-metadata"])
async def test_45_46_49_50_terminally_failing_call(ingress, times, metadata):
    for _ in range(times):
        body = await failure(ingress, f"/Failing/{key()}/terminallyFailingCall",
                             {"errorMessage": "my error", "metadata": metadata})
        assert "my error" in body["message"]
        if metadata:
            assert metadata.items() <= body["metadata"].items()


@pytest.mark.parametrize("metadata", [None, METADATA], ids=["plain", "with-metadata"])
async def test_47_51_internal_call_failure_propagation(ingress, metadata):
    body = await failure(ingress, f"/Failing/{key()}/callTerminallyFailingCall",
                         {"errorMessage": "propagated error", "metadata": metadata})
    assert "propagated error" in body["message"]
    if metadata:
        assert metadata.items() <= body["metadata"].items()


@pytest.mark.parametrize("metadata", [None, METADATA], ids=["plain", "with-metadata"])
async def test_48_52_side_effect_with_terminal_error(ingress, metadata):
    body = await failure(ingress, f"/Failing/{key()}/terminallyFailingSideEffect",
                         {"errorMessage": "failed side effect", "metadata": metadata})
    assert "failed side effect" in body["message"]
    if metadata:
        assert metadata.items() <= body["metadata"].items()


async def test_53_set_state_then_fail_should_persist_state(ingress):
    target = f"my-failure-counter-{key()}"
    assert target in (await failure(ingress, f"/Counter/{target}/addThenFail", 1))["message"]
    assert await post(ingress, f"/Counter/{target}/get") == 1


async def test_54_invocation_with_eventual_success(ingress):
    assert await post(ingress, f"/Failing/{key()}/failingCallWithEventualSuccess") == 4


# -- WorkflowAPI (55) -------------------------------------------------------------------------

async def test_55_workflow_set_and_resolve(ingress):
    workflow = key()
    sent = await ingress.client.post(f"/BlockAndWaitWorkflow/{workflow}/run/send", json="Francesco")
    assert (sent.status_code, sent.json()["status"]) == (202, "Accepted")
    await eventually(lambda: post(ingress, f"/BlockAndWaitWorkflow/{workflow}/getState"), "Francesco")
    await post(ingress, f"/BlockAndWaitWorkflow/{workflow}/unblock", "Till")
    attached = await ingress.client.get(f"/restate/workflow/BlockAndWaitWorkflow/{workflow}/attach")
    assert attached.json() == "Till"
    output = await ingress.client.get(f"/restate/workflow/BlockAndWaitWorkflow/{workflow}/output")
    assert output.json() == "Till"
    again = await ingress.client.post(f"/BlockAndWaitWorkflow/{workflow}/run/send", json="Francesco")
    assert again.json() == {"invocationId": sent.json()["invocationId"], "status": "PreviouslyAccepted"}
    assert (await ingress.client.get(f"/restate/workflow/BlockAndWaitWorkflow/{workflow}/output")).json() == "Till"


# -- KillRuntime (19), StopRuntime (44), SleepWithFailures (39, 40): worker processes ---------

@pytest.mark.slow
async def test_19_39_40_44_state_and_sleeps_survive_the_runtime_killed_then_stopped(ingress):
    """19 and 39: every worker SIGKILLed and restarted; 44 and 40: then SIGTERMed and restarted;
    the counter keeps its state throughout, and a 4 s sleep under way completes (in one test, so
    that the two restarts serve all four scenarios)."""
    if ingress.mode != "three-workers":
        return  # the runtime of the other configurations is this test process
    target, sleeper = key(), key()
    started = time.monotonic()
    sleeping = asyncio.ensure_future(post(ingress, f"/VirtualObjectCommandInterpreter/{sleeper}/interpretCommands",
                                          program({"type": "awaitOne", "command": {"type": "sleep", "timeoutMillis": 4000}})))
    try:
        assert await post(ingress, f"/Counter/{target}/add", 1) == {"oldValue": 0, "newValue": 1}
        await eventually(lambda: _sleeping(ingress, sleeper), True, what="the sleep to be journaled")
        await asyncio.to_thread(_restart, ingress, "kill")
        assert await post(ingress, f"/Counter/{target}/add", 2, **{"idempotency-key": key()}) == \
            {"oldValue": 1, "newValue": 3}
        await asyncio.to_thread(_restart, ingress, "terminate")
        assert await post(ingress, f"/Counter/{target}/add", 3, **{"idempotency-key": key()}) == \
            {"oldValue": 3, "newValue": 6}
        assert await asyncio.wait_for(sleeping, 60) == "sleep"
    finally:
        sleeping.cancel()
    assert time.monotonic() - started >= 4


async def _sleeping(ingress: Served, object_key: str) -> bool:
    schema = ingress.schema  # type: ignore[attr-defined]
    found = await row(ingress.engine, f"SELECT count(*) FROM {schema}.journal j JOIN {schema}.invocation i"
                      " ON i.id = j.invocation_id WHERE i.key = %s AND j.entry_type = 'Sleep'", object_key)
    return bool(found and found[0])


def _restart(ingress: Served, stop: str) -> None:
    """Stop every worker process (SIGKILL, or SIGTERM and wait), then start as many again."""
    workers: typing.List[WorkerProcess] = ingress.workers  # type: ignore[attr-defined]
    for process in workers:
        process.kill() if stop == "kill" else process.stop()
    database_url = workers[0].args[workers[0].args.index("--database-url") + 1]
    workers[:] = [worker(database_url, ingress.schema) for _ in workers]  # type: ignore[attr-defined]
