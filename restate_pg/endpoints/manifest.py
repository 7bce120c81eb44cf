"""The endpoint manifest: what an SDK endpoint answers to `GET /discover`, read into typed values.

Its shape is Restate's `service-protocol/endpoint_manifest_schema.json` (manifest versions 1 to
4: later versions only add optional fields). Two kinds of failure, as Restate has them:

- `MalformedManifest`: the JSON does not have the manifest's shape (a field of the wrong type, a
  required one missing, a name outside the schema's pattern). Discovery reports it as Restate's
  "cannot be decoded" error, with the response's body.
- `ManifestRejected`: well formed, but Restate's registry would refuse it (a reserved service
  name, a handler type its service type cannot have, a retention where it means nothing, a
  private service with a public handler, an input content type that is no media range). The
  message is Restate's, with its error code when it has one.

Fields the schema does not know are ignored: an SDK newer than this reader may add some, and
what they mean cannot be acted on here anyway. Durations are kept in milliseconds, as the
manifest gives them.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field

from restate_pg.core.errors import RestatePgError

__all__ = [
    "Handler",
    "InputPayload",
    "Manifest",
    "ManifestError",
    "ManifestRejected",
    "MalformedManifest",
    "OutputPayload",
    "RetryPolicy",
    "Service",
    "parse_manifest",
]

PROTOCOL_MODES = ("BIDI_STREAM", "REQUEST_RESPONSE")
SERVICE_TYPES = ("SERVICE", "VIRTUAL_OBJECT", "WORKFLOW")
HANDLER_TYPES = ("WORKFLOW", "EXCLUSIVE", "SHARED")
ON_MAX_ATTEMPTS = ("PAUSE", "KILL")
_SERVICE_NAME = re.compile(r"^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9._-]*$")
_HANDLER_NAME = re.compile(r"^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*$")
_MAX_VERSION = 2**31 - 1
#: Restate's names of the service types in its errors (Rust's Debug of its `ServiceType`).
_RESTATE_SERVICE_TYPE = {"SERVICE": "Service", "VIRTUAL_OBJECT": "VirtualObject", "WORKFLOW": "Workflow"}


class ManifestError(RestatePgError):
    """A manifest that cannot be registered; `restate_code` is Restate's code for it, if any."""

    def __init__(self, message: str, restate_code: typing.Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.restate_code = restate_code


class MalformedManifest(ManifestError):
    """The manifest's JSON does not have the schema's shape; the message says where."""


class ManifestRejected(ManifestError):
    """A well-formed manifest Restate's registry refuses."""


@dataclass(frozen=True)
class InputPayload:
    """What a handler accepts. `content_type` None: no body at all; `required` False: an empty
    body without a content type is accepted besides the content type."""

    required: bool = False
    content_type: typing.Optional[str] = "*/*"
    json_schema: typing.Any = None


@dataclass(frozen=True)
class OutputPayload:
    """What a handler returns: its content type (None: nothing) and whether it is set on an
    empty output too."""

    content_type: typing.Optional[str] = "application/json"
    set_content_type_if_empty: bool = False
    json_schema: typing.Any = None


@dataclass(frozen=True)
class RetryPolicy:
    """A retry policy as the manifest gives it; None: the server's default."""

    initial_interval_ms: typing.Optional[int] = None
    max_interval_ms: typing.Optional[int] = None
    max_attempts: typing.Optional[int] = None
    exponentiation_factor: typing.Optional[float] = None
    on_max_attempts: typing.Optional[str] = None  # PAUSE | KILL

    @property
    def is_set(self) -> bool:
        return any(value is not None for value in vars(self).values())


@dataclass(frozen=True)
class _Options:
    """What a service and its handlers may both set (a handler's wins)."""

    documentation: typing.Optional[str] = None
    metadata: typing.Dict[str, str] = field(default_factory=dict)
    inactivity_timeout_ms: typing.Optional[int] = None
    abort_timeout_ms: typing.Optional[int] = None
    journal_retention_ms: typing.Optional[int] = None
    idempotency_retention_ms: typing.Optional[int] = None
    enable_lazy_state: typing.Optional[bool] = None
    ingress_private: typing.Optional[bool] = None
    retry_policy: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class Handler(_Options):
    name: str = ""
    ty: typing.Optional[str] = None  # WORKFLOW | EXCLUSIVE | SHARED; None: the service type's default
    input: typing.Optional[InputPayload] = None  # None: the schema's default (anything, or nothing)
    output: typing.Optional[OutputPayload] = None  # None: the schema's default (JSON)
    workflow_completion_retention_ms: typing.Optional[int] = None

    def kind(self, service_ty: str) -> typing.Optional[str]:
        """restate-pg's handler kind (`exclusive`, `shared`, `workflow`; None for a plain
        service's handler), as Restate resolves an unset type; ManifestRejected when the
        service type cannot have this handler type."""
        resolved = {
            ("SERVICE", None): None, ("SERVICE", "SHARED"): None,
            ("VIRTUAL_OBJECT", None): "exclusive", ("VIRTUAL_OBJECT", "EXCLUSIVE"): "exclusive",
            ("VIRTUAL_OBJECT", "SHARED"): "shared",
            ("WORKFLOW", None): "shared", ("WORKFLOW", "SHARED"): "shared", ("WORKFLOW", "WORKFLOW"): "workflow",
        }
        if (service_ty, self.ty) not in resolved:
            handler_ty = "None" if self.ty is None else f"Some({self.ty.capitalize()})"
            raise ManifestRejected(f"invalid combination of service type and handler type "
                                   f"'({_RESTATE_SERVICE_TYPE[service_ty]}, {handler_ty})'")
        return resolved[(service_ty, self.ty)]


@dataclass(frozen=True)
class Service(_Options):
    name: str = ""
    ty: str = "SERVICE"  # SERVICE | VIRTUAL_OBJECT | WORKFLOW
    handlers: typing.Tuple[Handler, ...] = ()


@dataclass(frozen=True)
class Manifest:
    min_protocol_version: int
    max_protocol_version: int
    services: typing.Tuple[Service, ...]
    protocol_mode: typing.Optional[str] = None  # BIDI_STREAM | REQUEST_RESPONSE
    lambda_compression: typing.Optional[str] = None


def parse_manifest(document: typing.Any) -> Manifest:
    """The manifest `document` (parsed JSON) describes, checked as Restate's registry checks it."""
    reader = _Reader(document, "manifest")
    manifest = Manifest(
        min_protocol_version=reader.integer("minProtocolVersion", required=True, low=1, high=_MAX_VERSION),
        max_protocol_version=reader.integer("maxProtocolVersion", required=True, low=1, high=_MAX_VERSION),
        services=tuple(_service(item) for item in reader.items("services", required=True)),
        protocol_mode=reader.choice("protocolMode", PROTOCOL_MODES),
        lambda_compression=reader.choice("lambdaCompression", ("zstd",)),
    )
    for service in manifest.services:
        _check_service(service)
    return manifest


def _service(reader: "_Reader") -> Service:
    name = reader.text("name", required=True, pattern=_SERVICE_NAME)
    return Service(
        name=name,
        ty=typing.cast(str, reader.choice("ty", SERVICE_TYPES, required=True)),
        handlers=tuple(_handler(item) for item in reader.items("handlers", required=True)),
        **_options(reader),
    )


def _handler(reader: "_Reader") -> Handler:
    return Handler(
        name=reader.text("name", required=True, pattern=_HANDLER_NAME),
        ty=reader.choice("ty", HANDLER_TYPES),
        input=_input(reader.child("input")),
        output=_output(reader.child("output")),
        workflow_completion_retention_ms=reader.integer("workflowCompletionRetention", low=0),
        **_options(reader),
    )


def _options(reader: "_Reader") -> typing.Dict[str, typing.Any]:
    metadata = reader.child("metadata")
    return {
        "documentation": reader.text("documentation"),
        "metadata": {} if metadata is None else metadata.string_map(),
        "inactivity_timeout_ms": reader.integer("inactivityTimeout", low=0),
        "abort_timeout_ms": reader.integer("abortTimeout", low=0),
        "journal_retention_ms": reader.integer("journalRetention", low=0),
        "idempotency_retention_ms": reader.integer("idempotencyRetention", low=0),
        "enable_lazy_state": reader.boolean("enableLazyState"),
        "ingress_private": reader.boolean("ingressPrivate"),
        "retry_policy": RetryPolicy(
            initial_interval_ms=reader.integer("retryPolicyInitialInterval", low=0),
            max_interval_ms=reader.integer("retryPolicyMaxInterval", low=0),
            max_attempts=reader.integer("retryPolicyMaxAttempts", low=0),
            exponentiation_factor=reader.number("retryPolicyExponentiationFactor"),
            on_max_attempts=reader.choice("retryPolicyOnMaxAttempts", ON_MAX_ATTEMPTS),
        ),
    }


def _input(reader: typing.Optional["_Reader"]) -> typing.Optional[InputPayload]:
    if reader is None:
        return None
    return InputPayload(required=bool(reader.boolean("required")), content_type=reader.text("contentType"),
                        json_schema=reader.raw("jsonSchema"))


def _output(reader: typing.Optional["_Reader"]) -> typing.Optional[OutputPayload]:
    if reader is None:
        return None
    return OutputPayload(content_type=reader.text("contentType"),
                         set_content_type_if_empty=bool(reader.boolean("setContentTypeIfEmpty")),
                         json_schema=reader.raw("jsonSchema"))


# -- Restate's registry rules -----------------------------------------------------------------


def _check_service(service: Service) -> None:
    lower = service.name.lower()
    if lower.startswith("restate") or lower == "openapi":
        raise ManifestRejected(f"cannot insert/modify service '{service.name}' as it contains a reserved name",
                               "META0005")
    public = not service.ingress_private
    for handler in service.handlers:
        kind = handler.kind(service.ty)
        if handler.workflow_completion_retention_ms is not None and kind != "workflow":
            raise ManifestRejected(f"{handler.name} sets the workflow_completion_retention, but it's not a "
                                   "Workflow handler")
        if handler.idempotency_retention_ms is not None and kind == "workflow":
            raise ManifestRejected(f"{handler.name} sets the idempotency_retention, but it's a Workflow handler")
        if not public and handler.ingress_private is False:
            raise ManifestRejected(
                f"The service {service.name} is private, but the {handler.name} is explicitly set as public. This is "
                "not supported. Please make the service public, and hide the individual handlers")
        if handler.input is not None and handler.input.content_type is not None:
            reason = media_range_problem(handler.input.content_type)
            if reason is not None:
                raise ManifestRejected(f"the handler '{handler.name}' input content-type is not valid: can't parse "
                                       f"the content-type '{handler.input.content_type}': {reason}")
        if handler.output is not None and handler.output.content_type is not None:
            if not _is_header_value(handler.output.content_type):
                raise ManifestRejected(f"the handler '{handler.name}' output content-type is not valid: "
                                       "failed to parse header value")


def media_range_problem(content_type: str) -> typing.Optional[str]:
    """Why `content_type` is no media range Restate accepts for an input (`type/subtype`,
    `type/*` or `*/*`), or None when it is one."""
    kind, slash, subtype = content_type.strip().partition("/")
    if not slash:
        return "must contain one /"
    if kind == "*" and subtype != "*":
        return "the wildcard format */subType is not supported"
    return None


def _is_header_value(value: str) -> bool:
    return all(char == "\t" or 32 <= ord(char) < 127 or ord(char) > 127 for char in value)


# -- reading JSON with errors that say where --------------------------------------------------


class _Reader:
    """One JSON object of the manifest, read field by field; failures name the field's path."""

    def __init__(self, document: typing.Any, path: str) -> None:
        if not isinstance(document, dict):
            raise MalformedManifest(f"{path}: expected an object, got {_kind(document)}")
        self.document = document
        self.path = path

    def _get(self, key: str, required: bool) -> typing.Any:
        value = self.document.get(key)
        if value is None and required:
            raise MalformedManifest(f"{self.path}: missing field `{key}`")
        return value

    def _fail(self, key: str, expected: str, value: typing.Any) -> typing.NoReturn:
        raise MalformedManifest(f"{self.path}.{key}: expected {expected}, got {_kind(value)}")

    def raw(self, key: str) -> typing.Any:
        return self.document.get(key)

    def text(self, key: str, required: bool = False, pattern: typing.Optional[typing.Pattern[str]] = None) -> typing.Any:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self._fail(key, "a string", value)
        if pattern is not None and not pattern.match(value):
            raise MalformedManifest(f"{self.path}.{key}: {value!r} does not match {pattern.pattern!r}")
        if "\x00" in value:
            raise MalformedManifest(f"{self.path}.{key}: contains a NUL character")
        return value

    def choice(self, key: str, allowed: typing.Sequence[str], required: bool = False) -> typing.Optional[str]:
        value = self._get(key, required)
        if value is None:
            return None
        if value not in allowed:
            raise MalformedManifest(f"{self.path}.{key}: unknown variant {value!r}, expected one of {', '.join(allowed)}")
        return typing.cast(str, value)

    def integer(self, key: str, required: bool = False, low: int = 0, high: int = 2**64 - 1) -> typing.Any:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail(key, "an integer", value)
        if not low <= value <= high:
            raise MalformedManifest(f"{self.path}.{key}: {value} is out of range [{low}, {high}]")
        return value

    def number(self, key: str) -> typing.Optional[float]:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self._fail(key, "a number", value)
        return float(value)

    def boolean(self, key: str) -> typing.Optional[bool]:
        value = self._get(key, False)
        if value is None:
            return None
        if not isinstance(value, bool):
            self._fail(key, "a boolean", value)
        return value

    def child(self, key: str) -> typing.Optional["_Reader"]:
        value = self._get(key, False)
        return None if value is None else _Reader(value, f"{self.path}.{key}")

    def items(self, key: str, required: bool = False) -> typing.List["_Reader"]:
        value = self._get(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            self._fail(key, "an array", value)
        return [_Reader(item, f"{self.path}.{key}[{index}]") for index, item in enumerate(value)]

    def string_map(self) -> typing.Dict[str, str]:
        for key, value in self.document.items():
            if not isinstance(value, str):
                self._fail(key, "a string", value)
            if "\x00" in key or "\x00" in value:
                raise MalformedManifest(f"{self.path}.{key}: contains a NUL character")
        return dict(self.document)


def _kind(value: typing.Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)
