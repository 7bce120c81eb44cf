"""`create_client(ingress)`: a client for an ingress URL or a database URL.

`create_client("http://...")` speaks HTTP to an ingress, with restate-sdk's `create_client`
surface (it may be used with or without `async with`); `create_client("postgresql://...")`
goes straight to the database, and `create_client()` to the one `$DATABASE_URL` names (where
restate-sdk would read a Restate Cloud ingress key). `create_sync_client` returns the blocking
equivalent.
"""

from __future__ import annotations

import typing

from restate_pg.api.app import App
from restate_pg.api.entry_codec import JournalValueCodec
from restate_pg.client.base import RestateClient
from restate_pg.client.blocking import SyncRestateClient
from restate_pg.client.http import HttpClient
from restate_pg.client.sql import SqlClient
from restate_pg.store.database import DATABASE_URL_ENV, ConfigurationError, resolve_database_url, to_psycopg_conninfo


def create_client(
    ingress: typing.Optional[str] = None,
    headers: typing.Optional[typing.Dict[str, str]] = None,
    journal_value_codec: typing.Optional[JournalValueCodec] = None,
    *,
    app: typing.Optional[App] = None,
    admin_url: typing.Optional[str] = None,
    schema: str = "restate",
    migrate: bool = False,
) -> RestateClient:
    """A client of the ingress at an `http(s)://` URL, or of the database at a `postgresql://` URL
    or libpq string (then `app` gives names their kinds). `headers` go with every invocation.
    A URL of another scheme raises `ConfigurationError`. Over SQL, the first use raises
    `SchemaNotMigrated` unless the schema is migrated, or with `migrate=True` migrates it.
    `journal_value_codec` encodes call and send inputs and decodes results, as restate-sdk's
    client does: give it the codec of the app behind the ingress. Without `ingress`, the database
    `$DATABASE_URL` names (restate-sdk's parameter name, which this one keeps, names its ingress)."""
    url = ingress or resolve_database_url(None)
    if url is None:
        raise ConfigurationError(
            f"create_client(): pass the ingress URL (http://...) or a database URL, or set ${DATABASE_URL_ENV}"
        )
    if journal_value_codec is not None and not isinstance(journal_value_codec, JournalValueCodec):
        raise TypeError(f"journal_value_codec must be a JournalValueCodec, got {journal_value_codec!r}")
    client: RestateClient
    if url.startswith(("http://", "https://")):
        client = HttpClient(url, headers=headers, admin_url=admin_url, app=app)
    else:
        client = SqlClient(to_psycopg_conninfo(url), schema=schema, app=app, headers=headers, migrate=migrate)
    client.journal_value_codec = journal_value_codec
    return client


def create_sync_client(ingress: typing.Optional[str] = None, headers: typing.Optional[typing.Dict[str, str]] = None,
                       **options: typing.Any) -> SyncRestateClient:
    """The blocking version of `create_client` (the same options)."""
    return SyncRestateClient(create_client(ingress, headers, **options))
