"""VirtualObjectCommandInterpreter: runs a list of commands (awaits over awakeables, sleeps, runs
and signals, with every combinator), appending each command's result to the state "results"."""

from __future__ import annotations

import os
import typing
from datetime import timedelta

import restate_pg as restate
from restate_pg import ObjectContext, ObjectSharedContext, TerminalError

interpreter = restate.VirtualObject("VirtualObjectCommandInterpreter")

Future = typing.Any  # a durable future of restate_pg


def _awakeable_state(key: str) -> str:
    return f"awk-{key}"


def _awaitable(ctx: ObjectContext, command: dict) -> typing.Tuple[Future, typing.Callable[[typing.Any], str]]:
    """The future an awaitable command starts, and how its value reads as a result string."""
    kind = command["type"]
    if kind == "createAwakeable":
        awakeable_id, future = ctx.awakeable(type_hint=str)
        ctx.set(_awakeable_state(command["awakeableKey"]), awakeable_id)
        return future, str
    if kind == "sleep":
        return ctx.sleep(timedelta(milliseconds=command["timeoutMillis"])), lambda _: "sleep"
    if kind == "runThrowTerminalException":
        reason = command["reason"]

        def fail() -> str:
            raise TerminalError(reason)

        return ctx.run_typed("run should fail", fail), str
    if kind == "runReturns":
        value = command["value"]
        return ctx.run_typed("run returns", lambda: value), str
    if kind == "createSignal":
        return ctx.signal(command["signalName"], type_hint=str), str
    raise TerminalError(f"unknown awaitable command {kind!r}")


async def _outcome(future: Future, read: typing.Callable[[typing.Any], str]) -> typing.Tuple[bool, str]:
    """(succeeded, result string or failure message)."""
    try:
        return True, read(await future)
    except TerminalError as exc:
        return False, exc.message


async def _first_succeeded_or_all_failed(awaitables: typing.List[typing.Tuple[Future, typing.Any]]) -> str:
    readers = {id(future): read for future, read in awaitables}
    pending = [future for future, _ in awaitables]
    last: typing.Optional[str] = None
    while pending:
        done, pending = await restate.wait_completed(*pending)
        for future in done:
            ok, result = await _outcome(future, readers[id(future)])
            if ok:
                return result
            last = result
    raise TerminalError(last or "all failed")


async def _all_succeeded_or_first_failed(awaitables: typing.List[typing.Tuple[Future, typing.Any]]) -> str:
    async for future in restate.as_completed(*(future for future, _ in awaitables)):
        await future  # the first failure raises
    return "|".join([read(await future) for future, read in awaitables])


async def _all_completed(awaitables: typing.List[typing.Tuple[Future, typing.Any]]) -> str:
    await restate.gather(*(future for future, _ in awaitables))
    results = []
    for future, read in awaitables:
        ok, result = await _outcome(future, read)
        results.append(("ok:" if ok else "err:") + result)
    return "|".join(results)


async def _execute(ctx: ObjectContext, command: dict) -> str:
    kind = command["type"]
    if kind == "awaitOne":
        future, read = _awaitable(ctx, command["command"])
        return read(await future)
    if kind in ("awaitAny", "awaitFirstCompleted"):
        awaitables = [_awaitable(ctx, c) for c in command["commands"]]
        readers = {id(future): read for future, read in awaitables}
        done, _ = await restate.wait_completed(*(future for future, _ in awaitables))
        return readers[id(done[0])](await done[0])
    if kind in ("awaitAnySuccessful", "awaitFirstSucceededOrAllFailed"):
        return await _first_succeeded_or_all_failed([_awaitable(ctx, c) for c in command["commands"]])
    if kind == "awaitAllSucceededOrFirstFailed":
        return await _all_succeeded_or_first_failed([_awaitable(ctx, c) for c in command["commands"]])
    if kind == "awaitAllCompleted":
        return await _all_completed([_awaitable(ctx, c) for c in command["commands"]])
    if kind == "awaitAwakeableOrTimeout":
        awakeable_id, awakeable = ctx.awakeable(type_hint=str)
        ctx.set(_awakeable_state(command["awakeableKey"]), awakeable_id)
        match await restate.select(awakeable=awakeable, timeout=ctx.sleep(timedelta(milliseconds=command["timeoutMillis"]))):
            case ["awakeable", value]:
                return value
        raise TerminalError("await-timeout")
    if kind in ("resolveAwakeable", "rejectAwakeable"):
        await _complete_awakeable(ctx, command)
        return ""
    if kind == "getEnvVariable":
        name = command["envName"]
        return await ctx.run_typed("get env", lambda: os.environ.get(name, ""))
    raise TerminalError(f"unknown command {kind!r}")


async def _complete_awakeable(ctx: ObjectSharedContext | ObjectContext, request: dict) -> None:
    awakeable_id = await ctx.get(_awakeable_state(request["awakeableKey"]), type_hint=str)
    if awakeable_id is None:
        raise TerminalError(f"No awakeable registered for {request['awakeableKey']!r}")
    if "reason" in request:
        ctx.reject_awakeable(awakeable_id, request["reason"])
    else:
        ctx.resolve_awakeable(awakeable_id, request["value"])


@interpreter.handler(name="interpretCommands")
async def interpret_commands(ctx: ObjectContext, program: dict) -> str:
    result = ""
    for command in program["commands"]:
        result = await _execute(ctx, command)
        ctx.set("results", [*(await ctx.get("results", type_hint=list[str]) or []), result])
    return result


@interpreter.handler(name="resolveAwakeable", kind="shared")
async def resolve_awakeable(ctx: ObjectSharedContext, request: dict) -> None:
    await _complete_awakeable(ctx, {"awakeableKey": request["awakeableKey"], "value": request["value"]})


@interpreter.handler(name="rejectAwakeable", kind="shared")
async def reject_awakeable(ctx: ObjectSharedContext, request: dict) -> None:
    await _complete_awakeable(ctx, {"awakeableKey": request["awakeableKey"], "reason": request["reason"]})


@interpreter.handler(name="hasAwakeable", kind="shared")
async def has_awakeable(ctx: ObjectSharedContext, key: str) -> bool:
    return await ctx.get(_awakeable_state(key), type_hint=str) is not None


@interpreter.handler(name="getResults", kind="shared")
async def get_results(ctx: ObjectSharedContext) -> list[str]:
    return await ctx.get("results", type_hint=list[str]) or []
