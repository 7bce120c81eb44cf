"""Which requests skip the group commit queue (`hands_over_key`): only a completion that releases
its object key and writes to no other invocation, since that one may run beside a group in flight
without a lock cycle (store/group_commit.py). The flushes are encoded by the real codec."""

from __future__ import annotations

import pytest

from restate_pg.core.records import Batch, Complete, Lease, Resolution, StateOp, Suspend
from restate_pg.store.codec import flush_request
from restate_pg.store.group_commit import hands_over_key

pytestmark = pytest.mark.memory

LEASE = Lease("inv_1", "worker-1", 1, 1)


def completion(**changes: object) -> Complete:
    return Complete(output=b"1", failure=None, retention_ms=0, **changes)  # type: ignore[arg-type]


def request(batch: Batch) -> dict[str, object]:
    return {"flush": flush_request(LEASE, batch)}


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
])
def test_any_other_request_queues(batch: Batch) -> None:
    assert not hands_over_key(request(batch))
    assert not hands_over_key({"submit": {"id": "inv_4"}})
