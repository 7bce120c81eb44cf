"""One attempt of an invocation: run the handler, then commit exactly one outcome.

The outcome is a completion (success or terminal failure), a suspension (already committed by the
context while the handler waited), a retry after backoff, a pause, or nothing at all when the
attempt lost its lease (another worker owns the invocation now and will finish it).
"""

from __future__ import annotations

import contextlib
import typing
from datetime import timedelta

from restate_pg.api.definitions import Handler
from restate_pg.api.errors import RetryableError, SdkInternalBaseException, SuspendedException, TerminalError
from restate_pg.observability import logs, tracing
from restate_pg.observability.metrics import METRICS
from restate_pg.runtime import current
from restate_pg.runtime.context import InvocationContext
from restate_pg.runtime.extension_data import close_extension_data
from restate_pg.runtime.host import Host
from restate_pg.runtime.journal import NonDeterminismError
from restate_pg.core.errors import Fenced
from restate_pg.core.records import (
    Complete,
    Failure,
    FlushResult,
    InvocationRecord,
    JournalRow,
    Lease,
    MailboxItem,
    Retry,
    Submission,
)

logger = logs.internal_logger("restate_pg.attempt")

DEFAULT_RETENTION = timedelta(days=1)


def _storable(text: str) -> str:
    """A failure message as PostgreSQL can store it: NUL characters spelled out."""
    return text.replace("\x00", "\\u0000")


def _terminal_in_chain(exc: BaseException) -> typing.Optional[TerminalError]:
    seen = set()
    current: typing.Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TerminalError):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


