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
  ``@odata.type``, or untyped with a ``status`` on an ``operations`` path);
* **roster**: ``resourceData`` is an array (a participant collection);
* **call_ended**: ``changeType`` deleted on ``/communications/calls/{id}``, or a call
  whose ``state`` is ``terminated``;
* **call_updated**: any other update of a call resource (recognised, moves nothing);
* **participant_deleted**: ``changeType`` deleted on ``.../calls/{id}/participants/{pid}``;
* **unrecognised**: well-formed, but nothing callflow tracks (another operation type, a
  path it does not know). Returned, never dropped.

Everything callflow routes on (call id, operation id, clientContext, status) is checked
and extracted here. The nested models (:attr:`CommsNotification.operation`,
:attr:`CommsNotification.participants`) are built on first access, because building them
costs twice as much as decoding the JSON; a wrong type inside them raises
:class:`NotificationError` then, with its JSON path.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from .._exceptions import NotificationError
from ._models import (
    InviteParticipantsOperation,
    OperationStatus,
    Participant,
    ResultInfo,
    type_name,
)
from ._strenum import StrEnum

__all__ = [
    "NotificationKind",
    "CommsNotification",
    "parse_notifications",
    "MAX_BODY_BYTES",
    "MAX_NOTIFICATIONS",
    "normalize_resource",
]

#: The largest webhook body parsed (a real one is a few KB).
MAX_BODY_BYTES: Final = 1_048_576
#: The most notifications one body may carry.
MAX_NOTIFICATIONS: Final = 1000

_OPERATION_TYPE = "#microsoft.graph.inviteparticipantsoperation"
_CALL_TYPE = "#microsoft.graph.call"
# .../(app|communications)/calls/{call}[/{rest}], with or without scheme, host and version.
_RESOURCE = re.compile(r"(?:^|/)(?:app|communications)/calls/([^/?#]+)(?:/([^?#]*))?")


_NOTHING: Final[Mapping[str, Any]] = types.MappingProxyType({})


class NotificationKind(StrEnum):
    """What a notification is about, read from its content (see the module docstring)."""

    operation = "operation"
    roster = "roster"
    call_ended = "call_ended"
    call_updated = "call_updated"
    participant_deleted = "participant_deleted"
    unrecognised = "unrecognised"


def normalize_resource(resource: str) -> tuple[str, str] | None:
    """``(call id, rest of the path)`` for a calls resource, else None.

    ``/app/calls/X/...``, ``/communications/calls/X/...`` and full URLs name the same thing.
    """
    match = _RESOURCE.search(resource)
    if match is None:
        return None
    return match.group(1), (match.group(2) or "").strip("/")


@attrs.frozen(eq=False)
class CommsNotification:
    """One ``commsNotification``, classified.

    Attributes:
        change_type: ``created``, ``updated`` or ``deleted``.
        resource: the path as sent (``/app/...`` or ``/communications/...``).
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
    raw: Mapping[str, Any] = attrs.field(default=_NOTHING, repr=False)
    path: str = attrs.field(default="$", repr=False)
    _cache: dict[str, Any] | None = attrs.field(default=None, repr=False, alias="_cache")

    def _cached(self, key: str, build: Callable[[], Any]) -> Any:
        """Build a nested model once; the notification itself stays frozen."""
        cache = self._cache
        if cache is None:
            cache = {}
            object.__setattr__(self, "_cache", cache)
        if key not in cache:
            cache[key] = build()
        return cache[key]

    @property
    def operation(self) -> InviteParticipantsOperation | None:
        """The ``inviteParticipantsOperation`` this carries, built on first access.

        Raises:
            NotificationError: a property of the operation has the wrong type.

        """
        if self.kind is not NotificationKind.operation:
            return None
        op: InviteParticipantsOperation = self._cached(
            "operation",
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
        if self.kind is not NotificationKind.roster:
            return ()
        base = f"{self.path}.resourceData"
        found: tuple[Participant, ...] = self._cached(
            "participants",
            lambda: tuple(
                Participant.from_json(item, f"{base}[{i}]")
                for i, item in enumerate(self.resource_data)
            ),
        )
        return found

    @property
    def fingerprint(self) -> tuple[Any, ...]:
        """What makes two notifications the same news, for duplicate detection."""
        if self.kind is NotificationKind.operation:
            return (self.kind, self.operation_id, self.client_context, self.status)
        if self.kind is NotificationKind.roster:
            return (self.kind, self.call_id, self.change_type, repr(self.resource_data))
        return (self.kind, self.call_id, self.participant_id, self.change_type)

    def to_json(self) -> dict[str, Any]:
        """The notification's JSON exactly as it came."""
        return dict(self.raw)

    def describe(self) -> str:
        """A short human description: ``deleted /communications/calls/X/... (completed)``."""
        status = self.status
        text = f"{self.kind._value_} {self.change_type} {self.resource}"
        return text if status is None else f"{text} ({status._value_})"


