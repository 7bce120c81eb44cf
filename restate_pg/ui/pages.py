"""How the UI answers: Jinja2 templates with htmx, its static files, and its errors.

Every UI route is a `UIRoute`: its path and query parameters are checked for what PostgreSQL
cannot hold, and whatever it raises is answered with a status and a one-line message (an HTML
page for a browser, the admin API's `{"code", "message"}` for anything else), never a traceback. htmx is vendored in
`static/` (no CDN: the machine running the UI may have no internet).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import logging
import typing
import urllib.parse
from datetime import datetime, timezone

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from restate_pg.core.errors import DatabaseUnavailable
from restate_pg.services.gateway import Gateway
from restate_pg.services.http_errors import unavailable
from restate_pg.validation import InvalidInput, check_text

logger = logging.getLogger("restate_pg.ui")

_PACKAGE = importlib.resources.files("restate_pg.ui")
templates = Jinja2Templates(directory=str(_PACKAGE.joinpath("templates")))
#: The static files the pages load, with their media types; nothing else is served.
STATIC = {"htmx.min.js": "text/javascript", "ui.css": "text/css"}


#: How errors name the pages' path parameters (as the admin API names its own).
_PATH_FIELDS = {"invocation_id": "invocation id", "name": "service name", "service": "service name",
                "key": "object key", "job": "cron job name", "operation": "operation", "action": "action",
                "file": "file name"}


class UIError(Exception):
    """A request the UI refuses, with its HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def url(request: Request, route: str, /, **params: typing.Any) -> str:
    """The path of UI route `route` (without scheme and host: right behind a proxy too)."""
    return request.url_for(route, **params).path


def render(request: Request, template: str, code: int = 200, /, **context: typing.Any) -> HTMLResponse:
    """`template` filled with `context`, answered with status `code`."""
    return templates.TemplateResponse(request, template, {"url": functools.partial(url, request), **context},
                                      status_code=code)


async def form(request: Request) -> typing.Dict[str, str]:
    """A submitted form's fields (URL-encoded, as the pages send them; the last of a repeated one)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: check_text(f"field '{name}'", value)
            for name, value in urllib.parse.parse_qsl(body, keep_blank_values=True)}


def error_page(request: Request, status: int, message: str) -> Response:
    """An error as the client reads it: a page (or an htmx fragment) for a browser, else JSON."""
    if "text/html" in request.headers.get("accept", "") or request.headers.get("hx-request"):
        return render(request, "error.html", status, status=status, message=message,
                      fragment=bool(request.headers.get("hx-request")))
    return JSONResponse({"code": status, "message": message}, status_code=status)  # as the admin API's


def _answer_exception(request: Request, exc: Exception) -> Response:
    if isinstance(exc, UIError):
        return error_page(request, exc.status, exc.message)
    if isinstance(exc, InvalidInput):
        return error_page(request, exc.status, exc.message)
    if isinstance(exc, HTTPException):
        return error_page(request, exc.status_code, str(exc.detail))
    if isinstance(exc, DatabaseUnavailable):
        return error_page(request, *unavailable(exc))
    logger.error("UI request failed", exc_info=exc)
    return error_page(request, 500, "internal error while handling the request")


class UIRoute(APIRoute):
    """A route whose parameters are checked first and whose failures are one-line answers."""

    def get_route_handler(self) -> typing.Callable[[Request], typing.Coroutine[typing.Any, typing.Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                for name, value in request.path_params.items():
                    check_text(_PATH_FIELDS.get(name, f"path parameter '{name}'"), value)
                for name, value in request.query_params.multi_items():
                    check_text(f"query parameter '{name}'", value)
                return await handle(request)
            except Exception as exc:
                return _answer_exception(request, exc)

        return guarded


def static_file(name: str) -> Response:
    if name not in STATIC:
        raise UIError(404, f"no UI file {name}")
    body = _PACKAGE.joinpath("static").joinpath(name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"cache-control": "max-age=3600"})


async def registered_service(engine: Gateway, name: str) -> typing.Mapping[str, typing.Any]:
    """The registry row of service `name`; 404 if no deployment registered it."""
    rows = await engine.store.list_services(name)
    if not rows:
        raise UIError(404, f"service '{name}' not found")
    return rows[0]


# -- how values are shown (template filters) ---------------------------------------------------

def when(moment: typing.Optional[datetime]) -> str:
    """A timestamp in UTC to the millisecond; empty for None."""
    if moment is None:
        return ""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def span(start: typing.Optional[datetime], end: typing.Optional[datetime]) -> str:
    """How long from `start` to `end`, in the unit that reads best."""
    if start is None or end is None:
        return ""
    seconds = (end - start).total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def decoded(value: typing.Optional[bytes]) -> typing.Tuple[str, str]:
    """Bytes as the UI shows them: ("json", pretty JSON), ("text", UTF-8 text), ("hex", hex
    digits) or ("none", "") for no value."""
    if value is None:
        return "none", ""
    raw = bytes(value)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "hex", raw.hex(" ")
    try:
        return "json", json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return "text", text


templates.env.filters.update(when=when, decoded=decoded)
templates.env.globals.update(span=span)
