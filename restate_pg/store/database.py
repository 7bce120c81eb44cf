"""Database URLs and connections: one place that knows how to reach PostgreSQL and says so clearly.

restate-pg talks to PostgreSQL through psycopg 3 and runs migrations through SQLAlchemy, and the two
spell a URL differently (`postgresql://` versus `postgresql+psycopg://`). Users may hand us either,
or the `postgres://` that hosting providers print, or a libpq `key=value` string; these helpers
accept all of them so that nobody has to care which layer reads the setting.
"""

from __future__ import annotations

import math
import os
import re
from urllib.parse import urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from restate_pg.core.errors import DatabaseUnavailable, RestatePgError
from restate_pg.store import queries

__all__ = [
    "DATABASE_URL_ENV",
    "ConfigurationError",
    "check_reachable",
    "connect",
    "describe_target",
    "libpq_conninfo",
    "resolve_database_url",
    "to_psycopg_conninfo",
    "to_sqlalchemy_url",
    "validate_schema_name",
]

#: The environment variable read when no database URL is given explicitly.
DATABASE_URL_ENV = "DATABASE_URL"

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.DOTALL)
_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql"})
# Lower case only, so the name means the same whether or not a statement quotes it.
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ConfigurationError(RestatePgError, ValueError):
    """A setting is malformed: a database URL that is not PostgreSQL's, an unusable schema name."""


def resolve_database_url(explicit: str | None) -> str | None:
    """Return `explicit` if given, else `$DATABASE_URL`, else None (empty strings count as unset)."""
    if explicit and explicit.strip():
        return explicit.strip()
    from_env = os.environ.get(DATABASE_URL_ENV, "").strip()
    return from_env or None


def _split(url: str) -> tuple[str | None, str]:
    """Split `url` into (driver, rest after `://`); driver is None for a libpq key=value string."""
    text = url.strip()
    if not text:
        raise ConfigurationError("the database URL is empty")
    match = _SCHEME.match(text)
    if match is None:
        return None, text
    scheme = match["scheme"].lower()
    base, _, driver = scheme.partition("+")
    if base not in _POSTGRES_SCHEMES:
        raise ConfigurationError(
            f"unsupported database URL scheme {match['scheme'] + '://'!r}: "
            "restate-pg needs PostgreSQL (postgresql://user:password@host:port/dbname)"
        )
    return driver, match["rest"]


def to_psycopg_conninfo(url: str) -> str:
    """Return `url` in a form `psycopg.connect` accepts.

    `postgresql+<driver>://` and `postgres://` become `postgresql://`; a libpq `key=value` string is
    returned unchanged.
    """
    driver, rest = _split(url)
    if driver is None:
        return rest
    return f"postgresql://{rest}"


def to_sqlalchemy_url(url: str) -> str:
    """Return `url` as an SQLAlchemy URL that selects the psycopg 3 driver (`postgresql+psycopg://`).

    A libpq `key=value` string is carried over as query parameters, which the psycopg dialect passes
    through to libpq unchanged.
    """
    driver, rest = _split(url)
    if driver is not None:
        return f"postgresql+psycopg://{rest}"
    try:
        params = conninfo_to_dict(rest)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(f"invalid database URL: {_first_line(str(exc))}") from exc
    return "postgresql+psycopg:///?" + urlencode({k: str(v) for k, v in params.items()})


def libpq_conninfo(**params: str) -> str:
    """A libpq `key=value` connection string of `params` (quoted as libpq needs), for settings
    that arrive as separate fields (Django's `DATABASES`)."""
    return make_conninfo(**params)


def validate_schema_name(schema: str) -> str:
    """Return `schema` if it is a usable schema name, else raise `ConfigurationError`.

    Schema names are interpolated into DDL and queries as identifiers, so only plain lower-case
    names are allowed: they need no quoting and cannot smuggle SQL in.
    """
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema) or schema.startswith("pg_"):
        raise ConfigurationError(
            f"invalid schema name {schema!r}: use lower-case letters, digits and underscores, "
            "starting with a letter or underscore, not with 'pg_', at most 63 characters"
        )
    return schema


def describe_target(url: str) -> str:
    """Say which server and database `url` points at, without its password (for messages)."""
    try:
        params = conninfo_to_dict(to_psycopg_conninfo(url))
    except (psycopg.Error, ConfigurationError):
        return "the configured database"
    host = str(params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    dbname = params.get("dbname") or os.environ.get("PGDATABASE")
    if not host:
        where = "the local socket"
    elif host.startswith("/"):
        where = f"the socket in {host}"
    else:
        where = f"{host}:{port}"
    return f'database "{dbname}" on {where}' if dbname else where


def connect(url: str, *, timeout: float | None = None, autocommit: bool = False) -> psycopg.Connection:
    """Open a psycopg connection to `url`, turning failures into one-line restate-pg errors.

    Raises `DatabaseUnavailable` when the server cannot be reached or refuses the connection, and
    `ConfigurationError` when `url` is not a valid connection string. `timeout` is in seconds;
    libpq counts whole seconds and waits at least two.
    """
    conninfo = to_psycopg_conninfo(url)
    try:
        if timeout is not None:
            conninfo = make_conninfo(conninfo, connect_timeout=max(1, math.ceil(timeout)))
        return psycopg.connect(conninfo, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot connect to {describe_target(conninfo)}: {_reason(str(exc))}"
        ) from exc
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(f"invalid database URL: {_first_line(str(exc))}") from exc


def check_reachable(url: str, timeout: float = 3.0) -> None:
    """Raise `DatabaseUnavailable` unless PostgreSQL at `url` accepts a connection within `timeout`.

    Used before starting long-running processes, so that a wrong URL fails at once with one clear
    line rather than later in a retry loop.
    """
    with connect(url, timeout=timeout, autocommit=True) as conn:
        try:
            conn.execute(queries.CHECK_REACHABLE)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"{describe_target(url)} accepted the connection but failed a query: "
                f"{_first_line(str(exc))}"
            ) from exc


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0].strip() if message.strip() else "unknown error"


_NOISE = (
    re.compile(r"^connection (failed|is bad):\s*"),
    re.compile(r"^connection to server (at|on) .*? failed:\s*"),
    re.compile(r"^(FATAL|ERROR):\s*"),
)


def _reason(message: str) -> str:
    """Keep the part of a libpq error that says what went wrong; we print where ourselves."""
    reason = _first_line(message)
    for pattern in _NOISE:
        reason = pattern.sub("", reason)
    return reason or "unknown error"
