"""One invite as a small record, moved by the kind's machine; no I/O.

Theory of operation
-------------------
Like h11's connection, an :class:`Invite` is fed what happened (the HTTP answer to its
POST, notifications, a deadline passing) and answers with its state. It never sends or
waits; :class:`callflow.Client` does that. So a unit test can step through an invite one
input after another.

Each input is turned into a :class:`~callflow._core._machine.Trigger` here, and the kind's
compiled table (:data:`callflow._core._machine.TABLES`) says where it leads; no transition is
written as code in this module. What this module decides is *which* trigger an input is:

==========================================  =================================
input                                       trigger
==========================================  =================================
2xx, operation status running / notStarted  accepted
2xx, operation status completed             operation_completed
2xx, operation status failed                operation_failed
non-2xx                                     rejected
:meth:`Invite.outcome_unknown`              response_unknown
operation notification, completed / failed  operation_completed / _failed
call_ended on ``replacesCallId``            original_gone (replace kinds)
participant ``participantId`` deleted or
  roster entry with removedState on the
  source meeting (``replacesCallId``)       original_gone (move_meeting)
call_ended on ``call_id``                   call_ended
:meth:`Invite.time_out`                     timed_out
:meth:`Invite.cancel`                       cancel_requested
:meth:`Invite.delete_answered` (204, 404
  for the last participant to remove)       deleted
:meth:`Invite.delete_answered` (another
  status), :meth:`Invite.delete_failed`     delete_failed
==========================================  =================================

Cancelling: in ``cancelling`` the invite asks for one DELETE per participant
(:meth:`Invite.delete_requests`) as soon as it knows that participant's id: from the
POST's answer (``participants[].id``), else from a roster entry of the call whose
identity matches the invitee's. Until then it waits, bounded by the ``cancelling``
deadline. The engine performs each DELETE under the retry policy
(:class:`callflow._core._deleting.Deleting`) and feeds the final answer back.

Inputs a terminal invite receives are absorbed: no exception, no change, and a step with
``ignored=True`` in :attr:`Invite.history`. A notification already seen (same
:attr:`~callflow.CommsNotification.fingerprint`) is a duplicate: it changes nothing and is
not recorded.

What an invite hands out (the :class:`~callflow.HttpRequest` it asks for, its
:class:`~callflow.Step` history, its :class:`~callflow.Failure`, the
:class:`~callflow.Outcome` of a notification) are values defined in
:mod:`callflow._core._records`.

An invite's state is a plain record: :meth:`Invite.to_dict` / :meth:`Invite.from_dict`
round-trip it, so it can be kept outside the process.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeVar

from .._exceptions import InviteError, NotificationError
from ._machine import (
    EFFECTS,
    FAILURE_REASONS,
    TABLES,
    TERMINAL_STATES,
    InviteKind,
    InviteState,
    Trigger,
)
from ._models import (
    IdentitySet,
    InvitationParticipantInfo,
    InviteParticipantsOperation,
    OperationStatus,
    Participant,
    ResultInfo,
    read_invite_answer,
)
from ._notifications import CommsNotification, NotificationKind, RosterIndex
from ._records import Failure, FailureReason, HttpRequest, Outcome, Step, delete_request
from ._retry import UNKNOWN_STATUSES, _header

__all__ = ["Invite", "MAX_PARTICIPANTS", "MAX_CLIENT_CONTEXT"]

MAX_PARTICIPANTS: Final = 5
MAX_CLIENT_CONTEXT: Final = 256
_OBSERVED: Final = "observed"
_TERMINAL: Final = TERMINAL_STATES
_ENDS_WITH_REASON: Final = (InviteState.failed, InviteState.cancelled)
#: Shared by every invite that removed nobody, or holds no fact yet (an empty frozenset is
#: not a singleton on every Python, and each costs ~200 bytes).
_NONE: Final[frozenset[str]] = frozenset()

_UNSET: Final = object()


@functools.cache
def _slots_of(mro: tuple[type, ...]) -> tuple[str, ...]:
    """Every slot of a class, given its ``__mro__`` (what :meth:`Invite.__copy__` copies)."""
    names: list[str] = []
    for klass in reversed(mro):
        slots = vars(klass).get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return tuple(dict.fromkeys(n for n in names if n not in ("__dict__", "__weakref__")))


_I = TypeVar("_I", bound="Invite")

#: :data:`~callflow._core._machine.FAILURE_REASONS` as FailureReasons (a bad name fails here).
_REASONS: Final = {
    key: tuple((fact, FailureReason(reason)) for fact, reason in rows)
    for key, rows in FAILURE_REASONS.items()
}
_EFFECTS: Final = dict(EFFECTS)
_TIMEOUT_MESSAGES: Final = {
    FailureReason.outcome_unknown: (
        "the answer to the invite POST was lost and no notification carrying "
        "clientContext {context} came before the deadline"
    ),
    FailureReason.timeout: "no outcome before the {state} deadline",
}
#: In tearing_down_original the operation had completed: the participant may be in both.
_TEARDOWN_TIMEOUT: Final = (
    "the operation completed but the {what} ({original}) was not reported gone before the deadline"
)
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")

# Enum members read on the hot path, bound once: on Python 3.11 every attribute read
# through an enum class goes through EnumType's __getattr__ hook, ~10x a global's cost.
_KIND_OPERATION: Final = NotificationKind.operation
_COMPLETED: Final = OperationStatus.completed
_FAILED: Final = OperationStatus.failed
_ACCEPTED: Final = Trigger.accepted
_OPERATION_COMPLETED: Final = Trigger.operation_completed
_OPERATION_FAILED: Final = Trigger.operation_failed
_NOT_MINE: Final = Outcome.not_mine
_APPLIED: Final = Outcome.applied
_DUPLICATE: Final = Outcome.duplicate
_LATE: Final = Outcome.late
_KIND_ROSTER: Final = NotificationKind.roster
_KIND_CALL_ENDED: Final = NotificationKind.call_ended
_KIND_PARTICIPANT_DELETED: Final = NotificationKind.participant_deleted
_PLAIN_INVITE: Final = InviteKind.invite
_MOVE_MEETING: Final = InviteKind.move_meeting
_CALL_ENDED: Final = Trigger.call_ended
_ORIGINAL_GONE: Final = Trigger.original_gone
_CANCELLED: Final = InviteState.cancelled
_REQUESTED: Final = InviteState.requested
#: Makes a :class:`Step` without the named tuple's keyword-reading ``__new__`` (every
#: transition makes one); every field is given, in order.
_new_step: Final = tuple.__new__


def _participant(value: InvitationParticipantInfo | Mapping[str, Any], index: int) -> Any:
    if type(value) is InvitationParticipantInfo or isinstance(value, InvitationParticipantInfo):
        return value
    path = f"participants[{index}]"  # only an error or a mapping needs it
    if isinstance(value, Mapping):
        try:
            return InvitationParticipantInfo.from_json(dict(value), path)
        except NotificationError as exc:
            raise InviteError(str(exc)) from None
    raise InviteError(
        f"{path}: expected an InvitationParticipantInfo or a mapping, got {type(value).__name__}"
    )


def _check(participants: Sequence[InvitationParticipantInfo], client_context: str) -> InviteKind:
    """Validate an invite before anything is sent; return its kind."""
    if not participants:
        raise InviteError("participants: at least one participant is required")
    if len(participants) > MAX_PARTICIPANTS:
        raise InviteError(
            f"participants: {len(participants)} given, Graph invites at most {MAX_PARTICIPANTS}"
        )
    if len(client_context) > MAX_CLIENT_CONTEXT:
        raise InviteError(
            f"clientContext: {len(client_context)} characters, the limit is {MAX_CLIENT_CONTEXT}"
        )
    replacing = [p for p in participants if p.replaces_call_id]
    if replacing and len(participants) > 1:
        raise InviteError(
            f"participants: replacesCallId is set and {len(participants)} participants are "
            "given; Graph reads only the first and silently ignores the rest, so callflow "
            "refuses: invite one participant per replacesCallId"
        )
    for i, p in enumerate(participants):
        where = f"participants[{i}]"
        if p.participant_id and not p.replaces_call_id:
            raise InviteError(f"{where}.participantId: set without replacesCallId")
        identity = p.identity
        if not isinstance(identity, IdentitySet) or not identity.identities():
            raise InviteError(f"{where}.identity: no identity (user, phone, application, ...)")
        phone = identity.phone
        if phone is not None and phone.id is None:
            raise InviteError(
                f"{where}.identity.phone: no 'id': the E.164 number goes in phone.id, "
                '{"phone": {"id": "+12345678901"}}'
            )
        if phone is not None and (phone.id is None or not _E164.match(phone.id)):
            raise InviteError(
                f"{where}.identity.phone.id: {phone.id!r} is not an E.164 number (+12345678901)"
            )
    if not replacing:
        return _PLAIN_INVITE
    if participants[0].participant_id:
        return InviteKind.move_meeting
    return InviteKind.replace_p2p


def _body(body: bytes | str | Mapping[str, Any] | None) -> Any:
    if body is None or type(body) is dict or isinstance(body, Mapping):
        return body
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


class Invite:
    """One ``POST /communications/calls/{id}/participants/invite``, as a state machine.

    Args:
        call_id: the call to invite into.
        participants: ``InvitationParticipantInfo`` objects or spec-shaped mappings.
        client_context: the correlation key, made at the edge (required here).
        invite_id: this invite's own id, unique per invite, made at the edge (required
            here). :class:`callflow.Invite` makes both when they are not given.

    Inputs carry their time (``at=``). An input given without one happens at the time
    of the invite's latest step (0.0 before any): the core never reads a clock.

    Raises:
        InviteError: the request is invalid (see :func:`Invite.from_request`), or an id
            is missing.

    """

    __slots__ = (
        "_facts",
        "_pids",
        "_removed",
        "_seen",
        "_steps",
        "call_id",
        "client_context",
        "failure",
        "invite_id",
        "kind",
        "operation_id",
        "participants",
        "result_info",
        "roster",
        "state",
    )

    kind: InviteKind
    state: InviteState
    call_id: str
    client_context: str
    invite_id: str
    participants: tuple[InvitationParticipantInfo, ...]
    operation_id: str | None
    result_info: ResultInfo | None
    failure: Failure | None
    #: The latest roster notification that concerned this invite, or None.
    roster: CommsNotification | None

    def __init__(
        self,
        call_id: str,
        participants: Sequence[InvitationParticipantInfo | Mapping[str, Any]],
        *,
        client_context: str | None = None,
        invite_id: str | None = None,
    ) -> None:
        if not isinstance(call_id, str) or not call_id or "/" in call_id:
            raise InviteError(f"call_id: {call_id!r} is not a call id")
        if isinstance(participants, (str, bytes, Mapping)):
            raise InviteError("participants: expected a sequence of participants")
        parsed = tuple(_participant(p, i) for i, p in enumerate(participants))
        if client_context is None:
            raise InviteError("clientContext: required by the core (callflow.Invite makes one)")
        if not isinstance(client_context, str) or not client_context:
            raise InviteError("clientContext: must be a non-empty string")
        if invite_id is None:
            raise InviteError("invite_id: required by the core (callflow.Invite makes one)")
        if not isinstance(invite_id, str) or not invite_id:
            raise InviteError("invite_id: must be a non-empty string")
        self.kind = _check(parsed, client_context)
        self.state = _REQUESTED
        self.call_id = call_id
        self.client_context = client_context
        self.invite_id = invite_id
        self.participants = parsed
        self.operation_id = None
        self.result_info = None
        self.failure = None
        self.roster = None
        self._steps: list[Step] = []
        self._seen: set[tuple[Any, ...]] | None = None
        self._facts: frozenset[str] = _NONE
        # Made when first needed: most invites never learn an id nor send a DELETE.
        self._pids: list[str | None] | None = None
        self._removed: frozenset[str] = _NONE

    @classmethod
    def from_request(
        cls: type[_I], call_id: str, body: Mapping[str, Any], *, invite_id: str | None = None
    ) -> _I:
        """Build an invite from a request body exactly as the spec prints it.

        Args:
            call_id: the ``{id}`` of ``/communications/calls/{id}/participants/invite``.
            body: ``{"participants": [...], "clientContext": "..."}``.
            invite_id: the invite's own id (see :class:`Invite`).

        Raises:
            InviteError: no participants; more than 5; more than one with
                replacesCallId set; participantId without replacesCallId; clientContext
                over 256 characters; a phone id not in E.164; an identity set with no
                identity; a body of the wrong shape.

        """
        if not isinstance(body, Mapping):
            raise InviteError("body: expected a JSON object")
        participants = body.get("participants")
        if not isinstance(participants, list):
            raise InviteError("participants: expected an array")
        context = body.get("clientContext")
        if context is not None and not isinstance(context, str):
            raise InviteError("clientContext: expected a string")
        return cls(call_id, participants, client_context=context, invite_id=invite_id)

    # -- what the invite asks for --------------------------------------------------------

    def request(self) -> HttpRequest:
        """The POST to send, shaped like the spec's request."""
        return HttpRequest(
            method="POST",
            url=f"/communications/calls/{self.call_id}/participants/invite",
            headers={"Content-Type": "application/json"},
            json={
                "participants": [p.to_json() for p in self.participants],
                "clientContext": self.client_context,
            },
        )

    @property
    def replaces_call_id(self) -> str | None:
        """The original call (replace_p2p) or source meeting (move_meeting), else None."""
        return self.participants[0].replaces_call_id if self.kind is not _PLAIN_INVITE else None

    @property
    def participant_id(self) -> str | None:
        """The participant moved out of the source meeting (move_meeting only)."""
        return self.participants[0].participant_id if self.kind is _MOVE_MEETING else None

    @property
    def original_already_gone(self) -> bool:
        """True once the original call or meeting leg was reported gone (a condition)."""
        return "original_already_gone" in self._facts

    @property
    def facts(self) -> frozenset[str]:
        """What the invite's transitions recorded (``_machine.EFFECTS``), by name."""
        return self._facts

    @property
    def participant_ids(self) -> tuple[str | None, ...]:
        """Each invited participant's id in the call, once known (else None), in order.

        From the POST's answer (``participants[].id``), else from the first roster entry
        of the call whose identity matches the invitee's. A DELETE names it.
        """
        pids = self._pids
        return (None,) * len(self.participants) if pids is None else tuple(pids)

    def delete_requests(self) -> tuple[HttpRequest, ...]:
        """The DELETEs to send now (the core's cancel action).

        In ``cancelling``: one per participant not yet removed whose id is known. Empty
        otherwise, and for an id still unknown (the invite waits for it).
        """
        if self.state is not InviteState.cancelling:
            return ()
        return tuple(
            delete_request(self.call_id, pid)
            for pid in self.participant_ids
            if pid is not None and pid not in self._removed
        )

    @property
    def history(self) -> tuple[Step, ...]:
        """Every step so far, oldest first."""
        return tuple(self._steps)

    def steps_after(self, count: int) -> list[Step]:
        """The steps after the first ``count``, oldest first."""
        return self._steps[count:]

    @property
    def is_waiting_to_be_taken(self) -> bool:
        """True while the service has not yet taken the invite (state ``requested``)."""
        return self.state is _REQUESTED

    def _at(self, at: float | None) -> float:
        """An input's time: as given, else the latest step's (the core reads no clock)."""
        if at is not None:
            return at
        steps = self._steps
        return steps[-1].at if steps else 0.0

    @property
    def is_finished(self) -> bool:
        """True in ``completed`` or ``failed``."""
        return self.state.is_terminal

    # -- inputs ----------------------------------------------------------------------------

    def receive_response(
        self,
        status_code: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
        body: bytes | str | Mapping[str, Any] | None,
        *,
        at: float | None = None,
        unknown_statuses: frozenset[int] = UNKNOWN_STATUSES,
    ) -> InviteState:
        """Feed the HTTP answer to the invite POST.

        A 2xx with status running or notStarted moves to ``running``; completed or failed
        already in the answer finish the invite at once. A status in ``unknown_statuses``
        (502, 503, 504: see :mod:`callflow._core._retry`) means the outcome is unknown,
        as :meth:`outcome_unknown`. Any other non-2xx fails it, keeping Graph's
        ``error.code`` and ``error.message``. The ``Location`` header gives the operation
        id when the body does not. A late answer never moves the state back.

        Args:
            status_code: the HTTP status.
            headers: the answer's headers.
            body: the answer's body (bytes, text or parsed JSON).
            at: the time of the answer.
            unknown_statuses: the statuses after which the outcome is unknown.

        Returns:
            The state after the answer.

        """
        at = self._at(at)
        if status_code in unknown_statuses:
            return self.outcome_unknown(
                f"HTTP {status_code} after the POST was sent: outcome unknown", at=at
            )
        answer = read_invite_answer(status_code, _body(body))
        if not 200 <= status_code < 300:
            return self._fire(
                Trigger.rejected,
                f"HTTP {status_code}",
                at,
                f"the service answered the invite POST with HTTP {status_code}",
                said={
                    "status_code": status_code,
                    "error_code": answer.error_code,
                    "error_message": answer.error_message,
                },
            )
        if self.operation_id is None:
            location = answer.operation_id or _header(headers, "location")
            if location:
                self.operation_id = location.rstrip("/").rsplit("/", 1)[-1]
        if answer.participant_ids:
            self._learn_ids(answer.participant_ids)
        cause = f"HTTP {status_code} ({answer.status_text or 'no operation status'})"
        status = answer.status
        if status is _COMPLETED:
            if answer.result_info is not None:
                self.result_info = answer.result_info
            return self._fire(_OPERATION_COMPLETED, cause, at)
        if status is _FAILED:
            return self._operation_failed(answer.operation, cause, at)
        return self._fire(_ACCEPTED, cause, at)

    def receive_notification(self, notification: CommsNotification) -> bool:
        """Feed one notification.

        Returns:
            True when it concerned this invite and was applied; False when it concerns
            another invite, is a duplicate, or came after the invite finished.

        """
        return self.offer(notification) is Outcome.applied

    def offer(self, notification: CommsNotification, *, at: float | None = None) -> Outcome:
        """Feed one notification and say what became of it (see :class:`Outcome`)."""
        trigger = self._trigger_for(notification)
        if trigger is None:
            return _NOT_MINE
        if trigger == _OBSERVED:
            # A roster that moves nothing: kept as the latest view of the call, whatever
            # the state (the participant joining after completion is news, not lateness).
            pids = self._pids
            if (pids is None or None in pids) and notification.call_id == self.call_id:
                index = notification.roster_index
                if index is not None and index.by_identity:  # else nothing to learn
                    self._ids_from_roster(index)
            return self._keep_roster(notification)
        fingerprint = notification.fingerprint
        seen = self._seen
        if seen is None:
            seen = self._seen = set()
        elif fingerprint in seen:
            return _DUPLICATE
        kind = notification.kind
        terminal = self.state in _TERMINAL
        operation = None
        if not terminal:
            # The one rule for lazy models (CommsNotification.build_models), before
            # anything changes: a malformed one raises and leaves the invite as it was.
            if kind is not _KIND_OPERATION:
                notification.build_models()
            elif trigger is _OPERATION_FAILED or notification.has_result_info:
                # what build_models builds of an operation (failed is this one's status)
                operation = notification.operation
        seen.add(fingerprint)
        if at is None:
            at = self._at(at)
        cause = "notification " + notification.describe()
        if terminal:
            self._absorb(trigger, cause, at)
            return _LATE
        if kind is _KIND_OPERATION:
            if self.operation_id is None and notification.operation_id:
                self.operation_id = notification.operation_id
            if trigger is _OPERATION_FAILED:
                self._operation_failed(operation, cause, at)
            else:
                if operation is not None and operation.result_info is not None:
                    self.result_info = operation.result_info
                self._fire(trigger, cause, at)
        elif trigger is _ORIGINAL_GONE:
            if kind is _KIND_ROSTER:
                self._keep_roster(notification)
            self._fire(trigger, cause, at)
        else:
            self._fire(trigger, cause, at, *self._call_ended(notification))
        return _APPLIED

    def send_failed(self, reason: str, *, at: float | None = None) -> InviteState:
        """Say that the POST could not be sent at all (no connection, retries spent).

        The service never saw the invite, so it fails with reason ``unreachable``.
        """
        at = self._at(at)
        # The one failure whose reason the input gives: the service never saw the POST.
        return self._fire(Trigger.rejected, reason, at, reason, FailureReason.unreachable)

    def outcome_unknown(self, reason: str, *, at: float | None = None) -> InviteState:
        """Say that the POST's answer was lost (503, 504, a read timeout after sending).

        The invite stays in ``requested`` and waits for a notification carrying its
        clientContext; if its deadline passes first, it fails with reason
        ``outcome_unknown``. The POST must not be sent again.
        """
        at = self._at(at)
        return self._fire(Trigger.response_unknown, reason, at)

    def time_out(self, *, at: float | None = None) -> InviteState:
        """Say that the current state's deadline passed.

        In ``requested`` and ``running`` the invite is cancelled (``cancelling``: the
        DELETE stops the ringing) and ends ``cancelled`` with reason ``timeout``; when the
        POST's answer was lost it fails at once with reason ``outcome_unknown`` (with no
        participant id there is nothing to DELETE). In ``cancelling`` the cancel could not
        be done in time: it fails with reason ``cancel_failed`` (the participant may still
        be ringing). In ``tearing_down_original`` the operation had completed (the participant was
        added) but the original call or meeting leg was not reported gone in time; the
        invite fails with reason ``timeout`` and says so, because the participant may now
        be in both calls.
        """
        at = self._at(at)
        state = self.state
        why = self._reason(Trigger.timed_out, state)
        if state is InviteState.cancelling:  # the message, not the transition
            message = self._cancel_failure(
                "the cancelling deadline passed"
                + (
                    ""
                    if None not in self.participant_ids
                    else " before the participant id was known"
                )
            )
        elif state is InviteState.tearing_down_original:
            what = "original call" if self.kind is InviteKind.replace_p2p else "meeting leg"
            message = _TEARDOWN_TIMEOUT.format(what=what, original=self.replaces_call_id)
        else:
            template = _TIMEOUT_MESSAGES.get(why or FailureReason.timeout, "")
            message = template.format(context=self.client_context, state=state)
        return self._fire(Trigger.timed_out, f"deadline of {state} passed", at, message)

    def cancel(self, *, at: float | None = None) -> InviteState:
        """Say that the bot wants the invite cancelled.

        In ``requested`` or ``running`` the invite moves to ``cancelling`` and asks for
        the DELETE of each participant (:meth:`delete_requests`; empty while an id is
        still unknown). Anywhere else it changes nothing: a cancel while cancelling is
        the same cancel; in ``tearing_down_original`` or ``completed`` the participant
        has joined, and a cancel does not hang them up; a finished invite stays finished.

        Returns:
            The state after the input.

        """
        return self._fire(Trigger.cancel_requested, "cancel asked by the bot", self._at(at))

    def delete_answered(
        self, participant_id: str, status_code: int, *, at: float | None = None
    ) -> InviteState:
        """Feed the final answer to the DELETE of one participant (retries are over).

        2xx: removed (the ring stopped, or they were hung up). 404: already gone (a
        decline, the service's own ring timeout, an earlier DELETE whose answer was
        lost); as good as removed. When every participant is removed the invite is
        ``cancelled``. Any other status means the DELETE was not done:
        :meth:`delete_failed`.

        Args:
            participant_id: the ``{participantId}`` of the DELETE.
            status_code: the HTTP status of its answer.
            at: the time of the answer.

        Returns:
            The state after the answer.

        """
        at = self._at(at)
        if not (200 <= status_code < 300 or status_code == 404):
            return self.delete_failed(
                participant_id, f"the DELETE answered HTTP {status_code}", at=at
            )
        self._removed = self._removed | {participant_id}
        said = "already gone (404)" if status_code == 404 else f"removed ({status_code})"
        cause = f"DELETE of participant {participant_id}: {said}"
        if any(p is None or p not in self._removed for p in self.participant_ids):
            return self.state  # another participant is still to be removed
        return self._fire(Trigger.deleted, cause, at)

    def delete_failed(
        self, participant_id: str, reason: str, *, at: float | None = None
    ) -> InviteState:
        """Say that the DELETE of a participant could not be done (refused, retries spent).

        The invite fails with reason ``cancel_failed``: the participant may still be
        ringing, or in the call.
        """
        at = self._at(at)
        message = self._cancel_failure(f"the DELETE of participant {participant_id}: {reason}")
        return self._fire(Trigger.delete_failed, reason, at, message)

    @staticmethod
    def _cancel_failure(why: str) -> str:
        return (
            f"the cancel could not be done ({why}): the participant may still be ringing, "
            "or in the call"
        )

    def _cancelled_message(self, cause: str) -> str:
        if "cancel_asked" in self._facts:
            return f"cancelled by the bot: {cause}"
        began = next(
            (s.cause for s in self._steps if s.dest is InviteState.cancelling), "a deadline"
        )
        return f"{began}, so the invite was cancelled: {cause}"

    def _known_ids(self) -> list[str | None]:
        if self._pids is None:
            self._pids = [None] * len(self.participants)
        return self._pids

    def _learn_ids(self, ids: Sequence[str | None]) -> None:
        moved = self.participant_id  # a move's answer may echo the source meeting's id
        pids = self._known_ids()
        for i, pid in enumerate(ids[: len(pids)]):
            if pid is not None and pids[i] is None and pid != moved:
                pids[i] = pid

    def _ids_from_roster(self, index: RosterIndex) -> None:
        """Learn participant ids from roster entries whose identity matches an invitee's.

        Each invitee takes the first entry, in roster order, whose identity matches and
        whose id no invitee holds yet; the roster's index (worked out once for every
        invite on the call) makes that a lookup per invitee, not a scan of the roster.
        """
        pids = self._known_ids()
        for i, invited in enumerate(self.participants):
            if pids[i] is not None or invited.identity is None:
                continue
            found = index.first_match(invited.identity.ids(), pids)
            if found is not None:
                pids[i] = found

    # -- the machine -----------------------------------------------------------------------

    def _trigger_for(self, n: CommsNotification) -> Trigger | Literal["observed"] | None:
        """Which trigger a notification is for this invite, or None if not its business."""
        kind = n.kind
        if kind is _KIND_ROSTER:
            call_id = n.call_id
            if self.kind is _MOVE_MEETING and call_id == self.participants[0].replaces_call_id:
                return _ORIGINAL_GONE if self._left(n) else _OBSERVED
            return (
                _OBSERVED if call_id == self.call_id or call_id == self.replaces_call_id else None
            )
        if kind is _KIND_OPERATION:
            mine = (
                n.operation_id == self.operation_id
                if n.operation_id is not None and self.operation_id is not None
                else n.client_context == self.client_context
            )
            if not mine or n.status not in (_COMPLETED, _FAILED):
                # running / notStarted updates carry nothing the machine needs
                return _ACCEPTED if mine else None
            if n.status is _COMPLETED:
                return _OPERATION_COMPLETED
            return _OPERATION_FAILED
        call_id = n.call_id
        original = self.replaces_call_id
        if kind is _KIND_CALL_ENDED:
            if call_id == self.call_id:
                return _CALL_ENDED
            return _ORIGINAL_GONE if call_id == original and original else None
        if kind is _KIND_PARTICIPANT_DELETED and self.kind is _MOVE_MEETING and call_id == original:
            return _ORIGINAL_GONE if n.participant_id == self.participant_id else None
        return None

    def _keep_roster(self, roster: CommsNotification) -> Outcome:
        """Keep ``roster`` as the latest view, unless it is older than the one kept.

        Rosters of one call are ordered by :attr:`CommsNotification.roster_sequence`; a
        ``deltaParticipants`` updates the kept roster of its call rather than replacing it.
        The invites on a call mostly keep the same roster object, so what a roster does
        to the one kept is worked out once per (kept, new) pair (:func:`_roster_news`).
        """
        kept = self.roster
        if kept is None or kept.call_id != roster.call_id:
            self.roster = roster
            return _APPLIED
        outcome, merged = roster._against(kept, _roster_news)
        if outcome is _APPLIED:
            self.roster = roster if merged is None else merged
        return outcome

    @property
    def lobby(self) -> tuple[Participant, ...]:
        """The participants the latest roster shows waiting in the meeting's lobby.

        A bot admits them (``PATCH`` the participant, or its own policy); an invite
        whose participant waits there stays ``running`` until the service says more.
        """
        roster = self.roster
        if roster is None:
            return ()
        return tuple(p for p in roster.participants if p.is_in_lobby and not p.is_removed)

    def _left(self, roster: CommsNotification) -> bool:
        """Tell whether this roster of the source meeting shows the moved participant left."""
        index = roster.roster_index
        if index is None:
            return False
        invited = self.participants[0].identity
        ids = invited.ids() if invited is not None else _NONE
        return index.shows_removed(self.participant_id, ids)

    def _call_ended(self, notification: CommsNotification) -> tuple[str, None, dict[str, Any]]:
        """Why the invite's call ended, as Graph said: a failure's message and details."""
        call = notification.call
        reason = None if call is None else call.termination_reason
        message = f"call {self.call_id} ended" + (f" ({reason})" if reason else "")
        said = {
            "result_info": None if call is None else call.result_info,
            "termination_reason": reason,
        }
        return message, None, said

    def _operation_failed(
        self, operation: InviteParticipantsOperation | None, cause: str, at: float
    ) -> InviteState:
        info = None if operation is None else operation.result_info
        self.result_info = info
        message = "the invite operation failed" + (
            f": {info.message}" if info is not None and info.message else ""
        )
        return self._fire(Trigger.operation_failed, cause, at, message, said={"result_info": info})

    def _fire(
        self,
        trigger: Trigger,
        cause: str,
        at: float,
        message: str | None = None,
        why: FailureReason | None = None,
        said: Mapping[str, Any] | None = None,
    ) -> InviteState:
        """Move by the kind's table; record the step, the transition's effect, any failure.

        ``message`` and ``said`` (what the service said) describe a failure; its reason
        is the declared one for (trigger, source), unless the input gives it (``why``).
        """
        source = self.state
        rows = TABLES[self.kind].get((source, trigger))
        if rows is None:
            self._absorb(trigger, cause, at)
            return source
        for dest, condition in rows:  # noqa: B007 - dest is the loop's result
            if condition is None or condition in self._facts:
                break
        else:  # pragma: no cover - every conditional row has a plain fallback
            self._absorb(trigger, cause, at)
            return source
        if dest in _ENDS_WITH_REASON and self.failure is None:
            if dest is _CANCELLED:  # why it was cancelled, and what ended it
                why, message = None, self._cancelled_message(cause)
            self.failure = Failure(
                reason=why or self._reason(trigger, source) or FailureReason.timeout,
                message=message or f"{trigger} in {source}",
                **(said or {}),
            )
        effect = _EFFECTS.get(trigger)
        if effect is not None:
            self._facts = self._facts | {effect}
        self.state = dest
        self._steps.append(_new_step(Step, (trigger, source, dest, cause, at, False)))
        return dest

    def _reason(self, trigger: Trigger, source: InviteState) -> FailureReason | None:
        """The declared failure reason of (trigger, source), given the invite's facts."""
        for fact, reason in _REASONS.get((trigger, source), ()):
            if fact is None or fact in self._facts:
                return reason
        return None

    def _absorb(self, trigger: Trigger, cause: str, at: float) -> None:
        state = self.state
        self._steps.append(_new_step(Step, (trigger, state, state, cause, at, True)))

    # -- a plain record --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The invite's whole state as a plain, JSON-ready record."""
        return {
            "kind": self.kind.value,
            "state": self.state.value,
            "call_id": self.call_id,
            "client_context": self.client_context,
            "invite_id": self.invite_id,
            "participants": [p.to_json() for p in self.participants],
            "operation_id": self.operation_id,
            "result_info": None if self.result_info is None else self.result_info.to_json(),
            "failure": None if self.failure is None else self.failure.to_dict(),
            "original_already_gone": self.original_already_gone,
            "facts": sorted(self._facts),
            "participant_ids": list(self.participant_ids),
            "removed": sorted(self._removed),
            "history": [s.to_dict() for s in self._steps],
            "seen": [list(f) for f in self._seen or ()],
        }

    def __copy__(self: _I) -> _I:
        """An independent copy (``copy.copy(invite)``): inputs fed to one leave the other.

        Cheap: the immutable parts (participants, steps, the latest roster, ...) are
        shared; only the history list, the seen-notification set and the participant
        ids are copied. A store engine tries each input on a copy before committing it.
        """
        twin = object.__new__(type(self))
        for name in _slots_of(type(self).__mro__):
            value = getattr(self, name, _UNSET)  # a subclass's slot may never be set
            if value is not _UNSET:
                setattr(twin, name, value)
        extra = getattr(self, "__dict__", None)  # a subclass without __slots__
        if extra:
            twin.__dict__.update(extra)
        twin._steps = list(self._steps)
        twin._seen = None if self._seen is None else set(self._seen)
        twin._pids = None if self._pids is None else list(self._pids)
        return twin

    @classmethod
    def from_dict(cls: type[_I], data: Mapping[str, Any]) -> _I:
        """Rebuild an invite from :meth:`to_dict`'s record.

        Raises:
            InviteError: the record is not one :meth:`to_dict` wrote.

        """
        try:
            invite = cls(
                data["call_id"],
                data["participants"],
                client_context=data["client_context"],
                invite_id=data.get("invite_id") or data["client_context"],
            )
            if invite.kind.value != data["kind"]:
                raise InviteError(
                    f"kind: record says {data['kind']}, participants say {invite.kind}"
                )
            invite.state = InviteState(data["state"])
            invite.operation_id = data.get("operation_id")
            info = data.get("result_info")
            invite.result_info = None if info is None else ResultInfo.from_json(info)
            failure = data.get("failure")
            invite.failure = None if failure is None else Failure.from_dict(failure)
            invite._steps = [Step.from_dict(s) for s in data.get("history", ())]
            facts = set(data.get("facts") or ())
            if data.get("original_already_gone"):
                facts.add("original_already_gone")
            if "facts" not in data:  # a record from before facts: read them off the history
                facts |= {EFFECTS[s.trigger] for s in invite._steps if s.trigger in EFFECTS}
            invite._facts = frozenset(facts)
            pids = data.get("participant_ids")
            if pids is not None:
                invite._pids = [None if p is None else str(p) for p in pids]
            invite._removed = frozenset(str(p) for p in data.get("removed") or ())
            seen = data.get("seen") or ()
            invite._seen = {_fingerprint(f) for f in seen} or None
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InviteError):
                raise
            raise InviteError(f"not an invite record: {exc!r}") from None
        return invite

    def __repr__(self) -> str:
        return (
            f"<Invite {self.kind} {self.state} call={self.call_id} "
            f"clientContext={self.client_context} operation={self.operation_id}>"
        )


def _roster_news(
    kept: CommsNotification, roster: CommsNotification
) -> tuple[Outcome, CommsNotification | None]:
    """What ``roster`` does to an invite keeping ``kept`` (a roster of the same call).

    Returns:
        The outcome, and for an applied ``deltaParticipants`` the merged roster to keep
        (None otherwise: an applied whole roster is kept as it is).

    """
    if kept is roster or kept.fingerprint == roster.fingerprint:
        return _DUPLICATE, None
    before, after = kept.roster_sequence, roster.roster_sequence
    if before is not None and after is not None and after <= before:
        return _LATE, None
    return _APPLIED, (kept.updated_by(roster) if roster.is_delta else None)


def _fingerprint(items: Sequence[Any]) -> tuple[Any, ...]:
    """Rebuild a fingerprint from its JSON form (enums come back as their values)."""
    kind = NotificationKind(items[0])
    rest = list(items[1:])
    if kind is NotificationKind.operation and rest[-1] is not None:
        rest[-1] = OperationStatus(rest[-1])
    return (kind, *rest)
