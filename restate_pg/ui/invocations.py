"""The invocations pages: the list (filters, counts per status, keyset pages) and one invocation
(header, journal timeline, input, output or failure), refreshed by polling while it runs."""

from __future__ import annotations

import typing
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from restate_pg.core.ids import is_invocation_id
from restate_pg.services.answers import OPERATIONS

#: The operations a filtered selection can get at once (ui/bulk.py): every one but restart-as-new.
BULK_OPERATIONS = tuple(name for name in OPERATIONS if name != "restart-as-new")
from restate_pg.services.gateway import Gateway
from restate_pg.store.browsing import COUNT_CAP, InvocationFilter
from restate_pg.ui.pages import UIError, render
from restate_pg.ui.timeline import callee_ids, timeline

#: The statuses of `sys_invocation`, in the order an invocation passes them.
STATUSES = ("pending", "scheduled", "ready", "running", "suspended", "backing-off", "paused", "completed")
RESULTS = ("success", "failure", "none")
PAGE_SIZE = 50
#: How often the page of a running invocation asks for news (htmx polling), in seconds.
POLL_S = 1
#: htmx stops polling an element whose refresh answers this status.
STOP_POLLING = 286


def _time(name: str, value: str) -> typing.Optional[datetime]:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UIError(400, f"'{name}' must be a date and time such as 2026-12-01T10:00, got '{value}'") from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def parse_filters(request: Request) -> InvocationFilter:
    """The list's filters from the query string; a bad one is a 400 naming it."""
    query = request.query_params
    statuses = [s for s in query.getlist("status") if s]
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise UIError(400, f"unknown status '{unknown[0]}' (expected one of {', '.join(STATUSES)})")
    result = query.get("result") or None
    if result is not None and result not in RESULTS:
        raise UIError(400, f"unknown result '{result}' (expected success, failure or none)")
    return InvocationFilter(
        statuses=statuses or None, result=result,
        service=query.get("service") or None, handler=query.get("handler") or None,
        key=query.get("key") if query.get("key") else None, deployment=query.get("deployment") or None,
        since=_time("since", query.get("since", "")), until=_time("until", query.get("until", "")),
        **_text_filter((query.get("q") or "").strip()),
    )


def _text_filter(text: str) -> InvocationFilter:
    """A whole invocation id is looked up by its primary key; anything else (an id's start, an
    idempotency key, a caller's id) is matched while walking the list."""
    if not text:
        return InvocationFilter()
    return InvocationFilter(id=text) if is_invocation_id(text) else InvocationFilter(text=text)


def _cursor(value: str) -> typing.Optional[typing.Tuple[datetime, str]]:
    """The keyset cursor `<created_at ISO>~<id>` of the previous page's last row."""
    if not value:
        return None
    at, _, last_id = value.partition("~")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or not is_invocation_id(last_id):
        raise UIError(400, f"bad page cursor '{value}'")
    return moment, last_id


def add_invocation_pages(router: APIRouter, engine: Gateway) -> None:
    store = engine.store

    @router.get("/invocations", name="ui_invocations")
    async def invocations(request: Request) -> Response:
        filters = parse_filters(request)
        cursor = _cursor(request.query_params.get("after", ""))
        rows = await store.browse_invocations(filters, limit=PAGE_SIZE + 1, cursor=cursor)
        more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        counts = await store.status_counts(filters)
        keep = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
        next_after = f"{rows[-1]['created_at'].isoformat()}~{rows[-1]['id']}" if more else None
        services = sorted(row["name"] for row in await store.list_services())
        template = "_invocation_rows.html" if request.headers.get("hx-request") else "invocations.html"
        return render(request, template, rows=rows, counts=counts, statuses=STATUSES, cap=COUNT_CAP,
                      filters=filters, query=request.query_params, keep=keep, next_after=next_after,
                      first_page=cursor is None, services=services, results=RESULTS,
                      bulk_operations=BULK_OPERATIONS, query_string=urlencode(keep))

    async def load(invocation_id: str) -> typing.Dict[str, typing.Any]:
        if not is_invocation_id(invocation_id):
            raise UIError(400, f"bad invocation id '{invocation_id}'")
        invocation = await store.browse_invocation(invocation_id)
        if invocation is None:
            raise UIError(404, f"invocation {invocation_id} not found (never submitted, or purged)")
        entries = timeline(await store.browse_journal(invocation_id))
        statuses = await store.callee_statuses(callee_ids(entries))
        for entry in entries:
            entry.callee_status = statuses.get(entry.callee or "")
        return {"inv": invocation, "entries": entries, "operations": OPERATIONS, "poll_s": POLL_S}

    @router.get("/invocations/{invocation_id}", name="ui_invocation")
    async def invocation(request: Request, invocation_id: str) -> Response:
        return render(request, "invocation.html", **await load(invocation_id))

    @router.get("/invocations/{invocation_id}/live", name="ui_invocation_live")
    async def invocation_live(request: Request, invocation_id: str) -> Response:
        """The part of the page that changes while it runs; polling stops once it completed."""
        context = await load(invocation_id)
        done = context["inv"]["status"] == "completed"
        return render(request, "_invocation_live.html", STOP_POLLING if done else 200, **context)
