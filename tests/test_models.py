"""Graph models: every JSON object of the spec survives from_json -> to_json unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from callflow import (
    Identity,
    IdentitySet,
    InvitationParticipantInfo,
    InviteParticipantsOperation,
    MediaStream,
    NotificationError,
    OperationStatus,
    Participant,
    ParticipantInfo,
    RemovedState,
    ResultInfo,
)
from callflow._core._models import GraphObject
from spec_examples import Example, all_json_objects

_ANNOTATION = "#page.annotation"  # the .md revision's page metadata, not Graph JSON
GRAPH_JSON = [o for o in all_json_objects() if o.get("type") != _ANNOTATION]


def _resource_data(data: Any) -> Any:
    if isinstance(data, list):
        return [Participant.from_json(p).to_json() for p in data]
    return InviteParticipantsOperation.from_json(data).to_json()


def through_models(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` rebuilt with each Graph thing in it converted by its model and back."""
    if "value" in obj:  # a commsNotifications body
        value = [{**n, "resourceData": _resource_data(n["resourceData"])} for n in obj["value"]]
        return {**obj, "value": value}
    if obj.get("@odata.type") == "#microsoft.graph.inviteParticipantsOperation":
        return InviteParticipantsOperation.from_json(obj).to_json()
    if set(obj) == {"participants", "clientContext"}:  # a request body
        participants = [
            InvitationParticipantInfo.from_json(p).to_json() for p in obj["participants"]
        ]
        return {**obj, "participants": participants}
    raise AssertionError(f"not a spec object this test knows: {sorted(obj)}")


def test_the_spec_has_json_in_both_revisions() -> None:
    # four blocks per example: five examples in the .txt revision, four in the .md
    assert 4 * (5 + 4) == len(GRAPH_JSON)


def test_only_the_page_annotation_is_left_out_of_the_round_trips() -> None:
    left_out = [o for o in all_json_objects() if o not in GRAPH_JSON]

    assert [_ANNOTATION] == [o["type"] for o in left_out]


@pytest.mark.parametrize("obj", GRAPH_JSON, ids=[f"object{i}" for i in range(len(GRAPH_JSON))])
def test_every_spec_object_round_trips_through_its_models(obj: dict[str, Any]) -> None:
    assert obj == through_models(obj)


def test_the_round_trip_goes_through_typed_models(spec: dict[int, Example]) -> None:
    response = spec[4].response

    op = InviteParticipantsOperation.from_json(response)

    assert op.participants is not None
    assert (response["id"], IdentitySet.from_json(response["participants"][0]["identity"])) == (
        op.id,
        op.participants[0].identity,
    )


def test_unknown_properties_are_kept_and_written_back() -> None:
    data = {"id": "p1", "futureProperty": {"nested": [1, None, "x"]}, "isMuted": True}

    participant = Participant.from_json(data)

    assert ({"futureProperty": {"nested": [1, None, "x"]}}, data) == (
        dict(participant.extra),
        participant.to_json(),
    )


def test_explicit_nulls_are_written_back(spec: dict[int, Example]) -> None:
    response = spec[1].response
    assert response["resultInfo"] is None

    op = InviteParticipantsOperation.from_json(response)

    assert (None, True, None) == (
        op.result_info,
        "resultInfo" in op.to_json(),
        op.to_json()["resultInfo"],
    )


def test_absent_properties_stay_absent() -> None:
    assert {} == Identity.from_json({}).to_json()


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (Identity(id="x"), {"@odata.type": "#microsoft.graph.identity", "id": "x"}),
        (ResultInfo(code=1), {"@odata.type": "#microsoft.graph.resultInfo", "code": 1}),
        (RemovedState(reason="r"), {"@odata.type": "#microsoft.graph.removedState", "reason": "r"}),
        (
            MediaStream(media_type="audio"),
            {"@odata.type": "#microsoft.graph.mediaStream", "mediaType": "audio"},
        ),
    ],
)
def test_objects_built_in_code_carry_their_canonical_odata_type(
    model: GraphObject, expected: dict[str, Any]
) -> None:
    assert expected == model.to_json()


