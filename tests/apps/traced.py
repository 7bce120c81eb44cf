"""`restate_pg.ext.tracing` in a process of its own (a tracer provider can be set once per process):
`python -m tests.apps.traced DATABASE_URL SCHEMA` runs `traced` once through the harness, in
always-replay mode, and prints the finished spans as JSON (tests/test_ext_tracing.py).

The handler opens nested spans through a `RestateTracerProvider`'s tracer, leaves one open, sleeps
(a suspension: the second attempt replays all of it), then opens one more.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta

import restate_pg as restate
from restate_pg import Context

traced_service = restate.Service("Traced")
app = restate.app([traced_service])
tracers = []  # the RestateTracer, once the provider is set


@traced_service.handler()
async def traced(ctx: Context, name: str) -> str:
    tracer = tracers[0]
    with tracer.start_as_current_span("outer"):
        with tracer.start_as_current_span("inner"):  # flattened: a child of the attempt, not of outer
            await ctx.run_typed("step", lambda: name)
    tracer.start_span("left open")  # ended with the attempt
    await ctx.sleep(timedelta(milliseconds=100))
    with tracer.start_as_current_span("after"):
        return f"traced {name}"


async def main(database_url: str, schema: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from restate_pg.ext.tracing import RestateTracerProvider
    from restate_pg.testing import create_test_harness

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracers.append(RestateTracerProvider(provider).get_tracer("agent-framework"))
    async with create_test_harness(app, always_replay=True, database_url=database_url, schema=schema) as env:
        answer = await env.client.service_call(traced, "Ada")
    spans = [
        {"name": span.name, "span_id": format(span.context.span_id, "016x"),
         "parent_id": format(span.parent.span_id, "016x") if span.parent is not None else None,
         "attempt": (span.attributes or {}).get("restate.invocation.attempt")}
        for span in exporter.get_finished_spans()
    ]
    print(json.dumps({"answer": answer, "spans": spans}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
