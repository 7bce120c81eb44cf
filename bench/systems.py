"""The systems under test. Each deploys the services of bench/app.py behind an HTTP ingress and
answers the few questions the workloads ask of its storage; the peers (the real Restate, DBOS, in
bench/peers/) implement `System` too."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bench import procs
from bench.database import Conn, Database, scalar
from bench.loadgen import BenchError

REPO = Path(__file__).resolve().parent.parent
APP = "bench.app:app"


@dataclass(frozen=True)
class Progress:
    """Invocations of one handler created since some moment."""

    created: int
    completed: int
    failed: int
    first_created: datetime | None
    last_completed: datetime | None


@dataclass(frozen=True)
class SleepTiming:
    """One sleeper: its sleep's completion minus the wake-up time journaled with the Sleep
    command, and the time from its creation to its completion."""

    late_ms: float
    total_ms: float


class System(Protocol):
    name: str
    base_url: str
    #: The PostgreSQL database the system stores in (dropped and recreated before it starts), or
    #: None when it keeps its own storage: then there are no PostgreSQL cost figures.
    db: Database | None

    def start(self, logs: Path) -> None: ...

    def stop(self) -> None: ...

    def pids(self) -> list[int]:
        """The processes of the system (their children are counted with them)."""
        ...

    def processes(self) -> list[str]:
        """What runs, for the report: one command line per process."""
        ...

    def version(self) -> str:
        """What was measured, for the report: a commit or package versions."""
        ...

    def progress(self, conn: Conn, handler: str, since: datetime) -> Progress: ...

    def sleep_timings(self, conn: Conn, since: datetime) -> list[SleepTiming]:
        """The sleepers created since `since` whose sleep completed."""
        ...

    def counter_values(self, conn: Conn, keys: list[str]) -> dict[str, int]: ...


# Restate's ingress paths, which restate-pg serves too.
def url_steps(system: System) -> str:
    return f"{system.base_url}/Bench/three_steps"


def url_send_steps(system: System) -> str:
    return f"{system.base_url}/Bench/three_steps/send"


def url_send_sleeper(system: System) -> str:
    return f"{system.base_url}/Bench/sleeper/send"


def url_add(system: System, key: str) -> str:
    return f"{system.base_url}/BenchCounter/{key}/add"


def post_json(url: str, body: object, timeout_s: float = 30.0) -> tuple[int, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine_version() -> str:
    """The commit restate-pg is measured at, '+changes' when restate_pg/ differs from it."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" +uncommitted changes in restate_pg/" if git("status", "--porcelain", "restate_pg") else "")


def _restate_pg_command() -> str:
    beside = Path(sys.executable).with_name("restate-pg")
    found = str(beside) if beside.exists() else shutil.which("restate-pg")
    if found is None:
        raise BenchError("the restate-pg command is not installed (pip install -e . in the repository)")
    return found


@dataclass(frozen=True)
class Running:
    """A process a system started: how it was started (for the report) and where it logs."""

    proc: subprocess.Popen[bytes]
    description: str
    log: Path


