"""Worker processes started with the real CLI, for crash and race tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import typing
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class ChildProcess:
    """A command in a subprocess, its output in a log file; stopped with SIGTERM at the end."""

    def __init__(self, args: typing.Sequence[str], *, cwd: Path = REPO,
                 env: typing.Optional[typing.Dict[str, str]] = None) -> None:
        self.args = list(args)
        self.cwd = cwd
        self.env = {**os.environ, **(env or {})}
        self.process: typing.Optional[subprocess.Popen[bytes]] = None
        self._log = tempfile.NamedTemporaryFile(prefix="restate-pg-process-", suffix=".log", delete=False)

    def start(self) -> "typing.Self":
        self.process = subprocess.Popen(self.args, cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def log(self) -> str:
        """Everything the worker printed so far."""
        return Path(self._log.name).read_text(errors="replace")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as in a crash."""
        self.signal(signal.SIGKILL)
        self.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait(self, timeout: float = 15) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> "typing.Self":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGCONT)
        self.stop()


#: Database connections per worker process: six test sessions, their servers and worker processes
#: share one PostgreSQL whose max_connections is 100 by default.
TEST_POOL_SIZE = 4


class WorkerProcess(ChildProcess):
    """`restate-pg worker MODULE:APP` in a subprocess, with a short lease so that tests recover fast;
    with `app_ref` None, a worker of the registered SDK endpoints only."""

    def __init__(
        self,
        app_ref: typing.Optional[str],
        database_url: str,
        *,
        env: typing.Optional[typing.Dict[str, str]] = None,
        lease_seconds: float = 1.0,
        poll_interval: float = 0.1,
        extra: typing.Sequence[str] = (),
    ) -> None:
        super().__init__([
            sys.executable, "-m", "restate_pg", "worker", *([app_ref] if app_ref else []),
            "--database-url", database_url,
            "--lease-seconds", str(lease_seconds),
            "--poll-interval", str(poll_interval),
            *([] if "--pool-size" in extra else ["--pool-size", str(TEST_POOL_SIZE)]),
            *extra,
        ], env=env)
