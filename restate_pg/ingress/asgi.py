"""`hot_paths`: the ingress's invocation paths as a bare ASGI app in front of a FastAPI app.

A FastAPI app spends about 100 µs of Python per request before and after a route's code
(middleware layers, the router's matching, dependency solving): as much as a tenth of what a
whole three-step invocation costs this process. The CLI's own server (`restate-pg dev`, `serve`)
hands `POST /{service}/{handler}`, `/{object}/{key}/{handler}` and their `/send` straight to the
same `Ingress` the router's catch-all route calls, with the same error handling (`guarded`);
everything under `/restate/` and the lifespan go to the FastAPI app, unchanged. A router mounted
in an application's own FastAPI app serves every path through its routes, as before.
"""

from __future__ import annotations

import typing
from urllib.parse import quote

from starlette.requests import Request

from restate_pg.ingress.routes import guarded

if typing.TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from restate_pg.ingress.router import Ingress

__all__ = ["hot_paths"]


def hot_paths(router: typing.Any, fallback: ASGIApp) -> ASGIApp:
    """An ASGI app serving the invocation paths of `router` (from `create_router`) itself and
    everything else with `fallback`, the FastAPI app `router` is included in at the root."""
    ingress: Ingress = router.ingress

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else "/restate/"
        if path.startswith("/restate/") or scope.get("root_path"):
            await fallback(scope, receive, send)
            return
        request = Request(scope, receive)
        segments = _segments(scope)
        response = await guarded(lambda: ingress.invoke(request, segments, None))
        await response(scope, receive, send)

    return app


def _segments(scope: Scope) -> typing.List[str]:
    """The path's segments, still percent-encoded (a key may hold '%2F'), as the catch-all route's
    `raw_segments` gives them."""
    raw_path = scope.get("raw_path")
    if raw_path is None:  # a server that does not report the raw path: re-encode the decoded one
        return [quote(part, safe="") for part in scope["path"][1:].split("/")]
    return typing.cast(bytes, raw_path).decode("latin-1")[1:].split("/")
