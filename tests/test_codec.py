"""The Python side of `apply()` (store/codec.py) and its plpgsql side (procedures.py) agree.

Statically: every key the codec's typed documents have is read by the function that consumes
them, every key a function reads is one the codec writes, and every key of a function's answer
is one the codec reads (parsed from the function text as `procedures_sql` gives it). Then each
request kind is written, applied by a real database, and read back, and what comes back equals
what went in.
"""

from __future__ import annotations

import re
import typing
from datetime import datetime, timedelta, timezone

import pytest

from restate_pg.core.ids import new_invocation_id
from restate_pg.core.records import (
    Batch,
    Complete,
    Failure,
    JournalRow,
    Lease,
    PromiseCompletion,
    PromiseGet,
    Resolution,
    Signal,
    StateOp,
    Submission,
    Suspend,
)
from restate_pg.store import codec
from restate_pg.store.driver import Store
from restate_pg.store.procedures import procedures_sql

W = "codec-worker"

# -- the function text ---------------------------------------------------------------------------

_FUNCTION = re.compile(r'CREATE OR REPLACE FUNCTION "[^"]+"\.(\w+)\((.*?)\)\s*RETURNS.*?AS \$\$(.*?)\$\$;', re.DOTALL)


def functions() -> typing.Dict[str, str]:
    """Each server function's body, by name."""
    return {name: body for name, _, body in _FUNCTION.findall(procedures_sql("restate"))}


def reads(text: str, variable: str) -> typing.Set[str]:
    """The keys `text` reads of the JSON in `variable`: `v->>'k'`, `v->'k'`, `v ? 'k'`."""
    return set(re.findall(rf"(?<![\w.']){re.escape(variable)}\s*(?:->>|->|\?)\s*'(\w+)'", text))


def record_columns(text: str, alias: str) -> typing.Set[str]:
    """The columns of `jsonb_to_recordset(...) AS alias(column type, ...)` in `text`: the keys it reads."""
    start = text.index(f"AS {alias}(", text.index("jsonb_to_recordset(")) + len(f"AS {alias}(")
    return {column.split()[0] for column in text[start:text.index(");", start)].split(",")}


def loop_over(body: str, section: str) -> str:
    """The body of flush()'s loop over the elements of `p->'section'`."""
    start = body.index(f"jsonb_array_elements(p->'{section}')")
    return body[start:body.index("END LOOP;", start)]


def built_keys(text: str, after: str = "jsonb_build_object(") -> typing.Set[str]:
    """The keys of every `jsonb_build_object(...)` that follows the pattern `after` in `text`."""
    keys: typing.Set[str] = set()
    for match in re.finditer(re.escape(after) if after == "jsonb_build_object(" else after, text):
        args, depth, current, quoted = [], 0, "", False
        for char in text[match.end():]:
            if char == "'":
                quoted = not quoted
            elif not quoted and char == "(":
                depth += 1
            elif not quoted and char == ")":
                if depth == 0:
                    break
                depth -= 1
            elif not quoted and char == "," and depth == 0:
                args.append(current.strip())
                current = ""
                continue
            current += char
        args.append(current.strip())
        keys |= {arg.strip("'") for arg in args[0::2] if re.fullmatch(r"'\w+'", arg)}
    return keys


def fields(doc: typing.Any) -> typing.Set[str]:
    return set(doc.__required_keys__ | doc.__optional_keys__)


# -- static agreement -------------------------------------------------------------------------------


def test_the_request_kinds_are_those_apply_tells_apart() -> None:
    body = functions()["apply"]
    assert reads(body, "v_request") == set(codec.REQUEST_KINDS)
    for request in typing.get_args(codec.Request):
        assert fields(request) <= set(codec.REQUEST_KINDS)


def test_a_submission_is_read_whole_by_submit_invocation() -> None:
    bodies = functions()
    assert reads(bodies["submit_invocation"], "p") == fields(codec.SubmissionDoc)
    # and whatever else reads a submission reads keys it has
    assert reads(bodies["started"], "p") <= fields(codec.SubmissionDoc)
    assert set(re.findall(r"v_request->'submit'->>'(\w+)'", bodies["apply"])) <= fields(codec.SubmissionDoc)
    assert reads(loop_over(bodies["flush"], "submissions"), "v_item") <= fields(codec.SubmissionDoc)


