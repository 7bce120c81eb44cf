"""The workloads of issue 3, one function each. Every one drives the system through its HTTP
ingress with hey and returns its figures as {name: value}; what looks wrong (a non-2xx answer, an
inexact count, an invocation that never completes) is reported through `Context.fail`."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bench import database, procs
from bench.database import Conn, Database
from bench.loadgen import HeyResult, hey, hey_chains, pgbench
from bench.stats import percentile
from bench.systems import Progress, System, post_json, url_add, url_send_sleeper, url_send_steps, url_steps

Metrics = dict[str, float]

STEPS_BODY = '"bench"'
STEPS_RESULT = "bench:abc"


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does. hey sends n // c * c requests, so counts are multiples
    of the concurrency: 3,008 for the issue's 3,000, 2,016 for 2,000, 5,024 for 5,000."""

    concurrency: int = 32
    w1_warmup: int = 30
    w1_calls: int = 300
    w2_calls: int = 3008
    w3_calls: int = 2016
    w3_keys: int = 256
    w3_calls_per_key: int = 8  # 256 keys x 8 = 2,048 calls
    w4_sends: int = 5024
    w5_sleepers: int = 500
    w5_send_concurrency: int = 20  # 500 = 25 x 20
    w5_sleep_ms: int = 2000
    limit_seconds: int = 8
    limit_clients: tuple[int, ...] = (1, 8, 32)
    settle_s: float = database.STATS_SETTLE_S
    stall_s: float = 120.0  # give up waiting for completions after this long without progress


FULL = Sizes()
QUICK = Sizes(
    w1_warmup=10, w1_calls=50, w2_calls=320, w3_calls=320, w3_keys=64, w3_calls_per_key=5,
    w4_sends=512, w5_sleepers=100, limit_seconds=2,
)


