"""msgraph-sdk-python's models at the edge: a kiota ``Parsable`` becomes the JSON it stands for.

Theory of operation
-------------------
callflow parses Graph JSON in one place (:mod:`callflow._core._models`). A bot written
with msgraph-sdk-python holds kiota model objects instead
(``msgraph.generated.models.invitation_participant_info.InvitationParticipantInfo``).
Such an object is written out with kiota's own JSON writer, so callflow sends the very
body the SDK would have sent, and the resulting mapping goes to the core, which checks
it like any spec-shaped mapping (so its errors name the same JSON paths).

Nothing here imports kiota until a kiota object is given: it is recognised by duck type
(kiota's ``Parsable`` has ``serialize(writer)`` and ``get_field_deserializers()``), and
``kiota_serialization_json`` is imported only then. Participants that are already
:class:`~callflow.InvitationParticipantInfo` objects or dicts pass through untouched, at
the cost of one type check each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol, cast

from ._core._models import InvitationParticipantInfo, type_name
from ._exceptions import InviteError

__all__ = ["KiotaParsable", "from_sdk", "is_kiota_model", "participant_json"]

_PLAIN: Final = (InvitationParticipantInfo, dict)
_ODATA_TYPE: Final = "microsoft.graph.invitationparticipantinfo"
_INSTALL: Final = "pip install msgraph-sdk (or microsoft-kiota-serialization-json)"


class KiotaParsable(Protocol):
    """A kiota model object, as msgraph-sdk-python generates them (``Parsable``)."""

    def serialize(self, writer: Any, /) -> None:
        """Write the object's properties to a kiota ``SerializationWriter``."""

    def get_field_deserializers(self) -> Any:
        """The object's properties, each with the function that reads it."""


def is_kiota_model(value: object) -> bool:
    """Whether ``value`` is a kiota model object (duck-typed; kiota is not imported).

    Args:
        value: anything.

    Returns:
        True when its type has kiota ``Parsable``'s two methods.

    """
    kind = type(value)
    return callable(getattr(kind, "serialize", None)) and callable(
        getattr(kind, "get_field_deserializers", None)
    )


def from_sdk(participants: Any) -> Any:
    """``participants`` with every kiota ``InvitationParticipantInfo`` turned into its JSON.

    Anything else is left for the core to check, so ``participants`` comes back as given
    (the same object) unless a kiota model was in it.

    Args:
        participants: what ``callflow.Invite`` or ``Client.invite`` was given.

    Returns:
        ``participants`` itself, or a list with each kiota model replaced by a mapping
        shaped like the spec's request.

    Raises:
        InviteError: ``participants`` is a kiota model or not iterable; a kiota model
            in it is not an ``InvitationParticipantInfo``, cannot be serialised, or
            kiota's JSON serialiser is not installed.

    """
    if type(participants) is list or type(participants) is tuple:
        for item in participants:
            if not isinstance(item, _PLAIN):
                break
        else:
            return participants  # the common case: nothing to convert
    if isinstance(participants, (str, bytes, Mapping)):
        return participants  # the core says what is wrong with it
    if is_kiota_model(participants):
        hint = " (pass its .participants)" if hasattr(participants, "participants") else ""
        raise InviteError(
            f"participants: expected a sequence of participants, got a kiota "
            f"{type(participants).__name__}{hint}"
        )
    if not isinstance(participants, Iterable):
        raise InviteError(
            f"participants: expected a sequence of participants, got {type_name(participants)}"
        )
    items = list(participants)
    if not any(is_kiota_model(item) for item in items):
        return items
    return [
        participant_json(item, f"participants[{i}]") if is_kiota_model(item) else item
        for i, item in enumerate(items)
    ]


def participant_json(value: KiotaParsable, path: str) -> dict[str, Any]:
    """A kiota ``InvitationParticipantInfo`` as the JSON object kiota's writer makes of it.

    Args:
        value: a kiota model object.
        path: where it is, for error messages (``participants[0]``).

    Returns:
        The JSON object, e.g. ``{"identity": {"user": {"id": ...}}, "replacesCallId": ...}``.

    Raises:
        InviteError: kiota's JSON serialiser is not installed; the object cannot be
            serialised; it is not an ``InvitationParticipantInfo``.

    """
    name = type(value).__name__
    try:
        # Imported here, not above: only a bot that hands callflow a kiota model has kiota.
        from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
    except ImportError:
        raise InviteError(
            f"{path}: {name} is a kiota model; reading it needs kiota's JSON serialiser: {_INSTALL}"
        ) from None
    writer = JsonSerializationWriter()
    try:
        writer.write_object_value(None, cast(Any, value))  # a Parsable by duck type
        data = json.loads(writer.get_serialized_content())
    except (TypeError, ValueError) as exc:
        raise InviteError(f"{path}: kiota could not serialise the {name}: {exc}") from None
    if not isinstance(data, dict):
        raise InviteError(f"{path}: the {name} serialised to {type_name(data)}, not an object")
    odata_type = data.get("@odata.type")
    if odata_type is not None:
        if not isinstance(odata_type, str) or odata_type.lstrip("#").lower() != _ODATA_TYPE:
            raise InviteError(
                f"{path}: a kiota {name} of @odata.type {odata_type!r} is not an "
                f"InvitationParticipantInfo"
            )
    elif not any(k.__name__ == "InvitationParticipantInfo" for k in type(value).__mro__):
        raise InviteError(
            f"{path}: a kiota {name} is not an InvitationParticipantInfo "
            "(msgraph.generated.models.invitation_participant_info)"
        )
    return data
