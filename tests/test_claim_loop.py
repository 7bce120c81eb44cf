"""The claim loop asks the database for work only where it has services to run.

`restate-pg dev` with no application (SDK endpoints only) runs the application's claim loop beside
one per endpoint deployment; with no service of its own, its polls (`start_due_scheduled` and
`claim_tasks` every poll interval, then `next_due`) could never find anything, and each cost
PostgreSQL a plan of the claim and the process an event-loop turn of a few hundred microseconds.
Each poll is counted here by a fault injected before its first statement: it fails, as a lost
connection would, and the loop tries again one poll interval later.
"""

from __future__ import annotations

from restate_pg.api.app import App
from restate_pg.store.faults import FaultPlan
from restate_pg.worker.engine import Engine
from tests.apps import kitchen
from tests.support.polling import eventually

POLL = ("start_due_scheduled", "before")


async def test_an_engine_without_services_never_polls_while_one_with_services_does(clean_db):
    idle_plan, busy_plan = FaultPlan.parse("start_due_scheduled:before=1"), FaultPlan.parse("start_due_scheduled:before=1")
    idle = Engine(App([]), clean_db, poll_interval=0.05, pool_size=2, faults=idle_plan)
    busy = Engine(kitchen.app, clean_db, poll_interval=0.05, pool_size=2, faults=busy_plan)
    await idle.start()
    await busy.start()
    try:
        # both loops run on this event loop: five polls of the one are five chances for the other
        await eventually(lambda: busy_plan.injected.get(POLL, 0) >= 5, what="the engine with services polling")
        assert idle_plan.injected == {}
    finally:
        await busy.stop()
        await idle.stop()