@dataclass
class Notes:
    """What went wrong, or may have skewed a figure, in one part of a run."""

    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        """Something is wrong with the system: reported, and the benchmark exits non-zero."""
        self.failures.append(message)
        print(f"  FAILED: {message}", file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        """Something that may skew a figure."""
        self.warnings.append(message)
        print(f"  warning: {message}", file=sys.stderr, flush=True)


@dataclass
class Context(Notes):
    """One system's turn in a run: the connection is to the database it stores in (for a system
    with its own storage, the benchmark database, used only for the clock)."""

    system: System = field(kw_only=True)
    db: Database = field(kw_only=True)
    conn: Conn = field(kw_only=True)
    sizes: Sizes = field(kw_only=True)
    #: SDK endpoint processes serving the system's handlers (bench/typescript): their CPU is
    #: measured apart from the system's, and counted in its total.
    sdk_pids: list[int] = field(default_factory=list, kw_only=True)


def check_http(ctx: Context, label: str, result: HeyResult, expected: int) -> None:
    unexpected = {status: n for status, n in sorted(result.statuses.items()) if status != expected}
    if unexpected:
        count = sum(unexpected.values())
        ctx.fail(f"{label}: {count} of {result.requested} responses were not {expected}: {unexpected}")
    if result.transport_errors:
        ctx.fail(f"{label}: {result.transport_errors} of {result.requested} requests got no response "
                 "(timeout or connection error)")


def smoke(ctx: Context) -> None:
    """One call of each handler, checking the answers, before timing anything."""
    status, body = post_json(url_steps(ctx.system), "bench")
    if (status, body) != (200, STEPS_RESULT):
        ctx.fail(f"smoke: Bench/three_steps answered {status} {body!r}, expected 200 {STEPS_RESULT!r}")
    status, body = post_json(url_add(ctx.system, "smoke"), 1)
    if (status, body) != (200, 1):
        ctx.fail(f"smoke: BenchCounter/smoke/add answered {status} {body!r}, expected 200 1")


def w1_latency(ctx: Context) -> Metrics:
    """Sequential request-response calls of the three-step handler (after a warm-up)."""
    s = ctx.sizes
    hey(url_steps(ctx.system), s.w1_warmup, 1, STEPS_BODY)
    result = hey(url_steps(ctx.system), s.w1_calls, 1, STEPS_BODY)
    check_http(ctx, "W1", result, 200)
    return {"w1.p50_ms": result.latency_ms(50), "w1.p90_ms": result.latency_ms(90), "w1.p99_ms": result.latency_ms(99)}


def w2_throughput(ctx: Context) -> Metrics:
    """Concurrent calls of the three-step handler, and what they cost: CPU of the system's
    processes and, for a system storing in PostgreSQL, of PostgreSQL, commits and WAL, per invocation."""
    s, conn = ctx.sizes, ctx.conn
    on_pg = ctx.system.db is not None
    if on_pg:
        # Backends report commits late (see database.commits): after a first quiet spell, count the
        # idle system's own commits (polls, heartbeats) over a second one, to subtract them below.
        time.sleep(s.settle_s)
        idle_start, idle_commits = time.monotonic(), database.commits(conn, ctx.db.name)
        time.sleep(s.settle_s)
        commits_before, window_start = database.commits(conn, ctx.db.name), time.monotonic()
        idle_rate = (commits_before.ours - idle_commits.ours) / (window_start - idle_start)
        pg_before = database.postgres_cpu(conn, ctx.db.name)
        wal_before = database.wal_lsn(conn)
    ours_before = procs.tree_cpu_s(ctx.system.pids())
    sdk_before = procs.tree_cpu_s(ctx.sdk_pids)
    hey_before = _children_cpu_s()
    machine_before, steal_before = procs.machine_busy_s(), procs.machine_steal_s()

    result = hey(url_steps(ctx.system), s.w2_calls, s.concurrency, STEPS_BODY)

    machine_cpu = procs.machine_busy_s() - machine_before
    steal = procs.machine_steal_s() - steal_before
    hey_cpu = _children_cpu_s() - hey_before
    ours_cpu = procs.tree_cpu_s(ctx.system.pids()) - ours_before
    sdk_cpu = procs.tree_cpu_s(ctx.sdk_pids) - sdk_before
    check_http(ctx, "W2", result, 200)
    n = result.count(200) or 1
    metrics = {
        "w2.invocations_per_s": result.count(200) / result.wall_s,
        "w2.p50_ms": result.latency_ms(50),
        "w2.p99_ms": result.latency_ms(99),
        "cost.engine_cpu_ms_per_inv": ours_cpu * 1000 / n,
        "cost.loadgen_cpu_ms_per_inv": hey_cpu * 1000 / n,
    }
    if ctx.sdk_pids:
        metrics["cost.sdk_cpu_ms_per_inv"] = sdk_cpu * 1000 / n
        ours_cpu += sdk_cpu  # the totals below count the endpoint's share too
    if not on_pg:  # its own storage: its processes are the whole cost
        metrics["cost.total_cpu_ms_per_inv"] = ours_cpu * 1000 / n
        _warn_other_cpu(ctx, metrics, machine_cpu, machine_cpu - ours_cpu - hey_cpu, steal)
        return metrics

    pg_after = database.postgres_cpu(conn, ctx.db.name)
    wal = database.wal_bytes(conn, wal_before, database.wal_lsn(conn))
    time.sleep(s.settle_s)
    commits_after = database.commits(conn, ctx.db.name)
    commits = commits_after.ours - commits_before.ours - idle_rate * (time.monotonic() - window_start)
    metrics |= {
        "cost.commits_per_inv": commits / n,
        "cost.idle_commits_per_s": idle_rate,
        "cost.wal_bytes_per_inv": wal / n,
    }
    if pg_before is None or pg_after is None:
        ctx.warn("PostgreSQL does not run on this machine (or its processes are hidden): no PostgreSQL CPU figures")
    else:
        pg_cpu, exited = database.cpu_delta(pg_before, pg_after)
        if exited:
            ctx.warn(f"W2: {exited} PostgreSQL process(es) exited during the measurement; "
                     "their last CPU is not counted")
        metrics["cost.pg_cpu_ms_per_inv"] = pg_cpu * 1000 / n
        metrics["cost.total_cpu_ms_per_inv"] = (pg_cpu + ours_cpu) * 1000 / n
        metrics["cost.pg_server_cpu_ms_per_inv"] = (pg_after.server_s - pg_before.server_s) * 1000 / n
        _warn_other_cpu(ctx, metrics, machine_cpu, machine_cpu - ours_cpu - pg_cpu - hey_cpu, steal)
    others = commits_after.others - commits_before.others
    if others > 0.05 * commits:
        ctx.warn(f"W2: other databases on the server committed {others} transactions meanwhile: "
                 "WAL and server-wide figures include their share, and they competed for the CPU")
    return metrics


def _warn_other_cpu(ctx: Context, metrics: Metrics, machine_cpu: float, other: float, steal: float) -> None:
    """Whatever else ran on the machine meanwhile competed with the system for the 2 cores; the
    hypervisor's steal (part of `other`) is named apart: no process on the machine can cause it."""
    metrics["w2.other_cpu_s"] = other
    metrics["w2.steal_s"] = steal
    if other > 0.1 * machine_cpu:
        ctx.warn(f"W2: other processes on the machine used {other:.1f} of the {machine_cpu:.1f} CPU seconds "
                 f"spent during the measurement ({steal:.1f} of them the hypervisor's steal)")


def w3_keyed_state(ctx: Context) -> Metrics:
    """The counter object's exclusive add(1): all calls on one key, then spread over many keys;
    the stored counts must equal the successful calls exactly."""
    s = ctx.sizes
    one = hey(url_add(ctx.system, "one"), s.w3_calls, s.concurrency, "1")
    check_http(ctx, "W3 one key", one, 200)
    _check_counts(ctx, "W3 one key", {"one": one.count(200)})

    keys = {url_add(ctx.system, f"k{i:03d}"): f"k{i:03d}" for i in range(s.w3_keys)}
    urls = list(keys)
    chains = [urls[i :: s.concurrency] for i in range(s.concurrency)]  # one connection per chain
    per_url, wall = hey_chains(chains, s.w3_calls_per_key, "1")
    spread = HeyResult(requested=0)
    for result in per_url.values():
        spread.merge(result)
    check_http(ctx, f"W3 {s.w3_keys} keys", spread, 200)
    _check_counts(ctx, f"W3 {s.w3_keys} keys", {keys[url]: r.count(200) for url, r in per_url.items()})
    return {
        "w3.one_key_calls_per_s": one.count(200) / one.wall_s,
        "w3.one_key_p50_ms": one.latency_ms(50),
        "w3.spread_calls_per_s": spread.count(200) / wall,
        "w3.spread_p50_ms": spread.latency_ms(50),
    }


def _check_counts(ctx: Context, label: str, expected: dict[str, int]) -> None:
    stored = ctx.system.counter_values(ctx.conn, list(expected))
    wrong = {key: (stored.get(key, 0), n) for key, n in expected.items() if stored.get(key, 0) != n}
    if wrong:
        examples = ", ".join(f"{key}: stored {got}, {want} successful adds"
                             for key, (got, want) in list(wrong.items())[:5])
        ctx.fail(f"{label}: counts are NOT exact for {len(wrong)} of {len(expected)} key(s): {examples}")
    else:
        print(f"  {label}: counts exact ({sum(expected.values())} adds over {len(expected)} key(s))", file=sys.stderr)


def w4_fire_and_forget(ctx: Context) -> Metrics:
    """Sends of the three-step handler; completions per second from the first send to the last completion."""
    s = ctx.sizes
    since = database.db_now(ctx.conn)
    sends = hey(url_send_steps(ctx.system), s.w4_sends, s.concurrency, STEPS_BODY)
    check_http(ctx, "W4 sends", sends, 202)
    metrics = {"w4.sends_per_s": sends.count(202) / sends.wall_s}
    done = _wait_completed(ctx, "W4", "three_steps", since, sends.count(202))
    if done is not None and done.first_created and done.last_completed:
        span = (done.last_completed - done.first_created).total_seconds()
        metrics["w4.completions_per_s"] = done.completed / span
    return metrics


def w5_timers(ctx: Context) -> Metrics:
    """Sends of a handler that sleeps. Lateness: the sleep's completion (journaled) minus the
    wake-up time journaled with the Sleep command; overrun: completion minus (creation + sleep),
    which adds the wait before the handler started."""
    s = ctx.sizes
    since = database.db_now(ctx.conn)
    sends = hey(url_send_sleeper(ctx.system), s.w5_sleepers, s.w5_send_concurrency, str(s.w5_sleep_ms))
    check_http(ctx, "W5 sends", sends, 202)
    done = _wait_completed(ctx, "W5", "sleeper", since, sends.count(202))
    timings = ctx.system.sleep_timings(ctx.conn, since)
    if done is not None and len(timings) != done.completed:
        ctx.fail(f"W5: {len(timings)} sleeps journaled as done for {done.completed} completed sleepers")
    if not timings:
        return {}
    late = [t.late_ms for t in timings]
    overrun = [t.total_ms - s.w5_sleep_ms for t in timings]
    return {
        "w5.lateness_p50_ms": percentile(late, 50),
        "w5.lateness_p99_ms": percentile(late, 99),
        "w5.lateness_max_ms": max(late),
        "w5.overrun_p50_ms": percentile(overrun, 50),
        "w5.overrun_p99_ms": percentile(overrun, 99),
    }


def _wait_completed(ctx: Context, label: str, handler: str, since: datetime, expected: int) -> Progress | None:
    """Poll until `expected` invocations of the handler created since `since` completed; None
    (and a failure) if they stop progressing for `stall_s`."""
    last_count, last_change = -1, time.monotonic()
    while True:
        progress = ctx.system.progress(ctx.conn, handler, since)
        if progress.completed >= expected:
            break
        if progress.completed != last_count:
            last_count, last_change = progress.completed, time.monotonic()
        elif time.monotonic() - last_change > ctx.sizes.stall_s:
            ctx.fail(f"{label}: only {progress.completed} of {expected} invocations completed; "
                     f"none for {ctx.sizes.stall_s:.0f} s")
            return None
        time.sleep(0.25)
    if progress.created != expected:
        ctx.fail(f"{label}: {progress.created} invocations exist for {expected} accepted sends")
    if progress.failed:
        ctx.fail(f"{label}: {progress.failed} invocations completed with a failure")
    return progress


LIMIT_TABLE = "CREATE TABLE IF NOT EXISTS bench_limit (id bigserial PRIMARY KEY, v integer NOT NULL)"
LIMIT_SCRIPT = "\\set v random(1, 1000000)\nINSERT INTO bench_limit (v) VALUES (:v);\n"


def limit_pgbench(db: Database, sizes: Sizes, notes: Notes) -> Metrics:
    """The database's own limit on the same server: one one-row INSERT per transaction."""
    with db.connect() as conn:
        conn.execute(LIMIT_TABLE)
    metrics: Metrics = {}
    for clients in sizes.limit_clients:
        result = pgbench(db.url, LIMIT_SCRIPT, clients, sizes.limit_seconds)
        if result.failed:
            notes.fail(f"pgbench at {clients} clients: {result.failed} failed transactions")
        metrics[f"limit.c{clients}_tps"] = result.tps
        metrics[f"limit.c{clients}_latency_ms"] = result.latency_ms
    return metrics


def _children_cpu_s() -> float:
    """CPU of this process's reaped children: the hey runs (the system's processes are reaped only when stopped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: The workloads that run against the system, in order; "limit" runs after the system stops.
WORKLOADS: dict[str, Callable[[Context], Metrics]] = {
    "W1": w1_latency,
    "W2": w2_throughput,
    "W3": w3_keyed_state,
    "W4": w4_fire_and_forget,
    "W5": w5_timers,
}
LIMIT = "limit"
