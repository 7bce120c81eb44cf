"""Restate's admin API, served from the engine of an ingress router.

Mount it on its own app or port (Restate serves its admin API on 9070); it shares the engine,
and so the connection pool, of the ingress router it is built from.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from restate_pg.admin.cron import add_cron_routes
from restate_pg.admin.deployments import add_deployment_routes
from restate_pg.admin.errors import AdminRoute, answer_exception, error_response
from restate_pg.admin.metrics import create_metrics_router
from restate_pg.services.answers import OPERATIONS, Answer, perform
from restate_pg.admin.query import create_query_router
from restate_pg.admin.rules import add_rule_routes
from restate_pg.admin.services import VERSION_PREFIXES, add_service_routes
from restate_pg.services.gateway import Gateway
from restate_pg.ui import create_ui_router


def _respond(answer: Answer) -> Response:
    if not answer.ok:
        return error_response(answer.status, answer.message)
    if answer.new_invocation_id is not None:
        return JSONResponse({"new_invocation_id": answer.new_invocation_id}, status_code=answer.status)
    return Response(status_code=answer.status)  # Restate answers these with an empty body


def create_admin_router(engine: Gateway) -> APIRouter:
    """The admin router for `engine` (for example `create_router(...).engine`), with the operator
    UI at /ui: whatever protects the router protects the UI."""
    router = APIRouter(route_class=AdminRoute)
    router.include_router(create_metrics_router(engine))  # GET /metrics

    def add_operation(name: str) -> None:
        async def operate(invocation_id: str) -> Response:
            return _respond(await perform(engine, name, invocation_id))

        router.add_api_route(
            f"/invocations/{{invocation_id}}/{name}", operate, methods=["PATCH"], include_in_schema=False,
            name=name, description=OPERATIONS[name].summary,
        )

    for name in OPERATIONS:
        if name != "restart-as-new":
            add_operation(name)

    @router.patch("/invocations/{invocation_id}/restart-as-new", include_in_schema=False)
    async def restart_as_new(invocation_id: str, from_: str = Query("0", alias="from")) -> Response:
        if not from_.isdigit():
            return error_response(400, f"'from' must be a journal index (0 or more), got '{from_}'")
        return _respond(await perform(engine, "restart-as-new", invocation_id, prefix=int(from_)))

    add_service_routes(router, engine)
    add_deployment_routes(router, engine)
    add_cron_routes(router, engine)
    add_rule_routes(router, engine)
    versioned = APIRouter(route_class=AdminRoute)
    versioned.include_router(router)
    versioned.include_router(create_query_router(engine))  # POST /query: SQL introspection
    versioned.include_router(create_ui_router(engine))  # /ui: the operator UI, protected as the rest
    for prefix in VERSION_PREFIXES:  # Restate's CLI calls /v4/services once /version offers 4
        versioned.include_router(router, prefix=prefix)
        versioned.include_router(create_query_router(engine, hex_bytes=True), prefix=prefix)
    return versioned


def create_admin_app(engine: Gateway) -> FastAPI:
    """The admin API as an app of its own (what `restate-pg dev` and `serve --admin-port` serve):
    the admin router, with Restate's error body for every error, also for unknown paths and
    methods, and for routes an application adds to this app (validation errors, exceptions)."""
    app = FastAPI(title="restate-pg admin")
    app.include_router(create_admin_router(engine))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(404, f"no admin path {request.url.path}")
        if exc.status_code == 405:
            return error_response(405, f"method {request.method} not allowed on {request.url.path}")
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return answer_exception(exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        return answer_exception(exc)  # then Starlette re-raises it, for the server's log

    return app
