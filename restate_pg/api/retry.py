"""Retry settings: `InvocationRetryPolicy` for whole invocations, `RunOptions` for one `ctx.run`."""

from __future__ import annotations

import random
import typing
from dataclasses import dataclass
from datetime import timedelta

from restate_pg.api.serde import DefaultSerde, Serde

T = typing.TypeVar("T")


@dataclass
class InvocationRetryPolicy:
    """How a failing invocation is retried; unset fields take Restate's defaults.

    `max_attempts` counts the first attempt. When they are used up the invocation is paused
    (resumable by an operator) or killed (completed with the last error), per `on_max_attempts`.
    """

    initial_interval: typing.Optional[timedelta] = None
    exponentiation_factor: typing.Optional[float] = None
    max_interval: typing.Optional[timedelta] = None
    max_attempts: typing.Optional[int] = None
    on_max_attempts: typing.Optional[typing.Literal["pause", "kill"]] = None


@dataclass(frozen=True)
class RetrySchedule:
    """An `InvocationRetryPolicy` with every field resolved (handler > service > defaults)."""

    initial_interval: float = 0.5
    factor: float = 2.0
    max_interval: float = 60.0
    max_attempts: typing.Optional[int] = 70
    on_max_attempts: str = "pause"

    @classmethod
    def resolve(cls, *policies: typing.Optional[InvocationRetryPolicy]) -> "RetrySchedule":
        values: dict[str, typing.Any] = {}
        for policy in reversed([p for p in policies if p is not None]):  # most specific wins
            if policy.initial_interval is not None:
                values["initial_interval"] = policy.initial_interval.total_seconds()
            if policy.exponentiation_factor is not None:
                values["factor"] = float(policy.exponentiation_factor)
            if policy.max_interval is not None:
                values["max_interval"] = policy.max_interval.total_seconds()
            if policy.max_attempts is not None:
                values["max_attempts"] = max(1, int(policy.max_attempts))
            if policy.on_max_attempts is not None:
                values["on_max_attempts"] = policy.on_max_attempts
        return cls(**values)

    def exhausted(self, attempts_made: int) -> bool:
        return self.max_attempts is not None and attempts_made >= self.max_attempts

    def delay(self, retry_number: int) -> float:
        """Seconds before retry `retry_number` (1-based), with up to +30% jitter (at least 3 ms)."""
        base = min(self.max_interval, self.initial_interval * self.factor ** max(0, retry_number - 1))
        return base + max(0.003, random.uniform(0, 0.3 * base))


@dataclass
class RunOptions(typing.Generic[T]):
    """Options of `ctx.run_typed`.

    Without any retry option a failing closure fails the attempt and the whole invocation is
    retried. With one, the closure is retried in place (50 ms, x2, at most 10 s between tries)
    until `max_attempts` or `max_duration` is used up, then the run fails with a TerminalError.
    """

    serde: Serde[T] = DefaultSerde()  # a shared default, as restate-sdk's: DefaultSerde keeps no state
    type_hint: typing.Optional[typing.Type[T]] = None
    max_attempts: typing.Optional[int] = None
    max_duration: typing.Optional[timedelta] = None
    initial_retry_interval: typing.Optional[timedelta] = None
    max_retry_interval: typing.Optional[timedelta] = None
    retry_interval_factor: typing.Optional[float] = None
    max_retry_duration: typing.Optional[timedelta] = None  # deprecated alias of max_duration

    def retries_in_place(self) -> bool:
        return any(
            v is not None
            for v in (
                self.max_attempts,
                self.max_duration,
                self.initial_retry_interval,
                self.max_retry_interval,
                self.retry_interval_factor,
                self.max_retry_duration,
            )
        )
