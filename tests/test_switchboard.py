"""Switchboard: every notification routed to its invite, or reported for what it is."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from callflow import (
    ConfigurationError,
    Deadlines,
    DeliveryOutcome,
    FailureReason,
    Invite,
    InviteError,
    InviteState,
    NotificationError,
    Receipt,
    Switchboard,
    parse_notifications,
)
from spec_examples import Example

Body = dict[str, Any]
Build = Callable[[Example], Body]
ALL = [1, 2, 3, 4, 5]


def wire(body: Body) -> bytes:
    return json.dumps(body).encode()


def outcomes(receipt: Receipt) -> list[DeliveryOutcome]:
    return [d.outcome for d in receipt.deliveries]


def answered(board: Switchboard, example: Example, request: Body | None = None) -> Invite:
    """The example's invite, held by ``board``, after its 200 response."""
    invite = Invite.from_request(example.call_id, request or example.request)
    board.add(invite, at=0.0)
    invite.receive_response(200, {}, example.response, at=0.0)
    board.note_response(invite, at=0.0)
    return invite


def with_context(body: Body, context: str | None) -> Body:
    body = copy.deepcopy(body)
    data = body["value"][0]["resourceData"]
    if context is None:
        del data["clientContext"]
    else:
        data["clientContext"] = context
    return body


# -- the spec's examples ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "state"),
    [
        (1, InviteState.tearing_down_original),
        (2, InviteState.completed),
        (3, InviteState.tearing_down_original),
        (4, InviteState.completed),
        (5, InviteState.tearing_down_original),
    ],
)
def test_spec_example_reaches_its_state_through_the_switchboard(
    spec: dict[int, Example], trackable_request: Build, number: int, state: InviteState
) -> None:
    board = Switchboard()
    example = spec[number]
    invite = answered(board, example, trackable_request(example))

    receipt = board.receive(wire(example.completed), at=1.0)
    receipt += board.receive(wire(example.roster), at=2.0)

    assert ([DeliveryOutcome.applied] * 2, [invite] * 2, state) == (
        outcomes(receipt),
        [d.invite for d in receipt.deliveries],
        invite.state,
    )


@pytest.mark.parametrize("number", [1, 3, 5])
def test_the_teardown_completes_a_replacing_example_through_the_switchboard(
    spec: dict[int, Example], teardown: Build, number: int
) -> None:
    board = Switchboard()
    example = spec[number]
    invite = answered(board, example)
    board.receive(wire(example.completed), at=1.0)

    receipt = board.receive(wire(teardown(example)), at=2.0)

    assert ([DeliveryOutcome.applied], (invite,), InviteState.completed) == (
        outcomes(receipt),
        receipt.moved,
        invite.state,
    )


# -- routing ------------------------------------------------------------------------------


def test_an_operation_is_routed_by_its_operation_id(spec: dict[int, Example]) -> None:
    board = Switchboard()
    example = spec[4]
    invite = answered(board, example)
    other = Invite.from_request(example.call_id, {**example.request, "clientContext": "other"})
    board.add(other, at=0.0)

    receipt = board.receive(wire(with_context(example.completed, None)), at=1.0)

    assert ([invite], InviteState.completed, InviteState.requested) == (
        [d.invite for d in receipt.deliveries],
        invite.state,
        other.state,
    )


def test_an_operation_with_a_null_id_is_routed_by_its_client_context(
    spec: dict[int, Example], trackable_request: Build
) -> None:
    board = Switchboard()
    example = spec[2]
    invite = Invite.from_request(example.call_id, trackable_request(example))
    board.add(invite, at=0.0)
    board.add(
        Invite.from_request(example.call_id, {**trackable_request(example), "clientContext": "x"})
    )

    receipt = board.receive(wire(example.completed), at=1.0)

    assert ([invite], InviteState.completed) == (
        [d.invite for d in receipt.deliveries],
        invite.state,
    )


