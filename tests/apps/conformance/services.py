"""The conformance services other than the command interpreter (`interpreter.py`)."""

from __future__ import annotations

import collections
import typing
from datetime import timedelta

import restate_pg as restate
from restate_pg import (
    Context,
    InvocationRetryPolicy,
    ObjectContext,
    ObjectSharedContext,
    RunOptions,
    TerminalError,
    WorkflowContext,
    WorkflowSharedContext,
)
from restate_pg.serde import BytesSerde

#: Process-global counters the contract asks for (attempts seen across retries, by purpose).
counters: collections.Counter[str] = collections.Counter()

# -- Counter, ListObject, MapObject -----------------------------------------------------------

counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, value: int) -> dict:
    old = await ctx.get("counter", type_hint=int) or 0
    ctx.set("counter", old + value)
    return {"oldValue": old, "newValue": old + value}


@counter.handler(name="addThenFail")
async def add_then_fail(ctx: ObjectContext, value: int) -> None:
    old = await ctx.get("counter", type_hint=int) or 0
    ctx.set("counter", old + value)
    raise TerminalError(ctx.key())


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("counter", type_hint=int) or 0


@counter.handler()
async def reset(ctx: ObjectContext) -> None:
    ctx.clear("counter")


list_object = restate.VirtualObject("ListObject")


@list_object.handler(name="append")
async def list_append(ctx: ObjectContext, value: str) -> None:
    ctx.set("list", [*(await ctx.get("list", type_hint=list[str]) or []), value])


@list_object.handler(name="get")
async def list_get(ctx: ObjectContext) -> list[str]:
    return await ctx.get("list", type_hint=list[str]) or []


@list_object.handler(name="clear")
async def list_clear(ctx: ObjectContext) -> list[str]:
    values = await ctx.get("list", type_hint=list[str]) or []
    ctx.clear("list")
    return values


map_object = restate.VirtualObject("MapObject")


@map_object.handler(name="set")
async def map_set(ctx: ObjectContext, entry: dict) -> None:
    ctx.set(entry["key"], entry["value"])


@map_object.handler(name="get")
async def map_get(ctx: ObjectContext, key: str) -> str:
    return await ctx.get(key, type_hint=str) or ""


@map_object.handler(name="clearAll")
async def map_clear_all(ctx: ObjectContext) -> list[dict]:
    entries = []
    for key in await ctx.state_keys():
        entries.append({"key": key, "value": await ctx.get(key, type_hint=str)})
        ctx.clear(key)
    return entries


# -- AwakeableHolder, Proxy, TestUtilsService -------------------------------------------------

holder = restate.VirtualObject("AwakeableHolder")


@holder.handler()
async def hold(ctx: ObjectContext, awakeable_id: str) -> None:
    ctx.set("id", awakeable_id)


@holder.handler(name="hasAwakeable")
async def has_awakeable(ctx: ObjectContext) -> bool:
    return await ctx.get("id", type_hint=str) is not None


@holder.handler()
async def unlock(ctx: ObjectContext, payload: str) -> None:
    awakeable_id = await ctx.get("id", type_hint=str)
    if awakeable_id is None:
        raise TerminalError("No awakeable is registered")
    ctx.resolve_awakeable(awakeable_id, payload)


proxy = restate.Service("Proxy")


def _target(request: dict) -> dict:
    return {"service": request["serviceName"], "handler": request["handlerName"],
            "arg": bytes(request["message"]), "key": request.get("virtualObjectKey"),
            "idempotency_key": request.get("idempotencyKey")}


@proxy.handler()
async def call(ctx: Context, request: dict) -> list[int]:
    return list(await ctx.generic_call(**_target(request)))


@proxy.handler(name="oneWayCall")
async def one_way_call(ctx: Context, request: dict) -> str:
    delay = request.get("delayMillis")
    handle = ctx.generic_send(**_target(request), send_delay=timedelta(milliseconds=delay) if delay else None)
    return await handle.invocation_id()


@proxy.handler(name="manyCalls")
async def many_calls(ctx: Context, requests: list[dict]) -> None:
    to_await = []
    for request in requests:
        if request["oneWayCall"]:
            ctx.generic_send(**_target(request["proxyRequest"]))
        else:
            future = ctx.generic_call(**_target(request["proxyRequest"]))
            if request["awaitAtTheEnd"]:
                to_await.append(future)
    for future in to_await:
        await future


utils = restate.Service("TestUtilsService")


@utils.handler()
async def echo(ctx: Context, value: str) -> str:
    return value


@utils.handler(name="uppercaseEcho")
async def uppercase_echo(ctx: Context, value: str) -> str:
    return value.upper()


