"""The `restate-pg` command, run as `python -m restate_pg` in a subprocess, as a user would."""

from __future__ import annotations

import inspect
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from restate_pg.store.migrate import head_revision
from tests.support.polling import eventually_sync

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"
ERROR_PREFIX = "restate-pg: error: "


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RESTATE_PG_SCHEMA")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "restate_pg", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Check the command failed the way users should see it fail, and return the message."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    (line,) = lines
    assert line.startswith(ERROR_PREFIX), line
    for fragment in fragments:
        assert fragment in line
    return line


@pytest.fixture
def fresh_schema(database_url: str) -> Iterator[str]:
    name = f"test_cli_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_help_lists_the_commands(tmp_path: Path) -> None:
    done = run_cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    for command in ("migrate", "worker", "serve", "dev", "invocations"):
        assert command in done.stdout


@pytest.mark.parametrize("command", ["migrate", "worker", "serve", "dev"])
def test_each_command_has_help(tmp_path: Path, command: str) -> None:
    done = run_cli(command, "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "--database-url" in done.stdout
    assert "--schema" in done.stdout


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli(cwd=tmp_path)
    assert done.returncode == 2
    assert ERROR_PREFIX in done.stderr


@pytest.mark.slow
def test_migrate_creates_then_reports_up_to_date(
    tmp_path: Path, database_url: str, fresh_schema: str
) -> None:
    first = run_cli("migrate", "--database-url", database_url, "--schema", fresh_schema, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"created schema '{fresh_schema}'" in first.stdout
    assert head_revision() in first.stdout

    again = run_cli("migrate", "--schema", fresh_schema, cwd=tmp_path, env={"DATABASE_URL": database_url})
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout


def test_migrate_without_a_database(tmp_path: Path) -> None:
    done = run_cli("migrate", cwd=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, "no database configured", "--database-url", "DATABASE_URL")


def test_worker_with_a_module_that_does_not_exist(tmp_path: Path, database_url: str) -> None:
    done = run_cli("worker", "nosuchmodule:app", "--database-url", database_url, cwd=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, "'nosuchmodule'")


def test_worker_with_a_spec_missing_the_attribute(tmp_path: Path, database_url: str) -> None:
    done = run_cli("worker", "justamodule", "--database-url", database_url, cwd=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, "MODULE:APP")


def test_worker_with_a_missing_attribute(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "durable.py").write_text("something_else = 1\n")
    done = run_cli("worker", "durable:app", "--database-url", database_url, cwd=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, "'durable'", "no attribute 'app'")


def test_worker_with_an_attribute_that_is_not_an_app(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "durable.py").write_text("app = object()\n")
    done = run_cli("worker", "durable:app", "--database-url", database_url, cwd=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, "'durable:app'", "not a restate_pg.App")


def test_worker_with_a_module_that_fails_to_import(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "durable.py").write_text("import json\n\nraise RuntimeError('no config file')\n")
    done = run_cli("worker", "durable:app", "--database-url", database_url, cwd=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, "importing 'durable' failed", "no config file", "durable.py:3")


def test_worker_with_an_unreachable_database(tmp_path: Path) -> None:
    done = run_cli("worker", "durable:app", "--database-url", UNREACHABLE, cwd=tmp_path)
    assert done.returncode != 0
    assert_one_line_error(done, "127.0.0.1:1", "Connection refused")


def test_worker_with_a_database_that_is_not_postgresql(tmp_path: Path) -> None:
    done = run_cli("worker", "durable:app", "--database-url", "mysql://db/x", cwd=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, "PostgreSQL")


def test_serve_against_an_unmigrated_schema(tmp_path: Path, database_url: str, fresh_schema: str) -> None:
    done = run_cli(
        "serve", "durable:app", "--database-url", database_url, "--schema", fresh_schema, cwd=tmp_path
    )
    assert done.returncode == 2
    assert_one_line_error(done, f"'{fresh_schema}' is not migrated", "restate-pg migrate")


def test_an_unusable_schema_name(tmp_path: Path, database_url: str) -> None:
    done = run_cli(
        "worker", "durable:app", "--database-url", database_url, "--schema", "No-Good", cwd=tmp_path
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{ERROR_PREFIX}argument --schema: invalid schema name 'No-Good'" in done.stderr


def test_a_signal_stops_a_long_running_command_gracefully(tmp_path: Path) -> None:
    # The worker command runs run_worker() this way; a stand-in coroutine keeps this test
    # independent of the worker itself.
    script = (
        "import asyncio, sys\n"
        "from restate_pg.cli.running import run_until_signalled\n"
        "async def work():\n"
        "    print('ready', flush=True)\n"
        "    try:\n"
        "        await asyncio.sleep(60)\n"
        "    finally:\n"
        "        print('cleaned up', flush=True)\n"
        "sys.exit(run_until_signalled(work()))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert stdout == "cleaned up\n"
    assert "stopping" in stderr
    assert "Traceback" not in stderr


def test_tuning_defaults_quoted_in_help_are_the_engines() -> None:
    from restate_pg.cli.arguments import ENGINE_OPTIONS
    from restate_pg.worker.engine import Engine

    parameters = inspect.signature(Engine.__init__).parameters
    for flag, keyword, help_text in ENGINE_OPTIONS:
        if keyword == "concurrency":
            continue  # two defaults, by whether there is an application: tests/test_cli_help.py
        quoted = re.search(r"\(default: ([0-9.]+)\)", help_text)
        assert quoted is not None, flag
        assert float(quoted.group(1)) == parameters[keyword].default, flag


@pytest.mark.slow
def test_dev_serves_the_admin_api_on_its_own_port(tmp_path: Path, database_url: str, fresh_schema: str) -> None:
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "restate_pg", "dev", "tests.apps.awakeables:app", "--database-url", database_url,
         "--schema", fresh_schema, "--port", str(port), "--admin-port", "0", "--log-level", "warning"],
        cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        admin_port = None
        for line in process.stdout:
            found = re.search(r"admin API on http://127\.0\.0\.1:(\d+)", line)
            if found:
                admin_port = int(found.group(1))
                break
        assert admin_port is not None
        with httpx.Client(timeout=10) as client:

            def healthy() -> bool:
                try:
                    client.get(f"http://127.0.0.1:{port}/restate/health")
                    return True
                except httpx.TransportError:
                    return False

            eventually_sync(healthy, timeout_s=10, interval_s=0.05, what="the ingress to answer")
            sent = client.post(f"http://127.0.0.1:{port}/Holder/k/hold/send?delay=1h", json="x")
            invocation_id = sent.json()["invocationId"]
            assert client.patch(f"http://127.0.0.1:{admin_port}/invocations/{invocation_id}/cancel").status_code == 200
            assert client.patch(f"http://127.0.0.1:{admin_port}/invocations/nope/kill").status_code == 400
            unknown = client.get(f"http://127.0.0.1:{admin_port}/nope")
            assert (unknown.status_code, unknown.json()) == (404, {"code": 404, "message": "no admin path /nope"})
            wrong = client.delete(f"http://127.0.0.1:{admin_port}/services")
            assert (wrong.status_code, wrong.json()["message"]) == (405, "method DELETE not allowed on /services")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_serve_reports_a_port_in_use_in_one_line(tmp_path: Path, database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_cli("serve", "tests.apps.awakeables:app", "--database-url", database_url, "--port", str(port),
                       "--admin-port", "0", cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 2
    assert_one_line_error(done, f"cannot listen on 127.0.0.1:{port}")



@pytest.mark.slow
def test_sql_on_an_unmigrated_schema_says_to_migrate(tmp_path: Path, database_url: str, fresh_schema: str) -> None:
    done = run_cli("sql", "SELECT * FROM sys_invocation", "--database-url", database_url, "--schema", fresh_schema,
                   cwd=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done, "not migrated", "restate-pg migrate")


def test_serving_processes_freeze_startup_objects_out_of_the_collector() -> None:
    import gc

    from restate_pg.cli.running import GC_YOUNG_THRESHOLD, tune_gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_freeze_count() > 1000  # the modules and objects this test process made so far
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        garbage = []
        garbage.append(garbage)  # a cycle made after the freeze is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
