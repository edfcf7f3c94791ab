"""The JSON the fake calls service sends, shaped like the spec's.

Theory of operation
-------------------
Pure functions from an operation (:class:`Operation`) to Graph's JSON: the answer to the
invite POST and each ``commsNotifications`` body. Nothing here keeps state, waits or
sends; :class:`~callflow.testing.FakeGraph` decides what to send when.

The shapes follow the spec (``participant-invite``), with what it shows varying between
examples made a choice:

* the answer echoes each participant with every identity kind listed, unset ones as
  ``null`` (as example 4 prints), and ``endpointType`` and ``replacesCallId`` ``null``
  when not given;
* each invited participant has a participant id (:attr:`Operation.participant_ids`): the
  answer's ``participants[].id`` and the roster entry's ``id`` carry it, and it is the
  ``{participantId}`` of ``DELETE /communications/calls/{id}/participants/{participantId}``.
  The docs print ``"id": null`` in every example (their answers and rosters are
  "shortened for readability"); :class:`~callflow.testing.Quirks` ``null_participant_ids``
  sends exactly that;
* notifications carry identity sets re-serialized by the service: typed
  (``#microsoft.graph.identitySet``) and holding only the identities that are set;
* each notification is a body of its own, as the spec prints them;
* roster entries have ``"id": null`` as the spec prints them, except on the source
  meeting of a move, where the moved participant is named by its ``participantId``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from ._script import Quirks

__all__ = [
    "Operation",
    "IDENTITY_KEYS",
    "response_body",
    "error_body",
    "operation_notification",
    "roster_notification",
    "call_state_notification",
    "call_terminated_notification",
    "call_deleted_notification",
    "participant_removed_notification",
    "source_roster_notification",
    "envelope",
]

#: The identity kinds of an identitySet, in the order example 4's answer lists them.
IDENTITY_KEYS: Final = (
    "user",
    "guest",
    "encrypted",
    "onPremises",
    "applicationInstance",
    "application",
    "device",
    "phone",
)

_OPERATION: Final = "#microsoft.graph.inviteParticipantsOperation"
_JSON = dict[str, Any]


def _participants(value: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    return tuple(value)


def _ids(value: Sequence[str | None]) -> tuple[str | None, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Operation:
    """One invite the fake service took (or one a step-through test makes up).

    Attributes:
        id: the operation's id.
        call_id: the call invited into.
        client_context: the request's clientContext (None when it had none).
        participants: the request's participants, as sent.
        kind: ``invite``, ``replace_p2p`` or ``move_meeting`` (read off the first
            participant, as the service does).
        replaces_call_id: the first participant's replacesCallId, if any.
        participant_id: the first participant's participantId (a move), if any.
        taken_at: when the service took it, on the fake's clock.
        participant_ids: the id the service gave each invited participant, in order
            (None where it gave none).

    """

    id: str
    call_id: str
    client_context: str | None = None
    participants: tuple[Mapping[str, Any], ...] = attrs.field(converter=_participants)
    kind: str = "invite"
    replaces_call_id: str | None = None
    participant_id: str | None = None
    taken_at: float = 0.0
    participant_ids: tuple[str | None, ...] = attrs.field(default=(), converter=_ids)

    def participant_id_of(self, index: int, quirks: Quirks | None = None) -> str | None:
        """The id of the ``index``-th participant as the wire shows it (None if none)."""
        if (quirks is not None and quirks.null_participant_ids) or index >= len(
            self.participant_ids
        ):
            return None
        return self.participant_ids[index]


def _calls(prefix: str, call_id: str, rest: str = "") -> str:
    return f"{prefix}/calls/{call_id}" + (f"/{rest}" if rest else "")


def _leaves(identity: Any) -> dict[str, Any]:
    if not isinstance(identity, Mapping):
        return {}
    # Most kinds are absent or null: test for None before the (slower) ABC check.
    return {
        k: dict(v)
        for k in IDENTITY_KEYS
        if (v := identity.get(k)) is not None and isinstance(v, Mapping)
    }


def _typed_identity(identity: Any) -> _JSON:
    """An identitySet as notifications carry it: typed, only the identities set."""
    return {"@odata.type": "#microsoft.graph.identitySet", **_leaves(identity)}


def _answered_identity(identity: Any) -> _JSON:
    """An identitySet as the answer carries it: every kind, unset ones null."""
    leaves = _leaves(identity)
    return {key: leaves.get(key) for key in IDENTITY_KEYS}


def _echo(participant: Mapping[str, Any], participant_id: str | None) -> _JSON:
    echoed: _JSON = {
        "endpointType": participant.get("endpointType"),
        "id": participant_id,
        "replacesCallId": participant.get("replacesCallId"),
    }
    if participant.get("participantId") is not None:
        echoed["participantId"] = participant["participantId"]
    echoed["identity"] = _answered_identity(participant.get("identity"))
    return echoed


def response_body(op: Operation, quirks: Quirks | None = None) -> _JSON:
    """The 200 answer to the invite POST: the operation, status ``Running``.

    Args:
        op: the operation.
        quirks: which of the spec's oddities to reproduce (default: none).

    """
    return {
        "@odata.type": _OPERATION,
        "id": op.id,
        "status": "Running",
        "clientContext": op.client_context,
        "resultInfo": None,
        "participants": [
            _echo(p, op.participant_id_of(i, quirks)) for i, p in enumerate(op.participants)
        ],
    }


def error_body(code: str, message: str) -> _JSON:
    """Graph's error body: ``{"error": {"code": ..., "message": ...}}``."""
    return {"error": {"code": code, "message": message}}


