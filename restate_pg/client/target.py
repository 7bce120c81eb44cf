"""What a client or an enqueue names as the handler to invoke.

A target is a handler function decorated on a `Service`, `VirtualObject` or `Workflow` (typed: its
serdes encode the input and decode the output), its `Handler`, or a `"Service/handler"` name.
Starting an invocation over SQL writes its row directly, so it needs the handler's definition
(its kind decides locking and run-once); a name is looked up in the `App` given for that. Over
HTTP the ingress knows the definitions, and a bare name is enough (JSON in and out).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import timedelta

from restate_pg.api.app import App
from restate_pg.api.definitions import Handler, handler_of
from restate_pg.api.serde import DefaultSerde, Serde
from restate_pg.api.flow import FlowOptions
from restate_pg.runtime.submission import new_submission
from restate_pg.core.records import Submission
from restate_pg.validation import check_headers, check_text

TargetLike = typing.Union[str, Handler, typing.Callable[..., typing.Any]]

_JSON: Serde[typing.Any] = DefaultSerde()


@dataclass(frozen=True)
class Target:
    """A handler to invoke: its names, and its definition when known."""

    service: str
    handler: str
    definition: typing.Optional[Handler] = None
    #: The payload went through a journal value codec: it is no JSON to check (`check_input`).
    encoded: bool = False

    @property
    def input_serde(self) -> Serde[typing.Any]:
        return self.definition.input_serde if self.definition is not None else _JSON

    @property
    def output_serde(self) -> Serde[typing.Any]:
        return self.definition.output_serde if self.definition is not None else _JSON

    @property
    def content_type(self) -> typing.Optional[str]:
        """The request's content type; None for a handler without input (Restate wants none)."""
        if self.definition is None:
            return "application/json"
        if not self.definition.takes_input:
            return None
        accept = self.definition.accept
        return accept if "*" not in accept and "," not in accept else self.definition.content_type

    def require_definition(self) -> Handler:
        if self.definition is None:
            raise ValueError(
                f"{self.service}/{self.handler} is not defined here: pass the handler function, "
                "or an app that defines it (app=...)"
            )
        return self.definition

    def check_request(
        self, key: typing.Optional[str], idempotency_key: typing.Optional[str], headers: typing.Optional[typing.Mapping[str, str]]
    ) -> None:
        """What the ingress would refuse, refused before anything is sent or written (a ValueError,
        `InvalidInput` for a value holding a NUL, which PostgreSQL cannot store)."""
        check_text("service name", self.service)
        check_text("handler name", self.handler)
        self.check_key(check_text("key", key))
        if check_text("idempotency key", idempotency_key) == "":
            raise ValueError("the idempotency key must not be empty")
        check_headers(headers)

    def check_input(self, payload: bytes) -> None:
        """What the ingress would refuse of the input (`api/inputs.py`): a value of the wrong type
        for the handler's annotation, raised as `InputRejected` (a ValueError) before anything is
        sent or written. A target named without its definition is checked by the ingress only."""
        if self.definition is not None and not self.encoded:
            self.definition.check_payload(payload, self.content_type)

    def check_key(self, key: typing.Optional[str]) -> None:
        """A keyed handler (object, workflow) needs its key; a service's handler takes none."""
        if self.definition is None:
            return
        if self.definition.service.is_keyed and key is None:
            raise ValueError(f"{self.service} is keyed: pass the key of the object or workflow")
        if not self.definition.service.is_keyed and key is not None:
            raise ValueError(f"{self.service} is a service: it takes no key")

    def submission(
        self,
        key: typing.Optional[str],
        payload: bytes,
        *,
        delay: typing.Optional[timedelta] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
        flow: typing.Optional[FlowOptions] = None,
    ) -> Submission:
        """The invocation a request to this target creates, checked as the ingress checks it
        (`flow`: its scope, limit key and priority, already checked)."""
        handler = self.require_definition()
        self.check_request(key, idempotency_key, headers)
        self.check_input(payload)
        if idempotency_key is not None and handler.kind == "workflow":
            raise ValueError("cannot use an idempotency key with a workflow's run: it is idempotent by its workflow id")
        delay_ms = None if delay is None else delay // timedelta(milliseconds=1)
        if delay_ms is not None and delay_ms < 0:
            raise ValueError("the delay must not be negative")
        return new_submission(handler, key, payload, idempotency_key=idempotency_key, headers=headers, delay_ms=delay_ms, flow=flow)


def resolve(target: TargetLike, app: typing.Optional[App] = None) -> Target:
    """The `Target` behind a handler function, a `Handler`, or a "Service/handler" name."""
    if isinstance(target, Handler):
        return Target(target.service_name, target.name, target)
    if isinstance(target, str):
        service, slash, handler = target.partition("/")
        if not slash or not service or not handler or "/" in handler:
            raise ValueError(f"bad target {target!r}: expected 'Service/handler'")
        return named(service, handler, app)
    definition = handler_of(target)
    return Target(definition.service_name, definition.name, definition)


def named(service: str, handler: str, app: typing.Optional[App] = None) -> Target:
    """A target by its names, with its definition when `app` has it."""
    return Target(service, handler, app.handler(service, handler) if app is not None else None)
