"""The Django app: add "restate_pg.contrib.django" to INSTALLED_APPS for `manage.py restate_worker`."""

from django.apps import AppConfig


class RestatePgConfig(AppConfig):
    name = "restate_pg.contrib.django"
    label = "restate_pg"
    verbose_name = "restate-pg"
