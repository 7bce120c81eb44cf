"""Options of `ctx.run_in_transaction`, the exactly-once database step."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from restate_pg.api.serde import DefaultSerde, Serde

T = typing.TypeVar("T")


@dataclass(frozen=True)
class TransactionOptions(typing.Generic[T]):
    """How a database step runs and how its result is journaled.

    `session` chooses the connection the step's transaction runs on, and what the action gets as
    its first argument:

    - None (the default): a connection of its own to restate-pg's database; a coroutine function
      gets a `psycopg.AsyncConnection`, a plain function a `psycopg.Connection` (in a thread);
    - a SQLAlchemy `sessionmaker` (plain function, in a thread) or `async_sessionmaker`
      (coroutine function), bound to an engine on that database: the action gets a session;
    - a `restate_pg.runtime.transaction.StepBinding`, such as the one `restate_pg.contrib.django`
      uses to run the step on Django's connection.

    Unlike `RunOptions`, there are no in-place retries: an exception other than a TerminalError
    rolls the step back and fails the attempt, which is retried by the invocation's policy.
    """

    serde: Serde[T] = field(default_factory=DefaultSerde)
    type_hint: typing.Optional[typing.Type[T]] = None
    session: typing.Any = None
