"""The error catalogue shared by every layer.

Two families: `RestatePgError`s are conditions a user is expected to fix, each with a message
written to be shown as is, on one line (the CLI prints `restate-pg: error: <message>` instead of a
traceback); `SdkInternalBaseException`s are the runtime's control flow, raised at an await in
handler code and never meant to be caught there. restate-sdk's names for the latter are
re-exported by `restate_pg.api.errors` and `restate_pg.exceptions`.
"""

from __future__ import annotations

import typing

__all__ = [
    "DatabaseUnavailable",
    "Fenced",
    "JournalConflict",
    "RestatePgError",
    "SchemaNotMigrated",
    "SdkInternalBaseException",
    "SdkInternalException",
    "StoreUnavailable",
    "SuspendedException",
    "Unstorable",
    "ValueRefused",
    "is_internal_exception",
]


class RestatePgError(Exception):
    """Base class of the errors restate-pg reports to its users."""


class DatabaseUnavailable(RestatePgError):
    """PostgreSQL cannot be reached, or refused the connection (wrong host, credentials, database)."""


class StoreUnavailable(DatabaseUnavailable):
    """The store lost PostgreSQL in the middle of its work: a connection broke, the server shut
    down, or no pooled connection came free in time. Raised by the store in place of the
    driver's error, so that no layer above it needs to know the driver; whether the work it was
    doing committed is unknown (see docs/invocation-lifecycle.md for how each step recovers)."""


class ValueRefused(RestatePgError):
    """PostgreSQL refused a value the store sent it (a data exception, SQLSTATE class 22): a
    timestamp beyond its range, say. `sqlstate` says which, when the server said so."""

    def __init__(self, message: str, sqlstate: typing.Optional[str] = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class Unstorable(ValueRefused):
    """A value holds a character PostgreSQL cannot store (a NUL in text or jsonb): the request
    is at fault, and nothing was stored (see `restate_pg.validation`)."""


class JournalConflict(Exception):
    """A flush wrote a journal entry that is already there: an earlier write of the same
    attempt, whose answer was lost with its connection, had committed after all, so the
    attempt's idea of its journal is behind. The next attempt replays what was written."""


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
