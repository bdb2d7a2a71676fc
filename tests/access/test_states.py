"""The transition table is the one authority on state changes (apps/access/states.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from apps.access.states import (
    GRANT_TRANSITIONS,
    REQUEST_TRANSITIONS,
    GrantState,
    IllegalTransition,
    RequestState,
    transition,
)

CASES = [
    (RequestState, REQUEST_TRANSITIONS, current, new)
    for current in RequestState.values
    for new in RequestState.values
] + [
    (GrantState, GRANT_TRANSITIONS, current, new)
    for current in GrantState.values
    for new in GrantState.values
]


@pytest.mark.parametrize(("states", "table", "current", "new"), CASES)
def test_transition_follows_the_table_exactly(states, table, current, new) -> None:
    obj = SimpleNamespace(state=current)
    if new in table[current]:
        transition(obj, states, new)
        assert obj.state == new
    else:
        with pytest.raises(IllegalTransition) as caught:
            transition(obj, states, new)
        assert obj.state == current  # an illegal move changes nothing
        assert states(current).label.lower() in str(caught.value)


def test_finished_states_are_final() -> None:
    for state in (RequestState.APPROVED, RequestState.REJECTED, RequestState.CANCELLED):
        assert REQUEST_TRANSITIONS[state] == frozenset()
    for state in (GrantState.EXPIRED, GrantState.REVOKED):
        assert GRANT_TRANSITIONS[state] == frozenset()
