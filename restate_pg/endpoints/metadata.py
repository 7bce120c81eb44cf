"""A manifest's services as Restate's admin API describes them (`ServiceMetadata`,
`HandlerMetadata`), the documents the registry stores and the admin router serves.

Each handler's document also carries what the ingress needs to accept and answer a request for
it, in restate-pg's own fields: `kind` (`exclusive`, `shared`, `workflow`, or None for a plain
service), `input` (`required`, `content_type`, `json_schema`: the manifest's input payload, its
defaults filled in) and `output` (`content_type`, `set_content_type_if_empty`, `json_schema`).
"""

from __future__ import annotations

import typing
from datetime import timedelta

from restate_pg.api.durations import format_duration
from restate_pg.api.metadata import DEFAULT_RETENTION, HANDLER_TYPES
from restate_pg.endpoints.manifest import Handler, InputPayload, OutputPayload, RetryPolicy, Service

__all__ = ["SERVICE_TYPES", "service_document"]

#: Restate's names of the manifest's service types.
SERVICE_TYPES = {"SERVICE": "Service", "VIRTUAL_OBJECT": "VirtualObject", "WORKFLOW": "Workflow"}
#: Restate's defaults, shown where the endpoint sets nothing.
_DEFAULT_TIMEOUT = timedelta(minutes=1)
_DEFAULT_INPUT = InputPayload()
_DEFAULT_OUTPUT = OutputPayload()


def service_document(service: Service, deployment_id: str, revision: int) -> typing.Dict[str, typing.Any]:
    """`service` as Restate's `ServiceMetadata`, None where Restate omits a field."""
    public = not service.ingress_private
    return {
        "name": service.name,
        "ty": SERVICE_TYPES[service.ty],
        "handlers": [_handler_document(service, handler, public) for handler in service.handlers],
        "documentation": service.documentation,
        "metadata": service.metadata or None,
        "deployment_id": deployment_id,
        "revision": revision,
        "public": public,
        "idempotency_retention": _duration(service.idempotency_retention_ms, DEFAULT_RETENTION),
        "workflow_completion_retention": _workflow_retention(service),
        "journal_retention": _duration(service.journal_retention_ms),
        "inactivity_timeout": _duration(service.inactivity_timeout_ms, _DEFAULT_TIMEOUT),
        "abort_timeout": _duration(service.abort_timeout_ms, _DEFAULT_TIMEOUT),
        "enable_lazy_state": bool(service.enable_lazy_state),
        "retry_policy": _service_retry_policy(service.retry_policy),
    }


def _handler_document(service: Service, handler: Handler, service_public: bool) -> typing.Dict[str, typing.Any]:
    kind = handler.kind(service.ty)
    accepted = handler.input or _DEFAULT_INPUT
    returned = handler.output or _DEFAULT_OUTPUT
    return {
        "name": handler.name,
        "ty": HANDLER_TYPES[kind],
        "documentation": handler.documentation,
        "metadata": handler.metadata or None,
        "public": service_public if handler.ingress_private is None else not handler.ingress_private,
        "input_description": input_description(accepted),
        "output_description": output_description(returned),
        "input_json_schema": accepted.json_schema if accepted.content_type is not None else None,
        "output_json_schema": returned.json_schema if returned.content_type is not None else None,
        "idempotency_retention": _duration(handler.idempotency_retention_ms),
        "workflow_completion_retention": _duration(handler.workflow_completion_retention_ms),
        "journal_retention": _duration(handler.journal_retention_ms),
        "inactivity_timeout": _duration(handler.inactivity_timeout_ms),
        "abort_timeout": _duration(handler.abort_timeout_ms),
        "enable_lazy_state": handler.enable_lazy_state,
        "retry_policy": _handler_retry_policy(handler.retry_policy),
        # restate-pg's own: what the ingress checks a request against, and answers with
        "kind": kind,
        "input": {"required": accepted.required, "content_type": accepted.content_type,
                  "json_schema": accepted.json_schema},
        "output": {"content_type": returned.content_type,
                   "set_content_type_if_empty": returned.set_content_type_if_empty,
                   "json_schema": returned.json_schema},
    }


def input_description(payload: InputPayload) -> str:
    """What a handler accepts, in Restate's words: `none`, a media range, `JSON '<title>'`, or
    `one of [...]` (with an empty body only beside one other rule, that rule alone)."""
    rules = [] if payload.required else ["none"]
    if payload.content_type is not None:
        rules.append(_json_info(payload.json_schema) or _media_range(payload.content_type))
    if not rules:
        return "<invalid rules>"
    if len(rules) == 2 and rules[0] == "none":
        return rules[1]
    return rules[0] if len(rules) == 1 else "one of [" + ", ".join(f'"{rule}"' for rule in rules) + "]"


def output_description(payload: OutputPayload) -> str:
    """What a handler returns, in Restate's words: `none`, `[optional ]<content type>`, or JSON info."""
    if payload.content_type is None:
        return "none"
    return _json_info(payload.json_schema) or (
        ("optional " if payload.set_content_type_if_empty else "") + payload.content_type)


def _json_info(schema: typing.Any) -> typing.Optional[str]:
    if isinstance(schema, dict):
        if isinstance(schema.get("title"), str):
            return f"JSON '{schema['title']}'"
        if isinstance(schema.get("type"), str):
            return f"JSON {schema['type']}"
    return None


def _media_range(content_type: str) -> str:
    kind, _, subtype = content_type.strip().partition("/")
    return f"{kind}/{subtype}"


def _duration(millis: typing.Optional[int], default: typing.Optional[timedelta] = None) -> typing.Optional[str]:
    if millis is None:
        return None if default is None else format_duration(default)
    return format_duration(timedelta(milliseconds=millis))


def _workflow_retention(service: Service) -> typing.Optional[str]:
    """A workflow's completion retention: its workflow handler's, else the default."""
    if service.ty != "WORKFLOW":
        return None
    for handler in service.handlers:
        if handler.workflow_completion_retention_ms is not None:
            return _duration(handler.workflow_completion_retention_ms)
    return format_duration(DEFAULT_RETENTION)


def _on_max_attempts(value: typing.Optional[str]) -> typing.Optional[str]:
    return None if value is None else value.capitalize()


def _service_retry_policy(policy: RetryPolicy) -> typing.Dict[str, typing.Any]:
    """Restate's `ServiceRetryPolicyMetadata`: every field, Restate's defaults where unset."""
    return {
        "initial_interval": _duration(policy.initial_interval_ms, timedelta(milliseconds=100)),
        "exponentiation_factor": 2.0 if policy.exponentiation_factor is None else policy.exponentiation_factor,
        "max_attempts": policy.max_attempts,
        "max_interval": _duration(policy.max_interval_ms),
        "on_max_attempts": _on_max_attempts(policy.on_max_attempts) or "Pause",
    }


def _handler_retry_policy(policy: RetryPolicy) -> typing.Dict[str, typing.Any]:
    """Restate's `HandlerRetryPolicyMetadata`: only what the handler sets (`max_attempts` always)."""
    described = {
        "initial_interval": _duration(policy.initial_interval_ms),
        "exponentiation_factor": policy.exponentiation_factor,
        "max_interval": _duration(policy.max_interval_ms),
        "on_max_attempts": _on_max_attempts(policy.on_max_attempts),
    }
    return {"max_attempts": policy.max_attempts, **{k: v for k, v in described.items() if v is not None}}
