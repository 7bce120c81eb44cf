"""Handlers that exercise every context method, written exactly as for restate-sdk."""

from __future__ import annotations

import asyncio
import os
import typing
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel

import restate_pg as restate
from restate_pg import Context, ObjectContext, ObjectSharedContext, RunOptions, TerminalError
from restate_pg.serde import BytesSerde
from tests.support import ledger

# Process-global counters: how often a handler body ran in *this* process, across attempts.
attempts: typing.Dict[str, int] = {}


def bump(key: str) -> int:
    attempts[key] = attempts.get(key, 0) + 1
    return attempts[key]


class Greeting(BaseModel):
    name: str
    times: int = 1


@dataclass
class Point:
    x: int
    y: int


steps = restate.Service("Steps")


@steps.handler()
async def three(ctx: Context, tag: str) -> typing.List[str]:
    """Three journaled steps; fails (retryably) once after the second, on the first attempt."""
    out = []
    for i in range(3):
        out.append(await ctx.run(f"step{i}", lambda i=i: (ledger.record(tag, f"step{i}"), f"{tag}-{i}")[1]))
        if i == 1 and bump(f"three:{tag}") == 1:
            raise RuntimeError("transient failure after step 1")
    return out


@steps.handler()
async def run_retries(ctx: Context, succeed_after: int) -> int:
    """A ctx.run retried in place until its closure has run `succeed_after` times."""
    key = f"run_retries:{ctx.request().id}"

    def flaky() -> int:
        n = bump(key)
        if n < succeed_after:
            raise ValueError(f"not yet ({n})")
        return n

    return await ctx.run_typed("flaky", flaky, RunOptions(max_attempts=10, initial_retry_interval=timedelta(milliseconds=1)))


@steps.handler()
async def run_exhausted(ctx: Context) -> str:
    def always() -> None:
        raise ValueError("always broken")

    try:
        await ctx.run_typed("doomed", always, RunOptions(max_attempts=3, initial_retry_interval=timedelta(milliseconds=1)))
    except TerminalError as exc:
        return f"caught {exc.status_code}: {exc.message}"
    return "unreachable"


@steps.handler()
async def run_terminal(ctx: Context) -> str:
    def refuse() -> None:
        raise TerminalError("card declined", 402)

    await ctx.run("charge", refuse)
    return "unreachable"


@steps.handler()
async def deterministic(ctx: Context) -> typing.Dict[str, typing.Any]:
    """random(), uuid() and time() give the same values on every attempt."""
    values = {"random": ctx.random().random(), "uuid": str(ctx.uuid()), "time": await ctx.time()}
    ledger.record(ctx.request().id, repr(values))
    if bump(f"deterministic:{ctx.request().id}") == 1:
        raise RuntimeError("retry me")
    return values


@steps.handler()
async def whoami(ctx: Context) -> typing.Dict[str, typing.Any]:
    request = ctx.request()
    return {"id": request.id, "headers": request.headers, "body": request.body.decode()}


@steps.handler()
async def greet_model(ctx: Context, greeting: Greeting) -> Greeting:
    return Greeting(name=greeting.name.upper(), times=greeting.times + 1)


@steps.handler()
async def move(ctx: Context, point: Point) -> Point:
    return Point(point.x + 1, point.y + 1)


@steps.handler(accept="*/*", content_type="application/octet-stream", input_serde=BytesSerde(), output_serde=BytesSerde())
async def raw_echo(ctx: Context, data: bytes) -> bytes:
    return data[::-1]


@steps.handler()
async def nothing(ctx: Context) -> None:
    return None


@steps.handler()
async def fail(ctx: Context, message: str) -> str:
    raise TerminalError(message, 418, {"why": "teapot"})


@steps.handler()
async def nap(ctx: Context, millis: int) -> str:
    await ctx.sleep(timedelta(milliseconds=millis))
    return "rested"


@steps.handler()
async def nondeterministic(ctx: Context) -> str:
    """Takes a different path on its second attempt: a journal mismatch."""
    if bump(f"nondet:{ctx.request().id}") == 1:
        await ctx.run("first", lambda: "a")
        raise RuntimeError("retry to trigger the mismatch")
    await ctx.sleep(timedelta(milliseconds=1))
    return "diverged"


@steps.handler(ingress_private=True)
async def private(ctx: Context) -> str:
    return "secret"


@steps.handler()
async def call_private(ctx: Context) -> str:
    return await ctx.service_call(private, None)


counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, delta: int) -> int:
    value = (await ctx.get("count") or 0) + delta
    ctx.set("count", value)
    return value


@counter.handler()
async def append(ctx: ObjectContext, item: str) -> typing.List[str]:
    """Appends to a list with a deliberate yield between read and write: lost updates would show."""
    items = await ctx.get("items") or []
    await asyncio.sleep(0)
    items.append(item)
    ctx.set("items", items)
    return items


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count") or 0


@counter.handler(kind="shared")
async def items(ctx: ObjectSharedContext) -> typing.List[str]:
    return await ctx.get("items") or []


@counter.handler(kind="shared")
async def keys(ctx: ObjectSharedContext) -> typing.List[str]:
    return await ctx.state_keys()


@counter.handler()
async def set_many(ctx: ObjectContext, values: typing.Dict[str, typing.Any]) -> typing.List[str]:
    for name, value in values.items():
        ctx.set(name, value)
    return await ctx.state_keys()


@counter.handler()
async def clear(ctx: ObjectContext, name: str) -> typing.List[str]:
    ctx.clear(name)
    return await ctx.state_keys()


@counter.handler()
async def clear_all(ctx: ObjectContext) -> typing.List[str]:
    ctx.clear_all()
    return await ctx.state_keys()


