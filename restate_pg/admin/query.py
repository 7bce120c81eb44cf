"""`POST /query`: SQL introspection over HTTP, as Restate's admin API serves it.

The body is `{"query": "SELECT ..."}`; the answer is `{"rows": [{column: value, ...}, ...]}` with
bytes in base64 (in hex under /v2-/v4, as Restate writes them) and timestamps in ISO 8601; or an Arrow IPC stream (see `restate_pg.admin.arrow`)
for a client that asks for one and for Restate's CLI. The query runs read-only, see
`restate_pg.store.console`.
"""

from __future__ import annotations

import asyncio
import logging
import typing

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from restate_pg.admin import arrow
from restate_pg.admin.errors import AdminRoute, error_response
from restate_pg.core.errors import DatabaseUnavailable
from restate_pg.services.http_errors import unavailable
from restate_pg.store.console import DEFAULT_TIMEOUT_S, QueryError, QueryResult, json_safe, run_query
from restate_pg.validation import check_json
from restate_pg.services.gateway import Gateway

logger = logging.getLogger("restate_pg.admin")


def _wants_arrow(request: Request) -> bool:
    """Arrow for a client that names it, and for Restate's CLI when it sends `Accept: */*` (it then
    reads only Arrow); JSON for everyone else (Restate itself answers Arrow unless asked for JSON)."""
    accept = request.headers.get("accept", "")
    if arrow.ARROW_STREAM in accept:
        return True
    return "application/json" not in accept and request.headers.get("user-agent", "").startswith("restate-cli/")


def _hex_records(result: QueryResult) -> typing.List[typing.Dict[str, typing.Any]]:
    return [{name: bytes(value).hex() if isinstance(value, (bytes, bytearray, memoryview)) else json_safe(value)
             for name, value in zip(result.columns, row)} for row in result.rows]


def create_query_router(engine: Gateway, *, timeout_s: float = DEFAULT_TIMEOUT_S, hex_bytes: bool = False) -> APIRouter:
    """The `/query` route, reading through `engine`'s database and schema. With `hex_bytes`, JSON
    answers write bytes in hex, as Restate's versioned admin API does (`restate kv get` decodes
    them so); restate-pg's unversioned path keeps base64."""
    router = APIRouter(route_class=AdminRoute)

    @router.post("/query", include_in_schema=False)
    async def query(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return error_response(400, 'the body must be JSON: {"query": "SELECT ..."}')
        check_json(body)  # libpq would cut the query at a NUL, and run what comes before it
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return error_response(400, 'the body must be a JSON object with a string "query"')
        try:
            # psycopg's blocking connection, in a thread: each query has a connection of its own
            result = await asyncio.to_thread(
                run_query, engine.store.conninfo, engine.store.schema, body["query"], timeout_s=timeout_s
            )
        except QueryError as exc:
            return error_response(400, str(exc))
        except DatabaseUnavailable as exc:
            return error_response(*unavailable(exc))
        except Exception:
            logger.exception("query failed")
            return error_response(500, "internal error while running the query")
        if _wants_arrow(request):
            if not arrow.available():
                return error_response(406, arrow.MISSING)
            return Response(await asyncio.to_thread(arrow.arrow_stream, result), media_type=arrow.ARROW_STREAM)
        rows = _hex_records(result) if hex_bytes else result.records()
        return Response(orjson.dumps({"rows": rows}), media_type="application/json")

    return router
