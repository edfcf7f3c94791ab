"""Webhook bodies in, classified :class:`CommsNotification` objects out.

Theory of operation
-------------------
The calls service POSTs ``commsNotifications`` bodies to the bot. :func:`parse_notifications`
checks the envelope and classifies each notification *by its content*, because the path
alone misleads: in the spec, an operation's completion arrives on
``.../operations/participants`` with ``"id": null`` (example 2), a roster update arrives on
that same path (example 2) and another on the *replaced* call's id (example 3), and paths
start with ``/app/`` or ``/communications/`` for the same resource.

* **operation**: ``resourceData`` is an ``inviteParticipantsOperation`` (by its
  ``@odata.type``, or untyped with a ``status`` on an ``operations`` path), or a
  ``commsOperation`` (routed by its operation id only: the docs type the invite's,
  the transfer's and configureMixer's completions so, with the same clientContext);
* **roster**: ``resourceData`` is an array (a participant collection), or a beta
  ``deltaParticipants`` (the entries that changed, with a ``sequenceNumber``);
* **call_ended**: ``changeType`` deleted on ``/communications/calls/{id}``, or a call
  whose ``state`` is ``terminated``, in any case (the Graph SDK logs states capitalised,
  ``Established``);
* **call_updated**: any other update of a call resource (recognised, moves nothing);
* **participant_deleted**: ``changeType`` deleted on ``.../calls/{id}/participants/{pid}``;
* **unrecognised**: well-formed, but nothing callflow tracks (another operation type, a
  path it does not know, an operation status it does not know such as Graph's
  ``unknownFutureValue``). Returned with a ``reason`` naming it, never dropped, and
  never costing the other notifications of its body.

``resource`` and ``resourceUrl`` are read alike (either may be absent); ``@odata.type`` is
read with or without its ``#`` and in any case; ``changeType`` in any case.

Everything callflow routes on (call id, operation id, clientContext, status) is checked
and extracted here. The nested models (:attr:`CommsNotification.operation`,
:attr:`CommsNotification.participants`) are built on first access, because building them
costs twice as much as decoding the JSON; a wrong type inside them raises
:class:`NotificationError` then, with its JSON path.
"""

from __future__ import annotations

import json
import types
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

import attrs

from .._exceptions import NotificationError
from ._json import DECLINED, SPEED, fast_loads, json_loads
from ._models import (
    Call,
    InviteParticipantsOperation,
    OperationStatus,
    Participant,
    ResultInfo,
    normalize_resource,
    type_name,
)
from ._strenum import StrEnum

__all__ = [
    "NotificationKind",
    "CommsNotification",
    "RosterIndex",
    "parse_notifications",
    "MAX_BODY_BYTES",
    "MAX_NOTIFICATIONS",
    "normalize_resource",
]

#: The largest webhook body parsed (a real one is a few KB).
MAX_BODY_BYTES: Final = 1_048_576
#: The most notifications one body may carry.
MAX_NOTIFICATIONS: Final = 1000

# @odata.type names, read without '#' and in lower case (see _type_name).
_OPERATION_TYPE = "microsoft.graph.inviteparticipantsoperation"
_OPERATION_TYPE_AS_SENT = "#microsoft.graph.inviteParticipantsOperation"
_COMMS_OPERATION = "microsoft.graph.commsoperation"
_DELTA_TYPE = "microsoft.graph.deltaparticipants"
_CALL_TYPE = "microsoft.graph.call"


_T = TypeVar("_T")
_NOTHING: Final[Mapping[str, Any]] = types.MappingProxyType({})


class NotificationKind(StrEnum):
    """What a notification is about, read from its content (see the module docstring)."""

    operation = "operation"
    roster = "roster"
    call_ended = "call_ended"
    call_updated = "call_updated"
    participant_deleted = "participant_deleted"
    unrecognised = "unrecognised"


#: The public fields of a :class:`CommsNotification`, in the order its repr shows them.
_FIELDS: Final = (
    "change_type",
    "resource",
    "kind",
    "call_id",
    "resource_url",
    "operation_id",
    "client_context",
    "status",
    "participant_id",
    "has_result_info",
    "resource_data",
    "reason",
    "sequence_number",
    "is_delta",
)
_new: Final = object.__new__
_set: Final = object.__setattr__


