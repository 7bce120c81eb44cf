"""What restate-pg reads from Django's settings: `DATABASES`, and the optional `RESTATE_PG`.

    RESTATE_PG = {
        "APP": "orders.services:app",   # the restate-pg App the workers run
        "SCHEMA": "restate",            # restate-pg's schema (default: restate)
        "DATABASE": "default",          # the DATABASES alias restate-pg uses (default: default)
    }
"""

from __future__ import annotations

import typing

from restate_pg.store.database import libpq_conninfo

#: Connection parameters of Django's settings that are libpq's too (the rest are Django's own).
_LIBPQ_OPTIONS = frozenset({
    "sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "connect_timeout", "application_name",
    "options", "target_session_attrs", "service", "passfile", "keepalives", "keepalives_idle",
})

_DEFAULTS = {"APP": None, "SCHEMA": "restate", "DATABASE": "default"}


def restate_settings() -> typing.Dict[str, typing.Any]:
    """`settings.RESTATE_PG` with its defaults filled in."""
    from django.conf import settings

    return {**_DEFAULTS, **getattr(settings, "RESTATE_PG", {})}


def database_url(using: typing.Optional[str] = None) -> str:
    """A libpq connection string for the `DATABASES` entry `using` (default: RESTATE_PG's
    DATABASE), so that restate-pg and Django share one database and one configuration."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections

    alias = using or restate_settings()["DATABASE"]
    connection = connections[alias]
    if connection.vendor != "postgresql":
        raise ImproperlyConfigured(f"restate-pg needs PostgreSQL: DATABASES[{alias!r}] is {connection.vendor}")
    params = connection.get_connection_params()
    kept = {
        name: value for name, value in params.items()
        if (name in {"dbname", "user", "password", "host", "port"} or name in _LIBPQ_OPTIONS)
        and value not in (None, "")
    }
    return libpq_conninfo(**{name: str(value) for name, value in kept.items()})
