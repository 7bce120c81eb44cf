"""Calls, one-way calls, attaching to and cancelling invocations: the context's commands on others.

The machine journals the command (and, on replay, returns the callee recorded); what needs the
host stays here: finding the target handler, deriving the callee's id, building its submission
(with trace headers) and reserving it to run in this process when it may.
"""

from __future__ import annotations

import typing
from datetime import timedelta

from restate_pg.api.context import HandlerType, RestateDurableFuture
from restate_pg.api.definitions import Handler, handler_of
from restate_pg.api.errors import RetryableError, TerminalError
from restate_pg.api.serde import BytesSerde, DefaultSerde, Serde
from restate_pg.observability import tracing
from restate_pg.runtime.core import AttemptFailed, ContextCore
from restate_pg.runtime.futures import DurableCallFuture, DurableFuture, DurableSendHandle
from restate_pg.runtime.machine import CallKind, refuse_unstorable
from restate_pg.api.flow import FlowOptions
from restate_pg.runtime.submission import invocation_id_for, new_submission

T = typing.TypeVar("T")
Headers = typing.Optional[typing.Dict[str, str]]


class CallCommands(ContextCore):
    def _target(self, service: str, handler: str) -> Handler:
        target = self._host.handler(service, handler)
        if target is None:  # as in Restate: the caller's attempt fails and is retried
            message = f"the service handler {service}/{handler} was not found"
            self._fail_attempt(RetryableError(message, 404))
            raise AttemptFailed(message)
        return target

    def _outgoing(
        self,
        kind: CallKind,
        target: Handler,
        key: typing.Optional[str],
        payload: bytes,
        idempotency_key: typing.Optional[str],
        headers: Headers,
        delay: typing.Optional[timedelta],
        flow: typing.Optional[FlowOptions] = None,
    ) -> typing.Tuple[int, str]:
        if target.service.is_keyed and key is None:
            raise TerminalError(f"{target.service_name} is keyed: pass the key of the object or workflow")
        refuse_unstorable(kind, None, {"idempotency key": idempotency_key, **{f"header {n}": v for n, v in (headers or {}).items()}})
        refuse_unstorable(kind, None, {f"header name {n!r}": n for n in headers or {}})
        params = {"service": target.service_name, "handler": target.name, "key": key}
        command, recorded_callee = self._command(self._machine.call, kind, params)
        if recorded_callee is not None:
            return command, recorded_callee
        flow = flow or FlowOptions()
        callee = invocation_id_for(target, key, idempotency_key, flow.scope)
        submission = new_submission(
            target, key, payload, idempotency_key=idempotency_key, headers=headers,
            delay_ms=int(delay.total_seconds() * 1000) if delay else None, invoked_by="service",
            caller_id=self.invocation_id if kind == "Call" else None,
            caller_command=command if kind == "Call" else None, invocation_id=callee, flow=flow,
        )
        tracing.outgoing(submission.headers, kind, callee, target.service_name, target.name, key)
        if submission.delay_ms is None:
            self._host.reserve_local(submission)  # leased to this worker with the call, when it can run here
        self._machine.journal_call(kind, command, params, submission)
        return command, callee

    def _call(self, tpe: HandlerType, key: typing.Optional[str], arg: typing.Any, idempotency_key: typing.Optional[str],
              headers: Headers, flow: typing.Optional[FlowOptions] = None) -> DurableCallFuture[typing.Any]:
        target = handler_of(tpe)
        payload = self._encode(target.input_serde.serialize(arg))
        command, callee = self._outgoing("Call", target, key, payload, idempotency_key, headers, None, flow)
        return DurableCallFuture(self, command, target.output_serde.deserialize, callee)

    def _send(self, tpe: HandlerType, key: typing.Optional[str], arg: typing.Any, send_delay: typing.Optional[timedelta],
              idempotency_key: typing.Optional[str], headers: Headers,
              flow: typing.Optional[FlowOptions] = None) -> DurableSendHandle:
        target = handler_of(tpe)
        payload = self._encode(target.input_serde.serialize(arg))
        _, callee = self._outgoing("OneWayCall", target, key, payload, idempotency_key, headers, send_delay, flow)
        return DurableSendHandle(self, callee)

    def service_call(self, tpe: HandlerType, arg: typing.Any, idempotency_key: typing.Optional[str] = None,
                     headers: Headers = None) -> DurableCallFuture[typing.Any]:
        return self._call(tpe, None, arg, idempotency_key, headers)

    def object_call(self, tpe: HandlerType, key: str, arg: typing.Any, idempotency_key: typing.Optional[str] = None,
                    headers: Headers = None) -> DurableCallFuture[typing.Any]:
        return self._call(tpe, key, arg, idempotency_key, headers)

    def workflow_call(self, tpe: HandlerType, key: str, arg: typing.Any, idempotency_key: typing.Optional[str] = None,
                      headers: Headers = None) -> DurableCallFuture[typing.Any]:
        return self._call(tpe, key, arg, idempotency_key, headers)

    def service_send(self, tpe: HandlerType, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
                     idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> DurableSendHandle:
        return self._send(tpe, None, arg, send_delay, idempotency_key, headers)

    def object_send(self, tpe: HandlerType, key: str, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
                    idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> DurableSendHandle:
        return self._send(tpe, key, arg, send_delay, idempotency_key, headers)

    def workflow_send(self, tpe: HandlerType, key: str, arg: typing.Any, send_delay: typing.Optional[timedelta] = None,
                      idempotency_key: typing.Optional[str] = None, headers: Headers = None) -> DurableSendHandle:
        return self._send(tpe, key, arg, send_delay, idempotency_key, headers)

    def generic_call(self, service: str, handler: str, arg: bytes, key: typing.Optional[str] = None,
                     idempotency_key: typing.Optional[str] = None, headers: Headers = None,
                     scope: typing.Optional[str] = None, limit_key: typing.Optional[str] = None) -> DurableCallFuture[bytes]:
        target = self._target(service, handler)
        flow = FlowOptions(scope, limit_key) if scope is not None or limit_key is not None else None
        command, callee = self._outgoing("Call", target, key, self._encode(bytes(arg)), idempotency_key, headers, None, flow)
        return DurableCallFuture(self, command, BytesSerde().deserialize, callee)

    def generic_send(self, service: str, handler: str, arg: bytes, key: typing.Optional[str] = None,
                     send_delay: typing.Optional[timedelta] = None, idempotency_key: typing.Optional[str] = None,
                     headers: Headers = None, scope: typing.Optional[str] = None,
                     limit_key: typing.Optional[str] = None) -> DurableSendHandle:
        target = self._target(service, handler)
        flow = FlowOptions(scope, limit_key) if scope is not None or limit_key is not None else None
        payload = self._encode(bytes(arg))
        _, callee = self._outgoing("OneWayCall", target, key, payload, idempotency_key, headers, send_delay, flow)
        return DurableSendHandle(self, callee)

    def cancel_invocation(self, invocation_id: str) -> None:
        """Journal a cancellation of `invocation_id`; it is sent with the next flush."""
        self._command(self._machine.cancel_invocation, invocation_id)

    def attach_invocation(
        self, invocation_id: str, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> RestateDurableFuture[T]:
        if isinstance(serde, DefaultSerde):
            serde = serde.with_maybe_type(type_hint)
        command = self._command(self._machine.attach, invocation_id)
        return DurableFuture(self, command, serde.deserialize)
