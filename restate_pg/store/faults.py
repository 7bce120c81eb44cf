"""Injected failures at the store boundary, for fault-injection tests and `python -m bench.faults`.

A statement can fail in two ways that matter to recovery: before it reaches the server (nothing
happened) or after the server committed it (everything happened, but the caller never heard). A
real lost connection produces both; this module produces either on demand, by the name of the
operation, so that every row of the table in docs/invocation-lifecycle.md ("a connection lost
before, during or after a commit") can be tested deterministically.

It is off unless asked for: the worker reads `RESTATE_PG_FAULTS` at start-up, and tests pass a
`FaultPlan` to the store directly. The format is

    <operation>:<when>=<chance>[,<operation>:<when>=<chance>...][;seed=<n>]

where `<when>` is `before` or `after`, and `<chance>` is a probability (`0.05`) or `x<n>`: fail
the first n times only. Operations are named after the statement or request they run:
`claim_tasks`, `load_invocations`, `read_mailbox`, `heartbeat`, `reap_workers`, `notify`, ... for
single statements (the name in their SQL's first comment), and `flush`, `submit`, `resolve`,
`cancel`, `kill` for requests of `apply()`.
"""

from __future__ import annotations

import os
import random
import re
import typing
from dataclasses import dataclass, field

import psycopg

from restate_pg.core.errors import StoreUnavailable

#: The environment variable a worker process reads its fault plan from.
FAULTS_ENV = "RESTATE_PG_FAULTS"

WHEN = ("before", "after")

_STATEMENT_NAME = re.compile(r"^\s*--\s*([a-z_]+):", re.MULTILINE)


class InjectedFault(psycopg.OperationalError, StoreUnavailable):
    """A failure made on purpose; to the code under test it is a lost connection: inside the
    store the driver's error, above it the store's (`store.errors.translate` lets it through as
    it is, so that a test can still tell an injected fault from a real one)."""


@dataclass
class _Rule:
    chance: float = 0.0
    remaining: typing.Optional[int] = None  # "x<n>": fail this many more times, then never

    def fires(self, rng: random.Random) -> bool:
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True
        return rng.random() < self.chance


@dataclass
class FaultPlan:
    """Which operations fail, when, and how often; and how many times each one did."""

    rules: typing.Dict[typing.Tuple[str, str], _Rule] = field(default_factory=dict)
    seed: int = 0
    injected: typing.Dict[typing.Tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def parse(cls, spec: str) -> "FaultPlan":
        """Read the `RESTATE_PG_FAULTS` format; ValueError names what is wrong."""
        rules_part, _, options = spec.partition(";")
        seed = 0
        for option in filter(None, (o.strip() for o in options.split(";"))):
            name, _, value = option.partition("=")
            if name.strip() != "seed" or not value.strip().lstrip("-").isdigit():
                raise ValueError(f"{FAULTS_ENV}: unknown option {option!r} (expected seed=<integer>)")
            seed = int(value)
        rules: typing.Dict[typing.Tuple[str, str], _Rule] = {}
        for item in filter(None, (i.strip() for i in rules_part.split(","))):
            target, _, chance = item.partition("=")
            operation, _, when = target.partition(":")
            if not operation or when not in WHEN or not chance:
                raise ValueError(f"{FAULTS_ENV}: {item!r} is not <operation>:before|after=<chance>")
            rules[(operation.strip(), when)] = _parse_chance(item, chance.strip())
        return cls(rules, seed)

    @classmethod
    def from_env(cls) -> typing.Optional["FaultPlan"]:
        spec = os.environ.get(FAULTS_ENV, "").strip()
        return cls.parse(spec) if spec else None

    def check(self, operation: str, when: str) -> None:
        """Raise `InjectedFault` if `operation` is to fail at this point."""
        rule = self.rules.get((operation, when))
        if rule is not None and rule.fires(self._rng):
            self.injected[(operation, when)] = self.injected.get((operation, when), 0) + 1
            raise InjectedFault(f"injected fault: connection lost {when} {operation}")


def _parse_chance(item: str, chance: str) -> _Rule:
    if chance.startswith("x") and chance[1:].isdigit():
        return _Rule(remaining=int(chance[1:]))
    try:
        value = float(chance)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{FAULTS_ENV}: {item!r}: the chance is a probability from 0 to 1, or x<count>")
    return _Rule(chance=value)


def statement_name(sql: str) -> str:
    """The name a statement of queries.py gives itself in its first comment ("" if none)."""
    match = _STATEMENT_NAME.search(sql)
    return match.group(1) if match else ""


def request_kinds(bodies: typing.Iterable[typing.Mapping[str, typing.Any]]) -> typing.List[str]:
    """The kinds of the `apply()` requests of a group (flush, submit, ...), each once, in order."""
    kinds: typing.List[str] = []
    for body in bodies:
        kind = next(iter(body), "")
        if kind not in kinds:
            kinds.append(kind)
    return kinds
