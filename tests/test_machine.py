"""The machines as data: the runtime's compiled tables agree with ``transitions`` itself."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from transitions import Machine, MachineError

from callflow import Invite, InviteKind, InviteState, Trigger
from callflow._core import _machine
from callflow._core._machine import (
    CONDITIONS,
    EFFECTS,
    FAILURE_REASONS,
    MACHINES,
    TABLES,
    TERMINAL_STATES,
    TRANSITIONS,
    compile_table,
    states_of,
)
from spec_examples import Example


class Model:
    """A throwaway model: all ``transitions`` needs of an invite record."""

    def __init__(self, state: InviteState, facts: frozenset[str]) -> None:
        self.state = state.value
        for condition in CONDITIONS:
            setattr(self, condition, condition in facts)


@cache
def reference(kind: InviteKind) -> Machine:
    """A fresh ``transitions.Machine`` built from the declaration, with models this time."""
    return Machine(
        model=None,
        states=[s.value for s in states_of(kind)],
        transitions=[dict(t) for t in TRANSITIONS[kind]],
        initial=InviteState.requested.value,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )


def what_transitions_does(
    kind: InviteKind, state: InviteState, trigger: Trigger, facts: frozenset[str]
) -> InviteState | None:
    machine = reference(kind)
    model = Model(state, facts)
    machine.add_model(model, initial=state.value)
    try:
        event = machine.events.get(trigger.value)
        if event is None:
            return None
        try:
            event.trigger(model)
        except MachineError:
            return None
        return InviteState(model.state)
    finally:
        machine.remove_model(model)


def what_the_table_says(
    kind: InviteKind, state: InviteState, trigger: Trigger, facts: frozenset[str]
) -> InviteState | None:
    rows = TABLES[kind].get((state, trigger))
    if rows is None:
        return None
    return next(dest for dest, condition in rows if condition is None or condition in facts)


#: Every combination of the facts a condition may name.
FACTS = [
    frozenset(chosen)
    for n in range(len(CONDITIONS) + 1)
    for chosen in itertools.combinations(CONDITIONS, n)
]
CASES = [
    (kind, state, trigger, facts)
    for kind in InviteKind
    for state in states_of(kind)
    for trigger in Trigger
    for facts in FACTS
]
IDS = [f"{k}-{s}-{t}-{'+'.join(sorted(f)) or 'no_facts'}" for k, s, t, f in CASES]


@pytest.mark.parametrize(("kind", "state", "trigger", "facts"), CASES, ids=IDS)
def test_the_compiled_table_agrees_with_the_transitions_machine(
    kind: InviteKind, state: InviteState, trigger: Trigger, facts: frozenset[str]
) -> None:
    assert what_transitions_does(kind, state, trigger, facts) == what_the_table_says(
        kind, state, trigger, facts
    )


@pytest.mark.parametrize(("kind", "state", "trigger", "facts"), CASES, ids=IDS)
def test_an_invite_moves_as_the_transitions_machine_says(
    kind: InviteKind, state: InviteState, trigger: Trigger, facts: frozenset[str]
) -> None:
    record = Invite("c1", [_participant_of(kind)], client_context="cc").to_dict()
    invite = Invite.from_dict({**record, "state": state.value, "facts": sorted(facts)})
    expected = what_transitions_does(kind, state, trigger, facts)

    invite._fire(trigger, "test", 0.0)

    assert (expected or state, expected is None) == (invite.state, invite.history[-1].ignored)


def _participant_of(kind: InviteKind) -> dict[str, Any]:
    participant: dict[str, Any] = {"identity": {"user": {"id": "u1"}}}
    if kind is not InviteKind.invite:
        participant["replacesCallId"] = "c0"
    if kind is InviteKind.move_meeting:
        participant["participantId"] = "p0"
    return participant


@pytest.mark.parametrize("kind", list(InviteKind))
def test_the_runtime_tables_are_read_off_the_built_machines(kind: InviteKind) -> None:
    assert compile_table(MACHINES[kind]) == TABLES[kind]


@pytest.mark.parametrize(
    ("kind", "state"),
    [(k, s) for k in InviteKind for s in states_of(k) if not s.is_terminal],
)
def test_failed_is_reachable_from_every_non_terminal_state(
    kind: InviteKind, state: InviteState
) -> None:
    destinations = {d for (s, _), rows in TABLES[kind].items() if s is state for d, _ in rows}

    assert InviteState.failed in destinations


@pytest.mark.parametrize(
    ("kind", "state"), list(itertools.product(InviteKind, sorted(TERMINAL_STATES)))
)
def test_terminal_states_have_no_outgoing_transitions(kind: InviteKind, state: InviteState) -> None:
    assert [] == [key for key in TABLES[kind] if key[0] is state]


@pytest.mark.parametrize("kind", list(InviteKind))
def test_every_state_of_a_kind_is_reachable_from_requested(kind: InviteKind) -> None:
    reached, frontier = {InviteState.requested}, [InviteState.requested]
    while frontier:
        state = frontier.pop()
        for (source, _), rows in TABLES[kind].items():
            for dest, _ in rows:
                if source is state and dest not in reached:
                    reached.add(dest)
                    frontier.append(dest)

    assert set(states_of(kind)) == reached


@pytest.mark.parametrize("kind", list(InviteKind))
def test_every_conditional_row_has_an_unconditional_fallback(kind: InviteKind) -> None:
    assert [] == [key for key, rows in TABLES[kind].items() if rows[-1][1] is not None]


def test_only_the_replacing_kinds_have_tearing_down_original() -> None:
    assert {
        InviteKind.invite: False,
        InviteKind.replace_p2p: True,
        InviteKind.move_meeting: True,
    } == {kind: InviteState.tearing_down_original in states_of(kind) for kind in InviteKind}


@pytest.mark.parametrize(
    ("state", "terminal"),
    [
        (InviteState.requested, False),
        (InviteState.running, False),
        (InviteState.tearing_down_original, False),
        (InviteState.completed, True),
        (InviteState.failed, True),
    ],
)
def test_completed_and_failed_are_terminal(state: InviteState, terminal: bool) -> None:
    assert terminal == state.is_terminal


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        (1, InviteKind.replace_p2p),
        (2, InviteKind.invite),
        (3, InviteKind.replace_p2p),
        (4, InviteKind.invite),
        (5, InviteKind.move_meeting),
    ],
)
def test_the_kind_follows_from_the_request(
    spec: dict[int, Example],
    trackable_request: Callable[[Example], dict[str, Any]],
    number: int,
    kind: InviteKind,
) -> None:
    example = spec[number]

    assert kind == Invite.from_request(example.call_id, trackable_request(example)).kind


@pytest.mark.parametrize(
    ("transition", "message"),
    [
        (
            {"trigger": "accepted", "source": "requested", "dest": "running", "unless": "x"},
            "accepted from requested: only one plain condition",
        ),
        (
            {
                "trigger": "accepted",
                "source": "requested",
                "dest": "running",
                "conditions": ["original_already_gone", "original_already_gone"],
            },
            "accepted from requested: only one plain condition",
        ),
        (
            {"trigger": "accepted", "source": "requested", "dest": "running", "conditions": "x"},
            "accepted from requested: unknown 'x'",
        ),
        (
            {
                "trigger": "accepted",
                "source": "requested",
                "dest": "running",
                "conditions": lambda: True,
            },
            "accepted from requested: unknown",
        ),
    ],
    ids=["unless", "two conditions", "unknown name", "callable"],
)
def test_compile_table_refuses_what_the_runtime_cannot_evaluate(
    transition: dict[str, Any], message: str
) -> None:
    machine = Machine(
        model=None,
        states=[s.value for s in InviteState],
        transitions=[transition],
        initial="requested",
        auto_transitions=False,
    )

    with pytest.raises(ValueError, match=message):
        compile_table(machine)


@pytest.mark.parametrize(("trigger", "fact"), list(EFFECTS.items()))
def test_a_transition_records_its_declared_effect_as_a_fact_of_the_invite(
    trigger: Trigger, fact: str
) -> None:
    invite = Invite("c1", [_participant_of(InviteKind.replace_p2p)], client_context="cc")

    invite._fire(trigger, "test", 0.0)

    assert (True, frozenset({fact})) == (fact in CONDITIONS, invite.facts)


def test_a_timeout_after_a_lost_answer_fails_with_the_declared_reason() -> None:
    invite = Invite("c1", [_participant_of(InviteKind.invite)], client_context="cc")
    invite.outcome_unknown("HTTP 503", at=0.0)

    invite.time_out(at=90.0)

    assert invite.failure is not None
    assert FAILURE_REASONS[(Trigger.timed_out, InviteState.requested)][0] == (
        "answer_lost",
        invite.failure.reason.value,
    )


def test_a_non_terminal_state_without_a_deadline_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without = {s: v for s, v in _machine.DEADLINES.items() if s is not InviteState.running}
    monkeypatch.setattr(_machine, "DEADLINES", without)

    with pytest.raises(ValueError, match="state running is not terminal and has no deadline"):
        _machine._check_declaration()


def test_a_transition_into_failed_without_a_declared_reason_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reasons = dict(_machine.FAILURE_REASONS)
    del reasons[(Trigger.call_ended, InviteState.running)]
    monkeypatch.setattr(_machine, "FAILURE_REASONS", reasons)

    with pytest.raises(ValueError, match="call_ended from running fails with no reason"):
        _machine._check_declaration()


def test_each_kinds_states_are_those_its_transitions_name() -> None:
    drawn = {kind: states_of(kind) for kind in InviteKind}

    assert [6, 7, 7] == [len(drawn[kind]) for kind in InviteKind]
    assert InviteState.tearing_down_original not in drawn[InviteKind.invite]
