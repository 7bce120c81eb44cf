"""The request and the answer of the server-side `apply()`, as typed structures, in one place.

Every write of the hot path is one request to `apply()` (procedures.py): `{"submit": ...}`,
`{"flush": ...}`, `{"resolve": ...}`, `{"cancel": id}` or `{"kill": id}`, a JSON document whose
keys the plpgsql reads with `->` and `->>`. This module writes those documents from the records
of `core.records` and reads what the functions answer; the `TypedDict`s below are the contract,
and `tests/test_codec.py` checks them against the functions' text (every key written is read,
every key read is written) and round-trips each request kind through a real database.

Binary values travel as base64; a section of a flush the batch does not use is left out, which
costs the server nothing (its `IF p ? 'section'` skips it).
"""

from __future__ import annotations

import base64
import typing
from datetime import datetime

import orjson

from restate_pg.core.records import (
    Batch,
    Complete,
    Failure,
    FlushResult,
    InvocationRecord,
    JournalRow,
    Lease,
    Resolution,
    Retry,
    Signal,
    Submission,
    Submitted,
    Suspend,
)

# -- what apply() reads ----------------------------------------------------------------------------


class FailureFields(typing.TypedDict):
    """A failure, spread over three keys (and three columns); all None for a success."""

    failure_code: typing.Optional[int]
    failure_message: typing.Optional[str]
    failure_metadata: typing.Optional[typing.Dict[str, str]]


class SubmissionDoc(typing.TypedDict):
    """A new invocation, as `submit_invocation(p)` and `started(p, ...)` read it."""

    id: str
    service: str
    handler: str
    key: typing.Optional[str]
    service_ty: str
    handler_ty: typing.Optional[str]
    input: typing.Optional[str]
    headers: typing.Dict[str, str]
    idempotency_key: typing.Optional[str]
    invoked_by: str
    caller_id: typing.Optional[str]
    caller_command: typing.Optional[int]
    waiter: typing.Optional[str]
    delay_ms: typing.Optional[int]
    owner: typing.Optional[str]
    deployment: typing.Optional[str]
    scope: typing.Optional[str]
    limit_key: typing.Optional[str]
    priority: int
    debounce_key: typing.Optional[str]
    check_backlog: bool
    #: Only on flush()'s `create` (an attempt already running; flush() sets it too, for workers of
    #: older releases): a rule on its target cannot queue it any more, so it keeps its owner's lease.
    running: typing.NotRequired[bool]


class JournalDoc(typing.TypedDict):
    """A journal entry, as flush()'s append_journal reads it: a field that is None is left out
    (read as NULL), which spares PostgreSQL a third of the JSON it parses for a step's flush."""

    index: int
    entry_type: str
    command_index: typing.NotRequired[int]
    completes: typing.NotRequired[int]
    name: typing.NotRequired[str]
    params: typing.NotRequired[typing.Dict[str, typing.Any]]
    completed: typing.NotRequired[bool]  # left out when False
    value: typing.NotRequired[str]
    failure_code: typing.NotRequired[int]
    failure_message: typing.NotRequired[str]
    failure_metadata: typing.NotRequired[typing.Optional[typing.Dict[str, str]]]
    sleep_wakeup_at: typing.NotRequired[datetime]
    message: typing.NotRequired[str]
    appended_at: typing.NotRequired[datetime]  # left out: the transaction's now()


class StateDoc(typing.TypedDict):
    """One state operation (set, clear, clear_all) of an object key."""

    op: str
    service: str
    key: str
    name: typing.Optional[str]
    value: typing.Optional[str]


class ResolutionDoc(FailureFields):
    """A result for an awakeable, as `resolve_awakeable(p)` reads it."""

    id: str
    invocation_id: str
    command_index: int
    value: typing.Optional[str]


class PromiseGetDoc(typing.TypedDict):
    name: str
    command: int
    peek: bool


class PromiseCompletionDoc(FailureFields):
    """As `complete_promise(..., p)` reads it (flush() adds the completing invocation's id)."""

    name: str
    command: int
    value: typing.Optional[str]


class AttachDoc(typing.TypedDict):
    target: str
    command: int


class SuspendDoc(typing.TypedDict):
    kind: typing.Literal["suspend"]
    wake_at: typing.Optional[datetime]
    wakeups: int


