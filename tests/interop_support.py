"""Kiota models shaped like msgraph-sdk-python's, built on the real kiota packages.

msgraph-sdk is a 29 MB wheel that unpacks to about 390 MB and took 73 s to install here,
so the test group carries only ``microsoft-kiota-abstractions`` and
``microsoft-kiota-serialization-json``; the models below are written with them the way
msgraph-sdk's generated ``msgraph.generated.models`` are: dataclasses on kiota's
``AdditionalDataHolder`` and ``Parsable``, each property written by its own
``write_*_value`` call, unknown properties in ``additional_data``, and
``CommunicationsIdentitySet`` (the one with ``phone``) a subclass chosen by
``@odata.type``.

``CALLFLOW_KIOTA_MODELS=msgraph`` makes the tests use msgraph-sdk's own classes instead
(where msgraph-sdk is installed).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiota_abstractions.serialization import (
    AdditionalDataHolder,
    Parsable,
    ParseNode,
    SerializationWriter,
)

Fields = dict[str, Callable[[ParseNode], None]]


@dataclass
class Identity(AdditionalDataHolder, Parsable):
    """``microsoft.graph.identity``."""

    additional_data: dict[str, Any] = field(default_factory=dict)
    display_name: str | None = None
    id: str | None = None
    odata_type: str | None = None

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> Identity:
        return Identity()

    def get_field_deserializers(self) -> Fields:
        return {
            "displayName": lambda n: setattr(self, "display_name", n.get_str_value()),
            "id": lambda n: setattr(self, "id", n.get_str_value()),
            "@odata.type": lambda n: setattr(self, "odata_type", n.get_str_value()),
        }

    def serialize(self, writer: SerializationWriter) -> None:
        writer.write_str_value("displayName", self.display_name)
        writer.write_str_value("id", self.id)
        writer.write_str_value("@odata.type", self.odata_type)
        writer.write_additional_data_value(self.additional_data)


@dataclass
class IdentitySet(AdditionalDataHolder, Parsable):
    """``microsoft.graph.identitySet``: application, device, user."""

    additional_data: dict[str, Any] = field(default_factory=dict)
    application: Identity | None = None
    device: Identity | None = None
    odata_type: str | None = None
    user: Identity | None = None

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> IdentitySet:
        child = parse_node.get_child_node("@odata.type")
        odata_type = child.get_str_value() if child else None
        if odata_type and odata_type.casefold() == CommunicationsIdentitySet.ODATA.casefold():
            return CommunicationsIdentitySet()
        return IdentitySet()

    def get_field_deserializers(self) -> Fields:
        return {
            "application": lambda n: setattr(self, "application", n.get_object_value(Identity)),
            "device": lambda n: setattr(self, "device", n.get_object_value(Identity)),
            "@odata.type": lambda n: setattr(self, "odata_type", n.get_str_value()),
            "user": lambda n: setattr(self, "user", n.get_object_value(Identity)),
        }

    def serialize(self, writer: SerializationWriter) -> None:
        writer.write_object_value("application", self.application)
        writer.write_object_value("device", self.device)
        writer.write_str_value("@odata.type", self.odata_type)
        writer.write_object_value("user", self.user)
        writer.write_additional_data_value(self.additional_data)


@dataclass
class CommunicationsIdentitySet(IdentitySet):
    """``microsoft.graph.communicationsIdentitySet``: an identity set with ``phone``."""

    ODATA = "#microsoft.graph.communicationsIdentitySet"
    odata_type: str | None = ODATA
    phone: Identity | None = None

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> CommunicationsIdentitySet:
        return CommunicationsIdentitySet()

    def get_field_deserializers(self) -> Fields:
        phone = {"phone": lambda n: setattr(self, "phone", n.get_object_value(Identity))}
        return {**super().get_field_deserializers(), **phone}

    def serialize(self, writer: SerializationWriter) -> None:
        super().serialize(writer)
        writer.write_object_value("phone", self.phone)


@dataclass
class InvitationParticipantInfo(AdditionalDataHolder, Parsable):
    """``microsoft.graph.invitationParticipantInfo``."""

    additional_data: dict[str, Any] = field(default_factory=dict)
    hidden: bool | None = None
    identity: IdentitySet | None = None
    odata_type: str | None = None
    participant_id: str | None = None
    remove_from_default_audio_routing_group: bool | None = None
    replaces_call_id: str | None = None

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> InvitationParticipantInfo:
        return InvitationParticipantInfo()

    def get_field_deserializers(self) -> Fields:
        routing = "remove_from_default_audio_routing_group"
        return {
            "hidden": lambda n: setattr(self, "hidden", n.get_bool_value()),
            "identity": lambda n: setattr(self, "identity", n.get_object_value(IdentitySet)),
            "@odata.type": lambda n: setattr(self, "odata_type", n.get_str_value()),
            "participantId": lambda n: setattr(self, "participant_id", n.get_str_value()),
            "removeFromDefaultAudioRoutingGroup": lambda n: setattr(
                self, routing, n.get_bool_value()
            ),
            "replacesCallId": lambda n: setattr(self, "replaces_call_id", n.get_str_value()),
        }

    def serialize(self, writer: SerializationWriter) -> None:
        writer.write_bool_value("hidden", self.hidden)
        writer.write_object_value("identity", self.identity)
        writer.write_str_value("@odata.type", self.odata_type)
        writer.write_str_value("participantId", self.participant_id)
        writer.write_bool_value(
            "removeFromDefaultAudioRoutingGroup", self.remove_from_default_audio_routing_group
        )
        writer.write_str_value("replacesCallId", self.replaces_call_id)
        writer.write_additional_data_value(self.additional_data)


@dataclass
class InvitePostRequestBody(AdditionalDataHolder, Parsable):
    """The body of ``participants.invite.post``: participants and clientContext."""

    additional_data: dict[str, Any] = field(default_factory=dict)
    client_context: str | None = None
    participants: list[InvitationParticipantInfo] | None = None

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> InvitePostRequestBody:
        return InvitePostRequestBody()

    def get_field_deserializers(self) -> Fields:
        return {
            "clientContext": lambda n: setattr(self, "client_context", n.get_str_value()),
            "participants": lambda n: setattr(
                self, "participants", n.get_collection_of_object_values(InvitationParticipantInfo)
            ),
        }

    def serialize(self, writer: SerializationWriter) -> None:
        writer.write_str_value("clientContext", self.client_context)
        writer.write_collection_of_object_values("participants", self.participants)
        writer.write_additional_data_value(self.additional_data)


#: Where msgraph-sdk keeps each of these classes, for ``CALLFLOW_KIOTA_MODELS=msgraph``.
MSGRAPH = {
    "Identity": "models.identity",
    "IdentitySet": "models.identity_set",
    "CommunicationsIdentitySet": "models.communications_identity_set",
    "InvitationParticipantInfo": "models.invitation_participant_info",
    "InvitePostRequestBody": (
        "communications.calls.item.participants.invite.invite_post_request_body"
    ),
}

if os.environ.get("CALLFLOW_KIOTA_MODELS") == "msgraph":  # run by hand where msgraph-sdk is
    for _name, _module in MSGRAPH.items():
        globals()[_name] = getattr(importlib.import_module(f"msgraph.generated.{_module}"), _name)