def test_a_roster_on_the_replaced_call_is_routed_by_call_id(spec: dict[int, Example]) -> None:
    board = Switchboard()
    example = spec[3]
    invite = answered(board, example)

    receipt = board.receive(wire(example.roster), at=1.0)

    assert invite.roster is not None
    assert ([DeliveryOutcome.applied], [invite], example.roster["value"][0]) == (
        outcomes(receipt),
        [d.invite for d in receipt.deliveries],
        invite.roster.to_json(),
    )


def test_a_roster_of_a_call_goes_to_every_invite_on_that_call(spec: dict[int, Example]) -> None:
    board = Switchboard()
    example = spec[4]
    first = answered(board, example)
    second = Invite.from_request(example.call_id, {**example.request, "clientContext": "two"})
    board.add(second, at=0.0)

    receipt = board.receive(wire(example.roster), at=1.0)

    assert [(DeliveryOutcome.applied, first), (DeliveryOutcome.applied, second)] == [
        (d.outcome, d.invite) for d in receipt.deliveries
    ]


def test_an_operation_id_learned_from_a_notification_is_routed_on(
    spec: dict[int, Example],
) -> None:
    board = Switchboard()
    example = spec[1]
    invite = Invite.from_request(example.call_id, example.request)
    board.add(invite, at=0.0)
    board.receive(wire(example.completed), at=1.0)

    receipt = board.receive(wire(with_context(example.completed, "someone-else")), at=2.0)

    assert [(DeliveryOutcome.applied, invite)] == [
        (d.outcome, d.invite) for d in receipt.deliveries
    ]


# -- the backlog --------------------------------------------------------------------------


def test_a_notification_before_add_waits_in_the_backlog(spec: dict[int, Example]) -> None:
    board = Switchboard()

    receipt = board.receive(wire(spec[4].completed), at=0.0)

    assert ([DeliveryOutcome.backlogged], [spec[4].completed["value"][0]]) == (
        outcomes(receipt),
        [n.to_json() for n in board.backlog],
    )


def test_add_delivers_the_backlog_and_its_receipt_shows_it_applied(
    spec: dict[int, Example],
) -> None:
    board = Switchboard()
    example = spec[4]
    board.receive(wire(example.completed), at=0.0)
    board.receive(wire(example.roster), at=0.5)
    invite = Invite.from_request(example.call_id, example.request)

    receipt = board.add(invite, at=1.0)

    assert (
        [DeliveryOutcome.applied] * 2,
        [example.completed["value"][0], example.roster["value"][0]],
        InviteState.completed,
        (),
    ) == (
        outcomes(receipt),
        [d.notification.to_json() for d in receipt.deliveries],
        invite.state,
        board.backlog,
    )


def test_a_full_backlog_pushes_the_oldest_out_as_unmatched(spec: dict[int, Example]) -> None:
    board = Switchboard(backlog_limit=2)
    bodies = [with_context(spec[4].completed, f"cc-{i}") for i in range(3)]
    board.receive(wire(bodies[0]), at=0.0)
    board.receive(wire(bodies[1]), at=0.0)

    receipt = board.receive(wire(bodies[2]), at=0.0)

    assert (
        [(DeliveryOutcome.backlogged, "cc-2"), (DeliveryOutcome.unmatched, "cc-0")],
        ["cc-1", "cc-2"],
    ) == (
        [(d.outcome, d.notification.client_context) for d in receipt.deliveries],
        [n.client_context for n in board.backlog],
    )


def test_a_backlog_of_zero_reports_at_once_as_unmatched(spec: dict[int, Example]) -> None:
    board = Switchboard(backlog_limit=0)

    assert [DeliveryOutcome.unmatched] == outcomes(board.receive(wire(spec[4].completed), at=0.0))


def test_a_notification_older_than_the_age_limit_leaves_the_backlog_unmatched(
    spec: dict[int, Example],
) -> None:
    board = Switchboard(backlog_max_age=10.0)
    board.receive(wire(with_context(spec[4].completed, "early")), at=0.0)

    receipt = board.receive(wire(with_context(spec[4].completed, "later")), at=10.0)

    assert (
        [(DeliveryOutcome.backlogged, "later"), (DeliveryOutcome.unmatched, "early")],
        ["later"],
    ) == (
        [(d.outcome, d.notification.client_context) for d in receipt.deliveries],
        [n.client_context for n in board.backlog],
    )


