"""How a request to a handler becomes a `Submission`: its invocation id and its row.

The ingress, a handler's calls and sends, and the client (over SQL or in the application's own
transaction) all start invocations; they share this so that the same request gets the same id
and the same row whichever way it arrives (a workflow id or an idempotency key then collides on
the invocation's primary key, however it was submitted).
"""

from __future__ import annotations

import typing

from restate_pg.api.definitions import Handler
from restate_pg.core.ids import idempotent_invocation_id, new_invocation_id, workflow_invocation_id
from restate_pg.core.records import Submission
from restate_pg.api.flow import FlowOptions

__all__ = ["FlowOptions", "idempotent_invocation_id", "invocation_id_for", "new_submission", "workflow_invocation_id"]


def invocation_id_for(handler: Handler, key: typing.Optional[str], idempotency_key: typing.Optional[str],
                      scope: typing.Optional[str] = None) -> str:
    """The id of a request to `handler`: derived for workflow runs and idempotent requests (within
    their scope), else fresh."""
    if handler.kind == "workflow":
        return workflow_invocation_id(handler.service_name, key, scope)
    if idempotency_key is not None:
        return idempotent_invocation_id(handler.service_name, key, handler.name, idempotency_key, scope)
    return new_invocation_id(key)


def new_submission(
    handler: Handler,
    key: typing.Optional[str],
    payload: bytes,
    *,
    idempotency_key: typing.Optional[str] = None,
    headers: typing.Optional[typing.Dict[str, str]] = None,
    delay_ms: typing.Optional[int] = None,
    invoked_by: str = "ingress",
    caller_id: typing.Optional[str] = None,
    caller_command: typing.Optional[int] = None,
    invocation_id: typing.Optional[str] = None,
    flow: typing.Optional[FlowOptions] = None,
) -> Submission:
    """A request to `handler` as the row `submit_invocation()` creates (id derived unless given)."""
    flow = flow or FlowOptions()
    return Submission(
        id=invocation_id if invocation_id is not None else invocation_id_for(handler, key, idempotency_key, flow.scope),
        service=handler.service_name,
        handler=handler.name,
        key=key,
        service_ty=handler.service.service_type,
        handler_ty=handler.kind,
        input=payload,
        headers=dict(headers or {}),
        idempotency_key=idempotency_key,
        invoked_by=invoked_by,
        caller_id=caller_id,
        caller_command=caller_command,
        delay_ms=delay_ms,
        scope=flow.scope,
        limit_key=flow.limit_key,
        priority=flow.priority,
        debounce_key=flow.debounce_key,
        check_backlog=flow.check_backlog,
    )
