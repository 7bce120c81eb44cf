"""What a suspended endpoint waits for: the leaves of its await point.

V5 and V6 endpoints send flat lists (any of them resumes); V7 endpoints a tree of futures
combined by FIRST_COMPLETED, ALL_COMPLETED, ... Resuming when any leaf arrives is always safe:
an endpoint whose combinator needs more suspends again, at the cost of one more replay.
"""

from __future__ import annotations

import typing

from google.protobuf.message import Message

from restate_pg.protocol import service_protocol_pb2 as pb

Leaves = typing.Tuple[typing.Set[int], typing.Set[typing.Union[int, str]]]


def awaited(message: Message) -> Leaves:
    """The completion ids and signals (indexes and names) a suspension waits on."""
    completions: typing.Set[int] = set()
    signals: typing.Set[typing.Union[int, str]] = set()
    if isinstance(message, pb.SuspensionMessage):
        _leaves(message.awaiting_on, completions, signals)
    else:
        completions.update(message.waiting_completions)  # type: ignore[attr-defined]
        signals.update(message.waiting_signals)  # type: ignore[attr-defined]
        signals.update(message.waiting_named_signals)  # type: ignore[attr-defined]
    return completions, signals


def _leaves(future: pb.Future, completions: typing.Set[int], signals: typing.Set[typing.Union[int, str]]) -> None:
    completions.update(future.waiting_completions)
    signals.update(future.waiting_signals)
    signals.update(future.waiting_named_signals)
    for nested in future.nested_futures:
        _leaves(nested, completions, signals)
