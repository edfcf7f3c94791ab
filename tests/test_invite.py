"""Invite: each spec example stepped through its inputs, one at a time, with no I/O."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from callflow import (
    FailureReason,
    Identity,
    IdentitySet,
    InvitationParticipantInfo,
    Invite,
    InviteError,
    InviteKind,
    InviteState,
    NotificationError,
    Outcome,
    ResultInfo,
    Trigger,
    parse_notifications,
)
from spec_examples import Example, examples

Body = dict[str, Any]
Build = Callable[[Example], Body]


def feed(invite: Invite, body: Body, *, at: float = 0.0) -> list[Outcome]:
    return [invite.offer(n, at=at) for n in parse_notifications(body)]


def accepted(example: Example, request: Body | None = None) -> Invite:
    """The example's invite after its 200 response."""
    invite = Invite.from_request(example.call_id, request or example.request)
    location = f"/communications/calls/{example.call_id}/operations/{example.response['id']}"
    invite.receive_response(200, {"Location": location}, example.response, at=0.0)
    return invite


def with_status(body: Body, status: str) -> Body:
    body = copy.deepcopy(body)
    body["value"][0]["resourceData"]["status"] = status
    return body


def triggers(invite: Invite) -> list[tuple[Trigger, InviteState, bool]]:
    return [(s.trigger, s.dest, s.ignored) for s in invite.history]


# -- the spec's examples ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "kind", "state"),
    [
        (1, InviteKind.replace_p2p, InviteState.tearing_down_original),
        (2, InviteKind.invite, InviteState.completed),
        (3, InviteKind.replace_p2p, InviteState.tearing_down_original),
        (4, InviteKind.invite, InviteState.completed),
        (5, InviteKind.move_meeting, InviteState.tearing_down_original),
    ],
)
def test_spec_example_reaches_its_state_after_its_notifications(
    spec: dict[int, Example],
    trackable_request: Build,
    number: int,
    kind: InviteKind,
    state: InviteState,
) -> None:
    example = spec[number]
    invite = accepted(example, trackable_request(example))
    after_response = invite.state

    applied = [invite.receive_notification(n) for n in parse_notifications(example.completed)]
    applied += [invite.receive_notification(n) for n in parse_notifications(example.roster)]

    assert (kind, InviteState.running, [True, True], state) == (
        invite.kind,
        after_response,
        applied,
        invite.state,
    )


@pytest.mark.parametrize("number", [1, 3])
@pytest.mark.parametrize("how", ["deleted", "terminated"])
def test_replace_p2p_completes_when_the_original_call_goes(
    spec: dict[int, Example], call_gone: Callable[[str, str], Body], number: int, how: str
) -> None:
    example = spec[number]
    invite = accepted(example)
    feed(invite, example.completed)
    feed(invite, example.roster)

    outcomes = feed(invite, call_gone(example.request["participants"][0]["replacesCallId"], how))

    assert ([Outcome.applied], InviteState.completed) == (outcomes, invite.state)


def test_example_2_as_printed_is_refused_naming_the_replaces_call_id_rule(
    spec: dict[int, Example],
) -> None:
    example = spec[2]

    with pytest.raises(InviteError, match=r"replacesCallId is set and 2 participants"):
        Invite.from_request(example.call_id, example.request)


def test_move_meeting_completes_when_the_participant_is_deleted_from_the_source_meeting(
    spec: dict[int, Example], teardown: Build
) -> None:
    example = spec[5]
    invite = accepted(example)
    feed(invite, example.completed)

    outcomes = feed(invite, teardown(example))

    assert ([Outcome.applied], InviteState.completed) == (outcomes, invite.state)


def test_move_meeting_completes_when_the_source_meeting_roster_shows_the_participant_removed(
    spec: dict[int, Example], roster_removed: Callable[[str, str], Body]
) -> None:
    example = spec[5]
    first = example.request["participants"][0]
    invite = accepted(example)
    feed(invite, example.completed)

    outcomes = feed(invite, roster_removed(first["replacesCallId"], first["participantId"]))

    assert ([Outcome.applied], InviteState.completed) == (outcomes, invite.state)


