"""The values an invite hands out: the request it asks for, its steps, why it failed.

Theory of operation
-------------------
An :class:`~callflow.Invite` is the one thing in the core that changes; what it hands out
are values that never do. It asks for an :class:`HttpRequest` to be sent, records a
:class:`Step` for each transition (or each input it absorbed, ``ignored=True``), says why
it failed with a :class:`Failure` (a :class:`FailureReason` and what the service said),
and tells what became of a notification offered to it with an :class:`Outcome`.

``HttpRequest`` and ``Failure`` are frozen attrs classes; ``Step`` is a named tuple,
because every transition makes one and a named tuple is the cheapest immutable record
Python has. The two an invite's record holds, ``Step`` and ``Failure``, round-trip through
plain dicts (``to_dict`` / ``from_dict``), so :meth:`~callflow.Invite.to_dict` is built
from theirs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import attrs

from .._exceptions import InviteError
from ._machine import InviteState, Trigger
from ._models import ResultInfo
from ._strenum import StrEnum

__all__ = ["HttpRequest", "Step", "Failure", "FailureReason", "Outcome", "delete_request"]

#: ``json.dumps(..., separators=(",", ":"))``, made once: ``dumps`` with any argument
#: builds a new encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


class FailureReason(StrEnum):
    """Why an invite failed."""

    http_error = "http_error"  # the service refused the POST
    operation_failed = "operation_failed"  # the operation's status became failed
    timeout = "timeout"  # a state's deadline passed
    outcome_unknown = "outcome_unknown"  # the POST's answer was lost and nothing followed
    call_ended = "call_ended"  # the call itself ended first
    unreachable = "unreachable"  # the POST could not be sent at all
    cancelled = "cancelled"  # the bot cancelled it (the DELETE was done)
    cancel_failed = "cancel_failed"  # the DELETE could not be done: it may still ring


@attrs.frozen(kw_only=True)
class Failure:
    """Why an invite failed: the reason, and what the service said.

    Attributes:
        reason: a :class:`FailureReason`.
        message: one human sentence.
        status_code: the HTTP status of the refused POST.
        error_code: Graph's ``error.code`` of the refused POST.
        error_message: Graph's ``error.message`` of the refused POST.
        result_info: the failed operation's ``resultInfo``; for ``call_ended``, the ended
            call's ``resultInfo`` (its end reason codes), if the notification carried one.
        termination_reason: for ``call_ended``, the call's ``terminationReason`` as
            written (``AppInitiated``), if the notification carried one.

    """

    reason: FailureReason
    message: str
    status_code: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    result_info: ResultInfo | None = None
    termination_reason: str | None = None

    def describe(self) -> str:
        """The message, with what the service said."""
        parts = [f"{self.reason}: {self.message}"]
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.error_code:
            parts.append(f"{self.error_code}: {self.error_message or ''}".rstrip(": "))
        if self.result_info is not None:
            ri = self.result_info
            parts.append(f"resultInfo {ri.code}/{ri.subcode} {ri.message or ''}".rstrip())
        if self.termination_reason:
            parts.append(f"terminationReason {self.termination_reason}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready record."""
        return {
            "reason": self.reason.value,
            "message": self.message,
            "status_code": self.status_code,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "result_info": None if self.result_info is None else self.result_info.to_json(),
            "termination_reason": self.termination_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Failure:
        """The inverse of :meth:`to_dict`."""
        info = data.get("result_info")
        return cls(
            reason=FailureReason(data["reason"]),
            message=data["message"],
            status_code=data.get("status_code"),
            error_code=data.get("error_code"),
            error_message=data.get("error_message"),
            result_info=None if info is None else ResultInfo.from_json(info),
            termination_reason=data.get("termination_reason"),
        )


class Step(NamedTuple):
    """One transition of an invite's history (or one absorbed input, ``ignored``).

    An immutable record (a named tuple: every transition makes one, so it is the
    cheapest immutable record Python has).

    Attributes:
        trigger: what moved it.
        source: the state before.
        dest: the state after (equal to ``source`` for an ignored or noted input).
        cause: what caused it, in words ("HTTP 200 (Running)", "notification ...").
        at: when, on the clock of whoever fed the input.
        ignored: True when the input was absorbed and changed nothing.

    """

    trigger: Trigger
    source: InviteState
    dest: InviteState
    cause: str
    at: float
    ignored: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready record."""
        return {
            "trigger": self.trigger.value,
            "source": self.source.value,
            "dest": self.dest.value,
            "cause": self.cause,
            "at": self.at,
            "ignored": self.ignored,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        """The inverse of :meth:`to_dict`."""
        return cls(
            trigger=Trigger(data["trigger"]),
            source=InviteState(data["source"]),
            dest=InviteState(data["dest"]),
            cause=data["cause"],
            at=data["at"],
            ignored=data.get("ignored", False),
        )


class Outcome(StrEnum):
    """What an invite made of a notification offered to it."""

    applied = "applied"  # it concerned the invite and was taken into account
    duplicate = "duplicate"  # seen before; nothing changed
    late = "late"  # the invite had already finished; absorbed
    not_mine = "not_mine"  # it concerns another invite


@attrs.frozen(kw_only=True)
class HttpRequest:
    """The HTTP request an invite asks to be sent.

    Attributes:
        method: ``POST`` (the invite) or ``DELETE`` (a participant, to cancel or remove).
        url: the path, ``/communications/calls/{id}/participants/invite`` or
            ``/communications/calls/{id}/participants/{participantId}``.
        headers: content type only; the engine adds the bearer token.
        json: the body, shaped like the spec's request; empty for a DELETE (sent with none).

    """

    method: str
    url: str
    headers: Mapping[str, str]
    json: Mapping[str, Any] = attrs.field(factory=dict)

    def content(self) -> bytes:
        """The body encoded as JSON bytes (none for a DELETE)."""
        if self.method == "DELETE":
            return b""
        return _COMPACT.encode(self.json).encode()


def delete_request(call_id: str, participant_id: str) -> HttpRequest:
    """``DELETE /communications/calls/{call_id}/participants/{participant_id}``.

    Raises:
        InviteError: an id that is empty or would change the path (a ``/``).

    """
    for name, value in (("call_id", call_id), ("participant_id", participant_id)):
        if not isinstance(value, str) or not value or "/" in value:
            raise InviteError(f"{name}: {value!r} is not an id")
    return HttpRequest(
        method="DELETE",
        url=f"/communications/calls/{call_id}/participants/{participant_id}",
        headers={},
    )
