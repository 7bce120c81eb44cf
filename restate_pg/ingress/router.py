"""`create_router()`: Restate's HTTP ingress as a FastAPI `APIRouter` to mount in any app.

Paths, status codes and bodies follow Restate's ingress (see README for the deliberate
differences): `POST /{service}/{handler}`, `POST /{object}/{key}/{handler}`, the same with `/send`,
the 1.7 `/restate/call|send/...` family, and `GET /restate/health`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import typing
from datetime import datetime, timedelta
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from restate_pg.api.app import App
from restate_pg.api.definitions import Handler
from restate_pg.api.inputs import InputRejected, accepts_none, check_json_body
from restate_pg.api.durations import InvalidDuration, parse_duration
from restate_pg.ingress.flow import FLOW_HEADERS, flow_of
from restate_pg.ingress.requests import (
    content_type_matches, forwarded_headers, header_text, idempotency_key, invocation_id_in_path, json_expected,
    json_input, unexpected,
)
from restate_pg.ingress.responses import IngressError, result_response, rfc3339
from restate_pg.ingress.routes import LeanRoute, add_routes
from restate_pg.observability import tracing
from restate_pg.runtime.submission import idempotent_invocation_id, new_submission, workflow_invocation_id
from restate_pg.core.errors import DatabaseUnavailable, ValueRefused
from restate_pg.core.records import Failure
from restate_pg.validation import check_json, check_text, is_unstorable
from restate_pg.services.gateway import Gateway
from restate_pg.services.outcomes import Accepted, InvalidAwakeableId, Missing, NotReady, NotResolved

logger = logging.getLogger("restate_pg.ingress")

DEFAULT_MAX_BODY = 32 * 1024 * 1024
_BAD_PATH = "bad path, expected either /:service-name/:handler or /:object-name/:object-key/:handler"
_BAD_DELAY = "bad delay query parameter, must be a ISO8601 duration"


class _Target(typing.NamedTuple):
    handler: Handler
    key: typing.Optional[str]
    send: bool


class Ingress:
    """Request handling, independent of how the routes are mounted."""

    def __init__(self, app: App, node: Gateway, max_body_size: int) -> None:
        self.app = app
        self.node = node
        self.max_body_size = max_body_size

    def resolve(self, segments: typing.List[str], explicit_send: typing.Optional[bool]) -> _Target:
        """Map raw path segments to a handler: `[service, (key,) handler, ("send",)]`.

        As in Restate only the key is percent-decoded (so it may hold '/'); service and handler
        names are matched as written. `explicit_send` is None for the classic paths, where a
        trailing `send` segment makes the request a send.
        """
        if not segments:
            raise IngressError(404, "not found")
        service_name = segments[0]
        service = self.node.service(service_name)
        if service is None:
            raise IngressError(
                404, f"service '{service_name}' not found, make sure to register the service before calling it."
            )
        rest = segments[1:]
        expected = 2 if service.is_keyed else 1
        send = bool(explicit_send)
        if len(rest) < expected:
            raise IngressError(400, _BAD_PATH)
        if len(rest) > expected:
            if explicit_send is None and len(rest) == expected + 1 and rest[-1] == "send":
                send = True
            else:
                raise IngressError(400, _BAD_PATH)
        key = None
        if service.is_keyed:
            try:
                key = unquote(rest[0], errors="strict")
            except UnicodeDecodeError as exc:
                raise IngressError(400, f"bad path, cannot decode key: {exc}") from None
            check_text("key", key)  # the only segment decoded: names are matched as written
        handler_name = rest[expected - 1]
        handler = service.handlers.get(handler_name)
        if handler is None:
            raise IngressError(
                404,
                f"the service '{service_name}' exists, but the handler '{handler_name}' was not found, "
                "check that the handler exists in the latest registered service version.",
            )
        return _Target(handler, key, send)

    async def read_body(self, request: Request) -> bytes:
        too_large = IngressError(413, f"the request body exceeds the limit of {self.max_body_size} bytes")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > self.max_body_size:
            raise too_large
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_size:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def validate_input(handler: Handler, body: bytes, content_type: typing.Optional[str], encoded: bool = False) -> None:
        """Restate's input rules for a handler of restate-sdk, then (unlike Restate) the body
        checked against the handler's input type (`api/inputs.py`).

        A handler without input accepts only an empty body without content-type. A handler with
        input also accepts that when its input may be None (it receives None), or a body whose
        content-type matches `accept`; a JSON input must then not be empty. A body of the wrong
        type (`"5"` for an `int`, a pydantic validation error) or not JSON under a JSON content
        type is refused here with 400 instead of failing the invocation, retried, for an hour.
        An `encoded` body (the app has a journal value codec) is the codec's, not JSON: only its
        content type is checked, as restate-sdk disables its payload checks under a codec.
        """
        if not handler.takes_input:
            if body or content_type is not None:
                raise IngressError(
                    400, "input validation error: Expected body and content-type to be empty "
                    f"(the handler takes no input), but got {unexpected(body, content_type)}"
                )
            return
        if not body and content_type is None:
            if not accepts_none(handler.input_type):  # it would fail in the handler, and be retried
                raise IngressError(400, "input validation error: Empty body not allowed")
            return
        if content_type is None:
            raise IngressError(400, "input validation error: Empty content-type")
        if not content_type_matches(content_type, handler.accept):
            raise IngressError(
                400, f"input validation error: Content-type '{content_type}' does not match '{handler.accept}'"
            )
        if encoded:
            return
        if not body:
            if json_input(handler):
                raise IngressError(400, "input validation error: Empty body not allowed")
            return
        try:
            handler.input_check(body, content_type)
        except InputRejected as exc:
            raise IngressError(400, exc.message) from None

    async def invoke(self, request: Request, segments: typing.List[str], explicit_send: typing.Optional[bool],
                     scope: typing.Optional[str] = None) -> Response:
        with tracing.ingress_span(request.headers):
            return await self._invoke(request, segments, explicit_send, scope)

    async def _invoke(self, request: Request, segments: typing.List[str], explicit_send: typing.Optional[bool],
                      scope: typing.Optional[str]) -> Response:
        request_started = time.monotonic()
        # The checks run in Restate's order, so that a request with several faults gets the same answer.
        if segments and self.node.service(segments[0]) is None:
            # registered a moment ago by another process (its hint may not have arrived yet)
            await self.node.remote.refresh_since(request_started)
        target = self.resolve(segments, explicit_send)
        handler = target.handler
        if not self.node.settings.is_public(handler):
            raise IngressError(400, "the invoked service is not public")
        key_header = idempotency_key(request)
        if key_header is not None and handler.kind == "workflow":
            raise IngressError(
                400,
                "cannot use the idempotency key with workflow handlers. "
                "The handler invocation will already be idempotent by the workflow key itself.",
            )
        if request.method not in ("GET", "POST"):
            raise IngressError(405, "method not allowed")
        body = await self.read_body(request)
        # The body is the handler's input, stored as bytes: a NUL in it is the handler's business.
        encoded = self.app.codec.configured and self.app.handler(handler.service_name, handler.name) is handler
        self.validate_input(handler, body, header_text(request, "content-type"), encoded)

        delay: typing.Optional[timedelta] = None
        raw_delay = next((v for k, v in request.query_params.multi_items() if k.lower() == "delay"), None)
        if raw_delay is not None:
            check_text("delay query parameter", raw_delay)
            try:
                delay = parse_duration(raw_delay)
            except InvalidDuration as exc:
                raise IngressError(400, f"{_BAD_DELAY}: {exc}") from None
            if not target.send:
                raise IngressError(
                    400, "cannot use the delay query parameter with calls. The delay is supported only with sends"
                )
        flow, debounce = flow_of(request, scope, target.send)
        delay = debounce if debounce is not None else delay
        headers = {k: v for k, v in forwarded_headers(request).items() if k not in FLOW_HEADERS}

        delay_ms = None if delay is None else delay // timedelta(milliseconds=1)
        submission = new_submission(
            handler, target.key, body, idempotency_key=key_header, headers=headers, delay_ms=delay_ms, flow=flow
        )
        tracing.submitted(submission.headers, submission.id, handler.service_name, handler.name, target.key)
        try:
            if target.send:
                accepted = await self.node.submissions.send(submission)
            else:
                submitted, result = await self.node.submissions.call(submission)
        except ValueRefused as exc:
            if delay_ms is None or is_unstorable(exc):
                raise
            # now() + delay is beyond what PostgreSQL's timestamps hold
            raise IngressError(400, f"{_BAD_DELAY}: the delay is too long") from None
        invocation_id = accepted.invocation_id if target.send else submission.id  # a debounced send joins a pending one
        if target.send:
            status = "Accepted" if isinstance(accepted, Accepted) else "PreviouslyAccepted"
            payload: typing.Dict[str, typing.Any] = {"invocationId": invocation_id, "status": status}
            if isinstance(accepted, Accepted) and accepted.execution_time is not None:
                payload["executionTime"] = rfc3339(accepted.execution_time, zulu=True)
            return Response(orjson.dumps(payload), status_code=202, media_type="application/json",
                            headers={"x-restate-id": invocation_id})
        if result is None:
            raise IngressError(404, "invocation not found", invocation_id)
        if submitted.status is None and handler.kind == "workflow":
            # Restate answers this as a failure of the (existing) invocation, not of the ingress
            return result_response(handler, invocation_id, result)
        response = result_response(handler, invocation_id, result)
        if key_header is not None or handler.kind == "workflow":
            expires = await self.retained_until(invocation_id)
            if expires is not None:
                response.headers["idempotency-expires"] = rfc3339(expires)
        return response

    # -- attach and output ---------------------------------------------------------------------

    async def attach_or_output(self, request: Request, invocation_id: str, action: str, methods: typing.Tuple[str, ...] = ("GET",)) -> Response:
        """`attach` waits for an invocation's result; `output` returns it if ready (470 if not)."""
        if action not in ("attach", "output"):
            raise IngressError(404, f"unknown ingress path {request.url.path}")
        if request.method not in methods:
            raise IngressError(405, "method not allowed")
        results = self.node.results
        finished = await (results.attach(invocation_id) if action == "attach" else results.output(invocation_id))
        if isinstance(finished, Missing):
            raise IngressError(404, "invocation not found", invocation_id)
        if isinstance(finished, NotReady):
            raise IngressError(470, "the invocation exists but has not completed yet", invocation_id)
        handler = self.node.handler(finished.service, finished.handler) if finished.service is not None else None
        response = result_response(handler, invocation_id, finished.result)
        if finished.retain_until is not None:
            response.headers["idempotency-expires"] = rfc3339(finished.retain_until)
        return response

    def invocation_id_of(self, target: typing.Mapping[str, typing.Any]) -> str:
        """The invocation a `POST /restate/attach|output|lookup` body names (Restate's target forms)."""
        kind = target.get("target")
        try:
            if kind == "invocation":
                invocation_id = invocation_id_in_path(str(target["invocationId"]))
            elif kind == "workflow":
                name, key = str(target["workflowName"]), str(target["workflowKey"])
                invocation_id = workflow_invocation_id(name, key)
            elif kind == "idempotentInvocation":
                key = target.get("key")
                invocation_id = idempotent_invocation_id(
                    str(target["service"]), None if key is None else str(key), str(target["handler"]),
                    str(target["idempotencyKey"]))
            else:
                raise KeyError("target")
        except KeyError as exc:
            raise IngressError(400, f"cannot read body: missing field {exc}") from None
        return invocation_id

    async def read_target(self, request: Request) -> typing.Mapping[str, typing.Any]:
        """The JSON body of `POST /restate/attach|output|lookup`; every field it names a target
        with is looked up (or hashed into an id that is), so none may hold a NUL."""
        try:
            target = json.loads(await self.read_body(request) or b"null")
        except ValueError:
            raise IngressError(400, "cannot read body: invalid request body") from None
        if not isinstance(target, dict):
            raise IngressError(400, "cannot read body: invalid request body")
        check_json(target)
        return target

    async def complete_awakeable(self, request: Request, awakeable_id: str, action: str) -> Response:
        """`POST /restate/awakeables/{id}/resolve` (body: the value, in the awaiting side's serde)
        or `/reject` (body: the failure message; the failure code is 500), as Restate's ingress."""
        check_text("awakeable id", awakeable_id)
        if action not in ("resolve", "reject"):
            raise IngressError(404, f"unknown ingress path /restate/awakeables/{awakeable_id}/{action}")
        if request.method != "POST":
            raise IngressError(405, "method not allowed")
        body = await self.read_body(request)
        if action == "resolve" and json_expected(header_text(request, "content-type")):
            try:  # JSON at least; of the waiter's declared type, if it declared one (below)
                check_json_body(body)
            except InputRejected as exc:
                raise IngressError(400, exc.message) from None
        value: typing.Optional[bytes] = body  # stored as bytes: a NUL in a value is the handler's business
        failure = None
        if action == "reject":  # the message is stored as text
            message = check_text("failure message (the request body)", body.decode("utf-8", errors="replace"))
            value, failure = None, Failure(500, message)
        try:
            outcome = await self.node.awakeables.complete(awakeable_id, value, failure)
        except InputRejected as exc:
            raise IngressError(400, exc.message) from None
        if isinstance(outcome, InvalidAwakeableId):
            raise IngressError(400, f"bad awakeable id '{awakeable_id}'")
        if isinstance(outcome, NotResolved):  # accepted all the same, as Restate's ingress does
            logger.info("awakeable %s was not %sd: %s", awakeable_id, action, outcome.reason)
        return Response(status_code=202)

    async def retained_until(self, invocation_id: str) -> typing.Optional[datetime]:
        """Until when a completed invocation's result is kept (the `idempotency-expires` header)."""
        try:
            return await self.node.results.retained_until(invocation_id)
        except DatabaseUnavailable as exc:  # the header is informative: answer without it
            logger.debug("no retention time for %s: %s", invocation_id, exc)
            return None