def test_move_meeting_ignores_another_participant_leaving_the_source_meeting(
    spec: dict[int, Example], participant_deleted: Callable[[str, str], Body]
) -> None:
    example = spec[5]
    invite = accepted(example)
    feed(invite, example.completed)

    outcomes = feed(invite, participant_deleted(invite.replaces_call_id or "", "someone-else"))

    assert ([Outcome.not_mine], InviteState.tearing_down_original) == (outcomes, invite.state)


def test_move_meeting_is_not_finished_by_a_source_roster_without_a_removed_participant(
    spec: dict[int, Example], roster_removed: Callable[[str, str], Body]
) -> None:
    example = spec[5]
    invite = accepted(example)
    feed(invite, example.completed)
    roster = roster_removed(invite.replaces_call_id or "", invite.participant_id or "")
    del roster["value"][0]["resourceData"][0]["removedState"]

    outcomes = feed(invite, roster)

    assert ([Outcome.applied], InviteState.tearing_down_original) == (outcomes, invite.state)


def test_a_roster_is_kept_as_the_latest_view_of_the_call(spec: dict[int, Example]) -> None:
    example = spec[4]
    invite = accepted(example)

    feed(invite, example.roster)

    assert invite.roster is not None
    assert example.roster["value"][0] == invite.roster.to_json()


def test_the_call_ending_first_fails_the_invite(
    spec: dict[int, Example], call_gone: Callable[[str, str], Body]
) -> None:
    invite = accepted(spec[4])

    feed(invite, call_gone(invite.call_id, "deleted"))

    assert invite.failure is not None
    assert (InviteState.failed, FailureReason.call_ended) == (invite.state, invite.failure.reason)


def test_a_declined_operation_fails_with_its_result_info(
    spec: dict[int, Example], declined: Build
) -> None:
    invite = accepted(spec[4])

    feed(invite, declined(spec[4]))

    assert invite.failure is not None
    expected = ResultInfo(code=403, subcode=10004, message="declined", odata_type=None)
    assert (InviteState.failed, FailureReason.operation_failed, expected, expected) == (
        invite.state,
        invite.failure.reason,
        invite.failure.result_info,
        invite.result_info,
    )
    assert "resultInfo 403/10004 declined" in invite.failure.describe()


def test_a_notification_of_another_invite_is_not_its_business(spec: dict[int, Example]) -> None:
    example = spec[4]
    invite = Invite.from_request(example.call_id, {**example.request, "clientContext": "other"})

    applied = [invite.receive_notification(n) for n in parse_notifications(example.completed)]

    assert ([False], InviteState.requested, ()) == (applied, invite.state, invite.history)


# -- validation ---------------------------------------------------------------------------


def _participant(number: int) -> Body:
    participant: Body = copy.deepcopy(examples()[number].request["participants"][0])
    return participant


def _with_phone(phone_id: str) -> Body:
    participant = _participant(4)
    participant["identity"]["phone"]["id"] = phone_id
    return participant


def _phone_as_number() -> Body:
    participant = _participant(4)
    phone = participant["identity"]["phone"]
    phone["number"] = phone.pop("id")
    return participant


def _without(key: str, number: int) -> Body:
    participant = _participant(number)
    del participant[key]
    return participant


INVALID: list[tuple[str, list[Any], str | None, str]] = [
    ("no participants", [], None, "at least one participant is required"),
    ("6 participants", [_participant(4)] * 6, None, "6 given, Graph invites at most 5"),
    (
        "two with replacesCallId",
        [_participant(1), _participant(3)],
        None,
        "replacesCallId is set and 2 participants",
    ),
    (
        "replacesCallId and another participant",
        [_participant(1), _participant(4)],
        None,
        "invite one participant per replacesCallId",
    ),
    (
        "participantId without replacesCallId",
        [_without("replacesCallId", 5)],
        None,
        "participants[0].participantId: set without replacesCallId",
    ),
    ("clientContext of 257 characters", [_participant(4)], "x" * 257, "257 characters"),
    ("empty clientContext", [_participant(4)], "", "non-empty string"),
    ("phone not E.164", [_with_phone("12345")], None, "'12345' is not an E.164 number"),
    (
        "phone number given as 'number', not 'id'",
        [_phone_as_number()],
        None,
        "participants[0].identity.phone: no 'id': the E.164 number goes in phone.id",
    ),
    (
        "identity set with no identity",
        [{"identity": {"@odata.type": "#microsoft.graph.identitySet", "user": None}}],
        None,
        "participants[0].identity: no identity",
    ),
    ("no identity set", [_without("identity", 4)], None, "participants[0].identity: no identity"),
    (
        "a wrong type in a participant",
        [{"identity": {"user": {"id": 5}}}],
        None,
        "participants[0].identity.user.id: expected a string, got number",
    ),
    ("a participant that is not an object", ["x"], None, "participants[0]: expected"),
]


