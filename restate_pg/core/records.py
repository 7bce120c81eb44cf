"""Plain data that crosses the boundary between the store and the rest of restate-pg."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields
from datetime import datetime


@dataclass(frozen=True)
class Failure:
    """A terminal failure: what callers receive."""

    code: int
    message: str
    metadata: typing.Optional[typing.Dict[str, str]] = None


@dataclass
class Submission:
    """A new invocation, from the ingress or journaled by another invocation."""

    id: str
    service: str
    handler: str
    key: typing.Optional[str]
    service_ty: str
    handler_ty: typing.Optional[str]
    input: bytes
    headers: typing.Dict[str, str] = field(default_factory=dict)
    idempotency_key: typing.Optional[str] = None
    invoked_by: str = "ingress"
    caller_id: typing.Optional[str] = None
    caller_command: typing.Optional[int] = None
    waiter: typing.Optional[str] = None
    delay_ms: typing.Optional[int] = None
    owner: typing.Optional[str] = None  # run it here: lease it to this worker at once
    deployment: typing.Optional[str] = None  # the owner's deployment, which pins it when leased at once
    #: Flow control (docs/flow-control.md): the rules it falls under, and its claim order.
    scope: typing.Optional[str] = None
    limit_key: typing.Optional[str] = None
    priority: int = 0
    #: A pending send with the same target and debounce key takes this one's input instead.
    debounce_key: typing.Optional[str] = None
    #: Refuse it (nothing written) when its scope's backlog rule says the queue is full.
    check_backlog: bool = False

    @property
    def exclusive(self) -> bool:
        return self.handler_ty == "exclusive"

    @property
    def flow_controlled(self) -> bool:
        """Whether only a claim, which checks the rules, may start it (never the submitter at once)."""
        return self.scope is not None or self.priority != 0


@dataclass(frozen=True)
class Submitted:
    """What became of a submission: None status means the id already existed."""

    id: str
    status: typing.Optional[str]  # invoked | inboxed | scheduled | rejected (backlog full), or None for a duplicate
    leased: bool  # leased to the submitting worker, to run there
    db_now: typing.Optional[datetime] = None
    #: When leased here and keyed: the key's state as the attempt starts (None: too big, read lazily).
    state: typing.Optional[typing.Dict[str, bytes]] = None


@dataclass
class JournalRow:
    index: int
    command_index: typing.Optional[int]
    completes: typing.Optional[int]
    entry_type: str
    name: typing.Optional[str] = None
    params: typing.Optional[typing.Dict[str, typing.Any]] = None
    completed: bool = False
    value: typing.Optional[bytes] = None
    failure: typing.Optional[Failure] = None
    sleep_wakeup_at: typing.Optional[datetime] = None
    #: An SDK endpoint's command as it sent it (protobuf), replayed byte for byte.
    message: typing.Optional[bytes] = None
    #: When the entry was created (the engine's clock, as Restate stamps a record when it is
    #: proposed, not when it is stored); None: the `now()` of the transaction that stores it.
    appended_at: typing.Optional[datetime] = None


#: The command index of the mailbox notification that asks an invocation to cancel itself.
CANCEL_SIGNAL = -1


@dataclass(frozen=True)
class MailboxItem:
    """A result delivered to an invocation from outside: a call's result (its command), a signal
    by index (minus the index: CANCEL_SIGNAL is signal 1) or by name (`signal_name`)."""

    seq: int
    command_index: typing.Optional[int]
    value: typing.Optional[bytes]
    failure: typing.Optional[Failure]
    signal_name: typing.Optional[str] = None
    #: When it was stored (the database's clock): timers that fired before it come before it.
    at: typing.Optional[datetime] = None


@dataclass(frozen=True)
class Lease:
    """An attempt's right to write: valid while `task` says this owner at this epoch."""

    invocation_id: str
    owner: str
    epoch: int
    attempt: int


@dataclass
class InvocationRecord:
    id: str
    service: str
    handler: str
    key: typing.Optional[str]
    input: bytes
    headers: typing.Dict[str, str]
    idempotency_key: typing.Optional[str]
    caller_id: typing.Optional[str]
    caller_command: typing.Optional[int]
    status: str
    scope: typing.Optional[str] = None
    limit_key: typing.Optional[str] = None


@dataclass
class ClaimedTask:
    lease: Lease
    wakeups: int
    previous_status: str
    db_now: datetime
    lag: float = 0.0  # seconds from when it was due (run_at) to the claim


@dataclass
class LoadedInvocation:
    """Everything a new attempt starts from."""

    invocation: InvocationRecord
    journal: typing.List[JournalRow]
    mailbox: typing.List[MailboxItem]


@dataclass(frozen=True)
class StateOp:
    kind: typing.Literal["set", "clear", "clear_all"]
    name: typing.Optional[str] = None
    value: typing.Optional[bytes] = None


