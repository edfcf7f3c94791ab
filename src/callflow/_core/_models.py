"""Graph resource models: camelCase JSON in, frozen attrs objects out, and back.

Theory of operation
-------------------
This is the parsing edge (STYLE rule 3): nothing deeper in callflow handles raw Graph
dicts. Each model is an ``attrs.frozen`` class whose fields carry their JSON key and a
converter in their metadata; :func:`_graph` reads that once per class and builds the
tables the generic :meth:`GraphObject.from_json` and :meth:`GraphObject.to_json` walk.

Nothing is lost in a round trip:

* properties a model does not know are kept in ``extra`` and written back as they came;
* a known property that came as an explicit ``null`` is remembered in ``nulls`` and
  written back as ``null`` (Graph's responses are full of them);
* ``@odata.type`` is kept as given (``None`` when absent). Objects built in code get the
  canonical type, so a request is shaped like the spec's.

Wrong types raise :class:`callflow.NotificationError` with the JSON path of the value.
"""

from __future__ import annotations

import enum
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, NamedTuple, TypeVar, cast

import attrs

from .._exceptions import NotificationError

__all__ = [
    "GraphObject",
    "Identity",
    "IdentitySet",
    "InvitationParticipantInfo",
    "ParticipantInfo",
    "MediaStream",
    "RemovedState",
    "Participant",
    "ResultInfo",
    "OperationStatus",
    "InviteParticipantsOperation",
    "IDENTITY_KINDS",
    "Call",
    "InviteAnswer",
    "normalize_resource",
    "read_invite_answer",
    "type_name",
]

Converter = Callable[[Any, str], Any]
_G = TypeVar("_G", bound="GraphObject")


def type_name(value: object) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _expect(kind: type | tuple[type, ...], label: str) -> Converter:
    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise NotificationError(f"expected {label}, got {type_name(value)}", path=path)
        return value

    return convert


_str = _expect(str, "a string")
_bool = _expect(bool, "a boolean")
_int = _expect(int, "an integer")


def _one(cls: type[GraphObject]) -> Converter:
    return cls.from_json


