"""`Service`, `VirtualObject` and `Workflow`: the classes handlers are declared on.

They mirror restate-sdk's classes option for option. A decorated function stays an ordinary
function; its `Handler` description is attached to it, so that the function itself is the typed
reference other handlers pass to `ctx.service_call(fn, arg)`.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass, field
from datetime import timedelta

from restate_pg.api.inputs import InputCheck, InputRejected, accepts_none
from restate_pg.api.retry import InvocationRetryPolicy, RetrySchedule
from restate_pg.api.serde import DefaultSerde, Serde, serde_for_type

ServiceType = typing.Literal["service", "virtual_object", "workflow"]
HandlerKind = typing.Optional[typing.Literal["exclusive", "shared", "workflow"]]
#: restate-sdk's `state_preload=`: which state keys Restate sends eagerly. restate-pg reads state from
#: PostgreSQL at first use, so every choice behaves the same; accepted and checked only.
StatePreload = typing.Optional[typing.Union[bool, typing.List[str]]]
ContextManagers = typing.Optional[typing.List[typing.Callable[[], typing.AsyncContextManager[None]]]]

_HANDLER_ATTR = "__restate_pg_handler__"


@dataclass
class Handler:
    """Everything the runtime and the ingress need to know about one handler."""

    service: "ServiceDefinition"
    name: str
    kind: HandlerKind
    fn: typing.Callable[..., typing.Awaitable[typing.Any]]
    takes_input: bool
    input_serde: Serde[typing.Any]
    output_serde: Serde[typing.Any]
    accept: str = "application/json"
    content_type: str = "application/json"
    input_type: typing.Any = None
    output_type: typing.Any = None
    description: typing.Optional[str] = None
    metadata: typing.Optional[typing.Dict[str, str]] = None
    inactivity_timeout: typing.Optional[timedelta] = None
    abort_timeout: typing.Optional[timedelta] = None
    journal_retention: typing.Optional[timedelta] = None
    idempotency_retention: typing.Optional[timedelta] = None
    workflow_retention: typing.Optional[timedelta] = None
    enable_lazy_state: typing.Optional[bool] = None
    state_preload: StatePreload = None
    ingress_private: typing.Optional[bool] = None
    invocation_retry_policy: typing.Optional[InvocationRetryPolicy] = None
    context_managers: typing.List[typing.Callable[[], typing.AsyncContextManager[None]]] = field(
        default_factory=list
    )

    @property
    def service_name(self) -> str:
        return self.service.name

    @property
    def is_exclusive(self) -> bool:
        """Exclusive handlers take the object key's lock; workflow `run` handlers are run-once instead."""
        return self.kind == "exclusive"

    @property
    def is_private(self) -> bool:
        return bool(self.ingress_private if self.ingress_private is not None else self.service.ingress_private)

    @functools.cached_property
    def input_check(self) -> InputCheck:
        """How a body is checked against this handler's input type; built on first use and kept,
        so that a request pays for the check, never for building pydantic's validator."""
        return InputCheck.build(self.input_type, self.input_serde)

    def check_payload(self, payload: bytes, content_type: typing.Optional[str]) -> None:
        """InputRejected unless this handler can take `payload` (what a client or `enqueue` is
        about to submit): the ingress's rules, so that no transport starts an invocation that
        could only fail and be retried."""
        if not self.takes_input:
            return
        if not payload:
            if not accepts_none(self.input_type):
                raise InputRejected(f"the handler {self.service_name}/{self.name} needs an input, and None is not one")
            return
        self.input_check(payload, content_type)

    def retry_schedule(self, default: typing.Optional[InvocationRetryPolicy] = None) -> RetrySchedule:
        """The handler's policy, else its service's, field by field, over `default` (the worker's,
        Restate's `default-retry-policy`), over Restate's defaults."""
        return RetrySchedule.resolve(self.invocation_retry_policy, self.service.invocation_retry_policy, default)

    def setting(self, name: str) -> typing.Any:
        """A timeout or retention: the handler's own value, else the service's."""
        value = getattr(self, name)
        return value if value is not None else getattr(self.service, name, None)


def handler_of(fn: typing.Any) -> Handler:
    """The `Handler` behind a decorated function (what `ctx.service_call(fn, ...)` receives)."""
    handler = getattr(fn, _HANDLER_ATTR, None)
    if handler is None:
        raise TypeError(
            f"{fn!r} is not a restate handler: pass a function decorated with @service.handler()"
        )
    return handler


