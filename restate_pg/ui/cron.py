"""Cron schedules: each job's schedule, next tick, last invocation, enabled or not; enable,
disable and delete them through the services' `CronSchedules` (as the admin paths under /cron)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from restate_pg.api.cron import CronNotFound
from restate_pg.services.gateway import Gateway
from restate_pg.services.schedules import CronSchedules
from restate_pg.ui.pages import UIError, render

_ACTIONS = ("enable", "disable", "delete")


def add_cron_pages(router: APIRouter, engine: Gateway) -> None:
    schedules = CronSchedules(engine.store)

    @router.get("/cron", name="ui_cron")
    async def cron(request: Request) -> Response:
        return render(request, "cron.html", jobs=await schedules.list())

    @router.post("/cron/{job}/{action}", name="ui_cron_action")
    async def cron_action(request: Request, job: str, action: str) -> Response:
        if action not in _ACTIONS:
            raise UIError(404, f"unknown cron action '{action}' (expected enable, disable or delete)")
        try:
            if action == "delete":
                await schedules.delete(job)
            else:
                await schedules.set_enabled(job, action == "enable")
        except CronNotFound as exc:
            raise UIError(404, str(exc)) from None
        return render(request, "cron.html", jobs=await schedules.list(), message=f"{job}: {action}d")
