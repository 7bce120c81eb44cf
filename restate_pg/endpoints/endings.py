"""How an exchange with an endpoint ended: what the attempt then commits."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from restate_pg.protocol.errors import PROTOCOL_VIOLATION

__all__ = ["PROTOCOL_VIOLATION", "Ended", "Ending", "Failed", "Suspended"]


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
