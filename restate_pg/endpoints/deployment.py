"""A registered SDK endpoint as an attempt needs it: where it is, the protocol version its
invocations speak, and each handler's type and policies, read from the manifest it answered
discovery with (`deployment.manifest`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from restate_pg.api.retry import RetrySchedule
from restate_pg.protocol.versions import MAX_VERSION, negotiate

_SERVICE_TYPES = {"SERVICE": "service", "VIRTUAL_OBJECT": "virtual_object", "WORKFLOW": "workflow"}
_HANDLER_TYPES = {"EXCLUSIVE": "exclusive", "SHARED": "shared", "WORKFLOW": "workflow"}
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class EndpointHandler:
    deployment: str
    uri: str
    version: int
    use_http_11: bool
    additional_headers: typing.Dict[str, str]
    service: str
    name: str
    service_ty: str
    handler_ty: typing.Optional[str]
    lazy_state: bool = False
    retry_schedule: RetrySchedule = field(default_factory=RetrySchedule)
    journal_retention_ms: int = DAY_MS
    idempotency_retention_ms: int = DAY_MS
    workflow_retention_ms: int = DAY_MS
    abort_timeout: float = 600.0
    #: Seconds without news before a bidirectional exchange ends (None: the worker's default).
    inactivity_timeout: typing.Optional[float] = None
    #: Exchanges stay open both ways (HTTP/2 and an endpoint that streams), else request-response.
    bidirectional: bool = False
    #: The ingress's input rules: whether it takes an input, must have one, and its content types.
    takes_input: bool = True
    input_required: bool = False
    accept: str = "application/json"
    content_type: str = "application/json"
    ingress_private: typing.Optional[bool] = None
    handler_private: typing.Optional[bool] = None
    #: The JSON schema the endpoint publishes for the input (checked at the door, as in-process).
    input_schema: typing.Optional[typing.Dict[str, typing.Any]] = None

    @property
    def exclusive(self) -> bool:
        return self.handler_ty == "exclusive"

    def retention_ms(self, idempotent: bool) -> int:
        if self.handler_ty == "workflow":
            return self.workflow_retention_ms
        return self.idempotency_retention_ms if idempotent else self.journal_retention_ms


@dataclass(frozen=True)
class EndpointDeployment:
    id: str
    uri: str
    version: int
    use_http_11: bool
    additional_headers: typing.Dict[str, str]
    handlers: typing.Dict[typing.Tuple[str, str], EndpointHandler]

    @property
    def services(self) -> typing.List[str]:
        return sorted({service for service, _ in self.handlers})

    def handler(self, service: str, name: str) -> typing.Optional[EndpointHandler]:
        return self.handlers.get((service, name))

    @classmethod
    def from_row(cls, row: typing.Mapping[str, typing.Any], server_max: int = MAX_VERSION) -> "EndpointDeployment":
        manifest = row["manifest"] or {}
        version = negotiate(row["min_protocol_version"], row["max_protocol_version"], server_max)
        headers = dict(row.get("additional_headers") or {})
        handlers: typing.Dict[typing.Tuple[str, str], EndpointHandler] = {}
        for service in manifest.get("services", []):
            service_ty = _SERVICE_TYPES.get(service.get("ty", "SERVICE"), "service")
            for handler in service.get("handlers", []):
                handler_ty = _HANDLER_TYPES.get(handler.get("ty", "")) if service_ty != "service" else None
                if service_ty == "virtual_object" and handler_ty is None:
                    handler_ty = "exclusive"
                if service_ty == "workflow" and handler_ty is None:
                    handler_ty = "shared"
                handlers[(service["name"], handler["name"])] = EndpointHandler(
                    deployment=row["id"], uri=row["uri"], version=version, use_http_11=bool(row.get("use_http_11")),
                    additional_headers=headers, service=service["name"], name=handler["name"],
                    service_ty=service_ty, handler_ty=handler_ty,
                    lazy_state=bool(handler.get("enableLazyState", service.get("enableLazyState", False))),
                    retry_schedule=_retry(service.get("retryPolicy"), handler.get("retryPolicy")),
                    journal_retention_ms=_ms(handler, service, "journalRetention", DAY_MS),
                    idempotency_retention_ms=_ms(handler, service, "idempotencyRetention", DAY_MS),
                    workflow_retention_ms=int(handler.get("workflowCompletionRetention") or DAY_MS),
                    abort_timeout=_ms(handler, service, "abortTimeout", 600_000) / 1000,
                    inactivity_timeout=_seconds(handler, service, "inactivityTimeout"),
                    bidirectional=manifest.get("protocolMode", "BIDI_STREAM") == "BIDI_STREAM"
                    and not row.get("use_http_11") and _ms(handler, service, "inactivityTimeout", 1) > 0,
                    **_io(handler), ingress_private=service.get("ingressPrivate"),
                    handler_private=handler.get("ingressPrivate"),
                )
        return cls(row["id"], row["uri"], version, bool(row.get("use_http_11")), headers, handlers)


def _ms(handler: typing.Mapping[str, typing.Any], service: typing.Mapping[str, typing.Any], name: str, default: int) -> int:
    value = handler.get(name, service.get(name))
    return default if value is None else int(value)


def _seconds(handler: typing.Mapping[str, typing.Any], service: typing.Mapping[str, typing.Any], name: str) -> typing.Optional[float]:
    value = handler.get(name, service.get(name))
    return None if value is None else int(value) / 1000


def _retry(*policies: typing.Optional[typing.Mapping[str, typing.Any]]) -> RetrySchedule:
    values: typing.Dict[str, typing.Any] = {}
    for policy in policies:  # the handler's (last) wins over the service's
        for name, target, scale in (("initialInterval", "initial_interval", 1000), ("maxInterval", "max_interval", 1000),
                                    ("exponentiationFactor", "factor", 1), ("maxAttempts", "max_attempts", 1)):
            if policy and policy.get(name) is not None:
                values[target] = policy[name] / scale if scale != 1 else policy[name]
        if policy and policy.get("onMaxAttempts"):
            values["on_max_attempts"] = "kill" if str(policy["onMaxAttempts"]).upper() == "KILL" else "pause"
    return RetrySchedule(**values)


def _io(handler: typing.Mapping[str, typing.Any]) -> typing.Dict[str, typing.Any]:
    """The input and output of a handler as its manifest describes them: no `input` object means
    any input; an `input` without content type means none; `required` means not empty."""
    described: typing.Dict[str, typing.Any] = {}
    payload = handler.get("input")
    if isinstance(payload, dict):
        if payload.get("contentType"):
            described["accept"] = payload["contentType"]
        else:
            described["takes_input"] = False
        described["input_required"] = bool(payload.get("required", False))
        if isinstance(payload.get("jsonSchema"), dict) and payload["jsonSchema"]:
            described["input_schema"] = payload["jsonSchema"]
    output = handler.get("output")
    if isinstance(output, dict) and output.get("contentType"):
        described["content_type"] = output["contentType"]
    return described