@pytest.mark.parametrize(
    ("participants", "context", "message"), [i[1:] for i in INVALID], ids=[i[0] for i in INVALID]
)
def test_an_invalid_invite_raises_invite_error_saying_why(
    participants: list[Any], context: str | None, message: str
) -> None:
    with pytest.raises(InviteError) as caught:
        Invite("c1", participants, client_context=context)

    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "body: expected a JSON object"),
        ({"participants": {}}, "participants: expected an array"),
        ({"participants": [], "clientContext": 5}, "clientContext: expected a string"),
    ],
)
def test_a_request_body_of_the_wrong_shape_raises_invite_error(body: Any, message: str) -> None:
    with pytest.raises(InviteError, match=message):
        Invite.from_request("c1", body)


@pytest.mark.parametrize("call_id", ["", "a/b"])
def test_a_call_id_that_is_not_one_raises_invite_error(call_id: str) -> None:
    with pytest.raises(InviteError, match="is not a call id"):
        Invite(call_id, [_participant(4)])


@pytest.mark.parametrize(
    ("participants", "context"),
    [([_participant(4)] * 5, None), ([_participant(4)], "x" * 256)],
    ids=["5 participants", "clientContext of 256 characters"],
)
def test_the_limits_themselves_are_allowed(participants: list[Body], context: str | None) -> None:
    assert InviteState.requested == Invite("c1", participants, client_context=context).state


def test_the_invite_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Invite("c1", [])


def test_without_client_context_a_uuid4_is_generated() -> None:
    first = Invite("c1", [_participant(4)])
    second = Invite.from_request("c1", {"participants": [_participant(4)]})

    assert (4, 4, True) == (
        uuid.UUID(first.client_context).version,
        uuid.UUID(second.client_context).version,
        first.client_context != second.client_context,
    )


# -- the request --------------------------------------------------------------------------


def test_the_request_body_is_the_spec_request_of_example_4(spec: dict[int, Example]) -> None:
    example = spec[4]

    request = Invite.from_request(example.call_id, example.request).request()

    assert example.request == request.json
    assert example.request == json.loads(request.content())


def test_a_request_built_in_code_is_shaped_like_the_spec_request(spec: dict[int, Example]) -> None:
    example = spec[4]
    phone = Identity(id=example.request["participants"][0]["identity"]["phone"]["id"])
    participant = InvitationParticipantInfo(identity=IdentitySet(phone=phone))

    invite = Invite(example.call_id, [participant], client_context=example.request["clientContext"])

    assert example.request == invite.request().json


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_the_request_is_a_post_to_the_spec_path(
    spec: dict[int, Example], trackable_request: Build, number: int
) -> None:
    example = spec[number]

    request = Invite.from_request(example.call_id, trackable_request(example)).request()

    expected_url = example.request_path.replace("{id}", example.call_id)
    assert ("POST", expected_url, {"Content-Type": "application/json"}) == (
        request.method,
        request.url,
        dict(request.headers),
    )


# -- the response -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (
            403,
            {"error": {"code": "Forbidden", "message": "no permission"}},
            "Forbidden",
            "no permission",
        ),
        (400, json.dumps({"error": {"code": "BadRequest"}}).encode(), "BadRequest", None),
        (404, None, None, None),
        (500, b"<html>oops</html>", None, None),
        (409, {"error": "not an object"}, None, None),
    ],
    ids=["mapping", "bytes without message", "no body", "not JSON", "error not an object"],
)
def test_a_non_2xx_answer_fails_the_invite_with_graphs_error(
    spec: dict[int, Example], status: int, body: Any, code: str | None, message: str | None
) -> None:
    invite = Invite.from_request(spec[4].call_id, spec[4].request)

    state = invite.receive_response(status, {}, body, at=0.0)

    assert invite.failure is not None
    assert (InviteState.failed, FailureReason.http_error, status, code, message) == (
        state,
        invite.failure.reason,
        invite.failure.status_code,
        invite.failure.error_code,
        invite.failure.error_message,
    )


