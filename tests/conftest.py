"""Fixtures every test module may use: a PostgreSQL database with the restate-pg schema migrated.

The database is `restate_pg.testing`'s (the same plugin applications use), first that works:

1. `$DATABASE_URL`, used as is (its `restate` schema is migrated, and emptied by `clean_db`);
2. the server of `restate_pg_test_server` in pyproject.toml, PostgreSQL at 127.0.0.1:5432 (user
   `postgres`, no password), when reachable: a fresh database `restate_pg_test_<random>` is
   created for the session and dropped at its end;
3. an embedded PostgreSQL (`pgserver`) in a temporary directory, stopped at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest_plugins = ["restate_pg.testing", "tests.endpoints.fixtures"]  # the second: real SDK endpoints

#: The schema the session database is migrated into.
TEST_SCHEMA = "restate"


@pytest.fixture(scope="session")
def database_url(restate_database_url: str) -> str:
    """A psycopg connection string of a database whose `restate` schema is migrated."""
    return restate_database_url


@pytest.fixture
def clean_db(database_url: str) -> Iterator[str]:
    """`database_url`, with every restate-pg table emptied first (the migration history is kept)."""
    from restate_pg.testing import empty_schema  # after pytest_plugins: pytest imports the plugin first

    empty_schema(database_url, TEST_SCHEMA)
    yield database_url


@pytest.fixture
def side_effects(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty side-effect ledger (tests.support.ledger), reachable from worker subprocesses too."""
    from tests.support import ledger

    monkeypatch.setenv(ledger.DSN_ENV, database_url)
    ledger.reset()
    yield
