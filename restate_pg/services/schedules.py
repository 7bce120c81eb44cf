"""Schedules made at run time: create, list, pause, resume and delete cron jobs.

A schedule made here (source 'api') is checked against the service registry that workers write,
so it can only name a handler some deployment hosts; workers are told to look at their
schedules again by a "cron" hint. Schedules declared in code can be listed, paused, resumed and
deleted the same way, but a worker of their app re-creates a deleted one when it starts. The
admin paths under /cron, `restate-pg cron` and the Python API (`cron_schedules`) all go through
`CronSchedules`.
"""

from __future__ import annotations

import contextlib
import typing
from datetime import datetime

from restate_pg.api.cron import Cron, CronExists, CronNotFound, InvalidCron, check_input, next_tick
from restate_pg.api.definitions import handler_of
from restate_pg.core import hints
from restate_pg.core.hints import work_channel
from restate_pg.store.driver import Store


def cron_row(cron: Cron, now: datetime) -> typing.Dict[str, typing.Any]:
    """A `cron_job` row for `cron`, its first tick after `now` (the database's clock)."""
    service, handler = cron.target()
    return {
        "name": cron.name, "service": service, "handler": handler, "key": cron.key,
        "schedule": cron.schedule, "timezone": cron.timezone, "input": cron.input_bytes(),
        "headers": dict(cron.headers), "catch_up": cron.catch_up,
        "next_at": next_tick(cron.schedule, cron.timezone, now),
        "scope": cron.scope, "limit_key": cron.limit_key, "priority": cron.priority,
    }


def render_cron(row: typing.Mapping[str, typing.Any]) -> typing.Dict[str, typing.Any]:
    """A `cron_job` row as the admin API and `restate-pg cron list --json` show it."""
    return {
        "name": row["name"], "service": row["service"], "handler": row["handler"], "key": row["key"],
        "schedule": row["schedule"], "timezone": row["timezone"], "catch_up": row["catch_up"],
        "headers": row["headers"], "source": row["source"], "enabled": row["enabled"],
        "scope": row["scope"], "limit_key": row["limit_key"], "priority": row["priority"],
        "next_at": row["next_at"].isoformat(),
        "last_tick_at": None if row["last_tick_at"] is None else row["last_tick_at"].isoformat(),
        "last_invocation_id": row["last_invocation_id"],
    }


class CronSchedules:
    """Create, list, pause, resume and delete schedules while the application runs."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _changed(self) -> None:
        await self.store.notify(work_channel(self.store.schema), hints.CRON_CHANGED)

    async def create(self, cron: Cron) -> typing.Dict[str, typing.Any]:
        """Register `cron` (which names its handler as "Service/handler" or by function).
        Raises InvalidCron if no registered deployment hosts a handler it can call, CronExists
        if the name is taken."""
        service, handler = cron.target()
        registered = await self.store.list_services(service)
        if not registered:
            raise InvalidCron(f"cron job {cron.name!r}: service {service!r} is not registered (start a worker of it first)")
        _check_registered(registered[0], handler, cron)
        if not isinstance(cron.handler, str):  # its definition is at hand: its input type too
            check_input(handler_of(cron.handler), cron)
        if not await self.store.create_cron(cron_row(cron, await self.store.db_now())):
            raise CronExists(f"a cron job named {cron.name!r} exists already")
        await self._changed()
        return await self.get(cron.name)

    async def list(self) -> typing.List[typing.Dict[str, typing.Any]]:
        return [render_cron(row) for row in await self.store.list_crons()]

    async def get(self, name: str) -> typing.Dict[str, typing.Any]:
        rows = await self.store.list_crons(name)
        if not rows:
            raise CronNotFound(f"no cron job named {name!r}")
        return render_cron(rows[0])

    async def set_enabled(self, name: str, enabled: bool) -> typing.Dict[str, typing.Any]:
        """Pause or resume a schedule; a resumed one fires from its next tick after now (the
        ticks it missed while paused are not caught up)."""
        job = await self.get(name)
        next_at = next_tick(job["schedule"], job["timezone"], await self.store.db_now())
        if not await self.store.set_cron_enabled(name, enabled, next_at):
            raise CronNotFound(f"no cron job named {name!r}")
        await self._changed()
        return await self.get(name)

    async def delete(self, name: str) -> None:
        if not await self.store.delete_cron(name):
            raise CronNotFound(f"no cron job named {name!r}")
        await self._changed()


@contextlib.asynccontextmanager
async def cron_schedules(database_url: str, schema: str = "restate") -> typing.AsyncIterator[CronSchedules]:
    """`async with cron_schedules(url) as schedules: await schedules.create(Cron(...))`."""
    store = Store(database_url, schema, min_size=1, max_size=2)
    await store.open()
    try:
        yield CronSchedules(store)
    finally:
        await store.close()


def _check_registered(service: typing.Mapping[str, typing.Any], handler: str, cron: Cron) -> None:
    """The registry's view of `check_target`: a hosted handler, keyed as its service is (the
    registry's `ty` is invocation.service_ty's: service, virtual_object or workflow)."""
    if handler not in {h["name"] for h in service["handlers"] or ()}:
        raise InvalidCron(f"cron job {cron.name!r}: service {service['name']!r} has no handler {handler!r}")
    if service["ty"] == "workflow":
        raise InvalidCron(f"cron job {cron.name!r}: workflows run once per key and cannot be scheduled")
    if service["ty"] == "virtual_object" and cron.key is None:
        raise InvalidCron(f"cron job {cron.name!r}: {service['name']} is a virtual object, give the key to call")
    if service["ty"] == "service" and cron.key is not None:
        raise InvalidCron(f"cron job {cron.name!r}: {service['name']} is a service, it takes no key")
