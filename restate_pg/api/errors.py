"""Exceptions that handler code raises and sees, with restate-sdk's names and meaning."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

from restate_pg.core.errors import (  # the runtime's control flow, under restate-sdk's names
    SdkInternalBaseException,
    SdkInternalException,
    SuspendedException,
    is_internal_exception,
)

__all__ = [
    "RetryableError",
    "SdkInternalBaseException",
    "SdkInternalException",
    "SuspendedException",
    "TerminalError",
    "is_internal_exception",
]


class TerminalError(Exception):
    """An error that is not retried: it completes the invocation (or the `ctx.run`) as failed.

    The caller receives `status_code` (HTTP status at the ingress), `message` and `metadata`.
    """

    def __init__(self, message: str, status_code: int = 500, metadata: Optional[dict[str, str]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.metadata = metadata


class RetryableError(Exception):
    """An error that is retried, optionally after an explicit delay (`retry_after`)."""

    def __init__(self, message: str, status_code: int = 500, retry_after: Optional[timedelta] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
