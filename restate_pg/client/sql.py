"""The client over SQL: no HTTP hop, straight to the database the workers use.

It runs the services of a process that runs no handlers (a `Gateway`, as an ingress started with
`run_handlers=False`): submissions go through the same `apply()` as the ingress's, and results
arrive as they do for the ingress: the completing worker NOTIFYs this process (`invocation.waiter`),
and a poll every `poll_interval` covers a lost notification.
"""

from __future__ import annotations

import contextlib
import typing
from datetime import timedelta

from restate_pg.api.app import App
from restate_pg.api.inputs import InputRejected
from restate_pg.services.answers import perform
from restate_pg.client.base import Headers, RestateClient, raise_failure
from restate_pg.client.handle import ClientError, RestateClientSendHandle
from restate_pg.client.target import Target
from restate_pg.services.gateway import Gateway
from restate_pg.api.flow import FlowOptions
from restate_pg.services.outcomes import Accepted, BacklogFull, InvalidAwakeableId, InvocationResult, Missing, NotReady
from restate_pg.validation import check_headers


class SqlClient(RestateClient):
    """A client over the database itself. Targets named by strings need `app` (their kinds)."""

    def __init__(
        self,
        database_url: str,
        *,
        schema: str = "restate",
        app: typing.Optional[App] = None,
        headers: Headers = None,
        poll_interval: float = 1.0,
        pool_size: int = 4,
        migrate: bool = False,
    ) -> None:
        check_headers(headers)
        self.app = app
        self.headers = dict(headers or {})
        self.engine = Gateway(app or App(), database_url, schema=schema, poll_interval=poll_interval, pool_size=pool_size)
        self.migrate = migrate
        self._opened = False

    async def open(self) -> None:
        if not self._opened:
            await self.engine.prepare_schema(migrate=self.migrate)  # SchemaNotMigrated, unless migrating
            await self.engine.start()
            self._opened = True

    async def close(self) -> None:
        if self._opened:
            self._opened = False
            await self.engine.stop()

    async def _call(self, target: Target, key: typing.Optional[str], payload: bytes, idempotency_key: typing.Optional[str], headers: Headers,
                    flow: typing.Optional[FlowOptions] = None) -> bytes:
        await self.open()
        sub = target.submission(key, payload, idempotency_key=idempotency_key, headers={**self.headers, **(headers or {})}, flow=flow)
        with _backlog_as_429():
            _, result = await self.engine.submissions.call(sub)
        return output_of(sub.id, result)

    async def _send(self, target: Target, key: typing.Optional[str], payload: bytes, delay: typing.Optional[timedelta], idempotency_key: typing.Optional[str], headers: Headers,
                    flow: typing.Optional[FlowOptions] = None) -> RestateClientSendHandle:
        await self.open()
        sub = target.submission(key, payload, delay=delay, idempotency_key=idempotency_key, headers={**self.headers, **(headers or {})},
                                flow=flow)
        with _backlog_as_429():
            accepted = await self.engine.submissions.send(sub)
        if isinstance(accepted, Accepted):
            return RestateClientSendHandle(sub.id, 202, "Accepted", accepted.execution_time)
        return RestateClientSendHandle(sub.id, 202, "PreviouslyAccepted", None)

    async def _attach(self, invocation_id: str) -> bytes:
        await self.open()
        return output_of(invocation_id, await self.engine.results.wait(invocation_id))

    async def _output(self, invocation_id: str) -> bytes:
        await self.open()
        finished = await self.engine.results.output(invocation_id)
        if isinstance(finished, Missing):
            raise ClientError(404, "invocation not found")
        if isinstance(finished, NotReady):
            raise ClientError(470, "the invocation exists but has not completed yet")
        return output_of(invocation_id, finished.result)

    async def _complete_awakeable(self, awakeable_id: str, value: typing.Optional[bytes], failure: typing.Any, content_type: str = "application/json") -> None:
        await self.open()
        try:
            outcome = await self.engine.awakeables.complete(awakeable_id, value, failure)
        except InputRejected as exc:  # as the ingress answers it, and the HTTP client raises it
            raise ClientError(400, exc.message) from None
        if isinstance(outcome, InvalidAwakeableId):
            raise ClientError(400, f"bad awakeable id '{awakeable_id}'")

    async def _cancel(self, invocation_id: str) -> None:
        await self.open()
        answer = await perform(self.engine, "cancel", invocation_id)  # the admin API's answers
        if not answer.ok:
            raise ClientError(answer.status, answer.message)


@contextlib.contextmanager
def _backlog_as_429() -> typing.Iterator[None]:
    """A full backlog refuses the request (nothing written) as the ingress answers it over HTTP."""
    try:
        yield
    except BacklogFull as exc:
        raise ClientError(429, str(exc)) from None


def output_of(invocation_id: str, result: typing.Optional[InvocationResult]) -> bytes:
    """A result as clients answer it (also the test harness): the output, else the failure raised."""
    if result is None:
        raise ClientError(404, f"invocation {invocation_id} not found")
    if result.failure is not None:
        raise_failure(result.failure)
    return result.output or b""