@counter.handler()
async def whose(ctx: ObjectContext) -> str:
    return ctx.key()


@counter.handler()
async def add_then_fail(ctx: ObjectContext, delta: int) -> None:
    ctx.set("count", (await ctx.get("count") or 0) + delta)
    raise TerminalError(ctx.key())


@counter.handler()
async def hold(ctx: ObjectContext, millis: int) -> str:
    """Sleeps while holding the key: shared handlers still answer, exclusive ones queue."""
    ctx.set("holding", True)
    await ctx.sleep(timedelta(milliseconds=millis))
    ctx.set("holding", False)
    return "released"


@counter.handler(kind="shared")
async def holding(ctx: ObjectSharedContext) -> bool:
    return bool(await ctx.get("holding"))


@counter.handler(kind="shared")
async def bad_write(ctx: ObjectSharedContext) -> None:
    ctx.set("count", 1)  # type: ignore[attr-defined]


@counter.handler()
async def echo_pid(ctx: ObjectContext) -> int:
    return os.getpid()


app = restate.app([steps, counter])


first = restate.Service("First")
second = restate.Service("Second")
third = restate.Service("Third")


@third.handler(name="chain")
async def third_chain(ctx: Context, x: int) -> int:
    return x * 100


@second.handler(name="chain")
async def second_chain(ctx: Context, x: int) -> int:
    return await ctx.service_call(third_chain, x) + 10


@first.handler(name="chain")
async def first_chain(ctx: Context, x: int) -> int:
    return await ctx.service_call(second_chain, x) + 1


@third.handler(name="fail")
async def third_fail(ctx: Context, message: str) -> str:
    raise TerminalError(message, 422, {"depth": "3"})


@second.handler(name="fail")
async def second_fail(ctx: Context, message: str) -> str:
    return await ctx.service_call(third_fail, message)


@first.handler(name="fail")
async def first_fail(ctx: Context, message: str) -> str:
    try:
        return await ctx.service_call(second_fail, message)
    except TerminalError:  # not `finally`: a suspension unwinds the handler too, seeing nothing
        ledger.record(ctx.request().id, "first_fail saw the failure")
        raise


@first.handler()
async def fan_out(ctx: Context, key: str) -> str:
    """One-way sends, in issue order, to one key: they must arrive in that order."""
    for i in range(5):
        ctx.object_send(append, key, f"item{i}")
    return "sent"


@first.handler()
async def send_later(ctx: Context, key: str) -> str:
    ctx.object_send(append, key, "late", send_delay=timedelta(seconds=1))
    return "scheduled"


@first.handler()
async def send_once(ctx: Context, key: str) -> str:
    ctx.object_send(add, key, 1, idempotency_key="only-once")
    ctx.object_send(add, key, 1, idempotency_key="only-once")
    return "sent twice"


@first.handler()
async def generic(ctx: Context, key: str) -> str:
    raw = await ctx.generic_call("Counter", "add", b"7", key=key)
    ctx.generic_send("Counter", "add", b"1", key=key)
    return raw.decode()


@first.handler()
async def call_object(ctx: Context, key: str) -> int:
    await ctx.object_call(add, key, 2)
    return await ctx.object_call(get, key, None)


app = restate.app([steps, counter, first, second, third])


@counter.handler()
async def span(ctx: ObjectContext, label: str) -> str:
    """Records when it starts and ends, so a test can see which executions overlapped."""
    await ctx.run("start", lambda: ledger.record(f"span:{ctx.key()}", f"start {label}"))
    await ctx.sleep(timedelta(milliseconds=200))
    await ctx.run("end", lambda: ledger.record(f"span:{ctx.key()}", f"end {label}"))
    return label


app = restate.app([steps, counter, first, second, third])


signup = restate.Workflow("Signup")


@signup.main()
async def run(ctx: restate.WorkflowContext, email: str) -> str:
    ctx.set("email", email)
    await ctx.sleep(timedelta(milliseconds=50))
    ctx.set("stage", "done")
    return f"welcome {email}"


@signup.handler()
async def stage(ctx: restate.WorkflowSharedContext) -> typing.Optional[str]:
    return await ctx.get("stage")


@first.handler()
async def workflows(ctx: Context, wf_id: str) -> str:
    result = await ctx.workflow_call(run, wf_id, f"{wf_id}@example.com")
    ctx.workflow_send(run, f"{wf_id}-sent", "sent@example.com")
    return result


@first.handler()
async def notify(ctx: Context, tag: str) -> str:
    handle = ctx.service_send(record, tag)
    ctx.service_send(record, f"{tag}-later", send_delay=timedelta(milliseconds=200))
    return await handle.invocation_id()


@third.handler()
async def record(ctx: Context, tag: str) -> None:
    await ctx.run("record", lambda: ledger.record(tag, "recorded"))


flaky = restate.Service(
    "Flaky",
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=10), max_attempts=3, on_max_attempts="pause"
    ),
)


@flaky.handler()
async def always_pauses(ctx: Context) -> None:
    await ctx.run("attempt", lambda: None)
    ledger.record(ctx.request().id, "attempt")
    raise RuntimeError("still broken")


@flaky.handler(
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=10), max_attempts=2, on_max_attempts="kill"
    )
)
async def killed(ctx: Context) -> None:
    ledger.record(ctx.request().id, "attempt")
    raise RuntimeError("hopeless")


@flaky.handler(inactivity_timeout=timedelta(milliseconds=50))
async def quick_to_suspend(ctx: Context, millis: int) -> str:
    await ctx.sleep(timedelta(milliseconds=millis))
    return "woke"


app = restate.app([steps, counter, first, second, third, signup, flaky])
