"""The system under test as real processes: one `restate-pg serve` and N `restate-pg worker`s.

Each is started by the real CLI in a process group of its own (bench.procs.start), so a fault is a
real signal to a real process. Every connection a process opens carries its role in
`application_name` (libpq reads PGAPPNAME), which is how the terminate class finds the backends of
worker processes in pg_stat_activity: the product sets no application_name of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench import procs
from bench.loadgen import BenchError
from bench.systems import REPO, _restate_pg_command, free_port

APP = "bench.faults.app:app"
#: application_name prefixes: `faults-worker-<i>` and `faults-serve`.
WORKER_APP = "faults-worker-"
SERVE_APP = "faults-serve"
_READY_TIMEOUT_S = 60.0


@dataclass
class Proc:
    """One process of the system: what it is, how to start it again, and where it logs."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        """Send `signum` to the process's own group (it was started in a new session)."""
        os.killpg(self.pid, signum)


@dataclass
class System:
    """`restate-pg serve` and `workers` workers against `database_url`, lease `lease_s`."""

    database_url: str
    logs: Path
    workers: int = 3
    lease_s: float = 3.0
    log_level: str = "info"
    port: int = field(default_factory=free_port)
    serve: Proc = field(init=False)
    worker_procs: list[Proc] = field(init=False, default_factory=list)
    #: Processes that exited without being told to (by a signal of ours), with their status.
    unexpected_exits: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        command = _restate_pg_command()
        self.serve = Proc(SERVE_APP, [command, "serve", APP, "--port", str(self.port), "--log-level", self.log_level],
                          self._env(SERVE_APP), self.logs / "serve.log")
        for i in range(self.workers):
            name = f"{WORKER_APP}{i}"
            argv = [command, "worker", APP, "--lease-seconds", f"{self.lease_s:g}", "--log-level", self.log_level]
            self.worker_procs.append(Proc(name, argv, self._env(name), self.logs / f"worker-{i}.log"))

    def _env(self, application_name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTATE_PG_FAULTS", "PGAPPNAME"))}
        env.update(DATABASE_URL=self.database_url, PGAPPNAME=application_name, PYTHONUNBUFFERED="1", **(extra or {}))
        return env

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def procs(self) -> list[Proc]:
        return [self.serve, *self.worker_procs]

    # -- starting ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start every process, then wait until the ingress answers and every worker registered."""
        for proc in self.procs:
            self._launch(proc)
        for proc in self.procs:
            self.wait_ready(proc)

    def _launch(self, proc: Proc) -> None:
        proc.popen = procs.start(proc.argv, proc.log, cwd=REPO, env=proc.env)
        proc.starts += 1

    def wait_ready(self, proc: Proc) -> None:
        """Until `proc` serves: the ingress answers /restate/health, a worker's row (its pid) is in
        restate.worker. Raises if it exits or is not ready in time."""
        ready = self._ingress_ready if proc is self.serve else (lambda: self._worker_registered(proc.pid))

        def check() -> bool:
            if not proc.alive():
                raise BenchError(f"{proc.name} exited with status {proc.popen and proc.popen.returncode} "
                                 f"while starting; see {proc.log}")
            return ready()

        if not procs.wait_until(check, timeout_s=_READY_TIMEOUT_S, interval_s=0.05):
            raise BenchError(f"{proc.name} was not ready within {_READY_TIMEOUT_S:.0f} s; see {proc.log}")

    def _ingress_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/restate/health", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _worker_rows(self, pid: int) -> int | None:
        """How many worker rows `pid` has; None when the database cannot be asked."""
        try:
            with psycopg.connect(self.database_url, autocommit=True, connect_timeout=2) as conn:
                row = conn.execute("SELECT count(*) FROM restate.worker WHERE pid = %s", (pid,)).fetchone()
        except psycopg.OperationalError:
            return None
        return int(row[0]) if row else 0

    def _worker_registered(self, pid: int) -> bool:
        return bool(self._worker_rows(pid))

    # -- faults -----------------------------------------------------------------------------

    def kill(self, proc: Proc) -> None:
        """SIGKILL the process and reap it (no cleanup of any kind runs in it)."""
        proc.signal(signal.SIGKILL)
        assert proc.popen is not None
        proc.popen.wait()

    def restart(self, proc: Proc, wait: bool = True) -> None:
        """Start a new process in `proc`'s place; with `wait`, return once it is ready."""
        self._launch(proc)
        if wait:
            self.wait_ready(proc)

    def wait_healthy(self, timeout_s: float) -> bool:
        """Until every worker process heartbeats: a row of its pid with a heartbeat later than
        this call. A worker whose heartbeat loop is blocked, or that was declared dead and has not
        registered again, keeps this waiting; so a class never starts on the aftermath of the last."""
        try:
            with psycopg.connect(self.database_url, autocommit=True, connect_timeout=2) as conn:
                row = conn.execute("SELECT now()").fetchone()
        except psycopg.OperationalError:
            return False
        assert row is not None
        since, pids = row[0], [p.pid for p in self.worker_procs if p.alive()]

        def beating() -> bool:
            try:
                with psycopg.connect(self.database_url, autocommit=True, connect_timeout=2) as conn:
                    count = conn.execute("SELECT count(DISTINCT pid) FROM restate.worker"
                                         " WHERE pid = ANY(%s) AND heartbeat_at > %s", (pids, since)).fetchone()
            except psycopg.OperationalError:
                return False
            return bool(count and count[0] == len(self.worker_procs))

        return procs.wait_until(beating, timeout_s, 0.1)

    def worker_row_gone(self, pid: int) -> bool:
        """Whether the worker row of `pid` was reaped (deleted) by another worker."""
        return self._worker_rows(pid) == 0

    def set_worker_env(self, extra: dict[str, str]) -> None:
        """Replace every worker with one whose environment has `extra` (gracefully: SIGTERM hands
        the in-flight invocations back), and wait until the new ones are ready."""
        running = [proc for proc in self.worker_procs if proc.alive()]
        for proc in running:
            proc.signal(signal.SIGTERM)  # all at once: each takes up to its stop grace
        for proc in running:
            assert proc.popen is not None
            procs.stop(proc.popen)
        for proc in self.worker_procs:
            proc.env = self._env(proc.name, extra)
            self._launch(proc)
        for proc in self.worker_procs:
            self.wait_ready(proc)

    def revive(self) -> list[str]:
        """Start again every process that is not running (noted as an unexpected exit); returns
        their names. Capacity must be back before the next class."""
        revived = []
        for proc in self.procs:
            if not proc.alive():
                status = proc.popen.returncode if proc.popen is not None else None
                self.unexpected_exits.append(f"{proc.name} (pid {proc.popen and proc.pid}) exited with status {status}")
                self.restart(proc)
                revived.append(proc.name)
        return revived

    def stop(self) -> None:
        for proc in self.procs:
            if proc.popen is not None:
                try:
                    proc.signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
                except ProcessLookupError:
                    pass
                procs.stop(proc.popen)

    def log_sizes(self) -> dict[str, int]:
        """Where each log ends now: a class reads its own lines from there."""
        return {str(proc.log): proc.log.stat().st_size if proc.log.exists() else 0 for proc in self.procs}
