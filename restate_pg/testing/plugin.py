"""The pytest fixtures of `restate_pg.testing`; enable them with
`pytest_plugins = ["restate_pg.testing"]` in the top-level conftest.py.

A plugin the suite opts into rather than an entry point that every pytest run in the environment
would load: restate-pg is a dependency of applications, and their unrelated test runs should not
import it, nor find fixture names they did not ask for.
"""

from __future__ import annotations

import os
import typing

import pytest

from restate_pg.api.app import App
from restate_pg.store.database import DATABASE_URL_ENV, resolve_database_url
from restate_pg.testing.database import empty_schema, migrated_database
from restate_pg.testing.harness import HarnessEnvironment, create_test_harness

try:
    import pytest_asyncio
except ImportError as exc:  # pragma: no cover - the extra brings it
    raise ImportError("restate_pg.testing needs pytest-asyncio: pip install 'restate-pg[testing]'") from exc

__all__ = ["pytest_addoption", "restate_app", "restate_database_url", "restate_harness"]

#: Environment variable overriding the `restate_pg_test_server` ini option.
TEST_SERVER_ENV = "RESTATE_PG_TEST_SERVER"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "restate_pg_test_server",
        "PostgreSQL server (URL of its maintenance database) on which restate_pg.testing creates a "
        "fresh database per session when DATABASE_URL is not set and the server is reachable",
        default="",
    )
    parser.addini("restate_pg_app", "MODULE:APP of the restate-pg application under test (or a restate_app fixture)", default="")


@pytest.fixture(scope="session")
def restate_database_url(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[str]:
    """A psycopg URL of a database with restate-pg's schema migrated, for the whole session:
    `$DATABASE_URL` as is; else a fresh database on `restate_pg_test_server`
    (or `$RESTATE_PG_TEST_SERVER`) when it is reachable, dropped at the end; else an embedded
    PostgreSQL, stopped at the end.

    In a pytest-xdist worker (`pytest -n 4`), each worker gets a database of its own: with
    `$DATABASE_URL`, a fresh one beside it on the same server (its role needs CREATEDB), dropped at
    the end, which `$DATABASE_URL` names in that worker for the session."""
    server = os.environ.get(TEST_SERVER_ENV, "").strip() or str(pytestconfig.getini("restate_pg_test_server")).strip()
    worker = typing.cast(typing.Dict[str, str], getattr(pytestconfig, "workerinput", {})).get("workerid")
    data_dir = tmp_path_factory.mktemp("postgres") / "pgdata"
    with migrated_database(data_dir=data_dir, server_url=server or None, worker=worker) as url, pytest.MonkeyPatch.context() as env:
        if worker is not None and resolve_database_url(None) is not None:
            env.setenv(DATABASE_URL_ENV, url)
        yield url


@pytest.fixture
def restate_app(pytestconfig: pytest.Config) -> App:
    """The application under test: override this fixture, or name it with the `restate_pg_app`
    ini option (`MODULE:APP`)."""
    spec = str(pytestconfig.getini("restate_pg_app")).strip()
    if not spec:
        raise pytest.UsageError(
            "restate_pg.testing needs the application under test: define a fixture `restate_app` "
            "returning your restate_pg.app(...), or set `restate_pg_app = MODULE:APP` in the pytest configuration"
        )
    from restate_pg.cli.errors import CLIError
    from restate_pg.cli.main import load_app

    try:
        return typing.cast(App, load_app(spec))
    except CLIError as exc:
        raise pytest.UsageError(f"restate_pg_app: {exc}") from None


@pytest_asyncio.fixture
async def restate_harness(restate_app: App, restate_database_url: str) -> typing.AsyncIterator[HarnessEnvironment]:
    """`create_test_harness(restate_app)` on the session's database, emptied of the invocations,
    journals and state earlier tests left."""
    empty_schema(restate_database_url)
    async with create_test_harness(restate_app, database_url=restate_database_url) as env:
        yield env