class CommsNotification:
    """One ``commsNotification``, classified (an immutable record).

    Attributes:
        change_type: ``created``, ``updated`` or ``deleted``, in lower case whatever case
            it came in (``Deleted`` in the Graph SDK's logs).
        resource: the path as sent in ``resource``, or else in ``resourceUrl`` (the
            commsNotification resource documents only ``resourceUrl``).
        resource_url: the ``resourceUrl`` as sent, if any.
        kind: what it is about (:class:`NotificationKind`).
        call_id: the call its resource names (for roster updates on the replaced call,
            that call's id), or None when the resource is not a call's.
        operation_id: the operation's id, from its body or else its path; None for the
            spec's ``"id": null`` on ``.../operations/participants``.
        client_context: the operation's clientContext, if any.
        status: the operation's status, read case-insensitively, if any.
        participant_id: the participant a ``participant_deleted`` names.
        has_result_info: whether an operation carries a ``resultInfo``.
        resource_data: ``resourceData`` exactly as it came.
        reason: why an unrecognised notification is not tracked, naming the value.
        sequence_number: a ``deltaParticipants`` roster's ``sequenceNumber``.
        is_delta: whether a roster is a ``deltaParticipants`` (the entries that changed)
            rather than the whole roster.
        raw: the notification's JSON object as it came.
        path: its JSON path in the body (``$.value[0]``).

    Its fields live in the instance's ``__dict__`` and the defaults on the class, so the
    classifier makes one with one dict (:func:`_record`) rather than a keyword call per
    field; the nested models and the values worked out from them are kept in the same
    dict once built, under ``@``-prefixed keys (no attribute can shadow or be shadowed).
    Setting or deleting a field raises ``attrs.exceptions.FrozenInstanceError``. Equality
    is identity. ``_cache`` is accepted for the signature's sake; nothing is carried over.
    """

    change_type: str
    resource: str
    kind: NotificationKind
    call_id: str | None
    resource_url: str | None = None
    operation_id: str | None = None
    client_context: str | None = None
    status: OperationStatus | None = None
    participant_id: str | None = None
    has_result_info: bool = False
    resource_data: Any = None
    reason: str = ""
    sequence_number: int | None = None
    is_delta: bool = False
    raw: Mapping[str, Any] = _NOTHING
    path: str = "$"

    def __init__(
        self,
        change_type: str,
        resource: str,
        kind: NotificationKind,
        call_id: str | None,
        resource_url: str | None = None,
        operation_id: str | None = None,
        client_context: str | None = None,
        status: OperationStatus | None = None,
        participant_id: str | None = None,
        has_result_info: bool = False,
        resource_data: Any = None,
        reason: str = "",
        sequence_number: int | None = None,
        is_delta: bool = False,
        raw: Mapping[str, Any] = _NOTHING,
        path: str = "$",
        _cache: dict[str, Any] | None = None,
    ) -> None:
        fields = {
            "change_type": change_type,
            "resource": resource,
            "kind": kind,
            "call_id": call_id,
            "resource_url": resource_url,
            "operation_id": operation_id,
            "client_context": client_context,
            "status": status,
            "participant_id": participant_id,
            "has_result_info": has_result_info,
            "resource_data": resource_data,
            "reason": reason,
            "sequence_number": sequence_number,
            "is_delta": is_delta,
            "raw": raw,
            "path": path,
        }
        _set(self, "__dict__", fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise attrs.exceptions.FrozenInstanceError()

    def __delattr__(self, name: str) -> None:
        raise attrs.exceptions.FrozenInstanceError()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS)
        return f"CommsNotification({shown})"

    def _cached(self, key: str, build: Callable[[], Any]) -> Any:
        """Build a nested model (or a value worked out from them) once, and keep it."""
        held = self.__dict__
        if key in held:
            return held[key]
        value = held[key] = build()
        return value

    def _against(
        self, other: CommsNotification, work: Callable[[CommsNotification, CommsNotification], _T]
    ) -> _T:
        """``work(other, self)``, remembered for the last ``other`` it was asked about.

        What a roster does to the roster an invite keeps is the same for every invite of
        a busy call that keeps the same one. ``other`` is held weakly: a roster never
        keeps an older one alive.
        """
        held = self.__dict__
        last = held.get("@against")
        if last is not None and last[0]() is other:
            found: _T = last[1]
            return found
        value = work(other, self)
        held["@against"] = (weakref.ref(other), value)
        return value

    def _evolve(self, **changes: Any) -> CommsNotification:
        """A copy with ``changes`` applied, and nothing it had built or worked out."""
        fields = {k: v for k, v in self.__dict__.items() if k[0] != "@"}
        fields.update(changes)
        return _record(fields)

    @property
    def operation(self) -> InviteParticipantsOperation | None:
        """The ``inviteParticipantsOperation`` this carries, built on first access.

        Raises:
            NotificationError: a property of the operation has the wrong type.

        """
        if self.kind is not _KIND_OPERATION:
            return None
        op: InviteParticipantsOperation = self._cached(
            "@operation",
            lambda: InviteParticipantsOperation.from_json(
                self.resource_data, f"{self.path}.resourceData"
            ),
        )
        return op

    @property
    def result_info(self) -> ResultInfo | None:
        """The operation's ``resultInfo``, if it carries one."""
        op = self.operation
        return None if op is None else op.result_info

    @property
    def participants(self) -> tuple[Participant, ...]:
        """The roster this carries (empty unless ``kind`` is roster), built on first access.

        Raises:
            NotificationError: a roster entry has a property of the wrong type.

        """
        if self.kind is not _KIND_ROSTER:
            return ()
        found: tuple[Participant, ...] = self._cached("@participants", self._build_participants)
        return found

    def _build_participants(self) -> tuple[Participant, ...]:
        base = f"{self.path}.resourceData"
        entries = self.resource_data
        if self.is_delta:
            base, entries = f"{base}.participants", entries["participants"]
        return tuple(Participant.from_json(item, f"{base}[{i}]") for i, item in enumerate(entries))

    @property
    def roster_sequence(self) -> int | None:
        """Where a roster stands in the service's order, None when it does not say.

        A ``deltaParticipants`` gives its ``sequenceNumber``; a whole roster, the highest
        ``rosterSequenceNumber`` of its entries.
        """
        if self.kind is not _KIND_ROSTER:
            return None
        if self.sequence_number is not None:
            return self.sequence_number
        # Read by every invite on the call that keeps a roster: worked out once.
        found: int | None = self._cached("@roster_sequence", self._highest_sequence)
        return found

    def _highest_sequence(self) -> int | None:
        numbers = [p.roster_sequence_number for p in self.participants]
        return max((n for n in numbers if n is not None), default=None)

    @property
    def roster_index(self) -> RosterIndex | None:
        """A roster's entries indexed for the invites on its call, worked out once.

        None unless ``kind`` is roster. Every invite on the call reads it, so what it
        knows is worked out once per notification, not once per invite.
        """
        if self.kind is not _KIND_ROSTER:
            return None
        held = self.__dict__
        found: RosterIndex | None = held.get("@roster_index")
        if found is None:
            found = held["@roster_index"] = RosterIndex(self.participants)
        return found

    def build_models(self) -> None:
        """Build every nested model an invite may read when it applies this notification.

        The one rule for when a lazy model is built: before anything is applied, so a
        malformed one raises :class:`NotificationError` and nothing changed. An
        operation's model when it failed or carries a resultInfo (the only times an invite
        reads it), a roster's entries (its order, its lobby and a moved participant's
        removal read them), a call's when it ended. Each is built once per notification,
        however many invites it reaches. :meth:`Switchboard.receive
        <callflow.Switchboard.receive>` calls it for a whole body before routing any of it;
        :meth:`Invite.offer <callflow.Invite.offer>` calls it too (free the second time).

        Raises:
            NotificationError: a nested model has a property of the wrong type.

        """
        kind = self.kind
        if kind is _KIND_OPERATION:
            if self.status is _FAILED or self.has_result_info:
                _ = self.operation
        elif kind is _KIND_ROSTER:
            _ = self.participants
        elif kind is _KIND_CALL_ENDED:
            _ = self.call

    def updated_by(self, delta: CommsNotification) -> CommsNotification:
        """This roster with a ``deltaParticipants`` applied.

        The delta's entries replace the ones with the same id; new ones are added.

        Args:
            delta: a roster notification whose ``is_delta`` is True.

        Returns:
            A whole roster (``is_delta`` False) carrying the delta's ``sequence_number``;
            ``raw`` stays the delta's body as it came.

        """
        base = self.resource_data["participants"] if self.is_delta else self.resource_data
        changed = delta.resource_data["participants"]
        ids = {entry.get("id") for entry in changed if entry.get("id") is not None}
        merged = [e for e in base if e.get("id") is None or e.get("id") not in ids]
        merged.extend(changed)
        return delta._evolve(resource_data=merged, is_delta=False)

    @property
    def call(self) -> Call | None:
        """The call a call_ended / call_updated notification carries, built on first access.

        None when the notification carries no call object (a bare ``deleted``).

        Raises:
            NotificationError: a property of the call has the wrong type.

        """
        if self.kind not in _CALL_KINDS or not isinstance(self.resource_data, dict):
            return None
        call: Call = self._cached(
            "@call", lambda: Call.from_json(self.resource_data, f"{self.path}.resourceData")
        )
        return call

    @property
    def fingerprint(self) -> tuple[Any, ...]:
        """What makes two notifications the same news, for duplicate detection.

        A roster's is its content, worked out once per notification (on first use) and
        kept: a roster on a busy call is compared by every invite on that call.
        """
        kind = self.kind
        if kind is _KIND_OPERATION:
            return (kind, self.operation_id, self.client_context, self.status)
        if kind is _KIND_ROSTER:
            found: tuple[Any, ...] = self._cached("@fingerprint", self._roster_fingerprint)
            return found
        return (kind, self.call_id, self.participant_id, self.change_type)

    def _roster_fingerprint(self) -> tuple[Any, ...]:
        return (self.kind, self.call_id, self.change_type, repr(self.resource_data))

    def to_json(self) -> dict[str, Any]:
        """The notification's JSON exactly as it came."""
        return dict(self.raw)

    def describe(self) -> str:
        """A short human description: ``deleted /communications/calls/X/... (completed)``."""
        status = self.status
        if status is None:
            return f"{self.kind._value_} {self.change_type} {self.resource}"
        return f"{self.kind._value_} {self.change_type} {self.resource} ({status._value_})"


