"""Process-local counters and histograms, exposed in Prometheus' text format.

Counting costs a dict lookup and an addition, always (no lock: the engine counts from its event
loop only). `prometheus_client` (the `metrics` extra) is needed only to expose them: at scrape
time `Collector` turns the dicts into metric families, beside the gauges read from the database.
"""

from __future__ import annotations

import bisect
import logging
import typing

logger = logging.getLogger("restate_pg.metrics")

Labels = typing.Tuple[str, str]  # (service, handler)

#: Bucket bounds in seconds: from a millisecond (a ctx.run, a claim) to ten minutes (a backlog).
BUCKETS: typing.Tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
)

#: The statuses of the `restate_pg_invocations` gauge (issue 5's `sys_invocation.status`, less
#: the ones without a task row).
STATUSES = ("ready", "running", "suspended", "backing-off", "paused", "scheduled")


class Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.sum += value


class Metrics:
    """What this process counted since it started, keyed by (service, handler)."""

    def __init__(self) -> None:
        self.started: typing.Dict[Labels, int] = {}
        self.completed: typing.Dict[Labels, int] = {}
        self.failed: typing.Dict[Labels, int] = {}
        self.retries: typing.Dict[Labels, int] = {}
        self.paused: typing.Dict[Labels, int] = {}
        self.claim_lag: typing.Dict[Labels, Histogram] = {}
        self.run_duration: typing.Dict[Labels, Histogram] = {}
        self.timer_lateness: typing.Dict[Labels, Histogram] = {}

    @staticmethod
    def count(counter: typing.Dict[Labels, int], labels: Labels) -> None:
        counter[labels] = counter.get(labels, 0) + 1

    @staticmethod
    def observe(histograms: typing.Dict[Labels, Histogram], labels: Labels, seconds: float) -> None:
        histogram = histograms.get(labels)
        if histogram is None:
            histogram = histograms[labels] = Histogram()
        histogram.observe(seconds)

    def attempt_ended(self, labels: Labels, outcome: str) -> None:
        """Count an attempt's committed outcome (see `Attempt.outcome`)."""
        counter = _OUTCOME_COUNTERS.get(outcome)
        if counter is not None:
            self.count(getattr(self, counter), labels)


_OUTCOME_COUNTERS = {"completed": "completed", "failed": "failed", "retry": "retries", "paused": "paused"}

#: The counters of this process.
METRICS = Metrics()

_COUNTERS = (
    ("started", "restate_pg_invocations_started", "Invocations whose first attempt started in this process."),
    ("completed", "restate_pg_invocations_completed", "Invocations that completed successfully in this process."),
    ("failed", "restate_pg_invocations_failed", "Invocations that completed with a terminal failure in this process."),
    ("retries", "restate_pg_invocation_retries", "Attempts that failed and were scheduled to retry after a backoff."),
    ("paused", "restate_pg_invocations_paused", "Invocations paused after their last allowed attempt failed."),
)
_HISTOGRAMS = (
    ("claim_lag", "restate_pg_claim_lag_seconds", "From when a task was due (run_at) to when a worker claimed it."),
    ("run_duration", "restate_pg_run_duration_seconds", "ctx.run steps, from start to their result being durable."),
    ("timer_lateness", "restate_pg_timer_lateness_seconds", "How late a ctx.sleep fired after its due time."),
)


def available() -> bool:
    """Whether `prometheus_client` is installed (the `metrics` extra)."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


MISSING = "metrics need the prometheus_client package: pip install 'restate-pg[metrics]'"


class Collector:
    """The counters and histograms of `metrics`, for a prometheus_client registry."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> typing.Iterator[typing.Any]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        for attribute, name, documentation in _COUNTERS:
            family = CounterMetricFamily(name, documentation, labels=("service", "handler"))
            for labels, value in sorted(getattr(self.metrics, attribute).items()):
                family.add_metric(labels, value)
            yield family
        bounds = [repr(b) for b in BUCKETS] + ["+Inf"]
        for attribute, name, documentation in _HISTOGRAMS:
            hfamily = HistogramMetricFamily(name, documentation, labels=("service", "handler"))
            for labels, histogram in sorted(getattr(self.metrics, attribute).items()):
                cumulative, running = [], 0
                for bound, count in zip(bounds, histogram.counts):
                    running += count
                    cumulative.append((bound, running))
                hfamily.add_metric(labels, cumulative, histogram.sum)
            yield hfamily


