"""How fast the operator UI's pages answer with 1,000,000 completed invocations retained.

    python -m bench.ui [--database-url postgresql://postgres@127.0.0.1:5432/restate_pg_bench_ui]
                       [--invocations 1000000] [--repeat 20]

It recreates the database (its name must contain "bench"), migrates it, inserts the completed
invocations in one statement (`bench_fill_completed`, spread over 20 services), plus a few live
ones through the ingress, analyzes, serves the admin API (with the UI) on a free port and asks
for each page `--repeat` times over HTTP, printing the median and the slowest answer per page.
The goal (issue 16): every page under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time

import httpx
from fastapi import FastAPI

from bench.app import app as bench_app
from bench.database import Database
from restate_pg.admin import create_admin_router
from restate_pg.ingress import create_router
from restate_pg.store.migrate import upgrade
from restate_pg.store.queries import Queries
from restate_pg.testing.harness import serve_api

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/restate_pg_bench_ui"
GOAL_MS = 100.0


def fill(db: Database, count: int) -> None:
    with db.connect() as conn:
        conn.execute(Queries("restate").BENCH_FILL_COMPLETED, {"count": count, "services": 20})
        conn.execute("VACUUM ANALYZE restate.invocation")


async def measure(url: str, repeat: int) -> list[tuple[str, float, float]]:
    router = create_router(bench_app, database_url=url, run_handlers=True)
    api = FastAPI()
    api.include_router(create_admin_router(router.engine), prefix="/admin")
    api.include_router(router)
    async with serve_api(api) as base, httpx.AsyncClient(base_url=base, timeout=60) as client:
        for n in range(5):  # a few live ones too, so that both branches of the list have rows
            await client.post("/Bench/sleeper/send", json=600_000 + n)
        first = (await client.get("/admin/ui/invocations")).text
        some_id = re.search(r'/invocations/(inv_\w+)"', first)
        after = re.search(r'after=([^"&]+)"', first)
        assert some_id and after, "the list page shows no invocation"
        pages = {
            "overview": "/admin/ui/",
            "invocations": "/admin/ui/invocations",
            "invocations, next page": f"/admin/ui/invocations?after={after.group(1)}",
            "invocations of one service": "/admin/ui/invocations?service=Bench7",
            "completed, failed": "/admin/ui/invocations?status=completed&result=failure",
            "running": "/admin/ui/invocations?status=running&status=suspended",
            "by id": f"/admin/ui/invocations?q={some_id.group(1)}",
            "one invocation": f"/admin/ui/invocations/{some_id.group(1)}",
            "services": "/admin/ui/services",
            "state": "/admin/ui/state",
            "sql": "/admin/ui/sql",
        }
        results = []
        for name, path in pages.items():
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                answer = await client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
            results.append((name, statistics.median(times), max(times)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--invocations", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    db = Database(args.database_url)
    db.recreate()
    upgrade(args.database_url, "restate")
    started = time.perf_counter()
    fill(db, args.invocations)
    print(f"{args.invocations:,} completed invocations inserted and analyzed in {time.perf_counter() - started:.1f}s")
    results = asyncio.run(measure(args.database_url, args.repeat))
    print(f"{'page':32} {'median ms':>10} {'slowest ms':>11}")
    for name, median, slowest in results:
        print(f"{name:32} {median:10.1f} {slowest:11.1f}{'' if median < GOAL_MS else '  over the goal'}")


if __name__ == "__main__":
    main()
