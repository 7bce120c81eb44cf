"""Bad input from Python code and from the operator's command line (issue 11).

The client refuses a value PostgreSQL cannot store (a NUL) with a `ValueError` naming it, over
SQL and over HTTP alike, before anything is sent or written; the values it carries as bytes (a
handler's input) may hold NULs. `restate-pg` answers a NUL argument with one error line.
"""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path

import psycopg
import pytest

import restate_pg
from restate_pg.cli.main import main
from restate_pg.client.transactional import enqueue
from tests.apps import ingress_app
from tests.support.server import serve
from tests.test_bad_input import APP, AWAKEABLE, digest
from tests.test_cli import ERROR_PREFIX, assert_one_line_error

NUL = "a\x00b"


@pytest.fixture
async def ingress(clean_db):
    async with serve(APP, clean_db, admin=True) as served:
        yield served


@pytest.fixture(params=["sql", "http"])
async def client(request, ingress):
    if request.param == "sql":
        made = restate_pg.create_client(ingress.engine.store.conninfo, app=APP)
    else:
        made = restate_pg.create_client(ingress.base_url, admin_url=ingress.base_url + "/admin")
    async with made:
        yield made


Call = typing.Callable[[typing.Any], typing.Awaitable[typing.Any]]
REFUSED: typing.List[typing.Tuple[str, Call]] = [
    ("bad key", lambda c: c.object_call("Counter/add", NUL, 1)),
    ("bad key", lambda c: c.object_send(ingress_app.request, NUL)),
    ("bad idempotency key", lambda c: c.service_call(ingress_app.echo, "x", idempotency_key=NUL)),
    ("the idempotency key must not be empty", lambda c: c.service_send(ingress_app.echo, "x", idempotency_key="")),
    ("bad header x-probe", lambda c: c.service_call(ingress_app.echo, "x", headers={"x-probe": NUL})),
    ("bad header name", lambda c: c.service_send(ingress_app.echo, "x", headers={NUL: "1"})),
    ("bad service name", lambda c: c.generic_send("Eff\x00ects", "echo", b'"x"')),
    ("bad handler name", lambda c: c.generic_call("Effects", "ec\x00ho", b'"x"')),
    ("bad invocation id", lambda c: c.attach_invocation(NUL)),
    ("bad invocation id", lambda c: c.get_output(NUL)),
    ("bad invocation id", lambda c: c.cancel_invocation(NUL)),
    ("bad awakeable id", lambda c: c.resolve_awakeable(NUL, "v")),
    ("bad failure message", lambda c: c.reject_awakeable(AWAKEABLE, NUL)),
]


@pytest.mark.parametrize("expected, call", REFUSED, ids=[f"{n}-{e}" for n, (e, _) in enumerate(REFUSED)])
async def test_the_client_refuses_a_nul_with_a_value_error_before_writing(client, clean_db, expected, call):
    before = await digest(clean_db)
    with pytest.raises(ValueError, match=expected):
        await call(client)
    assert await digest(clean_db) == before


async def test_a_nul_in_an_input_is_the_handlers_business(client):
    assert await client.service_call(ingress_app.echo, NUL) == NUL
    sent = await client.service_send(ingress_app.echo, {"note": NUL})
    assert await client.attach_invocation(sent.invocation_id) == {"note": NUL}


async def test_client_headers_and_enqueued_values_are_checked_too(ingress, clean_db):
    for url in (ingress.base_url, ingress.engine.store.conninfo):
        with pytest.raises(ValueError, match="bad header x-probe"):
            restate_pg.create_client(url, headers={"x-probe": NUL})
    before = await digest(clean_db)
    with psycopg.connect(clean_db) as conn:
        for options in ({"key": NUL}, {"idempotency_key": NUL}, {"headers": {"x-probe": NUL}}):
            target = ingress_app.request if "key" in options else ingress_app.echo
            with pytest.raises(ValueError, match="bad "):
                enqueue(conn, target, None if "key" in options else "x", **options)
        conn.commit()
    assert await digest(clean_db) == before


COMMANDS = [
    ["invocations", "cancel", NUL],
    ["invocations", "describe", "inv_1\x00"],
    ["invocations", "list", "--service", NUL],
    ["kv", "get", "Counter", NUL],
    ["kv", "set", "Counter", "k", "count\x00", "1"],
    ["kv", "clear", "Counter", NUL],
    ["cron", "disable", NUL],
    ["sql", "SELECT 1 -- \x00 and the rest"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_a_nul_argument_is_one_error_line(command, database_url, capsys):
    """A shell cannot pass a NUL, but `main(argv)` can be given one."""
    status = main([*command, "--database-url", database_url])
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX + "bad argument "), captured.err
    assert "NUL" in lines[0] and "\x00" not in lines[0]


def test_a_nul_from_a_shell_never_reaches_the_command(database_url, tmp_path):
    """`$'a\\x00b'` reaches the program as "a" (C strings end at the NUL): an unknown target,
    refused in one line."""
    script = f"{sys.executable} -m restate_pg invocations cancel $'a\\x00b' " + "--database-url \"$1\""
    done = subprocess.run(["bash", "-c", script, "bash", database_url], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert_one_line_error(done, "'a' is neither an invocation id")