def test_the_status_text_is_kept_as_it_came(spec: dict[int, Example]) -> None:
    assert "Running" == InviteParticipantsOperation.from_json(spec[1].response).status


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("response", OperationStatus.running),  # "Running"
        ("completed", OperationStatus.completed),  # "completed"
    ],
)
def test_operation_status_is_read_case_insensitively(
    spec: dict[int, Example], where: str, expected: OperationStatus
) -> None:
    example = spec[1]
    data = (
        example.response if where == "response" else example.completed["value"][0]["resourceData"]
    )

    assert expected == InviteParticipantsOperation.from_json(data).operation_status


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NOTSTARTED", OperationStatus.not_started),
        ("notStarted", OperationStatus.not_started),
        ("Failed", OperationStatus.failed),
        ("finished", None),
    ],
)
def test_operation_status_parse(text: str, expected: OperationStatus | None) -> None:
    assert expected == OperationStatus.parse(text)


@pytest.mark.parametrize(
    ("model", "data", "path", "reason"),
    [
        (InviteParticipantsOperation, [], "$", "expected an object, got array"),
        (InviteParticipantsOperation, {"status": 1}, "$.status", "expected a string, got number"),
        (InviteParticipantsOperation, {"id": False}, "$.id", "expected a string, got boolean"),
        (
            InviteParticipantsOperation,
            {"participants": {}},
            "$.participants",
            "expected an array, got object",
        ),
        (
            InviteParticipantsOperation,
            {"participants": [{"identity": {"user": {"id": 5}}}]},
            "$.participants[0].identity.user.id",
            "expected a string, got number",
        ),
        (
            InviteParticipantsOperation,
            {"resultInfo": {"code": [403]}},
            "$.resultInfo.code",
            "expected an integer or a string, got array",
        ),
        (
            ResultInfo,
            {"subcode": True},
            "$.subcode",
            "expected an integer or a string, got boolean",
        ),
        (ResultInfo, {"code": 4.5}, "$.code", "expected an integer or a string, got number"),
        (Participant, {"isMuted": "no"}, "$.isMuted", "expected a boolean, got string"),
        (Participant, {"mediaStreams": [1]}, "$.mediaStreams[0]", "expected an object, got number"),
        (Participant, {"removedState": "gone"}, "$.removedState", "expected an object, got string"),
        (ParticipantInfo, {"identity": []}, "$.identity", "expected an object, got array"),
        (IdentitySet, {"phone": {"id": None, "tenantId": 7}}, "$.phone.tenantId", "got number"),
        (
            InvitationParticipantInfo,
            {"@odata.type": 1},
            "$.@odata.type",
            "expected a string, got number",
        ),
    ],
)
def test_wrong_types_raise_notification_error_with_the_json_path(
    model: type[GraphObject], data: Any, path: str, reason: str
) -> None:
    with pytest.raises(NotificationError) as caught:
        model.from_json(data)

    assert (path, True, True) == (
        caught.value.path,
        reason in caught.value.reason,
        str(caught.value).startswith(f"{path}: "),
    )


def test_the_json_path_starts_where_the_object_sits() -> None:
    with pytest.raises(NotificationError) as caught:
        Participant.from_json({"isInLobby": 0}, "$.value[2].resourceData[1]")

    assert "$.value[2].resourceData[1].isInLobby" == caught.value.path


def test_notification_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected an object"):
        Identity.from_json("x")


def test_identity_set_ids_are_every_identity_id(spec: dict[int, Example]) -> None:
    identity = spec[5].response["participants"][0]["identity"]

    assert frozenset({identity["user"]["id"]}) == IdentitySet.from_json(identity).ids()


@pytest.mark.parametrize(("removed", "expected"), [({"reason": "x"}, True), (None, False)])
def test_a_participant_with_a_removed_state_is_removed(
    removed: dict[str, Any] | None, expected: bool
) -> None:
    assert expected == Participant.from_json({"id": "p", "removedState": removed}).is_removed