def _record(fields: dict[str, Any]) -> CommsNotification:
    """A :class:`CommsNotification` whose ``__dict__`` is ``fields`` (absent ones default)."""
    n: CommsNotification = _new(CommsNotification)
    _set(n, "__dict__", fields)
    return n


class RosterIndex:
    """A roster's entries, indexed once for every invite on its call.

    Attributes:
        by_identity: each identity id of an entry that has a participant id, to those
            entries as ``(position in the roster, participant id)``, in roster order:
            which entry is whose is a dict lookup per invitee, not a scan of the roster.
        removed_ids: the participant ids of the entries with a ``removedState``.
        removed_identities: the identity ids of the entries with a ``removedState`` and
            no participant id.

    """

    __slots__ = ("by_identity", "removed_identities", "removed_ids")

    def __init__(self, entries: Iterable[Participant]) -> None:
        by_identity: dict[str, list[tuple[int, str]]] = {}
        removed_ids: set[str] = set()
        removed_identities: set[str] = set()
        for position, entry in enumerate(entries):
            info = entry.info
            identity = None if info is None else info.identity
            ids = frozenset() if identity is None else identity.ids()
            if entry.is_removed:
                if entry.id is not None:
                    removed_ids.add(entry.id)
                else:
                    removed_identities |= ids
            if entry.id is not None:
                for one in ids:
                    by_identity.setdefault(one, []).append((position, entry.id))
        self.by_identity: Final[Mapping[str, list[tuple[int, str]]]] = by_identity
        self.removed_ids: Final = frozenset(removed_ids)
        self.removed_identities: Final = frozenset(removed_identities)

    def first_match(self, wanted: frozenset[str], taken: Iterable[str | None]) -> str | None:
        """The participant id of the first entry that matches ``wanted``, else None.

        The first in roster order whose identity has an id in ``wanted`` and whose
        participant id is not ``taken``.
        """
        found = [hit for one in wanted for hit in self.by_identity.get(one, ())]
        if not found:
            return None
        unavailable = set(taken)
        for _, pid in sorted(found):
            if pid not in unavailable:
                return pid
        return None

    def shows_removed(self, participant_id: str | None, identities: frozenset[str]) -> bool:
        """Whether the roster shows that participant removed.

        The entry with ``participant_id`` has a ``removedState``, or one with no
        participant id whose identity has an id in ``identities`` does.
        """
        return participant_id in self.removed_ids or not self.removed_identities.isdisjoint(
            identities
        )