@pytest.mark.parametrize(
    ("number", "status", "state"),
    [
        (4, "completed", InviteState.completed),
        (4, "failed", InviteState.failed),
        (1, "completed", InviteState.tearing_down_original),
        (1, "failed", InviteState.failed),
        (4, "notStarted", InviteState.running),
    ],
)
def test_the_operation_status_in_a_2xx_answer_is_taken_at_once(
    spec: dict[int, Example], number: int, status: str, state: InviteState
) -> None:
    example = spec[number]
    invite = Invite.from_request(example.call_id, example.request)

    assert state == invite.receive_response(200, {}, {**example.response, "status": status})


def test_a_failed_status_in_the_answer_keeps_its_result_info(
    spec: dict[int, Example], declined: Build
) -> None:
    example = spec[4]
    operation = declined(example)["value"][0]["resourceData"]
    invite = Invite.from_request(example.call_id, example.request)

    invite.receive_response(200, {}, operation, at=0.0)

    assert invite.failure is not None
    assert (FailureReason.operation_failed, operation["resultInfo"]) == (
        invite.failure.reason,
        None if invite.failure.result_info is None else invite.failure.result_info.to_json(),
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Location": "https://graph.microsoft.com/v1.0/communications/calls/c1/operations/op-9"},
        {"location": "/communications/calls/c1/operations/op-9/"},
        [("LOCATION", "/communications/calls/c1/operations/op-9")],
    ],
    ids=["url", "lower-case path", "pairs"],
)
def test_the_location_header_gives_the_operation_id_when_the_body_has_none(
    spec: dict[int, Example], headers: Any
) -> None:
    example = spec[4]
    body = {k: v for k, v in example.response.items() if k != "id"}
    invite = Invite.from_request(example.call_id, example.request)

    invite.receive_response(200, headers, body, at=0.0)

    assert "op-9" == invite.operation_id


def test_the_operation_id_in_the_body_wins_over_the_location_header(
    spec: dict[int, Example],
) -> None:
    example = spec[4]
    invite = Invite.from_request(example.call_id, example.request)

    invite.receive_response(200, {"Location": "/x/operations/other"}, example.response, at=0.0)

    assert example.response["id"] == invite.operation_id


@pytest.mark.parametrize(
    "body", [None, b"", b"not json", "{"], ids=["none", "empty", "text", "cut"]
)
def test_a_2xx_answer_without_an_operation_is_accepted(
    spec: dict[int, Example], body: bytes | str | None
) -> None:
    invite = Invite.from_request(spec[4].call_id, spec[4].request)

    assert InviteState.running == invite.receive_response(202, None, body, at=0.0)


@pytest.mark.parametrize(
    ("number", "state"), [(4, InviteState.completed), (1, InviteState.tearing_down_original)]
)
def test_a_notification_before_the_response_is_applied_and_the_late_response_moves_nothing_back(
    spec: dict[int, Example], number: int, state: InviteState
) -> None:
    example = spec[number]
    invite = Invite.from_request(example.call_id, example.request)
    outcomes = feed(invite, example.completed)

    after = invite.receive_response(200, {}, example.response, at=1.0)

    assert ([Outcome.applied], state, (Trigger.accepted, state, True)) == (
        outcomes,
        after,
        triggers(invite)[-1],
    )


# -- duplicates, terminal states, deadlines -----------------------------------------------


def test_a_duplicate_notification_returns_false_and_changes_nothing(
    spec: dict[int, Example],
) -> None:
    example = spec[1]
    invite = accepted(example)
    (completed,) = parse_notifications(example.completed)
    first = invite.receive_notification(completed)
    history = invite.history

    again = invite.receive_notification(completed)

    assert (True, False, history, InviteState.tearing_down_original) == (
        first,
        again,
        invite.history,
        invite.state,
    )


def test_an_equal_notification_parsed_again_is_a_duplicate(spec: dict[int, Example]) -> None:
    example = spec[1]
    invite = accepted(example)
    feed(invite, example.completed)

    assert [Outcome.duplicate] == feed(invite, example.completed)


