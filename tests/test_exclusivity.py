"""An exclusive handler runs only while its invocation holds its object key, on every path that
starts an attempt, checked from PostgreSQL's side (`tests.support.exclusivity`): first claim,
delayed start, retry after backoff, recovery from a dead worker, resume after pause,
restart-as-new, a key handed over by a cancelled holder, and by a killed one."""

from __future__ import annotations

import typing

import psycopg
import pytest

from restate_pg.services.outcomes import CancelSignalled, Killed, Paused, Resolved, Resumed
from restate_pg.store.driver import Store
from tests.support import exclusivity
from tests.support.polling import eventually
from tests.test_recovery import hold_key, output_of, status_of, submission, worker


@pytest.fixture
def monitored(clean_db: str) -> typing.Iterator[str]:
    exclusivity.install(clean_db)
    yield clean_db
    exclusivity.uninstall(clean_db)


async def completed(store: Store, invocation_id: str) -> None:
    assert await eventually(lambda: status_of(store, invocation_id), "completed", timeout_s=20) == "completed"


async def test_every_path_that_starts_an_exclusive_attempt_holds_the_key(monitored):
    ingress = Store(monitored)
    await ingress.open()
    engine = worker(monitored)
    await engine.start()
    started: typing.Dict[str, typing.Tuple[str, int]] = {}  # path -> (invocation, leases at least)
    try:
        # first claim: submitted by a process that does not run it
        first = submission("deposit", "first", 1)
        await ingress.submit(first)
        await completed(ingress, first.id)
        started["first claim"] = (first.id, 1)

        # a delayed send whose time has come
        delayed = submission("deposit", "delayed", 2, delay_ms=50)
        await ingress.submit(delayed)
        await completed(ingress, delayed.id)
        started["delayed start"] = (delayed.id, 1)

        # a retry after backoff
        flaky = submission("flaky", "retry")
        await ingress.submit(flaky)
        await completed(ingress, flaky.id)
        started["retry after backoff"] = (flaky.id, 2)

        # recovery from a dead worker
        await ingress.register_worker("ghost", "elsewhere", 1, ["Vault"])
        orphan = submission("deposit", "orphan", 3)
        await ingress.submit(orphan)
        (claimed,) = await ingress.claim("ghost", ["Vault"], 1)
        assert claimed.lease.invocation_id == orphan.id
        with psycopg.connect(monitored, autocommit=True) as conn:
            conn.execute("UPDATE restate.worker SET heartbeat_at = now() - interval '1 hour' WHERE id = 'ghost'")
        await completed(ingress, orphan.id)
        started["recovery from a dead worker"] = (orphan.id, 2)

        # resume after pause
        paused, awakeable = await hold_key(engine, "paused")
        assert await engine.operations.pause(paused) == Paused()
        assert await engine.operations.resume(paused) == Resumed()
        assert await engine.awakeables.resolve(awakeable, b'"go on"') == Resolved()
        await completed(ingress, paused)
        started["resume after pause"] = (paused, 2)

        # restart-as-new of a completed exclusive invocation
        restarted = (await engine.operations.restart_as_new(first.id)).new_invocation_id
        await completed(ingress, restarted)
        assert await output_of(ingress, restarted) == 2  # the key's balance was 1
        started["restart-as-new"] = (restarted, 1)

        # the key handed over by a holder that was cancelled
        holder, _ = await hold_key(engine, "cancel")
        behind_cancelled = submission("deposit", "cancel", 4)
        await ingress.submit(behind_cancelled)
        assert await status_of(ingress, behind_cancelled.id) == "inboxed"
        assert await engine.operations.cancel(holder) == CancelSignalled()
        await completed(ingress, behind_cancelled.id)
        started["key handed over after cancel"] = (behind_cancelled.id, 1)

        # the key handed over by a holder that was killed
        holder, _ = await hold_key(engine, "kill")
        behind_killed = submission("deposit", "kill", 5)
        await ingress.submit(behind_killed)
        assert await status_of(ingress, behind_killed.id) == "inboxed"
        assert await engine.operations.kill(holder) == Killed()
        await completed(ingress, behind_killed.id)
        started["key handed over after kill"] = (behind_killed.id, 1)
    finally:
        await engine.stop()
        await ingress.close()
    for path, (invocation_id, at_least) in started.items():
        assert exclusivity.leases(monitored, invocation_id) >= at_least, path
    assert exclusivity.violations(monitored) == []
    assert leftovers(monitored) == (0, 0, 0)


def leftovers(dsn: str) -> typing.Tuple[int, int, int]:
    """Held keys, inbox rows and tasks left: none once everything completed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM restate.object_lock), (SELECT count(*) FROM restate.inbox),"
            " (SELECT count(*) FROM restate.task)").fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]))
