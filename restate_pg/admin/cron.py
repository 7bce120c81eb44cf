"""The admin paths under /cron, over the run-time schedules of `restate_pg.services.schedules`
(re-exported here: `cron_schedules` is the Python API, `restate_pg.cron_schedules`)."""

from __future__ import annotations

import typing

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from restate_pg.admin.errors import AdminError
from restate_pg.admin.services import _json_object
from restate_pg.api.cron import Cron, CronExists, CronNotFound, InvalidCron
from restate_pg.services.gateway import Gateway
from restate_pg.services.schedules import CronSchedules, cron_schedules, render_cron

__all__ = ["CronSchedules", "add_cron_routes", "cron_schedules", "render_cron"]

_CREATE_FIELDS = {"name", "schedule", "handler", "key", "input", "timezone", "catch_up", "headers", "scope", "limit_key",
                  "priority"}


def add_cron_routes(router: APIRouter, engine: Gateway) -> None:
    """Mount /cron (list, create) and /cron/{name} (get, PATCH enabled, delete) on `router`."""
    schedules = CronSchedules(engine.store)

    async def answer(action: typing.Awaitable[typing.Any], status: int = 200) -> Response:
        try:
            result = await action
        except CronNotFound as exc:
            raise AdminError(404, str(exc)) from None
        except CronExists as exc:
            raise AdminError(409, str(exc)) from None
        except InvalidCron as exc:
            raise AdminError(400, str(exc)) from None
        return Response(status_code=status) if result is None else JSONResponse(result, status_code=status)

    @router.get("/cron", include_in_schema=False)
    async def list_crons() -> Response:
        return JSONResponse({"jobs": await schedules.list()})

    @router.post("/cron", include_in_schema=False)
    async def create_cron(request: Request) -> Response:
        body = await _json_object(request, opaque=("input",))  # the input is stored as bytes
        unknown = set(body) - _CREATE_FIELDS
        if unknown:
            raise AdminError(400, f"unknown field(s) {', '.join(sorted(unknown))} (expected {', '.join(sorted(_CREATE_FIELDS))})")
        for required in ("name", "schedule", "handler"):
            if not isinstance(body.get(required), str):
                raise AdminError(400, f"'{required}' must be a string")
        try:
            cron = Cron(**body)
        except InvalidCron as exc:
            raise AdminError(400, str(exc)) from None
        return await answer(schedules.create(cron), 201)

    # `job`, not `name`: the route class names the parameter "cron job name" in its errors
    @router.get("/cron/{job}", include_in_schema=False)
    async def get_cron(job: str) -> Response:
        return await answer(schedules.get(job))

    @router.patch("/cron/{job}", include_in_schema=False)
    async def modify_cron(job: str, request: Request) -> Response:
        body = await _json_object(request)
        if set(body) != {"enabled"} or not isinstance(body["enabled"], bool):
            raise AdminError(400, "send {\"enabled\": true} or {\"enabled\": false}")
        return await answer(schedules.set_enabled(job, body["enabled"]))

    @router.delete("/cron/{job}", include_in_schema=False)
    async def delete_cron(job: str) -> Response:
        return await answer(schedules.delete(job), 204)
