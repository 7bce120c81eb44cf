"""alembic environment of the shop: its own tables, and restate-pg's schema beside them.

`alembic upgrade head` first brings restate-pg's schema (`restate`, with its own version table
`restate.alembic_version`) to the revision the installed restate-pg needs, then runs the shop's
revisions (version table `public.alembic_version`). restate-pg's schema follows the restate-pg
version, not the shop's history: pinning its revisions inside the shop's would freeze them, and
workers refuse to start on a schema that is not at their version's head. Downgrading the shop
leaves restate-pg's schema alone.

Database, first found: `config.attributes["database_url"]`, `-x url=...`, `$DATABASE_URL`.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from examples.fastapi_app.models import Base
from restate_pg.store.database import to_sqlalchemy_url
from restate_pg.store.migrate import upgrade as upgrade_restate_pg

config = context.config


def database_url() -> str:
    url = (
        config.attributes.get("database_url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("DATABASE_URL")
    )
    if not url:
        raise SystemExit("no database: set DATABASE_URL or pass -x url=postgresql://...")
    return str(url)


def run_offline() -> None:
    """`--sql`: the shop's revisions only (restate-pg's own alembic prints its SQL: see its README)."""
    context.configure(url=to_sqlalchemy_url(database_url()), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    url = database_url()
    upgrade_restate_pg(url)  # its own transaction, under its own advisory lock
    engine = create_engine(to_sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=Base.metadata)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
