"""Handlers for the DB-free replay tests (tests/test_replay_memory.py and siblings), run on
`restate_pg.testing.memory`: every context method, in handlers that suspend between them, so
that each value is produced by one attempt and replayed by the next ones.

`observed` collects what each attempt saw at each labelled point: a replay must see exactly what
the first execution saw. `effects` counts the side effects that ran (a replay runs none).
"""

from __future__ import annotations

import collections
import typing
from datetime import timedelta

import restate_pg as restate
from restate_pg import Context, ObjectContext, RunOptions, TerminalError, WorkflowContext, WorkflowSharedContext

tools = restate.Service("Tools")
box = restate.VirtualObject("Box")
flow = restate.Workflow("Flow")

#: label -> every value an attempt saw there (repr), in order.
observed: typing.Dict[str, typing.List[str]] = collections.defaultdict(list)
#: name -> how many times the side effect ran.
effects: typing.Counter[str] = collections.Counter()


def reset() -> None:
    observed.clear()
    effects.clear()


def see(label: str, value: typing.Any) -> typing.Any:
    observed[label].append(repr(value))
    return value


def effect(name: str, value: typing.Any = None) -> typing.Callable[[], typing.Any]:
    def action() -> typing.Any:
        effects[name] += 1
        return value if value is not None else f"{name}#{effects[name]}"

    return action


def failing(name: str) -> typing.Callable[[], typing.Any]:
    def action() -> typing.Any:
        effects[name] += 1
        raise TerminalError(f"{name} refused", 422)

    return action


async def pause(ctx: Context, name: str) -> None:
    """A sleep: the attempt suspends here, and the next one replays what came before."""
    await ctx.sleep(timedelta(seconds=1), name=name)


# -- callees ---------------------------------------------------------------------------------


@tools.handler()
async def echo(ctx: Context, text: str) -> str:
    return f"echo {text}"


@tools.handler()
async def refuse(ctx: Context, text: str) -> str:
    raise TerminalError(f"no {text}", 418)


@tools.handler()
async def nap(ctx: Context) -> str:
    await ctx.sleep(timedelta(hours=1))
    return "rested"


@box.handler()
async def add(ctx: ObjectContext, amount: int) -> int:
    total = (await ctx.get("total") or 0) + amount
    ctx.set("total", total)
    return total


@flow.handler()
async def approve(ctx: WorkflowSharedContext, verdict: str) -> None:
    await ctx.promise("verdict").resolve(verdict)


# -- one handler per group of context methods --------------------------------------------------


@box.handler()
async def state(ctx: ObjectContext) -> dict:
    out: typing.Dict[str, typing.Any] = {}
    out["stored"] = see("stored", await ctx.get("stored"))
    ctx.set("a", 1)
    ctx.set("b", {"x": [1, 2]})
    await pause(ctx, "after-set")
    out["a"] = see("a", await ctx.get("a"))
    out["b"] = see("b", await ctx.get("b"))
    ctx.clear("b")
    out["b_cleared"] = see("b_cleared", await ctx.get("b"))
    out["keys"] = see("keys", sorted(await ctx.state_keys()))
    await pause(ctx, "before-clear-all")
    ctx.clear_all()
    out["after_clear_all"] = see("after_clear_all", await ctx.get("a"))
    out["keys_after"] = see("keys_after", await ctx.state_keys())
    ctx.set("c", "last")
    out["key"] = see("key", ctx.key())
    return out


@tools.handler()
async def runs(ctx: Context) -> dict:
    out: typing.Dict[str, typing.Any] = {}
    out["run"] = see("run", await ctx.run("first", effect("first")))
    await pause(ctx, "between-runs")
    out["typed"] = see("typed", await ctx.run_typed("typed", effect("typed", 41), RunOptions(max_attempts=1)))
    try:
        await ctx.run("refused", failing("refused"))
    except TerminalError as exc:
        out["refused"] = see("refused", [exc.status_code, exc.message])
    out["args"] = see("args", await ctx.run("args", lambda a, b: a + b, args=(2, 3)))
    out["time"] = see("time", await ctx.time())
    await pause(ctx, "after-runs")
    out["uuid"] = see("uuid", str(ctx.uuid()))
    out["random"] = see("random", ctx.random().random())
    out["id"] = see("id", ctx.request().id)
    return out


@tools.handler()
async def sleeps(ctx: Context) -> list:
    first = ctx.sleep(timedelta(minutes=5), name="five")
    second = ctx.sleep(timedelta(seconds=1))
    await second
    see("second", "done")
    await first
    see("first", "done")
    await ctx.sleep(timedelta(0))  # due at once: completed by this attempt, no suspension
    return ["slept"]


