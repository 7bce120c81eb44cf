"""The SQL page: one read-only query over the introspection views (`restate_pg.store.console`,
as the admin API's `POST /query` and `restate-pg sql` run it), its rows as a table."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from restate_pg.services.gateway import Gateway
from restate_pg.store.console import QueryError, run_query
from restate_pg.ui.pages import UIError, form, render

#: A query from the page runs at most this long.
TIMEOUT_S = 10.0
#: Rows shown; the page says when there were more.
MAX_ROWS = 1000

EXAMPLES = (
    ("Invocations per status", "SELECT status, count(*) FROM sys_invocation GROUP BY status ORDER BY 2 DESC"),
    ("Running the longest", "SELECT id, target, status, created_at FROM sys_invocation\n"
                            "WHERE status <> 'completed' ORDER BY created_at LIMIT 20"),
    ("Failing with retries", "SELECT id, target, retry_count, last_failure FROM sys_invocation\n"
                             "WHERE status = 'backing-off' ORDER BY retry_count DESC LIMIT 20"),
    ("Object keys with a queue", "SELECT service_name, service_key, count(*) FROM sys_inbox\n"
                                 "GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 20"),
    ("State of a service", "SELECT service_key, key, value_utf8 FROM state\n"
                           "WHERE service_name = 'Counter' ORDER BY 1, 2 LIMIT 50"),
)


def add_sql_page(router: APIRouter, engine: Gateway) -> None:

    @router.get("/sql", name="ui_sql")
    async def sql_page(request: Request) -> Response:
        return render(request, "sql.html", examples=EXAMPLES, query=EXAMPLES[0][1])

    @router.post("/sql", name="ui_sql_run")
    async def sql_run(request: Request) -> Response:
        query = str((await form(request)).get("query") or "").strip()
        if not query:
            raise UIError(400, "write a query first")
        try:
            result = await asyncio.to_thread(run_query, engine.store.conninfo, engine.store.schema, query,
                                             timeout_s=TIMEOUT_S)
        except QueryError as exc:
            raise UIError(400, str(exc)) from None
        rows = result.records()
        return render(request, "_sql_result.html", columns=result.columns, rows=rows[:MAX_ROWS],
                      total=len(rows), limit=MAX_ROWS)
