"""Logs, metrics and traces for operators, in the formats their tools already read.

`logs`: invocation fields on log records and the replay-aware logger of restate-sdk;
`metrics`: process-local counters, exposed in Prometheus' format; `tracing`: OpenTelemetry spans
when the `otel` extra is installed and the application set a tracer provider.
"""