def test_a_flush_request_is_read_whole_by_flush() -> None:
    body = functions()["flush"]
    assert reads(body, "p") == fields(codec.FlushDoc)
    assert record_columns(functions()["append_journal"], "j") == fields(codec.JournalDoc)
    assert reads(loop_over(body, "state"), "v_item") == fields(codec.StateDoc)
    assert reads(loop_over(body, "promise_gets"), "v_item") | {"name"} == fields(codec.PromiseGetDoc)
    assert reads(loop_over(body, "attaches"), "v_item") == fields(codec.AttachDoc)
    outcomes = set().union(*(fields(doc) for doc in typing.get_args(codec.OutcomeDoc)))
    assert reads(body, "v_outcome") | set(re.findall(r"p->'outcome'->>'(\w+)'", body)) == outcomes
    assert reads(loop_over(body, "resolutions"), "v_item") <= fields(codec.ResolutionDoc)
    assert reads(loop_over(body, "promise_completions"), "v_item") <= fields(codec.PromiseCompletionDoc)


def test_resolutions_and_promise_completions_are_read_whole() -> None:
    bodies = functions()
    assert reads(bodies["resolve_awakeable"], "p") == fields(codec.ResolutionDoc)
    assert reads(bodies["resolve_signal"], "p") == fields(codec.SignalDoc)
    # flush() adds the completing invocation's id to each completion it passes on
    assert "jsonb_build_object('invocation_id', v_id)" in bodies["flush"]
    assert reads(bodies["complete_promise"], "p") == fields(codec.PromiseCompletionDoc) | {"invocation_id"}


def test_the_answers_are_what_the_codec_reads() -> None:
    bodies = functions()
    assert built_keys(bodies["flush"], r"v_result\s*:?=\s*v_result\s*\|\|\s*jsonb_build_object\(") == fields(codec.FlushAnswer)
    assert built_keys(bodies["flush"], r"'next_holder',\s*\(\s*SELECT jsonb_build_object\(") == fields(codec.NextHolderDoc)
    assert built_keys(bodies["started"]) == fields(codec.StartedDoc)
    assert built_keys(bodies["resolve_awakeable"]) == fields(codec.ResolveAnswer)
    stops = built_keys(bodies["cancel_invocation"]) | built_keys(bodies["kill_invocation"]) | built_keys(bodies["finish_invocation"])
    assert stops == fields(codec.StopAnswer)


def _full_batch(caller: str) -> typing.Tuple[Lease, Batch]:
    lease = Lease(caller, W, 1, 1)
    failure = Failure(500, "no", {"k": "v"})
    batch = Batch(
        create=_submission(),
        journal=[JournalRow(1, 1, None, "Run", "step", {"a": 1}, True, b"x", None, None),
                 JournalRow(2, None, 1, "Run", None, None, True, None, failure, datetime.now(timezone.utc))],
        state=[("Obj", "k", StateOp("set", "n", b"v")), ("Obj", "k", StateOp("clear", "n")), ("Obj", "k", StateOp("clear_all"))],
        submissions=[_submission(key="k", exclusive=True)],
        consumed=[1],
        resolutions=[Resolution("awk", "inv", 3, None, failure)],
        signals=[Signal("inv", index=17, value=b"v"), Signal("inv", name="ready", failure=failure)],
        promise_key=("Wf", "id"),
        promise_gets=[PromiseGet("p", 4, True)],
        promise_completions=[PromiseCompletion("q", 5, None, failure)],
        attaches=[("other", 6)],
        cancels=["child"],
        outcome=Complete(b"out", None, 1000, ("caller", 7), ("Obj", "k"), True),
    )
    return lease, batch