def test_expire_ages_out_the_backlog(spec: dict[int, Example]) -> None:
    board = Switchboard(backlog_max_age=10.0)
    board.receive(wire(spec[4].completed), at=0.0)
    early = board.expire(at=9.9)

    late = board.expire(at=10.0)

    assert ([], [DeliveryOutcome.unmatched], ()) == (outcomes(early), outcomes(late), board.backlog)


def test_next_deadline_includes_the_backlogs_age_limit(spec: dict[int, Example]) -> None:
    board = Switchboard(backlog_max_age=10.0)
    board.receive(wire(spec[4].completed), at=3.0)

    assert 13.0 == board.next_deadline()


def test_a_notification_that_names_nothing_to_match_is_unmatched_at_once() -> None:
    board = Switchboard()
    operation = {"@odata.type": "#microsoft.graph.inviteParticipantsOperation", "status": "running"}
    item = {"changeType": "updated", "resource": "/somewhere", "resourceData": operation}

    assert [DeliveryOutcome.unmatched] == outcomes(board.receive({"value": [item]}, at=0.0))


# -- clientContext, release, late, duplicates ----------------------------------------------


def test_a_second_in_flight_invite_with_the_same_client_context_is_refused(
    spec: dict[int, Example],
) -> None:
    board = Switchboard()
    answered(board, spec[1])
    second = Invite.from_request(spec[4].call_id, spec[4].request)

    with pytest.raises(InviteError, match=r"clientContext '.+' is already used by an invite"):
        board.add(second, at=0.0)


def test_the_client_context_may_be_reused_once_the_first_invite_finished(
    spec: dict[int, Example],
) -> None:
    board = Switchboard()
    first = answered(board, spec[4])
    board.receive(wire(spec[4].completed), at=1.0)
    second = Invite.from_request(spec[1].call_id, spec[1].request)

    board.add(second, at=2.0)

    assert (True, False, second) == (
        second in board,
        first in board,
        board.get(second.client_context),
    )


def test_a_redelivered_notification_of_the_first_invite_does_not_move_its_successor(
    spec: dict[int, Example],
) -> None:
    board = Switchboard()
    example = spec[4]
    answered(board, example)
    board.receive(wire(example.completed), at=1.0)
    second = Invite.from_request(example.call_id, example.request)
    board.add(second, at=2.0)

    receipt = board.receive(wire(example.completed), at=3.0)

    assert ([DeliveryOutcome.late], InviteState.requested) == (outcomes(receipt), second.state)


def test_adding_the_same_invite_twice_changes_nothing(spec: dict[int, Example]) -> None:
    board = Switchboard()
    invite = answered(board, spec[4])

    assert ((), 1) == (board.add(invite, at=1.0).deliveries, len(board))


def test_notifications_of_a_released_invite_are_reported_late(spec: dict[int, Example]) -> None:
    board = Switchboard()
    example = spec[4]
    invite = answered(board, example)
    board.receive(wire(example.completed), at=1.0)
    released = board.release_finished()

    receipt = board.receive(wire(example.roster), at=2.0)
    receipt += board.receive(wire(example.completed), at=2.0)

    assert ((invite,), [DeliveryOutcome.late] * 2, 0) == (released, outcomes(receipt), len(board))


def test_a_notification_to_a_finished_held_invite_is_reported_late(
    spec: dict[int, Example], call_gone: Callable[[str, str], Body]
) -> None:
    board = Switchboard()
    example = spec[4]
    invite = answered(board, example)
    board.receive(wire(example.completed), at=1.0)

    receipt = board.receive(wire(call_gone(example.call_id, "deleted")), at=2.0)

    assert ([DeliveryOutcome.late], [invite], InviteState.completed) == (
        outcomes(receipt),
        [d.invite for d in receipt.deliveries],
        invite.state,
    )


def test_a_duplicate_notification_is_reported_duplicate(spec: dict[int, Example]) -> None:
    board = Switchboard()
    example = spec[1]
    answered(board, example)
    board.receive(wire(example.completed), at=1.0)

    receipt = board.receive(wire(example.completed), at=2.0)

    assert ([DeliveryOutcome.duplicate], False) == (
        outcomes(receipt),
        receipt.deliveries[0].moved,
    )