class Attempt:
    def __init__(
        self,
        host: Host,
        lease: Lease,
        invocation: InvocationRecord,
        handler: Handler,
        journal: typing.Sequence[JournalRow] = (),
        mailbox: typing.Sequence[MailboxItem] = (),
        wakeups: int = 0,
        create: typing.Optional[Submission] = None,
        state: typing.Optional[typing.Dict[str, bytes]] = None,
    ) -> None:
        self.host = host
        self.lease = lease
        self.invocation = invocation
        self.handler = handler
        self.ctx = InvocationContext(host, lease, invocation, handler, journal, mailbox, wakeups, create, state)
        #: What the attempt committed: completed, failed, retry, paused, suspended; "" if nothing.
        self.outcome = ""

    @property
    def invocation_id(self) -> str:
        return self.invocation.id

    def close(self) -> None:
        self.ctx.close()

    def wake(self) -> None:
        self.ctx.wake()

    def known_state(self) -> typing.Optional[typing.Dict[str, bytes]]:
        return self.ctx.known_state()

    async def run(self) -> typing.Optional[FlushResult]:
        """Run to an outcome; returns the completing flush when the invocation completed."""
        invocation, lease = self.invocation, self.lease
        labels = self.ctx.labels
        if lease.attempt == 1:
            METRICS.count(METRICS.started, labels)
        token = logs.enter(invocation.id, invocation.service, invocation.handler, invocation.key, lease.attempt,
                           self.ctx.is_replaying)
        entered = current.enter(self.ctx)
        try:
            with tracing.attempt_span(invocation, lease) as span:
                tracing.inject_current(self.ctx.attempt_headers)  # the attempt's span, to whom asks
                try:
                    return await self._run()
                except Fenced:
                    logger.warning("attempt %d of %s lost its lease; another worker owns it now", lease.epoch, self.invocation_id)
                    return None
                finally:
                    self.ctx.close()
                    METRICS.attempt_ended(labels, self.outcome)
                    tracing.end_attempt(span, self.outcome or "abandoned")
        finally:
            current.leave(entered)
            logs.leave(token)

    async def _run(self) -> typing.Optional[FlushResult]:
        try:
            return await self._run_handler()
        except SdkInternalBaseException:
            if self.ctx.refused is None:  # a flush refused a value the handler sent (runtime/typed.py)
                raise
            return await self._complete(None, self.ctx.refused)

    async def _run_handler(self) -> typing.Optional[FlushResult]:
        handler = self.handler
        try:
            try:
                output = await self._invoke()
            except BaseException:
                if self.ctx.suspended:  # whatever the handler (or a library) made of its SuspendedException
                    raise SuspendedException() from None
                raise
        except SuspendedException:
            self.outcome = "suspended"
            return None
        except Fenced:
            raise
        except TerminalError as exc:
            return await self._complete(None, Failure(exc.status_code, exc.message, exc.metadata))
        except SdkInternalBaseException:
            if self.ctx.refused is not None:
                return await self._complete(None, self.ctx.refused)
            if self.ctx.fatal is None:
                raise
            return await self._retry(self.ctx.fatal)
        except Exception as exc:
            terminal = _terminal_in_chain(exc)
            if terminal is not None:
                return await self._complete(None, Failure(terminal.status_code, terminal.message, terminal.metadata))
            return await self._retry(self.ctx.fatal or exc)
        return await self._complete(self.ctx._encode(handler.output_serde.serialize(output)), None)

    async def _invoke(self) -> typing.Any:
        handler = self.handler
        self.ctx.codec = await self.host.app.codec.get()
        if handler.takes_input:
            raw = self.invocation.input
            if self.ctx.codec is not None:
                try:
                    raw = await self.ctx.codec.decode(raw or b"")
                except Exception as exc:
                    raise TerminalError("Failed to decode input using journal value codec", 400) from exc
            try:
                value = handler.input_serde.deserialize(raw)
            except Exception as exc:
                raise TerminalError(f"Unable to parse an input argument. {exc}", 400) from exc
            args: typing.Tuple[typing.Any, ...] = (self.ctx, value)
        else:
            args = (self.ctx,)
        async with contextlib.AsyncExitStack() as stack:
            for manager in handler.context_managers:
                await stack.enter_async_context(manager())
            stack.push_async_callback(close_extension_data, self.ctx.extension_data)
            return await handler.fn(*args)

    def _retention_ms(self) -> int:
        """How long the completed invocation is kept: a workflow run for its workflow retention
        (its id can be used again after it), an idempotent one for its idempotency retention,
        others for their journal retention."""
        handler = self.handler
        if handler.kind == "workflow":
            name = "workflow_retention"
        elif self.invocation.idempotency_key is not None:
            name = "idempotency_retention"
        else:
            name = "journal_retention"
        retention = self.host.setting(handler, name) or DEFAULT_RETENTION
        return int(retention.total_seconds() * 1000)

    async def _complete(self, output: typing.Optional[bytes], failure: typing.Optional[Failure]) -> typing.Optional[FlushResult]:
        invocation = self.invocation
        caller = None
        if invocation.caller_id is not None and invocation.caller_command is not None:
            caller = (invocation.caller_id, invocation.caller_command)
        release = (invocation.service, invocation.key or "") if self.handler.is_exclusive else None
        if failure is not None:
            logger.info("invocation %s (%s/%s) failed terminally: [%d] %s", invocation.id, invocation.service, invocation.handler, failure.code, failure.message)
        result = await self.ctx.flush(
            Complete(
                output=output if failure is None else None,
                failure=failure,
                retention_ms=self._retention_ms(),
                caller=caller,
                release_key=release,
                take_next=release is not None,
            )
        )
        self.outcome = "completed" if failure is None and self.ctx.refused is None else "failed"
        return result

    async def _retry(self, exc: BaseException) -> typing.Optional[FlushResult]:
        schedule = self.handler.retry_schedule(self.host.default_retry_policy)
        code = 500
        if isinstance(exc, (RetryableError, NonDeterminismError)):
            code = exc.status_code
        message = _storable(exc.message if isinstance(exc, (RetryableError, NonDeterminismError)) else (str(exc) or repr(exc)))
        description = _storable(f"[{code}] {message}" if isinstance(exc, (RetryableError, NonDeterminismError)) else repr(exc))
        if schedule.exhausted(self.lease.attempt):
            if schedule.on_max_attempts == "kill":
                logger.warning("invocation %s failed %d times, killing it: %s", self.invocation_id, self.lease.attempt, description)
                return await self._complete(None, Failure(code, message))
            logger.warning("invocation %s failed %d times, pausing it: %s", self.invocation_id, self.lease.attempt, description)
            await self.ctx.flush(Retry("paused", 0, description, code))
            self.outcome = "paused"
            return None
        delay = schedule.delay(self.lease.attempt)
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            delay = exc.retry_after.total_seconds()
        log = logger.error if isinstance(exc, NonDeterminismError) else logger.warning
        log("attempt %d of %s (%s/%s) failed, retrying in %.3fs: %s", self.lease.attempt, self.invocation_id,
            self.invocation.service, self.invocation.handler, delay, description)
        await self.ctx.flush(Retry("backing-off", int(delay * 1000), description, code))
        self.outcome = "retry"
        return None
