"""Restate's admin paths for invocations, served from the engine of an ingress router.

Mount it on its own app or port (Restate serves its admin API on 9070); it shares the engine,
and so the connection pool, of the ingress router it is built from.
"""

from __future__ import annotations


import psycopg
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from restate_pg.runtime.ids import is_invocation_id
from restate_pg.worker.engine import Engine


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status)


def create_admin_router(engine: Engine) -> APIRouter:
    """The admin router for `engine` (for example `create_router(...).engine`)."""
    router = APIRouter()

    @router.patch("/invocations/{invocation_id}/cancel", include_in_schema=False)
    async def cancel(invocation_id: str) -> Response:
        if not is_invocation_id(invocation_id):
            return _error(400, f"bad invocation id '{invocation_id}'")
        try:
            status = await engine.cancel_invocation(invocation_id)
        except psycopg.OperationalError:
            return _error(503, "the database is unavailable, retry later")
        if status == "missing":
            return _error(404, "invocation not found")
        if status == "completed":
            return _error(409, "the invocation is already completed; purge it to remove it")
        # ended at once (it never ran), or the cancel signal is in its mailbox
        return Response(status_code=200 if status == "canceled" else 202)

    @router.patch("/invocations/{invocation_id}/kill", include_in_schema=False)
    async def kill(invocation_id: str) -> Response:
        if not is_invocation_id(invocation_id):
            return _error(400, f"bad invocation id '{invocation_id}'")
        try:
            status = await engine.kill_invocation(invocation_id)
        except psycopg.OperationalError:
            return _error(503, "the database is unavailable, retry later")
        if status == "missing":
            return _error(404, "invocation not found")
        if status == "completed":
            return _error(409, "the invocation is already completed; purge it to remove it")
        return Response(status_code=200)

    return router
