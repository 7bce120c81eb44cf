"""Services whose logs, metrics and spans the observability tests read.

With OBSERVED_SPANS=<prefix> in the environment, importing this module installs an OpenTelemetry
tracer provider with an in-memory exporter, and restate-pg's spans it holds are written as JSON to
`<prefix>.<pid>.json` when the process exits: each process of a test (ingress, workers) leaves
its own file for the test to read.
"""

from __future__ import annotations

import atexit
import json
import os
import typing
from datetime import timedelta

import restate_pg as restate
from restate_pg import Context, ObjectContext

observed = restate.Service("Observed")
chatty_object = restate.VirtualObject("Chatty")
front = restate.Service("Front")
back = restate.Service("Back")

log = restate.getLogger("observed.chatty")

#: Keys that failed once in this process (each fails on its first try only).
_failed_once: typing.Set[str] = set()


def _fail_once(key: str) -> None:
    if key not in _failed_once:
        _failed_once.add(key)
        raise RuntimeError(f"first try of {key} fails")


@observed.handler()
async def ok(ctx: Context, name: str) -> str:
    shouted = await ctx.run("shout", lambda: name.upper())
    await ctx.sleep(timedelta(milliseconds=20))
    return shouted


@observed.handler()
async def fail(ctx: Context) -> None:
    raise restate.TerminalError("no", 422)


@observed.handler(invocation_retry_policy=restate.InvocationRetryPolicy(initial_interval=timedelta(milliseconds=20)))
async def flaky(ctx: Context, name: str) -> str:
    _fail_once(f"flaky:{name}")
    return name


@observed.handler(inactivity_timeout=timedelta(0))
async def sleeper(ctx: Context) -> None:
    await ctx.sleep(timedelta(hours=1))


@chatty_object.handler(
    inactivity_timeout=timedelta(0),
    invocation_retry_policy=restate.InvocationRetryPolicy(initial_interval=timedelta(milliseconds=20)),
)
async def chat(ctx: ObjectContext) -> str:
    """Logs at every stage; suspends on a sleep of an hour, which the test fires (attempt 2
    replays), then fails once (attempt 3 replays again): each line must be logged once, by the
    attempt that first ran it."""
    log.info("begin")
    await ctx.run("one", lambda: 1)
    log.info("after run")
    await ctx.sleep(timedelta(hours=1))
    log.info("after sleep")
    await ctx.run("two", lambda: 2)
    _fail_once(f"chat:{ctx.key()}")
    log.info("end")
    return "done"


@back.handler()
async def echo(ctx: Context, text: str) -> str:
    return await ctx.run("reverse", lambda: text[::-1])


@front.handler()
async def greet(ctx: Context, name: str) -> str:
    shouted = await ctx.run("shout", lambda: name.upper())
    echoed = await ctx.service_call(echo, shouted)
    return f"{shouted}/{echoed}"


app = restate.app([observed, chatty_object, front, back])


def _install_span_dump(prefix: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    def dump() -> None:
        spans = [
            {
                "name": span.name,
                "kind": span.kind.name,
                "trace_id": format(span.context.trace_id, "032x"),
                "span_id": format(span.context.span_id, "016x"),
                "parent_id": format(span.parent.span_id, "016x") if span.parent is not None else None,
                "attributes": dict(span.attributes or {}),
            }
            for span in exporter.get_finished_spans()
            if span.instrumentation_scope is not None and span.instrumentation_scope.name == "restate_pg"
        ]
        with open(f"{prefix}.{os.getpid()}.json", "w") as out:
            json.dump(spans, out)

    atexit.register(dump)


if os.environ.get("OBSERVED_SPANS"):
    _install_span_dump(os.environ["OBSERVED_SPANS"])
