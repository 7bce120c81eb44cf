"""Database steps on Django's connection, so that ORM writes share the journal's transaction."""

from __future__ import annotations

import contextlib
import typing

from restate_pg.runtime.transaction import ThreadStepBinding


def postgresql_connection(using: str) -> typing.Any:
    """Django's connection `using`, which must be PostgreSQL (restate-pg's tables live there)."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "postgresql":
        raise ValueError(f"database {using!r} is {connection.vendor}, not PostgreSQL")
    return connection


class DjangoStepBinding(ThreadStepBinding):
    """The step runs in `transaction.atomic(using)` on one executor thread, whose own Django
    connection it uses (Django's connections belong to the thread that opened them); the action
    is plain ORM code and gets no connection argument."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def call(self, action, handle, args, kwargs):  # type: ignore[no-untyped-def]
        return action(*args, **kwargs)

    @contextlib.contextmanager
    def transaction(self) -> typing.Iterator[typing.Any]:
        from django.db import close_old_connections, transaction

        close_old_connections()  # as Django does around a request: drop broken or expired ones
        try:
            with transaction.atomic(using=self.using):
                yield postgresql_connection(self.using)
        finally:
            close_old_connections()

    def savepoint(self, handle: typing.Any) -> typing.ContextManager[typing.Any]:
        from django.db import transaction

        return transaction.atomic(using=self.using)
