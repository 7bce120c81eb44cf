"""Create and upgrade the restate-pg schema from Python, with alembic under the hood.

The migrations ship inside the package (`restate_pg.migrations`), so this works the same from a
source checkout installed in editable mode and from a wheel. Their version table lives in the
restate-pg schema itself, apart from any alembic history of the application.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.resources
import os
from pathlib import Path
from typing import TYPE_CHECKING

from restate_pg.core.errors import RestatePgError, SchemaNotMigrated
from restate_pg.store.user_connections import execute
from restate_pg.store.database import connect, validate_schema_name
from restate_pg.store.queries import Queries
from restate_pg.store.queries import DEFAULT_SCHEMA

if TYPE_CHECKING:
    from collections.abc import Iterator

    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "SCHEMA_ENV",
    "VERSION_TABLE",
    "MigrationError",
    "acquire_migration_lock",
    "check_migrated",
    "current_revision",
    "downgrade",
    "head_revision",
    "not_migrated",
    "upgrade",
]

#: Name of alembic's version table, kept inside the restate-pg schema (`migrated_revisions` in
#: store/sql/queries/migrations.sql names it too).
VERSION_TABLE = "alembic_version"
#: Environment variable naming the schema when none is given (used by env.py and the CLI).
SCHEMA_ENV = "RESTATE_PG_SCHEMA"

_CONNECT_TIMEOUT = 10.0


class MigrationError(RestatePgError):
    """A migration could not be applied: unknown revision, missing privileges, a failing statement."""


def upgrade(database_url: str, schema: str = DEFAULT_SCHEMA, revision: str = "head") -> None:
    """Bring `schema` up to `revision` (the newest by default), creating the schema if needed.

    All pending revisions apply in one transaction under an advisory lock: concurrent calls (say,
    every replica migrating at start-up) take turns, and the later ones find nothing to do.
    It may be called from an application's own alembic env.py or revision, to migrate both
    histories with one `alembic upgrade head` (see examples/fastapi_app/migrations/env.py).
    """
    _run("upgrade", database_url, schema, revision)


def downgrade(database_url: str, schema: str = DEFAULT_SCHEMA, *, revision: str) -> None:
    """Take `schema` back to `revision` (`"base"` removes every restate-pg table and all their data)."""
    _run("downgrade", database_url, schema, revision)


def current_revision(database_url: str, schema: str = DEFAULT_SCHEMA) -> str | None:
    """Return the revision `schema` is at, or None if restate-pg was never migrated there."""
    validate_schema_name(schema)
    q = Queries(schema)
    with connect(database_url, timeout=_CONNECT_TIMEOUT, autocommit=True) as conn:
        table = f'"{schema}".{VERSION_TABLE}'
        if conn.execute(q.VERSION_TABLE, {"table": table}).fetchone() == (None,):
            return None
        rows = conn.execute(q.MIGRATED_REVISIONS).fetchall()
    if len(rows) > 1:
        raise MigrationError(
            f"the restate-pg schema {schema!r} records several revisions "
            f"({', '.join(sorted(r[0] for r in rows))}); it was not migrated by restate-pg alone"
        )
    return rows[0][0] if rows else None


def head_revision() -> str:
    """Return the newest revision this version of restate-pg knows."""
    head = _script_directory().get_current_head()
    assert head is not None, "restate-pg ships at least one revision"
    return head


def check_migrated(database_url: str, schema: str = DEFAULT_SCHEMA) -> None:
    """Raise `SchemaNotMigrated` unless `schema` is at exactly the revision this version expects.

    Workers and the ingress call this at start-up rather than migrating on their own: schema
    changes are a deliberate step (`restate-pg migrate`), not a side effect of scaling out.
    """
    current = current_revision(database_url, schema)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise not_migrated(schema)
    hint = _hint(schema)
    if _is_known(current):
        raise SchemaNotMigrated(
            f"the restate-pg schema {schema!r} is at revision {current}, "
            f"this version of restate-pg needs {head} ({hint})"
        )
    raise SchemaNotMigrated(
        f"the restate-pg schema {schema!r} is at revision {current}, which this version of "
        f"restate-pg does not know: it was migrated by a newer restate-pg (upgrade restate-pg)"
    )


def not_migrated(schema: str = DEFAULT_SCHEMA) -> SchemaNotMigrated:
    """The error of a schema restate-pg never migrated, worded alike by the CLI and the library
    (`check_migrated`, and `enqueue` when its statement finds no restate-pg schema)."""
    return SchemaNotMigrated(f"the restate-pg schema {schema!r} is not migrated ({_hint(schema)})")


def _hint(schema: str) -> str:
    return "run `restate-pg migrate" + ("`" if schema == DEFAULT_SCHEMA else f" --schema {schema}`")


def acquire_migration_lock(connection: Connection, schema: str) -> None:
    """Wait for, then hold until the transaction ends, the lock serialising migrations of `schema`."""
    execute(connection, Queries(schema).LOCK_MIGRATIONS, {"key": _lock_key(schema)})  # any driver's parameters


def _lock_key(schema: str) -> int:
    # A stable 64-bit key per schema (Python's hash() is salted per process, hashtext() is internal).
    digest = hashlib.blake2b(f"restate_pg.migrate:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _run(command_name: str, database_url: str, schema: str, revision: str) -> None:
    from alembic import command
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    validate_schema_name(schema)
    engine = _engine(database_url)
    try:
        with engine.begin() as connection, _alembic_run_restored():
            acquire_migration_lock(connection, schema)
            getattr(command, command_name)(_config(schema, connection), revision)
    except CommandError as exc:
        raise MigrationError(f"cannot {command_name} the restate-pg schema {schema!r}: {exc}") from exc
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise MigrationError(
            f"cannot {command_name} the restate-pg schema {schema!r}: {reason}"
        ) from exc
    finally:
        engine.dispose()


@contextlib.contextmanager
def _alembic_run_restored() -> Iterator[None]:
    """Put back the alembic run that called us, if any (an application's env.py or revision
    upgrading restate-pg too): alembic keeps the running environment and operations in module
    globals (`alembic.context`, `alembic.op`), which our own run replaces and then removes."""
    from alembic import context, op

    outer = [proxy for proxy in (getattr(context, "_proxy", None), getattr(op, "_proxy", None)) if proxy is not None]
    try:
        yield
    finally:
        for proxy in outer:
            proxy._install_proxy()


def _engine(database_url: str) -> Engine:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    # psycopg connects (not SQLAlchemy's URL parsing), so every URL form psycopg takes works here
    # and a connection failure surfaces as our DatabaseUnavailable, worded like everywhere else.
    return create_engine(
        "postgresql+psycopg://",
        creator=functools.partial(connect, database_url, timeout=_CONNECT_TIMEOUT),
        poolclass=NullPool,
    )


def _migrations_dir() -> Path:
    try:
        location = importlib.resources.files("restate_pg.migrations")
    except ModuleNotFoundError as exc:
        raise MigrationError(
            "restate-pg's migrations are not installed (from a source checkout: pip install -e .)"
        ) from exc
    if not isinstance(location, os.PathLike):
        raise MigrationError(
            f"restate-pg's migrations must be files on disk to run, not {location!r}"
        )
    return Path(location)


def _config(schema: str, connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    # Config options go through configparser interpolation: a literal '%' must be doubled.
    config.set_main_option("script_location", str(_migrations_dir()).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["schema"] = schema
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(DEFAULT_SCHEMA))


def _is_known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return _script_directory().get_revision(revision) is not None
    except CommandError:
        return False
