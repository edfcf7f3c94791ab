"""msgraph-sdk-python's kiota models are accepted wherever participants are.

The models are written with the real kiota packages (see ``interop_support``); kiota's own
JSON writer serialises them, and kiota's own JSON parser builds them from the spec's JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory

import callflow
from callflow import InviteError, InviteKind
from callflow.testing import FakeGraph
from interop_support import (
    CommunicationsIdentitySet,
    Identity,
    IdentitySet,
    InvitationParticipantInfo,
    InvitePostRequestBody,
)
from spec_examples import Example, examples

EXAMPLES = sorted(examples())


def sdk_participants(example: Example) -> list[InvitationParticipantInfo]:
    """The spec request's participants, read into kiota models by kiota's JSON parser."""
    content = json.dumps(example.request["participants"]).encode()
    root = JsonParseNodeFactory().get_root_parse_node("application/json", content)
    models = root.get_collection_of_object_values(InvitationParticipantInfo)
    assert models is not None
    return models


def the_move() -> tuple[Example, dict[str, Any]]:
    example = examples()[5]
    return example, example.request["participants"][0]


def outcome(example: Example, participants: Any) -> Any:
    """The request an invite would send, or the error that refuses it."""
    try:
        invite = callflow.Invite(
            example.call_id, participants, client_context=example.request["clientContext"]
        )
    except InviteError as exc:
        return f"InviteError: {exc}"
    return invite.kind, invite.request().json


@pytest.mark.parametrize("number", EXAMPLES)
def test_an_sdk_participant_is_read_as_its_json_is(number: int) -> None:
    example = examples()[number]

    from_json = outcome(example, example.request["participants"])
    from_sdk = outcome(example, sdk_participants(example))

    assert from_json == from_sdk


@pytest.mark.parametrize("number", [n for n in EXAMPLES if n != 2])
def test_an_sdk_participant_is_sent_as_the_spec_request(number: int) -> None:
    example = examples()[number]

    invite = callflow.Invite(
        example.call_id,
        sdk_participants(example),
        client_context=example.request["clientContext"],
    )

    assert example.request == invite.request().json


def test_sdk_participants_replacing_a_call_are_refused_as_their_json_is() -> None:
    example = examples()[2]  # two participants with replacesCallId: Graph reads only the first

    with pytest.raises(InviteError, match="replacesCallId is set and 2 participants"):
        callflow.Invite(example.call_id, sdk_participants(example))


def test_a_move_built_in_code_carries_replaces_call_id_and_participant_id() -> None:
    example, spec = the_move()
    participant = InvitationParticipantInfo(
        replaces_call_id=spec["replacesCallId"],
        participant_id=spec["participantId"],
        identity=IdentitySet(user=Identity(id=spec["identity"]["user"]["id"])),
    )

    invite = callflow.Invite(example.call_id, [participant])

    assert InviteKind.move_meeting == invite.kind
    assert spec["replacesCallId"] == invite.replaces_call_id
    assert spec["participantId"] == invite.participant_id


def test_a_phone_identity_in_a_communications_identity_set_is_a_phone() -> None:
    spec = examples()[4].request["participants"][0]
    number = spec["identity"]["phone"]["id"]
    participant = InvitationParticipantInfo(
        identity=CommunicationsIdentitySet(phone=Identity(id=number))
    )

    invite = callflow.Invite(examples()[4].call_id, [participant])

    identity = invite.participants[0].identity
    assert identity is not None
    assert identity.phone is not None
    assert number == identity.phone.id


def test_a_phone_identity_in_additional_data_is_a_phone() -> None:
    spec = examples()[4].request["participants"][0]
    participant = InvitationParticipantInfo(
        identity=IdentitySet(additional_data={"phone": spec["identity"]["phone"]})
    )

    invite = callflow.Invite(examples()[4].call_id, [participant])

    assert [{"identity": {"phone": spec["identity"]["phone"]}}] == invite.request().json[
        "participants"
    ]


def test_an_sdk_phone_number_not_in_e164_is_refused_with_its_path() -> None:
    participant = InvitationParticipantInfo(
        identity=CommunicationsIdentitySet(phone=Identity(id="12345678901"))
    )

    with pytest.raises(InviteError, match=r"participants\[0\]\.identity\.phone"):
        callflow.Invite(examples()[4].call_id, [participant])


def test_sdk_models_and_mappings_mix_in_one_invite() -> None:
    phone = examples()[4]
    user = {"identity": examples()[1].request["participants"][0]["identity"]}
    kiota = sdk_participants(phone)[0]

    invite = callflow.Invite(phone.call_id, [user, kiota])

    assert InviteKind.invite == invite.kind
    assert [user, *phone.request["participants"]] == invite.request().json["participants"]


def test_a_kiota_model_that_is_not_a_participant_is_refused() -> None:
    with pytest.raises(InviteError, match=r"participants\[1\]: a kiota Identity is not an "):
        callflow.Invite("call", [{"identity": {"user": {"id": "a"}}}, Identity(id="b")])


def test_a_participant_of_another_odata_type_is_refused() -> None:
    participant = InvitationParticipantInfo(
        odata_type="#microsoft.graph.participantInfo",
        identity=IdentitySet(user=Identity(id="a")),
    )

    with pytest.raises(InviteError, match=r"@odata.type '#microsoft.graph.participantInfo'"):
        callflow.Invite("call", [participant])


def test_a_kiota_model_given_as_the_participants_is_refused() -> None:
    with pytest.raises(InviteError, match="expected a sequence of participants, got a kiota"):
        callflow.Invite("call", IdentitySet(user=Identity(id="a")))  # type: ignore[arg-type]


def test_an_sdk_request_body_given_as_the_participants_says_to_pass_its_participants() -> None:
    example = examples()[4]
    body = InvitePostRequestBody(participants=sdk_participants(example))

    with pytest.raises(InviteError, match=r"got a kiota InvitePostRequestBody \(pass its"):
        callflow.Invite(example.call_id, body)  # type: ignore[arg-type]


def test_a_model_kiota_cannot_serialise_is_refused_with_kiotas_reason() -> None:
    participant = InvitationParticipantInfo(
        identity=IdentitySet(user=Identity(id="a")), additional_data={"when": object()}
    )

    with pytest.raises(InviteError, match=r"participants\[0\]: kiota could not serialise"):
        callflow.Invite("call", [participant])


def test_without_kiotas_json_serialiser_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("kiota_serialization_json", "kiota_serialization_json.json_serialization_writer"):
        monkeypatch.setitem(sys.modules, name, None)
    participant = InvitationParticipantInfo(identity=IdentitySet(user=Identity(id="a")))

    with pytest.raises(InviteError, match=r"participants\[0\]: .*pip install msgraph-sdk"):
        callflow.Invite("call", [participant])


def test_plain_participants_never_import_kiota() -> None:
    script = textwrap.dedent(
        """
        import sys, callflow
        callflow.Invite("call", [{"identity": {"user": {"id": "a"}}}])
        callflow.Client(token="t")
        print(sorted(m for m in sys.modules if m.startswith("kiota")))
        """
    )

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )

    assert "[]" == done.stdout.strip()


@pytest.mark.anyio
async def test_client_invite_posts_an_sdk_participant_as_the_spec_request(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    example = examples()[4]

    handle = await callflow_client.invite(
        example.call_id,
        sdk_participants(example),
        client_context=example.request["clientContext"],
    )

    assert callflow.InviteState.completed == await handle.wait()
    assert [example.request] == [r.body for r in fake_graph.requests]


@pytest.mark.anyio
async def test_client_invite_refuses_a_kiota_non_participant_before_sending(
    callflow_client: callflow.Client, fake_graph: FakeGraph
) -> None:
    with pytest.raises(InviteError, match="is not an InvitationParticipantInfo"):
        await callflow_client.invite("call", [IdentitySet(user=Identity(id="a"))])

    assert [] == fake_graph.requests
