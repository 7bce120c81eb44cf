"""The shop's database: one PostgreSQL for its tables and restate-pg's.

`DATABASE_URL` names it; `python -m examples.fastapi_app` starts an embedded PostgreSQL when it is
not set. Handlers (`orders.py`) reach the shop's tables through `engine()`, in whichever process
runs them: the web app's, or a `restate-pg worker`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine

from restate_pg.store.database import resolve_database_url, to_sqlalchemy_url

HERE = Path(__file__).resolve().parent

_engine: Engine | None = None


def configure(database_url: str) -> Engine:
    """Use `database_url` for the shop's tables in this process."""
    global _engine
    if _engine is not None:
        _engine.dispose()
    _engine = create_engine(to_sqlalchemy_url(database_url), pool_pre_ping=True)
    return _engine


def engine() -> Engine:
    """The shop's engine, configured from `DATABASE_URL` on first use if nobody configured it."""
    if _engine is None:
        url = resolve_database_url(None)
        if url is None:
            raise RuntimeError("no database configured: set DATABASE_URL")
        return configure(url)
    return _engine


def migrate(database_url: str) -> None:
    """`alembic upgrade head` of the shop (which brings restate-pg's schema up too: see migrations/env.py)."""
    config = Config(str(HERE / "alembic.ini"))
    config.set_main_option("script_location", str(HERE / "migrations").replace("%", "%%"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")
