"""Cron schedules: ticks in time zones and across DST changes, catch-up after downtime, schedules
declared in code and made at run time, the CLI, and one invocation per tick with three workers.

Time is driven through the database: a test moves a schedule's `next_at` into the past, as if
the workers had been down since, instead of waiting for real ticks (except the three-worker test,
whose schedule fires every second).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import textwrap
import typing
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

import restate_pg as restate
from restate_pg.core import hints
from restate_pg.api.app import App
from restate_pg.api.cron import CATCH_UP_LIMIT, InvalidCron, due_ticks, next_tick
from restate_pg.worker.engine import Engine
from tests.apps import cron_app
from tests.support.polling import eventually, row
from tests.support.processes import REPO, WorkerProcess
from tests.support.server import serve

UTC = timezone.utc


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# -- ticks ------------------------------------------------------------------------------------


def test_a_schedule_in_a_time_zone_ticks_at_its_local_time():
    # 09:00 in Paris is 08:00 UTC in winter (CET) and 07:00 UTC in summer (CEST)
    assert next_tick("0 9 * * *", "Europe/Paris", utc(2026, 1, 15, 12)) == utc(2026, 1, 16, 8)
    assert next_tick("0 9 * * *", "Europe/Paris", utc(2026, 7, 15, 12)) == utc(2026, 7, 16, 7)
    assert next_tick("30 8 * * MON", "America/New_York", utc(2026, 1, 1)) == utc(2026, 1, 5, 13, 30)
    assert next_tick("*/10 * * * * *", "UTC", utc(2026, 1, 1, 0, 0, 5)) == utc(2026, 1, 1, 0, 0, 10)


def test_dst_changes_neither_skip_nor_repeat_a_tick():
    # Spring forward (Paris, 2026-03-29): 02:30 does not exist; the tick fires once, at 03:00 CEST.
    assert next_tick("30 2 * * *", "Europe/Paris", utc(2026, 3, 28, 23)) == utc(2026, 3, 29, 1)
    assert next_tick("30 2 * * *", "Europe/Paris", utc(2026, 3, 29, 1)) == utc(2026, 3, 30, 0, 30)
    # Fall back (2026-10-25): 02:30 happens twice; the tick fires once, the first time.
    first = next_tick("30 2 * * *", "Europe/Paris", utc(2026, 10, 24, 23))
    assert first == utc(2026, 10, 25, 0, 30)
    assert next_tick("30 2 * * *", "Europe/Paris", first) == utc(2026, 10, 26, 1, 30)
    # A job every 30 minutes fires at every real half hour through the repeated hour.
    ticks, at = [], utc(2026, 10, 24, 23, 45)
    for _ in range(6):
        at = next_tick("*/30 * * * *", "Europe/Paris", at)
        ticks.append(at)
    assert ticks == [utc(2026, 10, 25, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1), utc(2026, 10, 25, 1, 30),
                     utc(2026, 10, 25, 2), utc(2026, 10, 25, 2, 30)]


def test_catch_up_policies_choose_the_missed_ticks():
    now = utc(2026, 6, 1, 12, 0, 30)
    missed_since = utc(2026, 6, 1, 11, 57)
    assert due_ticks("* * * * *", "UTC", missed_since, now, "latest") == [utc(2026, 6, 1, 12)]
    assert due_ticks("* * * * *", "UTC", missed_since, now, "all") == [
        utc(2026, 6, 1, 11, 57), utc(2026, 6, 1, 11, 58), utc(2026, 6, 1, 11, 59), utc(2026, 6, 1, 12)]
    assert due_ticks("* * * * *", "UTC", missed_since, now, "skip") == []
    # merely late (a busy worker), not missed: skip still fires it
    assert due_ticks("* * * * *", "UTC", utc(2026, 6, 1, 12), now, "skip") == [utc(2026, 6, 1, 12)]
    assert due_ticks("* * * * *", "UTC", utc(2026, 6, 1, 12, 1), now, "latest") == []
    bounded = due_ticks("* * * * *", "UTC", utc(2026, 5, 1), now, "all")
    assert len(bounded) == CATCH_UP_LIMIT and bounded[-1] == utc(2026, 6, 1, 12)


def test_bad_schedules_are_refused_with_a_clear_message():
    with pytest.raises(InvalidCron, match="invalid cron expression 'every day'"):
        restate.Cron("x", "every day", cron_app.tick)
    with pytest.raises(InvalidCron, match="unknown time zone 'Mars/Olympus'"):
        restate.Cron("x", "* * * * *", cron_app.tick, timezone="Mars/Olympus")
    with pytest.raises(InvalidCron, match="catch_up must be one of latest, all, skip"):
        restate.Cron("x", "* * * * *", cron_app.tick, catch_up="some")  # type: ignore[arg-type]
    with pytest.raises(InvalidCron, match="give the key"):
        restate.app([cron_app.tally], crons=[restate.Cron("x", "* * * * *", cron_app.bump)])
    with pytest.raises(InvalidCron, match="workflows run once per key"):
        restate.app([cron_app.flow], crons=[restate.Cron("x", "* * * * *", cron_app.run, key="k")])
    with pytest.raises(InvalidCron, match="no handler Ticker/tick"):
        restate.app([cron_app.tally], crons=[restate.Cron("x", "* * * * *", cron_app.tick)])


# -- firing -----------------------------------------------------------------------------------


@pytest.fixture
async def admin(clean_db):
    # a worker with no code-declared schedule, so that only the tests' own ones fire
    async with serve(App([cron_app.ticker, cron_app.tally, cron_app.flow]), clean_db, admin=True) as served:
        yield served


async def fired(engine: Engine, name: str) -> list:
    async with engine.store.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT headers->>'x-restate-pg-cron-tick' AS tick, count(*) FROM restate.invocation"
            " WHERE headers->>'x-restate-pg-cron' = %s GROUP BY 1 ORDER BY 1", [name])
        return [(datetime.fromisoformat(tick), count) for tick, count in await cur.fetchall()]


async def miss_since(engine: Engine, name: str, since: str) -> datetime:
    """Move a schedule's next tick into the past, as if no worker had run since, and wake the
    workers; return once it has been fired (its next tick is in the future again)."""
    (next_at,) = await row(engine, f"UPDATE restate.cron_job SET next_at = {since} WHERE name = %s RETURNING next_at", name)
    await engine.store.notify(engine.work_channel, hints.CRON_CHANGED)
    assert await eventually(lambda: row(engine, "SELECT next_at > now() FROM restate.cron_job WHERE name = %s", name),
                            (True,)) == (True,)
    return next_at


async def create(admin, name: str, catch_up: str, schedule: str = "0 0 1 1 *", **fields) -> dict:
    body = {"name": name, "schedule": schedule, "handler": "Ticker/tick", "input": name, "catch_up": catch_up, **fields}
    response = await admin.client.post("/admin/cron", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_catch_up_latest_fires_the_most_recent_missed_tick_once(admin):
    await create(admin, "yearly-latest", "latest")
    await miss_since(admin.engine, "yearly-latest", "now() - interval '5 years'")
    this_year = (await row(admin.engine, "SELECT date_trunc('year', now() AT TIME ZONE 'UTC')"))[0].replace(tzinfo=UTC)
    assert await fired(admin.engine, "yearly-latest") == [(this_year, 1)]
    job = (await admin.client.get("/admin/cron/yearly-latest")).json()
    assert datetime.fromisoformat(job["next_at"]) == this_year.replace(year=this_year.year + 1)
    assert datetime.fromisoformat(job["last_tick_at"]) == this_year
    output = await eventually(lambda: row(admin.engine, "SELECT output FROM restate.invocation WHERE id = %s",
                                          job["last_invocation_id"]), (b'"yearly-latest"',))
    assert output == (b'"yearly-latest"',)  # the handler ran with the schedule's input


async def test_catch_up_all_fires_every_missed_tick_up_to_the_bound(admin):
    await create(admin, "yearly-all", "all")
    await miss_since(admin.engine, "yearly-all", "now() - interval '5 years'")
    this_year = (await row(admin.engine, "SELECT date_trunc('year', now() AT TIME ZONE 'UTC')"))[0].replace(tzinfo=UTC)
    assert await fired(admin.engine, "yearly-all") == [(this_year.replace(year=this_year.year - n), 1) for n in range(4, -1, -1)]

    await create(admin, "yearly-bounded", "all")
    await miss_since(admin.engine, "yearly-bounded", "now() - interval '500 years'")
    ticks = await fired(admin.engine, "yearly-bounded")
    assert len(ticks) == CATCH_UP_LIMIT and all(count == 1 for _, count in ticks)
    assert ticks[-1][0] == this_year and ticks[0][0] == this_year.replace(year=this_year.year - CATCH_UP_LIMIT + 1)


async def test_catch_up_skip_fires_nothing_and_continues_from_now(admin):
    await create(admin, "yearly-skip", "skip")
    await miss_since(admin.engine, "yearly-skip", "now() - interval '5 years'")
    assert await fired(admin.engine, "yearly-skip") == []
    job = (await admin.client.get("/admin/cron/yearly-skip")).json()
    assert job["last_tick_at"] is None and datetime.fromisoformat(job["next_at"]) > datetime.now(UTC)


async def test_a_keyed_schedule_calls_its_object_exclusively(admin):
    await create(admin, "tally", "all", schedule="0 * * * *", handler="Tally/bump", key="k1", input=None)
    await miss_since(admin.engine, "tally", "now() - interval '3 hours'")
    count = await eventually(lambda: row(admin.engine, "SELECT value FROM restate.state_entry WHERE service = 'Tally' "
                                         "AND key = 'k1' AND name = 'count'"), (b"3",))
    assert count in ((b"3",), (b"4",))  # 3 hours back: 3 or 4 hourly ticks, each one bump
    assert len(await fired(admin.engine, "tally")) == int(count[0][0:1])


async def test_a_schedule_in_a_time_zone_is_stored_at_its_utc_instant(admin):
    job = await create(admin, "tokyo", "latest", schedule="0 9 * * *", timezone="Asia/Tokyo")
    next_at = datetime.fromisoformat(job["next_at"])
    now = datetime.now(UTC)
    assert (next_at.hour, next_at.minute) == (0, 0)  # 09:00 JST is 00:00 UTC, no DST in Japan
    assert timedelta(0) < next_at - now <= timedelta(days=1)


# -- schedules made at run time ---------------------------------------------------------------


async def test_admin_api_creates_lists_pauses_and_deletes_schedules(admin):
    client = admin.client
    created = await create(admin, "nightly", "latest", schedule="0 3 * * *", timezone="Europe/Paris",
                           headers={"x-team": "ops"})
    assert {k: created[k] for k in ("name", "service", "handler", "key", "source", "enabled", "headers")} == {
        "name": "nightly", "service": "Ticker", "handler": "tick", "key": None, "source": "api", "enabled": True,
        "headers": {"x-team": "ops"}}
    assert [job["name"] for job in (await client.get("/admin/cron")).json()["jobs"]] == ["nightly"]

    duplicate = await client.post("/admin/cron", json={"name": "nightly", "schedule": "* * * * *", "handler": "Ticker/tick"})
    assert (duplicate.status_code, duplicate.json()["message"]) == (409, "a cron job named 'nightly' exists already")
    for body, message in [
        ({"name": "b", "schedule": "61 * * * *", "handler": "Ticker/tick"}, "invalid cron expression '61 * * * *': Bad minute"),
        ({"name": "b", "schedule": "* * * * *", "handler": "Ticker/tick", "timezone": "Nowhere"}, "unknown time zone 'Nowhere'"),
        ({"name": "b", "schedule": "* * * * *", "handler": "Nope/tick"}, "service 'Nope' is not registered"),
        ({"name": "b", "schedule": "* * * * *", "handler": "Ticker/nope"}, "service 'Ticker' has no handler 'nope'"),
        ({"name": "b", "schedule": "* * * * *", "handler": "Tally/bump"}, "give the key to call"),
        ({"name": "b", "schedule": "* * * * *", "handler": "Ticker/tick", "every": 1}, "unknown field(s) every"),
        ({"name": "b", "handler": "Ticker/tick"}, "'schedule' must be a string"),
        ({"name": "b", "schedule": "* * * * *", "handler": "Ticker/tick", "headers": ["x"]}, "headers must map strings to strings"),
        ({"name": "b", "schedule": "* * * * *", "handler": "Ticker/tick", "timezone": 1}, "unknown time zone 1"),
        ({"name": "b", "schedule": "* * * * *", "handler": "Ticker/tick", "key": 7}, "key must be a string"),
    ]:
        refused = await client.post("/admin/cron", json=body)
        assert refused.status_code == 400 and message in refused.json()["message"], refused.text
    assert [job["name"] for job in (await client.get("/admin/cron")).json()["jobs"]] == ["nightly"]

    paused = await client.patch("/admin/cron/nightly", json={"enabled": False})
    assert (paused.status_code, paused.json()["enabled"]) == (200, False)
    await row(admin.engine, "UPDATE restate.cron_job SET next_at = now() - interval '2 days' WHERE name = 'nightly' RETURNING name")
    resumed = (await client.patch("/admin/cron/nightly", json={"enabled": True})).json()
    assert resumed["enabled"] and datetime.fromisoformat(resumed["next_at"]) > datetime.now(UTC)  # no catch-up of a pause
    assert (await client.patch("/admin/cron/nightly", json={"enabled": "yes"})).status_code == 400

    assert (await client.delete("/admin/cron/nightly")).status_code == 204
    missing = await client.delete("/admin/cron/nightly")
    assert (missing.status_code, missing.json()["message"]) == (404, "no cron job named 'nightly'")
    assert (await client.get("/admin/cron/nightly")).status_code == 404
    assert (await client.get("/admin/cron")).json() == {"jobs": []}
    assert await fired(admin.engine, "nightly") == []


async def test_python_api_manages_schedules(admin, clean_db):
    async with restate.cron_schedules(clean_db) as schedules:
        job = await schedules.create(restate.Cron("hourly", "0 * * * *", cron_app.tick, input="hi", catch_up="all"))
        assert (job["service"], job["handler"], job["catch_up"]) == ("Ticker", "tick", "all")
        assert [j["name"] for j in await schedules.list()] == ["hourly"]
        assert (await schedules.set_enabled("hourly", False))["enabled"] is False
        await schedules.delete("hourly")
        assert await schedules.list() == []
        with pytest.raises(LookupError, match="no cron job named 'hourly'"):
            await schedules.get("hourly")


# -- schedules declared in code ---------------------------------------------------------------


async def jobs(engine: Engine) -> dict:
    return {job["name"]: job for job in await engine.store.list_crons()}


async def test_code_declared_schedules_are_synced_when_a_worker_starts(clean_db):
    services = [cron_app.ticker, cron_app.tally]
    first = restate.app(services, crons=[
        restate.Cron("code-a", "0 * * * *", cron_app.tick, input="a"),
        restate.Cron("code-b", "0 0 * * *", cron_app.bump, key="k", timezone="Europe/Paris"),
        restate.Cron("taken", "0 0 * * *", cron_app.tick, input="code"),
    ])
    engine = Engine(first, clean_db, poll_interval=0.2)
    await engine.start()
    try:
        async with restate.cron_schedules(clean_db) as schedules:
            await schedules.create(restate.Cron("by-api", "0 0 * * *", "Ticker/tick", input="api"))
        await engine.store.delete_cron("taken")
        async with restate.cron_schedules(clean_db) as schedules:
            await schedules.create(restate.Cron("taken", "0 0 * * *", "Ticker/tick", input="api"))
        synced = await jobs(engine)
        assert {name: job["source"] for name, job in synced.items()} == {
            "code-a": "code", "code-b": "code", "by-api": "api", "taken": "api"}
        assert (synced["code-b"]["key"], synced["code-b"]["timezone"]) == ("k", "Europe/Paris")
        kept_next_at = synced["code-a"]["next_at"]
    finally:
        await engine.stop()

    second = restate.app(services, crons=[
        restate.Cron("code-a", "0 * * * *", cron_app.tick, input="a, changed"),
        restate.Cron("taken", "0 0 * * *", cron_app.tick, input="code"),
    ])
    engine = Engine(second, clean_db, poll_interval=0.2)
    await engine.start()
    try:
        synced = await jobs(engine)
        assert sorted(synced) == ["by-api", "code-a", "taken"]  # code-b left the code: deleted
        assert bytes(synced["code-a"]["input"]) == b'"a, changed"' and synced["code-a"]["next_at"] == kept_next_at
        assert (synced["taken"]["source"], bytes(synced["taken"]["input"])) == ("api", b'"api"')  # not overwritten
    finally:
        await engine.stop()


@pytest.mark.slow
async def test_three_workers_fire_each_tick_exactly_once(clean_db):
    # long leases: on a loaded machine, late heartbeats must not get a live worker declared dead
    workers = [WorkerProcess("tests.apps.cron_app:app", clean_db, lease_seconds=15.0).start() for _ in range(3)]
    engine = Engine(App([]), clean_db, run_handlers=False, poll_only=True, pool_size=2)
    await engine.start()
    try:
        async def ticks_seen() -> bool:
            return len(await fired(engine, "every-second")) >= 5

        assert await eventually(ticks_seen, True, timeout_s=30), [w.log() for w in workers]
        registered = await row(engine, "SELECT count(*) FROM restate.worker")
        assert registered == (3,)
        ticks = await fired(engine, "every-second")
    finally:
        await engine.stop()
        for worker in workers:
            worker.stop()
    assert all(count == 1 for _, count in ticks), ticks
    seconds = [tick for tick, _ in ticks]
    assert seconds == [seconds[0] + timedelta(seconds=n) for n in range(len(seconds))]  # none missed either


# -- the CLI ------------------------------------------------------------------------------------


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "restate_pg", "cron", *args, "--database-url", database_url],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
async def test_cli_lists_disables_and_deletes_schedules(admin, clean_db):
    await create(admin, "report", "skip", schedule="0 6 * * MON-FRI", timezone="Europe/Paris")
    listed = await asyncio.to_thread(cli, clean_db, "list")
    assert listed.returncode == 0, listed.stderr
    header, line = listed.stdout.splitlines()
    assert header.split() == ["name", "target", "schedule", "timezone", "catch_up", "source", "enabled", "next_at", "last_tick_at"]
    assert line.split()[:4] == ["report", "Ticker/tick", "0", "6"] and "Europe/Paris" in line and " skip " in line
    as_json = json.loads((await asyncio.to_thread(cli, clean_db, "list", "--json")).stdout)
    assert [(job["name"], job["enabled"]) for job in as_json] == [("report", True)]

    disabled = await asyncio.to_thread(cli, clean_db, "disable", "report")
    assert (disabled.returncode, disabled.stdout.split("next tick")[0]) == (0, "cron job 'report' disabled, ")
    deleted = await asyncio.to_thread(cli, clean_db, "delete", "report")
    assert (deleted.returncode, deleted.stdout) == (0, "deleted cron job 'report'\n")
    missing = await asyncio.to_thread(cli, clean_db, "delete", "report")
    assert (missing.returncode, missing.stdout, missing.stderr) == (1, "", "restate-pg: error: no cron job named 'report'\n")
    assert (await asyncio.to_thread(cli, clean_db, "list")).stdout == "no cron jobs\n"


@pytest.mark.slow
async def test_a_schedule_gives_each_tick_its_scope_limit_key_and_priority(admin, clean_db):
    created = await create(admin, "scoped", "latest", scope="reports", limit_key="acme/daily", priority=-5)
    assert (created["scope"], created["limit_key"], created["priority"]) == ("reports", "acme/daily", -5)
    await miss_since(admin.engine, "scoped", "now() - interval '2 years'")
    assert len(await fired(admin.engine, "scoped")) == 1
    ran = await eventually(lambda: row(admin.engine, "SELECT scope, limit_key, priority, status FROM restate.invocation"
                                       " WHERE headers->>'x-restate-pg-cron' = 'scoped'"), ("reports", "acme/daily", -5, "completed"))
    assert ran == ("reports", "acme/daily", -5, "completed")
    for fields, message in [({"scope": "no spaces"}, "invalid scope 'no spaces'"), ({"limit_key": "a"}, "a limit key needs a scope"),
                            ({"scope": "s", "priority": "high"}, "invalid priority 'high'")]:
        refused = await admin.client.post("/admin/cron", json={"name": "bad", "schedule": "* * * * *", "handler": "Ticker/tick",
                                                               "input": "x", **fields})
        assert refused.status_code == 400 and message in refused.json()["message"], refused.text

    made = await asyncio.to_thread(cli, clean_db, "create", "from-cli", "0 5 * * *", "Ticker/tick", "--input", '"hi"',
                                   "--scope", "reports", "--limit-key", "acme", "--priority", "3")
    assert made.returncode == 0 and made.stdout.startswith("created cron job 'from-cli', next tick "), made.stderr
    listed = {job["name"]: job for job in json.loads((await asyncio.to_thread(cli, clean_db, "list", "--json")).stdout)}
    assert {k: listed["from-cli"][k] for k in ("handler", "scope", "limit_key", "priority", "source")} == {
        "handler": "tick", "scope": "reports", "limit_key": "acme", "priority": 3, "source": "api"}
    not_json = await asyncio.to_thread(cli, clean_db, "create", "x", "* * * * *", "Ticker/tick", "--input", "{")
    assert not_json.returncode == 2 and "--input is not JSON" in not_json.stderr
    bad_scope = await asyncio.to_thread(cli, clean_db, "create", "x", "* * * * *", "Ticker/tick", "--scope", "a b")
    assert bad_scope.returncode == 2 and "invalid scope 'a b'" in bad_scope.stderr
    unknown = await asyncio.to_thread(cli, clean_db, "create", "x", "* * * * *", "Nope/tick")
    assert unknown.returncode == 1 and "service 'Nope' is not registered" in unknown.stderr


# -- the README -------------------------------------------------------------------------------


def readme_cron_blocks(language: str) -> typing.List[str]:
    section = (REPO / "README.md").read_text().split("## Cron schedules", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


@pytest.mark.slow
async def test_the_readme_cron_example_runs_as_written(clean_db, tmp_path):
    declared, at_run_time = readme_cron_blocks("python")
    module_path = tmp_path / "readme_cron.py"
    module_path.write_text(declared)
    spec = importlib.util.spec_from_file_location("readme_cron", module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    engine = Engine(module.app, clean_db, poll_interval=0.2)
    await engine.start()
    try:
        (next_at,) = await row(engine, "SELECT next_at FROM restate.cron_job WHERE name = 'nightly-report'")
        local = next_at.astimezone(ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (3, 0)
        await miss_since(engine, "nightly-report", "now() - interval '1 day'")
        (invocation_id,) = await row(engine, "SELECT last_invocation_id FROM restate.cron_job WHERE name = 'nightly-report'")
        output = await eventually(lambda: row(engine, "SELECT output FROM restate.invocation WHERE id = %s", invocation_id),
                                  (b'"report of yesterday"',))
        assert output == (b'"report of yesterday"',)

        source = at_run_time.replace('"postgresql://..."', repr(clean_db))
        namespace: typing.Dict[str, typing.Any] = {"restate": restate}
        exec(compile("async def example():\n" + textwrap.indent(source, "    "), "README.md", "exec"), namespace)
        await namespace["example"]()
        jobs_now = await jobs(engine)
        assert {name: (job["source"], job["enabled"]) for name, job in jobs_now.items()} == {
            "nightly-report": ("code", True), "hourly-digest": ("api", False)}
    finally:
        await engine.stop()

    for line in readme_cron_blocks("sh")[0].splitlines():
        command = shlex.split(line.split("#")[0].replace("NAME", "hourly-digest"))
        assert command[:2] == ["restate-pg", "cron"]
        result = await asyncio.to_thread(cli, clean_db, *command[2:])
        assert result.returncode == 0, result.stderr
        if command[2] == "list":
            assert "nightly-report" in result.stdout and "hourly-digest" in result.stdout


async def test_a_worker_leaves_the_schedules_of_handlers_it_does_not_host(admin):
    """During a rolling upgrade a worker of the older version may lack a handler a schedule names:
    it must leave that schedule's ticks to a worker that has it, not drop them."""
    await create(admin, "newer-handler", "all")
    await row(admin.engine, "UPDATE restate.cron_job SET handler = 'added_later', next_at = now() - interval '1 hour'"
                            " WHERE name = 'newer-handler' RETURNING name")
    await create(admin, "hosted", "latest")
    await miss_since(admin.engine, "hosted", "now() - interval '2 years'")  # the worker's loop ran past both
    assert await row(admin.engine, "SELECT next_at < now(), last_tick_at FROM restate.cron_job WHERE name = 'newer-handler'") \
        == (True, None)
    assert await fired(admin.engine, "newer-handler") == []
