"""Starting invocations in a Django view's transaction.

    from restate_pg.contrib.django import enqueue

    with transaction.atomic():
        order = Order.objects.create(...)
        enqueue(process_order, order.id)   # exists if and only if the order does

Django is imported when this is called, never by restate-pg itself.
"""

from __future__ import annotations

import typing

from restate_pg.client.handle import RestateClientSendHandle
from restate_pg.client.target import TargetLike
from restate_pg.client.transactional import enqueue as _enqueue


def enqueue(target: TargetLike, arg: typing.Any = None, *, using: str = "default", **options: typing.Any) -> RestateClientSendHandle:
    """`restate_pg.enqueue` on Django's connection `using` (a PostgreSQL database), in its
    current transaction (outside `transaction.atomic()`, Django's autocommit commits it at once)."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "postgresql":
        raise ValueError(f"database {using!r} is {connection.vendor}, not PostgreSQL")
    return _enqueue(connection, target, arg, **options)