_CALL_KINDS = frozenset({NotificationKind.call_ended, NotificationKind.call_updated})

# Enum members read on the hot path, bound once: on Python 3.11 every attribute read
# through an enum class goes through EnumType's __getattr__ hook, ~10x a global's cost.
_KIND_OPERATION: Final = NotificationKind.operation
_KIND_ROSTER: Final = NotificationKind.roster
_KIND_CALL_ENDED: Final = NotificationKind.call_ended
_KIND_CALL_UPDATED: Final = NotificationKind.call_updated
_KIND_PARTICIPANT_DELETED: Final = NotificationKind.participant_deleted
_KIND_UNRECOGNISED: Final = NotificationKind.unrecognised
_FAILED: Final = OperationStatus.failed
_parse_status: Final = OperationStatus.parse
#: The statuses as Graph writes them, read without a case fold (else _parse_status).
_EXACT_STATUSES: Final = {s._value_: s for s in OperationStatus}


def _loads(body: bytes | bytearray | memoryview | str, max_bytes: int) -> Any:
    size = len(body)
    if size > max_bytes:
        raise NotificationError(f"body of {size} bytes is over the limit of {max_bytes}")
    if isinstance(body, str):
        text = body
    else:
        if SPEED:
            decoded = fast_loads(body)  # msgspec, when installed: exactly as json would
            if decoded is not DECLINED:
                return decoded
        try:
            text = (body if isinstance(body, bytes) else bytes(body)).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotificationError(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        return json_loads(text)
    except json.JSONDecodeError as exc:
        raise NotificationError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise NotificationError("JSON nested too deeply") from None
    except ValueError as exc:  # a number over Python's int-digit limit: not a JSONDecodeError
        raise NotificationError(f"invalid JSON: {exc}") from None


def _opt_str(data: Mapping[str, Any], key: str, path: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _not_a_string(value, path, key)


def _not_a_string(value: Any, path: str, key: str) -> NotificationError:
    """The error for ``key`` at ``path`` holding ``value``, which should be a string."""
    return NotificationError(f"expected a string, got {type_name(value)}", path=f"{path}.{key}")


_DATA = ".resourceData"
#: What a body may come as, besides a mapping.
_TEXT: Final = (bytes, bytearray, memoryview, str)
#: ``$.value[i]`` for every index a body may have, made once.
_ITEM_PATHS: Final = tuple(f"$.value[{i}]" for i in range(MAX_NOTIFICATIONS))


def _type_name(data: Mapping[str, Any], path: str) -> str | None:
    """Read ``@odata.type`` as a name, without its ``#`` and in lower case.

    ``#microsoft.graph.call`` and ``microsoft.graph.Call`` alike give ``microsoft.graph.call``.
    """
    odata = data.get("@odata.type")
    if odata is None:
        return None
    if not isinstance(odata, str):
        raise NotificationError(
            f"expected a string, got {type_name(odata)}", path=f"{path}.@odata.type"
        )
    return odata.removeprefix("#").lower()


def _classify(item: Any, path: str) -> CommsNotification:
    """Classify one notification (see the module docstring for the kinds).

    ``common`` is the record's field dict being filled: each kind adds its own fields to
    it and makes the record of it (:func:`_record`).
    """
    if not isinstance(item, dict):
        raise NotificationError(f"expected an object, got {type_name(item)}", path=path)
    get = item.get
    change_type = get("changeType")
    if not isinstance(change_type, str):
        raise _not_a_string(change_type, path, "changeType")
    # The resource it names: ``resource``, else ``resourceUrl`` (either may be absent).
    resource, resource_url = get("resource"), get("resourceUrl")
    if resource is not None and not isinstance(resource, str):
        raise _not_a_string(resource, path, "resource")
    if resource_url is not None and not isinstance(resource_url, str):
        raise _not_a_string(resource_url, path, "resourceUrl")
    if resource is None:
        if resource_url is None:
            raise NotificationError(
                "expected a 'resource' or a 'resourceUrl' string, got neither", path=path
            )
        resource = resource_url
    where = normalize_resource(resource)
    if where is None and resource_url is not None and resource_url is not resource:
        where = normalize_resource(resource_url)
    call_id, rest = where if where is not None else (None, "")
    data = get("resourceData")
    # Made whole at once (an operation's fields too, at their defaults): the kinds only
    # set what they read, and the dict is never resized on the way.
    common: dict[str, Any] = {
        "change_type": change_type.lower(),  # the Graph SDK's logs show "Deleted"
        "resource": resource,
        "resource_url": resource_url,
        "call_id": call_id,
        "resource_data": data,
        "raw": item,
        "path": path,
        "kind": _KIND_UNRECOGNISED,
        "operation_id": None,
        "client_context": None,
        "status": None,
        "has_result_info": False,
    }
    segments = rest.split("/") if rest else []
    data_path = path + _DATA
    if isinstance(data, dict):
        if data.get("@odata.type") == _OPERATION_TYPE_AS_SENT:  # an invite's, typed as sent
            return _operation(data, segments, common, data_path, generic=False)
        return _about_object(data, segments, common, data_path)
    if isinstance(data, list):
        _check_entries(data, data_path)
        if call_id is not None:
            return _kind(common, _KIND_ROSTER)
        return _unrecognised(common, "a participant collection on a resource that is no call's")
    if data is not None:
        raise NotificationError(
            f"expected an object, an array or null, got {type_name(data)}", path=data_path
        )
    return _about_path(segments, common, bare=True)


def _kind(common: dict[str, Any], kind: NotificationKind) -> CommsNotification:
    common["kind"] = kind
    return _record(common)


def _about_object(
    data: Mapping[str, Any], segments: list[str], common: dict[str, Any], data_path: str
) -> CommsNotification:
    """Classify a notification whose ``resourceData`` is an object."""
    odata = _type_name(data, data_path)
    generic = odata == _COMMS_OPERATION
    if (
        odata == _OPERATION_TYPE
        or generic
        or (odata is None and "status" in data and segments[:1] == ["operations"])
    ):
        return _operation(data, segments, common, data_path, generic=generic)
    if odata == _DELTA_TYPE and common["call_id"] is not None:
        entries = data.get("participants")
        if not isinstance(entries, list):
            raise NotificationError(
                f"expected an array, got {type_name(entries)}", path=f"{data_path}.participants"
            )
        _check_entries(entries, f"{data_path}.participants")
        sequence = data.get("sequenceNumber")
        if sequence is not None and (not isinstance(sequence, int) or isinstance(sequence, bool)):
            raise NotificationError(
                f"expected an integer, got {type_name(sequence)}",
                path=f"{data_path}.sequenceNumber",
            )
        common["sequence_number"] = sequence
        common["is_delta"] = True
        return _kind(common, _KIND_ROSTER)
    if common["call_id"] is not None and not segments and odata in (None, _CALL_TYPE):
        state = _opt_str(data, "state", data_path)
        # the Graph SDK logs call states capitalised ("Established"), as it does changeType
        ended = common["change_type"] == "deleted" or (
            state is not None and state.lower() == "terminated"
        )
        return _kind(common, _KIND_CALL_ENDED if ended else _KIND_CALL_UPDATED)
    return _about_path(segments, common, bare=False, odata=odata)


def _operation(
    data: Mapping[str, Any],
    segments: list[str],
    common: dict[str, Any],
    data_path: str,
    *,
    generic: bool,
) -> CommsNotification:
    """An operation's notification.

    A ``commsOperation`` (the docs type the invite's completion that way, and also the
    transfer's and configureMixer's, with the same clientContext) carries no
    clientContext for routing: it reaches an invite only by its operation id.
    """
    get = data.get
    status_text = get("status")
    if status_text is None:
        status = None
    elif not isinstance(status_text, str):
        raise _not_a_string(status_text, data_path, "status")
    else:
        status = _EXACT_STATUSES.get(status_text) or _parse_status(status_text)
        if status is None:
            return _unrecognised(common, f"unknown operation status {status_text!r}")
    operation_id, context = get("id"), get("clientContext")
    if operation_id is None:
        if len(segments) == 2 and segments[1] != "participants":
            operation_id = segments[1]  # id in the path but not in the body
    elif not isinstance(operation_id, str):
        raise _not_a_string(operation_id, data_path, "id")
    if context is not None and not isinstance(context, str):
        raise _not_a_string(context, data_path, "clientContext")
    common["kind"] = _KIND_OPERATION
    common["operation_id"] = operation_id
    common["client_context"] = None if generic else context
    common["status"] = status
    common["has_result_info"] = get("resultInfo") is not None
    return _record(common)


def _about_path(
    segments: list[str], common: dict[str, Any], *, bare: bool, odata: str | None = None
) -> CommsNotification:
    """Classify by the path alone: a deleted call or participant, else unrecognised."""
    if common["call_id"] is not None and common["change_type"] == "deleted":
        if bare and not segments:
            return _kind(common, _KIND_CALL_ENDED)
        if len(segments) == 2 and segments[0] == "participants":
            common["participant_id"] = segments[1]
            return _kind(common, _KIND_PARTICIPANT_DELETED)
    if odata is not None:
        return _unrecognised(common, f"a {odata} callflow does not track")
    return _unrecognised(common, "not an invite operation, roster, call or participant")


def _unrecognised(common: dict[str, Any], reason: str) -> CommsNotification:
    common["reason"] = reason
    return _kind(common, _KIND_UNRECOGNISED)


def _check_entries(entries: list[Any], base: str) -> None:
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise NotificationError(
                f"expected an object, got {type_name(entry)}", path=f"{base}[{i}]"
            )


def parse_notifications(
    body: bytes | bytearray | memoryview | str | Mapping[str, Any],
    *,
    max_bytes: int = MAX_BODY_BYTES,
) -> tuple[CommsNotification, ...]:
    """Parse a ``commsNotifications`` webhook body into classified notifications.

    Args:
        body: the body as bytes or text, or already parsed: the ``{"value": [...]}``
            mapping, or one notification mapping.
        max_bytes: bodies larger than this are refused before decoding.

    Returns:
        One :class:`CommsNotification` per entry of ``value``, in order, including the
        ones callflow does not understand (``kind`` unrecognised).

    Raises:
        NotificationError: invalid JSON, not UTF-8, too large, no ``value`` array, or a
            property callflow routes on with the wrong type. The message names the JSON
            path, such as ``$.value[0].resource``.

    """
    if isinstance(body, _TEXT):
        document = _loads(body, max_bytes)
    elif isinstance(body, Mapping):
        document = body
    else:
        raise NotificationError(
            f"expected a commsNotifications body (bytes, text or a mapping), got {type_name(body)}"
        )
    if not isinstance(document, dict) and not isinstance(document, Mapping):
        raise NotificationError(f"expected an object, got {type_name(document)}")
    items = document.get("value")
    if items is None:
        if "value" not in document and ("resource" in document or "resourceUrl" in document):
            return (_classify(dict(document), "$"),)  # one notification, not a body
        raise NotificationError("missing 'value': not a commsNotifications body")
    if not isinstance(items, list):
        raise NotificationError(f"expected an array, got {type_name(items)}", path="$.value")
    if len(items) == 1:  # what the service sends, nearly always
        return (_classify(items[0], _ITEM_PATHS[0]),)
    if len(items) > MAX_NOTIFICATIONS:
        raise NotificationError(
            f"{len(items)} notifications is over the limit of {MAX_NOTIFICATIONS}",
            path="$.value",
        )
    return tuple([_classify(item, _ITEM_PATHS[i]) for i, item in enumerate(items)])