def test_what_the_codec_writes_is_typed() -> None:
    """Each document the codec writes has exactly its TypedDict's keys (which the tests above
    hold to what the functions read)."""
    lease, batch = _full_batch("inv")
    doc = codec.flush_request(lease, batch)
    assert set(doc) == fields(codec.FlushDoc)
    assert set(doc["create"]) == fields(codec.SubmissionDoc)
    assert all({"index", "entry_type"} <= set(row) <= fields(codec.JournalDoc) for row in doc["journal"])  # None: left out
    assert all(set(op) == fields(codec.StateDoc) for op in doc["state"])
    assert all(set(r) == fields(codec.ResolutionDoc) for r in doc["resolutions"])
    assert all(set(r) == fields(codec.SignalDoc) for r in doc["signals"])
    assert all(set(g) == fields(codec.PromiseGetDoc) for g in doc["promise_gets"])
    assert all(set(c) == fields(codec.PromiseCompletionDoc) for c in doc["promise_completions"])
    assert all(set(a) == fields(codec.AttachDoc) for a in doc["attaches"])
    assert set(doc["outcome"]) == fields(codec.CompleteDoc)
    for outcome, typed in ((Suspend(None, 2), codec.SuspendDoc), (codec_retry(), codec.RetryDoc)):
        batch.outcome = outcome
        assert set(codec.flush_request(lease, batch)["outcome"]) == fields(typed)
    assert codec.flush_request(lease, Batch()) == {"id": "inv", "owner": W, "epoch": 1}  # sections absent


def codec_retry() -> typing.Any:
    from restate_pg.core.records import Retry

    return Retry("backing-off", 100, "boom", 500)


def test_batches_merge_field_by_field() -> None:
    _, first = _full_batch("inv")
    _, second = _full_batch("inv")
    merged = first.followed_by(second)
    assert merged.journal == first.journal + second.journal and merged.cancels == ["child", "child"]
    assert merged.create is first.create and merged.promise_key == ("Wf", "id") and merged.outcome is None
    assert Batch().empty() and not Batch(cancels=["x"]).empty() and Batch(promise_key=("Wf", "id")).empty()


# -- round trips through a real database ----------------------------------------------------------


def _submission(key: typing.Optional[str] = None, exclusive: bool = False, **kw: typing.Any) -> Submission:
    service, service_ty = ("Obj", "virtual_object") if key is not None else ("Svc", "service")
    handler_ty = ("exclusive" if exclusive else "shared") if key is not None else None
    return Submission(new_invocation_id(key), service, "h", key, service_ty, handler_ty, b"\x00\xffin", **kw)


@pytest.fixture
async def store(clean_db: str) -> typing.AsyncIterator[Store]:
    store = Store(clean_db)
    await store.open()
    await store.register_worker(W, "test", 1, ["Svc", "Obj", "Wf"])
    yield store
    await store.close()


async def test_a_submission_round_trips(store: Store) -> None:
    sub = _submission(headers={"h": "é"}, idempotency_key="idem", invoked_by="test", caller_id="c", caller_command=3)
    submitted = await store.submit(sub)
    assert (submitted.id, submitted.status, submitted.leased) == (sub.id, "invoked", False)
    record = (await store.load([sub.id]))[sub.id].invocation
    assert (record.service, record.handler, record.key, record.input, record.headers, record.idempotency_key,
            record.caller_id, record.caller_command) == (
        sub.service, sub.handler, sub.key, sub.input, sub.headers, sub.idempotency_key, sub.caller_id, sub.caller_command)
    assert (await store.submit(sub)).status is None  # the id existed
    delayed = await store.submit(_submission(delay_ms=60_000))
    assert delayed.status == "scheduled"
    leased = await store.submit(_submission(key="k", exclusive=True, owner=W, deployment=None))
    assert (leased.status, leased.leased, leased.state) == ("invoked", True, {})


async def test_a_flush_round_trips(store: Store) -> None:
    """Journal entries, state and submissions written by a flush read back as they were written."""
    holder = _submission(key="k", exclusive=True, owner=W)
    await store.submit(holder)
    queued = _submission(key="k", exclusive=True)
    assert (await store.submit(queued)).status == "inboxed"
    lease = Lease(holder.id, W, 1, 1)
    wake = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    journal = [
        JournalRow(0, None, None, "Input", None, None, True, b"\x00in"),
        JournalRow(1, 1, None, "Run", "step", {"a": [1, "é"]}, False),
        JournalRow(2, None, 1, "Run", None, None, True, None, Failure(500, "no\x00pe", {"k": "v"})),
        JournalRow(3, 2, None, "Sleep", None, None, False, None, None, wake),
    ]
    child = _submission()
    batch = Batch(journal=journal, state=[("Obj", "k", StateOp("set", "a", b"1")), ("Obj", "k", StateOp("set", "b", b"2")),
                                          ("Obj", "k", StateOp("clear", "a"))], submissions=[child])
    result = await store.flush(lease, batch)
    assert [s.id for s in result.submitted] == [child.id] and result.submitted[0].status == "invoked"
    loaded = (await store.load([holder.id]))[holder.id]
    expected = [JournalRow(**{**row.__dict__}) for row in journal]
    expected[2].failure = Failure(500, "no\\u0000pe", {"k": "v"})  # a NUL is spelled out in text
    assert loaded.journal == expected
    assert await store.load_state("Obj", "k") == {"b": b"2"}

    done = await store.flush(lease, Batch(
        journal=[JournalRow(4, None, None, "Output", None, None, True, b"out")],
        state=[("Obj", "k", StateOp("clear_all"))],
        outcome=Complete(b"out", None, 60_000, None, ("Obj", "k"), take_next=True),
    ))
    assert await store.load_state("Obj", "k") == {}
    assert done.next_holder is not None
    assert (done.next_holder.id, done.next_holder.input, done.next_holder.key) == (queued.id, queued.input, "k")
    row = await store.get_invocation(holder.id)
    assert row is not None and (row["status"], bytes(row["output"])) == ("completed", b"out")


