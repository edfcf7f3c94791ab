"""The invite machines: every state, trigger and transition callflow knows, as data.

Theory of operation
-------------------
Rule 1 (after h11): everything that decides which state an invite moves to lives in this
file, as data. Nothing else in callflow writes a transition as an ``if``. Declared here:

* :data:`TRANSITIONS`: every kind's transitions; each kind's states are derived from them
  (:func:`states_of`), and a state with no way out is terminal;
* :data:`EFFECTS`: what a transition records on the invite besides its state (a fact a
  later condition or failure reason reads, e.g. "the original is already gone");
* :data:`FAILURE_REASONS`: the reason of each (trigger, source) that leads to ``failed``
  or ``cancelled``;
* :data:`DEADLINES`: which states have a deadline, and its default length. Importing
  this module fails if a non-terminal state of any kind has none.

There are three kinds of invite (:class:`InviteKind`). Each kind is declared once, as a list
of transitions in the format of the ``transitions`` library, and built once into a
``transitions.Machine`` with no model. That machine is the single authority: it validates
the declaration (unknown states, bad conditions) when callflow is imported, the diagrams
are drawn from its twin (a ``MarkupMachine`` that :func:`build_machine` builds from the
same arguments, in :mod:`callflow.diagrams`), and the runtime table is *read off it*.

The runtime does not call ``Machine.add_model`` or ``Event.trigger`` per invite: a machine
per invite costs about 390 us and 27 KB, and ``add_model`` grows quadratically. Instead,
:func:`compile_table` walks the built machine's events once and produces
``{(state, trigger): ((dest, condition), ...)}``. An invite is a small record holding its
state; moving it is one dict lookup. A test checks that the compiled table and the
``transitions`` machine agree on every (state, trigger) pair.

Conditions are names of facts the invite record holds (set by :data:`EFFECTS`). The
transitions use one: ``original_already_gone``. It lets ``operation_completed`` go
straight to ``completed`` when the teardown of the original call (or meeting leg) was
reported *before* the operation's own completion: notifications are not ordered, and any
complete delivery must end in the same state.

What moves each kind
--------------------
* ``accepted``: a 2xx answer to the POST whose operation status is running or notStarted.
* ``rejected``: a non-2xx answer to the POST.
* ``response_unknown``: the POST may or may not have reached the service (502, 503, 504,
  a read timeout). The invite keeps waiting in ``requested`` for a notification carrying its
  clientContext. It is never re-sent.
* ``operation_completed`` / ``operation_failed``: the operation's status, from a
  notification or already in the POST's answer.
* ``original_gone``: replace_p2p: the original call (``replacesCallId``) is reported
  terminated or deleted. move_meeting: the participant (``participantId``) is reported
  deleted from, or with a ``removedState`` in the roster of, the source meeting
  (``replacesCallId``), or the source meeting's call is deleted.
* ``call_ended``: the call the participant was invited to is terminated or deleted.
* ``timed_out``: the state's deadline passed. In ``requested`` and ``running`` that
  *cancels* the invite (``cancelling``): a deadline that does not stop the ringing would
  be a lie. Only when the POST's answer was lost (``answer_lost``: no participant id can
  be known) does it fail at once, with reason ``outcome_unknown``.

Cancelling
----------
* ``cancel_requested``: the bot asked for a cancel (``await handle.cancel()``). In
  ``requested`` and ``running`` it leads to ``cancelling``: the engine sends
  ``DELETE /communications/calls/{id}/participants/{participantId}`` ("any outstanding
  add participant request is canceled", participant-delete). In
  ``tearing_down_original`` the participant has already joined: the cancel is noted and
  changes nothing (hanging up would leave them in neither call; ``remove()`` does that
  on purpose). A finished invite absorbs it.
* In ``cancelling`` the answer to the POST (``accepted``, ``response_unknown``) and a
  completion (the participant joined while the DELETE was under way: the DELETE then
  removes them) are noted; the invite stays until the DELETE is answered.
* ``deleted``: every participant's DELETE answered 204, or 404 (already gone):
  ``cancelled``. So do ``operation_failed``, ``rejected`` and ``call_ended`` in
  ``cancelling``: nothing rings any more.
* ``delete_failed``: a DELETE could not be done (refused, retries spent): ``failed``,
  reason ``cancel_failed``; so does the ``cancelling`` deadline (the participant id never
  became known, or the DELETE took too long). The participant may still be ringing.

A cancelled invite's reason is ``cancelled`` when the bot asked (the fact
``cancel_asked``), else ``timeout`` (a deadline cancelled it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeVar

from transitions import Machine

from ._strenum import StrEnum

__all__ = [
    "InviteKind",
    "InviteState",
    "Trigger",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "CONDITIONS",
    "EFFECTS",
    "FAILURE_REASONS",
    "DEADLINES",
    "Table",
    "MACHINES",
    "TABLES",
    "compile_table",
    "states_of",
    "build_machine",
]


class InviteKind(StrEnum):
    """What an invite does; it follows from the request.

    * ``invite``: add one or several participants (up to 5) to a call.
    * ``replace_p2p``: add one participant and replace the peer-to-peer call named by
      ``replacesCallId``.
    * ``move_meeting``: move one participant (``participantId``) from the meeting whose
      call is ``replacesCallId`` into this one.
    """

    invite = "invite"
    replace_p2p = "replace_p2p"
    move_meeting = "move_meeting"


class InviteState(StrEnum):
    """Where an invite is. ``completed``, ``failed`` and ``cancelled`` are terminal."""

    requested = "requested"
    running = "running"
    tearing_down_original = "tearing_down_original"
    cancelling = "cancelling"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """True for ``completed``, ``failed`` and ``cancelled``: nothing moves it any more."""
        return self in TERMINAL_STATES


class Trigger(StrEnum):
    """The inputs that move an invite (see the module docstring for their sources)."""

    accepted = "accepted"
    rejected = "rejected"
    response_unknown = "response_unknown"
    operation_completed = "operation_completed"
    operation_failed = "operation_failed"
    original_gone = "original_gone"
    call_ended = "call_ended"
    timed_out = "timed_out"
    cancel_requested = "cancel_requested"
    deleted = "deleted"
    delete_failed = "delete_failed"


#: What a transition (one that is not ignored) records on the invite: a fact, by name.
#: ``answer_lost``: the POST's answer was lost, so a later timeout means the outcome is
#: unknown. ``original_already_gone``: the original call or meeting leg was reported gone.
#: ``cancel_asked``: the bot asked for the cancel (its reason is ``cancelled``, not
#: ``timeout``).
EFFECTS: Final[Mapping[Trigger, str]] = {
    Trigger.response_unknown: "answer_lost",
    Trigger.original_gone: "original_already_gone",
    Trigger.cancel_requested: "cancel_asked",
}

#: The facts a condition may name (see :data:`EFFECTS`).
CONDITIONS: Final = tuple(sorted(set(EFFECTS.values())))

_R, _U, _T, _C = "requested", "running", "tearing_down_original", "cancelling"

_COMMON: Final[list[dict[str, Any]]] = [
    {"trigger": "accepted", "source": _R, "dest": _U},
    {"trigger": "response_unknown", "source": _R, "dest": _R},
    {"trigger": "rejected", "source": _R, "dest": "failed"},
    {"trigger": "operation_failed", "source": [_R, _U], "dest": "failed"},
]

_ENDINGS_PLAIN: Final[list[dict[str, Any]]] = [
    {"trigger": "call_ended", "source": [_R, _U], "dest": "failed"},
]

#: Every kind: a cancel (or a deadline) in requested/running sends the DELETE.
_CANCELLING: Final[list[dict[str, Any]]] = [
    {"trigger": "cancel_requested", "source": [_R, _U], "dest": _C},
    {"trigger": "timed_out", "source": _R, "dest": "failed", "conditions": "answer_lost"},
    {"trigger": "timed_out", "source": [_R, _U], "dest": _C},
    # Noted while the DELETE is under way (or waits for the participant id).
    {"trigger": "accepted", "source": _C, "dest": _C},
    {"trigger": "response_unknown", "source": _C, "dest": _C},
    {"trigger": "operation_completed", "source": _C, "dest": _C},
    {"trigger": "deleted", "source": _C, "dest": "cancelled"},
    {"trigger": "operation_failed", "source": _C, "dest": "cancelled"},
    {"trigger": "rejected", "source": _C, "dest": "cancelled"},
    {"trigger": "call_ended", "source": _C, "dest": "cancelled"},
    {"trigger": "delete_failed", "source": _C, "dest": "failed"},
    {"trigger": "timed_out", "source": _C, "dest": "failed"},
]

_REPLACING: Final[list[dict[str, Any]]] = [
    # Teardown seen before the operation finished: note it, stay.
    {"trigger": "original_gone", "source": _R, "dest": _R},
    {"trigger": "original_gone", "source": _U, "dest": _U},
    {
        "trigger": "operation_completed",
        "source": [_R, _U],
        "dest": "completed",
        "conditions": "original_already_gone",
    },
    {"trigger": "operation_completed", "source": [_R, _U], "dest": _T},
    {"trigger": "original_gone", "source": _T, "dest": "completed"},
    {"trigger": "original_gone", "source": _C, "dest": _C},
    {"trigger": "call_ended", "source": [_R, _U, _T], "dest": "failed"},
    {"trigger": "timed_out", "source": _T, "dest": "failed"},
    # The participant has joined: a cancel changes nothing (see the module docstring).
    {"trigger": "cancel_requested", "source": _T, "dest": _T},
]

#: Every kind's transitions, in ``transitions``' own format. Order matters where a
#: (state, trigger) pair has several rows: the first whose conditions hold wins.
TRANSITIONS: Final[Mapping[InviteKind, tuple[dict[str, Any], ...]]] = {
    InviteKind.invite: (
        *_COMMON,
        {"trigger": "operation_completed", "source": [_R, _U], "dest": "completed"},
        *_ENDINGS_PLAIN,
        *_CANCELLING,
    ),
    InviteKind.replace_p2p: (*_COMMON, *_REPLACING, *_CANCELLING),
    InviteKind.move_meeting: (*_COMMON, *_REPLACING, *_CANCELLING),
}

#: Why an invite failed, for each (trigger, source) that leads to ``failed`` (or to
#: ``cancelled``: why it was cancelled): rows of
#: (fact or None, reason), the first whose fact the invite holds wins. A reason is a
#: :class:`~callflow.FailureReason` value. An input may say more (the HTTP status and
#: Graph's error, the resultInfo), and one says why the service never saw the POST
#: (``unreachable``), but the reason of every other failure is read from here.
_Reasons = Mapping[tuple[Trigger, InviteState], tuple[tuple[str | None, str], ...]]
FAILURE_REASONS: Final[_Reasons] = {
    (Trigger.rejected, InviteState.requested): ((None, "http_error"),),
    (Trigger.operation_failed, InviteState.requested): ((None, "operation_failed"),),
    (Trigger.operation_failed, InviteState.running): ((None, "operation_failed"),),
    (Trigger.call_ended, InviteState.requested): ((None, "call_ended"),),
    (Trigger.call_ended, InviteState.running): ((None, "call_ended"),),
    (Trigger.call_ended, InviteState.tearing_down_original): ((None, "call_ended"),),
    (Trigger.timed_out, InviteState.requested): (
        ("answer_lost", "outcome_unknown"),
        (None, "timeout"),
    ),
    (Trigger.timed_out, InviteState.running): ((None, "timeout"),),
    (Trigger.timed_out, InviteState.tearing_down_original): ((None, "timeout"),),
    (Trigger.delete_failed, InviteState.cancelling): ((None, "cancel_failed"),),
    (Trigger.timed_out, InviteState.cancelling): ((None, "cancel_failed"),),
    **{
        (trigger, InviteState.cancelling): (("cancel_asked", "cancelled"), (None, "timeout"))
        for trigger in (
            Trigger.deleted,
            Trigger.operation_failed,
            Trigger.rejected,
            Trigger.call_ended,
        )
    },
}

#: The states with a deadline, and its default length in seconds (see
#: :class:`~callflow.Deadlines`). ``running`` outlasts the service's own ~60 s of ringing,
#: so its own ``failed`` is seen rather than pre-empted.
DEADLINES: Final[Mapping[InviteState, float]] = {
    InviteState.requested: 90.0,
    InviteState.running: 90.0,
    InviteState.tearing_down_original: 60.0,
    InviteState.cancelling: 30.0,
}


def _names(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def states_of(kind: InviteKind) -> tuple[InviteState, ...]:
    """The states a kind of invite can be in, derived from its transitions, in order."""
    named = {n for t in TRANSITIONS[kind] for n in (*_names(t["source"]), t["dest"])}
    return tuple(s for s in InviteState if s.value in named)


def _leaving(kind: InviteKind) -> frozenset[InviteState]:
    """The states of a kind that some transition leaves (to another state)."""
    return frozenset(
        InviteState(source)
        for t in TRANSITIONS[kind]
        for source in _names(t["source"])
        if source != t["dest"]
    )


#: The states nothing leaves, in every kind: ``completed``, ``failed`` and ``cancelled``.
TERMINAL_STATES: Final = frozenset(InviteState) - frozenset().union(*map(_leaving, InviteKind))


_M = TypeVar("_M", bound=Machine)


def build_machine(kind: InviteKind, cls: type[_M]) -> _M:
    """One kind's machine, built from :data:`TRANSITIONS` with no model.

    Args:
        kind: which kind.
        cls: ``transitions.Machine`` for the runtime, a ``MarkupMachine`` for the diagrams.

    """
    return cls(
        model=None,
        states=[s.value for s in states_of(kind)],
        transitions=[dict(t) for t in TRANSITIONS[kind]],
        initial=InviteState.requested.value,
        auto_transitions=False,
        name=kind.value,
    )


#: One ``transitions.Machine`` per kind, built once at import. No model is ever added.
MACHINES: Final[Mapping[InviteKind, Machine]] = {
    kind: build_machine(kind, Machine) for kind in InviteKind
}

#: ``{(state, trigger): ((dest, condition or None), ...)}``
Table = Mapping[tuple[InviteState, Trigger], tuple[tuple[InviteState, str | None], ...]]


def compile_table(machine: Machine) -> Table:
    """Read a built machine's events into a lookup table the invites run on.

    Args:
        machine: a ``transitions.Machine`` built from :data:`TRANSITIONS`.

    Returns:
        ``{(state, trigger): ((dest, condition), ...)}`` in the machine's own order of
        evaluation; ``condition`` is the name of a boolean attribute, or None.

    Raises:
        ValueError: the machine uses a feature the runtime does not evaluate (``unless``,
            several conditions, a callable condition, or an unknown condition name).

    """
    table: dict[tuple[InviteState, Trigger], tuple[tuple[InviteState, str | None], ...]] = {}
    for trigger_name, event in machine.events.items():
        trigger = Trigger(trigger_name)
        for source, transitions in event.transitions.items():
            rows: list[tuple[InviteState, str | None]] = []
            for transition in transitions:
                conditions = [c for c in transition.conditions if c.target]
                if len(conditions) != len(transition.conditions) or len(conditions) > 1:
                    raise ValueError(f"{trigger_name} from {source}: only one plain condition")
                condition = conditions[0].func if conditions else None
                if condition is not None and condition not in CONDITIONS:
                    raise ValueError(f"{trigger_name} from {source}: unknown {condition!r}")
                rows.append((InviteState(transition.dest), condition))
            table[(InviteState(source), trigger)] = tuple(rows)
    return table


#: The runtime's view of :data:`MACHINES`, one table per kind.
TABLES: Final[Mapping[InviteKind, Table]] = {
    kind: compile_table(machine) for kind, machine in MACHINES.items()
}


_ENDS_WITH_REASON: Final = (InviteState.failed, InviteState.cancelled)


def _check_declaration() -> None:
    """Refuse, at import, a declaration with a non-terminal state that has no deadline."""
    for kind in InviteKind:
        for state in states_of(kind):
            if state not in TERMINAL_STATES and state not in DEADLINES:
                raise ValueError(f"{kind}: state {state} is not terminal and has no deadline")
        for (source, trigger), rows in TABLES[kind].items():
            if any(dest in _ENDS_WITH_REASON for dest, _ in rows):
                declared = FAILURE_REASONS.get((trigger, source))
                if not declared or declared[-1][0] is not None:
                    raise ValueError(f"{kind}: {trigger} from {source} fails with no reason")
    for (trigger, source), reasons in FAILURE_REASONS.items():
        if any(fact not in CONDITIONS for fact, _ in reasons if fact is not None):
            raise ValueError(f"FAILURE_REASONS[{trigger}, {source}]: an unknown fact")


_check_declaration()