class TaskGauges:
    """Invocations by service and status, and those no live worker can resume by deployment, as
    one scrape read them from the task table."""

    def __init__(self, tasks: typing.Mapping[typing.Tuple[str, str], int],
                 stranded: typing.Sequence[typing.Tuple[str, int]] = ()) -> None:
        self.tasks = tasks
        self.stranded = stranded

    def collect(self) -> typing.Iterator[typing.Any]:
        from prometheus_client.core import GaugeMetricFamily

        gauge = GaugeMetricFamily(
            "restate_pg_invocations",
            "Invocations not completed, by status, read from the task table at scrape time "
            "(the same in every process). ready: due and waiting for a worker.",
            labels=("service", "status"),
        )
        for (service, status), value in sorted(self.tasks.items()):
            gauge.add_metric((service, status), value)
        yield gauge
        stranded = GaugeMetricFamily(
            "restate_pg_invocations_stranded",
            "Invocations pinned to a deployment that no registered worker runs or resumes: they wait "
            "until one starts, or until `restate-pg deployments compatible NEW DEPLOYMENT` lets NEW resume them.",
            labels=("deployment",),
        )
        for deployment, value in self.stranded:
            stranded.add_metric((deployment,), value)
        yield stranded


class FlowGauges:
    """Flow control as one scrape read it: invocations per scope and per service/handler under a
    rule, by stage, and each enabled rule's limits (docs/flow-control.md)."""

    def __init__(self, scopes: typing.Sequence[typing.Mapping[str, typing.Any]],
                 rules: typing.Sequence[typing.Mapping[str, typing.Any]],
                 targets: typing.Sequence[typing.Mapping[str, typing.Any]] = ()) -> None:
        self.scopes = scopes
        self.rules = rules
        self.targets = targets

    def collect(self) -> typing.Iterator[typing.Any]:
        from prometheus_client.core import GaugeMetricFamily

        stages = GaugeMetricFamily(
            "restate_pg_flow_invocations",
            "Scoped invocations not completed, by scope and stage: running (holding a slot), queued (due, "
            "waiting for a slot or a token), waiting (suspended, backing off, scheduled).",
            labels=("scope", "stage"),
        )
        for row in self.scopes:
            for stage in ("running", "queued", "waiting"):
                stages.add_metric((row["scope"], stage), row[stage])
        yield stages
        targets = GaugeMetricFamily(
            "restate_pg_flow_target_invocations",
            "Invocations not completed of each service/handler a rule names, by stage (as restate_pg_flow_invocations).",
            labels=("target", "stage"),
        )
        for row in self.targets:
            for stage in ("running", "queued", "waiting"):
                targets.add_metric((row["target"], stage), row[stage])
        yield targets
        limits = GaugeMetricFamily(
            "restate_pg_flow_rule_limit",
            "The limits of each enabled flow-control rule: concurrency, rate_per_second, burst, backlog; "
            "of service/handler rules also concurrency_per_key, priority, debounce_ms.",
            labels=("pattern", "limit"),
        )
        for rule in self.rules:
            if rule["disabled"]:
                continue
            for limit, value in (("concurrency", rule["concurrency"]), ("burst", rule["burst"]), ("backlog", rule["backlog"]),
                                 ("concurrency_per_key", rule["concurrency_per_key"]), ("priority", rule["priority"]),
                                 ("debounce_ms", rule["debounce_ms"]),
                                 ("rate_per_second", None if rule["rate"] is None else rule["rate"] * 1000 / rule["rate_interval_ms"])):
                if value is not None:
                    limits.add_metric((rule["pattern"], limit), value)
        yield limits


_registered = False


def register_default() -> None:
    """Put this process's counters in prometheus_client's default registry, so that an application
    that already exposes it shows them too. Does nothing without prometheus_client."""
    global _registered
    if _registered or not available():
        return
    from prometheus_client import REGISTRY

    REGISTRY.register(Collector(METRICS))
    _registered = True


async def exposition(store: typing.Any, services: typing.Sequence[str]) -> typing.Tuple[bytes, str]:
    """The body and content type of a scrape: the default registry (this process's counters, the
    process and any application metrics), then the task gauges read from `store` now."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    register_default()
    tasks: typing.Optional[typing.Dict[typing.Tuple[str, str], int]] = None
    try:
        tasks = {(service, status): 0 for service in services for status in STATUSES}
        for service, status, count in await store.task_gauges():
            tasks[(service, status)] = count
        stranded = await store.stranded_invocations()
        flow = FlowGauges(await store.flow_scope_gauges(), await store.list_flow_rules(), await store.flow_target_queues())
    except Exception as exc:  # the counters are still worth serving
        logger.warning("task gauges not read: %s", exc)
        tasks = None
    body = generate_latest(REGISTRY)
    if tasks is not None:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(TaskGauges(tasks, stranded))
        scrape.register(flow)
        body += generate_latest(scrape)
    return body, CONTENT_TYPE_LATEST
