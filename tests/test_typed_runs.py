"""Typed runs rebuild the action's declared return type, on the first execution and on replay.

restate-sdk reads the action's return annotation (or `type_hint=`); a handler written against it
uses the model's attributes (`plan.subtasks`), which fails on a plain dict. Each handler here has
a sleep in the middle: in the always-suspending mode the steps after it run on a replayed handler,
which reads every earlier result back from the journal."""

from __future__ import annotations

import pytest

from tests.apps import typed_runs
from tests.support.server import serve


@pytest.fixture(params=[0.3, 0.0], ids=["default", "always-suspending"])
async def ingress(clean_db, request):
    async with serve(typed_runs.app, clean_db, inactivity_timeout=request.param) as served:
        yield served


async def test_a_fan_out_over_a_pydantic_plan(ingress):
    response = await ingress.client.post("/TypedRuns/plan_and_execute", json=3)
    assert (response.status_code, response.json()) == (200, ["done task 0", "done task 1", "done task 2"])


async def test_dataclasses_structs_optionals_and_hints(ingress):
    response = await ingress.client.post("/TypedRuns/kinds")
    assert response.status_code == 200, response.text
    assert response.json() == [
        "Receipt 42 EUR",
        "Quote 9.5 RPG",
        "Receipt CHF",
        "dict a dict",
        "Receipt 7",
    ]
