"""restate-pg in a Django project: add `"restate_pg.contrib.django"` to INSTALLED_APPS.

    from restate_pg.contrib.django import enqueue, run_in_transaction

    with transaction.atomic():                      # in a view
        order = Order.objects.create(...)
        enqueue(fulfil, order.id)                   # exists if and only if the order does

    status = await run_in_transaction(ctx, "reserve", reserve, order_id)   # in a handler

The app brings the `restate_worker` management command; restate-pg's database URL is derived from
`DATABASES` (`database_url`), and a project's own migration can apply restate-pg's schema
(`migrate_schema`). Django is imported when these are used, never by restate-pg itself.
"""

from __future__ import annotations

import typing

from restate_pg.api.context import Context, RestateDurableFuture
from restate_pg.api.serde import DefaultSerde, Serde
from restate_pg.api.transaction import TransactionOptions
from restate_pg.client.handle import RestateClientSendHandle
from restate_pg.client.target import TargetLike
from restate_pg.client.transactional import enqueue as _enqueue
from restate_pg.contrib.django.settings import database_url, restate_settings
from restate_pg.contrib.django.schema import migrate_schema
from restate_pg.contrib.django.transaction import DjangoStepBinding, postgresql_connection

__all__ = ["DjangoStepBinding", "database_url", "enqueue", "migrate_schema", "restate_settings", "run_in_transaction"]

T = typing.TypeVar("T")


def enqueue(target: TargetLike, arg: typing.Any = None, *, using: str = "default", **options: typing.Any) -> RestateClientSendHandle:
    """`restate_pg.enqueue` on Django's connection `using` (a PostgreSQL database), in its
    current transaction (outside `transaction.atomic()`, Django's autocommit commits it at once)."""
    options.setdefault("schema", restate_settings()["SCHEMA"])
    return _enqueue(postgresql_connection(using), target, arg, **options)


def run_in_transaction(
    ctx: Context,
    name: str,
    action: typing.Callable[..., T],
    *args: typing.Any,
    using: str = "default",
    serde: Serde[T] = DefaultSerde(),
    type_hint: typing.Optional[typing.Type[T]] = None,
    **kwargs: typing.Any,
) -> RestateDurableFuture[T]:
    """`ctx.run_in_transaction` on Django's connection `using`: `action(*args, **kwargs)` (plain
    ORM code, run in a thread) and the step's journal entry commit in one `transaction.atomic()`.

    A TerminalError rolls the action's writes back and is journaled as the step's failure; any
    other exception rolls everything back and fails the attempt, which is retried."""
    options = TransactionOptions(serde=serde, type_hint=type_hint, session=DjangoStepBinding(using))
    return ctx.run_in_transaction(name, action, options, *args, **kwargs)
