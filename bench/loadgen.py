"""The load generators: `hey` (HTTP, per-request CSV output) and `pgbench` (the database's limit)."""

from __future__ import annotations

import collections
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import percentile


class BenchError(Exception):
    """A failure that stops the benchmark (a missing tool, a system that does not start)."""


_INSTALL_HINTS = {
    "hey": "apt-get install hey",
    "pgbench": "apt-get install postgresql-client (pgbench ships with it)",
}


def require_tools(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        hints = "; ".join(f"{name}: {_INSTALL_HINTS.get(name, 'install it')}" for name in missing)
        raise BenchError(f"missing load generator(s) on PATH: {', '.join(missing)} ({hints})")


def package_version(name: str) -> str:
    """The Debian package version of a tool, for the report ('unknown' elsewhere)."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


# --- hey ------------------------------------------------------------------------------------


def hey_requests(n: int, c: int) -> int:
    """hey gives each of its c workers n // c requests: the number it really sends."""
    return n // c * c


@dataclass
class HeyResult:
    """One or more hey runs: a row per answered request, and how many requests were sent."""

    requested: int
    latencies_s: list[float] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    wall_s: float = 0.0  # first request sent to last response read

    @property
    def answered(self) -> int:
        return len(self.latencies_s)

    @property
    def transport_errors(self) -> int:
        """Requests without an HTTP response (hey's CSV leaves them out): timeouts, resets."""
        return self.requested - self.answered

    def count(self, status: int) -> int:
        return self.statuses[status]

    def latency_ms(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000.0

    def merge(self, other: HeyResult) -> None:
        self.requested += other.requested
        self.latencies_s += other.latencies_s
        self.statuses.update(other.statuses)


def _hey_argv(url: str, n: int, c: int, body: str | None) -> list[str]:
    argv = ["hey", "-n", str(n), "-c", str(c), "-t", "120", "-o", "csv", "-m", "POST" if body is not None else "GET"]
    if body is not None:
        argv += ["-T", "application/json", "-d", body]
    return [*argv, url]


def parse_hey_csv(text: str, requested: int) -> HeyResult:
    result = HeyResult(requested=requested)
    end = 0.0
    for line in text.splitlines()[1:]:  # header: response-time,...,status-code,offset
        cols = line.split(",")
        if len(cols) < 8:
            continue
        latency, status, offset = float(cols[0]), int(cols[6]), float(cols[7])
        result.latencies_s.append(latency)
        result.statuses[status] += 1
        end = max(end, offset + latency)
    result.wall_s = end
    return result


def hey(url: str, n: int, c: int, body: str | None = None) -> HeyResult:
    """POST `body` (JSON) to `url` n times from c concurrent connections (GET without a body)."""
    out = subprocess.run(_hey_argv(url, n, c, body), capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise BenchError(f"hey failed ({out.returncode}): {out.stderr.strip()[:500]}")
    return parse_hey_csv(out.stdout, hey_requests(n, c))


def hey_chains(chains: list[list[str]], calls_per_url: int, body: str) -> tuple[dict[str, HeyResult], float]:
    """Run the chains concurrently, each a shell that calls its URLs one after another with
    `hey -c 1 -n calls_per_url` (hey sends to one URL per run). Returns the result per URL and
    the wall time from starting the first chain to the end of the last."""
    with tempfile.TemporaryDirectory(prefix="bench-hey-") as tmp:
        outputs: dict[str, Path] = {}
        scripts = []
        for chain in chains:
            steps = []
            for url in chain:
                outputs[url] = Path(tmp, f"{len(outputs)}.csv")
                steps.append(f"{shlex.join(_hey_argv(url, calls_per_url, 1, body))} > {shlex.quote(str(outputs[url]))}")
            scripts.append(" && ".join(steps))
        procs: list[subprocess.Popen[bytes]] = []
        started = time.monotonic()
        try:
            procs = [subprocess.Popen(["sh", "-c", script], start_new_session=True) for script in scripts]
            codes = [proc.wait() for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        wall = time.monotonic() - started
        if any(codes):
            raise BenchError(f"{sum(1 for code in codes if code)} hey chain(s) failed")
        return {url: parse_hey_csv(path.read_text(), calls_per_url) for url, path in outputs.items()}, wall


# --- pgbench --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgbenchResult:
    clients: int
    tps: float
    latency_ms: float
    failed: int


def pgbench(conninfo: str, script: str, clients: int, seconds: int) -> PgbenchResult:
    """Run a custom pgbench script (-n: no vacuum, -M prepared) for `seconds`."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="bench-") as f:
        f.write(script)
        f.flush()
        threads = min(clients, os.cpu_count() or 1)
        argv = ["pgbench", "-n", "-M", "prepared", "-f", f.name, "-c", str(clients), "-j", str(threads),
                "-T", str(seconds), conninfo]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise BenchError(f"pgbench failed ({out.returncode}): {out.stderr.strip()[:500]}")
    tps = re.search(r"^tps = ([\d.]+)", out.stdout, re.M)
    latency = re.search(r"^latency average = ([\d.]+) ms", out.stdout, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", out.stdout, re.M)
    if not tps or not latency:
        raise BenchError(f"cannot read pgbench's output:\n{out.stdout}")
    return PgbenchResult(clients, float(tps.group(1)), float(latency.group(1)), int(failed.group(1)) if failed else 0)
