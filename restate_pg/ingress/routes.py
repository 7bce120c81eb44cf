"""The ingress's routes: Restate's paths over `Ingress`, as API routes of a lean kind.

They are FastAPI API routes (listed, mounted and prefixed in any FastAPI app as any other), whose
requests skip FastAPI's dependency solving (`LeanRoute`): the endpoints take the request and the
path's parameters, which are strings. The CLI's own server goes further for the invocation paths
(`asgi.py`).
"""

from __future__ import annotations

import logging
import typing
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from fastapi.responses import JSONResponse, Response

from restate_pg.core.errors import DatabaseUnavailable
from restate_pg.ingress.flow import backlog_full
from restate_pg.ingress.requests import invocation_id_in_path, raw_segments
from restate_pg.ingress.responses import IngressError
from restate_pg.runtime.submission import idempotent_invocation_id, workflow_invocation_id
from restate_pg.services.http_errors import unavailable
from restate_pg.services.outcomes import BacklogFull
from restate_pg.validation import UNSTORABLE, InvalidInput, check_text, is_unstorable

if typing.TYPE_CHECKING:
    from restate_pg.ingress.router import Ingress

logger = logging.getLogger("restate_pg.ingress")

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
#: The segments of `/restate/invocation/...` before the action, by their count (action included).
_INVOCATION_PATH_FIELDS: typing.Dict[int, typing.Tuple[str, ...]] = {
    2: ("invocation id",),
    4: ("service name", "handler name", "idempotency key"),
    5: ("service name", "key", "handler name", "idempotency key"),
}