def _many(cls: type[GraphObject]) -> Converter:
    def convert(value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise NotificationError(f"expected an array, got {type_name(value)}", path=path)
        return tuple(cls.from_json(item, f"{path}[{i}]") for i, item in enumerate(value))

    return convert


def _field(key: str, convert: Converter, *aliases: str) -> Any:
    """A model field: ``None`` when absent, keyword-only, JSON key and converter attached.

    ``aliases`` are other spellings the service uses for the same key (read, never written).
    """
    return attrs.field(
        default=None,
        kw_only=True,
        metadata={"key": key, "convert": convert, "aliases": aliases},
    )


def _code(value: Any, path: str) -> int | str:
    """A ``resultInfo`` code as the docs print it: a number, or a string ("200", "5001").

    A numeric string becomes its number; any other string (Graph's transfer subcodes are
    words, such as "transferAccepted") is kept as it came.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit() and len(text) < 20:
            return int(text)
        return value
    raise NotificationError(f"expected an integer or a string, got {type_name(value)}", path=path)


#: ``.../(app|communications)/calls/{call}[/{rest}]``, with or without scheme, host, version.
_RESOURCE = re.compile(r"(?:^|/)(?:app|communications)/calls/([^/?#]+)(?:/([^?#]*))?")
_PREFIXES: Final = ("/app/calls/", "/communications/calls/")


def normalize_resource(resource: str) -> tuple[str, str] | None:
    """``(call id, rest of the path)`` for a calls resource, else None.

    ``/app/calls/X/...``, ``/communications/calls/X/...`` and full URLs name the same thing.
    """
    # The paths Graph sends, read without the regex: the leftmost match starts at 0, and
    # with no '?' or '#' the regex's groups are the first segment and the rest.
    for prefix in _PREFIXES:
        if resource.startswith(prefix):
            call_id, _, rest = resource[len(prefix) :].partition("/")
            if call_id and "?" not in resource and "#" not in resource:
                return call_id, rest.strip("/")
            break
    match = _RESOURCE.search(resource)
    if match is None:
        return None
    return match.group(1), (match.group(2) or "").strip("/")


def _call_id(value: Any, path: str) -> str:
    """A call id; a call's path (``/app/calls/{id}``, as pages of 2018 print it) gives its id."""
    text: str = _str(value, path)
    where = normalize_resource(text)
    return text if where is None or where[1] else where[0]


@attrs.frozen(kw_only=True)
class GraphObject:
    """Behaviour shared by every Graph model: conversion from and to JSON.

    Attributes:
        odata_type: ``@odata.type`` as it came (None when absent); a model built in code
            gets its canonical type (``_ODATA``).
        extra: the properties the model does not know, kept as they came.
        nulls: the known properties that came as an explicit ``null``.

    """

    # Filled by @_graph: {json key: (attribute, converter)}, and attribute -> key.
    _IN: ClassVar[dict[str, tuple[str, Converter]]]
    _OUT: ClassVar[tuple[tuple[str, str], ...]]
    _BLANK: ClassVar[dict[str, Any]]
    #: The JSON keys of ``_OUT``, and a getter of the attributes' values in that order.
    _KEYS: ClassVar[tuple[str, ...]]
    _VALUES: ClassVar[operator.attrgetter[tuple[Any, ...]]]
    #: The canonical ``@odata.type`` of a model built in code.
    _ODATA: ClassVar[str] = ""

    odata_type: str | None = attrs.field(
        default=attrs.Factory(lambda self: self._ODATA or None, takes_self=True),
        metadata={"key": "@odata.type", "convert": _str},
    )
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    nulls: frozenset[str] = attrs.field(default=frozenset(), repr=False)

    @classmethod
    def from_json(cls: type[_G], data: Any, path: str = "$") -> _G:
        """Build the model from Graph JSON (an already-parsed mapping).

        Args:
            data: the JSON object.
            path: where ``data`` sits in a larger document, for error messages.

        Raises:
            NotificationError: ``data`` or one of its known properties has the wrong type.

        """
        if not isinstance(data, dict):
            raise NotificationError(f"expected an object, got {type_name(data)}", path=path)
        kwargs = cls._BLANK.copy()
        extra: dict[str, Any] | None = None
        nulls: list[str] | None = None
        table = cls._IN
        for key, value in data.items():
            known = table.get(key)
            if known is None:
                if extra is None:
                    extra = {}
                extra[key] = value
            elif value is None:
                if nulls is None:
                    nulls = []
                nulls.append(key)
            else:
                attr, convert = known
                kwargs[attr] = convert(value, f"{path}.{key}")
        if extra is not None:
            kwargs["extra"] = extra
        if nulls is not None:
            kwargs["nulls"] = frozenset(nulls)
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        """The Graph JSON for this object: what came in, plus what was set in code."""
        out: dict[str, Any] = {}
        nulls = self.nulls
        for key, value in zip(self._KEYS, self._VALUES(self), strict=True):
            if value is None:
                if key in nulls:
                    out[key] = None
            elif type(value) is str:  # most of them: no isinstance walk
                out[key] = value
            elif isinstance(value, GraphObject):
                out[key] = value.to_json()
            elif isinstance(value, tuple):
                out[key] = [v.to_json() if isinstance(v, GraphObject) else v for v in value]
            else:
                out[key] = value
        out.update(self.extra)
        return out


def _graph(cls: type[_G]) -> type[_G]:
    """Read a model's field metadata into the tables ``from_json``/``to_json`` walk."""
    incoming: dict[str, tuple[str, Converter]] = {}
    outgoing: list[tuple[str, str]] = []
    blank: dict[str, Any] = {}
    for f in attrs.fields(cast("type[attrs.AttrsInstance]", cls)):
        key = f.metadata.get("key")
        if key is None:
            continue
        convert = f.metadata["convert"]
        incoming[key] = (f.name, convert)
        for alias in f.metadata.get("aliases", ()):
            incoming[alias] = (f.name, convert)
        outgoing.append((f.name, key))
        blank[f.name] = None
    cls._IN, cls._OUT, cls._BLANK = incoming, tuple(outgoing), blank
    cls._KEYS = tuple(key for _, key in outgoing)
    names = [name for name, _ in outgoing]
    # Every model has @odata.type and at least one property, so this returns a tuple.
    assert len(names) > 1, cls
    cls._VALUES = operator.attrgetter(*names)
    return cls


@_graph
@attrs.frozen
class Identity(GraphObject):
    """``microsoft.graph.identity``: one identity (a user, an application, a phone...)."""

    id: str | None = _field("id", _str)
    display_name: str | None = _field("displayName", _str)
    tenant_id: str | None = _field("tenantId", _str)
    identity_provider: str | None = _field("identityProvider", _str)
    _ODATA = "#microsoft.graph.identity"


_identity = _one(Identity)

#: The identities an identitySet can hold, by attribute name, in Graph's order.
IDENTITY_KINDS = (
    "user",
    "application",
    "application_instance",
    "device",
    "phone",
    "guest",
    "encrypted",
    "on_premises",
)


@_graph
@attrs.frozen
class IdentitySet(GraphObject):
    """``microsoft.graph.identitySet``: who a participant is."""

    user: Identity | None = _field("user", _identity)
    application: Identity | None = _field("application", _identity)
    application_instance: Identity | None = _field("applicationInstance", _identity)
    device: Identity | None = _field("device", _identity)
    phone: Identity | None = _field("phone", _identity)
    guest: Identity | None = _field("guest", _identity)
    encrypted: Identity | None = _field("encrypted", _identity)
    on_premises: Identity | None = _field("onPremises", _identity)
    _ODATA = "#microsoft.graph.identitySet"

    def identities(self) -> dict[str, Identity]:
        """The identities that are set, by attribute name (``user``, ``phone``, ...)."""
        found = {}
        for name in IDENTITY_KINDS:
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        return found

    def ids(self) -> frozenset[str]:
        """Every identity id in the set: what roster entries are matched on."""
        return frozenset(
            i.id for i in map(self.__getattribute__, IDENTITY_KINDS) if i is not None and i.id
        )


_identity_set = _one(IdentitySet)


@_graph
@attrs.frozen
class InvitationParticipantInfo(GraphObject):
    """``microsoft.graph.invitationParticipantInfo``: one participant of an invite."""

    identity: IdentitySet | None = _field("identity", _identity_set)
    replaces_call_id: str | None = _field("replacesCallId", _call_id)
    participant_id: str | None = _field("participantId", _str)
    hidden: bool | None = _field("hidden", _bool)
    remove_from_default_audio_routing_group: bool | None = _field(
        "removeFromDefaultAudioRoutingGroup", _bool
    )
    endpoint_type: str | None = _field("endpointType", _str)
    _ODATA = "#microsoft.graph.invitationParticipantInfo"


@_graph
@attrs.frozen
class ParticipantInfo(GraphObject):
    """``microsoft.graph.participantInfo``: who a roster entry is."""

    identity: IdentitySet | None = _field("identity", _identity_set)
    endpoint_type: str | None = _field("endpointType", _str)
    participant_id: str | None = _field("participantId", _str)
    language_id: str | None = _field("languageId", _str)
    region: str | None = _field("region", _str)
    country_code: str | None = _field("countryCode", _str)
    _ODATA = "#microsoft.graph.participantInfo"


@_graph
@attrs.frozen
class MediaStream(GraphObject):
    """``microsoft.graph.mediaStream``: one media stream of a participant."""

    media_type: str | None = _field("mediaType", _str)
    source_id: str | None = _field("sourceId", _str)
    direction: str | None = _field("direction", _str)
    label: str | None = _field("label", _str)
    server_muted: bool | None = _field("serverMuted", _bool)
    _ODATA = "#microsoft.graph.mediaStream"


@_graph
@attrs.frozen
class RemovedState(GraphObject):
    """``microsoft.graph.removedState``: why a participant left."""

    reason: str | None = _field("reason", _str)
    _ODATA = "#microsoft.graph.removedState"


@_graph
@attrs.frozen
class Participant(GraphObject):
    """``microsoft.graph.participant``: one entry of a call's roster."""

    id: str | None = _field("id", _str)
    info: ParticipantInfo | None = _field("info", _one(ParticipantInfo))
    media_streams: tuple[MediaStream, ...] | None = _field("mediaStreams", _many(MediaStream))
    is_muted: bool | None = _field("isMuted", _bool)
    is_in_lobby: bool | None = _field("isInLobby", _bool)
    removed_state: RemovedState | None = _field("removedState", _one(RemovedState))
    metadata: str | None = _field("metadata", _str)
    roster_sequence_number: int | None = _field("rosterSequenceNumber", _int)
    _ODATA = "#microsoft.graph.participant"

    @property
    def is_removed(self) -> bool:
        """True when the roster says this participant has left (a ``removedState``)."""
        return self.removed_state is not None


@_graph
@attrs.frozen
class ResultInfo(GraphObject):
    """``microsoft.graph.resultInfo``: the outcome of an operation, or why a call ended.

    The docs print ``subcode`` and ``subCode``, and codes as numbers and as strings: both
    spellings fill :attr:`subcode`, numeric strings become numbers, and word codes (the
    transfer's "transferAccepted") are kept as strings. ``to_json`` writes ``subcode``.
    """

    code: int | str | None = _field("code", _code)
    subcode: int | str | None = _field("subcode", _code, "subCode")
    message: str | None = _field("message", _str)
    _ODATA = "#microsoft.graph.resultInfo"


class OperationStatus(str, enum.Enum):
    """``microsoft.graph.operationStatus``, in Graph's own words."""

    not_started = "notStarted"
    running = "running"
    completed = "completed"
    failed = "failed"

    @classmethod
    def parse(cls, text: str) -> OperationStatus | None:
        """Read a status case-insensitively ("Running" and "running" alike)."""
        return _STATUSES.get(text.lower())


_STATUSES = {s.value.lower(): s for s in OperationStatus}
_FAILED: Final = OperationStatus.failed  # read per answer; a module global is cheaper


@_graph
@attrs.frozen
class InviteParticipantsOperation(GraphObject):
    """``microsoft.graph.inviteParticipantsOperation``: the invite as the service sees it.

    ``status`` keeps the text as it came (the spec's responses say "Running", its
    notifications "completed"); :attr:`operation_status` reads it case-insensitively.
    """

    id: str | None = _field("id", _str)
    status: str | None = _field("status", _str)
    client_context: str | None = _field("clientContext", _str)
    result_info: ResultInfo | None = _field("resultInfo", _one(ResultInfo))
    participants: tuple[InvitationParticipantInfo, ...] | None = _field(
        "participants", _many(InvitationParticipantInfo)
    )
    _ODATA = "#microsoft.graph.inviteParticipantsOperation"

    @property
    def operation_status(self) -> OperationStatus | None:
        """The status as an :class:`OperationStatus`; None when absent or unknown."""
        return None if self.status is None else OperationStatus.parse(self.status)


@_graph
@attrs.frozen
class Call(GraphObject):
    """``microsoft.graph.call``, as far as a notification about a call needs it.

    Attributes:
        state: the call's state as written (``established``, ``terminated``, ...).
        termination_reason: why it ended, as written (``AppInitiated``), if given.
        result_info: the call's ``resultInfo`` (its end reason codes), if given.

    """

    _ODATA = "#microsoft.graph.call"
    state: str | None = _field("state", _str)
    termination_reason: str | None = _field("terminationReason", _str)
    result_info: ResultInfo | None = _field("resultInfo", _one(ResultInfo))


class InviteAnswer(NamedTuple):
    """What the answer to an invite POST says, read at the edge.

    A named tuple: one is made per answer and read once, by
    :meth:`~callflow.Invite.receive_response` (a frozen attrs class cost ~2 us to make).

    Attributes:
        status_code: the HTTP status.
        status_text: the operation's status as written ("Running"), if readable.
        status: the same, as an :class:`OperationStatus`.
        operation_id: the operation's id from the body, if any.
        result_info: the operation's ``resultInfo``, if the body carries a valid one.
        operation: the whole operation, built only when its status is failed.
        error_code: Graph's ``error.code`` of a non-2xx answer.
        error_message: Graph's ``error.message`` of a non-2xx answer.
        participant_ids: each answered participant's id (``participants[].id``, else a
            ``participantId`` the answer gives), None where it gives none, in order.
    """

    status_code: int
    status_text: str | None = None
    status: OperationStatus | None = None
    operation_id: str | None = None
    result_info: ResultInfo | None = None
    operation: InviteParticipantsOperation | None = None
    error_code: str | None = None
    error_message: str | None = None
    participant_ids: tuple[str | None, ...] = ()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def read_invite_answer(status_code: int, data: Any) -> InviteAnswer:
    """Read the answer to an invite POST (``data`` is its parsed JSON body, or None).

    Only what the machine needs is read: the whole operation model is built only for a
    failed operation (its resultInfo). An unreadable body gives an answer with nothing but
    its status code: a 2xx still means the service took the invite.
    """
    if not isinstance(data, Mapping):
        return InviteAnswer(status_code=status_code)
    if not 200 <= status_code < 300:
        error = data.get("error")
        error = error if isinstance(error, Mapping) else {}
        return InviteAnswer(
            status_code=status_code,
            error_code=_text(error.get("code")),
            error_message=_text(error.get("message")),
        )
    status_text = _text(data.get("status"))
    status = None if status_text is None else OperationStatus.parse(status_text)
    operation = result_info = None
    try:
        if status is _FAILED:
            operation = InviteParticipantsOperation.from_json(dict(data))
            result_info = operation.result_info
        elif isinstance(info := data.get("resultInfo"), dict):
            result_info = ResultInfo.from_json(info, "$.resultInfo")
    except NotificationError:
        pass  # a malformed detail does not undo what the status says
    return InviteAnswer(
        status_code=status_code,
        status_text=status_text,
        status=status,
        operation_id=_text(data.get("id")),
        result_info=result_info,
        operation=operation,
        participant_ids=_participant_ids(data.get("participants")),
    )


def _participant_ids(participants: Any) -> tuple[str | None, ...]:
    """``participants[].id`` of an answer (the docs print null; the service fills it in).

    A ``participantId`` is kept as the answer's id only when ``id`` is absent: that is the
    shape a real answer was logged with. (For a move, the request's own ``participantId``
    names the participant in the *source* meeting; :class:`~callflow.Invite` ignores an
    echo of it.)
    """
    if not isinstance(participants, list):
        return ()
    return tuple(
        (_text(p.get("id")) or _text(p.get("participantId"))) if isinstance(p, Mapping) else None
        for p in participants
    )
