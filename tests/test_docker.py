"""The container image, without a Docker engine: the Dockerfile's key properties, and what its
build stage does (build the wheel) and its runtime stage runs (`restate-pg` from that wheel alone,
so that a module missing from pyproject's package list fails here rather than in the image)."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
import sysconfig
import typing
import zipfile
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.support.processes import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions() -> typing.List[typing.Tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_image_is_multi_stage_and_runs_restate_pg_as_a_non_root_user():
    steps = instructions()
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) == 2 and stages[0].endswith("AS build")
    runtime = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]
    users = [args for op, args in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert ("ENTRYPOINT", '["restate-pg"]') in runtime
    assert not any(op == "COPY" and "--from" not in args for op, args in runtime)  # sources only reach the build stage


def test_the_build_context_holds_what_the_dockerfile_copies():
    ignore = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]

    def sent(path: str) -> bool:  # .dockerignore semantics: the last matching pattern wins
        keep = True
        for pattern in ignore:
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(path, pattern.lstrip("!").rstrip("/")):
                keep = negated
        return keep

    copied = [source for op, args in instructions() if op == "COPY" and "--from" not in args
              for source in args.split()[:-1]]
    assert copied
    for source in copied:
        assert (REPO / source).exists(), source
        assert sent(source), f"{source} is excluded by .dockerignore"
    assert not sent("tests") and not sent(".git")


def test_compose_runs_postgres_migrate_a_worker_and_the_ingress():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "worker", "ingress"}
    assert services["migrate"]["command"] == ["migrate"]
    app = "examples.fastapi_app.services:app"
    assert services["worker"]["command"] == ["worker", app]
    assert services["ingress"]["command"][:2] == ["serve", app] and "0.0.0.0" in services["ingress"]["command"]
    for name in ("worker", "ingress"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["build"] == "."
    module = app.split(":")[0].replace(".", "/") + ".py"
    assert (REPO / module).exists() and "./examples:/app/examples:ro" in services["worker"]["volumes"]


@pytest.mark.slow
def test_restate_pg_runs_from_its_wheel_alone(tmp_path, clean_db):
    """What the image's two stages do: build the wheel, install it, run `restate-pg`. The venv
    gets this environment's dependencies but not its (editable) restate_pg."""
    wheels = tmp_path / "wheels"
    # Without build isolation: the same setuptools (the test extra pins >=77, as the build does),
    # without fetching it from the index for every run.
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("restate_pg-*.whl")
    with zipfile.ZipFile(wheel) as archive:  # the SQL restate-pg reads at run time is in it
        packed = set(archive.namelist())
    sql_files = {path.relative_to(REPO).as_posix() for path in (REPO / "restate_pg" / "store" / "sql").rglob("*.sql")}
    sql_files |= {"restate_pg/" + path.relative_to(REPO).as_posix() for path in (REPO / "migrations" / "sql").rglob("*") if path.is_file()}
    assert any(name.endswith("sql/MANIFEST") for name in sql_files) and sql_files <= packed, sorted(sql_files - packed)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    site = Path(subprocess.run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # added last: the wheel wins
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "--quiet",
                                "--no-deps", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr

    env = {**os.environ, "PYTHONPATH": ""}
    modules = sorted(".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                     for path in (REPO / "restate_pg").rglob("*.py"))
    probe = ("import importlib, restate_pg\n"
             f"for name in {modules!r}: importlib.import_module(name)\n"
             "from restate_pg.store.queries import statements; assert statements()\n"
             "from restate_pg.store.procedures import procedures_sql; assert 'flush' in procedures_sql('x')\n"
             "from restate_pg.store.introspection import introspection_sql; assert 'sys_journal' in introspection_sql('x')\n"
             "print(restate_pg.__file__)")
    imported = subprocess.run([bin_dir / "python", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip().startswith(str(site))  # the wheel's copy, not the checkout's

    helped = subprocess.run([bin_dir / "restate-pg", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and "restate-pg cron list" in helped.stdout, helped.stderr
    try:
        migrated = subprocess.run([bin_dir / "restate-pg", "migrate", "--database-url", clean_db, "--schema", "wheel_check"],
                                  cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert migrated.returncode == 0, migrated.stderr  # the migrations ship inside the wheel
    finally:
        with psycopg.connect(clean_db, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS wheel_check CASCADE")
