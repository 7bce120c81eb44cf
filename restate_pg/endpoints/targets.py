"""What an endpoint's calls need to know of their targets: each handler's service and handler
type, to build the callee's row."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from restate_pg.core.ids import idempotent_invocation_id, new_invocation_id, workflow_invocation_id
from restate_pg.core.records import Submission
from restate_pg.api.flow import FlowOptions


@dataclass(frozen=True)
class CallTarget:
    """A registered handler, in-process or on an endpoint."""

    service: str
    handler: str
    service_ty: str  # service | virtual_object | workflow
    handler_ty: typing.Optional[str]  # exclusive | shared | workflow, None for a plain service

    def invocation_id(self, key: typing.Optional[str], idempotency_key: typing.Optional[str],
                      scope: typing.Optional[str] = None) -> str:
        """Derived for workflow runs and idempotent requests (within their scope), else fresh."""
        if self.handler_ty == "workflow":
            return workflow_invocation_id(self.service, key, scope)
        if idempotency_key is not None:
            return idempotent_invocation_id(self.service, key, self.handler, idempotency_key, scope)
        return new_invocation_id(key)

    def submission(
        self, key: typing.Optional[str], payload: bytes, *, idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None, delay_ms: typing.Optional[int] = None,
        caller_id: typing.Optional[str] = None, caller_command: typing.Optional[int] = None,
        flow: typing.Optional[FlowOptions] = None,
    ) -> Submission:
        flow = flow or FlowOptions()
        return Submission(
            id=self.invocation_id(key, idempotency_key, flow.scope), service=self.service, handler=self.handler, key=key,
            service_ty=self.service_ty, handler_ty=self.handler_ty, input=payload, headers=dict(headers or {}),
            idempotency_key=idempotency_key, invoked_by="service", caller_id=caller_id,
            caller_command=caller_command, delay_ms=delay_ms,
            scope=flow.scope, limit_key=flow.limit_key, priority=flow.priority,
        )


class Targets(typing.Protocol):
    """The registered handlers, as the process running the attempt knows them."""

    def lookup(self, service: str, handler: str) -> typing.Optional[CallTarget]:
        """The handler, or None when no deployment registered it."""
