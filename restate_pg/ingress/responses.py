"""How the ingress answers: Restate's error body for its own errors, and an invocation's result.

Errors carry Restate's shape since 1.7.4, `{"code", "message", "source"}` with the header
`x-restate-error-source`: `source` is "ingress" for a request the ingress refused (the client may
fix and retry it) and "invocation" for the invocation's own terminal failure.
"""

from __future__ import annotations

import typing
from datetime import datetime, timezone

from fastapi.responses import JSONResponse, Response

from restate_pg.api.definitions import Handler
from restate_pg.services.outcomes import InvocationResult

ERROR_SOURCE = "x-restate-error-source"


class IngressError(Exception):
    """A request the ingress refuses, with the status Restate's ingress gives the same case."""

    def __init__(self, status: int, message: str, invocation_id: typing.Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.invocation_id = invocation_id

    def response(self) -> JSONResponse:
        headers = {ERROR_SOURCE: "ingress"}
        if self.invocation_id:
            headers["x-restate-id"] = self.invocation_id
        body = {"code": self.status, "message": self.message, "source": "ingress"}
        return JSONResponse(body, status_code=self.status, headers=headers)


def result_response(handler: typing.Optional[Handler], invocation_id: str, result: InvocationResult) -> Response:
    """A completed invocation as a call answers it: its output, or its failure (status = code)."""
    headers = {"x-restate-id": invocation_id}
    failure = result.failure
    if failure is not None:
        status = failure.code if 400 <= failure.code <= 599 else 500
        body: typing.Dict[str, typing.Any] = {"code": failure.code, "message": failure.message}
        if failure.metadata:
            body["metadata"] = failure.metadata
        body["source"] = "invocation"
        headers[ERROR_SOURCE] = "invocation"
        return JSONResponse(body, status_code=status, headers=headers)
    output = result.output or b""
    media_type = (handler.content_type if handler is not None else "application/json") if output else None
    return Response(content=output, status_code=200, media_type=media_type, headers=headers)


def rfc3339(moment: datetime, zulu: bool = False) -> str:
    """An RFC 3339 UTC timestamp: `...Z` like Restate's `executionTime`, `...+00:00` like its `idempotency-expires`."""
    utc = moment.astimezone(timezone.utc)
    text = utc.isoformat(timespec="milliseconds" if utc.microsecond % 1000 == 0 else "microseconds")
    return text[: -len("+00:00")] + "Z" if zulu else text