class ServiceDefinition:
    """What the three service classes share: options and the handler table."""

    service_type: typing.ClassVar[ServiceType]

    def __init__(
        self,
        name: str,
        description: typing.Optional[str] = None,
        metadata: typing.Optional[typing.Dict[str, str]] = None,
        inactivity_timeout: typing.Optional[timedelta] = None,
        abort_timeout: typing.Optional[timedelta] = None,
        journal_retention: typing.Optional[timedelta] = None,
        idempotency_retention: typing.Optional[timedelta] = None,
        enable_lazy_state: typing.Optional[bool] = None,
        state_preload: StatePreload = None,
        ingress_private: typing.Optional[bool] = None,
        invocation_retry_policy: typing.Optional[InvocationRetryPolicy] = None,
        invocation_context_managers: ContextManagers = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a service needs a non-empty name")
        self.service_tag_name = name
        self.description = description
        self.metadata = metadata
        self.inactivity_timeout = inactivity_timeout
        self.abort_timeout = abort_timeout
        self.journal_retention = journal_retention
        self.idempotency_retention = idempotency_retention
        self.workflow_retention: typing.Optional[timedelta] = None
        check_state_preload(state_preload, enable_lazy_state)
        self.enable_lazy_state = enable_lazy_state
        self.state_preload = state_preload
        self.ingress_private = ingress_private
        self.invocation_retry_policy = invocation_retry_policy
        self.context_managers = list(invocation_context_managers or [])
        self.handlers: typing.Dict[str, Handler] = {}

    @property
    def name(self) -> str:
        return self.service_tag_name

    @property
    def is_keyed(self) -> bool:
        return self.service_type != "service"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, handlers={list(self.handlers)})"

    def _register(
        self,
        *,
        name: typing.Optional[str],
        kind: HandlerKind,
        accept: str,
        content_type: str,
        input_serde: Serde[typing.Any],
        output_serde: Serde[typing.Any],
        invocation_context_managers: ContextManagers,
        **options: typing.Any,
    ) -> typing.Callable[[typing.Any], typing.Any]:
        check_state_preload(options.get("state_preload"), options.get("enable_lazy_state"))

        def decorator(fn: typing.Any) -> typing.Any:
            handler_name = name or fn.__name__
            if handler_name in self.handlers:
                raise ValueError(f"handler {handler_name!r} is already defined on {self.name!r}")
            if not inspect.iscoroutinefunction(fn):
                raise TypeError(f"handler {handler_name!r} of {self.name!r} must be an async function")
            params = list(inspect.signature(fn).parameters.values())
            if not params or len(params) > 2:
                raise TypeError(
                    f"handler {handler_name!r} of {self.name!r} must take the context and at most one input"
                )
            hints = _type_hints(fn)
            input_type = hints.get(params[1].name) if len(params) == 2 else None
            output_type = hints.get("return")
            handler = Handler(
                service=self,
                name=handler_name,
                kind=kind,
                fn=fn,
                takes_input=len(params) == 2,
                input_serde=serde_for_type(input_type, input_serde),
                output_serde=serde_for_type(output_type, output_serde),
                accept=accept,
                content_type=content_type,
                input_type=input_type,
                output_type=output_type,
                description=inspect.getdoc(fn),
                context_managers=self.context_managers + list(invocation_context_managers or []),
                **options,
            )
            self.handlers[handler_name] = handler

            @functools.wraps(fn)
            def wrapped(*args: typing.Any, **kwargs: typing.Any) -> typing.Any:
                return fn(*args, **kwargs)

            setattr(wrapped, _HANDLER_ATTR, handler)
            return wrapped

        return decorator


def check_state_preload(state_preload: StatePreload, enable_lazy_state: typing.Optional[bool]) -> None:
    """As restate-sdk: the deprecated `enable_lazy_state` and its replacement are not both set."""
    if state_preload is not None and enable_lazy_state is not None:
        raise ValueError("Cannot set both the 'state_preload' option and the deprecated 'enable_lazy_state' "
                         "option at the same time. Use only 'state_preload'.")