def envelope(notification: Mapping[str, Any]) -> _JSON:
    """One notification as a ``commsNotifications`` webhook body."""
    return {"@odata.type": "#microsoft.graph.commsNotifications", "value": [dict(notification)]}


def _notification(change: str, resource: str, url: str, data: Any) -> _JSON:
    return envelope(
        {
            "@odata.type": "#microsoft.graph.commsNotification",
            "changeType": change,
            "resource": resource,
            "resourceUrl": url,
            "resourceData": data,
        }
    )


def operation_notification(
    op: Operation, quirks: Quirks | None = None, *, result_info: Mapping[str, Any] | None = None
) -> _JSON:
    """The operation's end: ``deleted`` on its resource, status completed (or failed).

    Args:
        op: the operation.
        quirks: which of the spec's oddities to reproduce (default: none).
        result_info: the ``resultInfo`` of a failed operation (``code``, ``subcode``,
            ``message``); None for a completed one.

    Returns:
        A ``commsNotifications`` webhook body.

    """
    quirks = quirks or Quirks()
    rest = "operations/participants" if quirks.null_operation_id else f"operations/{op.id}"
    data: _JSON = {
        "@odata.type": _OPERATION,
        "participants": [
            {
                "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                "identity": _typed_identity(p.get("identity")),
            }
            for p in op.participants
        ],
        "status": "completed" if result_info is None else "failed",
        "clientContext": op.client_context,
        "id": None if quirks.null_operation_id else op.id,
    }
    if result_info is not None:
        data["resultInfo"] = {"@odata.type": "#microsoft.graph.resultInfo", **result_info}
    return _notification(
        "deleted",
        _calls(quirks.operation_prefix, op.call_id, rest),
        _calls("/communications", op.call_id, rest),
        data,
    )


def _roster_entry(
    participant: Mapping[str, Any], source_id: int, participant_id: str | None = None
) -> _JSON:
    return {
        "@odata.type": "#microsoft.graph.participant",
        "info": {
            "@odata.type": "#microsoft.graph.participantInfo",
            "identity": _typed_identity(participant.get("identity")),
            "endpointType": "default",
        },
        "mediaStreams": [
            {
                "@odata.type": "#microsoft.graph.mediaStream",
                "mediaType": "audio",
                "sourceId": str(source_id),
                "direction": "sendReceive",
                "serverMuted": False,
            }
        ],
        "isMuted": False,
        "isInLobby": False,
        "id": participant_id,
    }


def roster_notification(op: Operation, quirks: Quirks | None = None) -> _JSON:
    """The roster update with the invited participants added (``hidden`` ones left out).

    Args:
        op: the operation whose participants joined.
        quirks: which of the spec's oddities to reproduce (default: none).

    Returns:
        A ``commsNotifications`` webhook body.

    """
    quirks = quirks or Quirks()
    call_id = op.call_id
    if quirks.roster_on_replaced_call and op.replaces_call_id:
        call_id = op.replaces_call_id
    rest = "operations/participants" if quirks.null_operation_id else "participants"
    return _notification(
        "updated",
        _calls(quirks.roster_prefix, call_id, rest),
        _calls("/communications", call_id, rest),
        [
            _roster_entry(p, i + 1, op.participant_id_of(i, quirks))
            for i, p in enumerate(op.participants)
            if not p.get("hidden")  # the service never lists a hidden participant
        ],
    )


def _call(call_id: str, state: str = "terminated") -> _JSON:
    return {"@odata.type": "#microsoft.graph.call", "id": call_id, "state": state}


def call_state_notification(call_id: str, state: str, quirks: Quirks | None = None) -> _JSON:
    """A call updated with a new ``state`` (``established``, ``terminated``, ...).

    Args:
        call_id: the call.
        state: the call's state, in Graph's words.
        quirks: which of the spec's oddities to reproduce (default: none).

    Returns:
        A ``commsNotifications`` webhook body.

    """
    return _notification(
        "updated",
        _calls((quirks or Quirks()).operation_prefix, call_id),
        _calls("/communications", call_id),
        _call(call_id, state),
    )


def call_terminated_notification(call_id: str, quirks: Quirks | None = None) -> _JSON:
    """A call updated with state terminated (the original call of a replace_p2p)."""
    return call_state_notification(call_id, "terminated", quirks)


def call_deleted_notification(call_id: str) -> _JSON:
    """A call deleted: ``deleted`` on ``/communications/calls/{id}``."""
    resource = _calls("/communications", call_id)
    return _notification("deleted", resource, resource, _call(call_id))


def participant_removed_notification(call_id: str, participant_id: str) -> _JSON:
    """A participant deleted from a call (the source meeting of a move, or a DELETE)."""
    resource = _calls("/communications", call_id, f"participants/{participant_id}")
    data = {"@odata.type": "#microsoft.graph.participant", "id": participant_id}
    return _notification("deleted", resource, resource, data)


def source_roster_notification(
    call_id: str, participant_id: str, participants: Sequence[Mapping[str, Any]]
) -> _JSON:
    """The source meeting's roster, showing the moved participant with a removedState."""
    entry = _roster_entry(participants[0], 1)
    entry["id"] = participant_id
    entry["mediaStreams"] = []
    entry["removedState"] = {
        "@odata.type": "#microsoft.graph.removedState",
        "reason": "Participant moved to another meeting.",
    }
    resource = _calls("/communications", call_id, "participants")
    return _notification("updated", resource, resource, [entry])
