"""Message flows as Mermaid sequence diagrams, and the spec's examples as flows.

Theory of operation
-------------------
A :class:`Message` is one arrow: who sends it, who receives it, what it says, and when.
:func:`sequence_diagram` writes a list of them as a Mermaid ``sequenceDiagram``, in the
order given, with each participant declared in the order it first appears; a name
Mermaid's lexer would misread (one starting with a keyword such as ``end``, or one with
spaces) is declared under a plain alias. :func:`trace_sequence_diagram` is the same for a
recorded exchange, where every arrow has a time.

Mermaid is picky about a few characters in free text (``#`` starts a comment or an entity,
``;`` ends a statement, ``:`` starts a label); :func:`mermaid_text` writes them as
Mermaid's entity codes (``#35;``, ``#59;``, ``#58;``). The state diagrams' labels go
through it too.

:func:`spec_flow` turns one invite as the spec prints it (the POST, its answer and the
notifications, Graph's JSON as mappings) into messages; playing the spec's examples
against the fake service to get theirs is :func:`callflow.testing.spec_flows`' business.

Everything is deterministic: the same messages give byte-identical text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

__all__ = [
    "Message",
    "sequence_diagram",
    "trace_sequence_diagram",
    "spec_flow",
    "mermaid_text",
]


def _non_empty(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError(f"Message.{attribute.name} must not be blank")


def _finite(_: object, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"Message.{attribute.name} must be finite, not {value!r}")


@attrs.frozen
class Message:
    """One arrow of a sequence diagram.

    Attributes:
        sender: who sends it, such as ``"Bot"``.
        receiver: who receives it, such as ``"Graph"``.
        label: what it says; newlines become line breaks.
        at: when it was sent, in seconds; shown relative to the first timed message.
        note: an optional remark drawn over the arrow's two ends.

    """

    sender: str = attrs.field(validator=[attrs.validators.instance_of(str), _non_empty])
    receiver: str = attrs.field(validator=[attrs.validators.instance_of(str), _non_empty])
    label: str = attrs.field(validator=attrs.validators.instance_of(str))
    at: float | None = attrs.field(default=None, validator=_finite)
    note: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )


_MERMAID_ENTITIES: Final = {
    "#": "#35;",
    ";": "#59;",
    ":": "#58;",
    "%": "#37;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
}


def mermaid_text(text: str) -> str:
    """Free text as Mermaid reads it: entity codes for its syntax, ``<br>`` for newlines."""
    escaped = "".join(_MERMAID_ENTITIES.get(char, char) for char in text)
    return "<br>".join(escaped.splitlines())


# Mermaid's sequence lexer matches keywords before names, so a participant called
# "Endpoint" would be read as `end` + "point": such names get a plain alias.
_KEYWORDS: Final = re.compile(
    r"(participant|actor|as|end|loop|rect|opt|alt|else|par|and|critical|option|break|left"
    r"|right|links?|properties|details|over|note|activate|deactivate|title|acc|autonumber"
    r"|off|box|create|destroy|sequencediagram)",
    re.IGNORECASE,
)
_PLAIN_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _participant_ids(messages: Sequence[Message]) -> dict[str, str]:
    names = dict.fromkeys(name for m in messages for name in (m.sender, m.receiver))
    ids: dict[str, str] = {}
    for number, name in enumerate(names, start=1):
        plain = _PLAIN_NAME.fullmatch(name) and not _KEYWORDS.match(name)
        ids[name] = name if plain else f"p{number}"
    return ids


def sequence_diagram(messages: Sequence[Message], *, title: str | None = None) -> str:
    """A Mermaid ``sequenceDiagram`` of messages, in the order given.

    Participants appear in the order they first send or receive. A message with ``at``
    shows its time relative to the first timed message (``[+0.012s]``); a message with a
    ``note`` gets a note over its sender and receiver. Characters Mermaid would read as
    syntax (``#``, ``;``, ``:``, ``%``, quotes, angle brackets) are written as entity
    codes, and newlines become line breaks, so any text is drawn as given.

    Args:
        messages: the arrows, oldest first.
        title: an optional title above the diagram.

    Returns:
        The diagram's source text, ending with a newline.

    """
    ids = _participant_ids(messages)
    lines = ["sequenceDiagram"]
    if title:
        lines.append(f"    title {mermaid_text(title)}")
    for name, ident in ids.items():
        alias = "" if name == ident else f" as {mermaid_text(name)}"
        lines.append(f"    participant {ident}{alias}")
    origin = next((m.at for m in messages if m.at is not None), None)
    for message in messages:
        label = message.label
        if message.at is not None and origin is not None:
            label = f"[+{message.at - origin:.3f}s] {label}"
        sender, receiver = ids[message.sender], ids[message.receiver]
        lines.append(f"    {sender}->>{receiver}: {mermaid_text(label) or ' '}")
        if message.note:
            over = sender if sender == receiver else f"{sender},{receiver}"
            lines.append(f"    Note over {over}: {mermaid_text(message.note)}")
    return "\n".join(lines) + "\n"


def trace_sequence_diagram(messages: Sequence[Message], *, title: str | None = None) -> str:
    """The sequence diagram of a recorded exchange, every arrow with its time.

    Args:
        messages: the recorded messages, oldest first; each must have ``at``.
        title: an optional title above the diagram.

    Returns:
        The diagram's source text, as :func:`sequence_diagram` writes it.

    Raises:
        ValueError: a message has no ``at``.

    """
    for index, message in enumerate(messages):
        if message.at is None:
            raise ValueError(f"message {index} ({message.label!r}) has no time: set Message.at")
    return sequence_diagram(messages, title=title)


_GUID: Final = re.compile(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def _short(text: object) -> str:
    """Text with each GUID cut to its first eight digits, to keep arrows readable."""
    return _GUID.sub(r"\1…", str(text))


def _get(mapping: object, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, Mapping) else None


def _identity(identity: object) -> str:
    """``user 7e1b4346…`` or ``phone +12345678901``: the first identity an identitySet holds."""
    if isinstance(identity, Mapping):
        for key, value in identity.items():
            if isinstance(value, Mapping) and _get(value, "id"):
                return f"{key} {_short(value['id'])}"
    return "?"


def _invite_summary(request: Mapping[str, Any]) -> str:
    participants = _get(request, "participants")
    participants = participants if isinstance(participants, list) else []
    who = [_identity(_get(p, "identity")) for p in participants]
    parts = [f"participants={len(participants)}" + (f" ({', '.join(who)})" if who else "")]
    for key in ("replacesCallId", "participantId"):
        values = dict.fromkeys(_get(p, key) for p in participants) if participants else {}
        parts += [f"{key}={_short(v)}" for v in values if v is not None]
    return " ".join(parts)


def _notification_summary(notification: Mapping[str, Any]) -> str:
    data = _get(notification, "resourceData")
    if isinstance(data, list):
        return f"roster of {len(data)}"
    parts = [f"{key}={_get(data, key)}" for key in ("status", "state") if _get(data, key)]
    return " ".join(parts)


def spec_flow(
    request_path: str,
    request: Mapping[str, Any],
    response: Mapping[str, Any],
    notifications: Sequence[Mapping[str, Any]],
) -> list[Message]:
    """The messages of one invite as the spec shows it: POST, answer, notifications.

    Reads only the mappings given (Graph's JSON as printed in the spec), so the answer is
    shown as ``200 OK`` like every answer in the spec; GUIDs are cut to eight digits so
    the arrows stay readable.

    Args:
        request_path: the POST's path, such as ``/communications/calls/{id}/participants/invite``.
        request: the POST's JSON body.
        response: the answer's JSON body (an ``inviteParticipantsOperation``).
        notifications: ``commsNotifications`` bodies, in order of delivery.

    Returns:
        ``Bot -> Graph`` for the POST, ``Graph -> Bot`` for the answer and for each
        notification in each body.

    """
    operation = str(_get(response, "@odata.type") or "operation").rpartition(".")[2]
    answer = (
        f"200 OK {operation} status={_get(response, 'status')} id={_short(_get(response, 'id'))}"
    )
    messages = [
        Message("Bot", "Graph", f"POST {_short(request_path)}\n{_invite_summary(request)}"),
        Message("Graph", "Bot", answer),
    ]
    for body in notifications:
        values = _get(body, "value")
        for item in values if isinstance(values, list) else [body]:
            head = f"{_get(item, 'changeType')} {_short(_get(item, 'resource'))}"
            summary = _notification_summary(item)
            messages.append(Message("Graph", "Bot", f"{head}\n{summary}" if summary else head))
    return messages
