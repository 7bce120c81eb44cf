"""The systems under test. Each deploys the services of bench/app.py behind an HTTP ingress and
answers the few questions the workloads ask of its storage; a peer (the real Restate, DBOS) plugs
in by implementing `System`."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
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

    def start(self, logs: Path) -> None: ...

    def stop(self) -> None: ...

    def pids(self) -> list[int]:
        """The processes of the system (their children are counted with them)."""
        ...

    def processes(self) -> list[str]:
        """What runs, for the report: one command line per process."""
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


def _restate_pg_command() -> str:
    beside = Path(sys.executable).with_name("restate-pg")
    found = str(beside) if beside.exists() else shutil.which("restate-pg")
    if found is None:
        raise BenchError("the restate-pg command is not installed (pip install -e . in the repository)")
    return found


@dataclass
class RestatePg:
    """restate-pg as a user deploys it: `dev` (ingress and worker in one process), or `serve` and
    `workers` separate `worker` processes."""

    db: Database
    deployment: str = "dev"
    workers: int = 1
    port: int = 0
    engine_args: list[str] = field(default_factory=list)
    log_level: str = "warning"
    name: str = "restate-pg"
    base_url: str = ""
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _argvs: list[list[str]] = field(default_factory=list)

    def start(self, logs: Path) -> None:
        migrate = subprocess.run(
            [sys.executable, "-m", "restate_pg", "migrate", "--database-url", self.db.url],
            cwd=REPO, capture_output=True, text=True,
        )
        if migrate.returncode != 0:
            raise BenchError(f"restate-pg migrate failed: {migrate.stderr.strip()}")
        port = self.port or free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        command = _restate_pg_command()
        common = ["--database-url", self.db.url, "--log-level", self.log_level, *self.engine_args]
        http = ["--port", str(port)]
        if self.deployment == "dev":
            self._argvs = [[command, "dev", APP, *http, *common]]
        elif self.deployment == "serve+workers":
            self._argvs = [[command, "serve", APP, *http, *common]]
            self._argvs += [[command, "worker", APP, *common] for _ in range(self.workers)]
        else:
            raise BenchError(f"unknown deployment {self.deployment!r} (dev or serve+workers)")
        for i, argv in enumerate(self._argvs):
            self._procs.append(procs.start(argv, logs / f"{self.name}-{argv[1]}-{i}.log", cwd=REPO))
        expected_workers = 1 if self.deployment == "dev" else self.workers
        if not procs.wait_until(lambda: self._ready(expected_workers), timeout_s=60, interval_s=0.2):
            raise BenchError(f"{self.name} did not become ready within 60 s; see the logs in {logs}")

    def _ready(self, expected_workers: int) -> bool:
        for proc, argv in zip(self._procs, self._argvs, strict=True):
            if proc.poll() is not None:
                raise BenchError(f"{' '.join(argv[1:3])} exited with status {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{self.base_url}/restate/health", timeout=2) as response:
                if response.status != 200:
                    return False
        except OSError:
            return False
        with self.db.connect() as conn:
            registered = scalar(conn, "SELECT count(*) FROM restate.worker")
        return int(registered) >= expected_workers

    def stop(self) -> None:
        for proc in self._procs:
            procs.stop(proc)
        self._procs.clear()

    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs]

    def processes(self) -> list[str]:
        return [" ".join(["restate-pg", *argv[1:]]) for argv in self._argvs]

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
            """SELECT extract(epoch FROM done.appended_at - cmd.sleep_wakeup_at) * 1000,
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
            "SELECT key, value FROM restate.state WHERE service = 'BenchCounter' AND name = 'value' AND key = ANY(%s)",
            (keys,),
        ).fetchall()
        return {key: int(json.loads(bytes(value))) for key, value in rows}