class RetryDoc(typing.TypedDict):
    kind: typing.Literal["retry"]
    status: str
    delay_ms: int
    failure: str
    failure_code: int


class CompleteDoc(FailureFields):
    kind: typing.Literal["complete"]
    output: typing.Optional[str]
    retention_ms: int
    caller_id: typing.Optional[str]
    caller_command: typing.Optional[int]
    release_key: typing.Optional[typing.Tuple[str, str]]
    take_next_owner: typing.Optional[str]


OutcomeDoc = typing.Union[SuspendDoc, RetryDoc, CompleteDoc]


class _FlushFence(typing.TypedDict):
    """The attempt whose lease fences the flush."""

    id: str
    owner: str
    epoch: int


class FlushDoc(_FlushFence, total=False):
    """An attempt's buffered writes and outcome, as `flush(p)` reads them; a section the batch
    does not use is absent."""

    create: SubmissionDoc
    locks: typing.List[typing.Tuple[str, str]]
    journal: typing.List[JournalDoc]
    state: typing.List[StateDoc]
    submissions: typing.List[SubmissionDoc]
    consumed: typing.List[int]
    resolutions: typing.List[ResolutionDoc]
    signals: typing.List[SignalDoc]
    promise_key: typing.Optional[typing.Tuple[str, str]]
    promise_gets: typing.List[PromiseGetDoc]
    promise_completions: typing.List[PromiseCompletionDoc]
    cancels: typing.List[str]
    attaches: typing.List[AttachDoc]
    outcome: OutcomeDoc


class SubmitRequest(typing.TypedDict):
    submit: SubmissionDoc


class FlushRequest(typing.TypedDict):
    flush: FlushDoc


class ResolveRequest(typing.TypedDict):
    resolve: ResolutionDoc


class SignalRequest(typing.TypedDict):
    signal: SignalDoc


class CancelRequest(typing.TypedDict):
    cancel: str


class KillRequest(typing.TypedDict):
    kill: str


Request = typing.Union[SubmitRequest, FlushRequest, ResolveRequest, SignalRequest, CancelRequest, KillRequest]

#: The request kinds `apply()` tells apart, by their only key.
REQUEST_KINDS = ("submit", "flush", "resolve", "signal", "cancel", "kill")

# -- what apply() answers ----------------------------------------------------------------------------


class StartedDoc(typing.TypedDict, total=False):
    """What became of a submission (`started()`): its status (None: the id existed), and the
    eager state of its key when it was leased to the submitter (None: too big to send)."""

    status: typing.Optional[str]
    state: typing.Optional[typing.Dict[str, str]]


class NextHolderDoc(typing.TypedDict):
    """The inboxed invocation a completion handed its object key to."""

    id: str
    service: str
    handler: str
    key: typing.Optional[str]
    input: str
    headers: typing.Optional[typing.Dict[str, str]]
    idempotency_key: typing.Optional[str]
    caller_id: typing.Optional[str]
    caller_command: typing.Optional[int]


class FlushAnswer(typing.TypedDict, total=False):
    submitted: typing.List[StartedDoc]
    woken: typing.List[typing.Tuple[str, typing.Optional[str]]]
    answers: typing.Dict[str, typing.Any]
    caller_owner: typing.Optional[str]
    suspended: bool
    waiter: typing.Optional[str]
    next_holder: NextHolderDoc


class SignalDoc(FailureFields):
    """A signal, as `resolve_signal()` reads it."""

    invocation_id: str
    signal_index: typing.Optional[int]
    signal_name: typing.Optional[str]
    value: typing.Optional[str]


class ResolveAnswer(typing.TypedDict, total=False):
    status: str  # resolved | unknown | completed | already
    owner: typing.Optional[str]


class StopAnswer(typing.TypedDict, total=False):
    """What `cancel_invocation()` and `kill_invocation()` answer."""

    status: str  # missing | completed | canceled | signalled | killed
    waiter: typing.Optional[str]
    woken: typing.List[typing.Tuple[str, typing.Optional[str]]]
    ready: bool  # kill only: whether work became ready (an object key passed on)


# -- encoding ----------------------------------------------------------------------------------------


def b64(value: typing.Optional[bytes]) -> typing.Optional[str]:
    return None if value is None else base64.b64encode(value).decode("ascii")


