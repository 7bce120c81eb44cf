"""restate_pg.testing: the pytest fixtures and the harness, used as an application's suite uses them."""

from __future__ import annotations

import asyncio
import textwrap
import typing
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from restate_pg import ClientError, TerminalError
from restate_pg.api.app import App
from restate_pg.testing import HarnessEnvironment, InvocationTimeout, create_test_harness
from tests.apps import sleepy
from tests.support.polling import eventually
from tests.support.processes import REPO

pytest_plugins = ["pytester"]


@pytest.fixture
def restate_app() -> App:
    return sleepy.app


async def status(env: HarnessEnvironment, invocation_id: str) -> typing.Optional[str]:
    row = await env.invocation(invocation_id)
    return None if row is None else row["status"]


async def entry_types(env: HarnessEnvironment, invocation_id: str) -> typing.List[str]:
    return [row["entry_type"] for row in await env.journal(invocation_id)]


async def reached_sleep(env: HarnessEnvironment, invocation_id: str) -> bool:
    return "Command: Sleep" in await entry_types(env, invocation_id)


async def test_a_call_through_the_harness_and_what_it_left(restate_harness: HarnessEnvironment) -> None:
    env = restate_harness
    assert await env.client.object_call(sleepy.add, "k1", 5) == 5
    handle = await env.client.object_send(sleepy.add, "k1", 2)
    assert await env.run_to_completion(handle.invocation_id) == 7

    assert await env.state("Tally", "k1") == {"last": {"amount": 2}, "total": 7}
    assert await env.state("Tally", "nobody") == {}
    invocation = await env.invocation(handle.invocation_id)
    assert invocation is not None
    assert (invocation["status"], invocation["target"]) == ("completed", "Tally/k1/add")
    assert await entry_types(env, handle.invocation_id) == [
        "Command: Input", "Command: GetEagerState", "Command: SetState", "Command: SetState", "Command: Output"]
    rows = await env.query("SELECT count(*) AS n FROM sys_invocation WHERE target_service_name = %(s)s", {"s": "Tally"})
    assert rows == [{"n": 2}]
    assert await env.invocation("inv_1unknown") is None


async def test_fire_timers_wakes_a_handler_sleeping_for_an_hour_in_memory(restate_harness: HarnessEnvironment) -> None:
    env = restate_harness
    handle = await env.client.service_send(sleepy.nap, "Ada")
    assert await eventually(lambda: reached_sleep(env, handle.invocation_id), True)
    assert await status(env, handle.invocation_id) == "running"  # waiting in memory (5 s inactivity)

    assert await env.fire_timers(handle.invocation_id) == 1
    assert await env.run_to_completion(handle.invocation_id, fire_timers=False, timeout=10) == "Ada woke up"

    journal = await env.journal(handle.invocation_id)
    assert [row["entry_type"] for row in journal] == [
        "Command: Input", "Command: Sleep", "Notification: Sleep", "Command: Output"]
    assert journal[1]["sleep_wakeup_at"] <= datetime.now(timezone.utc)  # moved from an hour ahead
    assert await env.fire_timers(handle.invocation_id) == 0  # nothing left to fire


async def test_fire_timers_resumes_a_suspended_sleeper(database_url: str) -> None:
    from restate_pg.testing import empty_schema

    empty_schema(database_url)
    async with create_test_harness(sleepy.app, database_url=database_url, always_replay=True) as env:
        handle = await env.client.service_send(sleepy.nap, "Grace")
        assert await eventually(lambda: status(env, handle.invocation_id), "suspended") == "suspended"

        assert await env.fire_timers() == 1
        assert await env.run_to_completion(handle.invocation_id, fire_timers=False, timeout=10) == "Grace woke up"
        assert await entry_types(env, handle.invocation_id) == [
            "Command: Input", "Command: Sleep", "Notification: Sleep", "Command: Output"]


async def test_run_to_completion_fires_each_sleep_as_it_is_reached(restate_harness: HarnessEnvironment) -> None:
    env = restate_harness
    handle = await env.client.service_send(sleepy.two_naps, "Alan")
    assert await env.run_to_completion(handle.invocation_id, timeout=20) == "Alan woke up twice"
    sleeps = [row["name"] for row in await env.journal(handle.invocation_id) if row["entry_type"] == "Command: Sleep"]
    assert sleeps == ["first", "second"]


async def test_run_to_completion_fires_the_sleep_of_a_callee(restate_harness: HarnessEnvironment) -> None:
    env = restate_harness
    handle = await env.client.service_send(sleepy.wait_for_nap, "Edsger")
    assert await env.run_to_completion(handle.invocation_id, timeout=20) == "caller: Edsger woke up"


