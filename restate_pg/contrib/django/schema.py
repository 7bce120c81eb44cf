"""Applying restate-pg's schema from Django's `migrate`.

A project adds one migration to one of its apps:

    from django.db import migrations
    from restate_pg.contrib.django import migrate_schema

    class Migration(migrations.Migration):
        operations = [migrations.RunPython(migrate_schema, migrations.RunPython.noop)]

It brings restate-pg's schema to the newest revision the installed restate-pg knows (what
`restate-pg migrate` does), so `python manage.py migrate` sets up both. After upgrading
restate-pg, run `restate-pg migrate`, or add another such migration.
"""

from __future__ import annotations

import typing

from restate_pg.contrib.django.settings import database_url, restate_settings
from restate_pg.store.migrate import upgrade


def migrate_schema(apps: typing.Any, schema_editor: typing.Any) -> None:
    """A `RunPython` operation: upgrade restate-pg's schema in the database being migrated.

    restate-pg's migrations (alembic) run on a connection of their own, under their own lock;
    they are not undone if a later operation of the same Django migration fails."""
    upgrade(database_url(schema_editor.connection.alias), restate_settings()["SCHEMA"])
