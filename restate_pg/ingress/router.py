"""`create_router()`: Restate's HTTP ingress as a FastAPI `APIRouter` to mount in any app.

Paths, status codes and bodies follow Restate's ingress (see README for the deliberate
differences): `POST /{service}/{handler}`, `POST /{object}/{key}/{handler}`, the same with `/send`,
the 1.7 `/restate/call|send/...` family, and `GET /restate/health`.
"""

from __future__ import annotations

import contextlib
import logging
import typing
from datetime import timedelta
from urllib.parse import unquote

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from restate_pg.api.app import App
from restate_pg.api.definitions import Handler
from restate_pg.ingress.duration import InvalidDuration, parse_duration
from restate_pg.runtime.ids import deterministic_invocation_id, new_invocation_id
from restate_pg.store.records import Submission
from restate_pg.worker.engine import Engine, InvocationResult

logger = logging.getLogger("restate_pg.ingress")

DEFAULT_MAX_BODY = 32 * 1024 * 1024
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_DROPPED_HEADERS = {"connection", "host", "idempotency-key", "idempotency-expires", "content-length", "transfer-encoding"}


class IngressError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self, invocation_id: typing.Optional[str] = None) -> JSONResponse:
        headers = {"x-restate-error-source": "ingress"}
        if invocation_id:
            headers["x-restate-id"] = invocation_id
        return JSONResponse({"code": self.status, "message": self.message}, status_code=self.status, headers=headers)


def _content_type_matches(content_type: str, accept: str) -> bool:
    actual = content_type.split(";", 1)[0].strip().lower()
    for pattern in accept.split(","):
        wanted = pattern.split(";", 1)[0].strip().lower()
        if wanted in ("*/*", actual):
            return True
        if wanted.endswith("/*") and actual.split("/", 1)[0] == wanted[:-2]:
            return True
    return False


class _Target(typing.NamedTuple):
    handler: Handler
    key: typing.Optional[str]
    send: bool