@dataclass(kw_only=True)
class Processes:
    """The part every system shares: processes started here, waited for, stopped together."""

    _running: list[Running] = field(default_factory=list)
    _started: list[str] = field(default_factory=list)  # kept after stop(), for the report

    def _launch(self, argv: list[str], log: Path, description: str, env: dict[str, str] | None = None) -> None:
        self._running.append(Running(procs.start(argv, log, cwd=REPO, env=env), description, log))
        self._started.append(description)

    def _wait_ready(self, ready: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
        """Poll `ready` until it holds; a process that exits meanwhile ends the wait at once."""
        def check() -> bool:
            for running in self._running:
                if running.proc.poll() is not None:
                    raise BenchError(f"{running.description} exited with status {running.proc.returncode} "
                                     f"while starting; see {running.log}")
            return ready()

        if not procs.wait_until(check, timeout_s=timeout_s, interval_s=0.2):
            logs = ", ".join(sorted({str(r.log.parent) for r in self._running}))
            raise BenchError(f"{what} did not become ready within {timeout_s:.0f} s; see the logs in {logs}")

    def stop(self) -> None:
        for running in self._running:
            procs.stop(running.proc)
        self._running.clear()

    def pids(self) -> list[int]:
        return [running.proc.pid for running in self._running]

    def processes(self) -> list[str]:
        return list(self._started)


@dataclass
class RestatePg(Processes):
    """restate-pg as a user deploys it: `dev` (ingress and worker in one process), or `serve` and
    `workers` separate `worker` processes."""

    db: Database
    deployment: str = "dev"
    workers: int = 1
    #: `--processes N` of dev (N ingress + worker processes) or serve (N ingresses) on one port.
    serving_processes: int = 1
    port: int = 0
    engine_args: list[str] = field(default_factory=list)
    #: Flow-control rule patterns set before the start, each with a concurrency that never binds.
    rules: list[str] = field(default_factory=list)
    log_level: str = "warning"
    name: str = "restate-pg"
    base_url: str = ""
    #: The application served in-process; None: none, only the SDK endpoints registered through
    #: the admin API (then served on a free port, `admin_url`).
    app: str | None = APP
    admin_url: str = ""
    #: Environment variables set for its processes (over this process's), shown in the report.
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self, logs: Path) -> None:
        migrate = subprocess.run(
            [sys.executable, "-m", "restate_pg", "migrate", "--database-url", self.db.url],
            cwd=REPO, capture_output=True, text=True,
        )
        if migrate.returncode != 0:
            raise BenchError(f"restate-pg migrate failed: {migrate.stderr.strip()}")
        for pattern in self.rules:
            subprocess.run([sys.executable, "-m", "restate_pg", "rules", "set", pattern, "--concurrency", "1000000",
                            "--database-url", self.db.url], cwd=REPO, capture_output=True, text=True, check=True)
        port = self.port or free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        command = _restate_pg_command()
        common = ["--database-url", self.db.url, "--log-level", self.log_level, *self.engine_args]
        http = ["--port", str(port)] + (
            ["--processes", str(self.serving_processes)] if self.serving_processes > 1 else [])
        app = [self.app] if self.app is not None else []
        if self.app is None:
            admin = free_port()
            http += ["--admin-port", str(admin)]
            self.admin_url = f"http://127.0.0.1:{admin}"
        if self.deployment == "dev":
            argvs = [[command, "dev", *app, *http, *common]]
        elif self.deployment == "serve+workers":
            argvs = [[command, "serve", *app, *http, *common]]
            argvs += [[command, "worker", *app, *common] for _ in range(self.workers)]
        else:
            raise BenchError(f"unknown deployment {self.deployment!r} (dev or serve+workers)")
        env = {**os.environ, **self.extra_env} if self.extra_env else None
        shown = "".join(f"{name}={value} " for name, value in self.extra_env.items())
        for i, argv in enumerate(argvs):
            self._launch(argv, logs / f"{self.name}-{argv[1]}-{i}.log", shown + " ".join(["restate-pg", *argv[1:]]), env=env)
        expected_workers = self.serving_processes if self.deployment == "dev" else self.workers
        self._wait_ready(lambda: self._ready(expected_workers), self.name)

    def _ready(self, expected_workers: int) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/restate/health", timeout=2) as response:
                if response.status != 200:
                    return False
        except OSError:
            return False
        with self.db.connect() as conn:
            registered = scalar(conn, "SELECT count(*) FROM restate.worker")
        return int(registered) >= expected_workers

    def version(self) -> str:
        return f"restate-pg at {engine_version()}"

    def progress(self, conn: Conn, handler: str, since: datetime) -> Progress:
        row = conn.execute(
            """SELECT count(*),
                      count(*) FILTER (WHERE status = 'completed'),
                      count(*) FILTER (WHERE status = 'completed' AND failure_code IS NOT NULL),
                      min(created_at), max(completed_at)
                 FROM restate.invocation
                WHERE service = 'Bench' AND handler = %s AND created_at >= %s""",
            (handler, since),
        ).fetchone()
        assert row is not None
        return Progress(int(row[0]), int(row[1]), int(row[2]), row[3], row[4])

    def sleep_timings(self, conn: Conn, since: datetime) -> list[SleepTiming]:
        rows = conn.execute(
            # appended_at floored to the ms, as Restate stores it (its figure is read to the ms:
            # comparing it with ours to the microsecond would charge us ~0.5 ms it hides)
            """SELECT floor(extract(epoch FROM done.appended_at) * 1000) - extract(epoch FROM cmd.sleep_wakeup_at) * 1000,
                      extract(epoch FROM i.completed_at - i.created_at) * 1000
                 FROM restate.invocation i
                 JOIN restate.journal cmd
                   ON cmd.invocation_id = i.id AND cmd.entry_type = 'Sleep' AND cmd.command_index IS NOT NULL
                 JOIN restate.journal done
                   ON done.invocation_id = i.id AND done.entry_type = 'Sleep' AND done.command_index IS NULL
                  AND done.completes = cmd.command_index
                WHERE i.service = 'Bench' AND i.handler = 'sleeper' AND i.created_at >= %s""",
            (since,),
        ).fetchall()
        return [SleepTiming(float(late), float(total)) for late, total in rows]

    def counter_values(self, conn: Conn, keys: list[str]) -> dict[str, int]:
        rows = conn.execute(
            "SELECT key, value FROM restate.state_entry WHERE service = 'BenchCounter' AND name = 'value' AND key = ANY(%s)",
            (keys,),
        ).fetchall()
        return {key: int(json.loads(bytes(value))) for key, value in rows}
