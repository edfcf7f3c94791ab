"""Cancel, stepped through the sans-I/O core with no event loop.

An :class:`~callflow.Invite` takes the bot's cancel (or a deadline) and answers with the
DELETE it wants sent (:meth:`~callflow.Invite.delete_requests`); the core's
:class:`~callflow._core._deleting.Deleting` flow decides the DELETE's retries and feeds its
final answer back. The bodies are the fake service's wire builders, the requests the spec's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from callflow import (
    DeliveryOutcome,
    FailureReason,
    Invite,
    InviteState,
    RetryPolicy,
    Switchboard,
    Trigger,
    parse_notifications,
)
from callflow._core._deleting import Deleting
from callflow._core._records import delete_request
from callflow._core._retry import Send, Sending, Stop, Wait
from callflow._trace import MemoryRecorder, replay
from callflow.testing import (
    CANCELLED_INFO,
    SPEC_REQUESTS,
    Operation,
    Quirks,
    operation_notification,
    response_body,
    roster_notification,
)

CALL_ID = "ab6233a5-20b7-4c5e-bea2-ce56c9776429"
PID = "9fe2a2d6-8e7b-4f2c-9a2a-e3d1c5a1b0c1"
PSTN_REQUEST: Mapping[str, Any] = SPEC_REQUESTS[4]
NO_JITTER = RetryPolicy(jitter=False)


def _invite(request: Mapping[str, Any] = PSTN_REQUEST) -> Invite:
    return Invite.from_request(CALL_ID, request)


def _op(invite: Invite, *ids: str | None) -> Operation:
    return Operation(
        id="op-1",
        call_id=invite.call_id,
        client_context=invite.client_context,
        participants=[p.to_json() for p in invite.participants],
        participant_ids=ids or (PID,),
    )


def _running(invite: Invite, *, quirks: Quirks | None = None, at: float = 0.0) -> Invite:
    invite.receive_response(200, {}, response_body(_op(invite), quirks), at=at)
    return invite


def _feed(invite: Invite, body: Mapping[str, Any], *, at: float) -> list[str]:
    return [invite.offer(n, at=at).value for n in parse_notifications(body)]


def _path(invite: Invite) -> list[tuple[Trigger, InviteState, bool]]:
    return [(s.trigger, s.dest, s.ignored) for s in invite.history]


def _url(pid: str = PID) -> str:
    return f"/communications/calls/{CALL_ID}/participants/{pid}"


# -- the cancel input and the DELETE it asks for --------------------------------------------


def test_a_cancel_of_a_ringing_invite_asks_for_the_delete_of_its_participant() -> None:
    invite = _running(_invite())

    state = invite.cancel(at=5.0)

    assert (InviteState.cancelling, [("DELETE", _url())]) == (
        state,
        [(r.method, r.url) for r in invite.delete_requests()],
    )


def test_a_204_to_the_delete_ends_the_invite_cancelled_for_the_reason_cancelled() -> None:
    invite = _running(_invite())
    invite.cancel(at=5.0)

    invite.delete_answered(PID, 204, at=5.2)

    assert invite.failure is not None
    assert (InviteState.cancelled, FailureReason.cancelled, ()) == (
        invite.state,
        invite.failure.reason,
        invite.delete_requests(),
    )
    assert [
        (Trigger.accepted, InviteState.running, False),
        (Trigger.cancel_requested, InviteState.cancelling, False),
        (Trigger.deleted, InviteState.cancelled, False),
    ] == _path(invite)


def test_a_404_to_the_delete_means_already_gone_and_the_invite_is_cancelled() -> None:
    invite = _running(_invite())
    invite.cancel(at=5.0)

    invite.delete_answered(PID, 404, at=5.2)

    assert InviteState.cancelled == invite.state
    assert "already gone (404)" in invite.history[-1].cause


def test_a_delete_refused_fails_the_invite_saying_it_may_still_ring() -> None:
    invite = _running(_invite())
    invite.cancel(at=5.0)

    invite.delete_answered(PID, 403, at=5.2)

    assert invite.failure is not None
    assert (InviteState.failed, FailureReason.cancel_failed, True) == (
        invite.state,
        invite.failure.reason,
        "may still be ringing" in invite.failure.message,
    )


def test_a_second_cancel_is_the_same_cancel() -> None:
    invite = _running(_invite())
    invite.cancel(at=5.0)

    assert InviteState.cancelling == invite.cancel(at=6.0)
    assert (Trigger.cancel_requested, True) == (
        invite.history[-1].trigger,
        invite.history[-1].ignored,
    )


def test_a_cancel_of_a_completed_invite_changes_nothing() -> None:
    invite = _running(_invite())
    _feed(invite, operation_notification(_op(invite)), at=2.0)

    state = invite.cancel(at=5.0)

    assert (InviteState.completed, None, (), True) == (
        state,
        invite.failure,
        invite.delete_requests(),
        invite.history[-1].ignored,
    )


def test_a_cancel_of_a_failed_invite_changes_nothing() -> None:
    invite = _running(_invite())
    _feed(invite, operation_notification(_op(invite), result_info=CANCELLED_INFO), at=2.0)
    failure = invite.failure

    assert (InviteState.failed, failure) == (invite.cancel(at=5.0), invite.failure)


# -- which participant id -------------------------------------------------------------------


def test_the_participant_id_comes_from_the_answers_participants_id() -> None:
    assert (PID,) == _running(_invite()).participant_ids


def test_a_participant_id_field_in_the_answer_is_read_when_id_is_absent() -> None:
    invite = _invite()
    body = response_body(_op(invite))
    body["participants"][0]["participantId"] = body["participants"][0].pop("id")

    invite.receive_response(200, {}, body, at=0.0)

    assert (PID,) == invite.participant_ids


def test_a_moves_echo_of_its_source_participant_id_is_not_taken_as_the_id() -> None:
    invite = _invite(SPEC_REQUESTS[5])
    moved = invite.participant_id
    body = response_body(_op(invite, None), Quirks(null_participant_ids=True))
    body["participants"][0]["participantId"] = moved

    invite.receive_response(200, {}, body, at=0.0)

    assert (None,) == invite.participant_ids


def test_with_null_ids_in_the_answer_the_roster_entry_matching_the_invitee_gives_the_id() -> None:
    invite = _running(_invite(), quirks=Quirks(null_participant_ids=True))
    invite.cancel(at=5.0)
    waiting = invite.delete_requests()

    _feed(invite, roster_notification(_op(invite)), at=6.0)

    assert ((), [_url()]) == (waiting, [r.url for r in invite.delete_requests()])


def test_a_roster_entry_for_someone_else_gives_no_id() -> None:
    invite = _running(_invite(), quirks=Quirks(null_participant_ids=True))
    other = Operation(
        id="op-2",
        call_id=CALL_ID,
        participants=[{"identity": {"phone": {"id": "+15550000000"}}}],
        participant_ids=("someone-else",),
    )

    _feed(invite, roster_notification(other), at=1.0)

    assert (None,) == invite.participant_ids


def test_a_cancel_before_the_answer_waits_for_the_id_the_answer_then_gives() -> None:
    invite = _invite()
    invite.cancel(at=0.5)
    waiting = invite.delete_requests()

    invite.receive_response(200, {}, response_body(_op(invite)), at=1.0)

    assert (InviteState.cancelling, (), [_url()]) == (
        invite.state,
        waiting,
        [r.url for r in invite.delete_requests()],
    )
    assert (Trigger.accepted, InviteState.cancelling) == (
        invite.history[-1].trigger,
        invite.history[-1].dest,
    )


def test_the_cancelling_deadline_without_an_id_fails_the_invite_saying_it_may_still_ring() -> None:
    invite = _running(_invite(), quirks=Quirks(null_participant_ids=True))
    invite.cancel(at=5.0)

    invite.time_out(at=35.0)

    assert invite.failure is not None
    assert (InviteState.failed, FailureReason.cancel_failed) == (
        invite.state,
        invite.failure.reason,
    )
    assert "before the participant id was known" in invite.failure.message
    assert "may still be ringing" in invite.failure.message


def test_every_participant_of_a_group_invite_is_deleted_before_it_is_cancelled() -> None:
    invite = Invite(
        CALL_ID,
        [{"identity": {"user": {"id": "u1"}}}, {"identity": {"user": {"id": "u2"}}}],
        client_context="cc",
        invite_id="i1",
    )
    invite.receive_response(200, {}, response_body(_op(invite, "p1", "p2")), at=0.0)
    invite.cancel(at=1.0)

    after_first = invite.delete_answered("p1", 204, at=1.1)
    left = [r.url for r in invite.delete_requests()]
    after_second = invite.delete_answered("p2", 204, at=1.2)

    assert (InviteState.cancelling, [_url("p2")], InviteState.cancelled) == (
        after_first,
        left,
        after_second,
    )


# -- races ----------------------------------------------------------------------------------


def test_a_completion_while_the_delete_is_in_flight_is_noted_and_the_delete_removes_them() -> None:
    invite = _running(_invite())
    invite.cancel(at=5.0)

    _feed(invite, operation_notification(_op(invite)), at=5.1)  # they answered just now
    invite.delete_answered(PID, 204, at=5.2)

    assert [
        (Trigger.accepted, InviteState.running, False),
        (Trigger.cancel_requested, InviteState.cancelling, False),
        (Trigger.operation_completed, InviteState.cancelling, False),
        (Trigger.deleted, InviteState.cancelled, False),
    ] == _path(invite)


def test_the_operation_failing_while_cancelling_ends_the_invite_cancelled() -> None:
    invite = _running(_invite())
    invite.cancel(at=5.0)

    _feed(invite, operation_notification(_op(invite), result_info=CANCELLED_INFO), at=5.1)

    assert invite.failure is not None
    assert (InviteState.cancelled, FailureReason.cancelled) == (
        invite.state,
        invite.failure.reason,
    )


def test_notifications_after_cancelled_are_absorbed_and_reported_late() -> None:
    board = Switchboard()
    invite = _invite()
    board.add(invite, at=0.0)
    _running(invite)
    invite.cancel(at=5.0)
    invite.delete_answered(PID, 204, at=5.2)

    receipt = board.receive(operation_notification(_op(invite), result_info=CANCELLED_INFO), at=6.0)

    assert ([DeliveryOutcome.late], InviteState.cancelled) == (
        [d.outcome for d in receipt.deliveries],
        invite.state,
    )


def test_a_delete_answer_after_the_invite_ended_is_absorbed() -> None:
    invite = _running(_invite())
    invite.cancel(at=5.0)
    _feed(invite, operation_notification(_op(invite), result_info=CANCELLED_INFO), at=5.1)

    invite.delete_answered(PID, 204, at=5.2)

    assert (InviteState.cancelled, Trigger.deleted, True) == (
        invite.state,
        invite.history[-1].trigger,
        invite.history[-1].ignored,
    )


# -- deadlines cancel -----------------------------------------------------------------------


@pytest.mark.parametrize("answered", [True, False], ids=["running", "requested"])
def test_a_deadline_while_ringing_cancels_and_ends_cancelled_for_the_reason_timeout(
    answered: bool,
) -> None:
    invite = _running(_invite()) if answered else _invite()
    before = invite.state

    invite.time_out(at=90.0)
    if not answered:
        invite.receive_response(200, {}, response_body(_op(invite)), at=91.0)
    invite.delete_answered(PID, 204, at=91.5)

    assert invite.failure is not None
    assert (InviteState.cancelled, FailureReason.timeout) == (
        invite.state,
        invite.failure.reason,
    )
    assert f"deadline of {before} passed" in invite.failure.message


def test_a_deadline_after_a_lost_answer_fails_at_once_with_outcome_unknown() -> None:
    invite = _invite()
    invite.outcome_unknown("HTTP 504 after the POST was sent", at=1.0)

    invite.time_out(at=90.0)

    assert invite.failure is not None
    assert (InviteState.failed, FailureReason.outcome_unknown) == (
        invite.state,
        invite.failure.reason,
    )


def test_the_switchboard_gives_a_cancelling_invite_the_cancelling_deadline() -> None:
    board = Switchboard()
    invite = _invite()
    board.add(invite, at=0.0)
    _running(invite)
    board.note_response(invite, at=0.0)

    board.expire(at=90.0)

    assert (InviteState.cancelling, 90.0 + board.deadlines.cancelling) == (
        invite.state,
        board.deadline_of(invite),
    )


# -- replace_p2p and move_meeting -----------------------------------------------------------


@pytest.mark.parametrize("number", [1, 5], ids=["replace_p2p", "move_meeting"])
def test_a_cancel_in_tearing_down_original_is_noted_and_changes_nothing(number: int) -> None:
    invite = _running(_invite(SPEC_REQUESTS[number]))
    _feed(invite, operation_notification(_op(invite)), at=2.0)

    state = invite.cancel(at=3.0)

    assert (InviteState.tearing_down_original, False, ()) == (
        state,
        invite.history[-1].ignored,
        invite.delete_requests(),
    )


@pytest.mark.parametrize("number", [1, 5], ids=["replace_p2p", "move_meeting"])
def test_a_cancel_of_a_replacing_invite_before_it_completes_cancels_it(number: int) -> None:
    invite = _running(_invite(SPEC_REQUESTS[number]))

    invite.cancel(at=1.0)
    invite.delete_answered(PID, 204, at=1.1)

    assert InviteState.cancelled == invite.state


# -- the DELETE's retries: the core's Deleting flow -----------------------------------------


def _cancelling() -> tuple[Invite, Deleting]:
    invite = _running(_invite())
    invite.cancel(at=5.0)
    (request,) = invite.delete_requests()
    return invite, Deleting(request, NO_JITTER, invite=invite, deadline=35.0)


def test_a_429_on_the_delete_is_retried_after_retry_after() -> None:
    invite, flow = _cancelling()

    first = flow.start()
    wait = flow.answered(429, {"Retry-After": "2"}, at=5.0)
    again = flow.resume(at=7.0)
    done = flow.answered(204, {}, at=7.1)

    assert (Send(1), Wait(2.0, "HTTP 429"), Send(2)) == (first, wait, again)
    assert (True, InviteState.cancelled) == (isinstance(done, Stop), invite.state)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_on_the_delete_is_retried_because_a_delete_is_idempotent(status: int) -> None:
    invite, flow = _cancelling()
    flow.start()

    action = flow.answered(status, {}, at=5.0)

    assert (Wait, InviteState.cancelling) == (type(action), invite.state)


def test_a_delete_whose_answer_was_lost_is_sent_again() -> None:
    _, flow = _cancelling()
    flow.start()

    assert isinstance(flow.lost("ReadError", at=5.0), Wait)


def test_a_delete_refused_with_a_4xx_is_not_retried() -> None:
    invite, flow = _cancelling()
    flow.start()

    action = flow.answered(403, {}, at=5.0)

    assert (Stop, InviteState.failed) == (type(action), invite.state)


def test_a_delete_that_keeps_failing_gives_up_after_the_policys_attempts() -> None:
    invite, flow = _cancelling()
    action = flow.start()
    sent = 0
    while not isinstance(action, Stop):
        if isinstance(action, Send):
            sent += 1
            action = flow.answered(503, {}, at=5.0)
        else:
            action = flow.resume(at=5.0)

    assert invite.failure is not None
    assert (NO_JITTER.max_attempts, InviteState.failed, FailureReason.cancel_failed) == (
        sent,
        invite.state,
        invite.failure.reason,
    )


def test_no_retry_of_the_delete_outlasts_the_cancelling_deadline() -> None:
    invite, flow = _cancelling()
    flow.start()

    action = flow.answered(429, {"Retry-After": "60"}, at=5.0)

    assert (Stop, InviteState.failed) == (type(action), invite.state)


def test_a_removal_without_an_invite_reports_its_result() -> None:
    flow = Deleting(delete_request(CALL_ID, PID), NO_JITTER)
    flow.start()

    flow.answered(404, {}, at=1.0)

    assert flow.result is not None
    assert (True, 404) == (flow.result.removed, flow.result.status_code)


def test_a_cancel_during_a_429_wait_of_the_post_ends_cancelled_and_never_resends() -> None:
    invite = _invite()
    sending = Sending(invite, NO_JITTER, deadline=90.0)
    sending.start()
    wait = sending.answered(429, {"Retry-After": "5"}, None, at=0.0)
    invite.cancel(at=1.0)

    stop = sending.resume(at=5.0)

    assert (Wait, Stop, "send_failed", InviteState.cancelled) == (
        type(wait),
        type(stop),
        stop.fed if isinstance(stop, Stop) else None,
        invite.state,
    )


# -- records and replay ---------------------------------------------------------------------


def test_a_cancelling_invite_round_trips_through_its_record() -> None:
    invite = _running(_invite())
    invite.cancel(at=5.0)

    again = Invite.from_dict(invite.to_dict())
    again.delete_answered(PID, 204, at=5.2)

    assert again.failure is not None
    assert (InviteState.cancelled, FailureReason.cancelled, (PID,)) == (
        again.state,
        again.failure.reason,
        again.participant_ids,
    )


def test_a_recorded_cancel_replays_to_the_same_history() -> None:
    invite = _running(_invite())
    invite.cancel(at=5.0)
    invite.delete_answered(PID, 204, at=5.2)
    recorder = MemoryRecorder()
    events: list[dict[str, Any]] = [
        {"type": "invite", "call_id": CALL_ID, "request": dict(PSTN_REQUEST)},
        {
            "type": "response",
            "at": 0.0,
            "status_code": 200,
            "headers": {},
            "body": response_body(_op(invite)),
        },
        {"type": "cancel", "at": 5.0},
        {"type": "delete_response", "at": 5.2, "participant_id": PID, "status_code": 204},
        {"type": "result", "history": [s.to_dict() for s in invite.history]},
    ]
    for event in events:
        recorder.record(event)

    assert invite.history == replay(recorder.events).history