class LeanRoute(APIRoute):
    """An API route whose endpoint is called with the request and the path's parameters as
    Starlette parsed them, without FastAPI's dependency solving and validation per request (about
    40 µs of Python): FastAPI's own extension point for custom route handling (`route_class`)."""

    def get_route_handler(self) -> typing.Callable[[Request], typing.Coroutine[typing.Any, typing.Any, Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            return typing.cast(Response, await endpoint(request, **request.path_params))

        return handle


def add_routes(router: APIRouter, ingress: Ingress) -> None:
    """Add Restate's ingress paths, served by `ingress`, to `router` (made with `route_class=LeanRoute`)."""
    engine, app = ingress.node, ingress.app

    @router.api_route("/restate/health", methods=ALL_METHODS, include_in_schema=False)
    async def health(request: Request) -> JSONResponse:
        if request.method != "GET":
            return IngressError(405, "method not allowed").response()

        async def answer() -> Response:
            await engine.check_health()  # 503 within a second when the database does not answer
            return JSONResponse({"services": sorted({*app.services, *engine.remote.services})})

        return await guarded(answer)

    @router.api_route("/restate/call/{rest:path}", methods=ALL_METHODS, include_in_schema=False)
    async def call_v17(request: Request, rest: str) -> Response:
        return await guarded(lambda: ingress.invoke(request, raw_segments(request, "rest"), False))

    @router.api_route("/restate/send/{rest:path}", methods=ALL_METHODS, include_in_schema=False)
    async def send_v17(request: Request, rest: str) -> Response:
        return await guarded(lambda: ingress.invoke(request, raw_segments(request, "rest"), True))

    @router.api_route("/restate/scope/{rest:path}", methods=ALL_METHODS, include_in_schema=False)
    async def scoped_v17(request: Request, rest: str) -> Response:
        segments = raw_segments(request, "rest")  # {scope}/{call|send}/{service}[/{key}]/{handler}
        if len(segments) < 3 or segments[1] not in ("call", "send"):
            return IngressError(404, f"unknown ingress path /restate/scope/{rest}").response()
        scope = unquote(segments[0])
        return await guarded(lambda: ingress.invoke(request, segments[2:], segments[1] == "send", scope))

    @router.api_route("/restate/awakeables/{awakeable_id}/{action}", methods=ALL_METHODS, include_in_schema=False)
    @router.api_route("/restate/a/{awakeable_id}/{action}", methods=ALL_METHODS, include_in_schema=False)
    async def awakeable(request: Request, awakeable_id: str, action: str) -> Response:
        return await guarded(lambda: ingress.complete_awakeable(request, awakeable_id, action))

    @router.api_route("/restate/invocation/{rest:path}", methods=ALL_METHODS, include_in_schema=False)
    async def invocation_attach_output(request: Request, rest: str) -> Response:
        async def answer() -> Response:
            parts = [unquote(p) for p in raw_segments(request, "rest")]
            fields = _INVOCATION_PATH_FIELDS.get(len(parts))
            if fields is None:
                raise IngressError(404, f"unknown ingress path /restate/invocation/{rest}")
            named = {field: check_text(field, part) for field, part in zip(fields, parts)}
            if len(parts) == 2:
                invocation_id = invocation_id_in_path(named["invocation id"])
            else:
                invocation_id = idempotent_invocation_id(
                    named["service name"], named.get("key"), named["handler name"], named["idempotency key"])
            return await ingress.attach_or_output(request, invocation_id, parts[-1])

        return await guarded(answer)

    @router.api_route("/restate/workflow/{name}/{workflow_id}/{action}", methods=ALL_METHODS, include_in_schema=False)
    async def workflow_attach_output(request: Request, name: str, workflow_id: str, action: str) -> Response:
        async def answer() -> Response:
            invocation_id = workflow_invocation_id(check_text("workflow name", name), check_text("workflow id", workflow_id))
            return await ingress.attach_or_output(request, invocation_id, action)

        return await guarded(answer)

    @router.api_route("/restate/{action}/{invocation_id}", methods=ALL_METHODS, include_in_schema=False)
    async def attach_output_v17(request: Request, action: str, invocation_id: str) -> Response:
        if action not in ("attach", "output"):
            return IngressError(404, f"unknown ingress path /restate/{action}/{invocation_id}").response()
        return await guarded(lambda: ingress.attach_or_output(
            request, invocation_id_in_path(check_text("invocation id", invocation_id)), action))

    @router.api_route("/restate/{action}", methods=["POST"], include_in_schema=False)
    async def by_target_v17(request: Request, action: str) -> Response:
        async def answer() -> Response:
            if action not in ("attach", "output", "lookup"):
                raise IngressError(404, f"unknown ingress path /restate/{action}")
            invocation_id = ingress.invocation_id_of(await ingress.read_target(request))
            if action == "lookup":
                return JSONResponse({"invocationId": invocation_id})
            return await ingress.attach_or_output(request, invocation_id, action, methods=("POST",))

        return await guarded(answer)

    @router.api_route("/restate/{rest:path}", methods=ALL_METHODS, include_in_schema=False)
    async def restate_other(request: Request, rest: str) -> Response:
        return IngressError(404, f"unknown ingress path /restate/{rest}").response()

    @router.api_route("/{rest:path}", methods=ALL_METHODS, include_in_schema=False)
    async def classic(request: Request, rest: str) -> Response:
        return await guarded(lambda: ingress.invoke(request, raw_segments(request, "rest"), None))


async def guarded(call: typing.Callable[[], typing.Awaitable[Response]]) -> Response:
    """`call()`'s response, or the error response Restate's ingress gives (never an exception)."""
    try:
        return await call()
    except IngressError as exc:
        return exc.response()
    except BacklogFull as exc:
        return backlog_full(exc)
    except InvalidInput as exc:
        return IngressError(exc.status, exc.message).response()
    except DatabaseUnavailable as exc:
        logger.warning("database unavailable: %s", exc)
        return IngressError(*unavailable(exc)).response()
    except Exception as exc:
        if is_unstorable(exc):  # a value no check caught: PostgreSQL refused it, and stored nothing
            logger.warning("ingress request refused by the database: %s", exc)
            return IngressError(400, UNSTORABLE).response()
        logger.exception("ingress request failed")
        return IngressError(500, "internal error while handling the request").response()
