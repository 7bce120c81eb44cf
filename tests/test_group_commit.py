"""Which requests skip the group commit queue (`hands_over_key`): only a completion that releases
its object key and writes to no other invocation, since that one may run beside a group in flight
without a lock cycle (store/group_commit.py). The flushes are encoded by the real codec."""

from __future__ import annotations

import pytest

from restate_pg.core.ids import new_invocation_id
from restate_pg.core.records import Batch, Complete, Lease, Resolution, StateOp, Submission, Suspend
from restate_pg.store.codec import flush_request
from restate_pg.store.group_commit import hands_over_key

pytestmark = pytest.mark.memory

LEASE = Lease("inv_1", "worker-1", 1, 1)


def completion(**changes: object) -> Complete:
    return Complete(output=b"1", failure=None, retention_ms=0, **changes)  # type: ignore[arg-type]


def request(batch: Batch) -> dict[str, object]:
    return {"flush": flush_request(LEASE, batch)}


def submission(service: str, key: str) -> Submission:
    return Submission(id=new_invocation_id(key), service=service, handler="add", key=key,
                      service_ty="virtual_object", handler_ty="exclusive", input=b"1")


def test_a_completion_locks_its_key_only_beside_other_keys() -> None:
    """Alone, release_object_key takes the key's lock only to free it (revision 0019); beside the
    keys of exclusive calls, all are locked first, in one order, so that flushes never wait in a cycle."""
    alone = request(Batch(outcome=completion(release_key=("Counter", "k"))))["flush"]
    assert "locks" not in alone  # type: ignore[operator]
    beside = request(Batch(outcome=completion(release_key=("Counter", "k")),
                           submissions=[submission("Counter", "b"), submission("Counter", "z")]))["flush"]
    assert beside["locks"] == [("Counter", "b"), ("Counter", "k"), ("Counter", "z")]  # type: ignore[index]


def test_a_completion_handing_its_key_over_skips_the_queue() -> None:
    batch = Batch(state=[("Counter", "k", StateOp("set", "value", b"1"))],
                  outcome=completion(release_key=("Counter", "k"), take_next=True))
    assert hands_over_key(request(batch))


@pytest.mark.parametrize("batch", [
    Batch(outcome=completion()),  # a service's completion: no key to hand over
    Batch(outcome=Suspend(None, 0)),
    Batch(),
    Batch(outcome=completion(release_key=("Counter", "k"), caller=("inv_2", 3))),  # tells its caller
    Batch(outcome=completion(release_key=("Counter", "k")),
          resolutions=[Resolution("sign_1", "inv_3", 1, b"1")]),  # writes to another invocation
    Batch(outcome=completion(release_key=("Counter", "k")),
          submissions=[submission("Counter", "other")]),  # locks another key
])
def test_any_other_request_queues(batch: Batch) -> None:
    assert not hands_over_key(request(batch))
    assert not hands_over_key({"submit": {"id": "inv_4"}})