@dataclass(frozen=True)
class Suspend:
    wake_at: typing.Optional[datetime]
    wakeups: int


@dataclass(frozen=True)
class Retry:
    status: typing.Literal["backing-off", "paused"]
    delay_ms: int
    failure: str
    failure_code: int


@dataclass(frozen=True)
class Complete:
    output: typing.Optional[bytes]
    failure: typing.Optional[Failure]
    retention_ms: int
    caller: typing.Optional[typing.Tuple[str, int]] = None
    release_key: typing.Optional[typing.Tuple[str, str]] = None
    take_next: bool = False


Outcome = typing.Union[Suspend, Retry, Complete]


@dataclass(frozen=True)
class Resolution:
    """A result for another invocation's awakeable (`ctx.resolve_awakeable`, the ingress)."""

    awakeable_id: str
    invocation_id: str
    command_index: int
    value: typing.Optional[bytes]
    failure: typing.Optional[Failure] = None


@dataclass(frozen=True)
class Signal:
    """A signal for another invocation: by index (an SDK endpoint's awakeable; 1 is cancel) or by
    name (`ctx.resolve_signal`), with a value or a failure."""

    invocation_id: str
    index: typing.Optional[int] = None
    name: typing.Optional[str] = None
    value: typing.Optional[bytes] = None
    failure: typing.Optional[Failure] = None


@dataclass(frozen=True)
class PromiseGet:
    """A GetPromise (or, with `peek`, PeekPromise) command of a workflow handler."""

    name: str
    command_index: int
    peek: bool = False


@dataclass(frozen=True)
class PromiseCompletion:
    """A CompletePromise command: resolve (value) or reject (failure) a workflow's promise."""

    name: str
    command_index: int
    value: typing.Optional[bytes]
    failure: typing.Optional[Failure] = None


@dataclass
class Batch:
    """The writes of one attempt transaction (a flush), applied atomically and in this order."""

    #: The invocation itself, when its creation was deferred to its first flush (see services/submissions.py).
    create: typing.Optional[Submission] = None
    journal: typing.List[JournalRow] = field(default_factory=list)
    state: typing.List[typing.Tuple[str, str, StateOp]] = field(default_factory=list)  # (service, key, op)
    submissions: typing.List[Submission] = field(default_factory=list)
    consumed: typing.List[int] = field(default_factory=list)
    resolutions: typing.List[Resolution] = field(default_factory=list)
    signals: typing.List[Signal] = field(default_factory=list)
    #: Promise commands, on the promises of workflow `promise_key` (service, workflow id).
    promise_key: typing.Optional[typing.Tuple[str, str]] = None
    promise_gets: typing.List[PromiseGet] = field(default_factory=list)
    promise_completions: typing.List[PromiseCompletion] = field(default_factory=list)
    #: AttachInvocation commands: (invocation to wait for, command index).
    attaches: typing.List[typing.Tuple[str, int]] = field(default_factory=list)
    #: Invocations to cancel (ctx.cancel_invocation, and the children of a cancelled invocation).
    cancels: typing.List[str] = field(default_factory=list)
    outcome: typing.Optional[Outcome] = None

    def empty(self) -> bool:
        """Nothing to write (`promise_key` alone is not a write: it says whose promises the
        promise commands are on)."""
        return not any(getattr(self, f.name) for f in fields(self) if f.name != "promise_key")

    def followed_by(self, later: "Batch") -> "Batch":
        """This batch's writes, then `later`'s, as one batch (of the single-valued fields, the first
        that is set). The outcome is not carried over: whoever flushes the result decides it."""
        merged: typing.Dict[str, typing.Any] = {}
        for f in fields(self):
            if f.name == "outcome":
                continue
            mine, theirs = getattr(self, f.name), getattr(later, f.name)
            merged[f.name] = mine + theirs if isinstance(mine, list) else (mine or theirs)
        return Batch(**merged)


@dataclass
class FlushResult:
    db_now: datetime
    submitted: typing.List[Submitted] = field(default_factory=list)
    suspended: bool = False
    waiter: typing.Optional[str] = None  # who waits for the completed invocation's result
    caller_owner: typing.Optional[str] = None  # who runs the caller we delivered a result to
    next_holder: typing.Optional["InvocationRecord"] = None  # the inboxed invocation that got the key
    #: Invocations this flush delivered a result to, with the process running each (to wake it),
    #: or None when none runs it (it was suspended and is ready now: any worker may take it).
    woken: typing.List[typing.Tuple[str, typing.Optional[str]]] = field(default_factory=list)
    #: Answers to promise and attach commands, by command: a completion's "completed" or "already"; a get's
    #: {"completed": bool, "value", "failure_code", ...}.
    answers: typing.Dict[int, typing.Any] = field(default_factory=dict)
