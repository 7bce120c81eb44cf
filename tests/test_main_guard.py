"""Apps laid out for `uv run .` (a `__main__.py` that starts its own server under a main guard).

restate-pg imports such a file for its app and must never run the guard: the guard starts the
program's own HTTP server (hypercorn, in Restate's templates), which would take the process over.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.support.polling import eventually_sync

GREETER = '''\
import restate_pg as restate

greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    return f"Hello, {name}!"
'''

#: The guard leaves a marker file, then fails loudly: either way the test sees that it ran.
GUARD = '''
if __name__ == "__main__":
    open("guard-ran", "w").close()
    raise SystemExit("the main guard ran")
'''


@pytest.fixture
def fresh_schema(database_url: str) -> Iterator[str]:
    name = f"test_guard_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environ() -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RESTATE_PG_SCHEMA")}
    environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return environ


@pytest.mark.slow  # over four seconds: the full suite's, not the quick run's
def test_dev_serves_the_app_of_a_main_file_without_running_its_guard(
    tmp_path: Path, database_url: str, fresh_schema: str
) -> None:
    (tmp_path / "greeter.py").write_text(GREETER)
    (tmp_path / "__main__.py").write_text("import restate_pg as restate\nfrom greeter import greeter\n\n"
                                          "app = restate.app([greeter])\n" + GUARD)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "restate_pg", "dev", "__main__.py:app", "--database-url", database_url,
         "--schema", fresh_schema, "--port", str(port), "--no-admin", "--log-level", "warning"],
        cwd=tmp_path, env=_environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        with httpx.Client(timeout=30) as client:

            def answered() -> bool:
                assert process.poll() is None, process.communicate()
                try:
                    client.get(f"http://127.0.0.1:{port}/restate/health")
                    return True
                except httpx.TransportError:
                    return False

            eventually_sync(answered, timeout_s=30, interval_s=0.05, what="the ingress to answer")
            reply = client.post(f"http://127.0.0.1:{port}/Greeter/greet", json="uv")
            assert (reply.status_code, reply.json()) == (200, "Hello, uv!")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert not (tmp_path / "guard-ran").exists()


def test_a_packaged_main_file_is_imported_as_the_packages_main(tmp_path: Path) -> None:
    package = tmp_path / "proj" / "app"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "greeter.py").write_text(GREETER)
    (package / "__main__.py").write_text("import restate_pg as restate\nfrom .greeter import greeter\n\n"
                                         "app = restate.app([greeter])\n" + GUARD)
    probe = ("from restate_pg.cli.loader import load_app\n"
             "app = load_app('app/__main__.py:app')\n"
             "print(sorted(app.services), type(app).__name__)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path / "proj", env=_environ(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "['Greeter'] App" in done.stdout
    assert not (tmp_path / "proj" / "guard-ran").exists()


def test_an_app_built_only_inside_the_guard_is_refused_saying_so(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "greeter.py").write_text(GREETER)
    (tmp_path / "__main__.py").write_text(
        "import restate_pg as restate\nfrom greeter import greeter\n\n"
        'if __name__ == "__main__":\n    app = restate.app([greeter])\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "restate_pg", "worker", "__main__.py:app", "--database-url", database_url],
        cwd=tmp_path, env=_environ(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert re.search(r"no attribute 'app' outside its `if __name__ == \"__main__\":` block", line), line
    assert "move `app = restate.app(...)` above it" in line
