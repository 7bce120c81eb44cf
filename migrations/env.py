"""alembic environment of restate-pg.

Settings, first found wins:

- database: `config.attributes["connection"]` (an SQLAlchemy Connection; migrations run in its
  transaction, which the caller commits), `config.attributes["url"]`, `-x url=...`, `$DATABASE_URL`;
- schema: `config.attributes["schema"]`, `-x schema=...`, `$RESTATE_PG_SCHEMA`, `restate`.

The version table is `<schema>.alembic_version`, so restate-pg's history never mixes with the host
application's own alembic history. Online runs hold an advisory lock for the whole (single)
transaction, so concurrent runs against one schema take turns. `alembic ... upgrade head --sql`
prints the SQL instead (offline mode).
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.util import CommandError
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from restate_pg.errors import RestatePgError
from restate_pg.migrations._schema import SCHEMA_ATTRIBUTE
from restate_pg.store.database import to_sqlalchemy_url, validate_schema_name
from restate_pg.store.migrate import SCHEMA_ENV, VERSION_TABLE, acquire_migration_lock
from restate_pg.store.queries import Queries
from restate_pg.store.schema import DEFAULT_SCHEMA, build_metadata

config = context.config


def _setting(attribute: str, env_var: str) -> str | None:
    value = config.attributes.get(attribute) or context.get_x_argument(as_dictionary=True).get(attribute)
    return str(value) if value else (os.environ.get(env_var) or None)


def _resolve_schema() -> str:
    schema = _setting(SCHEMA_ATTRIBUTE, SCHEMA_ENV) or DEFAULT_SCHEMA
    try:
        validate_schema_name(schema)
    except RestatePgError as exc:
        raise CommandError(str(exc)) from None
    config.attributes[SCHEMA_ATTRIBUTE] = schema  # read by the revisions, via _schema.target_schema()
    return schema


def _configure(schema: str, target_metadata: MetaData, **kwargs: Any) -> None:
    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        # Autogenerate looks at the restate-pg schema only, never at the application's tables.
        if type_ == "schema":
            return name == schema
        return not (type_ == "table" and name == VERSION_TABLE)

    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        include_schemas=True,
        include_name=include_name,
        **kwargs,
    )


def run_migrations_offline(schema: str) -> None:
    url = _setting("url", "DATABASE_URL")
    target = {"url": to_sqlalchemy_url(url)} if url else {"dialect_name": "postgresql"}
    # "named" keeps literal '%' (as in fence()'s RAISE format) from being doubled in the output.
    _configure(
        schema,
        build_metadata(schema),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **target,
    )
    with context.begin_transaction():
        context.execute(Queries(schema).CREATE_SCHEMA)
        context.run_migrations()


def _run(connection: Connection, schema: str) -> None:
    # The version table lives in the schema, so the schema must exist before alembic looks for it.
    connection.exec_driver_sql(Queries(schema).CREATE_SCHEMA)
    _configure(schema, build_metadata(schema), connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online(schema: str) -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        if connection.in_transaction():
            _run(connection, schema)
        else:
            with connection.begin():
                _run(connection, schema)
        return

    url = _setting("url", "DATABASE_URL")
    if not url:
        raise CommandError("no database URL: pass -x url=postgresql://... or set DATABASE_URL")
    try:
        engine = create_engine(to_sqlalchemy_url(url), poolclass=NullPool)
    except RestatePgError as exc:
        raise CommandError(str(exc)) from None
    try:
        with engine.begin() as connection:
            acquire_migration_lock(connection, schema)
            _run(connection, schema)
    finally:
        engine.dispose()


if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

_schema = _resolve_schema()
if context.is_offline_mode():
    run_migrations_offline(_schema)
else:
    run_migrations_online(_schema)
