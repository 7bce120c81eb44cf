"""Failures of a process's background work, logged once per outage instead of once per try.

While the database is down or a connection is being replaced, every wake-up NOTIFY, mailbox read,
heartbeat and claim fails, and every one of them is retried (or covered by polling). Logging each
failure, let alone with a traceback, buries the one line that matters. So the first failure of a
kind is a warning, the following ones are debug lines, and the first success afterwards says
that it recovered.
"""

from __future__ import annotations

import asyncio
import logging
import typing


class FailureLog:
    """Remembers which kinds of background work are failing, to log each outage once."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._failing: typing.Dict[str, int] = {}

    def failed(self, kind: str, exc: BaseException, consequence: str = "") -> None:
        """`kind` failed with `exc`; `consequence` says what happens now (retry, polling, ...)."""
        count = self._failing.get(kind, 0)
        self._failing[kind] = count + 1
        level = logging.WARNING if count == 0 else logging.DEBUG
        suffix = f"; {consequence}" if consequence else ""
        self._logger.log(level, "%s failed: %s%s", kind, _describe(exc), suffix)

    def succeeded(self, kind: str) -> None:
        count = self._failing.pop(kind, 0)
        if count:
            self._logger.info("%s works again (after %d failure%s)", kind, count, "" if count == 1 else "s")

    def watch(self, kind: str, task: "asyncio.Future[typing.Any]", consequence: str = "") -> None:
        """Log the outcome of a fire-and-forget `task` (its exception is retrieved here, so
        asyncio never reports it as "never retrieved")."""
        task.add_done_callback(lambda done: self._settle(kind, done, consequence))

    def _settle(self, kind: str, task: "asyncio.Future[typing.Any]", consequence: str) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            self.succeeded(kind)
        else:
            self.failed(kind, exc, consequence)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
