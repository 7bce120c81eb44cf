"""`GET /metrics` in Prometheus' text format, on the admin API or on a worker's own port.

The route lives apart from the admin router so that a worker, which serves no admin API, can
expose it alone (`restate-pg worker --metrics-port`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import typing

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from restate_pg.admin.errors import AdminRoute
from restate_pg.admin.sockets import listening_socket
from restate_pg.core.errors import RestatePgError
from restate_pg.observability import metrics
from restate_pg.services.gateway import Gateway

logger = logging.getLogger("restate_pg.metrics")


def create_metrics_router(engine: Gateway) -> APIRouter:
    """A router with `GET /metrics`: this process's counters and the task gauges of `engine`'s database."""
    router = APIRouter(route_class=AdminRoute)  # its errors too are `{"code", "message"}`

    @router.get("/metrics", include_in_schema=False)
    async def scrape() -> Response:
        if not metrics.available():
            return JSONResponse({"code": 501, "message": metrics.MISSING}, status_code=501)
        body, content_type = await metrics.exposition(engine.store, engine.services)
        return Response(body, media_type=content_type)

    return router


@contextlib.asynccontextmanager
async def serve_metrics(engine: Gateway, host: str, port: int) -> typing.AsyncIterator[int]:
    """Serve `GET /metrics` on host:port while the block runs; yields the port (for port 0)."""
    import fastapi
    import uvicorn

    if not metrics.available():
        raise RestatePgError(f"--metrics-port: {metrics.MISSING}")
    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        raise RestatePgError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
    api = fastapi.FastAPI(title="restate-pg metrics")
    api.include_router(create_metrics_router(engine))
    # log_config=None: uvicorn's records go through the process's own logging (text or JSON)
    server = uvicorn.Server(uvicorn.Config(api, log_config=None, access_log=False, lifespan="off"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # the worker's
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    bound = sock.getsockname()[1]
    logger.info("metrics on http://%s:%d/metrics", host, bound)
    try:
        yield bound
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
        sock.close()
