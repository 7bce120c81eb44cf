"""What a worker registers about its application: its deployment id and its services' metadata.

The metadata has the shape of Restate's admin API (`ServiceMetadata`, `HandlerMetadata`), so that
the admin router can serve it as stored, and tools written for Restate read it unchanged.
"""

from __future__ import annotations

import hashlib
import inspect
import typing
from datetime import timedelta

from restate_pg.api.definitions import Handler, ServiceDefinition
from restate_pg.api.durations import format_duration
from restate_pg.core.ids import deployment_id_from_digest

#: Restate's names of the service types.
SERVICE_TYPES = {"service": "Service", "virtual_object": "VirtualObject", "workflow": "Workflow"}
#: Restate's names of the handler types; a plain service's handlers are "Shared".
HANDLER_TYPES = {None: "Shared", "shared": "Shared", "exclusive": "Exclusive", "workflow": "Workflow"}


def derive_deployment_id(services: typing.Iterable[ServiceDefinition]) -> str:
    """A deployment id that changes whenever a service, a handler or a handler's source changes.

    Source text, not bytecode: two workers running the same code on different Python versions
    derive the same id. Changes in code a handler calls are not seen; set an explicit deployment
    (a release tag, a commit) when that matters.
    """
    digest = hashlib.sha256()
    for service in sorted(services, key=lambda s: s.name):
        digest.update(f"{service.name}\0{service.service_type}\0".encode())
        for name, handler in sorted(service.handlers.items()):
            digest.update(f"{name}\0{handler.kind}\0{_source(handler)}\0".encode())
    return deployment_id_from_digest(digest.digest())


def _source(handler: Handler) -> str:
    try:
        return inspect.getsource(handler.fn)
    except (OSError, TypeError):  # defined in a REPL or generated: its name must do
        return handler.fn.__qualname__


#: Retentions of completed invocations when neither code nor operator sets one (Restate's too).
DEFAULT_RETENTION = timedelta(days=1)

#: The timeouts and retentions a service or handler may set in code, by Restate's names.
_SETTINGS = (("idempotency_retention", "idempotency_retention"), ("journal_retention", "journal_retention"),
             ("inactivity_timeout", "inactivity_timeout"), ("abort_timeout", "abort_timeout"))


def service_metadata(service: ServiceDefinition) -> typing.Dict[str, typing.Any]:
    """The registered description of one service, with the settings its code gives (an
    operator's changes are kept apart, in the service registry)."""
    described: typing.Dict[str, typing.Any] = {
        "name": service.name,
        "ty": SERVICE_TYPES[service.service_type],
        "documentation": service.description,
        "metadata": service.metadata,
        "handlers": [handler_metadata(h) for h in service.handlers.values()],
        "idempotency_retention": format_duration(service.idempotency_retention or DEFAULT_RETENTION),
        "journal_retention": format_duration(service.journal_retention or DEFAULT_RETENTION),
    }
    if service.service_type == "workflow":
        described["workflow_completion_retention"] = format_duration(service.workflow_retention or DEFAULT_RETENTION)
    for restate_name, attribute in _SETTINGS[2:]:
        if getattr(service, attribute) is not None:
            described[restate_name] = format_duration(getattr(service, attribute))
    return described


def handler_metadata(handler: Handler) -> typing.Dict[str, typing.Any]:
    described: typing.Dict[str, typing.Any] = {
        "name": handler.name,
        "ty": HANDLER_TYPES[handler.kind],
        "documentation": handler.description,
        "metadata": handler.metadata,
        "public": not handler.is_private,
        "input_description": _description(handler.accept if handler.takes_input else None),
        "output_description": _description(handler.content_type if handler.output_type is not type(None) else None),
    }
    for restate_name, attribute in _SETTINGS:
        if getattr(handler, attribute) is not None:
            described[restate_name] = format_duration(getattr(handler, attribute))
    for key, hint in (("input_json_schema", handler.input_type if handler.takes_input else None),
                      ("output_json_schema", handler.output_type)):
        schema = json_schema(hint)
        if schema is not None:
            described[key] = schema
    return described


def _description(content_type: typing.Optional[str]) -> str:
    return "none" if content_type is None else f"value with content-type '{content_type}'"


def json_schema(hint: typing.Any) -> typing.Optional[typing.Dict[str, typing.Any]]:
    """The JSON schema of a type hint, when pydantic can describe it."""
    if hint is None or hint is type(None):
        return None
    try:
        from pydantic import TypeAdapter

        return TypeAdapter(hint).json_schema()
    except Exception:  # a type pydantic cannot describe (bytes with a custom serde, say)
        return None
