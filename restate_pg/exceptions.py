"""restate-sdk's `restate.exceptions`, so that `restate.exceptions.TerminalError` keeps working."""

from restate_pg.api.errors import (
    RetryableError,
    SdkInternalBaseException,
    SdkInternalException,
    SuspendedException,
    TerminalError,
    is_internal_exception,
)

__all__ = [
    "TerminalError",
    "RetryableError",
    "SdkInternalBaseException",
    "SuspendedException",
    "SdkInternalException",
    "is_internal_exception",
]
