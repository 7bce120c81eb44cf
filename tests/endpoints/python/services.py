"""The test services on restate-sdk (`import restate`), one handler per context feature a protocol
test needs, with the names, inputs and answers of tests/endpoints/typescript/src/services.ts.

Names are prefixed by $RESTATE_TEST_PREFIX (read at import), so that both SDKs' services can be
registered with one server at once. Counters live in files ($RESTATE_TEST_COUNTERS/<name>, one byte
per bump): a test reads how often something ran, across attempts and process restarts.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
import typing
from datetime import timedelta

import restate

PREFIX = os.environ.get("RESTATE_TEST_PREFIX", "")
COUNTERS = os.environ.get("RESTATE_TEST_COUNTERS") or os.path.join(tempfile.gettempdir(), f"restate-test-counters-{os.getpid()}")


def _counter_file(name: str) -> str:
    return os.path.join(COUNTERS, re.sub(r"[^A-Za-z0-9_.-]", "_", name))


def bump(name: str) -> int:
    """Count one more execution of `name`; the count (1 on the first)."""
    os.makedirs(COUNTERS, exist_ok=True)
    path = _counter_file(name)
    with open(path, "ab") as counter:
        counter.write(b"x")
    return os.path.getsize(path)


async def opened(name: str) -> None:
    """Return once the file `name` exists in the counters' directory (a test's gate)."""
    path = _counter_file(name)
    while not os.path.exists(path):
        await asyncio.sleep(0.02)


def _encode(value: typing.Any) -> bytes:
    return json.dumps(value).encode()


def _decode(body: bytes) -> typing.Any:
    return json.loads(body) if body else None


echo = restate.Service(PREFIX + "Echo")


@echo.handler("echo")
async def echo_echo(ctx: restate.Context, value: typing.Any) -> typing.Any:
    return value


calls = restate.Service(PREFIX + "Calls")


@calls.handler("callByName")
async def call_by_name(ctx: restate.Context, call: dict) -> typing.Any:
    """A call to any handler by its name: it may live in this endpoint, another SDK's or restate-pg."""
    answer = await ctx.generic_call(call["service"], call["handler"], _encode(call.get("input")), key=call.get("key"),
                                    idempotency_key=call.get("idempotencyKey"))
    return _decode(answer)


@calls.handler("sendByName")
async def send_by_name(ctx: restate.Context, call: dict) -> str:
    delay = call.get("delayMs")
    handle = ctx.generic_send(call["service"], call["handler"], _encode(call.get("input")), key=call.get("key"),
                              send_delay=timedelta(milliseconds=delay) if delay else None,
                              idempotency_key=call.get("idempotencyKey"))
    return await handle.invocation_id()


@calls.handler("callEcho")
async def call_echo(ctx: restate.Context, req: dict) -> typing.Any:
    """A typed call to Echo/echo, with an optional idempotency key."""
    return await ctx.service_call(echo_echo, req.get("value"), idempotency_key=req.get("idempotencyKey"))


@calls.handler("sendEcho")
async def send_echo(ctx: restate.Context, req: dict) -> str:
    """A typed one-way call to Echo/echo, delayed by `delayMs`, with an optional idempotency key."""
    delay = req.get("delayMs")
    handle = ctx.service_send(echo_echo, req.get("value"), send_delay=timedelta(milliseconds=delay) if delay else None,
                              idempotency_key=req.get("idempotencyKey"))
    return await handle.invocation_id()


@calls.handler("attach")
async def attach(ctx: restate.Context, invocation_id: str) -> typing.Any:
    return await ctx.attach_invocation(invocation_id)


@calls.handler("cancel")
async def cancel(ctx: restate.Context, invocation_id: str) -> None:
    ctx.cancel_invocation(invocation_id)


steps = restate.Service(PREFIX + "Steps")


@steps.handler("sleep")
async def sleep(ctx: restate.Context, millis: int) -> str:
    await ctx.sleep(timedelta(milliseconds=millis))
    return "slept"


@steps.handler("steps")
async def run_steps(ctx: restate.Context, req: dict) -> int:
    """`n` journaled steps; `<key>.attempts` counts handler starts, `<key>.steps` step executions."""
    bump(f"{req['key']}.attempts")
    total = 0
    for i in range(req["n"]):
        def step(i: int = i) -> int:
            bump(f"{req['key']}.steps")
            return i
        total += await ctx.run_typed(f"step-{i}", step)
    return total


