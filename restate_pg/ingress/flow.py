"""Flow control as the ingress reads it: Restate's scope (`/restate/scope/{scope}/call|send/...`)
and limit key (`x-restate-limit-key` header or `limit-key` query parameter, scoped requests
only), and restate-pg's priority (`x-restate-pg-priority`) and debounce (`x-restate-pg-debounce-key`
with `?debounce=<duration>` or the window of a rule on the handler, sends only) (docs/flow-control.md).
"""

from __future__ import annotations

import typing
from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response

from restate_pg.api.durations import InvalidDuration, parse_duration
from restate_pg.api.errors import TerminalError
from restate_pg.ingress.requests import header_text
from restate_pg.ingress.responses import IngressError
from restate_pg.api.flow import FlowOptions
from restate_pg.services.outcomes import BacklogFull

#: Headers that configure flow control: read here, not forwarded to the handler.
FLOW_HEADERS = ("x-restate-limit-key", "x-restate-pg-priority", "x-restate-pg-debounce-key")


def _query(request: Request, name: str) -> typing.Optional[str]:
    if not request.scope.get("query_string"):  # most calls have none: skip parsing on the hot path
        return None
    return next((v for k, v in request.query_params.multi_items() if k.lower() == name), None)


def flow_of(request: Request, scope: typing.Optional[str], send: bool) -> typing.Tuple[FlowOptions, typing.Optional[timedelta]]:
    """The request's flow-control values, and the debounce window (its delay) of a debounced send."""
    limit_key = header_text(request, "x-restate-limit-key") or _query(request, "limit-key")
    if limit_key is not None and scope is None:
        raise IngressError(400, "a limit key needs a scope: use /restate/scope/{scope}/call|send/...")
    raw_priority = header_text(request, "x-restate-pg-priority")
    try:
        priority = 0 if raw_priority is None else int(raw_priority)
    except ValueError:
        raise IngressError(400, f"bad header x-restate-pg-priority: {raw_priority!r} is not an integer") from None
    debounce_key = header_text(request, "x-restate-pg-debounce-key")
    raw_window = _query(request, "debounce")
    window = None
    if raw_window is not None and debounce_key is None:
        raise IngressError(400, "a debounced send needs the x-restate-pg-debounce-key header with the debounce query parameter")
    if debounce_key is not None and not send:
        raise IngressError(400, "cannot debounce calls: a debounce key is supported only with sends")
    if raw_window is not None:  # else the window of a rule on the handler, if any (docs/flow-control.md)
        try:
            window = parse_duration(raw_window)
        except InvalidDuration as exc:
            raise IngressError(400, f"bad debounce query parameter: {exc}") from None
    try:
        flow = FlowOptions(scope, limit_key, priority, debounce_key, check_backlog=True)  # a scope or target rule may refuse it
    except TerminalError as exc:
        raise IngressError(400, exc.message) from None
    return flow, window


def backlog_full(exc: BacklogFull) -> Response:
    """429 with `Retry-After`, as Restate answers an overloaded request."""
    response = IngressError(429, str(exc)).response()
    response.headers["retry-after"] = str(exc.retry_after)
    return response
