"""Input that PostgreSQL cannot hold is refused where it enters, naming the field.

PostgreSQL's `text` and `jsonb` columns cannot hold the NUL character (U+0000): psycopg refuses
a `text` parameter holding one before sending it ("PostgreSQL text fields cannot contain NUL"),
the server a `jsonb` one holding the JSON escape `\\u0000` ("unsupported Unicode escape
sequence", SQLSTATE 22P05), and text that reaches it by another way ("invalid byte sequence",
22021). Let through, such a value costs a request a 500 (or, on an operator's command, a
traceback) after work has started; in a SQL query text libpq even cuts it at the NUL. So the
ingress, the admin API, the client and the command line check every string they store or look
up with `check_text` / `check_json` first, and answer `InvalidInput` as a 400 (a `ValueError` for
the client, one error line for the command line). Bytes stored as `bytea` (a handler's input, an
awakeable's value) may hold anything and are not checked.

`is_unstorable` (the store's: `store.errors`) recognizes the database's own refusal, for the
exception handlers' safety net: a value that slipped past the checks still gets a 400, never a 500.
"""

from __future__ import annotations

import typing

from restate_pg.core.errors import RestatePgError
from restate_pg.store.errors import is_unstorable

__all__ = ["UNSTORABLE", "InvalidInput", "check_headers", "check_json", "check_text", "is_unstorable"]

NUL = "\x00"
_WHY = "it contains a NUL character (\\u0000), which PostgreSQL cannot store"
#: The answer of the safety net, which cannot tell which field held the NUL.
UNSTORABLE = "bad request: a value contains a NUL character (\\u0000), which PostgreSQL cannot store"


class InvalidInput(RestatePgError, ValueError):
    """A request value refused before it reaches the database; `status` is the HTTP answer.

    A `ValueError`, so that the client's callers catch it as they catch other bad arguments, and
    a `RestatePgError`, so that the command line reports it in one line.
    """

    status = 400

    def __init__(self, field: str, reason: str = _WHY) -> None:
        self.field = field
        self.message = f"bad {field}: {reason}"
        super().__init__(self.message)


S = typing.TypeVar("S", bound=typing.Optional[str])


def check_text(field: str, value: S) -> S:
    """`value` unchanged (None passes), or InvalidInput naming `field` if it holds a NUL."""
    if value is not None and NUL in value:
        raise InvalidInput(field)
    return value


def check_headers(headers: typing.Optional[typing.Mapping[str, str]]) -> None:
    """Header names and values kept with an invocation (`jsonb`)."""
    for name, value in (headers or {}).items():
        check_text("header name", name)
        check_text(f"header {name}", value)


def check_json(value: typing.Any, path: str = "", opaque: typing.Collection[str] = ()) -> None:
    """Every string of a decoded JSON document, object keys included; the field named in the
    error is its path (`new_state.count`, `headers.x-id`, `ids[2]`). Top-level fields listed in
    `opaque` are skipped: they are stored as bytes (a cron job's `input`)."""
    if isinstance(value, str):
        check_text(f"field '{path}'" if path else "body", value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and NUL in key:
                raise InvalidInput(f"field name in '{path}'" if path else "field name")
            if not path and key in opaque:
                continue
            check_json(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{path}[{index}]")
