"""restate-pg's tables (schema `restate`), created or upgraded by `python manage.py migrate`."""

from django.db import migrations

from restate_pg.contrib.django import migrate_schema


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]

    operations = [migrations.RunPython(migrate_schema, migrations.RunPython.noop)]
