"""Exceptions that handler code raises and sees, with restate-sdk's names and meaning."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional


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


class SdkInternalBaseException(BaseException):
    """Control flow of the runtime (suspension, lost lease). Handler code must not swallow it.

    It derives from BaseException so that `except Exception:` in user code lets it through.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message)


class SuspendedException(SdkInternalBaseException):
    """Raised at an await when the invocation suspends; the attempt ends and is resumed by replay."""

    def __init__(self) -> None:
        super().__init__("invocation suspended")


class SdkInternalException(SdkInternalBaseException):
    """Raised at an await when the attempt must end for an internal reason (for example a lost lease)."""

    def __init__(self, message: str = "attempt aborted") -> None:
        super().__init__(message)


def is_internal_exception(e: BaseException) -> bool:
    """True for exceptions that belong to the runtime and must propagate out of handler code."""
    return isinstance(e, SdkInternalBaseException)