def test_an_unrecognised_notification_is_reported_unrecognised(spec: dict[int, Example]) -> None:
    board = Switchboard()
    body = copy.deepcopy(spec[1].completed)
    body["value"][0]["resourceData"]["@odata.type"] = "#microsoft.graph.playPromptOperation"

    assert [DeliveryOutcome.unrecognised] == outcomes(board.receive(wire(body), at=0.0))


def test_a_call_update_that_is_not_its_end_is_reported_ignored(
    spec: dict[int, Example], call_gone: Callable[[str, str], Body]
) -> None:
    board = Switchboard()
    answered(board, spec[4])

    receipt = board.receive(wire(call_gone(spec[4].call_id, "established")), at=1.0)

    assert [DeliveryOutcome.ignored] == outcomes(receipt)


def test_every_notification_of_a_body_is_accounted_for(
    spec: dict[int, Example],
    teardown: Build,
    call_gone: Callable[[str, str], Body],
) -> None:
    board = Switchboard()
    example = spec[1]
    answered(board, example)
    other = copy.deepcopy(spec[1].completed)
    other["value"][0]["resourceData"]["@odata.type"] = "#microsoft.graph.playPromptOperation"
    items = [
        *example.completed["value"],  # applied
        *example.completed["value"],  # duplicate
        *example.roster["value"],  # applied
        *other["value"],  # unrecognised
        *call_gone(example.call_id, "established")["value"],  # ignored
        *spec[2].roster["value"],  # backlogged: no invite on that call yet
        *teardown(example)["value"],  # applied
    ]

    receipt = board.receive(wire({"value": items}), at=1.0)

    assert (
        items,
        [
            DeliveryOutcome.applied,
            DeliveryOutcome.duplicate,
            DeliveryOutcome.applied,
            DeliveryOutcome.unrecognised,
            DeliveryOutcome.ignored,
            DeliveryOutcome.backlogged,
            DeliveryOutcome.applied,
        ],
    ) == ([d.notification.to_json() for d in receipt.deliveries], outcomes(receipt))


def test_parsed_notifications_are_routed_like_a_body(spec: dict[int, Example]) -> None:
    board = Switchboard()
    invite = answered(board, spec[4])

    receipt = board.receive(parse_notifications(spec[4].completed), at=1.0)

    assert ([DeliveryOutcome.applied], InviteState.completed) == (outcomes(receipt), invite.state)


# -- deadlines ----------------------------------------------------------------------------

DEADLINES = Deadlines(requested=5.0, running=7.0, tearing_down_original=3.0)


def test_next_deadline_is_the_requested_deadline_after_add(spec: dict[int, Example]) -> None:
    board = Switchboard(deadlines=DEADLINES)
    invite = Invite.from_request(spec[4].call_id, spec[4].request)

    board.add(invite, at=10.0)

    assert (15.0, 15.0) == (board.next_deadline(), board.deadline_of(invite))


def test_a_state_change_restarts_the_deadline(spec: dict[int, Example]) -> None:
    board = Switchboard(deadlines=DEADLINES)
    invite = Invite.from_request(spec[4].call_id, spec[4].request)
    board.add(invite, at=10.0)
    invite.receive_response(200, {}, spec[4].response, at=12.0)

    board.note_response(invite, at=12.0)

    assert 19.0 == board.next_deadline()


def test_a_notification_moving_an_invite_restarts_its_deadline(spec: dict[int, Example]) -> None:
    board = Switchboard(deadlines=DEADLINES)
    example = spec[1]
    invite = answered(board, example)

    board.receive(wire(example.completed), at=4.0)

    assert (InviteState.tearing_down_original, 7.0) == (invite.state, board.next_deadline())


