"""`create_ui_router(engine)`: the operator UI's routes, under /ui.

The admin router includes it (`restate_pg.admin.create_admin_router`), so the UI is served
wherever the admin API is, behind whatever protects it (dependencies of `include_router`, a
separate port, a proxy)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from restate_pg.services.gateway import Gateway
from restate_pg.ui.actions import add_action_routes
from restate_pg.ui.bulk import add_bulk_routes
from restate_pg.ui.catalog import add_catalog_pages
from restate_pg.ui.cron import add_cron_pages
from restate_pg.ui.invocations import add_invocation_pages
from restate_pg.ui.overview import add_overview_page
from restate_pg.ui.pages import UIRoute, static_file, url
from restate_pg.ui.sql import add_sql_page
from restate_pg.ui.state import add_state_pages


def create_ui_router(engine: Gateway) -> APIRouter:
    """The UI of `engine`'s database, at /ui (include it in the admin API's app)."""
    router = APIRouter(prefix="/ui", route_class=UIRoute, include_in_schema=False)

    @router.get("/static/{file}", name="ui_static")
    async def static(file: str) -> Response:
        return static_file(file)

    @router.get("", name="ui_root")
    async def root(request: Request) -> Response:
        return RedirectResponse(url(request, "ui_overview"))  # /ui, as printed, is /ui/

    add_overview_page(router, engine)
    add_bulk_routes(router, engine)  # before the invocation pages: /invocations/bulk is no invocation id
    add_invocation_pages(router, engine)
    add_action_routes(router, engine)
    add_state_pages(router, engine)
    add_catalog_pages(router, engine)
    add_cron_pages(router, engine)
    add_sql_page(router, engine)
    return router
