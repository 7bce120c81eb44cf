"""Slot accounting, without PostgreSQL: the `Slots` invariant, and the engine's paths that take
and release slots (claimed tasks that cannot start, attempts that crash, submissions that fail)."""

from __future__ import annotations

import asyncio
import random
import types
import typing
from datetime import datetime, timezone

import pytest

from restate_pg.core.records import ClaimedTask, Lease
from restate_pg.runtime.submission import new_submission
from restate_pg.worker.claims import start_claimed
from restate_pg.worker.engine import Engine
from restate_pg.worker.slots import RunQueue, SlotError, Slots
from tests.apps import vault

UNUSED_DATABASE = "postgresql://nobody@127.0.0.1:1/never-opened"


def test_slots_stay_between_zero_and_the_limit_whatever_the_order() -> None:
    rng = random.Random(12)
    for _ in range(200):
        freed: typing.List[int] = []
        slots = Slots(limit=3, max_waiting=2, on_free=lambda: freed.append(slots.active))
        running = waiting = 0  # what the "attempts" of this model hold
        for _ in range(100):
            step = rng.choice(["take", "release", "wait", "resume"])
            if step == "take":
                took = slots.try_take()
                assert took == (running < 3)
                running += took
            elif step == "release" and running:
                slots.release()
                running -= 1
            elif step == "wait" and running:
                if slots.start_waiting():
                    running, waiting = running - 1, waiting + 1
                else:
                    assert waiting == 2
            elif step == "resume" and waiting and running < 3:  # resuming past the limit: see below
                slots.stop_waiting()
                running, waiting = running + 1, waiting - 1
            assert (slots.active, slots.waiting) == (running, waiting)
            assert 0 <= slots.active <= slots.limit and 0 <= slots.waiting <= slots.max_waiting
            assert slots.free == slots.limit - slots.active
        assert all(active == slots.limit - 1 for active in freed)  # told when a full worker frees one


def test_releasing_what_was_not_taken_is_refused() -> None:
    slots = Slots(limit=1, max_waiting=1)
    with pytest.raises(SlotError):
        slots.release()
    with pytest.raises(SlotError):
        slots.stop_waiting()
    assert slots.try_take() and not slots.try_take()
    slots.release()
    with pytest.raises(SlotError):
        slots.release()  # a second release of the same slot
    assert (slots.active, slots.waiting) == (0, 0)


def test_a_full_waiting_room_changes_nothing() -> None:
    slots = Slots(limit=2, max_waiting=1)
    slots.take(2)
    assert slots.start_waiting()
    assert not slots.start_waiting()
    assert (slots.active, slots.waiting) == (1, 1)


def test_a_waiting_attempt_whose_result_came_resumes_even_on_a_full_worker() -> None:
    slots = Slots(limit=1, max_waiting=1)
    assert slots.try_take() and slots.start_waiting()
    assert slots.try_take()  # its slot went to other work meanwhile
    slots.stop_waiting()
    assert slots.active == 2 and slots.free == 0 and not slots.try_take()
    slots.release()
    slots.release()
    assert slots.active == 0


class FakeStore:
    """Stands in for the store in the engine's paths that need no answer from it."""

    def __init__(self, *, load_error: typing.Optional[Exception] = None, submit_error: typing.Optional[Exception] = None) -> None:
        self.schema = "restate"
        self.load_error = load_error
        self.submit_error = submit_error
        self.handed_back: typing.List[str] = []

    async def load(self, ids: typing.Sequence[str]) -> typing.Dict[str, typing.Any]:
        if self.load_error is not None:
            raise self.load_error
        return {}  # gone since the claim: handed back

    async def flush(self, lease: Lease, batch: typing.Any) -> None:
        self.handed_back.append(lease.invocation_id)

    async def submit(self, sub: typing.Any) -> typing.Any:
        assert self.submit_error is not None
        raise self.submit_error

    async def notify(self, channel: str, payload: typing.Any) -> None:
        pass


def engine_with(store: FakeStore, concurrency: int = 4) -> Engine:
    engine = Engine(vault.app, UNUSED_DATABASE, concurrency=concurrency, poll_only=True)
    engine.store = store  # type: ignore[assignment]
    engine.signals.store = store  # type: ignore[assignment]
    engine.submissions.store = store  # type: ignore[assignment]
    return engine


