"""Restate's admin paths for invocations, served from the engine of an ingress router.

Mount it on its own app or port (Restate serves its admin API on 9070); it shares the engine,
and so the connection pool, of the ingress router it is built from.
"""

from __future__ import annotations

import logging
import typing

import psycopg
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from restate_pg.admin.metrics import create_metrics_router
from restate_pg.runtime.ids import is_invocation_id
from restate_pg.worker.engine import Engine

logger = logging.getLogger("restate_pg.admin")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status)


async def _steer(action: typing.Callable[[str], typing.Awaitable[str]], invocation_id: str) -> typing.Union[str, JSONResponse]:
    """Run a cancel or kill, turning its failures into Restate's error answers."""
    if not is_invocation_id(invocation_id):
        return _error(400, f"bad invocation id '{invocation_id}'")
    try:
        status = await action(invocation_id)
    except psycopg.OperationalError:
        return _error(503, "the database is unavailable, retry later")
    except Exception:
        logger.exception("admin request on %s failed", invocation_id)
        return _error(500, "internal error while handling the request")
    if status == "missing":
        return _error(404, "invocation not found")
    if status == "completed":
        return _error(409, "the invocation is already completed")
    return status


def create_admin_router(engine: Engine) -> APIRouter:
    """The admin router for `engine` (for example `create_router(...).engine`)."""
    router = APIRouter()
    router.include_router(create_metrics_router(engine))  # GET /metrics

    @router.patch("/invocations/{invocation_id}/cancel", include_in_schema=False)
    async def cancel(invocation_id: str) -> Response:
        status = await _steer(engine.cancel_invocation, invocation_id)
        if isinstance(status, Response):
            return status
        # 200: it never ran and has ended; 202: the cancel signal is in its mailbox
        return Response(status_code=200 if status == "canceled" else 202)

    @router.patch("/invocations/{invocation_id}/kill", include_in_schema=False)
    async def kill(invocation_id: str) -> Response:
        status = await _steer(engine.kill_invocation, invocation_id)
        return status if isinstance(status, Response) else Response(status_code=200)

    @router.patch("/invocations/{invocation_id}/purge", include_in_schema=False)
    async def purge(invocation_id: str) -> Response:
        status = await _steer(engine.purge_invocation, invocation_id)
        if isinstance(status, Response):
            return status
        if status == "running":
            return _error(409, "the invocation is not completed yet; cancel or kill it first")
        return Response(status_code=200)

    @router.patch("/invocations/{invocation_id}/resume", include_in_schema=False)
    async def resume(invocation_id: str) -> Response:
        status = await _steer(engine.resume_invocation, invocation_id)
        if isinstance(status, Response):
            return status
        if status == "pending":
            return _error(425, "the invocation has not started yet (inboxed or scheduled)")
        return Response(status_code=200)

    return router