def _completed(spec: dict[int, Example]) -> Invite:
    invite = accepted(spec[4])
    feed(invite, spec[4].completed)
    return invite


def _failed(spec: dict[int, Example]) -> Invite:
    invite = Invite.from_request(spec[4].call_id, spec[4].request)
    invite.receive_response(500, {}, None, at=0.0)
    return invite


def _respond(invite: Invite, spec: dict[int, Example]) -> Any:
    return invite.receive_response(200, {}, spec[4].response, at=5.0)


def _reject(invite: Invite, spec: dict[int, Example]) -> Any:
    return invite.receive_response(404, {}, None, at=5.0)


def _notify(invite: Invite, spec: dict[int, Example]) -> Any:
    (ended,) = parse_notifications(
        {"value": [{"changeType": "deleted", "resource": f"/app/calls/{invite.call_id}"}]}
    )
    return invite.offer(ended, at=5.0)


def _time_out(invite: Invite, spec: dict[int, Example]) -> Any:
    return invite.time_out(at=5.0)


def _outcome_unknown(invite: Invite, spec: dict[int, Example]) -> Any:
    return invite.outcome_unknown("read timeout", at=5.0)


@pytest.mark.parametrize("reach", [_completed, _failed], ids=["completed", "failed"])
@pytest.mark.parametrize(
    ("give", "trigger"),
    [
        (_respond, Trigger.accepted),
        (_reject, Trigger.rejected),
        (_notify, Trigger.call_ended),
        (_time_out, Trigger.timed_out),
        (_outcome_unknown, Trigger.response_unknown),
    ],
    ids=["response", "error response", "notification", "time_out", "outcome_unknown"],
)
def test_a_terminal_invite_absorbs_input_as_an_ignored_step(
    spec: dict[int, Example],
    reach: Callable[[dict[int, Example]], Invite],
    give: Callable[[Invite, dict[int, Example]], Any],
    trigger: Trigger,
) -> None:
    invite = reach(spec)
    state, failure, steps = invite.state, invite.failure, len(invite.history)

    give(invite, spec)

    assert (state, failure, steps + 1, (trigger, state, True)) == (
        invite.state,
        invite.failure,
        len(invite.history),
        triggers(invite)[-1],
    )


def test_a_notification_to_a_finished_invite_is_late(spec: dict[int, Example]) -> None:
    invite = _completed(spec)

    assert Outcome.late == _notify(invite, spec)


def _requested(spec: dict[int, Example]) -> Invite:
    return Invite.from_request(spec[4].call_id, spec[4].request)


def _running(spec: dict[int, Example]) -> Invite:
    return accepted(spec[4])


def _tearing_down_p2p(spec: dict[int, Example]) -> Invite:
    invite = accepted(spec[1])
    feed(invite, spec[1].completed)
    return invite


def _tearing_down_meeting(spec: dict[int, Example]) -> Invite:
    invite = accepted(spec[5])
    feed(invite, spec[5].completed)
    return invite


@pytest.mark.parametrize(
    ("reach", "state", "message"),
    [
        (
            _tearing_down_p2p,
            InviteState.tearing_down_original,
            "the original call ({replaces}) was not reported gone",
        ),
        (
            _tearing_down_meeting,
            InviteState.tearing_down_original,
            "the meeting leg ({replaces}) was not reported gone",
        ),
    ],
    ids=["tearing_down_original p2p", "tearing_down_original meeting"],
)
def test_time_out_fails_the_invite_in_tearing_down_original(
    spec: dict[int, Example],
    reach: Callable[[dict[int, Example]], Invite],
    state: InviteState,
    message: str,
) -> None:
    invite = reach(spec)
    before = invite.state

    invite.time_out(at=9.0)

    assert invite.failure is not None
    assert (state, InviteState.failed, FailureReason.timeout, True) == (
        before,
        invite.state,
        invite.failure.reason,
        message.format(replaces=invite.replaces_call_id) in invite.failure.message,
    )
    assert (Trigger.timed_out, state, InviteState.failed, 9.0) == (
        invite.history[-1].trigger,
        invite.history[-1].source,
        invite.history[-1].dest,
        invite.history[-1].at,
    )