class Ingress:
    """Request handling, independent of how the routes are mounted."""

    def __init__(self, app: App, engine: Engine, max_body_size: int) -> None:
        self.app = app
        self.engine = engine
        self.max_body_size = max_body_size

    def resolve(self, segments: typing.List[str], explicit_send: typing.Optional[bool]) -> _Target:
        """Map path segments to a handler: `[service, (key,) handler, ("send",)]`."""
        if not segments or not segments[0]:
            raise IngressError(404, "not found")
        service_name = segments[0]
        service = self.app.services.get(service_name)
        if service is None:
            raise IngressError(
                404, f"service '{service_name}' not found, make sure to register the service before calling it."
            )
        rest = segments[1:]
        send = False
        if explicit_send is None and rest and rest[-1] == "send" and len(rest) == (3 if service.is_keyed else 2):
            send, rest = True, rest[:-1]
        elif explicit_send:
            send = True
        expected = 2 if service.is_keyed else 1
        if len(rest) != expected or any(part == "" for part in rest):
            shape = f"/{service_name}/{{key}}/{{handler}}" if service.is_keyed else f"/{service_name}/{{handler}}"
            raise IngressError(400, f"bad path: expected {shape}[/send]")
        key = rest[0] if service.is_keyed else None
        handler_name = rest[-1]
        handler = service.handlers.get(handler_name)
        if handler is None:
            raise IngressError(
                404,
                f"the service '{service_name}' exists, but the handler '{handler_name}' was not found, "
                "check that the handler exists in the latest registered service version.",
            )
        return _Target(handler, key, send)

    async def read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_size:
            raise IngressError(413, f"request body exceeds the limit of {self.max_body_size} bytes")
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_size:
                raise IngressError(413, f"request body exceeds the limit of {self.max_body_size} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def validate_input(handler: Handler, body: bytes, content_type: typing.Optional[str]) -> None:
        if not handler.takes_input:
            if body:
                raise IngressError(
                    400,
                    "input validation error: Expected body and content-type to be empty, but wasn't "
                    f"with content-type '{content_type or ''}'",
                )
            return
        if not body and not content_type:
            return
        if not content_type:
            raise IngressError(400, "input validation error: Empty content-type")
        if not _content_type_matches(content_type, handler.accept):
            raise IngressError(
                400, f"input validation error: Content-type '{content_type}' does not match '{handler.accept}'"
            )
        try:
            handler.input_serde.deserialize(body)
        except Exception as exc:
            raise IngressError(400, f"input validation error: cannot decode the request body: {_short(exc)}") from None

    async def invoke(self, request: Request, segments: typing.List[str], explicit_send: typing.Optional[bool]) -> Response:
        target = self.resolve(segments, explicit_send)
        handler = target.handler
        if handler.is_private:
            raise IngressError(400, "the invoked service is not public")
        if request.method not in ("GET", "POST"):
            raise IngressError(405, f"method {request.method} is not allowed, use POST")
        body = await self.read_body(request)
        content_type = request.headers.get("content-type")
        self.validate_input(handler, body, content_type)

        delay: typing.Optional[timedelta] = None
        raw_delay = next((v for k, v in request.query_params.multi_items() if k.lower() == "delay"), None)
        if raw_delay is not None:
            if not target.send:
                raise IngressError(400, "cannot use the delay query parameter with calls, use /send instead")
            try:
                delay = parse_duration(raw_delay)
            except InvalidDuration:
                raise IngressError(400, "bad delay query parameter, must be a ISO8601 duration") from None

        idempotency_key = request.headers.get("idempotency-key")
        if idempotency_key is not None:
            if not idempotency_key.strip():
                raise IngressError(400, "the idempotency key must not be empty")
            if handler.kind == "workflow":
                raise IngressError(400, "cannot use the idempotency key with workflow handlers, the workflow id already makes the invocation idempotent")

        service = handler.service
        if handler.kind == "workflow":
            invocation_id = deterministic_invocation_id("wf", service.name, target.key, key=target.key)
        elif idempotency_key is not None:
            invocation_id = deterministic_invocation_id(service.name, target.key, handler.name, idempotency_key, key=target.key)
        else:
            invocation_id = new_invocation_id(target.key)

        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers["x-restate-ingress-path"] = path
        submission = Submission(
            id=invocation_id,
            service=service.name,
            handler=handler.name,
            key=target.key,
            service_ty=service.service_type,
            handler_ty=handler.kind,
            input=body,
            headers=headers,
            idempotency_key=idempotency_key,
            invoked_by="ingress",
            delay_ms=int(delay.total_seconds() * 1000) if delay is not None else None,
        )
        submitted, waiter = await self.engine.submit(submission, wait=not target.send)
        if target.send:
            status = "Accepted" if submitted.status is not None else "PreviouslyAccepted"
            payload: typing.Dict[str, typing.Any] = {"invocationId": invocation_id, "status": status}
            if submitted.status == "scheduled" and submitted.db_now is not None and delay is not None:
                payload["executionTime"] = (submitted.db_now + delay).isoformat()
            return JSONResponse(payload, status_code=202, headers={"x-restate-id": invocation_id})
        if submitted.status is None:
            if waiter is not None:
                self.engine._remove_waiter(invocation_id, waiter)
            if handler.kind == "workflow":
                raise IngressError(409, "the workflow method was already invoked")
            waiter = None  # an idempotent duplicate: attach to the first submission
        result = await self.engine.result(invocation_id, waiter)
        if result is None:
            raise IngressError(404, "invocation not found")
        return result_response(handler, invocation_id, result)


def result_response(handler: typing.Optional[Handler], invocation_id: str, result: InvocationResult) -> Response:
    headers = {"x-restate-id": invocation_id}
    failure = result.failure
    if failure is not None:
        status = failure.code if 400 <= failure.code <= 599 else 500
        body: typing.Dict[str, typing.Any] = {"code": failure.code, "message": failure.message}
        if failure.metadata:
            body["metadata"] = failure.metadata
        headers["x-restate-error-source"] = "invocation"
        return JSONResponse(body, status_code=status, headers=headers)
    output = result.output or b""
    media_type = (handler.content_type if handler is not None else "application/json") if output else None
    return Response(content=output, status_code=200, media_type=media_type, headers=headers)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _raw_segments(request: Request, rest_param: str) -> typing.List[str]:
    """Path segments after the route's literal prefix, percent-decoded one by one (keys may hold '/')."""
    route = request.scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", "")
    prefix = template.split("{", 1)[0]
    raw_path = request.scope.get("raw_path")
    if raw_path is None:
        return [s for s in request.path_params.get(rest_param, "").split("/")]
    raw = raw_path.decode("latin-1")
    root = request.scope.get("root_path", "")
    if root and raw.startswith(root):
        raw = raw[len(root):]
    remainder = raw[len(prefix):] if raw.startswith(prefix) else request.path_params.get(rest_param, "")
    return [unquote(part) for part in remainder.split("/")]


def create_router(
    app: App,
    *,
    database_url: typing.Optional[str] = None,
    schema: str = "restate",
    engine: typing.Optional[Engine] = None,
    run_handlers: bool = True,
    poll_only: bool = False,
    max_body_size: int = DEFAULT_MAX_BODY,
    **engine_options: typing.Any,
) -> APIRouter:
    """Build the ingress router for `app`.

    With `run_handlers=True` (the default) the process also executes invocations (it is a worker);
    with False it only accepts requests and waits for workers started with `restate-pg worker`.
    The router's lifespan starts and stops the engine unless you pass your own `engine`.
    """
    if engine is None:
        if database_url is None:
            from restate_pg.store.database import resolve_database_url, to_psycopg_conninfo

            resolved = resolve_database_url(None)
            if resolved is None:
                raise ValueError("no database configured: pass database_url= or set DATABASE_URL")
            database_url = to_psycopg_conninfo(resolved)
        engine = Engine(app, database_url, schema=schema, run_handlers=run_handlers, poll_only=poll_only, **engine_options)
        owns_engine = True
    else:
        owns_engine = False
    ingress = Ingress(app, engine, max_body_size)

    @contextlib.asynccontextmanager
    async def lifespan(_: typing.Any) -> typing.AsyncIterator[None]:
        if owns_engine:
            await engine.start()
        try:
            yield
        finally:
            if owns_engine:
                await engine.stop()

    router = APIRouter(lifespan=lifespan)
    router.engine = engine  # type: ignore[attr-defined]

    async def guarded(call: typing.Callable[[], typing.Awaitable[Response]]) -> Response:
        try:
            return await call()
        except IngressError as exc:
            return exc.response()
        except psycopg.OperationalError as exc:
            logger.warning("database unavailable: %s", exc)
            return IngressError(503, "the database is unavailable, retry later").response()
        except Exception:
            logger.exception("ingress request failed")
            return IngressError(500, "internal error while handling the request").response()

    @router.get("/restate/health")
    async def health() -> JSONResponse:
        return JSONResponse({"services": sorted(app.services)})

    @router.api_route("/restate/call/{rest:path}", methods=_ALL_METHODS, include_in_schema=False)
    async def call_v17(request: Request, rest: str) -> Response:
        return await guarded(lambda: ingress.invoke(request, _raw_segments(request, "rest"), False))

    @router.api_route("/restate/send/{rest:path}", methods=_ALL_METHODS, include_in_schema=False)
    async def send_v17(request: Request, rest: str) -> Response:
        return await guarded(lambda: ingress.invoke(request, _raw_segments(request, "rest"), True))

    @router.api_route("/restate/{rest:path}", methods=_ALL_METHODS, include_in_schema=False)
    async def restate_other(request: Request, rest: str) -> Response:
        return IngressError(404, f"unknown ingress path /restate/{rest}").response()

    @router.api_route("/{rest:path}", methods=_ALL_METHODS, include_in_schema=False)
    async def classic(request: Request, rest: str) -> Response:
        return await guarded(lambda: ingress.invoke(request, _raw_segments(request, "rest"), None))

    return router