@tools.handler()
async def calls(ctx: Context) -> dict:
    out: typing.Dict[str, typing.Any] = {}
    out["service"] = see("service", await ctx.service_call(echo, arg="hi"))
    out["object"] = see("object", await ctx.object_call(add, key="k", arg=2))
    out["workflow"] = see("workflow", await ctx.workflow_call(approve_run, key="wf-called", arg="yes"))
    try:
        await ctx.service_call(refuse, arg="way")
    except TerminalError as exc:
        out["refused"] = see("refused", [exc.status_code, exc.message])
    out["generic"] = see("generic", (await ctx.generic_call("Tools", "echo", b'"raw"')).decode())
    call = ctx.service_call(echo, arg="id")
    out["call_id_is_stable"] = see("call_id", await call.invocation_id())
    await call
    sends = [
        ctx.service_send(echo, arg="one-way"),
        ctx.object_send(add, key="k", arg=5),
        ctx.workflow_send(approve_run, key="wf-sent", arg="sent"),
        ctx.service_send(echo, arg="later", send_delay=timedelta(hours=1)),
        ctx.generic_send("Tools", "echo", b'"generic-send"'),
    ]
    out["sent"] = see("sent", [await handle.invocation_id() for handle in sends])
    return out


@flow.main()
async def approve_run(ctx: WorkflowContext, verdict: str) -> str:
    return f"workflow {ctx.key()}: {verdict}"


@tools.handler()
async def awakeables(ctx: Context) -> dict:
    out: typing.Dict[str, typing.Any] = {}
    own, own_future = ctx.awakeable()
    out["own_id"] = see("own_id", own)
    ctx.resolve_awakeable(own, {"resolved": "by myself"})
    out["own"] = see("own", await own_future)
    refused, refused_future = ctx.awakeable()
    ctx.reject_awakeable(refused, "not today", 451)
    try:
        await refused_future
    except TerminalError as exc:
        out["rejected"] = see("rejected", [exc.status_code, exc.message])
    outside, outside_future = ctx.awakeable()
    see("outside_id", outside)
    out["outside"] = see("outside", await outside_future)  # resolved by the test
    return out


@flow.main()
async def promises(ctx: WorkflowContext) -> dict:
    out: typing.Dict[str, typing.Any] = {}
    out["peek_before"] = see("peek_before", await ctx.promise("own").peek())
    await ctx.promise("own").resolve("mine")
    out["own"] = see("own", await ctx.promise("own").value())
    try:
        await ctx.promise("own").resolve("again")
    except TerminalError as exc:
        out["again"] = see("again", [exc.status_code, exc.message])
    await ctx.promise("refused").reject("nope", 403)
    try:
        await ctx.promise("refused")
    except TerminalError as exc:
        out["refused"] = see("refused", [exc.status_code, exc.message])
    out["verdict"] = see("verdict", await ctx.promise("verdict").value())  # resolved by `approve`
    out["peek_after"] = see("peek_after", await ctx.promise("verdict").peek())
    return out


@tools.handler()
async def attach_and_cancel(ctx: Context) -> dict:
    out: typing.Dict[str, typing.Any] = {}
    sent = ctx.service_send(echo, arg="attached")
    target = await sent.invocation_id()
    out["attached"] = see("attached", await ctx.attach_invocation(target))
    try:
        await ctx.attach_invocation("inv_1missing0000000000000000")
    except TerminalError as exc:
        out["missing"] = see("missing", exc.status_code)
    sleeper = ctx.service_send(nap, arg=None)
    sleeper_id = await sleeper.invocation_id()
    ctx.cancel_invocation(sleeper_id)
    await pause(ctx, "after-cancel")
    try:
        await ctx.attach_invocation(sleeper_id)
    except TerminalError as exc:
        out["cancelled_child"] = see("cancelled_child", [exc.status_code, exc.message])
    return out


@tools.handler()
async def stateless_get(ctx: Context) -> typing.Any:
    return await typing.cast(typing.Any, ctx).get("x")


SCENARIOS = {
    "state": (state, "k"),
    "runs": (runs, None),
    "sleeps": (sleeps, None),
    "calls": (calls, None),
    "awakeables": (awakeables, None),
    "promises": (promises, "wf-1"),
    "attach_and_cancel": (attach_and_cancel, None),
}

app = restate.app([tools, box, flow])