def test_outcome_unknown_keeps_the_invite_requested(spec: dict[int, Example]) -> None:
    invite = _requested(spec)

    assert InviteState.requested == invite.outcome_unknown("HTTP 504", at=1.0)


def test_outcome_unknown_then_time_out_fails_with_reason_outcome_unknown(
    spec: dict[int, Example],
) -> None:
    invite = _requested(spec)
    invite.outcome_unknown("HTTP 504", at=1.0)

    invite.time_out(at=2.0)

    assert invite.failure is not None
    assert FailureReason.outcome_unknown == invite.failure.reason


def test_outcome_unknown_then_the_operation_completing_completes_the_invite(
    spec: dict[int, Example],
) -> None:
    invite = _requested(spec)
    invite.outcome_unknown("read timeout", at=1.0)

    feed(invite, spec[4].completed)

    assert InviteState.completed == invite.state


def test_a_time_out_after_the_lost_answer_was_made_good_is_a_plain_timeout(
    spec: dict[int, Example],
) -> None:
    invite = _requested(spec)
    invite.outcome_unknown("HTTP 504", at=1.0)
    feed(invite, with_status(spec[4].completed, "running"))

    invite.time_out(at=2.0)  # running: the deadline cancels the invite
    feed(invite, with_status(spec[4].completed, "failed"), at=3.0)

    assert invite.failure is not None
    assert (InviteState.cancelled, FailureReason.timeout) == (invite.state, invite.failure.reason)


def test_a_running_notification_accepts_an_invite_still_requested(
    spec: dict[int, Example],
) -> None:
    invite = _requested(spec)

    feed(invite, with_status(spec[4].completed, "running"))

    assert (InviteState.running, spec[4].response["id"]) == (invite.state, invite.operation_id)


@pytest.mark.parametrize("number", [1, 3, 5])
def test_teardown_reported_before_the_operations_completion_completes_directly(
    spec: dict[int, Example], teardown: Build, number: int
) -> None:
    example = spec[number]
    invite = accepted(example)
    feed(invite, teardown(example))
    noted = (invite.state, invite.original_already_gone)

    feed(invite, example.completed)

    assert ((InviteState.running, True), InviteState.completed) == (noted, invite.state)
    assert [
        (Trigger.accepted, InviteState.running, False),
        (Trigger.original_gone, InviteState.running, False),
        (Trigger.operation_completed, InviteState.completed, False),
    ] == triggers(invite)


def test_teardown_before_the_response_is_remembered(
    spec: dict[int, Example], teardown: Build
) -> None:
    example = spec[1]
    invite = Invite.from_request(example.call_id, example.request)
    feed(invite, teardown(example))
    invite.receive_response(200, {}, example.response, at=1.0)

    feed(invite, example.completed)

    assert InviteState.completed == invite.state


# -- a plain record -----------------------------------------------------------------------


def _declined(spec: dict[int, Example]) -> Invite:
    invite = accepted(spec[4])
    body = copy.deepcopy(spec[4].completed)
    data = body["value"][0]["resourceData"]
    data["status"] = "failed"
    data["resultInfo"] = {"code": 487, "subcode": 0, "message": "no answer"}
    feed(invite, body)
    return invite


def _moved(spec: dict[int, Example]) -> Invite:
    invite = _tearing_down_meeting(spec)
    first = spec[5].request["participants"][0]
    feed(
        invite,
        {
            "value": [
                {
                    "changeType": "updated",
                    "resource": f"/communications/calls/{first['replacesCallId']}/participants",
                    "resourceData": [{"id": first["participantId"], "removedState": {}}],
                }
            ]
        },
    )
    return invite


def _unknown(spec: dict[int, Example]) -> Invite:
    invite = _requested(spec)
    invite.outcome_unknown("HTTP 504", at=1.0)
    return invite


RECORDS = [
    _requested,
    _unknown,
    _running,
    _tearing_down_p2p,
    _moved,
    _completed,
    _declined,
    _failed,
]


def _normalized(record: dict[str, Any]) -> dict[str, Any]:
    """The record with ``seen`` (a set written as a list) in a stable order."""
    return {**record, "seen": sorted(record["seen"], key=repr)}


