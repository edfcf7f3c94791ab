"""The workflow core, stepped through with no event loop: hunt and ring group, every path."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callflow._flow_run import (
    CancelInvite,
    CancelRequested,
    Done,
    FlowInput,
    FlowStarted,
    InviteReached,
    RemoveParticipant,
    SetTimer,
    StartInvite,
    TimerFired,
    WorkflowRun,
    flow_event,
    flow_input,
    flow_result_event,
    replay_workflow,
)
from callflow._flows import (
    Fate,
    FlowState,
    FlowTransition,
    Outcome,
    Workflow,
    WorkflowError,
    hunt,
    ring_group,
)


def started(workflow: Workflow, at: float = 0.0) -> WorkflowRun:
    run = WorkflowRun(workflow)
    run.receive(FlowStarted(at=at))
    return run


def reached(index: int, outcome: str, at: float) -> InviteReached:
    return InviteReached(index=index, outcome=Outcome(outcome), at=at)


def fates(run: WorkflowRun) -> list[str]:
    return [str(f) for f in run.fates]


# -- hunt -------------------------------------------------------------------------------------


def test_hunt_starts_by_ringing_the_first_participant_for_ring_for() -> None:
    run = WorkflowRun(hunt(3, ring_for=30.0))

    assert (StartInvite(0), SetTimer(30.0)) == run.receive(FlowStarted(at=0.0))
    assert "ringing_0" == run.state


def test_hunt_the_first_participant_answers() -> None:
    run = started(hunt(3))

    actions = run.receive(reached(0, "completed", 12.0))

    assert run.result is not None
    assert (SetTimer(72.0), Done(run.result)) == actions
    assert 0 == run.result.answered
    assert "answered" == run.result.outcome
    assert ["answered", "not_invited", "not_invited"] == [str(r.fate) for r in run.result.invites]


def test_hunt_a_decline_moves_on_to_the_next_participant() -> None:
    run = started(hunt(3, ring_for=30.0))

    actions = run.receive(reached(0, "failed", 4.0))

    assert (StartInvite(1), SetTimer(34.0)) == actions
    assert "ringing_1" == run.state


def test_hunt_ring_for_without_an_answer_cancels_that_invite_and_moves_on() -> None:
    run = started(hunt(3, ring_for=30.0))

    actions = run.receive(TimerFired(at=30.0))

    assert (CancelInvite(0), StartInvite(1), SetTimer(60.0)) == actions
    assert ["cancelling", "ringing", "not_invited"] == fates(run)


def test_hunt_a_timer_before_the_deadline_is_ignored() -> None:
    run = started(hunt(3, ring_for=30.0))

    assert () == run.receive(TimerFired(at=29.9))
    assert run.steps[-1].ignored
    assert "ringing_0" == run.state


def test_hunt_the_second_participant_answers_after_the_first_was_cancelled() -> None:
    run = started(hunt(3, ring_for=30.0))
    run.receive(TimerFired(at=30.0))
    run.receive(reached(0, "cancelled", 30.2))

    run.receive(reached(1, "completed", 41.0))

    assert run.result is not None
    assert 1 == run.result.answered
    assert ["cancelled", "answered", "not_invited"] == [str(r.fate) for r in run.result.invites]
    assert () == run.result.late_answers


def test_hunt_nobody_answers() -> None:
    run = started(hunt(2, ring_for=30.0))
    run.receive(TimerFired(at=30.0))
    run.receive(reached(0, "cancelled", 30.1))

    actions = run.receive(TimerFired(at=60.0))

    assert CancelInvite(1) == actions[0]
    assert not run.done  # waits for that cancel
    run.receive(reached(1, "cancelled", 60.1))
    assert run.result is not None
    assert None is run.result.answered
    assert "nobody_answered" == run.result.outcome


def test_hunt_the_last_participant_declining_ends_it() -> None:
    run = started(hunt(2))
    run.receive(reached(0, "failed", 1.0))

    run.receive(reached(1, "timed_out", 2.0))

    assert run.result is not None
    assert "nobody_answered" == run.result.outcome
    assert ["failed", "timed_out"] == [str(r.fate) for r in run.result.invites]


def test_hunt_cancel_of_the_whole_workflow_cancels_what_rings() -> None:
    run = started(hunt(3))

    actions = run.receive(CancelRequested(at=5.0))

    assert (CancelInvite(0), SetTimer(65.0)) == actions
    run.receive(reached(0, "cancelled", 5.2))
    assert run.result is not None
    assert "cancelled" == run.result.outcome
    assert None is run.result.answered


def test_hunt_a_second_cancel_changes_nothing() -> None:
    run = started(hunt(3))
    run.receive(CancelRequested(at=5.0))

    assert () == run.receive(CancelRequested(at=6.0))
    assert run.steps[-1].ignored


def test_hunt_an_answer_while_the_workflow_is_cancelled_is_removed() -> None:
    run = started(hunt(3))
    run.receive(CancelRequested(at=5.0))

    actions = run.receive(reached(0, "completed", 5.1))

    assert (RemoveParticipant(0),) == actions
    run.receive(reached(0, "removed", 5.3))
    assert run.result is not None
    assert (None, (0,)) == (run.result.answered, run.result.removed)


def test_hunt_a_late_answer_after_a_failed_cancel_wins_and_the_result_says_so() -> None:
    run = started(hunt(3, ring_for=30.0))
    run.receive(TimerFired(at=30.0))  # cancel 0, ring 1
    run.receive(reached(0, "cancel_failed", 31.0))  # 0 may still ring

    actions = run.receive(reached(0, "completed", 45.0))  # and answers at 45 s

    assert CancelInvite(1) == actions[0]  # never two joined: 1 stops ringing
    run.receive(reached(1, "cancelled", 45.2))
    assert run.result is not None
    assert 0 == run.result.answered
    assert (0,) == run.result.late_answers
    assert ["answered", "cancelled", "not_invited"] == [str(r.fate) for r in run.result.invites]


def test_hunt_a_late_answer_after_the_next_one_joined_is_removed() -> None:
    run = started(hunt(2, ring_for=30.0))
    run.receive(TimerFired(at=30.0))
    run.receive(reached(0, "cancel_failed", 31.0))
    run.receive(reached(1, "completed", 40.0))
    assert run.result is not None
    assert Fate.cancel_failed is run.result.invites[0].fate  # the result says it may ring

    actions = run.receive(reached(0, "completed", 45.0))

    assert (RemoveParticipant(0),) == actions
    assert "joined after the end: removed" == run.steps[-1].note


def test_hunt_a_duplicate_outcome_is_ignored() -> None:
    run = started(hunt(3))
    run.receive(reached(0, "failed", 1.0))

    assert () == run.receive(reached(0, "failed", 1.1))
    assert run.steps[-1].ignored
    assert "ignored: failed cannot follow failed for participant 0" == run.steps[-1].note


# -- ring group --------------------------------------------------------------------------------


def test_ring_group_rings_everyone_at_once() -> None:
    run = WorkflowRun(ring_group(3, ring_for=20.0))

    actions = run.receive(FlowStarted(at=0.0))

    assert (StartInvite(0), StartInvite(1), StartInvite(2), SetTimer(20.0)) == actions


def test_ring_group_the_first_to_answer_wins_and_every_other_is_cancelled() -> None:
    run = started(ring_group(3))

    actions = run.receive(reached(1, "completed", 7.0))

    assert (CancelInvite(0), CancelInvite(2)) == actions[:2]
    run.receive(reached(0, "cancelled", 7.1))
    run.receive(reached(2, "cancelled", 7.1))
    assert run.result is not None
    assert 1 == run.result.answered
    assert ["cancelled", "answered", "cancelled"] == [str(r.fate) for r in run.result.invites]


def test_ring_group_two_answers_in_the_same_instant_the_later_one_is_removed() -> None:
    run = started(ring_group(3))
    run.receive(reached(2, "completed", 7.0))

    actions = run.receive(reached(0, "completed", 7.0))

    assert (RemoveParticipant(0),) == actions
    run.receive(reached(1, "cancelled", 7.1))
    run.receive(reached(0, "removed", 7.2))
    assert run.result is not None
    assert (2, (0,)) == (run.result.answered, run.result.removed)
    assert () == run.result.also_joined


def test_ring_group_a_completion_after_its_cancel_worked_was_removed_by_that_cancel() -> None:
    run = started(ring_group(2))
    run.receive(reached(0, "completed", 5.0))  # cancels 1
    run.receive(reached(1, "cancelled", 5.0))  # the DELETE answered 204
    assert run.result is not None

    actions = run.receive(reached(1, "completed", 5.05))  # 1 had joined as the DELETE came

    assert () == actions  # the DELETE already removed them
    assert Fate.removed is run.fates[1]


def test_hunt_a_completion_after_a_cancel_that_worked_does_not_win() -> None:
    run = started(hunt(2, ring_for=30.0))
    run.receive(TimerFired(at=30.0))
    run.receive(reached(0, "cancelled", 30.0))

    assert () == run.receive(reached(0, "completed", 30.05))
    assert ("ringing_1", None) == (run.state, run.answered)
    run.receive(reached(1, "completed", 40.0))
    assert run.result is not None
    assert (1, (0,)) == (run.result.answered, run.result.removed)


def test_ring_group_a_failed_removal_is_reported_as_also_joined() -> None:
    run = started(ring_group(2))
    run.receive(reached(0, "completed", 7.0))
    run.receive(reached(1, "completed", 7.0))

    run.receive(reached(1, "remove_failed", 7.5))

    assert run.result is not None
    assert (1,) == run.result.also_joined


def test_ring_group_nobody_answers_when_everyone_declines() -> None:
    run = started(ring_group(3))
    run.receive(reached(0, "failed", 3.0))
    run.receive(reached(2, "timed_out", 4.0))
    assert not run.done

    run.receive(reached(1, "failed", 5.0))

    assert run.result is not None
    assert ("nobody_answered", None) == (run.result.outcome, run.result.answered)


def test_ring_group_ring_for_without_an_answer_cancels_everyone() -> None:
    run = started(ring_group(2, ring_for=20.0))

    actions = run.receive(TimerFired(at=20.0))

    assert (CancelInvite(0), CancelInvite(1), SetTimer(80.0)) == actions


def test_a_final_state_reports_at_its_deadline_even_if_a_cancel_never_settles() -> None:
    run = started(ring_group(2, ring_for=20.0, settle_for=10.0))
    run.receive(TimerFired(at=20.0))

    actions = run.receive(TimerFired(at=30.0))

    assert run.result is not None
    assert (Done(run.result),) == actions
    assert (0, 1) == run.result.unsettled


def test_ring_group_cancel_of_the_whole_workflow() -> None:
    run = started(ring_group(2))

    actions = run.receive(CancelRequested(at=1.0))

    assert (CancelInvite(0), CancelInvite(1)) == actions[:2]


# -- declarations ------------------------------------------------------------------------------


def _declare(**overrides: Any) -> Workflow:
    if "states" in overrides:
        overrides.setdefault("transitions", [])
    fields: dict[str, Any] = {
        "name": "mine",
        "participants": 1,
        "states": [
            FlowState(name="ringing", deadline=20.0, rings=(0,)),
            FlowState(name="over", deadline=5.0, final=True),
        ],
        "transitions": [FlowTransition(source="ringing", trigger="deadline", dest="over")],
    }
    return Workflow(**(fields | overrides))


def test_a_declaration_of_your_own_runs_like_the_built_ins() -> None:
    run = started(_declare())

    assert (CancelInvite(0), SetTimer(25.0)) == run.receive(TimerFired(at=20.0))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"states": [FlowState(name="a", deadline=0, final=True)]},
            "state a needs a deadline",
        ),
        (
            {
                "states": [
                    FlowState(name="a", deadline=3.0),
                    FlowState(name="b", deadline=1, final=True),
                ]
            },
            r"states \['a'\] have no deadline transition",
        ),
        (
            {"states": [FlowState(name="a", deadline=3.0)]},
            "no final state",
        ),
        (
            {"transitions": [FlowTransition(source="ringing", trigger="deadline", dest="gone")]},
            "unknown state 'gone'",
        ),
        (
            {
                "transitions": [
                    FlowTransition(source="ringing", trigger="deadline", dest="over", invite=4)
                ]
            },
            "unknown participant 4",
        ),
        (
            {
                "transitions": [
                    FlowTransition(source="ringing", trigger="deadline", dest="over", effect="x")
                ]
            },
            "unknown effect 'x'",
        ),
        (
            {
                "states": [
                    FlowState(name="r", deadline=1.0, rings=(2,)),
                    FlowState(name="o", deadline=1, final=True),
                ]
            },
            r"rings unknown participants \[2\]",
        ),
    ],
)
def test_a_bad_declaration_is_refused_saying_what_is_wrong(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(WorkflowError, match=message):
        _declare(**overrides)


def test_built_ins_refuse_bad_parameters() -> None:
    with pytest.raises(WorkflowError, match="ring_for must be a positive number"):
        hunt(2, ring_for=0)
    with pytest.raises(WorkflowError, match="at least one participant"):
        ring_group(0)


def test_a_declaration_round_trips_through_json() -> None:
    declared = hunt(3, ring_for=12.5)

    assert declared == Workflow.from_dict(json.loads(json.dumps(declared.to_dict())))


def test_inputs_must_not_go_back_in_time() -> None:
    run = started(hunt(2), at=10.0)

    with pytest.raises(WorkflowError, match="earlier than the last one"):
        run.receive(TimerFired(at=9.0))


def test_an_unknown_participant_index_is_refused() -> None:
    run = started(hunt(2))

    with pytest.raises(WorkflowError, match="no participant 5"):
        run.receive(reached(5, "completed", 1.0))


def test_an_input_before_the_start_is_refused() -> None:
    with pytest.raises(WorkflowError, match="FlowStarted first"):
        WorkflowRun(hunt(2)).receive(TimerFired(at=1.0))


# -- traces and replay --------------------------------------------------------------------------


def _record(workflow: Workflow, inputs: Sequence[FlowInput]) -> tuple[WorkflowRun, list[str]]:
    run = WorkflowRun(workflow)
    lines = []
    for event in inputs:
        run.receive(event)
        lines.append(json.dumps(flow_event(event, workflow=workflow, workflow_id="w1")))
    return run, lines


LATE_ANSWER: list[FlowInput] = [
    FlowStarted(at=0.0),
    TimerFired(at=30.0),
    reached(0, "cancel_failed", 31.0),
    reached(0, "completed", 45.0),
    reached(1, "cancelled", 45.2),
]


def test_trace_events_are_json_and_typed_workflow() -> None:
    _, lines = _record(hunt(3), LATE_ANSWER)

    types = [json.loads(line)["type"] for line in lines]

    assert ["workflow_started", "workflow_timer"] + ["workflow_invite"] * 3 == types


def test_replay_reproduces_the_path() -> None:
    recorded, lines = _record(hunt(3), LATE_ANSWER)
    assert recorded.result is not None
    lines.append(json.dumps(flow_result_event(recorded.result, workflow_id="w1")))

    replayed = replay_workflow(json.loads(line) for line in lines)

    assert recorded.steps == replayed.steps
    assert replayed.result is not None
    assert json.loads(lines[-1])["result"] == replayed.result.to_dict()
    assert (0, [0]) == (replayed.result.answered, json.loads(lines[-1])["result"]["late_answers"])


def test_a_bad_trace_event_says_what_is_wrong() -> None:
    with pytest.raises(WorkflowError, match="workflow_invite event lacks 'index'"):
        flow_input({"type": "workflow_invite", "at": 1.0, "outcome": "completed"})
    with pytest.raises(WorkflowError, match="'answered' is not a valid Outcome"):
        flow_input({"type": "workflow_invite", "at": 1.0, "index": 0, "outcome": "answered"})
    with pytest.raises(WorkflowError, match="index must be a participant index, not True"):
        flow_input({"type": "workflow_invite", "at": 1.0, "index": True, "outcome": "failed"})
    with pytest.raises(WorkflowError, match="not a workflow event: type 'timeout'"):
        flow_input({"type": "timeout", "at": 1.0})
    with pytest.raises(WorkflowError, match="first event must be workflow_started"):
        replay_workflow([{"type": "workflow_timer", "at": 1.0}])


# -- any ordering -------------------------------------------------------------------------------

RING_FOR, SETTLE_FOR = 30.0, 20.0
moves = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=25.0),
        st.one_of(
            st.tuples(
                st.integers(0, 3),
                st.sampled_from([o for o in Outcome if o is not Outcome.remove_failed]),
            ),
            st.just("cancel"),
        ),
    ),
    max_size=25,
)


def _drive(run: WorkflowRun, at: float, until: float) -> float:
    """Fire the run's timers as a correct engine would, up to ``until``."""
    while run.deadline is not None and run.deadline <= until:
        at = run.deadline
        run.receive(TimerFired(at=at))
    return at


