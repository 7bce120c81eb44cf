"""What a flush answers to promise and attach commands (and to calls that attached to an existing
invocation), as the result the command gets: kept apart from the journal machine, which journals
it, because the answers' shapes are the store's (`store/sql/functions/flush.sql`).
"""

from __future__ import annotations

import base64
import typing

from restate_pg.core.records import Failure
from restate_pg.runtime.journal import Result


def answer_result(outcome: typing.Any, peek: bool) -> typing.Optional[Result]:
    """The result a flush's answer to a promise or attach command gives, or None if none yet."""
    if isinstance(outcome, Failure):  # refused before the flush (a value its waiters cannot take)
        return Result(None, outcome)
    if outcome == "completed":
        return Result(b"", None)
    if outcome == "already":
        return Result(None, Failure(409, "promise was already completed"))
    if outcome.get("missing"):
        return Result(None, Failure(404, "invocation not found"))
    if outcome.get("completed"):
        code = outcome.get("failure_code")
        if code is not None:
            return Result(None, Failure(code, outcome.get("failure_message") or "", outcome.get("failure_metadata")))
        raw = outcome.get("value")
        return Result(None if raw is None else base64.b64decode(raw), None)
    if peek:
        return Result(None, None)  # not completed yet: peek() answers None
    return None