def _loads(body: bytes | bytearray | memoryview | str, max_bytes: int) -> Any:
    size = len(body)
    if size > max_bytes:
        raise NotificationError(f"body of {size} bytes is over the limit of {max_bytes}")
    if isinstance(body, str):
        text = body
    else:
        try:
            text = (body if isinstance(body, bytes) else bytes(body)).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotificationError(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotificationError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise NotificationError("JSON nested too deeply") from None
    except ValueError as exc:  # a number over Python's int-digit limit: not a JSONDecodeError
        raise NotificationError(f"invalid JSON: {exc}") from None


def _opt_str(data: Mapping[str, Any], key: str, path: str, within: str = "") -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise NotificationError(
        f"expected a string, got {type_name(value)}", path=f"{path}{within}.{key}"
    )


_DATA = ".resourceData"
#: ``$.value[i]`` for every index a body may have, made once.
_ITEM_PATHS: Final = tuple(f"$.value[{i}]" for i in range(MAX_NOTIFICATIONS))


def _classify(item: Any, path: str) -> CommsNotification:
    if not isinstance(item, dict):
        raise NotificationError(f"expected an object, got {type_name(item)}", path=path)
    change_type = item.get("changeType")
    if not isinstance(change_type, str):
        raise NotificationError(
            f"expected a string, got {type_name(change_type)}", path=f"{path}.changeType"
        )
    resource = item.get("resource")
    if not isinstance(resource, str):
        raise NotificationError(
            f"expected a string, got {type_name(resource)}", path=f"{path}.resource"
        )
    resource_url = _opt_str(item, "resourceUrl", path)
    data = item.get("resourceData")
    where = normalize_resource(resource) or (
        normalize_resource(resource_url) if resource_url else None
    )
    call_id, rest = where if where is not None else (None, "")
    segments = rest.split("/") if rest else []
    common: dict[str, Any] = {
        "change_type": change_type,
        "resource": resource,
        "resource_url": resource_url,
        "call_id": call_id,
        "resource_data": data,
        "raw": item,
        "path": path,
    }
    data_path = path + _DATA

    if isinstance(data, dict):
        odata = data.get("@odata.type")
        if odata is not None and not isinstance(odata, str):
            raise NotificationError(
                f"expected a string, got {type_name(odata)}", path=f"{data_path}.@odata.type"
            )
        is_operation = (
            odata.lower() == _OPERATION_TYPE
            if odata
            else ("status" in data and segments[:1] == ["operations"])
        )
        if is_operation:
            status_text = _opt_str(data, "status", path, _DATA)
            status = None if status_text is None else OperationStatus.parse(status_text)
            if status_text is not None and status is None:
                raise NotificationError(
                    f"unknown operation status {status_text!r}", path=f"{data_path}.status"
                )
            operation_id = _opt_str(data, "id", path, _DATA)
            if operation_id is None and len(segments) == 2 and segments[1] != "participants":
                operation_id = segments[1]  # id in the path but not in the body
            return CommsNotification(
                kind=NotificationKind.operation,
                operation_id=operation_id,
                client_context=_opt_str(data, "clientContext", path, _DATA),
                status=status,
                has_result_info=data.get("resultInfo") is not None,
                **common,
            )
        if call_id is not None and not segments and (odata is None or odata == _CALL_TYPE):
            state = _opt_str(data, "state", path, _DATA)
            ended = change_type == "deleted" or state == "terminated"
            kind = NotificationKind.call_ended if ended else NotificationKind.call_updated
            return CommsNotification(kind=kind, **common)
    elif isinstance(data, list):
        for i, entry in enumerate(data):
            if not isinstance(entry, dict):
                raise NotificationError(
                    f"expected an object, got {type_name(entry)}", path=f"{data_path}[{i}]"
                )
        if call_id is not None:
            return CommsNotification(kind=NotificationKind.roster, **common)
    elif data is None and call_id is not None and change_type == "deleted":
        if not segments:
            return CommsNotification(kind=NotificationKind.call_ended, **common)
        if len(segments) == 2 and segments[0] == "participants":
            return CommsNotification(
                kind=NotificationKind.participant_deleted, participant_id=segments[1], **common
            )
    elif data is not None:
        raise NotificationError(
            f"expected an object, an array or null, got {type_name(data)}", path=data_path
        )
    if (
        call_id is not None
        and change_type == "deleted"
        and len(segments) == 2
        and segments[0] == "participants"
    ):
        return CommsNotification(
            kind=NotificationKind.participant_deleted, participant_id=segments[1], **common
        )
    return CommsNotification(kind=NotificationKind.unrecognised, **common)


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
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        document = _loads(body, max_bytes)
    else:
        document = body
    if isinstance(document, Mapping) and "value" not in document and "resource" in document:
        return (_classify(dict(document), "$"),)
    if not isinstance(document, Mapping):
        raise NotificationError(f"expected an object, got {type_name(document)}")
    items = document.get("value")
    if items is None:
        raise NotificationError("missing 'value': not a commsNotifications body")
    if not isinstance(items, list):
        raise NotificationError(f"expected an array, got {type_name(items)}", path="$.value")
    if len(items) > MAX_NOTIFICATIONS:
        raise NotificationError(
            f"{len(items)} notifications is over the limit of {MAX_NOTIFICATIONS}",
            path="$.value",
        )
    return tuple(_classify(item, _ITEM_PATHS[i]) for i, item in enumerate(items))