def create_router(
    app: App,
    *,
    database_url: typing.Optional[str] = None,
    schema: str = "restate",
    engine: typing.Optional[Gateway] = None,
    run_handlers: bool = True,
    poll_only: bool = False,
    max_body_size: int = DEFAULT_MAX_BODY,
    migrate: bool = False,
    **engine_options: typing.Any,
) -> APIRouter:
    """Build the ingress router for `app`.

    With `run_handlers=True` (the default) the process also executes invocations (it is a worker);
    with False it only accepts requests and waits for workers started with `restate-pg worker`.
    The router's lifespan starts and stops the engine unless you pass your own `engine` (the
    process it serves from, `router.engine`: a `restate_pg.services.Gateway`, which a worker is).
    The lifespan refuses a database whose schema is not at this version's revision
    (`SchemaNotMigrated`: run `restate-pg migrate`), or with `migrate=True` migrates it first.
    """
    if engine is None:
        if database_url is None:
            from restate_pg.store.database import resolve_database_url, to_psycopg_conninfo

            resolved = resolve_database_url(None)
            if resolved is None:
                raise ValueError("no database configured: pass database_url= or set DATABASE_URL")
            database_url = to_psycopg_conninfo(resolved)
        from restate_pg.process import open_process

        engine = open_process(app, database_url, schema=schema, run_handlers=run_handlers, poll_only=poll_only, **engine_options)
        owns_engine = True
    else:
        owns_engine = False
    ingress = Ingress(app, engine, max_body_size)

    @contextlib.asynccontextmanager
    async def lifespan(_: typing.Any) -> typing.AsyncIterator[None]:
        if owns_engine:
            await engine.prepare_schema(migrate=migrate)
            await engine.start()
        try:
            yield
        finally:
            if owns_engine:
                await engine.stop()

    router = APIRouter(lifespan=lifespan, route_class=LeanRoute)
    router.engine = engine  # type: ignore[attr-defined]
    router.ingress = ingress  # type: ignore[attr-defined]  # for `hot_paths` (ingress/asgi.py)

    add_routes(router, ingress)
    return router
