"""How an exchange with an endpoint ended: what the attempt then commits."""

from __future__ import annotations

import typing
from dataclasses import dataclass

#: Restate's code for an endpoint that misbehaves (no terminal message, bad frames).
PROTOCOL_VIOLATION = 571


@dataclass(frozen=True)
class Ended:
    """The endpoint sent its output and EndMessage."""


@dataclass(frozen=True)
class Suspended:
    """The endpoint waits for one of these completion ids or signals (indexes, names)."""

    completions: typing.FrozenSet[int]
    signals: typing.FrozenSet[typing.Union[int, str]]


@dataclass(frozen=True)
class Failed:
    """The attempt failed: retried per the retry policy (or paused, or failed, per `behavior`)."""

    code: int
    message: str
    retry_after_ms: typing.Optional[int] = None
    behavior: str = "retry"  # retry | pause | fail


Ending = typing.Union[Ended, Suspended, Failed]
