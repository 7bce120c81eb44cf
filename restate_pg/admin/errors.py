"""How the admin API fails: Restate's error body, whichever route raised, and for whatever reason.

Every admin route is an `AdminRoute`: before the route runs, its path and query parameters are
checked for what PostgreSQL cannot hold (`restate_pg.validation`); whatever it raises then is
answered as `{"code", "message"}`, never as a traceback or a bare "Internal Server Error". The
route class does this rather than the app's exception handlers because the admin router is also
mounted in users' own apps, whose handlers restate-pg does not install.
"""

from __future__ import annotations

import logging
import typing

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from restate_pg.core.errors import DatabaseUnavailable
from restate_pg.services.http_errors import unavailable
from restate_pg.validation import UNSTORABLE, InvalidInput, check_text, is_unstorable

logger = logging.getLogger("restate_pg.admin")

#: How errors name the admin paths' parameters.
_PATH_FIELDS = {
    "invocation_id": "invocation id",
    "name": "service name",
    "handler": "handler name",
    "key": "object key",
    "deployment_id": "deployment id",
    "job": "cron job name",
}


class AdminError(Exception):
    """A request the admin API refuses, with the HTTP status Restate's would answer."""

    def __init__(self, status: int, message: str, restate_code: typing.Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.restate_code = restate_code


def error_response(status: int, message: str, restate_code: typing.Optional[str] = None) -> JSONResponse:
    """An admin error, shaped as Restate's: `{"code", "message"}`, with Restate's error code
    (`restate_code`, such as META0003) when it has one."""
    body: typing.Dict[str, typing.Any] = {"code": status, "message": message}
    if restate_code is not None:
        body["restate_code"] = restate_code
    return JSONResponse(body, status_code=status)


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's validation errors in one line: where, and what is wrong there."""
    details = [
        f"{'.'.join(str(part) for part in error.get('loc', ())) or 'request'}: {error.get('msg', 'invalid')}"
        for error in exc.errors()
    ]
    return "invalid request: " + ("; ".join(details) if details else "it does not match what the path expects")


def check_parameters(request: Request) -> None:
    """Path and query parameters are looked up or stored as text: none may hold a NUL."""
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_text(_PATH_FIELDS.get(name, f"path parameter '{name}'"), value)
    for name, value in request.query_params.multi_items():
        check_text(f"query parameter '{name}'", value)


def answer_exception(exc: Exception) -> JSONResponse:
    """The admin answer to an exception a route raised."""
    if isinstance(exc, AdminError):
        return error_response(exc.status, exc.message, exc.restate_code)
    if isinstance(exc, InvalidInput):
        return error_response(exc.status, exc.message)
    if isinstance(exc, HTTPException):
        return error_response(exc.status_code, str(exc.detail))
    if isinstance(exc, RequestValidationError):
        return error_response(422, validation_message(exc))
    if isinstance(exc, DatabaseUnavailable):
        return error_response(*unavailable(exc))
    if is_unstorable(exc):  # a value no check caught: PostgreSQL refused it, and stored nothing
        logger.warning("admin request refused by the database: %s", exc)
        return error_response(400, UNSTORABLE)
    logger.error("admin request failed", exc_info=exc)
    return error_response(500, "internal error while handling the request")


class AdminRoute(APIRoute):
    """A route whose parameters are checked first and whose failures are admin errors."""

    def get_route_handler(self) -> typing.Callable[[Request], typing.Coroutine[typing.Any, typing.Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                check_parameters(request)
                return await handle(request)
            except Exception as exc:
                return answer_exception(exc)

        return guarded
