"""`select`, `gather`, `wait_completed` and `as_completed` over durable futures.

They behave as restate-sdk's (`restate.asyncio`), and they are deterministic on replay: "which
future completed first" is read from the journal, where every completion has a position, and never
from the order in which asyncio happened to wake this process. And "which futures are done" counts
only the completions the handler has reached, one at a time in journal order as far as its awaits
needed (`JournalMachine.reveal`), never the ones journaled after: a replay, which finds more
recorded, picks the same winner and reports the same futures done as the first execution did.
"""

from __future__ import annotations

import typing

from restate_pg.api.errors import TerminalError
from restate_pg.runtime.futures import DurableFuture

if typing.TYPE_CHECKING:
    from restate_pg.runtime.core import ContextCore

__all__ = ["as_completed", "gather", "select", "wait_completed"]


def _context_of(futures: typing.Sequence[typing.Any]) -> typing.Optional["ContextCore"]:
    ctx = None
    for future in futures:
        if not isinstance(future, DurableFuture):
            raise TerminalError(f"combinators accept durable futures of a restate context, not {type(future).__name__}")
        if ctx is None:
            ctx = future._ctx
        elif future._ctx is not ctx:
            raise TerminalError("all futures given to a combinator must come from the same context")
    return ctx


def _split(
    ctx: "ContextCore", futures: typing.Sequence[DurableFuture[typing.Any]]
) -> typing.Tuple[typing.List[DurableFuture[typing.Any]], typing.List[DurableFuture[typing.Any]]]:
    """The completed futures the handler has reached, in journal order, and the others (pending)
    in the order given."""
    completed = [(ctx.completion_position(f), i, f) for i, f in enumerate(futures)]
    done = sorted((position, i, f) for position, i, f in completed if position is not None)
    pending = [f for position, _, f in completed if position is None]
    return [f for _, _, f in done], pending


async def wait_completed(
    *args: DurableFuture[typing.Any],
) -> typing.Tuple[typing.List[DurableFuture[typing.Any]], typing.List[DurableFuture[typing.Any]]]:
    """Wait until at least one future completed; return (completed, pending).

    Returns at once if one already completed. Completed futures come in completion order."""
    futures = args  # restate-sdk's parameter name
    ctx = _context_of(futures)
    if ctx is None:
        return [], []
    done, pending = _split(ctx, futures)
    if not done:
        await ctx.wait_any(futures)
        done, pending = _split(ctx, futures)
    return done, pending


async def gather(*futures: DurableFuture[typing.Any]) -> typing.List[DurableFuture[typing.Any]]:
    """Wait until every future completed, successfully or not; return the futures themselves
    (await each for its value or its error), in the order given."""
    pending = list(futures)
    while pending:
        _, pending = await wait_completed(*pending)
    return list(futures)


async def select(**kws: DurableFuture[typing.Any]) -> typing.List[typing.Any]:
    """Wait for the first future to complete; return `[name, value]`, or raise its TerminalError.

    Made for `match`: `match await restate.select(result=call, timeout=ctx.sleep(...))`."""
    if not kws:
        raise ValueError("select needs at least one future")
    names = {id(future): name for name, future in kws.items()}
    done, _ = await wait_completed(*kws.values())
    winner = done[0]
    return [names[id(winner)], await winner]


async def as_completed(*futures: DurableFuture[typing.Any]) -> typing.AsyncIterator[DurableFuture[typing.Any]]:
    """Yield the futures as they complete, in completion order."""
    pending = list(futures)
    while pending:
        done, pending = await wait_completed(*pending)
        for future in done:
            yield future
