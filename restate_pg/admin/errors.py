"""How the admin API fails: Restate's error body, whichever route raised."""

from __future__ import annotations

import logging
import typing

import psycopg
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

logger = logging.getLogger("restate_pg.admin")


class AdminError(Exception):
    """A request the admin API refuses, with the HTTP status Restate's would answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> JSONResponse:
    """An admin error, shaped as Restate's: `{"code", "message"}`."""
    return JSONResponse({"code": status, "message": message}, status_code=status)


class AdminRoute(APIRoute):
    """A route whose failures are answered as admin errors, never as a traceback, wherever the
    router is mounted (exception handlers would have to be installed on the user's app)."""

    def get_route_handler(self) -> typing.Callable[[Request], typing.Coroutine[typing.Any, typing.Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handle(request)
            except AdminError as exc:
                return error_response(exc.status, exc.message)
            except psycopg.OperationalError:
                return error_response(503, "the database is unavailable, retry later")

        return guarded
