"""`JournalMachine`: the journal state machine of one attempt, with no I/O and no awaits.

The context (`runtime/context.py` and its siblings) owns the asyncio side: futures and their
waiters, timers, `ctx.run` tasks, the flush lock, mailbox reads, suspension. Everything that
decides *what is written* lives here instead: numbering the handler's commands, matching them
against the recorded journal (a mismatch is a `NonDeterminismError`), the results table and the
journal position of each result, the rows appended (one constructor per row kind: a command, or a
completion of one), the pending write batch and how a failed flush is merged back, turning
mailbox notifications and flush answers into completion entries, the cancel signal, and the
state overlay. Kept apart so that replay and non-determinism can be tested without PostgreSQL
(`tests/test_journal_machine.py`), and so the context reads as glue, as restate-sdk keeps its
state machine apart from `server_context.py`.

Methods that complete a command return the commands they completed: waking whoever waits for
them is the context's part.
"""

from __future__ import annotations

import typing
from datetime import datetime, timedelta

from restate_pg.api.errors import SdkInternalException, TerminalError
from restate_pg.api.serde import JsonSerde
from restate_pg.core.ids import new_awakeable_id, parse_awakeable_id
from restate_pg.protocol.awakeables import awakeable_signal
from restate_pg.runtime.answers import answer_result
from restate_pg.runtime.journal import RecordedJournal, Result
from restate_pg.runtime.state_overlay import StateOverlay
from restate_pg.core.records import (
    CANCEL_SIGNAL,
    Batch,
    Failure,
    JournalRow,
    MailboxItem,
    PromiseCompletion,
    PromiseGet,
    Resolution,
    Signal,
    StateOp,
    Submission,
)

Params = typing.Optional[typing.Dict[str, typing.Any]]
CallKind = typing.Literal["Call", "OneWayCall"]

#: The params of a database step's journal entry (a Run), which tell it apart from a ctx.run.
IN_TRANSACTION = {"transaction": True}

#: Keys of named signals in the results table: below every command and index signal, one per name.
NAMED_SIGNALS = -(1 << 30)


