"""Slot accounting: how many attempts a worker runs at once, and how many it keeps waiting.

An attempt that runs holds a slot, out of `limit` (the worker's `concurrency`). An attempt that
waits in memory for a timer or a result gives its slot back and holds a waiting place instead,
out of `max_waiting`: it uses no CPU, and holding a slot would let a burst of sleepers delay all
other work by their sleep. When no waiting place is left, the attempt suspends instead.

New work takes a slot only if one is free (`try_take`); the claim loop asks for at most `free`
invocations and `take`s what it got. Two things may go past the limit for a moment, and only by
work that is already this worker's: invocations claimed while local submissions took slots during
the claim's round trip, and waiting attempts whose result arrived (`stop_waiting`), which run on
rather than wait again for a slot. Every slot taken is released exactly once: `release` refuses to
count below zero, so a double release shows as an error instead of a worker that runs too much.
"""

from __future__ import annotations

import collections
import typing


class SlotError(RuntimeError):
    """A slot or waiting place was given back that was not held: a bug in the accounting."""


class Slots:
    def __init__(self, limit: int, max_waiting: int, on_free: typing.Callable[[], None] = lambda: None) -> None:
        self.limit = limit
        self.max_waiting = max_waiting
        #: Called when a slot frees up on a full worker: the claim loop may be waiting for one.
        self.on_free = on_free
        self.active = 0
        self.waiting = 0

    @property
    def free(self) -> int:
        """Slots free for new work (0 when the worker is at or past its limit)."""
        return max(0, self.limit - self.active)

    def try_take(self) -> bool:
        """Take a slot for new work, if one is free."""
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def take(self, count: int = 1) -> None:
        """Count `count` attempts of work already leased here (claimed, or handed over with an
        object key by an attempt that ends and then releases its own slot)."""
        if count < 0:
            raise SlotError(f"cannot take {count} slots")
        self.active += count

    def release(self) -> None:
        """An attempt ended, or work that took a slot will not run here."""
        if self.active <= 0:
            raise SlotError("a slot was released that was not taken")
        self.active -= 1
        if self.active == self.limit - 1:
            self.on_free()

    def start_waiting(self) -> bool:
        """A running attempt waits in memory: its slot becomes a waiting place. False, and nothing
        changes, when every waiting place is taken (the attempt should suspend instead)."""
        if self.waiting >= self.max_waiting:
            return False
        self.waiting += 1
        self.release()
        return True

    def stop_waiting(self) -> None:
        """A waiting attempt runs again: its waiting place becomes a slot (even past the limit:
        its result is there, and it is already this worker's work)."""
        if self.waiting <= 0:
            raise SlotError("a waiting place was given back that was not taken")
        self.waiting -= 1
        self.active += 1


class RunQueue:
    """Sends leased to this worker at submission while every slot was taken, started in order as
    slots free up.

    Without it a send beyond the limit went to the database unleased, and a claim (a statement
    and a commit of its own, then a load) fetched it back: under a burst of sends, the worker then
    spent as much on claiming as on running. Queued here, it is leased by its own submission's
    transaction, held by this worker (its heartbeat keeps the lease), and started without another
    round trip. Only sends queue (no caller waits in this process), at most `limit` of them; past
    that, a submission goes to the database as before. If the process dies, their leases expire
    and other workers take them over, as for attempts that were running."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: Reserved at submission (leased by it), not started yet.
        self._reserved: typing.Set[str] = set()
        #: Submitted and leased, in the order their submissions committed, with their eager state.
        self._ready: typing.Deque[typing.Tuple[typing.Any, typing.Optional[typing.Dict[str, bytes]]]] = collections.deque()

    def __len__(self) -> int:
        return len(self._reserved)

    @property
    def held(self) -> typing.AbstractSet[str]:
        return self._reserved

    def reserve(self, invocation_id: str) -> bool:
        """A place for a send about to be submitted; False when the queue is full."""
        if len(self._reserved) >= self.limit:
            return False
        self._reserved.add(invocation_id)
        return True

    def cancel(self, invocation_id: str) -> bool:
        """Give back the place of a send that will not run here (its submission failed, or was a
        duplicate); False if it held none."""
        if invocation_id not in self._reserved:
            return False
        self._reserved.discard(invocation_id)
        return True

    def push(self, record: typing.Any, state: typing.Optional[typing.Dict[str, bytes]]) -> None:
        """Its submission committed, leasing it here: it starts when a slot frees up."""
        self._ready.append((record, state))

    def startable(self, slots: Slots) -> typing.Iterator[typing.Tuple[typing.Any, typing.Optional[typing.Dict[str, bytes]]]]:
        """The queued sends that free slots let start now, each with its slot taken."""
        while self._ready and slots.try_take():
            record, state = self._ready.popleft()
            self._reserved.discard(record.id)
            yield record, state
