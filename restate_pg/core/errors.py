"""The error catalogue shared by every layer.

Two families: `RestatePgError`s are conditions a user is expected to fix, each with a message
written to be shown as is, on one line (the CLI prints `restate-pg: error: <message>` instead of a
traceback); `SdkInternalBaseException`s are the runtime's control flow, raised at an await in
handler code and never meant to be caught there. restate-sdk's names for the latter are
re-exported by `restate_pg.api.errors` and `restate_pg.exceptions`.
"""

from __future__ import annotations

__all__ = [
    "DatabaseUnavailable",
    "Fenced",
    "RestatePgError",
    "SchemaNotMigrated",
    "SdkInternalBaseException",
    "SdkInternalException",
    "SuspendedException",
    "is_internal_exception",
]


class RestatePgError(Exception):
    """Base class of the errors restate-pg reports to its users."""


class DatabaseUnavailable(RestatePgError):
    """PostgreSQL cannot be reached, or refused the connection (wrong host, credentials, database)."""


class SchemaNotMigrated(RestatePgError):
    """The restate-pg schema is missing, or at a revision other than the one this version expects."""


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


class Fenced(SdkInternalException):
    """The attempt lost its lease: another worker owns the invocation now, so nothing it writes counts."""


def is_internal_exception(e: BaseException) -> bool:
    """True for exceptions that belong to the runtime and must propagate out of handler code."""
    return isinstance(e, SdkInternalBaseException)
