"""Traces: every input an invite sees, as JSON lines, and their replay.

Theory of operation
-------------------
The core is deterministic: the same inputs at the same times give the same history. So
recording an invite's inputs is enough to reproduce its path exactly, and a production
incident becomes a regression test. A :class:`Recorder` attached to a
:class:`~callflow.Client` is handed one event per input, in order:

=================  ==========================================================
``type``           fields
=================  ==========================================================
``invite``         ``call_id``, ``request`` (the POST body), ``kind``
``response``       ``status_code``, ``headers`` (Location, Retry-After), ``body``
``outcome_unknown``  ``reason``
``send_failed``    ``reason``
``notification``   ``notification`` (one commsNotification, as it came)
``timeout``        ``state`` (the state whose deadline passed)
``result``         ``state``, ``history`` (written last: what the path was)
=================  ==========================================================

Each event has ``client_context`` and ``at`` (the clock's time). Bearer tokens are never
part of an event. :func:`replay` feeds the inputs to a fresh :class:`~callflow.Invite`
and returns it; its history equals the recorded one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from ._core._invite import Invite as CoreInvite
from ._core._notifications import parse_notifications
from ._core._records import Step
from ._exceptions import CallflowError
from ._ids import Invite

__all__ = [
    "Recorder",
    "MemoryRecorder",
    "JsonlRecorder",
    "TraceError",
    "read_trace",
    "replay",
    "replay_all",
    "RECORDED_HEADERS",
]

#: The response headers a trace keeps (never Authorization).
RECORDED_HEADERS = ("location", "retry-after", "content-type", "request-id")


class TraceError(CallflowError, ValueError):
    """A trace that cannot be read or replayed; the message names the line."""


class Recorder(Protocol):
    """Where a Client writes each input of each invite."""

    def record(self, event: Mapping[str, Any]) -> None:
        """Take one event (a JSON-ready mapping)."""
        ...


class MemoryRecorder:
    """Keeps events in a list; :meth:`lines` gives them as JSON lines."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def record(self, event: Mapping[str, Any]) -> None:
        """Append ``event``."""
        self.events.append(dict(event))

    def of(self, client_context: str) -> list[dict[str, Any]]:
        """The events of one invite."""
        return [e for e in self.events if e.get("client_context") == client_context]

    def lines(self, client_context: str | None = None) -> list[str]:
        """The events (of one invite, or all) as JSON lines."""
        events = self.events if client_context is None else self.of(client_context)
        return [json.dumps(e, sort_keys=True) for e in events]


class JsonlRecorder:
    """Appends each event as one JSON line to a file (or an open text stream).

    Args:
        target: a path, or a text stream it writes to and flushes.
    """

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, (str, Path)):
            self._stream: IO[str] = Path(target).open("a", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._stream = target
            self._owned = False

    def record(self, event: Mapping[str, Any]) -> None:
        """Write ``event`` as one line and flush."""
        self._stream.write(json.dumps(event, sort_keys=True) + "\n")
        self._stream.flush()

    def close(self) -> None:
        """Close the file if this recorder opened it."""
        if self._owned:
            self._stream.close()


def read_trace(source: str | Path | Iterable[str]) -> list[dict[str, Any]]:
    """Read a JSON-lines trace.

    Raises:
        TraceError: unreadable file, invalid JSON, or a line that is not an event.
    """
    if isinstance(source, (str, Path)):
        try:
            lines: Iterable[str] = Path(source).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TraceError(f"{source}: cannot read the trace: {exc}") from None
    else:
        lines = source
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceError(f"line {number}: invalid JSON: {exc.msg}") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise TraceError(f"line {number}: not a trace event (no 'type')")
        events.append(event)
    return events


def _invites(events: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        groups.setdefault(str(event.get("client_context")), []).append(event)
    yield from groups.values()


def replay(events: Iterable[Mapping[str, Any]]) -> Invite:
    """Feed one invite's recorded inputs to a fresh :class:`~callflow.Invite`.

    Args:
        events: the events of ONE invite (``read_trace`` of a file, or
            ``MemoryRecorder.of(context)``), its ``invite`` event first.

    Returns:
        The invite, in the state the inputs lead to.

    Raises:
        TraceError: no ``invite`` event, an unknown event type, a malformed event, or
            (when the trace has a ``result``) a path that differs from the recorded one.
    """
    invite: Invite | None = None
    recorded: list[Step] | None = None
    for number, event in enumerate(events, 1):
        kind = event.get("type")
        try:
            if kind == "invite":
                invite = Invite.from_request(
                    event["call_id"], event["request"], invite_id=event.get("invite_id")
                )
            elif kind == "result":
                recorded = [Step.from_dict(s) for s in event["history"]]
            elif invite is None:
                raise TraceError(f"event {number}: {kind!r} before the 'invite' event")
            elif not _feed(invite, kind, event, float(event["at"])):
                raise TraceError(f"event {number}: unknown type {kind!r}")
        except TraceError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise TraceError(f"event {number} ({kind}): malformed: {exc}") from None
    if invite is None:
        raise TraceError("the trace has no 'invite' event")
    if recorded is not None and recorded != list(invite.history):
        raise TraceError(
            f"replay of {invite.client_context} took a different path than recorded: "
            f"{[str(s.dest) for s in invite.history]} vs {[str(s.dest) for s in recorded]}"
        )
    return invite


def _feed(invite: CoreInvite, kind: object, event: Mapping[str, Any], at: float) -> bool:
    """Feed one recorded input; False for an unknown type."""
    if kind == "response":
        invite.receive_response(
            int(event["status_code"]), event.get("headers") or {}, event.get("body"), at=at
        )
    elif kind == "notification":
        for n in parse_notifications(event["notification"]):
            invite.offer(n, at=at)
    elif kind == "timeout":
        invite.time_out(at=at)
    elif kind == "outcome_unknown":
        invite.outcome_unknown(event["reason"], at=at)
    elif kind == "send_failed":
        invite.send_failed(event["reason"], at=at)
    else:
        return False
    return True


def replay_all(events: list[dict[str, Any]]) -> list[Invite]:
    """Replay every invite of a trace that holds several (grouped by clientContext)."""
    return [replay(group) for group in _invites(events)]