@utils.handler(name="echoHeaders")
async def echo_headers(ctx: Context) -> dict[str, str]:
    return dict(ctx.request().headers)


@utils.handler(name="rawEcho", accept="*/*", content_type="application/octet-stream",
               input_serde=BytesSerde(), output_serde=BytesSerde())
async def raw_echo(ctx: Context, value: bytes) -> bytes:
    return value


@utils.handler(name="countExecutedSideEffects")
async def count_executed_side_effects(ctx: Context, increments: int) -> int:
    executed = 0

    def effect() -> None:
        nonlocal executed
        executed += 1

    for _ in range(increments):
        await ctx.run_typed("count", effect)
    return executed


@utils.handler(name="cancelInvocation")
async def cancel_invocation(ctx: Context, invocation_id: str) -> None:
    ctx.cancel_invocation(invocation_id)


@utils.handler(name="resolveSignal")
async def resolve_signal(ctx: Context, request: dict) -> None:
    ctx.resolve_signal(request["invocationId"], request["signalName"], request["value"])


@utils.handler(name="rejectSignal")
async def reject_signal(ctx: Context, request: dict) -> None:
    ctx.reject_signal(request["invocationId"], request["signalName"], request["reason"])


# -- Failing ----------------------------------------------------------------------------------

failing = restate.VirtualObject("Failing")


@failing.handler(name="terminallyFailingCall")
async def terminally_failing_call(ctx: ObjectContext, failure: dict) -> None:
    raise TerminalError(failure["errorMessage"], metadata=failure.get("metadata"))


@failing.handler(name="callTerminallyFailingCall")
async def call_terminally_failing_call(ctx: ObjectContext, failure: dict) -> str:
    await ctx.object_call(terminally_failing_call, key="random-583e1bf2", arg=failure)
    raise AssertionError("the call should have failed")


@failing.handler(name="failingCallWithEventualSuccess", invocation_retry_policy=InvocationRetryPolicy(
    initial_interval=timedelta(milliseconds=10), exponentiation_factor=1.0))
async def failing_call_with_eventual_success(ctx: ObjectContext) -> int:
    counters[f"eventual:{ctx.key()}"] += 1
    attempt = counters[f"eventual:{ctx.key()}"]
    if attempt < 4:
        raise ValueError(f"failed attempt {attempt}")
    return attempt


@failing.handler(name="terminallyFailingSideEffect")
async def terminally_failing_side_effect(ctx: ObjectContext, failure: dict) -> None:
    def effect() -> None:
        raise TerminalError(failure["errorMessage"], metadata=failure.get("metadata"))

    await ctx.run_typed("sideEffect", effect)
    raise AssertionError("the side effect should have failed")


def _retry_fast(max_attempts: int) -> RunOptions[int]:
    return RunOptions(max_attempts=max_attempts, initial_retry_interval=timedelta(milliseconds=1),
                      retry_interval_factor=1.0)


@failing.handler(name="sideEffectSucceedsAfterGivenAttempts")
async def side_effect_succeeds_after_given_attempts(ctx: ObjectContext, minimum_attempts: int) -> int:
    def effect() -> int:
        counters[f"succeeds:{ctx.key()}"] += 1
        if counters[f"succeeds:{ctx.key()}"] < minimum_attempts:
            raise ValueError("not yet")
        return counters[f"succeeds:{ctx.key()}"]

    return await ctx.run_typed("sideEffect", effect, _retry_fast(minimum_attempts + 1))


@failing.handler(name="sideEffectFailsAfterGivenAttempts")
async def side_effect_fails_after_given_attempts(ctx: ObjectContext, max_retry_count: int) -> int:
    def effect() -> int:
        counters[f"fails:{ctx.key()}"] += 1
        raise ValueError(f"failed attempt {counters[f'fails:{ctx.key()}']}")

    try:
        await ctx.run_typed("sideEffect", effect, _retry_fast(max_retry_count))
    except TerminalError:
        return counters[f"fails:{ctx.key()}"]
    raise AssertionError("the side effect should have failed")


# -- Cancellation and kill --------------------------------------------------------------------

cancel_runner = restate.VirtualObject("CancelTestRunner")
blocking = restate.VirtualObject("CancelTestBlockingService")


@cancel_runner.handler(name="startTest")
async def start_test(ctx: ObjectContext, operation: str) -> None:
    try:
        await ctx.object_call(block, key=ctx.key(), arg=operation)
    except TerminalError as exc:
        if exc.status_code != 409:
            raise
        ctx.set("state", True)


@cancel_runner.handler(name="verifyTest")
async def verify_test(ctx: ObjectContext) -> bool:
    return await ctx.get("state", type_hint=bool) or False