def _type_hints(fn: typing.Any) -> typing.Dict[str, typing.Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        return {
            k: v for k, v in getattr(fn, "__annotations__", {}).items() if not isinstance(v, str)
        }


class Service(ServiceDefinition):
    """A stateless service: handlers run concurrently, without keys or state."""

    service_type = "service"

    def __init__(
        self,
        name: str,
        description: typing.Optional[str] = None,
        metadata: typing.Optional[typing.Dict[str, str]] = None,
        inactivity_timeout: typing.Optional[timedelta] = None,
        abort_timeout: typing.Optional[timedelta] = None,
        journal_retention: typing.Optional[timedelta] = None,
        idempotency_retention: typing.Optional[timedelta] = None,
        ingress_private: typing.Optional[bool] = None,
        invocation_retry_policy: typing.Optional[InvocationRetryPolicy] = None,
        invocation_context_managers: ContextManagers = None,
    ) -> None:
        super().__init__(
            name,
            description=description,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            ingress_private=ingress_private,
            invocation_retry_policy=invocation_retry_policy,
            invocation_context_managers=invocation_context_managers,
        )

    def handler(
        self,
        name: typing.Optional[str] = None,
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Serde[typing.Any] = DefaultSerde(),
        output_serde: Serde[typing.Any] = DefaultSerde(),
        metadata: typing.Optional[typing.Dict[str, str]] = None,
        inactivity_timeout: typing.Optional[timedelta] = None,
        abort_timeout: typing.Optional[timedelta] = None,
        journal_retention: typing.Optional[timedelta] = None,
        idempotency_retention: typing.Optional[timedelta] = None,
        ingress_private: typing.Optional[bool] = None,
        invocation_retry_policy: typing.Optional[InvocationRetryPolicy] = None,
        invocation_context_managers: ContextManagers = None,
    ) -> typing.Callable[[typing.Any], typing.Any]:
        """Declare a handler: `async def fn(ctx: Context[, input]) -> output`."""
        return self._register(
            name=name,
            kind=None,
            accept=accept,
            content_type=content_type,
            input_serde=input_serde,
            output_serde=output_serde,
            invocation_context_managers=invocation_context_managers,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            ingress_private=ingress_private,
            invocation_retry_policy=invocation_retry_policy,
        )


class VirtualObject(ServiceDefinition):
    """A keyed service with K/V state: one exclusive handler per key at a time, in arrival order."""

    service_type = "virtual_object"

    def handler(
        self,
        name: typing.Optional[str] = None,
        kind: typing.Optional[typing.Literal["exclusive", "shared"]] = "exclusive",
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Serde[typing.Any] = DefaultSerde(),
        output_serde: Serde[typing.Any] = DefaultSerde(),
        metadata: typing.Optional[typing.Dict[str, str]] = None,
        inactivity_timeout: typing.Optional[timedelta] = None,
        abort_timeout: typing.Optional[timedelta] = None,
        journal_retention: typing.Optional[timedelta] = None,
        idempotency_retention: typing.Optional[timedelta] = None,
        enable_lazy_state: typing.Optional[bool] = None,
        state_preload: StatePreload = None,
        ingress_private: typing.Optional[bool] = None,
        invocation_retry_policy: typing.Optional[InvocationRetryPolicy] = None,
        invocation_context_managers: ContextManagers = None,
    ) -> typing.Callable[[typing.Any], typing.Any]:
        """Declare a handler; `kind="shared"` handlers read state and never wait for the key."""
        if kind not in ("exclusive", "shared"):
            raise ValueError(f"kind must be 'exclusive' or 'shared', not {kind!r}")
        return self._register(
            name=name,
            kind=kind,
            accept=accept,
            content_type=content_type,
            input_serde=input_serde,
            output_serde=output_serde,
            invocation_context_managers=invocation_context_managers,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            enable_lazy_state=enable_lazy_state,
            state_preload=state_preload,
            ingress_private=ingress_private,
            invocation_retry_policy=invocation_retry_policy,
        )


class Workflow(ServiceDefinition):
    """A keyed service whose `main` handler runs once per workflow id; shared handlers run beside it."""

    service_type = "workflow"

    def main(
        self,
        name: typing.Optional[str] = None,
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Serde[typing.Any] = DefaultSerde(),
        output_serde: Serde[typing.Any] = DefaultSerde(),
        metadata: typing.Optional[typing.Dict[str, str]] = None,
        inactivity_timeout: typing.Optional[timedelta] = None,
        abort_timeout: typing.Optional[timedelta] = None,
        journal_retention: typing.Optional[timedelta] = None,
        workflow_retention: typing.Optional[timedelta] = None,
        enable_lazy_state: typing.Optional[bool] = None,
        state_preload: StatePreload = None,
        ingress_private: typing.Optional[bool] = None,
        invocation_retry_policy: typing.Optional[InvocationRetryPolicy] = None,
        invocation_context_managers: ContextManagers = None,
    ) -> typing.Callable[[typing.Any], typing.Any]:
        """Declare the run-once handler of the workflow (conventionally `run`)."""
        if workflow_retention is not None:
            self.workflow_retention = workflow_retention
        return self._register(
            name=name,
            kind="workflow",
            accept=accept,
            content_type=content_type,
            input_serde=input_serde,
            output_serde=output_serde,
            invocation_context_managers=invocation_context_managers,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            workflow_retention=workflow_retention,
            enable_lazy_state=enable_lazy_state,
            state_preload=state_preload,
            ingress_private=ingress_private,
            invocation_retry_policy=invocation_retry_policy,
        )

    def handler(
        self,
        name: typing.Optional[str] = None,
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Serde[typing.Any] = DefaultSerde(),
        output_serde: Serde[typing.Any] = DefaultSerde(),
        metadata: typing.Optional[typing.Dict[str, str]] = None,
        inactivity_timeout: typing.Optional[timedelta] = None,
        abort_timeout: typing.Optional[timedelta] = None,
        journal_retention: typing.Optional[timedelta] = None,
        idempotency_retention: typing.Optional[timedelta] = None,
        enable_lazy_state: typing.Optional[bool] = None,
        state_preload: StatePreload = None,
        ingress_private: typing.Optional[bool] = None,
        invocation_retry_policy: typing.Optional[InvocationRetryPolicy] = None,
        invocation_context_managers: ContextManagers = None,
    ) -> typing.Callable[[typing.Any], typing.Any]:
        """Declare a shared handler: it reads state and resolves promises while `main` runs."""
        return self._register(
            name=name,
            kind="shared",
            accept=accept,
            content_type=content_type,
            input_serde=input_serde,
            output_serde=output_serde,
            invocation_context_managers=invocation_context_managers,
            metadata=metadata,
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            enable_lazy_state=enable_lazy_state,
            state_preload=state_preload,
            ingress_private=ingress_private,
            invocation_retry_policy=invocation_retry_policy,
        )
