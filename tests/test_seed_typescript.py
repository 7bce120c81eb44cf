"""The product's seed, verbatim: its TypeScript services (examples/typescript, run with
`npx ts-node src/app.ts`), registered with Restate's CLI (`npx @restatedev/restate deployments
register http://localhost:9080`), invoked with its curl requests, on `restate-pg dev` with no
application of its own. The answers are restate-server 1.7.12's (examples/typescript/README.md).

Only the addresses differ from the seed's: restate-pg's ingress and admin API listen on free ports
here (tests run side by side), so the curls name that port and the CLI gets RESTATE_ADMIN_URL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import typing
from pathlib import Path

import httpx
import pytest

from tests.endpoints.processes import EXAMPLE, NODE_MODULES, free_port, start_seed_example
from tests.support.polling import eventually_sync

pytestmark = pytest.mark.slow


class RestatePgDev:
    """`restate-pg dev` without an application: it serves registered SDK endpoints only."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.log = log
        env = {**os.environ, "DATABASE_URL": database_url}
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "restate_pg", "dev", "--port", str(self.port), "--admin-port", str(self.admin_port)],
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self) -> None:
        def healthy() -> bool:
            assert self.process.poll() is None, self.log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/restate/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        eventually_sync(healthy, timeout_s=60, interval_s=0.1, what="restate-pg dev to answer")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


def curl(*args: str) -> str:
    done = subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_seed_runs_as_written_on_restate_pg(clean_db: str, tmp_path: Path) -> None:
    example = start_seed_example()
    dev = RestatePgDev(clean_db, tmp_path / "dev.log")
    try:
        dev.wait_ready()
        env = {**os.environ, "RESTATE_ADMIN_URL": f"http://127.0.0.1:{dev.admin_port}",
               "RESTATE_CLI_CONFIG_HOME": str(tmp_path / "cli"), "NO_COLOR": "1"}
        registered = subprocess.run(  # the seed's command: npx @restatedev/restate deployments register ...
            [str(NODE_MODULES / ".bin" / "restate"), "deployments", "register", "http://localhost:9080", "--yes"],
            cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert registered.returncode == 0, registered.stdout + registered.stderr
        for name in ("MyService", "Counter", "PaymentWorkflow"):
            assert name in registered.stdout

        ingress = f"localhost:{dev.port}"
        assert curl(f"{ingress}/MyService/greet", "-H", "content-type: application/json", "-d", '"World"') == '"Hello, World!"'
        assert curl(f"{ingress}/Counter/user123/add", "-H", "content-type: application/json", "-d", "5") == "5"
        assert curl(f"{ingress}/Counter/user123/add", "-H", "content-type: application/json", "-d", "5") == "10"
        assert curl(f"{ingress}/Counter/user123/get") == "10"

        # the seed's workflow, sent so that it can wait for its approval; then approved
        sent = json.loads(curl(f"{ingress}/PaymentWorkflow/order-456/run/send", "-H", "content-type: application/json",
                               "-d", '{"amount": 100}'))
        assert sent["status"] == "Accepted"
        assert curl("-X", "POST", f"{ingress}/PaymentWorkflow/order-456/approve") == ""
        assert json.loads(curl(f"{ingress}/restate/workflow/PaymentWorkflow/order-456/attach")) == {"status": "completed"}

        # and one rejected: the seed's run, called and answered once the promise is rejected
        rejected = subprocess.Popen(
            ["curl", "-sS", f"{ingress}/PaymentWorkflow/order-789/run", "-H", "content-type: application/json",
             "-d", '{"amount": 100}'], stdout=subprocess.PIPE, text=True)
        eventually_sync(lambda: _promise_awaited(clean_db, "order-789"), timeout_s=30, interval_s=0.1,
                        what="the workflow to wait for its approval")
        assert curl("-X", "POST", f"{ingress}/PaymentWorkflow/order-789/reject") == ""
        out, _ = rejected.communicate(timeout=60)
        assert json.loads(out) == {"status": "cancelled"}
    finally:
        assert dev.stop() == 0, dev.log.read_text()
        example.stop()


def _promise_awaited(database_url: str, workflow_id: str) -> bool:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM restate.journal j JOIN restate.invocation i ON i.id = j.invocation_id"
            " WHERE i.key = %s AND j.entry_type = 'GetPromise'", [workflow_id]).fetchone()
    return typing.cast(int, row[0]) > 0 if row else False
