"""Serve an application's ingress on a real port, in this process, for the duration of a test."""

from __future__ import annotations

import contextlib
import typing
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from restate_pg.api.app import App
from restate_pg.admin import create_admin_router
from restate_pg.ingress import create_router
from restate_pg.testing.harness import serve_api
from restate_pg.worker.engine import Engine

__all__ = ["SUSPENDING_IDS", "Served", "serve", "serve_api", "suspending_modes"]

#: The ids of `suspending_modes`: a test's own inactivity timeout, then 0.
SUSPENDING_IDS = ("default", "always-suspending")


def suspending_modes(default: float) -> typing.List[float]:
    """Inactivity timeouts for a fixture's params: the test's `default`, then 0 (Restate's
    alwaysSuspending: every await not already complete suspends, and the next attempt replays)."""
    return [default, 0.0]


@dataclass
class Served:
    client: httpx.AsyncClient
    engine: Engine
    base_url: str


#: How long the test client keeps an idle connection, well under uvicorn's keep-alive timeout.
KEEPALIVE_EXPIRY_S = 2.0


@contextlib.asynccontextmanager
async def serve(app: App, database_url: str, *, admin: bool = False, **options: typing.Any) -> typing.AsyncIterator[Served]:
    """Ingress (and with `admin`, the admin API under /admin) on a real uvicorn server."""
    options.setdefault("poll_interval", 0.2)
    options.setdefault("lease_seconds", 3.0)
    # Few connections each: six test sessions, their servers and worker processes share one
    # PostgreSQL whose max_connections is 100 by default.
    options.setdefault("pool_size", 4)
    router = create_router(app, database_url=database_url, **options)
    api = FastAPI()
    if admin:
        api.include_router(create_admin_router(router.engine), prefix="/admin")  # type: ignore[attr-defined]
    api.include_router(router)
    async with serve_api(api) as base_url:
        # a connection idle past uvicorn's keep-alive timeout (5 s) may be closed by the server
        # just as the client reuses it (httpx's default expiry is also 5 s): expire ours first
        limits = httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S)
        async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
            yield Served(client, router.engine, base_url)  # type: ignore[attr-defined]
