"""The overview: invocations per status, created per minute over the last hour (and how they
ended), the backlog per service and per object key, the oldest ready invocation, and the workers
alive with their deployments, flow control's rules and queues (docs/flow-control.md); the
Prometheus numbers are one link away (`/metrics`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from restate_pg.services.gateway import Gateway
from restate_pg.services.rules import render_rule
from restate_pg.store.browsing import COUNT_CAP, InvocationFilter
from restate_pg.ui.invocations import STATUSES
from restate_pg.ui.pages import render


def add_overview_page(router: APIRouter, engine: Gateway) -> None:
    store = engine.store

    @router.get("/", name="ui_overview")
    async def overview(request: Request) -> Response:
        numbers = await store.overview()
        counts = await store.status_counts(InvocationFilter())
        oldest = min((row["oldest_ready_at"] for row in numbers["backlog"] if row["oldest_ready_at"]), default=None)
        peak = max((row["created"] for row in numbers["per_minute"]), default=0)
        rules = [render_rule(row) for row in await store.list_flow_rules()]
        return render(request, "overview.html", counts=counts, statuses=STATUSES, cap=COUNT_CAP, oldest=oldest,
                      now=await store.db_now(), peak=peak, rules=rules, queues=await store.flow_queues(),
                      target_queues=await store.flow_target_queues(), **numbers)
