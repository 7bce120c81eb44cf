"""A handler's completions of other waiters, checked against the types those waiters declared.

`ctx.resolve_awakeable(id, v)` and a workflow promise's `resolve(v)` send `v` to a waiter that may
have declared a type for it (`api/completions.py` says why a value it cannot take is refused
rather than delivered). The declared schema is journaled with the waiter's command, so it is read
through the port just before the flush that would deliver the value, and a refused value is
taken out of the batch:

- a promise completion is not sent; its command is answered with a terminal 400 (journaled like
  any answer), which `await promise.resolve(v)` raises, on replay too;
- an awakeable resolution is not sent either; `resolve_awakeable` is not awaitable and returned
  long ago, so there is no await to raise it at: the resolving invocation ends with that 400 at
  this flush (`ContextCore.refused`), and its CompleteAwakeable entry is journaled with it.

Only waiters known now are checked: a promise whose waiter has not reached its wait takes any
value (the README says so).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from restate_pg.api.completions import Schema, check_completion
from restate_pg.api.inputs import InputRejected
from restate_pg.core.records import Batch, Failure, PromiseCompletion, Resolution
from restate_pg.runtime.port import JournalStore

#: The status a refused value is answered with, as the ingress answers it (400).
REFUSED = 400


@dataclass
class Refusals:
    """What `refuse_mistyped` took out of a batch."""

    #: Answers to refused promise completions, by command.
    promises: typing.Dict[int, Failure] = field(default_factory=dict)
    #: The first refused awakeable resolution's failure, if any.
    awakeable: typing.Optional[Failure] = None


async def refuse_mistyped(store: JournalStore, batch: Batch) -> Refusals:
    """Take the values their waiters could not take out of `batch` (see the module's docstring)."""
    refusals = Refusals()
    if batch.resolutions:
        kept: typing.List[Resolution] = []
        for resolution in batch.resolutions:
            failure = None
            if resolution.failure is None:
                failure = _refusal(resolution.value, [await store.awakeable_schema(resolution)])
            if failure is None:
                kept.append(resolution)
                continue
            refusals.awakeable = refusals.awakeable or failure
            _journal_refusal(batch, resolution, failure)
        batch.resolutions = kept
    if batch.promise_completions and batch.promise_key is not None:
        service, key = batch.promise_key
        completions: typing.List[PromiseCompletion] = []
        for completion in batch.promise_completions:
            failure = None
            if completion.failure is None:
                failure = _refusal(completion.value, await store.promise_schemas(service, key, completion.name))
            if failure is None:
                completions.append(completion)
            else:
                refusals.promises[completion.command_index] = failure
        batch.promise_completions = completions
    return refusals


def _refusal(value: typing.Optional[bytes], schemas: typing.Sequence[typing.Optional[Schema]]) -> typing.Optional[Failure]:
    """Why `value` is refused by one of `schemas`, or None if every one takes it."""
    for schema in schemas:
        try:
            check_completion(value, schema)
        except InputRejected as exc:
            return Failure(REFUSED, exc.message)
    return None


def _journal_refusal(batch: Batch, resolution: Resolution, failure: Failure) -> None:
    """Record `failure` on the CompleteAwakeable entry of `resolution`, so the journal says why
    the waiter was never told."""
    for row in batch.journal:
        if (row.entry_type == "CompleteAwakeable" and row.failure is None and row.value == resolution.value
                and (row.params or {}).get("id") == resolution.awakeable_id):
            row.failure = failure
            return
