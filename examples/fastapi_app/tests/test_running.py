"""The shop run as its README says: `python -m examples.fastapi_app` and the curl requests it shows,
and its one `alembic upgrade head` for both histories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from restate_pg.store.migrate import current_revision, head_revision
from restate_pg.testing.database import temporary_database
from tests.support.processes import REPO
from tests.test_quickstart import free_port, run_examples, wait_for_port

README = REPO / "examples" / "fastapi_app" / "README.md"


def run_shop(env: dict[str, str], cwd: Path, log_path: Path) -> None:
    """`python -m examples.fastapi_app` on a free port: the README's examples, then Ctrl-C."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.fastapi_app", "--port", str(port)],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log_path)
        run_examples(port, README)
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, log_path.read_text()


@pytest.mark.slow
def test_the_readme_with_a_database(restate_database_url: str, tmp_path: Path) -> None:
    server = make_conninfo(restate_database_url, dbname="postgres")
    with temporary_database(server, prefix="shop_readme") as url:
        run_shop({**os.environ, "DATABASE_URL": url}, REPO, tmp_path / "shop.log")


@pytest.mark.slow
def test_the_readme_with_nothing_but_python(tmp_path: Path) -> None:
    """No DATABASE_URL: the shop starts an embedded PostgreSQL in ./.restate-pg/."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(REPO)
    run_shop(env, tmp_path, tmp_path / "shop.log")
    assert (tmp_path / ".restate-pg" / "pgdata").is_dir()


@pytest.mark.slow
def test_one_alembic_upgrade_migrates_the_shop_and_restate_pg(restate_database_url: str) -> None:
    server = make_conninfo(restate_database_url, dbname="postgres")
    with temporary_database(server, prefix="shop_alembic") as url:
        command = [sys.executable, "-m", "alembic", "-c", "examples/fastapi_app/alembic.ini", "upgrade", "head"]
        result = subprocess.run(command, cwd=REPO, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert current_revision(url) == head_revision()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT version_num FROM public.alembic_version").fetchall() == [("0001",)]
            assert conn.execute("SELECT count(*) FROM public.orders").fetchone() == (0,)


def test_no_path_of_the_shop_names_restate_twice() -> None:
    """Restate's own ingress paths begin with /restate/ (`/restate/workflow/...`): mounted under
    /restate, they would name it twice. The shop mounts the ingress under /ingress."""
    example = REPO / "examples" / "fastapi_app"
    doubled = "/restate" * 2 + "/"
    for path in [README, REPO / "README.md", *example.rglob("*.py")]:
        assert doubled not in path.read_text(), path
    assert 'include_router(ingress, prefix="/ingress")' in (example / "main.py").read_text()
