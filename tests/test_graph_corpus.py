"""callflow against the service's real traffic: bodies published by Microsoft.

Every body here is loaded from ``tests/data/graph/`` (``SOURCES.md`` names where each was
published) and fed through the public API the way a bot does. Where a shape was never
published as a body (``changeType`` in another case, ``unknownFutureValue``,
``rosterSequenceNumber``, ``removedState``), a published body is loaded and that one value
is changed, and the test says so.
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

NOTIFICATION_BODIES = sorted(
    p.stem for p in GRAPH.glob("*.json") if "request" not in p.stem and "resource" != p.stem[-8:]
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


def test_a_participant_waiting_in_the_lobby_is_visible_to_the_bot(
    spec: dict[int, Example],
) -> None:
    board = Switchboard()
    invite = invite_on(board, spec, DOCS_CALL, "ctx", "op")
    body = copy.deepcopy(published("mute-roster-beta"))
    body["value"][0]["resourceData"][0]["isInLobby"] = True  # published false

    board.receive(body, at=1.0)

    assert [body["value"][0]["resourceData"][0]["id"]] == [p.id for p in invite.lobby]
    assert InviteState.running == invite.state


def test_move_meeting_teardown_works_from_a_published_roster_with_removed_state(
    spec: dict[int, Example],
) -> None:
    first = spec[5].request["participants"][0]
    body = copy.deepcopy(published("mute-roster-beta"))
    body["value"][0]["resource"] = f"/app/calls/{first['replacesCallId']}/participants"
    entry = body["value"][0]["resourceData"][0]
    entry["id"] = first["participantId"]
    entry["removedState"] = {"reason": "Participant moved"}  # never published with a value
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
    assert ["Participant moved"] == [p.removed_state.reason for p in removed if p.removed_state]


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
