"""The invite machines: every state, trigger and transition callflow knows, as data.

Theory of operation
-------------------
Rule 1 (after h11): everything that decides which state an invite moves to lives in this
file, in :data:`TRANSITIONS`. Nothing else in callflow writes a transition as an ``if``.

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

Conditions are names of boolean attributes of the invite record. There is one:
``original_already_gone``. It lets ``operation_completed`` go straight to ``completed``
when the teardown of the original call (or meeting leg) was reported *before* the
operation's own completion: notifications are not ordered, and any complete delivery must
end in the same state.

What moves each kind
--------------------
* ``accepted``: a 2xx answer to the POST whose operation status is running or notStarted.
* ``rejected``: a non-2xx answer to the POST.
* ``response_unknown``: the POST may or may not have reached the service (503, 504, a read
  timeout). The invite keeps waiting in ``requested`` for a notification carrying its
  clientContext. It is never re-sent.
* ``operation_completed`` / ``operation_failed``: the operation's status, from a
  notification or already in the POST's answer.
* ``original_gone``: replace_p2p: the original call (``replacesCallId``) is reported
  terminated or deleted. move_meeting: the participant (``participantId``) is reported
  deleted from, or with a ``removedState`` in the roster of, the source meeting
  (``replacesCallId``), or the source meeting's call is deleted.
* ``call_ended``: the call the participant was invited to is terminated or deleted.
* ``timed_out``: the state's deadline passed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final, TypeVar

from transitions import Machine

__all__ = [
    "InviteKind",
    "InviteState",
    "Trigger",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "CONDITIONS",
    "Table",
    "MACHINES",
    "TABLES",
    "compile_table",
    "states_of",
    "build_machine",
]


class InviteKind(str, enum.Enum):
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

    def __str__(self) -> str:
        return self.value


class InviteState(str, enum.Enum):
    """Where an invite is. ``completed`` and ``failed`` are terminal."""

    requested = "requested"
    running = "running"
    tearing_down_original = "tearing_down_original"
    completed = "completed"
    failed = "failed"

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        """True for ``completed`` and ``failed``: nothing moves the invite any more."""
        return self in TERMINAL_STATES


class Trigger(str, enum.Enum):
    """The inputs that move an invite (see the module docstring for their sources)."""

    accepted = "accepted"
    rejected = "rejected"
    response_unknown = "response_unknown"
    operation_completed = "operation_completed"
    operation_failed = "operation_failed"
    original_gone = "original_gone"
    call_ended = "call_ended"
    timed_out = "timed_out"

    def __str__(self) -> str:
        return self.value


TERMINAL_STATES: Final = frozenset({InviteState.completed, InviteState.failed})

#: The one condition a transition may carry: a boolean attribute of the invite record.
CONDITIONS: Final = ("original_already_gone",)

_R, _U, _T = "requested", "running", "tearing_down_original"

_COMMON: Final[list[dict[str, Any]]] = [
    {"trigger": "accepted", "source": _R, "dest": _U},
    {"trigger": "response_unknown", "source": _R, "dest": _R},
    {"trigger": "rejected", "source": _R, "dest": "failed"},
    {"trigger": "operation_failed", "source": [_R, _U], "dest": "failed"},
]

_ENDINGS_PLAIN: Final[list[dict[str, Any]]] = [
    {"trigger": "call_ended", "source": [_R, _U], "dest": "failed"},
    {"trigger": "timed_out", "source": [_R, _U], "dest": "failed"},
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
    {"trigger": "call_ended", "source": [_R, _U, _T], "dest": "failed"},
    {"trigger": "timed_out", "source": [_R, _U, _T], "dest": "failed"},
]

#: Every kind's transitions, in ``transitions``' own format. Order matters where a
#: (state, trigger) pair has several rows: the first whose conditions hold wins.
TRANSITIONS: Final[Mapping[InviteKind, tuple[dict[str, Any], ...]]] = {
    InviteKind.invite: (
        *_COMMON,
        {"trigger": "operation_completed", "source": [_R, _U], "dest": "completed"},
        *_ENDINGS_PLAIN,
    ),
    InviteKind.replace_p2p: (*_COMMON, *_REPLACING),
    InviteKind.move_meeting: (*_COMMON, *_REPLACING),
}


def states_of(kind: InviteKind) -> tuple[InviteState, ...]:
    """The states a kind of invite can be in, in the order they are reached."""
    if kind is InviteKind.invite:
        return (
            InviteState.requested,
            InviteState.running,
            InviteState.completed,
            InviteState.failed,
        )
    return tuple(InviteState)


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
    """Read a built machine's events into a lookup table for the runtime.

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
