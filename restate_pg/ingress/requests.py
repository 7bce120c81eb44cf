"""Reading an ingress request as Restate's ingress does: its path segments, headers and content type.

Every value read here is checked before it can reach PostgreSQL (`restate_pg.validation`):
a header must be visible ASCII, as Restate requires (which leaves out NUL), and an empty
`idempotency-key` is refused.
"""

from __future__ import annotations

import re
import typing
from urllib.parse import quote

from fastapi import Request

from restate_pg.api.definitions import Handler
from restate_pg.api.inputs import is_json_content_type
from restate_pg.api.serde import BytesSerde
from restate_pg.core.ids import is_invocation_id
from restate_pg.ingress.responses import IngressError

#: Restate forwards every request header to the invocation except these.
DROPPED_HEADERS = {"connection", "host", "idempotency-key", "idempotency-expires"}
#: Restate's wording where it refuses an empty idempotency key (a call from a handler).
EMPTY_IDEMPOTENCY_KEY = "the idempotency key provided in the request is empty"


def content_type_matches(content_type: str, accept: str) -> bool:
    """Whether `content_type` is one `accept` lists (wildcards `type/*`, `*/*`; parameters ignored)."""
    actual = content_type.split(";", 1)[0].strip().lower()
    for pattern in accept.split(","):
        wanted = pattern.split(";", 1)[0].strip().lower()
        if wanted in ("*/*", actual):
            return True
        if wanted.endswith("/*") and actual.split("/", 1)[0] == wanted[:-2]:
            return True
    return False


#: A byte that is not visible ASCII (nor a tab).
_INVISIBLE = re.compile(rb"[^\t\x20-\x7e]")


def _is_visible_ascii(value: bytes) -> bool:
    return _INVISIBLE.search(value) is None


def header_text(request: Request, name: str) -> typing.Optional[str]:
    """A request header's value, refused with 400 (as Restate does) unless it is visible ASCII."""
    wanted = name.encode("latin-1")
    for raw_name, raw_value in request.headers.raw:
        if raw_name.lower() == wanted:
            if not _is_visible_ascii(raw_value):
                raise IngressError(400, f"bad header {name}: failed to convert header to a str")
            return raw_value.decode("ascii")
    return None


def idempotency_key(request: Request) -> typing.Optional[str]:
    """The `idempotency-key` header. An empty one is refused: every request sending it would
    collapse into one invocation, which is never what a client that forgot to fill it meant."""
    key = header_text(request, "idempotency-key")
    if key == "":
        raise IngressError(400, EMPTY_IDEMPOTENCY_KEY)
    return key


def forwarded_headers(request: Request) -> typing.Dict[str, str]:
    """The headers the invocation sees (`ctx.request().headers`), plus `x-restate-ingress-path`."""
    headers: typing.Dict[str, str] = {}
    for raw_name, raw_value in request.headers.raw:
        name = raw_name.decode("latin-1").lower()
        if name in DROPPED_HEADERS:
            continue
        if not _is_visible_ascii(raw_value):
            raise IngressError(400, f"bad header {name}: failed to convert header to a str")
        headers[name] = raw_value.decode("ascii")
    # the path as received (still percent-encoded, so it holds no NUL) and the query, as Restate records it
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(request.url.path)
    query = request.scope.get("query_string", b"").decode("latin-1")
    headers["x-restate-ingress-path"] = path + (f"?{query}" if query else "")
    return headers


def raw_segments(request: Request, rest_param: str) -> typing.List[str]:
    """Path segments after the route's literal prefix, still percent-encoded (a key may hold '%2F')."""
    route = request.scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", "")
    prefix = template.split("{", 1)[0]
    raw_path = request.scope.get("raw_path")
    if raw_path is None:  # a server that does not report the raw path: re-encode the decoded one
        return [quote(part, safe="") for part in request.path_params.get(rest_param, "").split("/")]
    raw = raw_path.decode("latin-1")
    # What the routing consumed (mount prefixes and the route's literal part) is the decoded path
    # minus the decoded parameter; it holds no escapes, so it prefixes the raw path as written.
    # (Recent FastAPI puts the included router's own route in the scope, without the mount prefix.)
    decoded, rest = request.scope.get("path", ""), request.path_params.get(rest_param, "")
    consumed = decoded[: len(decoded) - len(rest)] if decoded.endswith(rest) else None
    if consumed and raw.startswith(consumed):
        return raw[len(consumed):].split("/")
    root = request.scope.get("root_path", "")
    if root and raw.startswith(root):
        raw = raw[len(root):]
    remainder = raw[len(prefix):] if raw.startswith(prefix) else request.path_params.get(rest_param, "")
    return remainder.split("/")


def invocation_id_in_path(value: str) -> str:
    """An invocation id given in a path (`/restate/invocation/{id}/output`), as Restate parses it:
    one of another shape is a 400 ("bad invocation id"), not a 404 for an id that cannot exist."""
    if not is_invocation_id(value):
        raise IngressError(400, f"bad invocation id '{value}': expected inv_1 and 33 characters of [0-9a-zA-Z]")
    return value


def json_input(handler: Handler) -> bool:
    """Whether restate-sdk would register a JSON schema for the input (then an empty body is refused)."""
    return handler.input_type is not None and not isinstance(handler.input_serde, BytesSerde)


def json_expected(content_type: typing.Optional[str]) -> bool:
    """Whether an awakeable's value must be JSON: under a JSON content type, and under none or
    curl's default form encoding (`curl -d hello`), which no resolver picks for a waiter that
    takes raw bytes: the default serde's waiter would fail on it at every retry."""
    if content_type is None or is_json_content_type(content_type):
        return True
    return content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


def unexpected(body: bytes, content_type: typing.Optional[str]) -> str:
    """What a request to a handler without input carried that it should not have."""
    parts = [] if content_type is None else [f"content-type '{content_type}'"]
    if body:
        parts.append(f"a body of {len(body)} bytes")
    return " and ".join(parts)