@steps.handler("gated")
async def gated(ctx: restate.Context, req: dict) -> int:
    """`n` journaled steps, step `gate` held until the file `<counters>/<key>.open` exists (a test
    creates it): `<key>.attempts` counts handler starts, `<key>.step-<i>` executions of step i,
    `<key>.passed` how often the gated step went past its gate."""
    bump(f"{req['key']}.attempts")
    total = 0
    for i in range(req["n"]):
        async def step(i: int = i) -> int:
            bump(f"{req['key']}.step-{i}")
            if i == req["gate"]:
                await opened(f"{req['key']}.open")
                bump(f"{req['key']}.passed")
            return i
        total += await ctx.run_typed(f"step-{i}", step)
    return total


@steps.handler("runTerminal")
async def run_terminal(ctx: restate.Context, message: str) -> str:
    def fails() -> None:
        raise restate.TerminalError(message, status_code=418)
    await ctx.run_typed("fails", fails)
    return "unreachable"


@steps.handler("runRetried")
async def run_retried(ctx: restate.Context, req: dict) -> int:
    """A ctx.run that raises (retryably) `failures` times, then returns the execution count."""
    def flaky() -> int:
        n = bump(req["key"])
        if n <= req["failures"]:
            raise RuntimeError(f"run failure {n} of {req['failures']}")
        return n
    return await ctx.run_typed("flaky", flaky)


@steps.handler("failNTimes")
async def fail_n_times(ctx: restate.Context, req: dict) -> int:
    """The handler itself raises (retryably) `failures` times, then returns the attempt count."""
    n = bump(req["key"])
    if n <= req["failures"]:
        raise RuntimeError(f"attempt {n} of {req['failures']} fails")
    return n


@steps.handler("nonDeterministic")
async def non_deterministic(ctx: restate.Context, key: str) -> str:
    """Journals a run, fails, and on the next attempt issues a sleep in its place: a journal mismatch.
    The branch depends on whether an attempt saw its run recorded, not on the attempt's number: an
    attempt cut off before its run was recorded (a lost lease) takes the first branch again."""
    bump(key)
    if not os.path.exists(_counter_file(f"{key}.recorded")):
        await ctx.run_typed("first", lambda: "recorded")
        bump(f"{key}.recorded")
        raise RuntimeError("fail after the first attempt's run, to be replayed")
    await ctx.sleep(timedelta(milliseconds=1))
    return "unreachable"


@steps.handler("random")
async def random(ctx: restate.Context, key: str) -> dict:
    """ctx.random/ctx.uuid: values, and whether the seed gives the same uuid on the retried attempt."""
    uuid = str(ctx.uuid())
    value = ctx.random().random()
    recorded = await ctx.run_typed("record", lambda: uuid)
    attempt = bump(key)
    if attempt == 1:
        raise RuntimeError("retry once, to replay with the same seed")
    return {"uuid": uuid, "value": value, "sameOnReplay": recorded == uuid, "attempt": attempt}


@steps.handler("waitUntilCancelled")
async def wait_until_cancelled(ctx: restate.Context, key: str) -> str:
    """Waits on an awakeable nobody resolves; when cancelled, journals a compensation and fails."""
    _, promise = ctx.awakeable()
    try:
        await promise
    except restate.TerminalError:
        await ctx.run_typed("compensate", lambda: bump(f"{key}.compensated"))
        raise
    return "unreachable"


awakeable_holder = restate.VirtualObject(PREFIX + "AwakeableHolder")


@awakeable_holder.handler("hold")
async def hold(ctx: restate.ObjectContext, awakeable_id: str) -> None:
    ctx.set("id", awakeable_id)


@awakeable_holder.handler("hasAwakeable", kind="shared")
async def has_awakeable(ctx: restate.ObjectSharedContext) -> bool:
    return await ctx.get("id") is not None


async def _held(ctx: restate.ObjectContext) -> str:
    awakeable_id = await ctx.get("id")
    if awakeable_id is None:
        raise restate.TerminalError("no awakeable held", status_code=404)
    return awakeable_id


@awakeable_holder.handler("resolve")
async def resolve(ctx: restate.ObjectContext, value: typing.Any) -> None:
    ctx.resolve_awakeable(await _held(ctx), value)


@awakeable_holder.handler("reject")
async def reject(ctx: restate.ObjectContext, reason: str) -> None:
    ctx.reject_awakeable(await _held(ctx), reason)


awakeables = restate.Service(PREFIX + "Awakeables")


