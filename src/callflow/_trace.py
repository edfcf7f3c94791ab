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
``cancel``         (none: the bot asked for a cancel)
``delete_response``  ``participant_id``, ``status_code`` (a DELETE's final answer)
``delete_failed``  ``participant_id``, ``reason`` (a DELETE that could not be done)
``result``         ``state``, ``history`` (written last: what the path was)
=================  ==========================================================

Each event has ``client_context`` and ``at`` (the clock's time), and ``invite_id`` where
the Client gives one. Bearer tokens are never part of an event, but the request and the
notifications are: a trace holds phone numbers, user ids and display names (personal
data). Wrap a recorder in :class:`RedactingRecorder` to keep them out.
:func:`replay` feeds the inputs to a fresh :class:`~callflow.Invite` and returns it; its
history equals the recorded one.

A trace may hold several invites, and a clientContext may be reused once an invite has
finished. :func:`invites_of` groups the events by ``invite_id`` when they carry one;
otherwise by clientContext, where each ``invite`` event starts a new invite (the later
events of that clientContext belong to the latest one, except a ``result``, which belongs
to the latest invite that started no later than its history's first step).

A corrupted trace (invalid JSON, a line nested too deep, an integer too long to read) is
a :class:`TraceError` naming the line, never a raw ``RecursionError`` or ``ValueError``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Final, Protocol

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
    "invites_of",
    "RedactingRecorder",
    "RECORDED_HEADERS",
]

logger = logging.getLogger("callflow")

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

    :meth:`record` only queues the line: a worker thread writes and flushes it, so a slow
    disk never blocks the event loop. Call :meth:`close` (or use the recorder as a
    context manager) to wait until every line is written; :meth:`flush` waits without
    closing.

    Args:
        target: a path (opened for appending), or a text stream it writes to and flushes
            (left open by :meth:`close`).

    """

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, (str, Path)):
            self._stream: IO[str] = Path(target).open("a", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._closed = False
        #: The exception the last failed write raised, if any (also logged).
        self.error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<JsonlRecorder {getattr(self._stream, 'name', self._stream)!r}>"

    def __enter__(self) -> JsonlRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def record(self, event: Mapping[str, Any]) -> None:
        """Queue ``event`` as one line; the worker thread writes it.

        Raises:
            TraceError: the recorder is closed.

        """
        if self._closed:
            raise TraceError("the JsonlRecorder is closed")
        line = json.dumps(event, sort_keys=True) + "\n"
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write, name="callflow JsonlRecorder", daemon=True
            )
            self._writer.start()
        self._lines.put(line)

    def _write(self) -> None:
        while True:
            line = self._lines.get()
            try:
                if line is None:
                    return
                self._stream.write(line)
                if self._lines.empty():
                    self._stream.flush()
            except Exception as exc:  # a full disk must not kill the thread silently
                self.error = exc
                logger.exception("JsonlRecorder: writing a trace line failed")
            finally:
                self._lines.task_done()

    def flush(self) -> None:
        """Wait until every line recorded so far is written and flushed (blocks)."""
        if self._writer is not None:
            self._lines.join()
        if not self._stream.closed:
            self._stream.flush()

    def close(self) -> None:
        """Write what is queued, stop the worker, and close the file if this recorder opened it."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._lines.put(None)
            self._writer.join()
        if self._owned:
            self._stream.close()
        elif not self._stream.closed:
            self._stream.flush()


#: The identitySet keys whose identity's ``id`` and ``displayName`` are personal data.
_IDENTITY_KEYS: Final = frozenset(
    {
        "user",
        "application",
        "applicationInstance",
        "device",
        "phone",
        "guest",
        "encrypted",
        "onPremises",
        "acsUser",
        "spoolUser",
        "teamsUser",
        "azureCommunicationServicesUser",
    }
)


class RedactingRecorder:
    """Passes each event on to ``recorder`` with the participants' identities pseudonymised.

    A trace holds phone numbers, user ids and display names (in the invite's request and
    in the notifications). This wrapper replaces every identity's ``id`` with a stable
    pseudonym (a salted hash: the same id gives the same pseudonym within a trace, so
    rosters still match and the trace still replays to the same path; a phone number
    becomes another E.164 number, ``+999`` and 11 digits) and every ``displayName`` with
    ``"redacted"``. Call ids, operation ids and clientContexts are kept.

    Args:
        recorder: where the redacted events go.
        salt: mixed into the hash; keep it secret to make pseudonyms unguessable.

    """

    def __init__(self, recorder: Recorder, *, salt: str = "") -> None:
        self.recorder = recorder
        self._salt = salt.encode()

    def __repr__(self) -> str:
        return f"<RedactingRecorder of {self.recorder!r}>"

    def record(self, event: Mapping[str, Any]) -> None:
        """Redact ``event`` and hand it to the wrapped recorder."""
        self.recorder.record(self.redact(event))

    def redact(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``event`` with its identities pseudonymised.

        Args:
            event: one trace event.

        Returns:
            The redacted copy (``event`` itself is not changed).

        """
        redacted = self._walk(event, None)
        assert isinstance(redacted, dict)
        return redacted

    def _walk(self, value: Any, key: str | None) -> Any:
        if isinstance(value, Mapping):
            if key in _IDENTITY_KEYS:
                return {k: self._identity_field(key, k, v) for k, v in value.items()}
            return {
                k: "redacted" if k == "displayName" and isinstance(v, str) else self._walk(v, k)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._walk(v, key) for v in value]
        return value

    def _identity_field(self, kind: str, name: str, value: Any) -> Any:
        if not isinstance(value, str):
            return self._walk(value, name)
        if name == "displayName":
            return "redacted"
        if name != "id":
            return value
        digest = hashlib.sha256(self._salt + value.encode()).hexdigest()
        if kind == "phone":
            return "+999" + str(int(digest, 16))[-11:]
        return f"redacted-{digest[:24]}"


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
        except RecursionError:
            raise TraceError(f"line {number}: the JSON is nested too deeply to read") from None
        except ValueError as exc:  # e.g. an integer of more digits than Python converts
            raise TraceError(f"line {number}: unreadable JSON: {exc}") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise TraceError(f"line {number}: not a trace event (no 'type')")
        events.append(event)
    return events


def invites_of(events: Iterable[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group a trace's events by invite, in the order the invites started.

    Events with an ``invite_id`` are grouped by it. Without one, they are grouped by
    clientContext, and each ``invite`` event starts a new invite of its clientContext:
    a clientContext reused after an invite finished replays as two invites.

    Args:
        events: the events of a trace (:func:`read_trace`).

    Returns:
        One list of events per invite.

    """
    groups: list[list[dict[str, Any]]] = []
    by_id: dict[str, list[dict[str, Any]]] = {}
    by_context: dict[str, list[list[dict[str, Any]]]] = {}
    for raw in events:
        event = dict(raw)
        invite_id = event.get("invite_id")
        if invite_id is not None:
            group = by_id.get(str(invite_id))
            if group is None:
                group = by_id[str(invite_id)] = []
                groups.append(group)
            group.append(event)
            continue
        context = str(event.get("client_context"))
        mine = by_context.setdefault(context, [])
        kind = event.get("type")
        if kind == "invite" or not mine:
            if not (mine and kind == "invite" and not _started(mine[-1])):
                mine.append([])
                groups.append(mine[-1])
            mine[-1].append(event)
        elif kind == "result":
            _owner_of_result(mine, event).append(event)
        else:
            mine[-1].append(event)
    return groups


def _started(group: list[dict[str, Any]]) -> bool:
    return any(e.get("type") == "invite" for e in group)


def _owner_of_result(groups: list[list[dict[str, Any]]], result: dict[str, Any]) -> list[Any]:
    """The invite of a reused clientContext that a ``result`` belongs to.

    A result is written when its invite is released, maybe after the next one started:
    it belongs to the latest that started no later than the recorded history's first
    step; without a usable history, to the latest.
    """
    history = result.get("history")
    first = history[0] if isinstance(history, list) and history else None
    at = first.get("at") if isinstance(first, dict) else None
    if not isinstance(at, (int, float)):
        return groups[-1]
    owner = groups[0]
    for group in groups:
        began = next((e.get("at") for e in group if e.get("type") == "invite"), None)
        if isinstance(began, (int, float)) and began <= at:
            owner = group
    return owner


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
        except RecursionError:
            raise TraceError(f"event {number} ({kind}): nested too deeply to replay") from None
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
        body = event.get("body")
        if body is not None and not isinstance(body, (str, Mapping)):
            # An array, number or boolean answer was recorded as parsed JSON: hand the
            # invite the same JSON text it got then.
            body = json.dumps(body)
        invite.receive_response(int(event["status_code"]), event.get("headers") or {}, body, at=at)
    elif kind == "notification":
        for n in parse_notifications(event["notification"]):
            invite.offer(n, at=at)
    elif kind == "timeout":
        invite.time_out(at=at)
    elif kind == "outcome_unknown":
        invite.outcome_unknown(event["reason"], at=at)
    elif kind == "send_failed":
        invite.send_failed(event["reason"], at=at)
    elif kind == "cancel":
        invite.cancel(at=at)
    elif kind == "delete_response":
        invite.delete_answered(str(event["participant_id"]), int(event["status_code"]), at=at)
    elif kind == "delete_failed":
        invite.delete_failed(str(event["participant_id"]), str(event["reason"]), at=at)
    else:
        return False
    return True


def replay_all(events: list[dict[str, Any]]) -> list[Invite]:
    """Replay every invite of a trace that holds several (grouped by :func:`invites_of`)."""
    return [replay(group) for group in invites_of(events)]
