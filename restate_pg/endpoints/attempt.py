"""`EndpointAttempt`: one attempt of an invocation whose handler runs on an SDK endpoint.

The attempt brings the journal up to date (mailbox, due timers) and writes that first, so that
the endpoint only ever sees notifications that are stored; then it opens one HTTP exchange in
request-response mode: the start message and the whole journal go out, the request body closes,
and the endpoint's commands come back until it ends, suspends or fails. Each ending commits one
outcome, as the in-process `runtime/attempt.py` does: completed, suspended (or resumed at once
when what the endpoint waits for arrived meanwhile), retried after backoff, or paused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import typing
from urllib.parse import quote

from restate_pg.core.errors import Fenced
from restate_pg.core.records import (
    Complete,
    Failure,
    FlushResult,
    InvocationRecord,
    JournalRow,
    Lease,
    MailboxItem,
    Outcome,
    Retry,
    Submission,
    Suspend,
)
from restate_pg.endpoints import exchange
from restate_pg.endpoints.deployment import EndpointHandler
from restate_pg.endpoints.endings import PROTOCOL_VIOLATION, Ended, Ending, Failed, Suspended
from restate_pg.endpoints.h2c import StreamClosed
from restate_pg.endpoints.host import EndpointHost
from restate_pg.endpoints.journal import EndpointJournal
from restate_pg.endpoints.suspension import awaited
from restate_pg.observability import logs
from restate_pg.protocol import service_protocol_pb2 as pb
from restate_pg.protocol.errors import ProtocolViolation
from restate_pg.protocol.framing import MessageType, encode_frame, is_command
from restate_pg.protocol.messages import decode
from restate_pg.protocol.versions import invocation_content_type

logger = logs.internal_logger("restate_pg.endpoints")


__all__ = ["EndpointAttempt", "Ended", "Ending", "Failed", "Suspended"]


class EndpointAttempt:
    def __init__(
        self,
        host: EndpointHost,
        lease: Lease,
        invocation: InvocationRecord,
        handler: EndpointHandler,
        journal: typing.Sequence[JournalRow] = (),
        mailbox: typing.Sequence[MailboxItem] = (),
        wakeups: int = 0,
        state: typing.Optional[typing.Dict[str, bytes]] = None,
        create: typing.Optional[Submission] = None,
    ) -> None:
        self.host = host
        self.lease = lease
        self.invocation = invocation
        self.handler = handler
        self.journal = EndpointJournal(invocation, journal, host.targets, state, clock=host.clock.now)
        #: Submitted by a caller waiting in this process: the row is written by the first flush,
        #: with the first step (as in-process attempts do, see services/submissions.py).
        self.journal.pending.create = create
        self.mailbox = list(mailbox)
        self.mailbox_after = 0  # the loaded mailbox is taken in as the attempt starts
        self.wakeups = wakeups
        self.outcome = ""
        self._task: typing.Optional[asyncio.Task[typing.Any]] = None
        #: Set when the mailbox has news (`wake`).
        self.woken = asyncio.Event()
        #: Also called by `wake`: a bidirectional exchange waiting on the endpoint stops waiting.
        self.on_wake: typing.Optional[typing.Callable[[], None]] = None
        #: Whether the current exchange is bidirectional (notifications go out while it runs).
        self.streaming = False
        #: Whether the endpoint waits for the server (its slot given back, see `stop_waiting`).
        self.waiting = False

    @property
    def invocation_id(self) -> str:
        return self.invocation.id

    # -- what the worker asks of a running attempt ----------------------------------------------

    def close(self) -> None:
        """Stop now (the lease was taken away, or the process stops)."""
        if self._task is not None:
            self._task.cancel()

    def wake(self) -> None:
        """A notification arrived: a bidirectional exchange reads it now, a request-response one
        at its next exchange."""
        self.woken.set()
        if self.on_wake is not None:
            self.on_wake()

    def known_state(self) -> typing.Optional[typing.Dict[str, bytes]]:
        return None if self.journal.state is None else dict(self.journal.state)

    # -- the attempt ---------------------------------------------------------------------------

    async def run(self) -> typing.Optional[FlushResult]:
        self._task = asyncio.current_task()
        token = logs.enter(self.invocation.id, self.invocation.service, self.invocation.handler, self.invocation.key,
                           self.lease.attempt, False)
        try:
            return await self._run()
        except Fenced:
            logger.warning("attempt %d of %s lost its lease; another worker owns it now", self.lease.epoch,
                           self.invocation_id)
            return None
        finally:
            logs.leave(token)

    async def _run(self) -> typing.Optional[FlushResult]:
        await self._load_state()
        self._take_mailbox(self.mailbox)
        while True:
            await self._catch_up()
            ending = await self._exchange()
            if isinstance(ending, Ended):
                return await self._complete()
            if isinstance(ending, Failed):
                await self._fail(ending)
                return None
            if await self._suspend(ending):
                return None

    async def _load_state(self) -> None:
        if self.invocation.key is not None and self.journal.state is None and not self.handler.lazy_state:
            self.journal.state = await self.host.store.load_state(self.invocation.service, self.invocation.key)

    def _take_mailbox(self, items: typing.Sequence[MailboxItem]) -> None:
        fresh = [item for item in items if item.seq > self.mailbox_after]
        if fresh:
            self.mailbox_after = max(item.seq for item in fresh)
            self.journal.ingest(fresh)

    async def read_mailbox(self) -> None:
        wakeups, items = await self.host.store.read_mailbox(self.invocation_id, self.mailbox_after)
        if wakeups is not None:
            self.wakeups = wakeups
        self._take_mailbox(items)

    async def _catch_up(self) -> None:
        """Journal what arrived and the timers that are due, and store it before the endpoint
        sees it: what it acts on must never be lost."""
        if self.journal.sleeping:
            self.journal.fire_timers(self.host.clock.now())
        pending = self.journal.pending
        creation_alone = pending.create is not None and dataclasses.replace(pending, create=None).empty()
        if not pending.empty() and not creation_alone:  # a creation alone waits for the first step's flush
            await self.flush(None)

    async def flush(self, outcome: typing.Optional[Outcome]) -> FlushResult:
        batch = self.journal.take_batch()
        batch.outcome = outcome
        try:
            result = await self.host.store.flush(self.lease, batch)
        except Fenced:
            raise
        except BaseException:
            self.journal.restore(batch)
            raise
        self.host.after_flush(batch, result, self.lease)
        self.journal.answer(result)
        return result

    # -- the exchange --------------------------------------------------------------------------

    def _start_message(self, known_entries: int) -> pb.StartMessage:
        invocation, state = self.invocation, self.journal.state
        start = pb.StartMessage(
            id=invocation.id.encode("ascii"), debug_id=invocation.id, known_entries=known_entries,
            key=invocation.key or "", partial_state=state is None,
            retry_count_since_last_stored_entry=max(0, self.lease.attempt - 1),
        )
        for name, value in sorted((state or {}).items()):
            start.state_map.add(key=name.encode(), value=value)
        if self.handler.version >= 6:
            start.random_seed = int.from_bytes(hashlib.sha256(invocation.id.encode()).digest()[:8], "big")
        if self.handler.version >= 7:  # the SDKs' ctx.request() idempotency key, scope, limit key
            for field in ("idempotency_key", "scope", "limit_key"):
                value = getattr(invocation, field)
                if value is not None:
                    setattr(start, field, value)
        return start

    def _request(self) -> typing.Tuple[str, typing.Dict[str, str], bytes]:
        """The invoke request: its URL, headers, and the start message and journal as frames."""
        replay = self.journal.replay()
        frames = [encode_frame(MessageType.START, self._start_message(len(replay)))]
        frames.extend(encode_frame(kind, message) for kind, message in replay)
        handler = self.handler
        content_type = invocation_content_type(handler.version)
        headers = {**handler.additional_headers, "content-type": content_type, "accept": content_type,
                   "x-restate-invocation-id": self.invocation_id}
        path = f"/invoke/{quote(handler.service, safe='')}/{quote(handler.name, safe='')}"
        headers.update(self.host.sign(path, self.invocation.key))
        if self.invocation.key is not None:
            headers["x-restate-service-key"] = quote(self.invocation.key, safe="")
        return handler.uri.rstrip("/") + path, headers, b"".join(frames)

    async def _exchange(self) -> Ending:
        url, headers, body = self._request()
        try:
            if self.handler.bidirectional:
                return await exchange.bidirectional(self, url, headers, body)
            return await exchange.request_response(self, url, headers, body)
        except ProtocolViolation as exc:
            return Failed(PROTOCOL_VIOLATION, f"protocol violation: {exc}")
        except (OSError, StreamClosed, *self.host.transport_errors) as exc:
            return Failed(500, f"cannot reach the endpoint {self.handler.uri}: {exc!r}")

    def stop_waiting(self) -> None:
        """The endpoint works again (it sent something, or was sent what it waits for), or the
        exchange ended: the attempt holds a slot again."""
        if self.waiting:
            self.waiting = False
            self.host.attempt_waiting(False)

    async def on_frame(self, frame: typing.Any, version: int) -> typing.Optional[Ending]:
        message = decode(frame, version)
        kind = frame.type
        if kind != MessageType.AWAITING_ON:
            self.stop_waiting()
        if is_command(kind):
            if kind in (MessageType.GET_LAZY_STATE_COMMAND, MessageType.GET_LAZY_STATE_KEYS_COMMAND) \
                    and self.journal.state is None and self.invocation.key is not None:
                self.journal.state = await self.host.store.load_state(self.invocation.service, self.invocation.key)
            self.journal.on_command(kind, message, frame.payload, self.host.clock.now())
            if kind == MessageType.SLEEP_COMMAND and version < 7 and self.streaming and not self.waiting:
                # V6 sends no AwaitingOn: a sleep is the sign that the handler waits for the server
                # (whatever it sends next takes a slot back, as in V7)
                self.waiting = self.host.attempt_waiting(True)
            return None
        if kind == MessageType.PROPOSE_RUN_COMPLETION:
            ack = self.streaming and version >= 7 and frame.requested_ack
            self.journal.propose_run(message, ack)  # type: ignore[arg-type]
            return None
        if kind == MessageType.END:
            if self.journal.output is None:
                raise ProtocolViolation("end message without an output command")
            return Ended()
        if kind == MessageType.SUSPENSION:
            completions, signals = awaited(message)
            return Suspended(frozenset(completions), frozenset(signals))
        if kind == MessageType.ERROR:
            behavior = {0: "retry", 1: "pause", 2: "fail"}.get(getattr(message, "behavior", 0), "retry")
            delay = message.next_retry_delay if message.HasField("next_retry_delay") else None  # type: ignore[attr-defined]
            return Failed(message.code or 500, message.message, delay, behavior)  # type: ignore[attr-defined]
        if kind == MessageType.AWAITING_ON:
            # A bidirectional exchange's handler waits for the server (a timer, a call), not for
            # a run of its own: like an in-process attempt waiting in memory, its slot is given
            # back, so that a burst of sleepers does not hold every slot for its sleep.
            # Request-response endpoints suspend anyway.
            if self.streaming and not self.waiting and not getattr(message, "executing_side_effects", True):
                self.waiting = self.host.attempt_waiting(True)
            return None
        raise ProtocolViolation(f"unexpected message {MessageType(kind).name} from the endpoint")

    # -- outcomes ------------------------------------------------------------------------------

    async def _complete(self) -> typing.Optional[FlushResult]:
        invocation = self.invocation
        value, failure = self.journal.output or (None, None)
        caller = None
        if invocation.caller_id is not None and invocation.caller_command is not None:
            caller = (invocation.caller_id, invocation.caller_command)
        release = (invocation.service, invocation.key or "") if self.handler.exclusive else None
        result = await self.flush(Complete(
            output=value if failure is None else None, failure=failure,
            retention_ms=self.handler.retention_ms(invocation.idempotency_key is not None),
            caller=caller, release_key=release, take_next=release is not None))
        self.outcome = "completed" if failure is None else "failed"
        return result

    async def _suspend(self, ending: Suspended) -> bool:
        """Store the endpoint's commands, then suspend, unless what it waits for is here already
        (then False: replay it now, as Restate resumes instead of suspending)."""
        await self.flush(None)
        await self.read_mailbox()
        if self.journal.sleeping:
            self.journal.fire_timers(self.host.clock.now())
        if self.journal.resumable(ending.completions, ending.signals):
            return False
        result = await self.flush(Suspend(self.journal.next_timer(), self.wakeups))
        if not result.suspended:  # a notification arrived meanwhile
            await self.read_mailbox()
            return False
        self.outcome = "suspended"
        return True

    async def _fail(self, failure: Failed) -> None:
        schedule = self.handler.retry_schedule
        description = f"[{failure.code}] {failure.message}"
        if failure.behavior == "fail" or (schedule.exhausted(self.lease.attempt) and schedule.on_max_attempts == "kill"):
            logger.warning("invocation %s failed: %s", self.invocation_id, description)
            await self._fail_terminally(Failure(failure.code, failure.message))
            return
        if failure.behavior == "pause" or schedule.exhausted(self.lease.attempt):
            logger.warning("invocation %s failed %d times, pausing it: %s", self.invocation_id, self.lease.attempt,
                           description)
            await self.flush(Retry("paused", 0, description, failure.code))
            self.outcome = "paused"
            return
        delay_ms = failure.retry_after_ms if failure.retry_after_ms is not None else int(
            schedule.delay(self.lease.attempt) * 1000)
        logger.warning("attempt %d of %s (%s/%s) failed, retrying in %.3fs: %s", self.lease.attempt,
                       self.invocation_id, self.invocation.service, self.invocation.handler, delay_ms / 1000,
                       description)
        await self.flush(Retry("backing-off", delay_ms, description, failure.code))
        self.outcome = "retry"

    async def _fail_terminally(self, failure: Failure) -> None:
        self.journal.output = (None, failure)
        await self._complete()

