"""The benchmark's services (bench/app.py) as DBOS workflows behind FastAPI, for the DBOS peer.

Runs in the peer venv (see bench/peers/env.py), served by uvicorn:
    BENCH_DBOS_DATABASE_URL=postgresql://... python -m uvicorn bench.peers.dbos_app:app --port PORT

It answers the URL paths of Restate's ingress that the workloads use. Request-response calls run
the workflow inline; `/send` starts it in the background (its status row is committed first) and
answers 202. The counter is a row of `bench_counter` updated in a DBOS datasource transaction: the
upsert's row lock serialises adds on one key, and DBOS records the step's output in the same
transaction, so a recovered workflow does not add twice.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from dbos import DBOS, AsyncSQLAlchemyDatasource, DBOSConfig
from fastapi import Body, FastAPI

DATABASE_URL = os.environ.get("BENCH_DBOS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/restate_pg_bench_dbos")

config: DBOSConfig = {
    "name": "restate-pg-bench",
    "system_database_url": DATABASE_URL,
    "log_level": os.environ.get("BENCH_DBOS_LOG_LEVEL", "WARNING"),
}
DBOS(config=config)


@DBOS.step()
async def step_one() -> str:
    return "a"


@DBOS.step()
async def step_two() -> str:
    return "b"


@DBOS.step()
async def step_three() -> str:
    return "c"


@DBOS.workflow()
async def three_steps(name: str) -> str:
    a = await step_one()
    b = await step_two()
    c = await step_three()
    return f"{name}:{a}{b}{c}"


@DBOS.workflow()
async def sleeper(millis: int) -> None:
    await DBOS.sleep_async(millis / 1000)


_CREATE = sa.text("CREATE TABLE IF NOT EXISTS bench_counter (key text PRIMARY KEY, value bigint NOT NULL)")
_ADD = sa.text(
    "INSERT INTO bench_counter (key, value) VALUES (:key, :n) "
    "ON CONFLICT (key) DO UPDATE SET value = bench_counter.value + EXCLUDED.value RETURNING value"
)


# The datasource's engine is async, so it is created on the server's event loop at startup; the
# transaction step is bound to it then.
_datasource: AsyncSQLAlchemyDatasource | None = None
_counter_add: Callable[[str, int], Awaitable[int]] | None = None


async def open_counter() -> None:
    global _datasource, _counter_add
    ds = await AsyncSQLAlchemyDatasource.create(DATABASE_URL)
    async with ds.engine.begin() as conn:
        await conn.execute(_CREATE)

    async def counter_add(key: str, n: int) -> int:
        return int((await ds.sql_session().execute(_ADD, {"key": key, "n": n})).scalar_one())

    _datasource = ds
    _counter_add = ds.transaction(name="counter_add", isolation_level="READ COMMITTED")(counter_add)


@DBOS.workflow()
async def add(key: str, n: int) -> int:
    assert _counter_add is not None, "the counter's datasource opens at startup"
    return await _counter_add(key, n)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await open_counter()  # datasources must exist before DBOS.launch()
    DBOS.launch()
    try:
        yield
    finally:
        DBOS.destroy()
        if _datasource is not None:
            await _datasource.engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/Bench/three_steps")
async def call_three_steps(name: Annotated[str, Body()]) -> str:
    return await three_steps(name)


@app.post("/Bench/three_steps/send", status_code=202)
async def send_three_steps(name: Annotated[str, Body()]) -> dict[str, Any]:
    handle = await DBOS.start_workflow_async(three_steps, name)
    return {"invocationId": handle.workflow_id, "status": "Accepted"}


@app.post("/Bench/sleeper/send", status_code=202)
async def send_sleeper(millis: Annotated[int, Body()]) -> dict[str, Any]:
    handle = await DBOS.start_workflow_async(sleeper, millis)
    return {"invocationId": handle.workflow_id, "status": "Accepted"}


@app.post("/BenchCounter/{key}/add")
async def call_add(key: str, n: Annotated[int, Body()]) -> int:
    return await add(key, n)
