"""Workflows: call flows composed of invites, declared as data.

Theory of operation
-------------------
Rule 1 (after h11, as in :mod:`callflow._core._machine`): what a workflow does next is decided by
its declaration, a :class:`Workflow` value: its states (:class:`FlowState`), the invites each
state rings (participant indexes), and its transitions (:class:`FlowTransition`) on invite
outcomes, on its deadline and on a cancel. The runtime
(:class:`~callflow._core._flow_run.WorkflowRun`) reads the table compiled once from the
declaration (:attr:`Workflow.table`); it holds no ``transitions.Machine``, and no
transition is written as an ``if`` outside the declaration. The diagrams
(:mod:`callflow._flow_diagrams`) are drawn from the same value.

Entering a state does three things, all read off the state: every invite the state
``rings`` that was never started is started; every invite still ringing that the state
does not ring is cancelled (so leaving ``ringing_0`` for ``ringing_1`` cancels invite 0
and starts invite 1); and a timer is set at the state's deadline. **Every state has a
deadline**, final ones included: a final state's deadline bounds how long the run waits for
the cancels it asked for before it reports its result anyway. A declaration without a
deadline on each state, or a non-final state with no ``deadline`` transition, is refused.

Each invite also has a :class:`Fate`, moved by the outcomes reported for it through the
:data:`FATES` table (also data). The table gates the inputs: an outcome with no row for the
invite's fate (a duplicate, an outcome of an invite never started) is ignored.

Never two joined: the first invite to complete wins (transition effect ``win``); one that
completes after a winner exists, even in the same instant, is removed again (effect
``remove``). An invite whose cancel failed (:attr:`Outcome.cancel_failed`) may still ring;
if it answers before anyone else, it is the winner, and the result lists it as a late
answer. One that completes after its cancel worked joined just as the DELETE came and was
removed by it: its fate becomes ``removed``, the result lists it, and nothing else moves.

The built-ins are :func:`hunt` (sequential) and :func:`ring_group` (parallel); a bot
declares its own workflow with the same three classes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from .._exceptions import WorkflowError
from ._strenum import StrEnum

__all__ = [
    "WorkflowError",
    "Outcome",
    "Fate",
    "FlowTrigger",
    "FATES",
    "PENDING",
    "CONDITIONS",
    "EFFECTS",
    "FlowState",
    "FlowTransition",
    "Workflow",
    "hunt",
    "ring_group",
]


class Outcome(StrEnum):
    """What the engine reports about one invite of a workflow.

    * ``completed``: the participant joined.
    * ``failed``: declined, or failed by the service.
    * ``timed_out``: the invite's own deadline passed without an answer.
    * ``cancelled``: the invite was cancelled (its ringing stopped).
    * ``cancel_failed``: a cancel could not be done: the participant may still be ringing.
    * ``removed`` / ``remove_failed``: a :class:`RemoveParticipant` succeeded or not.
    """

    completed = "completed"
    failed = "failed"
    timed_out = "timed_out"
    cancelled = "cancelled"
    cancel_failed = "cancel_failed"
    removed = "removed"
    remove_failed = "remove_failed"


class Fate(StrEnum):
    """Where one invite of a workflow is, as the workflow sees it."""

    not_invited = "not_invited"
    ringing = "ringing"
    cancelling = "cancelling"
    removing = "removing"
    answered = "answered"
    failed = "failed"
    timed_out = "timed_out"
    cancelled = "cancelled"
    cancel_failed = "cancel_failed"
    removed = "removed"


class FlowTrigger(StrEnum):
    """What moves a workflow: an invite's outcome, its state's deadline, or a cancel."""

    completed = "completed"
    failed = "failed"
    timed_out = "timed_out"
    cancelled = "cancelled"
    cancel_failed = "cancel_failed"
    removed = "removed"
    remove_failed = "remove_failed"
    deadline = "deadline"
    cancel = "cancel"


_F = Fate
_O = Outcome

#: How an outcome moves an invite's fate: ``{(fate, outcome): fate}``. A pair with no row
#: is ignored (a duplicate, or an outcome that cannot follow that fate).
FATES: Final[Mapping[tuple[Fate, Outcome], Fate]] = {
    (_F.ringing, _O.completed): _F.answered,
    (_F.ringing, _O.failed): _F.failed,
    (_F.ringing, _O.timed_out): _F.timed_out,
    (_F.ringing, _O.cancelled): _F.cancelled,
    # Answered while the cancel was under way: the participant is in the call.
    (_F.cancelling, _O.completed): _F.answered,
    (_F.cancelling, _O.failed): _F.failed,
    (_F.cancelling, _O.timed_out): _F.timed_out,
    (_F.cancelling, _O.cancelled): _F.cancelled,
    (_F.cancelling, _O.cancel_failed): _F.cancel_failed,
    # The cancel failed, so it kept ringing: the late answer, or its end after all.
    (_F.cancel_failed, _O.completed): _F.answered,
    (_F.cancel_failed, _O.failed): _F.failed,
    (_F.cancel_failed, _O.timed_out): _F.timed_out,
    (_F.cancel_failed, _O.cancelled): _F.cancelled,
    # A completion after a cancel that worked: the participant joined as the DELETE came,
    # and the DELETE removed them (the service does not complete a cancelled invite).
    (_F.cancelled, _O.completed): _F.removed,
    (_F.removing, _O.removed): _F.removed,
    (_F.removing, _O.remove_failed): _F.answered,
}

#: Fates that still wait for an outcome: a final state reports Done once none is left.
PENDING: Final = frozenset({Fate.ringing, Fate.cancelling, Fate.removing})


# -- the declaration ----------------------------------------------------------------------------


def _name(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.isidentifier():
        raise WorkflowError(f"{attribute.name} must be an identifier, not {value!r}")


def _ints(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class FlowState:
    """One state of a workflow.

    Attributes:
        name: the state's name (an identifier).
        deadline: seconds the workflow may stay in it (required, positive). A final
            state's deadline bounds the wait for the cancels it asked for.
        rings: the participants (by index) whose invites ring in this state: entering it
            starts those never started and cancels any other still ringing.
        final: True when the workflow has decided; it reports :class:`Done` once no
            invite is pending (or at the deadline).

    """

    name: str = attrs.field(validator=_name)
    deadline: float
    rings: tuple[int, ...] = attrs.field(default=(), converter=_ints)
    final: bool = False


@attrs.frozen(kw_only=True)
class FlowTransition:
    """One transition: in ``source``, on ``trigger`` (for ``invite``, or any), go to ``dest``.

    Attributes:
        source: the state it leaves.
        trigger: what takes it.
        dest: the state it enters (may be ``source``: effects still apply, nothing is
            re-entered).
        invite: for an outcome trigger, the participant index it is about; None for any.
        condition: the name of a :data:`CONDITIONS` entry that must hold, or None.
        effect: the name of an :data:`EFFECTS` entry applied to the reporting invite
            (``win``, ``remove``), or None.

    """

    source: str
    trigger: FlowTrigger = attrs.field(converter=FlowTrigger)
    dest: str
    invite: int | None = None
    condition: str | None = None
    effect: str | None = None

    @property
    def label(self) -> str:
        """The trigger, its invite and its condition, as the diagrams write it."""
        text = str(self.trigger) if self.invite is None else f"{self.trigger} @{self.invite}"
        if self.condition:
            text += f" [{self.condition}]"
        if self.effect:
            text += f" / {self.effect}"
        return text


#: Conditions a transition may name: ``(fates of the run's invites) -> bool``.
CONDITIONS: Final[Mapping[str, Callable[[Sequence[Fate]], bool]]] = {
    "none_ringing": lambda fates: Fate.ringing not in fates,
}

#: Effects a transition may name, applied to the invite whose outcome took it.
EFFECTS: Final = ("win", "remove")


def _states(value: Iterable[FlowState]) -> tuple[FlowState, ...]:
    return tuple(value)


def _transitions(value: Iterable[FlowTransition]) -> tuple[FlowTransition, ...]:
    return tuple(value)


_Table = Mapping[tuple[str, FlowTrigger], tuple[FlowTransition, ...]]


@attrs.frozen(kw_only=True)
class Workflow:
    """A workflow declared as data; built once, shared by every run of it.

    Args:
        name: the workflow's name (an identifier), such as ``hunt``.
        participants: how many participants it invites (indexes 0 to n-1).
        states: its states; the first is where a run starts unless ``initial`` says.
        transitions: its transitions; where a (state, trigger) pair has several, the
            first whose invite and condition match wins.
        initial: the state a run starts in (default: the first state).

    Raises:
        WorkflowError: a state without a positive deadline, an unknown state, condition
            or effect, an index out of range, a non-final state with no ``deadline``
            transition, or no final state.

    """

    name: str = attrs.field(validator=_name)
    participants: int
    states: tuple[FlowState, ...] = attrs.field(converter=_states)
    transitions: tuple[FlowTransition, ...] = attrs.field(converter=_transitions)
    initial: str = ""
    table: _Table = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.initial and self.states:
            object.__setattr__(self, "initial", self.states[0].name)
        _check(self)
        table: dict[tuple[str, FlowTrigger], list[FlowTransition]] = {}
        for t in self.transitions:
            table.setdefault((t.source, t.trigger), []).append(t)
        object.__setattr__(self, "table", {k: tuple(v) for k, v in table.items()})

    def state(self, name: str) -> FlowState:
        """The state called ``name``.

        Raises:
            WorkflowError: there is none.

        """
        for s in self.states:
            if s.name == name:
                return s
        raise WorkflowError(f"workflow {self.name} has no state {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """The declaration as JSON-ready data (:meth:`from_dict` reads it back)."""
        return {
            "name": self.name,
            "participants": self.participants,
            "initial": self.initial,
            "states": [
                {"name": s.name, "deadline": s.deadline, "rings": list(s.rings), "final": s.final}
                for s in self.states
            ],
            "transitions": [
                {
                    "source": t.source,
                    "trigger": t.trigger.value,
                    "dest": t.dest,
                    "invite": t.invite,
                    "condition": t.condition,
                    "effect": t.effect,
                }
                for t in self.transitions
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Workflow:
        """Read a declaration written by :meth:`to_dict`.

        Raises:
            WorkflowError: the data is not such a declaration (the message says where).

        """
        try:
            return cls(
                name=data["name"],
                participants=data["participants"],
                initial=data.get("initial", ""),
                states=[FlowState(**s) for s in data["states"]],
                transitions=[FlowTransition(**t) for t in data["transitions"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, WorkflowError):
                raise
            raise WorkflowError(f"not a workflow declaration: {exc!r}") from None


def _check(flow: Workflow) -> None:
    where = f"workflow {flow.name}"
    if not isinstance(flow.participants, int) or flow.participants < 1:
        raise WorkflowError(f"{where}: participants must be at least 1, not {flow.participants!r}")
    names = [s.name for s in flow.states]
    if len(set(names)) != len(names):
        raise WorkflowError(f"{where}: state names must be unique, got {names}")
    if flow.initial not in names:
        raise WorkflowError(f"{where}: initial state {flow.initial!r} is not one of {names}")
    if not any(s.final for s in flow.states):
        raise WorkflowError(f"{where}: no final state, so it could never end")
    for s in flow.states:
        if not isinstance(s.deadline, (int, float)) or not s.deadline > 0:
            raise WorkflowError(
                f"{where}: state {s.name} needs a deadline (positive seconds), not {s.deadline!r}"
            )
        bad = [i for i in s.rings if not 0 <= i < flow.participants]
        if bad:
            raise WorkflowError(f"{where}: state {s.name} rings unknown participants {bad}")
    for n, t in enumerate(flow.transitions):
        at = f"{where}: transitions[{n}] ({t.source} -> {t.dest})"
        for end in (t.source, t.dest):
            if end not in names:
                raise WorkflowError(f"{at}: unknown state {end!r}")
        if t.invite is not None and not 0 <= t.invite < flow.participants:
            raise WorkflowError(f"{at}: unknown participant {t.invite}")
        if t.condition is not None and t.condition not in CONDITIONS:
            raise WorkflowError(f"{at}: unknown condition {t.condition!r}")
        if t.effect is not None and t.effect not in EFFECTS:
            raise WorkflowError(f"{at}: unknown effect {t.effect!r}: choose from {EFFECTS}")
    timed = {t.source for t in flow.transitions if t.trigger is FlowTrigger.deadline}
    stuck = [s.name for s in flow.states if not s.final and s.name not in timed]
    if stuck:
        raise WorkflowError(f"{where}: states {stuck} have no deadline transition")


def _seconds(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or not value > 0:
        raise WorkflowError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def _count(participants: int) -> int:
    if not isinstance(participants, int) or participants < 1:
        raise WorkflowError(f"a workflow needs at least one participant, not {participants!r}")
    return participants


_T = FlowTrigger


def _endings(settle_for: float) -> tuple[list[FlowState], list[FlowTransition]]:
    """The final states every built-in shares, and what they do with a late join."""
    states = [
        FlowState(name="answered", deadline=settle_for, final=True),
        FlowState(name="nobody_answered", deadline=settle_for, final=True),
        FlowState(name="cancelled", deadline=settle_for, final=True),
    ]
    transitions = [
        FlowTransition(source="answered", trigger=_T.completed, dest="answered", effect="remove"),
        FlowTransition(source="cancelled", trigger=_T.completed, dest="cancelled", effect="remove"),
        # Someone whose cancel was still under way answered after all: tell the truth.
        FlowTransition(
            source="nobody_answered", trigger=_T.completed, dest="answered", effect="win"
        ),
    ]
    return states, transitions


def hunt(participants: int, *, ring_for: float = 30.0, settle_for: float = 60.0) -> Workflow:
    """Sequential escalation: ring each participant in turn, ``ring_for`` seconds each.

    A decline, a failure, the invite's own timeout or ``ring_for`` without an answer moves
    on to the next participant (cancelling the invite that still rings); the first to join
    wins; nobody left means ``nobody_answered``.

    Args:
        participants: how many participants, rung in index order.
        ring_for: seconds each participant rings.
        settle_for: seconds a final state waits for outstanding cancels.

    Returns:
        The declaration, with states ``ringing_0`` … ``ringing_{n-1}``, ``answered``,
        ``nobody_answered`` and ``cancelled``.

    Raises:
        WorkflowError: no participants, or a non-positive duration.

    """
    n = _count(participants)
    ring_for, settle_for = _seconds("ring_for", ring_for), _seconds("settle_for", settle_for)
    states, transitions = _endings(settle_for)
    ringing = [FlowState(name=f"ringing_{i}", deadline=ring_for, rings=(i,)) for i in range(n)]
    for i in range(n):
        here, after = f"ringing_{i}", (f"ringing_{i + 1}" if i + 1 < n else "nobody_answered")
        transitions += [
            FlowTransition(source=here, trigger=_T.completed, dest="answered", effect="win"),
            *(
                FlowTransition(source=here, trigger=trigger, dest=after, invite=i)
                for trigger in (_T.failed, _T.timed_out, _T.cancelled)
            ),
            FlowTransition(source=here, trigger=_T.deadline, dest=after),
            FlowTransition(source=here, trigger=_T.cancel, dest="cancelled"),
        ]
    return Workflow(
        name="hunt", participants=n, states=[*ringing, *states], transitions=transitions
    )


def ring_group(participants: int, *, ring_for: float = 30.0, settle_for: float = 60.0) -> Workflow:
    """Parallel ringing: invite everyone at once; the first to join wins.

    Every other invite is cancelled at once; one that joins in the same instant (or later)
    is removed again. When every invite ended without an answer, or after ``ring_for``,
    the group ends ``nobody_answered``.

    Args:
        participants: how many participants, all rung together.
        ring_for: seconds the group rings.
        settle_for: seconds a final state waits for outstanding cancels.

    Returns:
        The declaration, with states ``ringing``, ``answered``, ``nobody_answered`` and
        ``cancelled``.

    Raises:
        WorkflowError: no participants, or a non-positive duration.

    """
    n = _count(participants)
    ring_for, settle_for = _seconds("ring_for", ring_for), _seconds("settle_for", settle_for)
    states, transitions = _endings(settle_for)
    ringing = FlowState(name="ringing", deadline=ring_for, rings=tuple(range(n)))
    transitions += [
        FlowTransition(source="ringing", trigger=_T.completed, dest="answered", effect="win"),
        *(
            FlowTransition(
                source="ringing", trigger=trigger, dest="nobody_answered", condition="none_ringing"
            )
            for trigger in (_T.failed, _T.timed_out, _T.cancelled)
        ),
        FlowTransition(source="ringing", trigger=_T.deadline, dest="nobody_answered"),
        FlowTransition(source="ringing", trigger=_T.cancel, dest="cancelled"),
    ]
    return Workflow(
        name="ring_group", participants=n, states=[ringing, *states], transitions=transitions
    )
