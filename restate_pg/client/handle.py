"""What starting an invocation without waiting returns, and the errors of a client."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RestateClientSendHandle:
    """An accepted send, as restate-sdk's client returns it, and as the ingress answers 202.

    `status` is "Accepted", or "PreviouslyAccepted" when the invocation existed already (the same
    idempotency key, or a workflow id whose run was started before): `invocation_id` is then the
    existing invocation's. `execution_time` is when a delayed send starts.
    """

    invocation_id: str
    status_code: int = 202
    status: str = "Accepted"
    execution_time: typing.Optional[datetime] = None

    @property
    def previously_accepted(self) -> bool:
        return self.status == "PreviouslyAccepted"


class HttpError(Exception):
    """restate-sdk's error of an ingress request that did not succeed: its status, reason and body."""

    def __init__(self, status_code: int, message: str, body: typing.Optional[str] = None) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.body = body


class ClientError(HttpError):
    """A request the client could not carry out: the target or invocation is unknown (404), its
    output is not ready (470), the request is invalid (400)... `status_code` says which, with the
    HTTP status the ingress gives the same case. A failure of the invocation itself is raised as
    `TerminalError` instead."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, message)
        self.args = (f"{status_code}: {message}",)  # str(error), as before HttpError was its base