@settings(max_examples=300, deadline=None)
@given(
    builder=st.sampled_from([hunt, ring_group]),
    participants=st.integers(1, 4),
    script=moves,
)
def test_any_ordering_never_two_winners_and_always_ends_by_the_deadline(
    builder: Any, participants: int, script: list[tuple[float, Any]]
) -> None:
    workflow = builder(participants, ring_for=RING_FOR, settle_for=SETTLE_FOR)
    run = started(workflow)
    at = 0.0
    for delay, move in script:
        at = _drive(run, at, at + delay)
        at += delay if run.deadline is None else min(delay, run.deadline - at)
        if move == "cancel":
            run.receive(CancelRequested(at=at))
        elif move[0] < participants:
            run.receive(reached(move[0], move[1], at))
    _drive(run, at, float("inf"))

    # Always ends, and by the sum of its deadlines (a late join can reopen one settle wait).
    assert run.result is not None
    rings = RING_FOR * (participants if workflow.name == "hunt" else 1)
    assert run.result.at <= rings + 2 * SETTLE_FOR
    # Never two winners: every answer but the winner's got a removal.
    joined = [i for i, f in enumerate(run.fates) if f is Fate.answered]
    assert ([] if run.result.answered is None else [run.result.answered]) == joined
    assert 1 == sum(isinstance(a, Done) for step in run.steps for a in step.actions)
    # Replay reproduces the path.
    events = [flow_event(s.input, workflow=workflow) for s in run.steps]
    assert run.steps == replay_workflow(events).steps
