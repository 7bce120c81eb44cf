"""restate-sdk's `restate.ext.tracing`: OpenTelemetry tracers that hang every span under the attempt.

Agent frameworks (pydantic-ai, openai-agents, ADK) nest their spans as they please, and a replayed
handler would record them again. Wrapping their tracer (or tracer provider) makes each span a
direct child of the attempt's span, whose context restate-pg puts in
`ctx.request().attempt_headers` (W3C `traceparent`), and gives replayed code non-recording spans.
Spans the handler leaves open are ended when the attempt ends.
"""

from __future__ import annotations

import typing

try:
    from opentelemetry import context as context_api
    from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Tracer, TracerProvider, use_span
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from opentelemetry.util import types
    from opentelemetry.util._decorator import _agnosticcontextmanager
except ImportError:  # pragma: no cover - exercised without the extra
    from restate_pg.ext._requires import missing

    missing("tracing", "opentelemetry-api", "otel")

from restate_pg.runtime.current import current_context
from restate_pg.runtime.extension_data import get_extension_data, set_extension_data

__all__ = ["RestateTracer", "RestateTracerProvider"]

_PROPAGATOR = TraceContextTextMapPropagator()
_OPEN_SPANS = "restate_pg.ext.tracing.open_spans"


class _OpenSpans:
    """The spans started in one attempt; closed with the attempt (extension data's `__close__`)."""

    def __init__(self) -> None:
        self.spans: typing.List[Span] = []

    def __close__(self) -> None:
        for span in self.spans:
            if span.is_recording():
                span.end()
        self.spans.clear()


def _replaying() -> bool:
    ctx = current_context()
    return ctx is not None and ctx.is_replaying()


def _attempt_context() -> typing.Optional[context_api.Context]:
    """The OpenTelemetry context of the running attempt (from its attempt headers)."""
    ctx = current_context()
    if ctx is None:
        raise RuntimeError("You are not in a Restate handler")
    return _PROPAGATOR.extract(ctx.request().attempt_headers)


class RestateTracer(Tracer):
    """A tracer whose spans are children of the attempt's span; no-op spans while replaying."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def start_span(
        self,
        name: str,
        context: typing.Optional[context_api.Context] = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: typing.Optional[typing.Sequence[Link]] = None,
        start_time: typing.Optional[int] = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        if _replaying():
            return INVALID_SPAN
        parent = _attempt_context()
        span = self._tracer.start_span(
            name, context=parent if parent is not None else context, kind=kind, attributes=attributes, links=links,
            start_time=start_time, record_exception=record_exception, set_status_on_exception=set_status_on_exception,
        )
        _remember(span)
        return span

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: typing.Optional[context_api.Context] = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: typing.Optional[typing.Sequence[Link]] = None,
        start_time: typing.Optional[int] = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> typing.Iterator[Span]:
        if _replaying():
            with use_span(INVALID_SPAN, end_on_exit=False) as span:
                yield span
            return
        parent = _attempt_context()
        with self._tracer.start_as_current_span(
            name, context=parent if parent is not None else context, kind=kind, attributes=attributes, links=links,
            start_time=start_time, record_exception=record_exception, set_status_on_exception=set_status_on_exception,
            end_on_exit=end_on_exit,
        ) as span:
            yield span

    def __getattr__(self, name: str) -> typing.Any:
        return getattr(self._tracer, name)


def _remember(span: Span) -> None:
    ctx = current_context()
    if ctx is None:
        return
    spans = get_extension_data(ctx, _OPEN_SPANS)
    if spans is None:
        spans = _OpenSpans()
        set_extension_data(ctx, _OPEN_SPANS, spans)
    spans.spans.append(span)


class RestateTracerProvider(TracerProvider):
    """A provider of `RestateTracer`s: hand it to an instrumentor (`GoogleADKInstrumentor`, ...)."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider

    def get_tracer(self, *args: typing.Any, **kwargs: typing.Any) -> RestateTracer:
        return RestateTracer(self._provider.get_tracer(*args, **kwargs))

    def __getattr__(self, name: str) -> typing.Any:
        return getattr(self._provider, name)
