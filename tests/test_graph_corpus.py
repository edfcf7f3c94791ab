"""callflow against the service's real traffic: bodies published by Microsoft.

Every body here is loaded from ``tests/data/graph/`` (``SOURCES.md`` names where each was
published) and fed through the public API the way a bot does. Where a shape was never
published anywhere (``changeType`` in another case, ``unknownFutureValue``, a
``rosterSequenceNumber`` value, ``hidden: true``), a published body is loaded and that one
value is changed, and the test says so. Participants published outside a commsNotifications
body (the meeting call events page's lobby and ``removedState`` entries, the participants the
Graph Communications SDK recorded from a real call) are placed, as published, in the envelope
of a published roster body (:func:`roster_of`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import callflow
from callflow import (
    DeliveryOutcome,
    FailureReason,
    Invite,
    InviteState,
    NotificationError,
    NotificationKind,
    Switchboard,
    parse_notifications,
)
from spec_examples import Example
from webhook_support import graph_client

GRAPH = Path(__file__).parent / "data" / "graph"
Body = dict[str, Any]

#: Published JSON that is not a commsNotifications body: participants, taken from it.
NOT_BODIES = ("meetingcallevents-", "sdk-recorded-")
NOTIFICATION_BODIES = sorted(
    p.stem
    for p in GRAPH.glob("*.json")
    if "request" not in p.stem and "resource" != p.stem[-8:] and not p.stem.startswith(NOT_BODIES)
)
#: The docs' call id and clientContext shared by most of their pages.
DOCS_CALL = "57DAB8B1894C409AB240BD8BEAE78896"
DOCS_CONTEXT = "d45324c1-fcb5-430a-902c-f20af696537c"
DOCS_OPERATION = "0FE0623FD62842EDB4BD8AC290072CC5"


def published(name: str) -> Body:
    """One published body, as committed in tests/data/graph."""
    data: Body = json.loads((GRAPH / f"{name}.json").read_text(encoding="utf-8"))
    return data


def changed(name: str, **data: Any) -> Body:
    """A published body with values of its first notification changed (said per test)."""
    body = copy.deepcopy(published(name))
    entry = body["value"][0]
    for key, value in data.items():
        if key == "resourceData":
            entry["resourceData"].update(value)
        else:
            entry[key] = value
    return body


def invite_on(
    board: Switchboard,
    spec: dict[int, Example],
    call_id: str,
    client_context: str,
    operation_id: str | None = None,
    request: Body | None = None,
) -> Invite:
    """An invite held by ``board`` on ``call_id``; answered (running) with ``operation_id``."""
    invite = Invite.from_request(
        call_id, {**(request or spec[4].request), "clientContext": client_context}
    )
    board.add(invite, at=0.0)
    if operation_id is not None:
        answer = {**spec[4].response, "id": operation_id, "clientContext": client_context}
        invite.receive_response(200, {}, answer, at=0.0)
        board.note_response(invite, at=0.0)
    return invite


# --- every published body ------------------------------------------------------------------


def test_the_corpus_holds_at_least_thirty_published_bodies() -> None:
    sources = (GRAPH / "SOURCES.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in GRAPH.glob("*.json"))
    assert len(files) >= 30
    assert [] == [f for f in files if f"`{f}`" not in sources]


@pytest.mark.parametrize("name", NOTIFICATION_BODIES)
def test_every_published_body_is_parsed_and_each_notification_gets_a_delivery(
    name: str,
) -> None:
    raw = (GRAPH / f"{name}.json").read_bytes()
    notifications = parse_notifications(raw)
    receipt = Switchboard().receive(raw, at=0.0)

    # the commsNotification resource pages print one notification, without "value"
    expected = len(published(name).get("value", [None]))
    assert expected == len(notifications) == len(receipt.deliveries)
    if "value" in published(name):  # the resource pages' "String" names no call
        assert all(n.call_id for n in notifications)


# --- 1. resourceUrl without resource, and resource without resourceUrl ---------------------


@pytest.mark.parametrize(
    "name", ["invite-completed-untyped-envelope-2019-10", "invite-completed-resource-2019-09"]
)
def test_an_invite_completes_from_resource_url_alone_or_resource_alone(
    spec: dict[int, Example], name: str
) -> None:
    body = published(name)
    entry = body["value"][0]
    where = entry.get("resource") or entry["resourceUrl"]
    call_id = where.split("/calls/")[1].split("/")[0]
    board = Switchboard()
    invite = invite_on(board, spec, call_id, entry["resourceData"]["clientContext"])

    receipt = board.receive(body, at=1.0)

    assert ["resource" in entry, "resourceUrl" in entry].count(True) == 1
    assert [DeliveryOutcome.applied] == [d.outcome for d in receipt.deliveries]
    assert InviteState.completed == invite.state


def test_a_roster_on_resource_url_alone_is_the_invites_roster(spec: dict[int, Example]) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, "7531d31f-d10d-44de-802f-c569dbca451c", "ctx")

    body = published("invite-roster-resourceurl-v1")  # published with both
    del body["value"][0]["resource"]

    board.receive(body, at=1.0)

    assert invite.roster is not None
    assert NotificationKind.roster == invite.roster.kind
    assert invite.roster.resource.startswith("/communications/calls/7531d31f")


@pytest.mark.anyio
async def test_the_webhook_answers_a_published_call_terminated_with_202_and_fails_the_invite(
    spec: dict[int, Example],
) -> None:
    body = published("invite-call-terminated-2019-10")  # resourceUrl only
    async with graph_client() as http, callflow.Client(http, token="graph-token") as client:
        handle = await client.invite(
            DOCS_CALL, spec[4].request["participants"], client_context="ctx"
        )
        app = callflow.webhook_app(client, app_id="app", verify=False)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bot"
        ) as bot:
            response = await bot.post("/", json=body)
        with pytest.raises(callflow.InviteFailed) as failed:
            await handle.wait()

    assert 202 == response.status_code
    assert FailureReason.call_ended == failed.value.failure.reason
    assert "AppInitiated" == failed.value.failure.termination_reason


# --- 2. replacesCallId as a path -----------------------------------------------------------


def test_a_replaces_call_id_given_as_a_path_is_normalised_and_its_teardown_matches(
    spec: dict[int, Example],
) -> None:
    request = published("invite-request-replacescallid-path-2018")
    completion = published("replace-2018-operation-completed")
    context = completion["value"][0]["resourceData"]["clientContext"]
    board = Switchboard()
    invite = invite_on(board, spec, "90ED37DCD8E34E119DE330A955DDA06F", context, request=request)

    board.receive(completion, at=1.0)
    board.receive(published("replace-2018-original-roster"), at=2.0)
    between = invite.state
    board.receive(published("replace-2018-original-terminated"), at=3.0)

    assert DOCS_CALL == invite.replaces_call_id
    assert DOCS_CALL == invite.request().json["participants"][0]["replacesCallId"]
    assert InviteState.tearing_down_original == between
    assert InviteState.completed == invite.state


# --- 3. resultInfo as the docs print it ----------------------------------------------------


def test_a_failed_invite_with_sub_code_keeps_its_result_info(spec: dict[int, Example]) -> None:
    board = Switchboard()
    invite = invite_on(
        board, spec, "90ED37DCD8E34E119DE330A955DDA06F", "A904FBD5A31041E881E861877A3DE3CD"
    )

    board.receive(published("invite-failed-subcode-2019-09"), at=1.0)

    assert InviteState.failed == invite.state
    assert invite.failure is not None
    assert invite.failure.result_info is not None
    assert (500, 0) == (invite.failure.result_info.code, invite.failure.result_info.subcode)


@pytest.mark.parametrize(
    ("name", "code", "subcode"),
    [
        ("transfer-commsoperation-accepted", 200, "transferring"),
        ("transfer-commsoperation-completed", 200, "transferAccepted"),
        ("record-completed-v1", 200, 8515),
        ("cancelmediaprocessing-v1", 400, 8508),
    ],
)
def test_result_info_codes_are_read_as_numbers_or_kept_as_words(
    name: str, code: int, subcode: int | str
) -> None:
    body = published(name)
    entry = body["value"][0]
    entry["resourceData"]["@odata.type"] = "#microsoft.graph.inviteParticipantsOperation"
    (notification,) = parse_notifications(body)  # read as an invite operation would be

    info = notification.result_info
    assert info is not None
    assert (code, subcode) == (info.code, info.subcode)


# --- 4. why a call ended -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "call_id", "termination_reason", "code"),
    [
        ("call-delete-terminated-reason", DOCS_CALL, "AppInitiated", None),
        ("invite-call-terminated-2019-08", DOCS_CALL, "AppInitiated", None),
        ("call-delete-code-string", "57dab8b1-894c-409a-b240-bd8beae78896", None, 0),
        ("call-delete-resultinfo-beta", "57dab8b1-894c-409a-b240-bd8beae78896", None, 0),
    ],
)
def test_an_invite_failed_by_its_call_ending_keeps_why_the_call_ended(
    spec: dict[int, Example],
    name: str,
    call_id: str,
    termination_reason: str | None,
    code: int | None,
) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, call_id, "ctx", "op")

    board.receive(published(name), at=1.0)

    failure = invite.failure
    assert failure is not None
    assert FailureReason.call_ended == failure.reason
    assert termination_reason == failure.termination_reason
    assert code == (None if failure.result_info is None else failure.result_info.code)
    assert failure == type(failure).from_dict(failure.to_dict())


# --- 5 and 12. other operations on the same call never move an invite ----------------------


def test_an_invite_completion_typed_comms_operation_applies_by_its_operation_id(
    spec: dict[int, Example],
) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, DOCS_CALL, DOCS_CONTEXT, DOCS_OPERATION)

    board.receive(published("invite-completed-commsoperation-2019-08"), at=1.0)

    assert InviteState.completed == invite.state


@pytest.mark.parametrize(
    "name",
    [
        "invite-completed-commsoperation-2019-08",
        "configuremixer-commsoperation",
        "configuremixer-commsoperation-2019-09",
        "transfer-commsoperation-accepted",
        "transfer-commsoperation-completed",
        "playprompt-commsoperation-2018",
        "playprompt-completed-v1",
        "record-completed-v1",
        "cancelmediaprocessing-v1",
        "subscribetotone-v1",
    ],
)
@pytest.mark.parametrize("answered", [True, False], ids=["answered", "unanswered"])
def test_another_operation_with_the_invites_client_context_never_moves_it(
    spec: dict[int, Example], name: str, answered: bool
) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, DOCS_CALL, DOCS_CONTEXT, "another-op" if answered else None)
    before = invite.state

    receipt = board.receive(published(name), at=1.0)

    assert before == invite.state
    assert [] == [d for d in receipt.deliveries if d.invite is invite and d.moved]


# --- 6 and 7. @odata.type without '#', changeType in any case ------------------------------


def test_odata_types_without_hash_are_read_alike(spec: dict[int, Example]) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, DOCS_CALL, DOCS_CONTEXT, DOCS_OPERATION)
    # published with "microsoft.graph.commsNotification(s)"; resourceData's '#' removed here
    body = changed(
        "invite-completed-untyped-envelope-2019-10",
        resourceData={"@odata.type": "microsoft.graph.inviteParticipantsOperation"},
    )

    board.receive(body, at=1.0)

    assert "microsoft.graph.commsNotification" == body["value"][0]["@odata.type"]
    assert InviteState.completed == invite.state


@pytest.mark.parametrize("change_type", ["Deleted", "DELETED", "deleted"])
def test_change_type_is_read_in_any_case(spec: dict[int, Example], change_type: str) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, "57dab8b1-894c-409a-b240-bd8beae78896", "ctx", "op")
    body = changed("call-delete-code-v1", changeType=change_type)  # published "updated"
    body["value"][0]["resourceData"]["state"] = "terminating"  # as published

    (notification,) = parse_notifications(body)
    board.receive(body, at=1.0)

    assert "deleted" == notification.change_type
    assert NotificationKind.call_ended == notification.kind
    assert InviteState.failed == invite.state


def test_a_call_update_as_the_graph_sdk_logs_it_is_read_alike(spec: dict[int, Example]) -> None:
    # quoted from the SDK's log in a bug report: changeType "Updated", state "Established"
    body = published("sdk-log-call-established-issue700")
    call_id = "811f5c00-0e32-48ce-9f27-8d77b9892453"
    board = Switchboard()
    invite = invite_on(board, spec, call_id, "ctx", "op")

    (notification,) = parse_notifications(body)
    (delivery,) = board.receive(body, at=1.0).deliveries

    assert "updated" == notification.change_type
    assert NotificationKind.call_updated == notification.kind
    assert notification.call is not None
    assert "Established" == notification.call.state
    assert DeliveryOutcome.ignored == delivery.outcome
    assert InviteState.running == invite.state


@pytest.mark.parametrize("change_type", ["Updated", "Deleted"])
def test_a_call_terminated_as_the_graph_sdk_logs_it_fails_the_invite(
    spec: dict[int, Example], change_type: str
) -> None:
    # the SDK's log prints "Established" for "established"; "Terminated" is set here, in
    # the same case, on that published body (no SDK log of a terminated call was found)
    body = changed("sdk-log-call-established-issue700", changeType=change_type)
    body["value"][0]["resourceData"]["state"] = "Terminated"
    board = Switchboard()
    invite = invite_on(board, spec, "811f5c00-0e32-48ce-9f27-8d77b9892453", "ctx", "op")

    (notification,) = parse_notifications(body)
    board.receive(body, at=1.0)

    assert NotificationKind.call_ended == notification.kind
    assert invite.failure is not None
    assert FailureReason.call_ended == invite.failure.reason


# --- 8. values callflow does not know ------------------------------------------------------


def test_an_unknown_status_is_unrecognised_and_costs_nothing_else(
    spec: dict[int, Example],
) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, DOCS_CALL, DOCS_CONTEXT, DOCS_OPERATION)
    unknown = changed(
        "invite-completed-untyped-envelope-2019-10", resourceData={"status": "unknownFutureValue"}
    )
    body = {"value": [*unknown["value"], *published("invite-call-terminated-2019-10")["value"]]}

    first, second = board.receive(body, at=1.0).deliveries

    assert DeliveryOutcome.unrecognised == first.outcome
    assert "'unknownFutureValue'" in first.reason
    assert DeliveryOutcome.applied == second.outcome
    assert InviteState.failed == invite.state


def test_an_unknown_call_state_moves_nothing(spec: dict[int, Example]) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, DOCS_CALL, "ctx", "op")
    body = changed("call-delete-code-v1", resourceData={"state": "unknownFutureValue"})
    body["value"][0]["resourceUrl"] = f"/communications/calls/{DOCS_CALL}"

    (delivery,) = board.receive(body, at=1.0).deliveries

    assert DeliveryOutcome.ignored == delivery.outcome
    assert InviteState.running == invite.state


# --- 9. roster order and deltas ------------------------------------------------------------


def _roster(sequence: int, name: str = "mute-roster-beta") -> Body:
    body = copy.deepcopy(published(name))  # rosterSequenceNumber set here (never published)
    for entry in body["value"][0]["resourceData"]:
        entry["rosterSequenceNumber"] = sequence
    return body


def test_an_older_roster_never_overwrites_a_newer_one(spec: dict[int, Example]) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, DOCS_CALL, "ctx", "op")

    board.receive(_roster(7), at=1.0)
    (late,) = board.receive(_roster(3), at=2.0).deliveries

    assert DeliveryOutcome.late == late.outcome
    assert invite.roster is not None
    assert 7 == invite.roster.roster_sequence


def test_a_delta_updates_the_roster_rather_than_replacing_it(spec: dict[int, Example]) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, DOCS_CALL, "ctx", "op")
    whole = _roster(1)
    kept_ids = [e["id"] for e in whole["value"][0]["resourceData"]]
    delta = copy.deepcopy(published("mute-roster-beta"))
    resource = published("deltaparticipants-resource")  # sequenceNumber 1 as published
    resource["sequenceNumber"] = 2
    resource["participants"] = [{**resource["participants"][0], "id": "newcomer"}]
    delta["value"][0]["resourceData"] = resource

    board.receive(whole, at=1.0)
    board.receive(delta, at=2.0)

    assert invite.roster is not None
    assert [*kept_ids, "newcomer"] == [p.id for p in invite.roster.participants]
    assert 2 == invite.roster.roster_sequence


# --- 10. lobby, removal, hidden participants -----------------------------------------------


def roster_of(participants: list[Body], name: str = "mute-roster-beta") -> Body:
    """A published roster body whose entries are ``participants`` (published elsewhere).

    The meeting call events page publishes participants (with ``isInLobby: true`` and
    ``removedState`` values) in ``participants@delta``; the SDK recording publishes the
    participants of a real call. Neither is a commsNotifications body, so their
    participants are placed, as published, in the envelope of a published roster.
    """
    body = copy.deepcopy(published(name))
    body["value"][0]["resourceData"] = copy.deepcopy(participants)
    return body


def delta_of(name: str) -> list[Body]:
    """The ``participants@delta`` of a published meeting call event."""
    participants: list[Body] = published(name)["participants@delta"]
    return participants


def test_a_participant_waiting_in_the_lobby_is_visible_to_the_bot(
    spec: dict[int, Example],
) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, DOCS_CALL, "ctx", "op")
    joined = delta_of("meetingcallevents-roster-joined")  # one in the call, one in the lobby

    board.receive(roster_of(joined), at=1.0)

    assert [p["id"] for p in joined if p["isInLobby"]] == [p.id for p in invite.lobby]
    assert ["a7cc3ddb-a469-410d-8057-44dba3b0c073"] == [p.id for p in invite.lobby]
    assert InviteState.running == invite.state


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("meetingcallevents-roster-exited", "Participant has left the meeting call."),
        (
            "meetingcallevents-roster-inactive",
            "Participant has entered an inactive state in the roster.",
        ),
    ],
)
def test_a_published_removed_state_keeps_its_reason_in_the_roster(
    spec: dict[int, Example], name: str, reason: str
) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, DOCS_CALL, "ctx", "op")
    joined = delta_of("meetingcallevents-roster-joined")
    removed = delta_of(name)

    (delivery,) = board.receive(roster_of([*joined, *removed]), at=1.0).deliveries

    assert DeliveryOutcome.applied == delivery.outcome
    assert invite.roster is not None
    gone = [p for p in invite.roster.participants if p.is_removed]
    assert [removed[0]["id"]] == [p.id for p in gone]
    assert [reason] == [p.removed_state.reason for p in gone if p.removed_state]
    assert ["a7cc3ddb-a469-410d-8057-44dba3b0c073"] == [p.id for p in invite.lobby]


def test_move_meeting_teardown_works_from_a_published_roster_with_removed_state(
    spec: dict[int, Example],
) -> None:
    first = spec[5].request["participants"][0]
    body = copy.deepcopy(published("mute-roster-beta"))
    body["value"][0]["resource"] = f"/app/calls/{first['replacesCallId']}/participants"
    entry = body["value"][0]["resourceData"][0]
    entry["id"] = first["participantId"]
    # the meeting call events page's removedState, as published; the id is the moved one's
    entry["removedState"] = delta_of("meetingcallevents-roster-exited")[0]["removedState"]
    completion = published("invite-completed-v1-2019-11")
    operation = completion["value"][0]["resourceData"]
    board = Switchboard()
    invite = invite_on(
        board, spec, spec[5].call_id, operation["clientContext"], operation["id"], spec[5].request
    )
    board.receive(completion, at=1.0)
    between = invite.state

    board.receive(body, at=2.0)

    assert InviteState.tearing_down_original == between
    assert InviteState.completed == invite.state
    removed = [p for p in invite.roster.participants if p.is_removed] if invite.roster else []
    assert ["Participant has left the meeting call."] == [
        p.removed_state.reason for p in removed if p.removed_state
    ]


def test_participants_recorded_by_the_graph_sdk_make_the_invites_roster(
    spec: dict[int, Example],
) -> None:
    recorded = (GRAPH / "sdk-recorded-participants-2020-09.json").read_text(encoding="utf-8")
    events: list[Body] = json.loads(recorded)  # 21 roster events of one real call
    board = Switchboard()
    invite = invite_on(board, spec, DOCS_CALL, "ctx", "op")
    seen: dict[str, Body] = {}
    rosters: list[list[str | None]] = []

    # the service sends whole rosters; the SDK recorded what each one added and removed
    for at, event in enumerate(events, start=1):
        seen.update((r["Id"], r["Resource"]) for r in event["AddedResources"])
        for removed in event["RemovedResources"]:
            del seen[removed["Id"]]
        (delivery,) = board.receive(roster_of(list(seen.values())), at=float(at)).deliveries
        assert DeliveryOutcome.applied == delivery.outcome
        assert invite.roster is not None
        rosters.append([p.id for p in invite.roster.participants])

    assert 12 == max(len(r) for r in rosters)
    assert list(seen) == rosters[-1]
    assert ["0bdbb057-799f-4a0c-8b0c-aa5976ae3b08", "b47225ef-2772-4508-bd95-e0212c6518ca"] == (
        rosters[-1]
    )
    assert invite.roster is not None
    last = invite.roster.participants
    assert [] == [p.id for p in last if p.info is None or p.info.identity is None]
    assert "microsoft.graph.participant" == (last[0].odata_type or "").lstrip("#")
    assert () == invite.lobby
    assert InviteState.running == invite.state


@pytest.mark.anyio
async def test_a_hidden_participant_completes_and_never_appears_in_the_roster(
    spec: dict[int, Example],
) -> None:
    # hidden: true was never published in a request; it is set here on example 4's
    # participant (invitationParticipantInfo documents it). The completion and the roster
    # are published bodies: the roster lists the call's other participants, not them.
    completion = published("invite-completed-untyped-envelope-2019-10")
    roster = published("mute-roster-beta")
    participant = {**spec[4].request["participants"][0], "hidden": True}
    posted: list[Body] = []

    def graph(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        answer = {**spec[4].response, "id": DOCS_OPERATION, "clientContext": DOCS_CONTEXT}
        return httpx.Response(200, json=answer)

    async with (
        httpx.AsyncClient(
            transport=httpx.MockTransport(graph), base_url="https://graph.microsoft.com/v1.0"
        ) as http,
        callflow.Client(http, token="graph-token") as client,
    ):
        handle = await client.invite(DOCS_CALL, [participant], client_context=DOCS_CONTEXT)
        done = await client.receive_notifications(completion)
        state = await handle.wait()
        (listed,) = (await client.receive_notifications(roster)).deliveries

    invite = done.deliveries[0].invite
    assert invite is not None
    assert [True] == [p["hidden"] for p in posted[0]["participants"]]
    assert InviteState.completed == state
    assert invite is listed.invite
    assert InviteState.completed == invite.state  # the roster moved nothing
    assert invite.roster is not None
    invited = set(participant["identity"]["phone"].values()) - {None}
    on_roster = {
        i
        for p in invite.roster.participants
        if p.info and p.info.identity
        for i in p.info.identity.ids()
    }
    assert invited
    assert set() == invited & on_roster
    assert len(invite.roster.participants) == len(roster["value"][0]["resourceData"])


# --- 11. wrong input types -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [published("invite-completed-resourceurl-v1")["value"], 5, None],
    ids=["parsed list", "number", "None"],
)
def test_wrong_input_types_raise_notification_error_naming_what_was_expected(
    body: Any,
) -> None:
    with pytest.raises(NotificationError, match="expected a commsNotifications body"):
        Switchboard().receive(body)
    with pytest.raises(NotificationError, match="expected a commsNotifications body"):
        parse_notifications(body)


@pytest.fixture
async def client() -> AsyncIterator[callflow.Client]:
    async with graph_client() as http, callflow.Client(http, token="graph-token") as client:
        yield client


@pytest.mark.parametrize("body", [None, 5, []], ids=["None", "number", "list"])
@pytest.mark.anyio
async def test_client_receive_notifications_refuses_wrong_types_clearly(
    client: callflow.Client, body: Any
) -> None:
    with pytest.raises(NotificationError, match="expected a commsNotifications body"):
        await client.receive_notifications(body)
