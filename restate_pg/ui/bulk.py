"""Bulk actions on the invocations a list's filters select: cancel, kill, pause, resume, purge or
purge the journal of each, through the same operation as one invocation's button
(`restate_pg.services.answers.perform`). A dry run first says how many it would touch; the action
then walks the selection page by page (keyset, as the list) and reports how each answered.

At most BULK_LIMIT invocations per request: past that, narrow the filters, or repeat (an action
that ends invocations, such as purge or kill, leaves the rest to the next request)."""

from __future__ import annotations

import collections
import typing

from fastapi import APIRouter, Request
from fastapi.responses import Response

from restate_pg.services.answers import perform
from restate_pg.services.gateway import Gateway
from restate_pg.ui.invocations import BULK_OPERATIONS, parse_filters
from restate_pg.ui.pages import UIError, form, render

#: The most invocations one request acts on.
BULK_LIMIT = 1000
_PAGE = 200


def add_bulk_routes(router: APIRouter, engine: Gateway) -> None:
    store = engine.store

    async def selection(request: Request) -> typing.List[str]:
        """The ids the filters of the query string select, newest first, at most BULK_LIMIT."""
        filters = parse_filters(request)
        ids: typing.List[str] = []
        cursor = None
        while len(ids) < BULK_LIMIT:
            rows = await store.browse_invocations(filters, limit=min(_PAGE, BULK_LIMIT - len(ids)), cursor=cursor)
            ids.extend(row["id"] for row in rows)
            if len(rows) < _PAGE:
                break
            cursor = (rows[-1]["created_at"], rows[-1]["id"])
        return ids

    @router.post("/invocations/bulk/{operation}", name="ui_bulk")
    async def bulk(request: Request, operation: str) -> Response:
        if operation not in BULK_OPERATIONS:
            raise UIError(404, f"unknown bulk operation '{operation}' (expected one of {', '.join(BULK_OPERATIONS)})")
        dry_run = (await form(request)).get("dry_run", "") not in ("", "0", "false")
        ids = await selection(request)
        capped = len(ids) >= BULK_LIMIT
        if dry_run:
            return render(request, "_bulk_answer.html", operation=operation, dry_run=True, count=len(ids),
                          capped=capped, limit=BULK_LIMIT, answers=[])
        answers: typing.Counter[typing.Tuple[int, str]] = collections.Counter()
        for invocation_id in ids:
            answer = await perform(engine, operation, invocation_id)
            answers[(answer.status, answer.message)] += 1
        return render(request, "_bulk_answer.html", operation=operation, dry_run=False, count=len(ids),
                      capped=capped, limit=BULK_LIMIT, answers=sorted(answers.items()))