def failure_fields(failure: typing.Optional[Failure]) -> FailureFields:
    if failure is None:
        return {"failure_code": None, "failure_message": None, "failure_metadata": None}
    # a text column cannot hold NUL: a message that has one (echoing bad input, say) is spelled out
    message = failure.message.replace("\x00", "\\u0000")
    return {"failure_code": failure.code, "failure_message": message, "failure_metadata": failure.metadata or None}


def submission_doc(sub: Submission) -> SubmissionDoc:
    """A submission as `submit_invocation()` reads it."""
    return {
        "id": sub.id,
        "service": sub.service,
        "handler": sub.handler,
        "key": sub.key,
        "service_ty": sub.service_ty,
        "handler_ty": sub.handler_ty,
        "input": b64(sub.input),
        "headers": sub.headers,
        "idempotency_key": sub.idempotency_key,
        "invoked_by": sub.invoked_by,
        "caller_id": sub.caller_id,
        "caller_command": sub.caller_command,
        "waiter": sub.waiter,
        "delay_ms": sub.delay_ms,
        "owner": sub.owner,
        "deployment": sub.deployment,
        "scope": sub.scope,
        "limit_key": sub.limit_key,
        "priority": sub.priority,
        "debounce_key": sub.debounce_key,
        "check_backlog": sub.check_backlog,
    }


def resolution_doc(resolution: Resolution) -> ResolutionDoc:
    failure = resolution.failure
    return {
        "id": resolution.awakeable_id,
        "invocation_id": resolution.invocation_id,
        "command_index": resolution.command_index,
        "value": b64(resolution.value) if failure is None else None,
        **failure_fields(failure),
    }


def signal_doc(signal: Signal) -> SignalDoc:
    failure = signal.failure
    return {
        "invocation_id": signal.invocation_id,
        "signal_index": signal.index,
        "signal_name": signal.name,
        "value": b64(signal.value) if failure is None else None,
        **failure_fields(failure),
    }


def journal_doc(row: JournalRow) -> JournalDoc:
    doc: JournalDoc = {"index": row.index, "entry_type": row.entry_type}
    if row.command_index is not None:
        doc["command_index"] = row.command_index
    if row.completes is not None:
        doc["completes"] = row.completes
    if row.name is not None:
        doc["name"] = row.name
    if row.params is not None:
        doc["params"] = row.params
    if row.completed:
        doc["completed"] = True
    if row.value is not None:
        doc["value"] = base64.b64encode(row.value).decode("ascii")
    if row.failure is not None:
        doc.update(failure_fields(row.failure))  # type: ignore[typeddict-item]
    if row.sleep_wakeup_at is not None:
        doc["sleep_wakeup_at"] = row.sleep_wakeup_at
    if row.message is not None:
        doc["message"] = base64.b64encode(row.message).decode("ascii")
    if row.appended_at is not None:
        doc["appended_at"] = row.appended_at
    return doc


def outcome_doc(lease: Lease, batch: Batch) -> typing.Optional[OutcomeDoc]:
    outcome = batch.outcome
    if isinstance(outcome, Suspend):
        return {"kind": "suspend", "wake_at": outcome.wake_at, "wakeups": outcome.wakeups}
    if isinstance(outcome, Retry):
        return {"kind": "retry", "status": outcome.status, "delay_ms": outcome.delay_ms,
                "failure": outcome.failure, "failure_code": outcome.failure_code}
    if isinstance(outcome, Complete):
        return {
            "kind": "complete",
            "output": b64(outcome.output),
            **failure_fields(outcome.failure),
            "retention_ms": outcome.retention_ms,
            "caller_id": outcome.caller[0] if outcome.caller else None,
            "caller_command": outcome.caller[1] if outcome.caller else None,
            "release_key": outcome.release_key,
            "take_next_owner": lease.owner if outcome.take_next else None,
        }
    return None


