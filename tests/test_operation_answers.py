"""Every outcome an operator verb can return has an answer in the admin API's table (DB-free)."""

from __future__ import annotations

import typing

import pytest

from restate_pg.services.answers import _COMMON, OPERATIONS, Answer, answer
from restate_pg.services import outcomes
from restate_pg.services.operations import Operations


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_outcome_of_a_verb_is_answered(name: str) -> None:
    operation = OPERATIONS[name]
    returned = typing.get_args(typing.get_type_hints(getattr(Operations, operation.method))["return"])
    assert returned, f"{operation.method} should declare the outcomes it returns"
    answered = {**_COMMON, **operation.answers}
    assert set(returned) <= set(answered)


def test_answers_carry_the_outcomes_fields() -> None:
    restart = OPERATIONS["restart-as-new"]
    assert answer(restart, outcomes.Restarted("inv_1")) == Answer(200, "restarted as inv_1", "inv_1")
    assert answer(restart, outcomes.PrefixPastEnd(9, 4)).message == "from=9 is past the end of the journal (last entry 4)"
    assert answer(OPERATIONS["cancel"], outcomes.Missing()).status == 404
    assert answer(OPERATIONS["pause"], outcomes.NotStarted()).status == 409
    assert answer(OPERATIONS["resume"], outcomes.NotStarted()).status == 425

