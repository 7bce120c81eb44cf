"""The operator's verbs from the UI: cancel, kill, pause, resume, purge, purge the journal and
restart as new, each confirmed in the browser first, performed through the services' operations
(`restate_pg.services.answers.perform`, as the admin API), and answered with the admin API's
status and message."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from restate_pg.services.answers import OPERATIONS, perform
from restate_pg.services.gateway import Gateway
from restate_pg.ui.pages import UIError, form, render


def add_action_routes(router: APIRouter, engine: Gateway) -> None:

    @router.post("/invocations/{invocation_id}/actions/{operation}", name="ui_action")
    async def act(request: Request, invocation_id: str, operation: str) -> Response:
        if operation not in OPERATIONS:
            raise UIError(404, f"unknown operation '{operation}' (expected one of {', '.join(OPERATIONS)})")
        options = {}
        if operation == "restart-as-new":
            prefix = str((await form(request)).get("from") or "0")
            if not prefix.isdigit():
                raise UIError(400, f"'from' must be a journal index (0 or more), got '{prefix}'")
            options["prefix"] = int(prefix)
        answer = await perform(engine, operation, invocation_id, **options)
        return render(request, "_answer.html", answer.status, operation=operation, answer=answer)
