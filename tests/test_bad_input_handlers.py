"""A handler that asks for something PostgreSQL cannot store (a NUL character in a state name, a
call's key, a failure message) ends with a terminal failure, never a retry loop."""

from __future__ import annotations

import pytest

from restate_pg.store.driver import Store
from tests.support.polling import eventually
from tests.test_recovery import status_of, submission, worker

CASES = [
    ("state name", 400, "SetState: the name contains a NUL character (\\u0000), which PostgreSQL cannot store"),
    ("call key", 400, "Call: the key contains a NUL character (\\u0000), which PostgreSQL cannot store"),
    ("error message", 422, "refused: a\\u0000b"),
    ("run error", 409, "step refused: a\\u0000b"),
]


@pytest.mark.parametrize(("what", "code", "message"), CASES, ids=[c[0] for c in CASES])
async def test_an_unstorable_value_from_a_handler_fails_it_terminally(clean_db, what, code, message):
    engine = worker(clean_db)
    ingress = Store(clean_db)
    await ingress.open()
    await engine.start()
    try:
        sub = submission("unstorable", "u", what)
        await ingress.submit(sub)
        assert await eventually(lambda: status_of(ingress, sub.id), "completed", timeout_s=15) == "completed"
        row = await ingress.get_invocation(sub.id)
        assert (row["result"], row["failure_code"], row["failure_message"]) == ("failure", code, message)
    finally:
        await engine.stop()
        await ingress.close()