@awakeables.handler("await")
async def await_awakeable(ctx: restate.Context, holder: str) -> typing.Any:
    """Creates an awakeable, hands its id to AwakeableHolder/<holder>, and returns its value."""
    awakeable_id, promise = ctx.awakeable()
    ctx.object_send(hold, holder, awakeable_id)
    return await promise


def state_object(name: str, lazy: bool) -> restate.VirtualObject:
    """Every state operation, as one virtual object; made twice: eager state, and lazy state."""
    obj = restate.VirtualObject(name, enable_lazy_state=True if lazy else None)

    @obj.handler("set")
    async def set_(ctx: restate.ObjectContext, req: dict) -> None:
        ctx.set(req["name"], req["value"])

    @obj.handler("get", kind="shared")
    async def get(ctx: restate.ObjectSharedContext, name: str) -> typing.Any:
        return await ctx.get(name)

    @obj.handler("clear")
    async def clear(ctx: restate.ObjectContext, name: str) -> None:
        ctx.clear(name)

    @obj.handler("clearAll")
    async def clear_all(ctx: restate.ObjectContext) -> None:
        ctx.clear_all()

    @obj.handler("keys", kind="shared")
    async def keys(ctx: restate.ObjectSharedContext) -> list:
        return sorted(await ctx.state_keys())

    @obj.handler("add")
    async def add(ctx: restate.ObjectContext, delta: int) -> int:
        count = (await ctx.get("count") or 0) + delta
        ctx.set("count", count)
        return count

    return obj


state = state_object(PREFIX + "State", lazy=False)
lazy_state = state_object(PREFIX + "LazyState", lazy=True)

promises = restate.Workflow(PREFIX + "Promises")


@promises.main("run")
async def run(ctx: restate.WorkflowContext, value: typing.Any) -> typing.Any:
    """Waits on the workflow's durable promise "p", which the shared handlers below complete."""
    ctx.set("input", value)
    return await ctx.promise("p").value()


@promises.handler("resolve")
async def resolve_promise(ctx: restate.WorkflowSharedContext, value: typing.Any) -> None:
    await ctx.promise("p").resolve(value)


@promises.handler("reject")
async def reject_promise(ctx: restate.WorkflowSharedContext, message: str) -> None:
    await ctx.promise("p").reject(message)


@promises.handler("peek")
async def peek(ctx: restate.WorkflowSharedContext) -> typing.Any:
    return await ctx.promise("p").peek()


@promises.handler("get")
async def get_promise(ctx: restate.WorkflowSharedContext) -> typing.Any:
    return await ctx.promise("p").value()


def record(tag: str, line: str) -> None:
    """Append `line` and the time (ns, this process's monotonic clock) to `<counters>/<tag>.intervals`."""
    os.makedirs(COUNTERS, exist_ok=True)
    with open(os.path.join(COUNTERS, re.sub(r"[^A-Za-z0-9_.-]", "_", tag) + ".intervals"), "a") as intervals:
        intervals.write(f"{line} {time.monotonic_ns()}\n")


scoped_work = restate.Service(PREFIX + "ScopedWork")


@scoped_work.handler("work")
async def scoped_work_work(ctx: restate.Context, job: dict) -> dict:
    """Runs `ms` between two records of its own interval; answers the scope and limit key it was started with."""
    record(job["tag"], f"start {job['n']}")
    await asyncio.sleep(job["ms"] / 1000)
    record(job["tag"], f"end {job['n']}")
    request = ctx.request()
    return {"n": job["n"], "scope": request.scope, "limitKey": request.limit_key}


scoped = restate.Service(PREFIX + "Scoped")


@scoped.handler("fanOut")
async def fan_out(ctx: restate.Context, req: dict) -> list:
    """`count` calls to work in the scope with the limit key (ctx.scope(...).service_call), awaited together."""
    client = ctx.scope(req["scope"])
    calls = [client.service_call(scoped_work_work, {"tag": req["tag"], "n": n, "ms": req["ms"]}, limit_key=req.get("limitKey"))
             for n in range(req["count"])]
    await restate.gather(*calls)
    return [await call for call in calls]


@scoped.handler("sendOne")
async def send_one(ctx: restate.Context, req: dict) -> str:
    """One send to work in the scope with the limit key (generic_send's scope and limit_key); its invocation id."""
    handle = ctx.generic_send(PREFIX + "ScopedWork", "work", _encode({"tag": req["tag"], "n": 0, "ms": req["ms"]}),
                              scope=req["scope"], limit_key=req.get("limitKey"))
    return await handle.invocation_id()


ALL = [echo, calls, steps, awakeable_holder, awakeables, state, lazy_state, promises, scoped_work, scoped]