@pytest.mark.parametrize("reach", RECORDS, ids=[r.__name__.strip("_") for r in RECORDS])
def test_to_dict_and_from_dict_round_trip_through_json(
    spec: dict[int, Example], reach: Callable[[dict[int, Example]], Invite]
) -> None:
    invite = reach(spec)
    record = invite.to_dict()

    restored = Invite.from_dict(json.loads(json.dumps(record)))

    assert _normalized(record) == _normalized(restored.to_dict())
    assert (invite.history, invite.failure, invite.kind) == (
        restored.history,
        restored.failure,
        restored.kind,
    )


def test_a_restored_invite_still_knows_what_it_has_seen(spec: dict[int, Example]) -> None:
    invite = _tearing_down_p2p(spec)
    restored = Invite.from_dict(json.loads(json.dumps(invite.to_dict())))

    assert [Outcome.duplicate] == feed(restored, spec[1].completed)


def test_a_restored_invite_goes_on_from_where_it_was(
    spec: dict[int, Example], teardown: Build
) -> None:
    restored = Invite.from_dict(json.loads(json.dumps(_tearing_down_p2p(spec).to_dict())))

    feed(restored, teardown(spec[1]))

    assert InviteState.completed == restored.state


@pytest.mark.parametrize(
    "change",
    [{"kind": "move_meeting"}, {"state": "lost"}, {"call_id": None}, {"history": [{"x": 1}]}],
    ids=["kind", "state", "call_id", "history"],
)
def test_from_dict_refuses_a_record_to_dict_did_not_write(
    spec: dict[int, Example], change: dict[str, Any]
) -> None:
    record = {**_running(spec).to_dict(), **change}

    with pytest.raises(InviteError):
        Invite.from_dict(record)


# -- malformed nested JSON ----------------------------------------------------------------


def _malformed_result_info(example: Example, status: str) -> Body:
    body = with_status(example.completed, status)
    body["value"][0]["resourceData"]["resultInfo"] = {"code": True}
    return body


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_a_malformed_operation_raises_and_leaves_the_invite_as_it_was(
    spec: dict[int, Example], status: str
) -> None:
    invite = Invite.from_request(spec[4].call_id, spec[4].request)
    before = invite.to_dict()
    (notification,) = parse_notifications(_malformed_result_info(spec[4], status))

    with pytest.raises(NotificationError, match=r"resourceData\.resultInfo\.code"):
        invite.offer(notification, at=1.0)

    assert before == invite.to_dict()


def test_a_malformed_operation_is_not_taken_for_a_duplicate_when_it_comes_again(
    spec: dict[int, Example],
) -> None:
    invite = Invite.from_request(spec[4].call_id, spec[4].request)
    (notification,) = parse_notifications(_malformed_result_info(spec[4], "failed"))
    with pytest.raises(NotificationError):
        invite.offer(notification, at=1.0)

    with pytest.raises(NotificationError):
        invite.offer(notification, at=2.0)


# -- copies -------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [1, 3, 4, 5])
def test_a_copy_takes_inputs_as_the_invite_would_and_leaves_the_invite_as_it_was(
    spec: dict[int, Example], number: int
) -> None:
    example = spec[number]
    original = accepted(example)
    feed(original, example.completed)
    before = original.to_dict()
    twin_of_original = Invite.from_dict(before)  # the slow, whole-record copy

    trial = copy.copy(original)
    inputs = [example.roster, example.completed, example.roster]  # a redelivery in between
    for body in inputs:
        feed(trial, body, at=1.0)
        feed(twin_of_original, body, at=1.0)
    trial.time_out(at=99.0)
    twin_of_original.time_out(at=99.0)

    assert original.to_dict() == before
    assert trial.to_dict() == twin_of_original.to_dict()
    assert trial.to_dict() != before


class _Tagged(Invite):
    """A user's subclass with a slot and an instance dict of its own."""

    __slots__ = ("__dict__", "tag")
    tag: str


def test_a_copy_of_a_subclass_keeps_its_class_and_its_own_attributes(
    spec: dict[int, Example],
) -> None:
    example = spec[4]
    invite = _Tagged.from_request(example.call_id, example.request)
    invite.tag = "escalation"
    invite.note = "vip"  # type: ignore[attr-defined]

    twin = copy.copy(invite)

    assert (type(twin), twin.tag, twin.note) == (_Tagged, "escalation", "vip")  # type: ignore[attr-defined]
    assert twin.to_dict() == invite.to_dict()