def flush_request(lease: Lease, batch: Batch) -> FlushDoc:
    """The request of `flush()` in procedures.py for an attempt's buffered writes and outcome."""
    outcome = batch.outcome
    request: FlushDoc = {"id": lease.invocation_id, "owner": lease.owner, "epoch": lease.epoch}
    if batch.create is not None:  # created here, leased to this attempt: the fence then holds
        request["create"] = {**submission_doc(batch.create), "running": True}
    keys: typing.Set[typing.Tuple[str, str]] = {
        (s.service, s.key or "") for s in batch.submissions if s.exclusive and s.delay_ms is None
    }
    if keys and isinstance(outcome, Complete) and outcome.release_key is not None:
        keys.add(outcome.release_key)  # alone, release_object_key locks it only to free it
    if keys:
        request["locks"] = sorted(keys)
    if batch.journal:
        request["journal"] = [journal_doc(row) for row in batch.journal]
    if batch.state:
        request["state"] = [
            {"op": op.kind, "service": service, "key": key, "name": op.name, "value": b64(op.value)}
            for service, key, op in batch.state
        ]
    if batch.submissions:
        request["submissions"] = [submission_doc(sub) for sub in batch.submissions]
    if batch.consumed:
        request["consumed"] = batch.consumed
    if batch.resolutions:
        request["resolutions"] = [resolution_doc(r) for r in batch.resolutions]
    if batch.signals:
        request["signals"] = [signal_doc(s) for s in batch.signals]
    if batch.promise_gets or batch.promise_completions:
        request["promise_key"] = batch.promise_key
        request["promise_gets"] = [{"name": g.name, "command": g.command_index, "peek": g.peek} for g in batch.promise_gets]
        request["promise_completions"] = [
            {"name": c.name, "command": c.command_index, "value": b64(c.value) if c.failure is None else None,
             **failure_fields(c.failure)}
            for c in batch.promise_completions
        ]
    if batch.cancels:
        request["cancels"] = batch.cancels
    if batch.attaches:
        request["attaches"] = [{"target": target, "command": command} for target, command in batch.attaches]
    described = outcome_doc(lease, batch)
    if described is not None:
        request["outcome"] = described
    return request


def encode_requests(requests: typing.Sequence[Request]) -> str:
    """The argument of one `apply()` call: its requests, run in order as one transaction."""
    return encode_requests_utf8(requests).decode()


def encode_requests_utf8(requests: typing.Sequence[Request]) -> bytes:
    """`encode_requests`, as the UTF-8 that libpq sends (store/prepared_call.py)."""
    return orjson.dumps(list(requests))


def request_kind(request: typing.Mapping[str, typing.Any]) -> str:
    """A request's kind: its only key (flush, submit, ...)."""
    return next(iter(request), "")


# -- decoding ----------------------------------------------------------------------------------------


def decode_results(text: typing.Union[str, bytes]) -> typing.List[typing.Any]:
    """What one `apply()` call answered: a result per request, in order."""
    return typing.cast(typing.List[typing.Any], orjson.loads(text))


def decode_submitted(sub: Submission, started: StartedDoc, db_now: datetime) -> Submitted:
    status = started["status"]
    if status is None:
        return Submitted(sub.id, None, False)
    if status.startswith("debounced:"):  # a pending send took this one's input: that one is the invocation
        return Submitted(status.split(":", 1)[1], "scheduled", False, db_now)
    if status == "queued":  # a rule names its service or handler: a claim starts it, not the submitter
        return Submitted(sub.id, "invoked", False, db_now)
    state = started.get("state")
    return Submitted(
        sub.id, status, status == "invoked" and sub.owner is not None, db_now,
        None if state is None else {name: base64.b64decode(value) for name, value in state.items()},
    )


def decode_next_holder(holder: NextHolderDoc) -> InvocationRecord:
    return InvocationRecord(
        id=holder["id"], service=holder["service"], handler=holder["handler"], key=holder["key"],
        input=base64.b64decode(holder["input"]), headers=holder["headers"] or {},
        idempotency_key=holder["idempotency_key"], caller_id=holder["caller_id"],
        caller_command=holder["caller_command"], status="invoked",
    )


def flush_result(batch: Batch, applied: FlushAnswer, db_now: datetime) -> FlushResult:
    """What a committed `flush()` of `batch` answered."""
    result = FlushResult(db_now=db_now)
    for sub, started in zip(batch.submissions, applied["submitted"], strict=True):
        result.submitted.append(decode_submitted(sub, started, db_now))
    result.suspended = bool(applied.get("suspended"))
    result.waiter = applied.get("waiter")
    result.caller_owner = applied.get("caller_owner")
    result.woken = [(target, owner) for target, owner in applied.get("woken", ())]
    result.answers = {int(command): answer for command, answer in (applied.get("answers") or {}).items()}
    holder = applied.get("next_holder")
    if holder is not None:
        result.next_holder = decode_next_holder(holder)
    return result