@blocking.handler()
async def block(ctx: ObjectContext, operation: str) -> None:
    awakeable_id, awakeable = ctx.awakeable(type_hint=str)
    await ctx.object_call(hold, key=ctx.key(), arg=awakeable_id)
    await awakeable
    if operation == "CALL":
        await ctx.object_call(block, key=ctx.key(), arg=operation)
    elif operation == "SLEEP":
        await ctx.sleep(timedelta(days=1024))
    else:
        await ctx.awakeable()[1]


@blocking.handler(name="isUnlocked")
async def is_unlocked(ctx: ObjectContext) -> None:
    return None


kill_runner = restate.VirtualObject("KillTestRunner")
kill_singleton = restate.VirtualObject("KillTestSingleton")


@kill_runner.handler(name="startCallTree")
async def start_call_tree(ctx: ObjectContext) -> None:
    await ctx.object_call(recursive_call, key=ctx.key(), arg=None)


@kill_singleton.handler(name="recursiveCall")
async def recursive_call(ctx: ObjectContext) -> None:
    awakeable_id, awakeable = ctx.awakeable(type_hint=str)
    ctx.object_send(hold, key=ctx.key(), arg=awakeable_id)
    await awakeable
    await ctx.object_call(recursive_call, key=ctx.key(), arg=None)


@kill_singleton.handler(name="isUnlocked")
async def kill_is_unlocked(ctx: ObjectContext) -> None:
    return None


# -- NonDeterministic -------------------------------------------------------------------------

nondeterministic = restate.VirtualObject(
    "NonDeterministic",
    invocation_retry_policy=InvocationRetryPolicy(initial_interval=timedelta(milliseconds=1), max_attempts=1,
                                                  on_max_attempts="kill"))


def _odd_attempt(ctx: ObjectContext, handler: str) -> bool:
    counters[f"nondeterministic:{ctx.key()}:{handler}"] += 1
    return counters[f"nondeterministic:{ctx.key()}:{handler}"] % 2 == 1


async def _then_count(ctx: ObjectContext, handler: str) -> None:
    await ctx.sleep(timedelta(milliseconds=100))
    ctx.object_send(add, key=handler, arg=1)


@nondeterministic.handler(name="eitherSleepOrCall")
async def either_sleep_or_call(ctx: ObjectContext) -> None:
    if _odd_attempt(ctx, "eitherSleepOrCall"):
        await ctx.sleep(timedelta(milliseconds=100))
    else:
        await ctx.object_call(get, key="abc", arg=None)
    await _then_count(ctx, "eitherSleepOrCall")


@nondeterministic.handler(name="callDifferentMethod")
async def call_different_method(ctx: ObjectContext) -> None:
    if _odd_attempt(ctx, "callDifferentMethod"):
        await ctx.object_call(get, key="abc", arg=None)
    else:
        await ctx.object_call(reset, key="abc", arg=None)
    await _then_count(ctx, "callDifferentMethod")


@nondeterministic.handler(name="backgroundInvokeWithDifferentTargets")
async def background_invoke_with_different_targets(ctx: ObjectContext) -> None:
    if _odd_attempt(ctx, "backgroundInvokeWithDifferentTargets"):
        ctx.object_send(get, key="abc", arg=None)
    else:
        ctx.object_send(reset, key="abc", arg=None)
    await _then_count(ctx, "backgroundInvokeWithDifferentTargets")


@nondeterministic.handler(name="setDifferentKey")
async def set_different_key(ctx: ObjectContext) -> None:
    ctx.set("a" if _odd_attempt(ctx, "setDifferentKey") else "b", "my-state")
    await _then_count(ctx, "setDifferentKey")


# -- BlockAndWaitWorkflow ---------------------------------------------------------------------

block_and_wait = restate.Workflow("BlockAndWaitWorkflow")


@block_and_wait.main()
async def run(ctx: WorkflowContext, value: str) -> str:
    ctx.set("my-state", value)
    output = await ctx.promise("durable-promise", type_hint=str).value()
    peeked = await ctx.promise("durable-promise", type_hint=str).peek()
    if peeked is None:
        raise TerminalError("Durable promise should be completed")
    return output


@block_and_wait.handler()
async def unblock(ctx: WorkflowSharedContext, output: str) -> None:
    await ctx.promise("durable-promise", type_hint=str).resolve(output)


@block_and_wait.handler(name="getState")
async def get_state(ctx: WorkflowSharedContext) -> typing.Optional[str]:
    return await ctx.get("my-state", type_hint=str)


SERVICES = [counter, list_object, map_object, holder, proxy, utils, failing, cancel_runner, blocking,
            kill_runner, kill_singleton, nondeterministic, block_and_wait]
