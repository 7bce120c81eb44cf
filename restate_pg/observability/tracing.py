"""OpenTelemetry spans: ingress request -> attempt -> ctx.run and calls, one trace across processes.

Optional: with the `otel` extra installed and a tracer provider set by the application
(`opentelemetry.trace.set_tracer_provider`), restate-pg records spans; otherwise every function
here returns at its first check. The trace context travels in the invocation's headers (W3C
`traceparent`, stored with the invocation), so the worker that runs an invocation, in whatever
process, continues the trace of the request or the handler that submitted it.
"""

from __future__ import annotations

import contextlib
import time
import typing

if typing.TYPE_CHECKING:
    from restate_pg.core.records import InvocationRecord, Lease

_api: typing.Any = None  # the opentelemetry modules once imported; False when not installed
_tracer: typing.Any = None  # set once the application has set a tracer provider (it can only once)
_off_until = 0.0  # no provider was set when last asked: do not ask again before this time

_NO_SPAN: typing.ContextManager[None] = contextlib.nullcontext()


def _load() -> typing.Any:
    global _api
    try:
        from opentelemetry import propagate, trace
    except ImportError:
        _api = False
    else:
        _api = (trace, propagate)
    return _api


def tracer() -> typing.Any:
    """restate-pg's tracer, or None when tracing is off (no OpenTelemetry, or no provider set).

    Without a provider the answer is kept for a second: asking OpenTelemetry costs more than
    the rest of the per-invocation bookkeeping, and a provider set later is seen soon enough."""
    global _tracer, _off_until
    if _tracer is not None or _api is False:
        return _tracer
    now = time.monotonic()
    if now < _off_until:
        return None
    api = _api if _api is not None else _load()
    if api is False:
        return None
    provider = api[0].get_tracer_provider()
    if isinstance(provider, (api[0].ProxyTracerProvider, api[0].NoOpTracerProvider)):
        _off_until = now + 1.0
        return None
    from restate_pg.core.version import VERSION

    _tracer = provider.get_tracer("restate_pg", VERSION)
    return _tracer


def _target(service: str, handler: str, key: typing.Optional[str]) -> str:
    return f"{service}/{handler}" if key is None else f"{service}/{key}/{handler}"


def ingress_span(http_headers: typing.Mapping[str, str]) -> typing.ContextManager[typing.Any]:
    """The span of an ingress request, child of the caller's `traceparent` if it sent one."""
    tracer_ = tracer()
    if tracer_ is None:
        return _NO_SPAN
    trace, propagate = _api
    return tracer_.start_as_current_span(
        "ingress", context=propagate.extract(http_headers), kind=trace.SpanKind.SERVER
    )


def submitted(headers: typing.Dict[str, str], invocation_id: str, service: str, handler: str, key: typing.Optional[str]) -> None:
    """Name the current ingress span after its target and put its context in the invocation's
    headers, for the worker to continue."""
    if tracer() is None:
        return
    trace, propagate = _api
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"ingress {service}/{handler}")
        span.set_attribute("restate.invocation.id", invocation_id)
        span.set_attribute("restate.invocation.target", _target(service, handler, key))
    propagate.inject(headers)


def attempt_span(invocation: "InvocationRecord", lease: "Lease") -> typing.ContextManager[typing.Any]:
    """The span of one attempt, child of the span that submitted the invocation."""
    tracer_ = tracer()
    if tracer_ is None:
        return _NO_SPAN
    trace, propagate = _api
    return tracer_.start_as_current_span(
        f"invoke {invocation.service}/{invocation.handler}",
        context=propagate.extract(invocation.headers),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "restate.invocation.id": invocation.id,
            "restate.invocation.target": _target(invocation.service, invocation.handler, invocation.key),
            "restate.invocation.attempt": lease.attempt,
        },
    )


def inject_current(headers: typing.Dict[str, str]) -> None:
    """Put the current span's context (the attempt's) in `headers`, replacing the submitter's:
    a handler's `ctx.request().attempt_headers` carry it, as Restate's attempt headers do."""
    if tracer() is None:
        return
    for name in [name for name in headers if name.lower() in ("traceparent", "tracestate")]:
        del headers[name]
    _api[1].inject(headers)


def end_attempt(span: typing.Any, outcome: str) -> None:
    """Record how the attempt ended on its span (None when tracing is off)."""
    if span is None:
        return
    span.set_attribute("restate.attempt.outcome", outcome)
    if outcome in ("failed", "retry", "paused"):
        span.set_status(_api[0].Status(_api[0].StatusCode.ERROR, outcome))


async def traced_run(name: str, body: typing.Awaitable[None]) -> None:
    """Await a ctx.run's execution inside its span (only called when `tracer()` is not None)."""
    with tracer().start_as_current_span(f"run {name}", attributes={"restate.run.name": name}):
        await body


def outgoing(headers: typing.Dict[str, str], kind: str, callee: str, service: str, handler: str, key: typing.Optional[str]) -> None:
    """A span for a call or send a handler issues; its context goes in the callee's headers."""
    tracer_ = tracer()
    if tracer_ is None:
        return
    trace, propagate = _api
    verb = "call" if kind == "Call" else "send"
    with tracer_.start_as_current_span(
        f"{verb} {service}/{handler}",
        kind=trace.SpanKind.PRODUCER,
        attributes={"restate.invocation.id": callee, "restate.invocation.target": _target(service, handler, key)},
    ):
        propagate.inject(headers)
