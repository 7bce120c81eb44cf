"""Log records that say which invocation they belong to, and handler logs that stay quiet on replay.

While an attempt runs, a context variable holds its invocation's fields; the filters here copy
them onto each record as `restate_invocation_id`, `restate_service`, `restate_handler`,
`restate_key` and `restate_attempt`. A context variable (not the logger) carries them because
one process runs many attempts at once, each in its own asyncio task.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import typing
from datetime import datetime, timezone

import orjson

#: Record attribute -> key in JSON output.
FIELDS: typing.Tuple[typing.Tuple[str, str], ...] = (
    ("restate_invocation_id", "invocation_id"),
    ("restate_service", "service"),
    ("restate_handler", "handler"),
    ("restate_key", "key"),
    ("restate_attempt", "attempt"),
)

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")


class _Current(typing.NamedTuple):
    fields: typing.Dict[str, typing.Any]
    replaying: typing.Callable[[], bool]


_current: contextvars.ContextVar[typing.Optional[_Current]] = contextvars.ContextVar(
    "restate_pg_invocation", default=None
)


def enter(
    invocation_id: str,
    service: str,
    handler: str,
    key: typing.Optional[str],
    attempt: int,
    replaying: typing.Callable[[], bool],
) -> contextvars.Token[typing.Optional[_Current]]:
    """Mark the current task as running an attempt; undo with `leave`."""
    fields = {
        "restate_invocation_id": invocation_id,
        "restate_service": service,
        "restate_handler": handler,
        "restate_key": key,
        "restate_attempt": attempt,
    }
    return _current.set(_Current(fields, replaying))


def leave(token: contextvars.Token[typing.Optional[_Current]]) -> None:
    _current.reset(token)


class InvocationFilter(logging.Filter):
    """Adds the running invocation's fields to every record; lets every record through.

    Put it on a handler to annotate all loggers' records (the CLI does), or on a logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _current.get()
        if current is not None:
            record.__dict__.update(current.fields)
        return True


class RestateLoggingFilter(logging.Filter):
    """restate-sdk's filter: drops records while the handler replays, so that a line is logged
    once per invocation rather than once per attempt; adds the invocation's fields to the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not super().filter(record):
            return False
        current = _current.get()
        if current is None:
            return True
        if current.replaying():
            return False
        record.__dict__.update(current.fields)
        return True


def getLogger(name: typing.Optional[str] = None) -> logging.Logger:  # noqa: N802 - restate-sdk's name
    """`logging.getLogger(name)` with a `RestateLoggingFilter`, as restate-sdk's `getLogger`."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RestateLoggingFilter) for f in logger.filters):
        logger.addFilter(RestateLoggingFilter())
    return logger


def internal_logger(name: str) -> logging.Logger:
    """A restate-pg logger whose records carry the invocation fields (never suppressed)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, InvocationFilter) for f in logger.filters):
        logger.addFilter(InvocationFilter())
    return logger


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the invocation fields when the
    record has them, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: typing.Dict[str, typing.Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        values = record.__dict__
        for attribute, key in FIELDS:
            value = values.get(attribute)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str, log_format: str = "text") -> None:
    """The CLI's logging: records of every logger to stderr, with the invocation fields."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(InvocationFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
