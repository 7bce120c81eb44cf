"""The README's sections on transactional enqueue and the client, run as written (the app's
module `myapp.services` is tests.apps.clients; URLs point at this test's ingress and database)."""

from __future__ import annotations

import ast
import asyncio
import re
import typing
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import create_async_engine

from restate_pg.store.database import to_sqlalchemy_url
from tests.apps import clients
from tests.support.polling import row
from tests.support.server import serve

README = Path(__file__).resolve().parents[1] / "README.md"


def examples(section: str) -> typing.List[str]:
    """The python blocks of the README section titled `section`."""
    text = README.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, re.S)


async def run_example(source: str, namespace: typing.Dict[str, typing.Any], replacements: typing.Dict[str, str]) -> None:
    for old, new in {"myapp.services": "tests.apps.clients", **replacements}.items():
        source = source.replace(old, new)
    code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & 0x80:  # CO_COROUTINE: the example awaits
        await eval(code, namespace)
    else:  # blocking code runs off the loop that serves the ingress
        await asyncio.to_thread(exec, code, namespace)


@pytest.fixture
async def ingress(clean_db):
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.orders (id integer PRIMARY KEY)")
        conn.execute("TRUNCATE public.orders")
    async with serve(clients.app, clean_db) as served:
        yield served


async def test_starting_invocations_in_your_own_transaction(ingress, capsys):
    engine = create_engine(to_sqlalchemy_url(ingress.engine.store.conninfo))
    async_engine = create_async_engine(to_sqlalchemy_url(ingress.engine.store.conninfo))
    namespace: typing.Dict[str, typing.Any] = {"engine": engine, "async_engine": async_engine}
    try:
        for source in examples("Starting invocations in your own transaction"):
            await run_example(source, namespace, {})
    finally:
        engine.dispose()
        await async_engine.dispose()
    invocation_id, status = capsys.readouterr().out.split()
    assert invocation_id == namespace["handle"].invocation_id and status == "Accepted"
    assert await row(ingress.engine, "SELECT id FROM public.orders") == (42,)
    result = await asyncio.wait_for(ingress.engine.results.wait(invocation_id), 30)
    assert result is not None and result.output == b'"order 42 confirmed"'
    assert await row(ingress.engine, "SELECT status FROM restate.invocation WHERE id = %s",
                     namespace["later"].invocation_id) == ("scheduled",)
    assert await row(ingress.engine, "SELECT count(*) FROM restate.invocation") == (4,)


async def test_the_python_client(ingress, capsys):
    replacements = {"http://localhost:8080": ingress.base_url, "postgresql://localhost/app": ingress.engine.store.conninfo}
    namespace: typing.Dict[str, typing.Any] = {}
    for source in examples("The Python client"):
        await run_example(source, namespace, replacements)
    assert capsys.readouterr().out.splitlines() == ["order 7 confirmed", "order 8 confirmed", "order 9 confirmed"]
