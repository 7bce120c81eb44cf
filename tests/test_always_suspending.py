"""Inactivity timeout 0 (Restate's always-suspending mode): every await that is not already
complete ends the attempt, and the next one replays to it; set for the engine, on the command
line, or by a handler or service with `inactivity_timeout=timedelta(0)`."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.apps import suspending
from tests.support.polling import eventually_sync
from tests.support.server import serve

REPO = Path(__file__).resolve().parent.parent


async def test_an_engine_with_inactivity_timeout_0_suspends_at_every_pending_await(clean_db):
    async with serve(suspending.app, clean_db, inactivity_timeout=0) as served:
        tag = secrets.token_hex(4)
        assert (await served.client.post("/Suspending/nap", json=tag)).json() == 2  # the sleep suspended
        tag = secrets.token_hex(4)
        assert (await served.client.post("/Suspending/call_echo", json=tag)).json() == 2  # so did the call


async def test_a_handler_or_service_with_inactivity_timeout_0_suspends_while_others_wait_in_memory(clean_db):
    async with serve(suspending.app, clean_db, inactivity_timeout=30) as served:
        tags = [secrets.token_hex(4) for _ in range(3)]
        assert (await served.client.post("/Suspending/nap", json=tags[0])).json() == 1  # waited in memory
        assert (await served.client.post("/Eager/eager_nap", json=tags[1])).json() == 2
        assert (await served.client.post("/Suspending/eager_handler_nap", json=tags[2])).json() == 2


@pytest.mark.slow
def test_inactivity_timeout_refuses_a_negative_number(tmp_path: Path, database_url: str) -> None:
    # dev and worker share the option (cli/arguments.py); dev accepting 0 is tested below
    done = subprocess.run(
        [sys.executable, "-m", "restate_pg", "worker", "tests.apps.suspending:app", "--database-url", database_url,
         "--inactivity-timeout", "-1"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--inactivity-timeout: expected zero or a positive number, got '-1'" in done.stderr


@pytest.fixture
def fresh_schema(database_url: str):
    name = f"test_suspending_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.mark.slow
def test_dev_with_inactivity_timeout_0_suspends_at_every_pending_await(database_url: str, fresh_schema: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RESTATE_PG_SCHEMA")}
    process = subprocess.Popen(
        [sys.executable, "-m", "restate_pg", "dev", "tests.apps.suspending:app", "--database-url", database_url,
         "--schema", fresh_schema, "--port", str(port), "--inactivity-timeout", "0", "--log-level", "warning"],
        cwd=REPO, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            def healthy() -> bool:
                try:
                    return client.get("/restate/health").status_code == 200
                except httpx.TransportError:
                    return False

            eventually_sync(healthy, timeout_s=30, interval_s=0.05, what="the ingress to answer")
            assert client.post("/Suspending/nap", json="cli").json() == 2
            assert client.post("/Suspending/call_echo", json="cli-call").json() == 2
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert not re.search(r"(?i)error", stderr), stderr


async def test_as_completed_follows_the_timers_firing_not_the_order_given(clean_db):
    async with serve(suspending.app, clean_db, inactivity_timeout=0) as served:
        assert (await served.client.post("/Suspending/timers_in_completion_order", json=None)).json() == [300, 600, 900]


async def test_wait_completed_reports_only_the_call_done_while_the_sleep_is_pending(clean_db):
    async with serve(suspending.app, clean_db, inactivity_timeout=0) as served:
        assert (await served.client.post("/Suspending/call_or_sleep", json=None)).json() == [["call"], ["sleep"]]