def claimed(*ids: str) -> typing.List[ClaimedTask]:
    now = datetime.now(timezone.utc)
    return [ClaimedTask(Lease(i, "me", 1, 1), 0, "invoked", now) for i in ids]


async def settle(engine: Engine) -> None:
    while engine._tasks:
        await asyncio.wait(list(engine._tasks))


@pytest.mark.parametrize("load_error", [None, RuntimeError("the load failed")])
async def test_claimed_tasks_that_cannot_start_give_their_slot_back_once(load_error: typing.Optional[Exception]) -> None:
    store = FakeStore(load_error=load_error)
    engine = engine_with(store)
    tasks = claimed("inv_1", "inv_2", "inv_3")
    engine.slots.take(len(tasks))
    engine._starting.update(t.lease.invocation_id for t in tasks)
    await start_claimed(engine, tasks)
    await settle(engine)
    assert (engine.slots.active, engine._starting) == (0, set())
    assert sorted(store.handed_back) == ["inv_1", "inv_2", "inv_3"]


@pytest.mark.parametrize("error", [RuntimeError("a bug in the handler's glue"), asyncio.CancelledError()])
async def test_an_attempt_that_ends_badly_releases_its_slot_once(error: BaseException) -> None:
    engine = engine_with(FakeStore())
    engine.release_backoff = (0.0,)
    assert engine.slots.try_take()

    async def run() -> None:
        raise error

    attempt = types.SimpleNamespace(invocation_id="inv_1", lease=Lease("inv_1", "me", 1, 1), run=run)
    engine.launch(attempt)  # type: ignore[arg-type]
    await asyncio.gather(*engine._tasks, return_exceptions=True)
    assert engine.slots.active == 0 and engine._attempts == {}


async def test_a_submission_that_fails_gives_back_the_slot_it_took() -> None:
    engine = engine_with(FakeStore(submit_error=ConnectionError("the database went away")))
    sub = new_submission(vault.app.handler("Vault", "deposit"), "k", b"1", idempotency_key="once")
    with pytest.raises(ConnectionError):
        await engine.submissions.submit(sub, wait=True)
    assert engine.slots.active == 0
    assert engine.results.waiters._waiters == {}


def test_the_run_queue_gives_places_up_to_its_limit_and_starts_sends_in_order_as_slots_free() -> None:
    queue, slots = RunQueue(limit=2), Slots(limit=1, max_waiting=1)
    assert queue.reserve("inv_1") and queue.reserve("inv_2") and not queue.reserve("inv_3")
    assert queue.cancel("inv_2") and not queue.cancel("inv_2")  # its submission failed: the place is free again
    assert queue.reserve("inv_3")
    for invocation_id in ("inv_1", "inv_3"):  # their submissions committed, in this order
        queue.push(types.SimpleNamespace(id=invocation_id), None)
    assert slots.try_take()  # every slot busy: nothing starts
    assert list(queue.startable(slots)) == [] and queue.held == {"inv_1", "inv_3"}
    slots.release()
    assert [record.id for record, _ in queue.startable(slots)] == ["inv_1"]  # one slot, one start
    assert slots.active == 1 and queue.held == {"inv_3"}
    slots.release()
    assert [record.id for record, _ in queue.startable(slots)] == ["inv_3"]
    assert len(queue) == 0


async def test_a_queued_send_whose_submission_fails_gives_back_its_place_not_a_slot() -> None:
    engine = engine_with(FakeStore(submit_error=ConnectionError("the database went away")), concurrency=1)
    engine.slots.take(1)  # the worker's only slot is busy
    probe = new_submission(vault.app.handler("Vault", "deposit"), "k", b"1")
    assert engine.reserve_local(probe) and len(engine.run_queue) == 1  # a send gets a queue place
    engine.release_slot(probe.id)
    assert (engine.slots.active, len(engine.run_queue)) == (1, 0)
    sub = new_submission(vault.app.handler("Vault", "deposit"), "k", b"1")
    with pytest.raises(ConnectionError):
        await engine.submissions.send(sub)
    assert (engine.slots.active, len(engine.run_queue)) == (1, 0)