async def test_a_suspension_round_trips(store: Store) -> None:
    sub = _submission(owner=W)
    await store.submit(sub)
    result = await store.flush(Lease(sub.id, W, 1, 1), Batch(outcome=Suspend(None, 0)))
    assert result.suspended


async def test_a_resolution_round_trips(store: Store) -> None:
    sub = _submission(owner=W)
    await store.submit(sub)
    awakeable = "sign_1awk"
    await store.flush(Lease(sub.id, W, 1, 1), Batch(journal=[
        JournalRow(1, 1, None, "Awakeable", None, None, False, awakeable.encode()),
        JournalRow(2, 2, None, "Awakeable", None, None, False, b"other"),
    ]))
    assert await store.resolve_awakeable(Resolution(awakeable, sub.id, 1, b"\x00v")) == ("resolved", W)
    assert (await store.resolve_awakeable(Resolution(awakeable, sub.id, 1, b"again")))[0] == "already"
    failure = Failure(409, "rejected", {"why": "test"})
    assert (await store.resolve_awakeable(Resolution("other", sub.id, 2, None, failure)))[0] == "resolved"
    _, items = await store.read_mailbox(sub.id, 0)
    assert [(i.command_index, i.value, i.failure) for i in items] == [(1, b"\x00v", None), (2, None, failure)]
    assert (await store.resolve_awakeable(Resolution("nope", sub.id, 1, b"")))[0] == "unknown"


async def test_promises_and_attaches_round_trip(store: Store) -> None:
    run = _submission(owner=W)
    run.service, run.service_ty, run.handler_ty, run.key = "Wf", "workflow", "workflow", "wf-1"
    await store.submit(run)
    other = _submission()
    await store.submit(other)
    lease = Lease(run.id, W, 1, 1)
    first = await store.flush(lease, Batch(
        promise_key=("Wf", "wf-1"),
        promise_gets=[PromiseGet("p", 1), PromiseGet("q", 2, peek=True)],
        promise_completions=[PromiseCompletion("p", 3, b"\x00pv")],
        attaches=[(other.id, 4)],
    ))
    assert first.answers[3] == "completed" and first.answers[2] == {"completed": False}
    assert first.answers[4] == {"completed": False}
    again = await store.flush(lease, Batch(promise_key=("Wf", "wf-1"), promise_gets=[PromiseGet("p", 5, peek=True)],
                                          promise_completions=[PromiseCompletion("p", 6, None, Failure(400, "late"))]))
    assert again.answers[6] == "already"
    assert again.answers[5]["completed"] and again.answers[5]["value"] == codec.b64(b"\x00pv")


async def test_cancel_and_kill_round_trip(store: Store) -> None:
    running = _submission(owner=W)
    await store.submit(running)
    signalled = await store.cancel(running.id)
    assert signalled["status"] == "signalled" and signalled["woken"] == [[running.id, W]]
    scheduled = _submission(delay_ms=60_000)
    await store.submit(scheduled)
    canceled = await store.cancel(scheduled.id)
    assert (canceled["status"], canceled["woken"]) == ("canceled", [])
    killed = await store.kill(running.id)
    assert set(killed) <= fields(codec.StopAnswer) and killed["status"] == "killed" and killed["ready"] is False
    assert (await store.kill(new_invocation_id(None)))["status"] == "missing"
    assert (await store.cancel(running.id))["status"] == "completed"