class JournalMachine:
    """Commands, results and pending writes of one attempt, replayed against its recording."""

    def __init__(
        self,
        journal: typing.Sequence[JournalRow],
        create: typing.Optional[Submission] = None,
        state: typing.Optional[typing.Dict[str, bytes]] = None,
    ) -> None:
        self.recorded = RecordedJournal(journal)
        #: Each command's result, with the journal position of its completion.
        self.results: typing.Dict[int, Result] = dict(self.recorded.results)
        self.next_command = 1
        self.next_index = self.recorded.last_index + 1
        #: What the next flush writes.
        self.pending = Batch(create=create)
        #: The last mailbox item taken in (items are numbered by `seq`).
        self.mailbox_after = 0
        #: Invocations this one called (Call commands), to cancel with it.
        self.calls: typing.Dict[int, str] = {}
        self.children_cancelled = False
        #: Entry type of the journaled completion of commands completed from outside, if not a Call.
        self.completion_types: typing.Dict[int, str] = {}
        self.state = StateOverlay(state)
        #: Named signals received (journaled as 'Signal' rows), and the key each waited-on name has.
        self.signals: typing.Dict[str, Result] = dict(self.recorded.signals)
        self.signal_keys: typing.Dict[str, int] = {}
        #: The attempt ended: no command may be issued any more.
        self.closed = False
        #: How far into the completions the handler has looked (a journal position): see `reveal`.
        self.horizon = 0

    # -- numbering and matching --------------------------------------------------------------

    def is_replaying(self) -> bool:
        """Whether the handler has yet to issue some recorded command."""
        return self.next_command <= self.recorded.last_command

    def check_open(self) -> None:
        if self.closed:
            raise SdkInternalException("this attempt has ended; the context can no longer be used")

    def issue(
        self, entry_type: str, name: typing.Optional[str] = None, params: Params = None
    ) -> typing.Tuple[int, typing.Optional[JournalRow]]:
        """Number the next command and find its recording; raises NonDeterminismError on a mismatch."""
        self.check_open()
        refuse_unstorable(entry_type, name, params)
        command = self.next_command
        self.next_command += 1
        return command, self.recorded.match(command, entry_type, name, params)

    def is_done(self, command: int) -> bool:
        return command in self.results

    def completion_position(self, command: int) -> typing.Optional[int]:
        """Where the result of `command` sits in the journal, or None while it has none.

        Combinators order completions by it, so that a replay, which finds them all recorded,
        picks the same winner as the first execution did."""
        result = self.results.get(command)
        return None if result is None else result.position

    def visible_position(self, command: int) -> typing.Optional[int]:
        """`completion_position`, for a completion the handler has reached (None otherwise)."""
        position = self.completion_position(command)
        return position if position is not None and position <= self.horizon else None

    def reveal(self, commands: typing.Iterable[int]) -> bool:
        """Let the handler see completions up to the earliest one among `commands`, if one has
        completed; whether one has.

        Completions are taken one at a time in journal order, and only as far as an await needs,
        as Restate's SDKs take notifications: a combinator that finds one of its futures done sees
        what completed before it, not what completed after. The first execution and every replay
        reach the same point of the same journal, so they give the same answer, however many
        completions have been journaled since."""
        positions = [p for p in map(self.completion_position, commands) if p is not None]
        if not positions:
            return False
        self.horizon = max(self.horizon, min(positions))
        return True

    # -- journal rows ------------------------------------------------------------------------

    def _position(self) -> int:
        index = self.next_index
        self.next_index += 1
        return index

    def append_command(
        self,
        command: int,
        entry_type: str,
        *,
        name: typing.Optional[str] = None,
        params: Params = None,
        completed: bool = False,
        value: typing.Optional[bytes] = None,
        failure: typing.Optional[Failure] = None,
        sleep_wakeup_at: typing.Optional[datetime] = None,
    ) -> JournalRow:
        """Journal a new command at the next position."""
        row = JournalRow(
            index=self._position(), command_index=command, completes=None, entry_type=entry_type, name=name,
            params=params, completed=completed, value=value, failure=failure, sleep_wakeup_at=sleep_wakeup_at,
        )
        self.pending.journal.append(row)
        return row

    def complete(
        self, command: int, entry_type: str, value: typing.Optional[bytes] = None,
        failure: typing.Optional[Failure] = None,
    ) -> int:
        """Journal the completion of `command` (arrived from outside) and record its result there."""
        index = self._position()
        self.pending.journal.append(
            JournalRow(index=index, command_index=None, completes=command, entry_type=entry_type, completed=True,
                       value=value, failure=failure)
        )
        self.results[command] = Result(value, failure, index)
        return index

    def resolve(self, command: int, result: Result) -> bool:
        """Record `result` unless the command has one already; whether it was recorded."""
        if command in self.results:
            return False
        self.results[command] = result
        return True

    # -- the write batch ---------------------------------------------------------------------

    def take_batch(self) -> Batch:
        """Hand the pending writes to a flush; what comes next goes into a new batch."""
        batch, self.pending = self.pending, Batch()
        return batch

    def restore(self, batch: Batch, without: typing.Optional[JournalRow] = None) -> None:
        """A flush of `batch` was not written: keep it, ahead of what came since, for the next
        flush, so that nothing is silently dropped (less `without`, a row to be journaled again)."""
        if without is not None:
            batch.journal.remove(without)
        batch.outcome = None
        self.pending = merge(batch, self.pending)

    # -- completions from outside ------------------------------------------------------------

    def ingest(self, items: typing.Iterable[MailboxItem], sleeping: typing.Container[int] = ()) -> typing.List[int]:
        """Take in mailbox notifications; the commands they completed (CANCEL_SIGNAL included).

        `sleeping` holds the commands with a timer armed: a notification for one is a timer fired
        from outside (Operations.fire_timers)."""
        completed: typing.List[int] = []
        for item in items:
            if item.seq <= self.mailbox_after:
                continue
            self.mailbox_after = item.seq
            self.pending.consumed.append(item.seq)
            if item.signal_name is not None:
                completed += self._receive_signal(item)
                continue
            command = item.command_index
            if command is None or command in self.results:
                continue
            if command == CANCEL_SIGNAL:
                self.complete(CANCEL_SIGNAL, "Cancel")
            else:
                recorded = self.recorded.commands.get(command)
                entry_type = self.completion_types.get(command) or (
                    recorded.entry_type if recorded is not None else "Sleep" if command in sleeping else "Call")
                self.complete(command, entry_type, item.value, item.failure)
            completed.append(command)
        return completed

    def _receive_signal(self, item: MailboxItem) -> typing.List[int]:
        """Journal a named signal (the first of its name; the store delivers no second) and
        complete its wait, if the handler waits for it already."""
        name = typing.cast(str, item.signal_name)
        if name in self.signals:
            return []
        index = self._position()
        self.pending.journal.append(JournalRow(
            index=index, command_index=None, completes=None, entry_type="Signal", params={"signal_name": name},
            completed=True, value=item.value, failure=item.failure))
        self.signals[name] = Result(item.value, item.failure, index)
        key = self.signal_keys.get(name)
        if key is None:
            return []
        self.results[key] = self.signals[name]
        return [key]

    def answer(self, outcomes: typing.Mapping[int, typing.Any], peeks: typing.Set[int]) -> typing.List[int]:
        """Journal what a flush answered to promise and attach commands, and to calls that attached
        to an existing invocation; the commands completed."""
        completed = []
        for command, outcome in sorted(outcomes.items()):
            if command in self.results:
                continue
            result = answer_result(outcome, command in peeks)
            if result is None:
                continue  # the completion will put the result in the mailbox
            self.complete(command, self.completion_types.get(command, "Call"), result.value, result.failure)
            completed.append(command)
        return completed

    def fire_timer(self, command: int) -> bool:
        """Journal that the sleep `command` is over; False if it was already."""
        if command in self.results:
            return False
        self.complete(command, "Sleep", b"")
        return True

    # -- cancellation ------------------------------------------------------------------------

    def cancel_requested(self) -> bool:
        return CANCEL_SIGNAL in self.results

    def raise_if_cancelled(self) -> None:
        """At an await that has to wait: a cancelled invocation stops here, with its children."""
        if CANCEL_SIGNAL not in self.results:
            return
        if not self.children_cancelled:
            self.children_cancelled = True  # sent with the next flush; repeated on replay, harmlessly
            self.pending.cancels.extend(
                callee for command, callee in sorted(self.calls.items()) if command not in self.results)
        raise TerminalError("cancelled", 409)

    # -- commands ----------------------------------------------------------------------------

    def journal_run(self, command: int, name: str, result: Result, params: Params = None) -> JournalRow:
        """Journal the result of a `ctx.run` (or, with IN_TRANSACTION, of a database step)."""
        return self.append_command(command, "Run", name=name, params=params, completed=True, value=result.value,
                                   failure=result.failure)

    def sleep(
        self, delta: timedelta, name: typing.Optional[str], now: typing.Callable[[], datetime]
    ) -> typing.Tuple[int, datetime]:
        """A Sleep command and when it wakes (recorded, or `now()` plus `delta`)."""
        command, recorded = self.issue("Sleep", name)
        if recorded is not None and recorded.sleep_wakeup_at is not None:
            return command, recorded.sleep_wakeup_at
        wake_at = now() + delta
        self.append_command(command, "Sleep", name=name, params={"duration_ms": int(delta.total_seconds() * 1000)},
                            sleep_wakeup_at=wake_at)
        return command, wake_at

    def awakeable(self, invocation_id: str, schema: Params = None) -> typing.Tuple[int, str]:
        """An Awakeable command and its id; `schema`, the JSON schema of the type the handler
        declared, is journaled for whoever resolves it (`api/completions.py`), not matched on
        replay: a journal without one (or another one) replays the same."""
        command, recorded = self.issue("Awakeable")
        if recorded is not None:
            awakeable_id = (recorded.value or b"").decode()
        else:
            awakeable_id = new_awakeable_id(invocation_id, command)
            self.append_command(command, "Awakeable", params=_declaring(None, schema), value=awakeable_id.encode())
        self.completion_types[command] = "Awakeable"
        return command, awakeable_id

    def complete_awakeable(
        self, awakeable_id: str, value: typing.Optional[bytes], failure: typing.Optional[Failure]
    ) -> None:
        """Journal the completion; it is delivered in the transaction of the next flush (an SDK
        endpoint's awakeable as a signal to its invocation)."""
        signal = awakeable_signal(awakeable_id, value, failure)
        if signal is None:
            try:
                target, target_command = parse_awakeable_id(awakeable_id)
            except ValueError:
                raise TerminalError(f"bad awakeable id '{awakeable_id}'", 400) from None
        params = {"id": awakeable_id}
        command, recorded = self.issue("CompleteAwakeable", None, params)
        if recorded is None:
            self.append_command(command, "CompleteAwakeable", params=params, completed=True, value=value,
                                failure=failure)
            if signal is not None:
                self.pending.signals.append(signal)
            else:
                self.pending.resolutions.append(Resolution(awakeable_id, target, target_command, value, failure))

    def signal(self, name: str) -> int:
        """The key that the named signal's result has (now, if it arrived already, or on arrival).

        As in Restate, waiting is not a command: the signal's own journal row, written when it
        arrives, is the whole record, so a replay finds it whether it came before or after the wait."""
        self.check_open()
        key = self.signal_keys.get(name)
        if key is None:
            key = self.signal_keys[name] = NAMED_SIGNALS - len(self.signal_keys)
            if name in self.signals:
                self.results[key] = self.signals[name]
        return key

    def send_signal(self, invocation_id: str, name: str, value: typing.Optional[bytes],
                    failure: typing.Optional[Failure]) -> None:
        """A SendSignal command; the signal is delivered with the flush that journals it."""
        params = {"target": invocation_id, "signal_name": name}
        command, recorded = self.issue("SendSignal", None, params)
        if recorded is None:
            self.append_command(command, "SendSignal", params=params, completed=True, value=value, failure=failure)
            self.pending.signals.append(Signal(invocation_id, name=name, value=value, failure=failure))

    def promise_get(self, name: str, peek: bool, promise_key: typing.Tuple[str, str], schema: Params = None) -> int:
        """A GetPromise (or PeekPromise) command; asked again on replay, the answer being idempotent.
        `schema` is journaled, unmatched, as with `awakeable`."""
        entry_type = "PeekPromise" if peek else "GetPromise"
        command = self._awaited_command(entry_type, {"name": name}, declared=schema)
        if command not in self.results:
            self.pending.promise_key = promise_key
            self.pending.promise_gets.append(PromiseGet(name, command, peek))
        return command

    def promise_complete(
        self, name: str, value: typing.Optional[bytes], failure: typing.Optional[Failure],
        promise_key: typing.Tuple[str, str],
    ) -> int:
        """A CompletePromise command; its answer (done, or 409) comes back with the flush."""
        command = self._awaited_command("CompletePromise", {"name": name}, value, failure)
        if command not in self.results:
            self.pending.promise_key = promise_key
            self.pending.promise_completions.append(PromiseCompletion(name, command, value, failure))
        return command

    def attach(self, invocation_id: str) -> int:
        """An AttachInvocation command; asked again on replay, the answer being idempotent."""
        command = self._awaited_command("AttachInvocation", {"invocation_id": invocation_id})
        if command not in self.results:
            self.pending.attaches.append((invocation_id, command))
        return command

    def _awaited_command(
        self, entry_type: str, params: typing.Dict[str, typing.Any], value: typing.Optional[bytes] = None,
        failure: typing.Optional[Failure] = None, declared: Params = None,
    ) -> int:
        """Issue a command whose result is journaled as a completion of the same entry type."""
        command, recorded = self.issue(entry_type, None, params)
        if recorded is None:
            self.append_command(command, entry_type, params=_declaring(params, declared), value=value, failure=failure)
        self.completion_types[command] = entry_type
        return command

    def cancel_invocation(self, invocation_id: str) -> None:
        """Journal a cancellation of `invocation_id`; it is sent with the next flush."""
        params = {"invocation_id": invocation_id}
        command, recorded = self.issue("CancelInvocation", None, params)
        if recorded is None:
            self.append_command(command, "CancelInvocation", params=params, completed=True)
            self.pending.cancels.append(invocation_id)

    def call(self, kind: CallKind, params: typing.Dict[str, typing.Any]) -> typing.Tuple[int, typing.Optional[str]]:
        """A Call or OneWayCall command, and its callee's id if recorded (None: a new call)."""
        command, recorded = self.issue(kind, None, params)
        if recorded is None:
            return command, None
        callee: str = (recorded.params or {})["invocation_id"]
        if kind == "Call":
            self.calls[command] = callee
        return command, callee

    def journal_call(self, kind: CallKind, command: int, params: typing.Dict[str, typing.Any], submission: Submission) -> None:
        """Journal a new call and submit its invocation; a one-way call is complete at once."""
        callee = submission.id
        self.append_command(command, kind, params={**params, "invocation_id": callee}, completed=kind == "OneWayCall",
                            value=b"" if kind == "OneWayCall" else None)
        self.pending.submissions.append(submission)
        if kind == "OneWayCall":
            self.results[command] = Result(b"", None, self.next_index - 1)
        else:
            self.calls[command] = callee

    # -- state -------------------------------------------------------------------------------

    def get_state(
        self, name: str, entry_name: typing.Optional[str]
    ) -> typing.Tuple[int, bool, bool, typing.Optional[bytes]]:
        """A GetState command: (command, replayed, known, value); `known` is False when the value
        must be read from the database (then passed to `journal_get_state`)."""
        command, recorded = self.issue("GetState", entry_name, {"name": name})
        if recorded is not None:
            return command, True, True, recorded.value
        known, value = self.state.current(name)
        return command, False, known, value

    def journal_get_state(self, command: int, name: str, entry_name: typing.Optional[str],
                          value: typing.Optional[bytes]) -> None:
        self.append_command(command, "GetState", name=entry_name, params={"name": name}, completed=True, value=value)

    def state_keys(self, entry_name: typing.Optional[str]) -> typing.Tuple[int, typing.Optional[typing.List[str]]]:
        """A GetStateKeys command, and the recorded keys if replayed."""
        command, recorded = self.issue("GetStateKeys", entry_name)
        if recorded is None:
            return command, None
        return command, JsonSerde[typing.List[str]]().deserialize(recorded.value or b"") or []

    def journal_state_keys(self, command: int, entry_name: typing.Optional[str],
                           stored: typing.Mapping[str, bytes]) -> typing.List[str]:
        """Journal the key names, given the stored state (not read when it was cleared)."""
        keys = self.state.keys(stored)
        self.append_command(command, "GetStateKeys", name=entry_name, completed=True,
                            value=JsonSerde[typing.List[str]]().serialize(keys))
        return keys

    def set_state(self, service: str, key: str, name: str, raw: bytes, entry_name: typing.Optional[str]) -> None:
        params = {"name": name}
        command, recorded = self.issue("SetState", entry_name, params)
        self.state.set(name, raw)
        if recorded is None:
            self.append_command(command, "SetState", name=entry_name, params=params, completed=True, value=raw)
            self.pending.state.append((service, key, StateOp("set", name, raw)))

    def clear_state(self, service: str, key: str, name: str, entry_name: typing.Optional[str]) -> None:
        params = {"name": name}
        command, recorded = self.issue("ClearState", entry_name, params)
        self.state.set(name, None)
        if recorded is None:
            self.append_command(command, "ClearState", name=entry_name, params=params, completed=True)
            self.pending.state.append((service, key, StateOp("clear", name)))

    def clear_all_state(self, service: str, key: str, entry_name: typing.Optional[str]) -> None:
        command, recorded = self.issue("ClearAllState", entry_name)
        self.state.clear_all()
        if recorded is None:
            self.append_command(command, "ClearAllState", name=entry_name, completed=True)
            self.pending.state.append((service, key, StateOp("clear_all")))


def _declaring(params: Params, schema: Params) -> Params:
    """`params` plus the declared type's schema, if any (kept out of what replay matches)."""
    return params if schema is None else {**(params or {}), "schema": schema}


def refuse_unstorable(entry_type: str, name: typing.Optional[str], params: typing.Optional[typing.Mapping[str, typing.Any]]) -> None:
    """A NUL character cannot be stored in PostgreSQL's text or jsonb: refuse it with a terminal
    400 where the handler asks for it, rather than fail every flush (and retry) forever."""
    for field, value in (("name", name), *(params or {}).items()):
        if isinstance(value, str) and "\x00" in value:
            raise TerminalError(
                f"{entry_type}: the {field} contains a NUL character (\\u0000), which PostgreSQL cannot store", 400)


def merge(first: Batch, second: Batch) -> Batch:
    """`first` then `second`, as one batch."""
    return first.followed_by(second)
