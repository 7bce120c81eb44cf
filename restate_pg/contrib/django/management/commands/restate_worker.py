"""`python manage.py restate_worker`: `restate-pg worker` on the project's settings."""

from __future__ import annotations

import typing

from django.core.management.base import BaseCommand, CommandError, CommandParser

from restate_pg.contrib.django.settings import database_url, restate_settings

#: Options passed on to `restate-pg worker` as given (see `restate-pg worker --help`).
_PASSED_ON = (
    ("--concurrency", int), ("--lease-seconds", float), ("--poll-interval", float), ("--deployment", str),
    ("--metrics-port", int), ("--log-level", str),
)


class Command(BaseCommand):
    help = (
        "Run a restate-pg worker for the handlers of RESTATE_PG['APP'] (or APP), on the database "
        "of DATABASES[RESTATE_PG['DATABASE']]. SIGINT or SIGTERM stops it gracefully."
    )
    requires_system_checks: typing.List[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app", nargs="?", help="the restate-pg App as MODULE:ATTRIBUTE (default: RESTATE_PG['APP'])")
        parser.add_argument("--database", help="the DATABASES alias (default: RESTATE_PG['DATABASE'], else default)")
        parser.add_argument("--schema", help="restate-pg's schema (default: RESTATE_PG['SCHEMA'], else restate)")
        parser.add_argument("--poll-only", action="store_true", help="poll for work, without LISTEN (for pgbouncer)")
        for flag, kind in _PASSED_ON:
            parser.add_argument(flag, type=kind, help="as for `restate-pg worker`")

    def handle(self, *args: typing.Any, **options: typing.Any) -> None:
        from restate_pg.cli.main import main

        config = restate_settings()
        app = options["app"] or config["APP"]
        if not app:
            raise CommandError("no restate-pg app: set RESTATE_PG = {'APP': 'module:app'} in settings, or pass it")
        argv = ["worker", app, "--database-url", database_url(options["database"]),
                "--schema", options["schema"] or config["SCHEMA"]]
        if options["poll_only"]:
            argv.append("--poll-only")
        for flag, _ in _PASSED_ON:
            value = options[flag[2:].replace("-", "_")]
            if value is not None:
                argv += [flag, str(value)]
        status = main(argv)
        if status:
            raise SystemExit(status)
