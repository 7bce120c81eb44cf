"""`restate-pg dev` on its embedded PostgreSQL, as a newcomer runs it: no DATABASE_URL, a real
subprocess, then the operator CLI in the same directory, a SIGKILL, and a restart.

CI has a server at 127.0.0.1:5432 and no DATABASE_URL: these tests remove DATABASE_URL from the
environment and pass no --database-url, so that the embedded server is what they get.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.polling import eventually_sync

pytestmark = pytest.mark.slow

APP = '''
import restate_pg as restate
from restate_pg import Context

greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: Context, name: str) -> str:
    return f"Hello {name}"


app = restate.App([greeter])
'''


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RESTATE_PG_SCHEMA")}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Dev:
    """`restate-pg dev app.py:app` in `cwd` on the embedded PostgreSQL in `data_dir`."""

    def __init__(self, cwd: Path, data_dir: Path) -> None:
        self.port, self.admin_port = _free_port(), _free_port()
        self.log = cwd / f"dev-{self.port}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "restate_pg", "dev", "app.py:app", "--data-dir", str(data_dir),
                 "--port", str(self.port), "--admin-port", str(self.admin_port)],
                cwd=cwd, env=_environ(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        def answers() -> bool:
            assert self.process.poll() is None, self.output()
            try:
                return httpx.post(f"http://127.0.0.1:{self.port}/Greeter/greet", json="Ann", timeout=5).json() == "Hello Ann"
            except httpx.TransportError:
                return False

        eventually_sync(answers, timeout_s=90, interval_s=0.2, what="dev to answer")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


def _postmaster(data_dir: Path) -> psutil.Process | None:
    """The embedded server's postmaster, if one runs."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        process = psutil.Process(pid)
        return process if process.status() != psutil.STATUS_ZOMBIE else None
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return None


def _postgres_servers(data_dir: Path) -> list[psutil.Process]:
    """Every postmaster running on `data_dir` (children of a postmaster not counted)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "ppid"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(data_dir) in cmdline:
            found.append(process)
    return found


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "app.py").write_text(APP)
    yield tmp_path
    server = _postmaster((tmp_path / "pgdata").resolve())
    if server is not None:  # a failed test must not leave a server behind
        server.terminate()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "restate_pg", *args], cwd=cwd, env=_environ(),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_the_cli_finds_the_embedded_database_of_dev_in_the_same_directory(workdir: Path) -> None:
    dev = Dev(workdir, workdir / "pgdata")
    try:
        dev.wait_ready()
        listed = _cli("invocations", "list", "--json", cwd=workdir)
        assert listed.returncode == 0, listed.stderr
        assert '"target": "Greeter/greet"' in listed.stdout
        data_dir = str((workdir / "pgdata").resolve())
        assert "embedded PostgreSQL" in listed.stderr and data_dir in listed.stderr, listed.stderr
        assert "Traceback" not in listed.stderr
    finally:
        assert dev.stop() == 0, dev.output()
    stopped = _cli("invocations", "list", cwd=workdir)  # the record outlives dev; the server does not
    assert stopped.returncode != 0
    assert "not running" in stopped.stderr and "restate-pg dev" in stopped.stderr, stopped.stderr
    assert "Traceback" not in stopped.stderr


def test_an_explicit_url_wins_over_the_recorded_embedded_one(workdir: Path, database_url: str) -> None:
    dev = Dev(workdir, workdir / "pgdata")
    try:
        dev.wait_ready()
        listed = _cli("invocations", "list", "--json", "--database-url", database_url, "--schema", "restate",
                      cwd=workdir)
        assert listed.returncode == 0, listed.stderr
        assert "embedded" not in listed.stderr
    finally:
        assert dev.stop() == 0, dev.output()


def test_dev_after_a_sigkill_reuses_the_orphaned_server_and_stops_it_at_the_end(workdir: Path) -> None:
    data_dir = (workdir / "pgdata").resolve()
    first = Dev(workdir, data_dir)
    first.wait_ready()
    orphan = _postmaster(data_dir)
    assert orphan is not None
    # SIGKILL, and not reaped yet: to a process manager that has not got round to it (or to a
    # pid taken by another process since), the killed dev still looks alive
    os.kill(first.process.pid, signal.SIGKILL)
    eventually_sync(lambda: psutil.Process(first.process.pid).status() == psutil.STATUS_ZOMBIE,
                    timeout_s=10, interval_s=0.05, what="dev to die")
    assert orphan.is_running()  # the problem: its server outlives it

    second = Dev(workdir, data_dir)
    try:
        second.wait_ready()
        assert [p.pid for p in _postgres_servers(data_dir)] == [orphan.pid]  # no second server
        assert "Traceback" not in second.output()
    finally:
        assert second.stop() == 0, second.output()
        first.process.wait(timeout=10)
    eventually_sync(lambda: not orphan.is_running(), timeout_s=15, interval_s=0.1, what="the orphan to stop")
    assert _postgres_servers(data_dir) == []
    assert "reusing the embedded PostgreSQL" in second.output()


def test_dev_prints_each_url_once_and_no_unlabelled_duplicate_lines(workdir: Path) -> None:
    dev = Dev(workdir, workdir / "pgdata")
    try:
        dev.wait_ready()
    finally:
        assert dev.stop() == 0, dev.output()
    output = dev.output()
    assert output.count(f"ingress on http://127.0.0.1:{dev.port}") == 1, output
    assert output.count(f"admin API on http://127.0.0.1:{dev.admin_port}") == 1, output
    assert output.count(f"operator UI on http://127.0.0.1:{dev.admin_port}/ui") == 1, output
    lines = [line for line in output.splitlines() if not re.search(r'"(GET|POST) ', line)]  # access lines differ
    repeated = sorted({line for line in lines if lines.count(line) > 1})
    assert repeated == [], output


def test_a_failed_initdb_is_explained_by_initdbs_own_words(tmp_path: Path) -> None:
    """initdb fails before the server has a log file: the error quotes what initdb said."""
    from restate_pg.errors import DatabaseUnavailable
    from restate_pg.store.embedded import start_embedded

    data_dir = tmp_path / "pgdata"
    data_dir.mkdir()
    (data_dir / "left-over").write_text("not a data directory")
    with pytest.raises(DatabaseUnavailable) as raised:
        start_embedded(data_dir)
    assert "CalledProcessError: initdb: error: directory" in str(raised.value)
    assert "exists but is not empty" in str(raised.value)
