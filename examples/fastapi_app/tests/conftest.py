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
def shop_database_url(restate_database_url: str) -> str:
    """The plugin's database with the shop's alembic history applied (restate-pg's schema too)."""
    from examples.fastapi_app import db

    db.migrate(restate_database_url)
    return restate_database_url


@pytest.fixture
def shop_db(shop_database_url: str) -> typing.Iterator[Engine]:
    """The shop's engine, with its tables emptied first."""
    from examples.fastapi_app import db

    engine = db.configure(shop_database_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE orders RESTART IDENTITY"))
    yield engine