def test_expire_fails_invites_whose_deadline_passed(spec: dict[int, Example]) -> None:
    board = Switchboard(deadlines=DEADLINES)
    invite = Invite.from_request(spec[4].call_id, spec[4].request)
    board.add(invite, at=0.0)
    early = board.expire(at=4.9)

    receipt = board.expire(at=5.0)
    cancelling = (invite.state, board.next_deadline())
    board.expire(at=5.0 + DEADLINES.cancelling)

    assert invite.failure is not None
    assert (
        (),
        (invite,),
        (InviteState.cancelling, 5.0 + DEADLINES.cancelling),
        InviteState.failed,
        FailureReason.cancel_failed,
        None,
    ) == (
        early.timed_out,
        receipt.timed_out,
        cancelling,
        invite.state,
        invite.failure.reason,
        board.next_deadline(),
    )


def test_expire_does_not_fail_an_invite_that_finished(spec: dict[int, Example]) -> None:
    board = Switchboard(deadlines=DEADLINES)
    invite = answered(board, spec[4])
    board.receive(wire(spec[4].completed), at=1.0)

    assert ((), InviteState.completed, None) == (
        board.expire(at=100.0).timed_out,
        invite.state,
        board.next_deadline(),
    )


def test_an_invite_may_have_its_own_deadlines(spec: dict[int, Example]) -> None:
    board = Switchboard(deadlines=DEADLINES)
    invite = Invite.from_request(spec[4].call_id, spec[4].request)

    board.add(invite, at=0.0, deadlines=Deadlines(requested=1.0))

    assert (invite,) == board.expire(at=1.0).timed_out


def test_an_invite_in_tearing_down_original_times_out_on_its_deadline(
    spec: dict[int, Example],
) -> None:
    board = Switchboard(deadlines=DEADLINES)
    example = spec[5]
    invite = answered(board, example)
    board.receive(wire(example.completed), at=1.0)

    receipt = board.expire(at=4.0)

    assert ((invite,), InviteState.failed) == (receipt.timed_out, invite.state)


@pytest.mark.parametrize("field", ["requested", "running", "tearing_down_original"])
@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_deadlines_must_be_positive(field: str, seconds: float) -> None:
    with pytest.raises(ConfigurationError, match=f"Deadlines.{field}: must be a positive number"):
        Deadlines(**{field: seconds})


@pytest.mark.parametrize(
    ("state", "seconds"),
    [
        (InviteState.requested, 5.0),
        (InviteState.running, 7.0),
        (InviteState.tearing_down_original, 3.0),
        (InviteState.completed, None),
        (InviteState.failed, None),
    ],
)
def test_deadlines_give_seconds_for_each_non_terminal_state(
    state: InviteState, seconds: float | None
) -> None:
    assert seconds == DEADLINES.for_state(state)


def test_the_clock_is_read_when_no_time_is_given(spec: dict[int, Example]) -> None:
    board = Switchboard(deadlines=DEADLINES, clock=lambda: 100.0)

    board.add(Invite.from_request(spec[4].call_id, spec[4].request))

    assert 105.0 == board.next_deadline()


# -- malformed nested JSON ----------------------------------------------------------------


@pytest.mark.parametrize("which", ["operation", "roster"])
def test_a_body_with_a_malformed_nested_model_applies_nothing(
    spec: dict[int, Example], roster_removed: Callable[[str, str], Body], which: str
) -> None:
    board = Switchboard()
    completes = answered(board, spec[4])
    moving = answered(board, spec[5], {**spec[5].request, "clientContext": "move"})
    if which == "operation":
        bad = copy.deepcopy(spec[4].completed)
        bad["value"][0]["resourceData"].update(status="failed", resultInfo={"code": True})
        bad["value"][0]["resourceData"]["clientContext"] = "move"
        bad["value"][0]["resourceData"]["id"] = spec[5].response["id"]
    else:
        first = spec[5].request["participants"][0]
        bad = roster_removed(first["replacesCallId"], first["participantId"])
        bad["value"][0]["resourceData"][0]["isMuted"] = "no"
    body = {"value": [*spec[4].completed["value"], *bad["value"]]}
    before = (completes.to_dict(), moving.to_dict())

    with pytest.raises(NotificationError, match=r"\$\.value\[1\]\.resourceData"):
        board.receive(wire(body), at=1.0)

    assert before == (completes.to_dict(), moving.to_dict())
