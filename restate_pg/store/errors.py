"""psycopg's errors, translated once, at the store boundary, into the catalogue of `core.errors`.

Every layer above the store reacts to a few conditions of the database, never to the driver:
PostgreSQL went away (`StoreUnavailable`, a `DatabaseUnavailable`: a transport answers 503, a
worker hands its attempt back), the fence refused a write (`Fenced`: the attempt lost its lease),
a value could not be stored (`ValueRefused`, `Unstorable`: the request is at fault), and a flush
found its journal entries written already (`JournalConflict`). Anything else is a bug, and keeps
the driver's error, whose message says what went wrong.

Only this package and `restate_pg.testing.database` import psycopg.
"""

from __future__ import annotations

import typing

import psycopg

from restate_pg.core.errors import Fenced, JournalConflict, StoreUnavailable, Unstorable, ValueRefused

#: SQLSTATE raised by `fence()` (sql/functions/fence.sql) when an attempt has lost its lease.
FENCED_SQLSTATE = "RPG01"

__all__ = [
    "UNAVAILABLE_CLASSES", "is_fenced", "is_schema_missing", "is_unstorable", "raise_translated", "translate", "translated",
]

#: SQLSTATE classes that mean the server, not the statement, is the problem: connection
#: exceptions (08), insufficient resources (53), operator intervention (57P: shut down, starting).
UNAVAILABLE_CLASSES = ("08", "53", "57P")
#: SQLSTATEs of a value PostgreSQL cannot store: a NUL in text (character_not_in_repertoire),
#: `\u0000` in jsonb (untranslatable_character).
_UNSTORABLE_SQLSTATES = ("22021", "22P05")
#: What psycopg says when it refuses a text parameter with a NUL itself (it has no SQLSTATE).
_PSYCOPG_NUL = "cannot contain NUL"
#: SQLSTATEs of a statement that names what a migration creates and finds it missing: the schema
#: (invalid_schema_name), a table (undefined_table), a server-side function (undefined_function).
_MISSING_SQLSTATES = ("3F000", "42P01", "42883")
#: The primary key of the journal: a flush that hits it repeats a write that had committed.
_JOURNAL_KEY = "journal_pkey"


def translate(exc: BaseException) -> BaseException:
    """The `core.errors` condition `exc` means, or `exc` itself (a bug, or already translated)."""
    if not isinstance(exc, psycopg.Error) or isinstance(exc, StoreUnavailable):
        return exc  # an injected fault (store.faults) is both, and stays what it is
    state = getattr(exc, "sqlstate", None) or ""
    if state == FENCED_SQLSTATE:
        return Fenced(_message(exc))
    if isinstance(exc, psycopg.OperationalError) or state.startswith(UNAVAILABLE_CLASSES):
        return StoreUnavailable(f"the database is unavailable: {_message(exc)}")
    if isinstance(exc, psycopg.DataError):
        kind = Unstorable if is_unstorable(exc) else ValueRefused
        return kind(_message(exc), state or None)
    if isinstance(exc, psycopg.errors.UniqueViolation) and exc.diag.constraint_name == _JOURNAL_KEY:
        return JournalConflict(_message(exc))
    return exc


def raise_translated(exc: BaseException) -> None:
    """Raise the condition `exc` means, if it means one (else return: the caller re-raises `exc`).
    The driver's error is kept as the cause, for the logs; a fence's refusal is its own explanation."""
    condition = translate(exc)
    if condition is exc:
        return
    if isinstance(condition, Fenced):
        raise condition from None
    raise condition from exc


class _Translated:
    """`with translated():` runs its block with psycopg's errors translated. A class rather than a
    generator-based context manager: it wraps every statement of the hot path, where the
    generator's set-up cost several microseconds per call."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: typing.Any, exc: typing.Optional[BaseException], tb: typing.Any) -> bool:
        if exc is not None:
            raise_translated(exc)
        return False


_TRANSLATED = _Translated()


def translated() -> _Translated:
    """A context manager: its block runs with psycopg's errors translated (see `translate`)."""
    return _TRANSLATED


def is_fenced(exc: BaseException) -> bool:
    """Whether `exc`, or the driver error a framework wrapped in it (SQLAlchemy's `orig`, a
    cause), is the fence's refusal: a database step on the application's connection sees it so."""
    seen: typing.Set[int] = set()
    current: typing.Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, Fenced) or getattr(current, "sqlstate", None) == FENCED_SQLSTATE:
            return True
        seen.add(id(current))
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return False


def is_schema_missing(exc: BaseException) -> bool:
    """Whether `exc`, or the driver error a framework wrapped in it (SQLAlchemy's `orig`), says
    that a schema, table or function restate-pg's migrations create does not exist: a statement
    of ours run on a database that was never migrated (`enqueue` on the application's connection)."""
    orig = getattr(exc, "orig", None)
    driver_error = orig if isinstance(orig, psycopg.Error) else exc
    return isinstance(driver_error, psycopg.Error) and getattr(driver_error, "sqlstate", None) in _MISSING_SQLSTATES


def is_unstorable(exc: BaseException) -> bool:
    """Whether `exc` is PostgreSQL (or psycopg, before sending) refusing a value it cannot store:
    as translated by the store, or as the driver raised it on a connection of the application."""
    if isinstance(exc, Unstorable):
        return True
    if not isinstance(exc, psycopg.DataError):
        return False
    return exc.sqlstate in _UNSTORABLE_SQLSTATES or (exc.sqlstate is None and _PSYCOPG_NUL in str(exc))


def _message(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    text = (primary or str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
