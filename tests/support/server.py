"""Serve an application's ingress on a real port, in this process, for the duration of a test."""

from __future__ import annotations

import asyncio
import contextlib
import typing
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI

from restate_pg.api.app import App
from restate_pg.admin import create_admin_router
from restate_pg.ingress import create_router
from restate_pg.worker.engine import Engine


@dataclass
class Served:
    client: httpx.AsyncClient
    engine: Engine
    base_url: str


@contextlib.asynccontextmanager
async def serve(app: App, database_url: str, *, admin: bool = False, **options: typing.Any) -> typing.AsyncIterator[Served]:
    """Ingress (and with `admin`, the admin API under /admin) on a real uvicorn server."""
    options.setdefault("poll_interval", 0.2)
    options.setdefault("lease_seconds", 3.0)
    router = create_router(app, database_url=database_url, **options)
    api = FastAPI()
    if admin:
        api.include_router(create_admin_router(router.engine), prefix="/admin")  # type: ignore[attr-defined]
    api.include_router(router)
    async with serve_api(api) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            yield Served(client, router.engine, base_url)  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def serve_api(api: FastAPI) -> typing.AsyncIterator[str]:
    """Serve `api` on a free port of 127.0.0.1 with uvicorn; yield its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(api, host="127.0.0.1", port=0, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # leave pytest its signals
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
