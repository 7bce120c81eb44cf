"""`restate-pg dev --processes N`: N serving processes on one port, each an ingress and a worker,
supervised. Real processes, real HTTP, SIGKILL and SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import sys
import textwrap
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from psycopg import sql

from tests.support.polling import eventually_sync
from tests.support.processes import ChildProcess
from tests.test_cli import fresh_schema  # noqa: F401  (a fixture)

APP = textwrap.dedent('''
    import os
    from datetime import timedelta

    import restate_pg as restate
    from restate_pg import Context, ObjectContext

    where = restate.Service("Where")


    @where.handler()
    async def pid(ctx: Context) -> int:
        return os.getpid()


    steps = restate.VirtualObject("Steps")


    @steps.handler()
    async def go(ctx: ObjectContext) -> int:
        """Counts its runs in the key's state across a sleep: 1 at the end, however often it was
        interrupted, since each invocation's step is journaled once."""
        count = (await ctx.get("count") or 0) + 1
        await ctx.sleep(timedelta(milliseconds=300))
        ctx.set("count", count)
        return count


    app = restate.app([where, steps])
''')

SENDS = 40


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serving_pids(process: ChildProcess) -> list[int]:
    """The children's pids, from the supervisor's line once they all serve."""
    found = eventually_sync(lambda: re.search(r"(\d+) serving processes \(pids ([\d, ]+)\)", process.log()),
                            timeout_s=60)
    assert found, process.log()
    return [int(pid) for pid in found.group(2).split(", ")]


def answering_pid(base_url: str) -> int:
    """The pid of the process that ran a call made on a new connection (the kernel picks the process)."""
    response = httpx.post(f"{base_url}/Where/pid", headers={"connection": "close"}, timeout=30)
    assert response.status_code == 200, response.text
    return int(response.json())


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_processes_share_the_port_survive_a_sigkill_and_stop_together(
    tmp_path: Path, database_url: str, fresh_schema: str  # noqa: F811
) -> None:
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    supervisor = ChildProcess([
        sys.executable, "-m", "restate_pg", "dev", "app:app", "--database-url", database_url, "--schema", fresh_schema,
        "--port", str(port), "--no-admin", "--processes", "2", "--lease-seconds", "1", "--poll-interval", "0.2",
    ], cwd=tmp_path)
    with supervisor:
        first, second = serving_pids(supervisor)
        assert f"ingress on {base_url}" in supervisor.log()

        # both serve: new connections are spread over them, and each runs what it receives
        seen: set[int] = set()
        assert eventually_sync(lambda: seen.add(answering_pid(base_url)) or seen == {first, second}, timeout_s=30), seen

        with httpx.Client(base_url=base_url, timeout=30, headers={"connection": "close"}) as client:
            for index in range(SENDS):
                sent = client.post(f"/Steps/k{index}/go/send")
                assert sent.status_code == 202, sent.text
        supervisor_process = psutil.Process(supervisor.pid)
        psutil.Process(first).kill()  # SIGKILL, mid-sleep for some of the sends

        assert eventually_sync(lambda: "exited with status -9: restarting it" in supervisor.log(), timeout_s=30)
        restarted = eventually_sync(
            lambda: [c.pid for c in supervisor_process.children() if c.pid not in (first, second)], timeout_s=30)
        # the restarted process serves too (the port was kept for it)
        seen.clear()
        assert eventually_sync(lambda: seen.add(answering_pid(base_url)) or restarted[0] in seen, timeout_s=60), seen

        with psycopg.connect(database_url, autocommit=True) as conn:
            def finished() -> tuple[int, int]:
                row = conn.execute(sql.SQL(
                    "SELECT count(*) FILTER (WHERE status = 'completed' AND failure_code IS NULL), count(*) "
                    "FROM {}.invocation WHERE service = 'Steps'").format(sql.Identifier(fresh_schema))).fetchone()
                assert row is not None
                return int(row[0]), int(row[1])

            assert eventually_sync(finished, (SENDS, SENDS), timeout_s=60) == (SENDS, SENDS), supervisor.log()
            counts = conn.execute(sql.SQL(
                "SELECT key, convert_from(value, 'UTF8') FROM {}.state_entry WHERE service = 'Steps' AND name = 'count'"
            ).format(sql.Identifier(fresh_schema))).fetchall()
        assert sorted(counts) == sorted((f"k{index}", "1") for index in range(SENDS))

        supervisor.signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0, supervisor.log()
    assert all(gone(pid) for pid in (second, restarted[0])), supervisor.log()
    assert "stopped 2 serving processes" in supervisor.log()


@pytest.mark.slow
def test_a_port_in_use_is_refused_before_any_process_starts(
    tmp_path: Path, database_url: str, fresh_schema: str  # noqa: F811
) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # even a port shared by others
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "app.py").write_text(APP)
        done = ChildProcess([
            sys.executable, "-m", "restate_pg", "dev", "app:app", "--database-url", database_url,
            "--schema", fresh_schema, "--port", str(port), "--no-admin", "--processes", "2",
        ], cwd=tmp_path).start()
        status = done.wait(timeout=60)
    assert status == 2, done.log()
    assert f"cannot listen on 127.0.0.1:{port}" in done.log()