async def test_a_fired_timer_wins_a_select(restate_harness: HarnessEnvironment) -> None:
    env = restate_harness
    handle = await env.client.service_send(sleepy.race, "Barbara")
    assert await env.run_to_completion(handle.invocation_id, timeout=20) == "Barbara timed out"


async def test_fire_timers_starts_a_delayed_invocation(restate_harness: HarnessEnvironment) -> None:
    env = restate_harness
    delayed = await env.client.object_send(sleepy.add, "later", 3, send_delay=timedelta(hours=6))
    assert await status(env, delayed.invocation_id) == "scheduled"
    assert await env.fire_timers(delayed.invocation_id) == 1
    assert await env.run_to_completion(delayed.invocation_id, fire_timers=False, timeout=10) == 3
    assert await env.state("Tally", "later") == {"last": {"amount": 3}, "total": 3}


async def test_run_to_completion_gives_up_with_the_status(restate_harness: HarnessEnvironment) -> None:
    env = restate_harness
    handle = await env.client.service_send(sleepy.nap, "Kurt")
    with pytest.raises(InvocationTimeout, match=r"did not complete within 0\.5s \(status: (running|ready)\)"):
        await env.run_to_completion(handle.invocation_id, fire_timers=False, timeout=0.5)


async def test_run_to_completion_raises_the_invocations_failure(restate_harness: HarnessEnvironment) -> None:
    env = restate_harness
    handle = await env.client.service_send(sleepy.refuse, "Tony")
    with pytest.raises(TerminalError, match="Tony refused") as raised:
        await env.run_to_completion(handle.invocation_id, timeout=10)
    assert raised.value.status_code == 422
    with pytest.raises(ClientError) as unknown:
        await env.run_to_completion("inv_1unknown", timeout=10)
    assert unknown.value.status_code == 404


@pytest.mark.slow
def test_the_plugin_in_a_users_suite(pytester: pytest.Pytester, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A suite that enables the plugin, names its app in the ini file and uses the fixtures."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makeconftest('pytest_plugins = ["restate_pg.testing"]\n')
    pytester.makeini(textwrap.dedent("""
        [pytest]
        asyncio_mode = auto
        restate_pg_app = tests.apps.sleepy:app
    """))
    pytester.makepyfile(test_user=textwrap.dedent("""
        from tests.apps import sleepy

        async def test_sleeps_an_hour_in_no_time(restate_harness):
            handle = await restate_harness.client.service_send(sleepy.nap, "Ken")
            assert await restate_harness.run_to_completion(handle.invocation_id, timeout=20) == "Ken woke up"
    """))
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_the_plugin_says_when_the_app_is_missing(pytester: pytest.Pytester, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makeconftest('pytest_plugins = ["restate_pg.testing"]\n')
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(test_user="async def test_it(restate_harness):\n    pass\n")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*define a fixture `restate_app`*"])
    assert result.ret != 0


async def test_fire_timers_reaches_a_sleeper_in_another_worker_process(clean_db: str) -> None:
    """The sleeper waits in memory in a `restate-pg worker` subprocess; the timer is fired from
    this process, which runs no handlers (the SQL client's engine)."""
    import restate_pg
    from tests.support.processes import WorkerProcess

    with WorkerProcess("tests.apps.sleepy:app", clean_db):
        async with restate_pg.create_client(clean_db, app=sleepy.app) as client:
            handle = await client.service_send(sleepy.nap, "Leslie")
            engine = client.engine  # type: ignore[attr-defined]

            async def task_status() -> typing.Optional[str]:
                async with engine.store.pool.connection() as conn:
                    row = await (await conn.execute(
                        "SELECT t.status FROM restate.task t JOIN restate.journal j ON j.invocation_id = t.invocation_id"
                        " WHERE t.invocation_id = %s AND j.entry_type = 'Sleep'", [handle.invocation_id])).fetchone()
                return None if row is None else row[0]

            assert await eventually(task_status, "running") == "running"  # asleep in the worker's memory
            assert await engine.operations.fire_timers(handle.invocation_id) == 1
            assert await asyncio.wait_for(client.attach_invocation(handle.invocation_id), 20) == "Leslie woke up"


async def test_create_test_harness_finds_its_database_in_database_url(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", clean_db)
    async with create_test_harness(sleepy.app) as env:
        assert env.database_url == clean_db
        assert env.admin_api_url == env.ingress_url + "/admin"
        assert await env.client.object_call(sleepy.add, "h", 4) == 4
        async with httpx.AsyncClient() as http:
            health = await http.get(env.admin_api_url + "/health")
        assert health.status_code == 200
