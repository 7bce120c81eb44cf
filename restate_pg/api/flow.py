"""What a request says about flow control: its scope, limit key, priority and debounce key,
checked as Restate checks scopes and limit keys (docs/flow-control.md).

Every way of starting an invocation (the ingress, a handler's call or send, the clients, cron,
transactional enqueue) builds one `FlowOptions`, so that the rules see the same values however
the invocation arrived.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from restate_pg.api.errors import TerminalError

#: Restate's restricted values: 1 to 36 characters of [a-zA-Z0-9_.-].
MAX_PART = 36


def _is_part(value: str) -> bool:
    return 1 <= len(value) <= MAX_PART and all(c.isascii() and (c.isalnum() or c in "_.-") for c in value)


def check_scope(scope: str) -> str:
    """Restate's rule for a scope; anything else is a terminal 400."""
    if not isinstance(scope, str) or not _is_part(scope):
        raise TerminalError(f"invalid scope {scope!r}: use 1 to 36 characters of [a-zA-Z0-9_.-]", 400)
    return scope


def check_limit_key(limit_key: str) -> str:
    """A limit key: one or two parts (`tenant`, `tenant/user`), each a restricted value."""
    parts = limit_key.split("/") if isinstance(limit_key, str) else []
    if not 1 <= len(parts) <= 2 or not all(_is_part(p) for p in parts):
        raise TerminalError(
            f"invalid limit key {limit_key!r}: one or two parts separated by '/', each 1 to 36 characters of [a-zA-Z0-9_.-]", 400)
    return limit_key


@dataclass(frozen=True)
class FlowOptions:
    """A request's flow-control values; `check_backlog` for submissions that may be refused
    (from outside: the ingress, clients), not for calls a handler has already journaled."""

    scope: typing.Optional[str] = None
    limit_key: typing.Optional[str] = None
    priority: int = 0
    debounce_key: typing.Optional[str] = None
    check_backlog: bool = False

    def __post_init__(self) -> None:
        if self.scope is not None:
            check_scope(self.scope)
        if self.limit_key is not None:
            if self.scope is None:
                raise TerminalError("a limit key needs a scope", 400)
            check_limit_key(self.limit_key)
        if not isinstance(self.priority, int) or isinstance(self.priority, bool) or not -1000 <= self.priority <= 1000:
            raise TerminalError(f"invalid priority {self.priority!r}: an integer from -1000 to 1000", 400)
        if self.debounce_key is not None and (not isinstance(self.debounce_key, str) or not 1 <= len(self.debounce_key) <= 256):
            raise TerminalError("invalid debounce key: 1 to 256 characters", 400)
