"""The shop's tests use restate-pg's pytest plugin: a migrated database, and a worker and ingress
running in the test (`restate_harness`), with helpers to fire timers and read state."""

from __future__ import annotations

import typing

import pytest
from sqlalchemy import Engine, text

from restate_pg.api.app import App

pytest_plugins = ["restate_pg.testing"]


@pytest.fixture
def restate_app() -> App:
    from examples.fastapi_app import orders

    return orders.app


@pytest.fixture(scope="session")
def restate_database_url(restate_database_url: str) -> typing.Iterator[str]:
    """The shop's database, with its alembic history applied (restate-pg's schema too); the
    harness (`restate_harness`) uses it. A database of its own beside the plugin's, because this
    repository's suite keeps other applications' tables there (one has an `orders` table too);
    in an application's own suite, migrating the plugin's database would do."""
    from psycopg.conninfo import make_conninfo

    from examples.fastapi_app import db
    from restate_pg.testing.database import temporary_database

    with temporary_database(make_conninfo(restate_database_url, dbname="postgres"), prefix="shop_test") as url:
        db.migrate(url)
        yield url


@pytest.fixture
def shop_db(restate_database_url: str) -> typing.Iterator[Engine]:
    """The shop's engine, with its tables emptied first."""
    from examples.fastapi_app import db

    engine = db.configure(restate_database_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE orders RESTART IDENTITY"))
    yield engine
