"""examples/django_app, run as its README says: `manage.py migrate` creates Django's tables and
restate-pg's schema, `manage.py restate_worker` runs the handlers, uvicorn serves the ASGI
application (Django, with the ingress under /restate/); a Django view → handler → Django model
round trip over real HTTP."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import typing
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from restate_pg.store.migrate import current_revision, head_revision
from tests.support.polling import eventually
from tests.support.processes import REPO, ChildProcess

EXAMPLE = REPO / "examples" / "django_app"


@pytest.fixture(scope="module")
def shop_database(database_url: str) -> typing.Iterator[str]:
    """A database of its own, so that Django's `migrate` creates restate-pg's schema from nothing
    (the test database when this role may not create databases)."""
    name = f"restate_pg_django_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error:
        yield database_url
        return
    try:
        yield make_conninfo(database_url, dbname=name)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(database: str, *args: str) -> ChildProcess:
    return ChildProcess([sys.executable, "manage.py", *args], cwd=EXAMPLE, env={"DATABASE_URL": database})


@pytest.fixture(scope="module")
async def shop(shop_database: str) -> typing.AsyncIterator[httpx.AsyncClient]:
    migrate = subprocess.run([sys.executable, "manage.py", "migrate"], cwd=EXAMPLE, capture_output=True, text=True,
                             env={**os.environ, "DATABASE_URL": shop_database})
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "Applying orders.0002_restate_pg_schema... OK" in migrate.stdout
    port = _free_port()
    server = ChildProcess([sys.executable, "-m", "uvicorn", "shopsite.asgi:application", "--port", str(port)],
                          cwd=EXAMPLE, env={"DATABASE_URL": shop_database})
    with manage(shop_database, "restate_worker", "--lease-seconds", "1", "--poll-interval", "0.1") as worker, server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            async def health() -> typing.Optional[int]:
                try:
                    return (await client.get("/restate/health")).status_code
                except httpx.TransportError:
                    return None

            if await eventually(health, 200, timeout_s=30) != 200:
                pytest.fail("the site did not start:\n" + server.log() + "\nworker:\n" + worker.log())
            yield client


@pytest.mark.slow
async def test_migrate_applies_restate_pgs_schema(shop, shop_database):
    assert current_revision(shop_database) == head_revision()


async def test_an_order_placed_in_a_view_is_fulfilled_by_a_worker(shop):
    assert (await shop.post("/products/", json={"name": "widget", "stock": 5})).status_code == 201
    placed = await shop.post("/orders/", json={"product": "widget", "quantity": 2})
    assert placed.status_code == 202, placed.text
    order = placed.json()["order"]
    assert placed.json()["invocation"].startswith("inv_")
    assert await eventually(lambda: _status(shop, order), "reserved", timeout_s=30) == "reserved"
    assert (await shop.get("/products/widget/")).json() == {"name": "widget", "stock": 3}

    too_many = (await shop.post("/orders/", json={"product": "widget", "quantity": 4})).json()["order"]
    assert await eventually(lambda: _status(shop, too_many), "rejected", timeout_s=30) == "rejected"
    assert (await shop.get("/products/widget/")).json()["stock"] == 3


async def _status(shop: httpx.AsyncClient, order: int) -> str:
    return (await shop.get(f"/orders/{order}/")).json()["status"]


@pytest.mark.slow
async def test_the_ingress_is_served_under_restate(shop):
    await shop.post("/products/", json={"name": "gadget", "stock": 1})
    order = (await shop.post("/orders/", json={"product": "gadget", "quantity": 1})).json()["order"]
    assert await eventually(lambda: _status(shop, order), "reserved", timeout_s=30) == "reserved"
    again = await shop.post("/restate/call/Orders/fulfil", json=order)
    assert again.status_code == 200 and again.json() == "reserved"
    assert (await shop.get("/products/gadget/")).json()["stock"] == 0  # reserved once
    missing = await shop.post("/restate/call/Orders/fulfil", json=999999)
    assert missing.status_code == 404 and missing.json()["message"] == "no order 999999"


async def test_bad_input_gets_a_status_and_a_message(shop):
    bad = await shop.post("/orders/", content=b"not json")
    assert bad.status_code == 400 and bad.json() == {"message": "the body must be JSON"}
    unknown = await shop.post("/orders/", json={"product": "nothing", "quantity": 1})
    assert unknown.status_code == 404 and unknown.json() == {"message": "no product 'nothing'"}
    negative = await shop.post("/orders/", json={"product": "widget", "quantity": -1})
    assert negative.status_code == 400 and "quantity" in negative.json()["message"]


def test_the_readme_quotes_the_examples_code():
    """The root README's Django section quotes the example (which the tests above run): each of
    its code blocks stands in one of the example's files, line for line (indentation aside)."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Adopting restate-pg in Django\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 4
    sources = ["\n".join(line.strip() for line in p.read_text().splitlines()) for p in EXAMPLE.rglob("*.py")]
    for block in blocks:
        quoted = "\n".join(line.strip() for line in block.strip().splitlines())
        assert any(quoted in source for source in sources), block


@pytest.mark.slow
async def test_restate_worker_reports_a_bad_app_in_one_line(shop, shop_database):
    result = subprocess.run([sys.executable, "manage.py", "restate_worker", "orders.nowhere:app"], cwd=EXAMPLE,
                            capture_output=True, text=True, timeout=60, env={**os.environ, "DATABASE_URL": shop_database})
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("restate-pg: error:") and "orders.nowhere" in line


def test_the_readme_installs_into_a_virtualenv():
    """On a machine with nothing but Python, `pip install` outside a virtualenv fails (PEP 668) or
    pollutes the system: the README's first commands make one and activate it, then install."""
    readme = (EXAMPLE / "README.md").read_text()
    first_block = re.findall(r"```sh\n(.*?)```", readme, re.S)[0]
    commands = [" ".join(shlex.split(part, comments=True))
                for line in first_block.splitlines() for part in line.split("&&") if part.strip()]
    commands = [c for c in commands if c]
    assert commands[:4] == ["python -m venv .venv", ". .venv/bin/activate", "pip install -e ../..[django]", "python dev.py"]
